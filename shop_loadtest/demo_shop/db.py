"""The shop's SQLite file: schema, one connection per thread, serialised write transactions.

Why it never says "database is locked": the file is in WAL mode (readers never block the
writer), every write runs in `BEGIN IMMEDIATE` (takes the write lock up front, so two
transactions cannot deadlock upgrading from read to write), writers in this process queue on a
`threading.Lock` instead of SQLite's sleep-and-retry busy handler, and a busy_timeout covers
writers in other processes.

A storage cap is SQLite's `max_page_count` on every connection: growing the file past it fails
with SQLITE_FULL, "database or disk is full", exactly as a full disk does.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shop_loadtest.errors import RunError

BUSY_TIMEOUT_S = 30.0
TABLES = ("products", "users", "orders", "order_lines")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS products (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    category    TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    stock       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS products_category ON products (category);
CREATE TABLE IF NOT EXISTS users (
    id    INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id          INTEGER PRIMARY KEY,
    email       TEXT NOT NULL,
    name        TEXT NOT NULL,
    address     TEXT NOT NULL,
    notes       TEXT NOT NULL,
    receipt     TEXT NOT NULL,
    user_agent  TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_email ON orders (email);
CREATE TABLE IF NOT EXISTS order_lines (
    id               INTEGER PRIMARY KEY,
    order_id         INTEGER NOT NULL REFERENCES orders (id),
    product_id       INTEGER NOT NULL REFERENCES products (id),
    name             TEXT NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    quantity         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS order_lines_order ON order_lines (order_id);
"""


def is_disk_full(exc: BaseException) -> bool:
    """SQLITE_FULL: the storage cap was hit, or the disk is really full."""
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def is_busy(exc: BaseException) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class Database:
    """The shop's SQLite file, with one reused connection per thread.

    >>> db = Database(Path("shop.sqlite"), storage_limit_bytes=2_000_000)  # doctest: +SKIP
    >>> with db.write() as conn:  # doctest: +SKIP
    ...     conn.execute("INSERT INTO ...")
    """

    def __init__(self, path: Path, *, storage_limit_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.storage_limit_bytes = storage_limit_bytes
        self._local = threading.local()
        self._registry_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._write_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            setup = self._open()
            try:
                # WAL is a property of the file: set once here, not on every connection.
                setup.execute("PRAGMA journal_mode = WAL")
                setup.executescript(SCHEMA)
                self.page_size: int = setup.execute("PRAGMA page_size").fetchone()[0]
            finally:
                setup.close()
        except (sqlite3.Error, OSError) as exc:
            raise RunError(f"cannot open the demo shop database {self.path}: {exc}") from exc
        self.max_page_count: int | None = (
            None if storage_limit_bytes is None else max(1, storage_limit_bytes // self.page_size)
        )

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r}, storage_limit_bytes={self.storage_limit_bytes!r})"

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False only so
        # that close() may close every thread's connection; each is used by one thread.
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL mode, far faster
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (with the storage cap) on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            if self.max_page_count is not None:
                conn.execute(f"PRAGMA max_page_count = {int(self.max_page_count)}")
            self._local.conn = conn
            with self._registry_lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def write(self, *, capped: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE ... COMMIT, rolled back on any error.

        `capped=False` uses a fresh connection without the storage cap (seeding only).
        """
        conn = self.connection() if capped else self._open()
        try:
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    # SQLITE_FULL may already have rolled the transaction back itself.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        finally:
            if not capped:
                conn.close()

    @property
    def open_connections(self) -> int:
        with self._registry_lock:
            return len(self._connections)

    def size_bytes(self) -> int:
        conn = self.connection()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        return int(pages) * self.page_size

    def row_counts(self) -> dict[str, int]:
        conn = self.connection()
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}

    def close(self) -> None:
        """Close every thread's connection; call once no request is running."""
        with self._registry_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()
