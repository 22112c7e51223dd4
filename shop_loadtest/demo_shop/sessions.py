"""What a visitor's signed session cookie holds: the cart, the login and the CSRF token.

The cart lives in the cookie as `{"<product_id>": quantity}`, so adding to it costs no
database write; only checkout writes, which keeps the storage story of the shop simple.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import abort, session

from shop_loadtest.demo_shop.store import MAX_CART_LINES, MAX_QUANTITY


def cart_items() -> dict[str, int]:
    items = session.get("cart")
    return dict(items) if isinstance(items, dict) else {}


def cart_count() -> int:
    return sum(cart_items().values())


def add_to_cart(product_id: int, quantity: int) -> None:
    items = cart_items()
    key = str(product_id)
    new_quantity = items.get(key, 0) + quantity
    if new_quantity > MAX_QUANTITY:
        abort(400, description=f"at most {MAX_QUANTITY} of one product per order")
    if key not in items and len(items) >= MAX_CART_LINES:
        abort(400, description=f"at most {MAX_CART_LINES} different products per order")
    items[key] = new_quantity
    session["cart"] = items


def remove_from_cart(product_id: int) -> bool:
    items = cart_items()
    if items.pop(str(product_id), None) is None:
        return False
    session["cart"] = items
    return True


def clear_cart() -> None:
    session.pop("cart", None)


def log_in(email: str, name: str) -> None:
    session["user"] = {"email": email, "name": name}


def log_out() -> None:
    session.pop("user", None)


def current_user() -> dict[str, Any] | None:
    user = session.get("user")
    return user if isinstance(user, dict) else None


def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(sent: str | None) -> bool:
    expected = session.get("csrf")
    return (
        isinstance(expected, str)
        and isinstance(sent, str)
        and hmac.compare_digest(expected.encode(), sent.encode())
    )
