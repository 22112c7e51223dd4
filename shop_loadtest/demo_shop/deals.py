"""Flash deals: a few products at a limited quantity, so a load test meets a product that
sells out for real (a claim answers 409 once a deal's stock is gone) and an API whose bodies
carry absolute URLs, as many shop APIs do.

The stock is counted in memory, per shop process: a deal sold out stays sold out until the
shop restarts, like a real promotion's limited stock. The last deal has stock enough for
any test, so a journey that moves on to another deal always finds one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

# product id -> units offered; deals are listed (and tried) in this order
DEAL_STOCK: dict[int, int] = {1: 5, 2: 5, 3: 5, 4: 1_000_000}


class SoldOut(Exception):
    """A claim of a deal with no stock left: the caller answers 409."""


@dataclass
class Deal:
    product_id: int
    stock: int


class Deals:
    """The shop's deals and their remaining stock, safe to claim from many threads."""

    def __init__(self, stock: dict[int, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._deals = {pid: Deal(pid, units) for pid, units in (stock or DEAL_STOCK).items()}

    def all(self) -> list[Deal]:
        with self._lock:
            return [Deal(d.product_id, d.stock) for d in self._deals.values()]

    def get(self, product_id: int) -> Deal | None:
        with self._lock:
            deal = self._deals.get(product_id)
            return None if deal is None else Deal(deal.product_id, deal.stock)

    def claim(self, product_id: int) -> Deal:
        """Take one unit; KeyError for no such deal, SoldOut when none is left."""
        with self._lock:
            deal = self._deals[product_id]
            if deal.stock <= 0:
                raise SoldOut(f"deal {product_id} is sold out")
            deal.stock -= 1
            return Deal(deal.product_id, deal.stock)
