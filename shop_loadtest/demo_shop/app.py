"""The shop's Flask app, built in one place from its parts: database, store, API, pages, metrics."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from flask import Flask, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from shop_loadtest.demo_shop.api import build_api
from shop_loadtest.demo_shop.db import Database, is_busy, is_disk_full
from shop_loadtest.demo_shop.html import build_html
from shop_loadtest.demo_shop.metrics import ShopMetrics
from shop_loadtest.demo_shop.seed import seed_if_empty
from shop_loadtest.demo_shop.store import Store
from shop_loadtest.errors import InputError

DISK_FULL = "database or disk is full"
MB = 1_000_000


def create_app(
    db_path: Path, *, storage_limit_mb: float | None = None, products: int = 300, seed: int = 42
) -> Flask:
    """The demo shop on the SQLite file `db_path`, created and seeded if missing.

    `storage_limit_mb` caps the database (MB = 10**6 bytes); past it every write fails like on
    a full disk and checkout answers 507. `products` and `seed` shape a new catalogue only.
    """
    if storage_limit_mb is not None and not storage_limit_mb > 0:
        raise InputError(f"storage limit must be a positive number of MB, not {storage_limit_mb}")
    if products < 1:
        raise InputError(f"the catalogue needs at least 1 product, not {products}")
    limit = None if storage_limit_mb is None else int(storage_limit_mb * MB)
    db = Database(Path(db_path), storage_limit_bytes=limit)
    secret = seed_if_empty(db, products=products, seed=seed)
    store = Store(db)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="shop_session",
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["demo_shop"] = {"db": db, "store": store}
    ShopMetrics(db).install(app)
    app.register_blueprint(build_api(store))
    app.register_blueprint(build_html(store))

    @app.get("/health")
    def health() -> dict[str, str]:
        db.connection().execute("SELECT 1").fetchone()
        return {"status": "ok"}

    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(sqlite3.OperationalError, _database_error)
    return app


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/health", "/metrics")


def _error(status: int, name: str, message: str) -> tuple[Any, int]:
    if _wants_json():
        return {"error": message}, status
    return render_template("error.html", code=status, name=name, message=message), status


def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    body, _ = _error(status, exc.name, exc.description or exc.name)
    allow = {k: v for k, v in exc.get_headers() if k == "Allow"}  # keep 405's Allow header
    return body, status, allow


def _database_error(exc: sqlite3.OperationalError) -> Any:
    if is_disk_full(exc):
        return _error(507, "Insufficient Storage", DISK_FULL)
    if is_busy(exc):
        return (
            *_error(503, "Service Unavailable", "database is busy, try again"),
            {"Retry-After": "1"},
        )
    current_app.logger.error("database error on %s %s", request.method, request.path, exc_info=exc)
    return _error(500, "Internal Server Error", "database error")
