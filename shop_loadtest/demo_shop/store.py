"""What the shop does, apart from HTTP: catalogue queries, carts, orders, customers.

Money is integer cents inside; the JSON API shows prices as decimal numbers (19.99).
A cart is a plain `{product_id: quantity}` mapping that the caller keeps (in the session).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shop_loadtest.demo_shop.db import Database

MAX_PER_PAGE = 100
MAX_PAGE = 100_000  # keeps OFFSET within SQLite integers
MAX_CART_LINES = 50
MAX_QUANTITY = 99
SHOP_NAME = "Demo Shop"

_PRODUCT_COLUMNS = "id, name, category, price_cents, stock"


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    name: str
    category: str
    price_cents: int
    stock: int
    description: str = ""

    def to_json(self, *, detail: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "price": self.price_cents / 100,
            "category": self.category,
            "stock": self.stock,
        }
        if detail:
            out["description"] = self.description
        return out


@dataclass(frozen=True, slots=True)
class Line:
    """A cart or order line, priced."""

    product_id: int
    name: str
    price_cents: int
    quantity: int

    @property
    def subtotal_cents(self) -> int:
        return self.price_cents * self.quantity

    def to_json(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "name": self.name,
            "price": self.price_cents / 100,
            "quantity": self.quantity,
            "subtotal": self.subtotal_cents / 100,
        }


@dataclass(frozen=True, slots=True)
class Cart:
    lines: tuple[Line, ...]

    @property
    def total_cents(self) -> int:
        return sum(line.subtotal_cents for line in self.lines)

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "items": [line.to_json() for line in self.lines],
            "count": self.count,
            "total": self.total_cents / 100,
        }


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    email: str
    name: str
    address: str
    notes: str
    total_cents: int
    created_at: str
    lines: tuple[Line, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.id,
            "status": "confirmed",
            "email": self.email,
            "name": self.name,
            "address": self.address,
            "notes": self.notes,
            "total": self.total_cents / 100,
            "created_at": self.created_at,
            "lines": [line.to_json() for line in self.lines],
        }


class EmptyCart(Exception):
    """Checkout of an empty cart: the caller answers 400."""


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def receipt_text(
    order_id: int,
    name: str,
    email: str,
    address: str,
    lines: tuple[Line, ...],
    total_cents: int,
    created_at: str,
) -> str:
    """The plain-text receipt kept with each order (what the confirmation email would say)."""
    body = [
        f"{SHOP_NAME} - receipt for order #{order_id} ({created_at})",
        f"Customer: {name} <{email}>",
        f"Ship to: {address or 'collect in store'}",
        *(
            f"  {ln.quantity} x {ln.name} (#{ln.product_id}) @ {ln.price_cents / 100:.2f}"
            f" = {ln.subtotal_cents / 100:.2f}"
            for ln in lines
        ),
        f"Total: {total_cents / 100:.2f} EUR incl. VAT. Free delivery in 3-5 working days.",
        "Returns are accepted within 30 days; reply to this email or visit /returns.",
        f"Thank you for shopping at {SHOP_NAME}.",
    ]
    return "\n".join(body)


class Store:
    """The shop's operations on its database; safe to call from many threads."""

    def __init__(self, db: Database) -> None:
        self.db = db
        conn = db.connection()
        self.categories: tuple[str, ...] = tuple(
            r[0] for r in conn.execute("SELECT DISTINCT category FROM products ORDER BY 1")
        )

    def list_products(
        self, *, page: int, per_page: int, q: str = "", category: str = ""
    ) -> tuple[list[Product], int]:
        where, params = self._filters(q, category)
        conn = self.db.connection()
        total = conn.execute(f"SELECT count(*) FROM products{where}", params).fetchone()[0]
        rows = conn.execute(
            f"SELECT {_PRODUCT_COLUMNS} FROM products{where} ORDER BY id LIMIT ? OFFSET ?",
            (*params, per_page, (page - 1) * per_page),
        ).fetchall()
        return [Product(*r) for r in rows], int(total)

    def search(self, q: str, *, limit: int) -> tuple[list[Product], int]:
        return self.list_products(page=1, per_page=limit, q=q)

    @staticmethod
    def _filters(q: str, category: str) -> tuple[str, tuple[str, ...]]:
        clauses: list[str] = []
        params: list[str] = []
        if q:
            clauses.append("(name LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\')")
            params += [like_pattern(q)] * 2
        if category:
            clauses.append("category = ?")
            params.append(category)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        return where, tuple(params)

    def product(self, product_id: int) -> Product | None:
        row = (
            self.db.connection()
            .execute(
                f"SELECT {_PRODUCT_COLUMNS}, description FROM products WHERE id = ?", (product_id,)
            )
            .fetchone()
        )
        return Product(*row) if row else None

    def cart(self, items: Mapping[str, int]) -> Cart:
        """Price a session's `{product_id: quantity}`; products that vanished are dropped."""
        if not items:
            return Cart(())
        ids = [int(k) for k in items]
        marks = ",".join("?" * len(ids))
        rows = (
            self.db.connection()
            .execute(f"SELECT id, name, price_cents FROM products WHERE id IN ({marks})", ids)
            .fetchall()
        )
        by_id = {r[0]: r for r in rows}
        return Cart(
            tuple(
                Line(pid, by_id[pid][1], by_id[pid][2], items[str(pid)])
                for pid in ids
                if pid in by_id
            )
        )

    def place_order(
        self,
        items: Mapping[str, int],
        *,
        email: str,
        name: str,
        address: str = "",
        notes: str = "",
        user_agent: str = "",
    ) -> Order:
        """Write the order and its lines in one transaction; raises EmptyCart."""
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self.db.write() as conn:
            # Priced inside the transaction so the order matches the catalogue it was written in.
            cart = self.cart(items)
            if not cart.lines:
                raise EmptyCart("cart is empty")
            total = cart.total_cents
            # BEGIN IMMEDIATE holds the write lock, so max(id) + 1 is ours: the receipt can
            # name the order in the same INSERT.
            next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM orders").fetchone()
            order_id = int(next_id[0])
            receipt = receipt_text(order_id, name, email, address, cart.lines, total, created_at)
            conn.execute(
                "INSERT INTO orders (id, email, name, address, notes, receipt, user_agent,"
                " total_cents, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    order_id,
                    email,
                    name,
                    address,
                    notes,
                    receipt,
                    user_agent[:200],
                    total,
                    created_at,
                ),
            )
            conn.executemany(
                "INSERT INTO order_lines (order_id, product_id, name, unit_price_cents, quantity)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (order_id, ln.product_id, ln.name, ln.price_cents, ln.quantity)
                    for ln in cart.lines
                ],
            )
        return Order(order_id, email, name, address, notes, total, created_at, cart.lines)

    def order(self, order_id: int) -> Order | None:
        conn = self.db.connection()
        row = conn.execute(
            "SELECT id, email, name, address, notes, total_cents, created_at FROM orders"
            " WHERE id = ?",
            (order_id,),
        ).fetchone()
        if row is None:
            return None
        lines = conn.execute(
            "SELECT product_id, name, unit_price_cents, quantity FROM order_lines"
            " WHERE order_id = ? ORDER BY id",
            (order_id,),
        ).fetchall()
        order_id, email, name, address, notes, total_cents, created_at = row
        return Order(
            order_id,
            email,
            name,
            address,
            notes,
            total_cents,
            created_at,
            tuple(Line(*ln) for ln in lines),
        )

    def user_name(self, email: str) -> str | None:
        row = (
            self.db.connection()
            .execute("SELECT name FROM users WHERE email = ?", (email,))
            .fetchone()
        )
        return str(row[0]) if row else None
