"""Serve the shop with waitress: in a background thread (`DemoShop`) or blocking (`serve`)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

from flask import Flask
from waitress import wasyncore
from waitress.server import BaseWSGIServer, create_server

from shop_loadtest.demo_shop.app import create_app
from shop_loadtest.demo_shop.db import Database
from shop_loadtest.errors import RunError

# A load-test target: many kept-alive client connections (waitress's default cap is 100), and
# poll() rather than select(), which cannot watch file descriptors past 1023.
SERVER_OPTIONS: dict[str, Any] = {
    "connection_limit": 2000,
    "asyncore_use_poll": True,
    "backlog": 2048,
    "channel_timeout": 60,
    "ident": "demo-shop",
}


def _make_server(app: Flask, host: str, port: int, threads: int) -> BaseWSGIServer:
    # A queue of requests is the normal state of a load-test target, not worth a warning per
    # request (waitress logs "Task queue depth is N" each time); /metrics shows the load.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    try:
        server = create_server(app, host=host, port=port, threads=threads, **SERVER_OPTIONS)
    except OSError as exc:
        _database(app).close()
        raise RunError(
            f"the demo shop cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from exc
    assert isinstance(server, BaseWSGIServer)  # one listen address, so one plain server
    return server


def _url(server: BaseWSGIServer) -> str:
    host = server.effective_host
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"http://{host}:{server.effective_port}"


def _database(app: Flask) -> Database:
    db: Database = app.extensions["demo_shop"]["db"]
    return db


def _leave_loop(server: BaseWSGIServer, parked: dict[int, Any]) -> Callable[[], None]:
    """A thunk for the loop's own thread: with its map emptied, waitress's loop returns.

    The sockets are parked, not closed, until `_close_server`: a worker still finishing a
    request pulls the trigger pipe, and must not write to a descriptor number already reused.
    """
    server_map = server._map

    def leave() -> None:
        parked.update(server_map)
        server_map.clear()

    return leave


def _close_server(server: BaseWSGIServer, app: Flask, parked: dict[int, Any]) -> None:
    """Once the loop has returned: stop the workers, then close every socket and the database."""
    server.task_dispatcher.shutdown(timeout=5)
    wasyncore.close_all({**parked, **server._map})
    server._map.clear()
    _database(app).close()


class DemoShop:
    """The demo shop in a background thread, for tests and embedding.

    >>> with DemoShop(tmp_path / "shop.sqlite") as shop:  # doctest: +SKIP
    ...     urllib.request.urlopen(shop.url + "/health")
    """

    def __init__(
        self,
        db_path: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        storage_limit_mb: float | None = None,
        threads: int = 8,
    ) -> None:
        self.db_path = Path(db_path)
        self.host = host
        self.port = port
        self.storage_limit_mb = storage_limit_mb
        self.threads = threads
        self.app: Flask | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._server else f"{self.host}:{self.port} (stopped)"
        return f"DemoShop({str(self.db_path)!r}, {where})"

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the demo shop is not started; call start() first")
        return _url(self._server)

    def start(self) -> Self:
        if self._server is not None:
            return self
        self.app = create_app(self.db_path, storage_limit_mb=self.storage_limit_mb)
        self._server = _make_server(self.app, self.host, self.port, self.threads)
        self._thread = threading.Thread(
            target=self._server.run, name=f"demo-shop:{self._server.effective_port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None or thread is None:
            return
        parked: dict[int, Any] = {}
        server.trigger.pull_trigger(_leave_loop(server, parked))
        thread.join(timeout=10)
        assert self.app is not None
        _close_server(server, self.app, parked)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # waitress's run() treats KeyboardInterrupt as "stop serving", so SIGTERM acts as Ctrl-C.
    raise KeyboardInterrupt


def serve(
    db_path: Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    storage_limit_mb: float | None = None,
    threads: int = 8,
    *,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve the shop until SIGINT or SIGTERM; blocking, for the command line.

    Prints `demo shop listening on http://HOST:PORT` once listening (the real port when
    `port=0`), or hands that line to `announce`.
    """
    app = create_app(Path(db_path), storage_limit_mb=storage_limit_mb)
    server = _make_server(app, host, port, threads)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    try:
        line = f"demo shop listening on {_url(server)}"
        if announce is None:
            print(line, file=sys.stdout, flush=True)
        else:
            announce(line)
        server.run()  # returns after KeyboardInterrupt, having stopped its worker threads
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        _close_server(server, app, {})
