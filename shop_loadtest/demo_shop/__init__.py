"""The demo storefront: a real small shop (Flask on SQLite, served by waitress) to load-test.

JSON API under /api, server-rendered pages with CSRF-protected forms, Prometheus metrics at
/metrics, and an optional storage cap that makes writes fail like a full disk.
See docs/demo-shop.md.

>>> with DemoShop(tmp_path / "shop.sqlite", storage_limit_mb=2) as shop:  # doctest: +SKIP
...     print(shop.url)
http://127.0.0.1:54321

It never imports locust, requests or urllib3 (gevent patches them).
"""

from __future__ import annotations

from shop_loadtest.demo_shop.app import create_app
from shop_loadtest.demo_shop.server import DemoShop, serve

__all__ = ["DemoShop", "create_app", "serve"]
