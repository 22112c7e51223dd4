"""The JSON API under /api: catalogue, search, cart, checkout, orders, login.

Cookie-session based like the HTML pages, but exempt from CSRF (token-less JSON clients).
Errors are `{"error": "..."}` with the status (rendered by the app's error handlers).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, request, url_for

from shop_loadtest.demo_shop import inputs, sessions
from shop_loadtest.demo_shop.deals import Deal, Deals, SoldOut
from shop_loadtest.demo_shop.seed import DEMO_PASSWORD
from shop_loadtest.demo_shop.store import MAX_PAGE, MAX_PER_PAGE, MAX_QUANTITY, EmptyCart, Store

Json = dict[str, Any]


def build_api(store: Store) -> Blueprint:
    """The /api blueprint, bound to one store."""
    bp = Blueprint("api", __name__, url_prefix="/api")
    deals = Deals()

    def deal_json(deal: Deal) -> Json:
        product = store.product(deal.product_id)
        return {
            "id": deal.product_id,
            "name": product.name if product is not None else "",
            "stock": deal.stock,
            # absolute, as many shop APIs write them (and what {{ base_url }} is for)
            "url": url_for("api.get_deal", id=deal.product_id, _external=True),
            "claim_url": url_for("api.claim_deal", id=deal.product_id, _external=True),
        }

    @bp.get("/deals")
    def list_deals() -> Json:
        return {"items": [deal_json(d) for d in deals.all()]}

    @bp.get("/deals/<int:id>")
    def get_deal(id: int) -> Json:
        deal = deals.get(id)
        if deal is None:
            abort(404, description=f"deal {id} not found")
        return deal_json(deal)

    @bp.post("/deals/<int:id>/claim")
    def claim_deal(id: int) -> tuple[Json, int]:
        try:
            deal = deals.claim(id)
        except KeyError:
            abort(404, description=f"deal {id} not found")
        except SoldOut as exc:
            abort(409, description=str(exc))
        sessions.add_to_cart(id, 1)
        return deal_json(deal), 201

    @bp.get("/products")
    def list_products() -> Json:
        args = request.args
        page = inputs.positive_int(args.get("page"), "page", default=1, maximum=MAX_PAGE)
        per_page = inputs.positive_int(
            args.get("per_page"), "per_page", default=20, maximum=MAX_PER_PAGE
        )
        items, total = store.list_products(
            page=page,
            per_page=per_page,
            q=args.get("q", "").strip(),
            category=args.get("category", "").strip(),
        )
        return {
            "items": [p.to_json() for p in items],
            "page": page,
            "per_page": per_page,
            "total": total,
        }

    @bp.get("/products/<int:id>")
    def get_product(id: int) -> Json:
        product = store.product(id)
        if product is None:
            abort(404, description=f"product {id} not found")
        return product.to_json(detail=True)

    @bp.get("/search")
    def search() -> Json:
        q = inputs.text(request.args.get("q"), "q", required=True)
        limit = inputs.positive_int(
            request.args.get("limit"), "limit", default=20, maximum=MAX_PER_PAGE
        )
        items, total = store.search(q, limit=limit)
        return {"items": [p.to_json() for p in items], "total": total}

    @bp.get("/cart")
    def get_cart() -> Json:
        return store.cart(sessions.cart_items()).to_json()

    @bp.post("/cart/items")
    def add_cart_item() -> tuple[Json, int]:
        body = inputs.json_object()
        product_id = inputs.positive_int(body.get("product_id"), "product_id")
        quantity = inputs.positive_int(
            body.get("quantity"), "quantity", default=1, maximum=MAX_QUANTITY
        )
        if store.product(product_id) is None:
            abort(404, description=f"product {product_id} not found")
        sessions.add_to_cart(product_id, quantity)
        return store.cart(sessions.cart_items()).to_json(), 201

    @bp.delete("/cart/items/<int:product_id>")
    def remove_cart_item(product_id: int) -> Json:
        if not sessions.remove_from_cart(product_id):
            abort(404, description=f"product {product_id} is not in the cart")
        return store.cart(sessions.cart_items()).to_json()

    @bp.post("/checkout")
    def checkout() -> tuple[Json, int, dict[str, str]]:
        body = inputs.json_object()
        try:
            order = store.place_order(
                sessions.cart_items(),
                email=inputs.email(body.get("email")),
                name=inputs.text(body.get("name"), "name", required=True),
                address=inputs.text(body.get("address"), "address", max_len=1000),
                notes=inputs.text(body.get("notes"), "notes", max_len=1000),
                user_agent=request.headers.get("User-Agent", ""),
            )
        except EmptyCart:
            abort(400, description="cart is empty")
        sessions.clear_cart()
        location = url_for("api.get_order", id=order.id)
        return (
            {
                "order_id": order.id,
                "total": order.total_cents / 100,
                "lines": [line.to_json() for line in order.lines],
            },
            201,
            {"Location": location},
        )

    @bp.get("/orders/<int:id>")
    def get_order(id: int) -> Json:
        order = store.order(id)
        if order is None:
            abort(404, description=f"order {id} not found")
        return order.to_json()

    @bp.post("/login")
    def login() -> Json:
        body = inputs.json_object()
        email = inputs.email(body.get("email"))
        if body.get("password") != DEMO_PASSWORD:
            abort(401, description="invalid email or password")
        name = store.user_name(email) or email.partition("@")[0]
        sessions.log_in(email, name)
        return {"email": email, "name": name}

    @bp.post("/logout")
    def logout() -> Json:
        sessions.log_out()
        return {"status": "logged out"}

    @bp.get("/me")
    def me() -> Json:
        user = sessions.current_user()
        if user is None:
            abort(401, description="not logged in")
        return user

    return bp
