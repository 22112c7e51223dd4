"""A hand-written Locust user class that scenarios can run beside their generated journeys.

    journeys:
      - name: vip
        weight: 1
        class: ../locustfiles/custom.py:VipBuyer   # relative to the scenario file

The generated locustfile imports this file by its path and runs `VipBuyer` (with the journey's
weight) next to the generated user classes: use it for what the scenario language cannot say.
Its requests are recorded like any other.
"""

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser


class VipBuyer(FastHttpUser):
    """Early-access members: they know what they want, buy two of it, and check the order."""

    wait_time = between(1, 3)

    @task
    def buy_the_top_product(self) -> None:
        with self.client.get("/api/products?page=1", name="GET /api/products",
                             catch_response=True) as resp:
            items = (resp.json() or {}).get("items") or []
            if not items:
                resp.failure("no products listed")
                return
        product_id = max(items, key=lambda p: p["price"])["id"]
        self.client.post("/api/cart/items", json={"product_id": product_id, "quantity": 2},
                         name="POST /api/cart/items")
        with self.client.post("/api/checkout", json={"email": "vip@example.test", "name": "VIP"},
                              name="POST /api/checkout", catch_response=True) as resp:
            if resp.status_code != 201:
                resp.failure(f"HTTP {resp.status_code}")
                return
            order_id = resp.json()["order_id"]
        self.client.get(f"/api/orders/{order_id}", name="GET /api/orders/{id}")
