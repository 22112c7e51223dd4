"""The server-rendered storefront: plain forms, no JavaScript, a CSRF token in every POST form.

Flow: / -> /products/<id> -> POST /cart/add -> /cart -> /checkout -> POST /checkout
-> /orders/<id> ("Order #<id> confirmed"). Every POST here without the session's token is 403.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from shop_loadtest.demo_shop import inputs, sessions
from shop_loadtest.demo_shop.seed import DEMO_PASSWORD
from shop_loadtest.demo_shop.store import MAX_PAGE, MAX_QUANTITY, EmptyCart, Store

PER_PAGE = 24
Page = str | tuple[str, int]


def money(cents: int) -> str:
    return f"{cents / 100:,.2f}"


def safe_next(target: str | None) -> str:
    """Only a path on this site, so `?next=` cannot send a visitor elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def build_html(store: Store) -> Blueprint:
    """The storefront blueprint, bound to one store."""
    bp = Blueprint("html", __name__)

    @bp.before_request
    def check_csrf() -> None:
        if request.method == "POST" and not sessions.csrf_ok(request.form.get("csrf_token")):
            abort(403, description="missing or wrong CSRF token; reload the form and try again")

    @bp.app_context_processor
    def page_globals() -> dict[str, Any]:
        return {
            "csrf_token": sessions.csrf_token,
            "user": sessions.current_user(),
            "cart_count": sessions.cart_count(),
            "categories": store.categories,
        }

    bp.add_app_template_filter(money, "money")

    @bp.get("/")
    def catalogue() -> Page:
        page = inputs.positive_int(request.args.get("page"), "page", default=1, maximum=MAX_PAGE)
        category = request.args.get("category", "").strip()
        items, total = store.list_products(page=page, per_page=PER_PAGE, category=category)
        pages = max(1, math.ceil(total / PER_PAGE))
        return render_template(
            "catalogue.html", products=items, page=page, pages=pages, total=total, category=category
        )

    @bp.get("/products/<int:id>")
    def product(id: int) -> Page:
        item = store.product(id)
        if item is None:
            abort(404, description=f"product {id} not found")
        return render_template("product.html", product=item, max_quantity=MAX_QUANTITY)

    @bp.get("/search")
    def search() -> Page:
        q = inputs.text(request.args.get("q"), "q")
        items, total = store.search(q, limit=50) if q else ([], 0)
        return render_template("search.html", q=q, products=items, total=total)

    @bp.get("/cart")
    def cart() -> Page:
        return render_template("cart.html", cart=store.cart(sessions.cart_items()))

    @bp.post("/cart/add")
    def cart_add() -> Response:
        product_id = inputs.positive_int(request.form.get("product_id"), "product_id")
        quantity = inputs.positive_int(
            request.form.get("quantity"), "quantity", default=1, maximum=MAX_QUANTITY
        )
        if store.product(product_id) is None:
            abort(404, description=f"product {product_id} not found")
        sessions.add_to_cart(product_id, quantity)
        return redirect(url_for("html.cart"), code=303)

    @bp.post("/cart/remove")
    def cart_remove() -> Response:
        sessions.remove_from_cart(inputs.positive_int(request.form.get("product_id"), "product_id"))
        return redirect(url_for("html.cart"), code=303)

    @bp.get("/login")
    def login_form() -> Page:
        return render_template(
            "login.html", next=safe_next(request.args.get("next")), email="", error=None
        )

    @bp.post("/login")
    def login() -> Page | Response:
        email = request.form.get("email", "").strip()
        target = safe_next(request.form.get("next") or request.args.get("next"))
        if request.form.get("password") != DEMO_PASSWORD or "@" not in email:
            return render_template(
                "login.html", next=target, email=email, error="Wrong email or password."
            ), 401
        sessions.log_in(email, store.user_name(email) or email.partition("@")[0])
        return redirect(target, code=303)

    @bp.post("/logout")
    def logout() -> Response:
        sessions.log_out()
        return redirect(url_for("html.catalogue"), code=303)

    @bp.get("/checkout")
    def checkout_form() -> Page:
        user = sessions.current_user() or {}
        return render_template(
            "checkout.html",
            cart=store.cart(sessions.cart_items()),
            form={"email": user.get("email", ""), "name": user.get("name", "")},
            error=None,
        )

    @bp.post("/checkout")
    def checkout() -> Page | Response:
        form = request.form
        try:
            order = store.place_order(
                sessions.cart_items(),
                email=inputs.email(form.get("email")),
                name=inputs.text(form.get("name"), "name", required=True),
                address=inputs.text(form.get("address"), "address", required=True, max_len=1000),
                notes=inputs.text(form.get("notes"), "notes", max_len=1000),
                user_agent=request.headers.get("User-Agent", ""),
            )
        except EmptyCart:
            return render_template(
                "checkout.html", cart=store.cart({}), form=form, error="Your cart is empty."
            ), 400
        sessions.clear_cart()
        return redirect(url_for("html.order", id=order.id), code=303)

    @bp.get("/orders/<int:id>")
    def order(id: int) -> Page:
        found = store.order(id)
        if found is None:
            abort(404, description=f"order {id} not found")
        return render_template("order.html", order=found)

    return bp
