"""Small real HTTP servers for tests: they count what they receive, and can answer slowly."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


def read_request(conn: socket.socket, pending: bytes = b"") -> tuple[bytes, bytes, bytes] | None:
    """The next request on a raw connection: (head, body by its Content-Length, what was read
    beyond it), or None when the peer closed first. `pending` is what an earlier call left."""
    data = pending
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, data = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(data) < length:
        chunk = conn.recv(1 << 20)
        if not chunk:
            return None
        data += chunk
    return head, data[:length], data[length:]


class RawServer:
    """A loopback TCP server for HTTP written by hand: `serve(conn)` answers one connection
    (in a thread of its own when `threaded`, else one connection after the other). It counts
    connections."""

    threaded = True

    def __init__(self) -> None:
        self.connections = 0
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._srv.getsockname()[1]}"

    def __enter__(self) -> Self:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._srv.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            self.connections += 1
            if self.threaded:
                threading.Thread(target=self.serve, args=(conn,), daemon=True).start()
            else:
                self.serve(conn)

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients stopped mid-request at the end of a run: expected


class Handler(BaseHTTPRequestHandler):
    """What every test server's handler shares: HTTP/1.1 keep-alive, no Nagle (headers and
    body go out in two writes; with Nagle on, the delayed ACK adds 40 ms), no log lines."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str | None = "application/json") -> None:
        self.send_response(status)
        if content_type and body:
            self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class LoopbackServer:
    """`handler` on a free port of a loopback address (127.0.0.1 unless told), served from a
    daemon thread while entered."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1") -> None:
        self._httpd = _QuietServer((host, 0), handler)
        self.port = self._httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class CountingServer(LoopbackServer):
    """Counts requests per path and per second; sleeps `delay_s` before each answer."""

    def __init__(self, delay_s: float = 0.0, status: int = 200, host: str = "127.0.0.1") -> None:
        self.per_path: dict[str, int] = {}
        self.delay_s = delay_s
        self.status = status
        self.count = 0
        self.per_second: dict[int, int] = {}
        self._lock = threading.Lock()
        server = self

        class Counting(Handler):
            def _answer(self) -> None:
                self.body()
                with server._lock:
                    server.count += 1
                    path = self.path.split("?")[0]
                    server.per_path[path] = server.per_path.get(path, 0) + 1
                    second = int(time.time())
                    server.per_second[second] = server.per_second.get(second, 0) + 1
                if server.delay_s:
                    time.sleep(server.delay_s)
                self.reply(server.status, json.dumps({"items": [{"id": 1}], "ok": True}).encode())

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        super().__init__(Counting, host)


class ResettingServer(LoopbackServer):
    """Reads each request, counts it, then resets the connection (RST, no answer): the shop
    behind a load balancer that drops connections. `/health` answers 204, uncounted."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        server = self

        class Resetting(Handler):
            def _reset(self) -> None:
                self.body()
                if self.path == "/health":  # the runner's reachability check gets an answer
                    self.reply(204)
                    return
                with server._lock:
                    server.count += 1
                # SO_LINGER 0: close() sends RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.close_connection = True

            do_GET = do_POST = do_HEAD = _reset

            def finish(self) -> None:
                self.connection.close()  # no shutdown(): that would send a FIN first

        super().__init__(Resetting)
        self._httpd.shutdown_request = lambda request: request.close()  # type: ignore[method-assign]


class RedirectServer(LoopbackServer):
    """`/start` leads through `hops` redirects (`status`: `/hop/1`, `/hop/2`, ...) to `/end`,
    which answers 200; `/loop` redirects to itself. Every request is kept as (method, path,
    body) in `seen`."""

    def __init__(self, hops: int = 3, status: int = 302) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()
        server = self

        class Redirecting(Handler):
            def _answer(self) -> None:
                body = self.body()
                with server._lock:
                    server.seen.append((self.command, self.path, body))
                if self.path == "/start":
                    target = "/hop/1" if hops > 1 else "/end"
                elif self.path.startswith("/hop/"):
                    k = int(self.path.rsplit("/", 1)[1])
                    target = f"/hop/{k + 1}" if k + 1 < hops else "/end"
                elif self.path == "/loop":
                    target = "/loop"
                else:
                    target = None
                if target is not None:
                    self.reply(status, headers={"Location": target})
                    return
                self.reply(200, json.dumps({"ok": True, "method": self.command}).encode())

            do_GET = do_POST = do_PUT = _answer

        super().__init__(Redirecting)

    def count(self, prefix: str = "/") -> int:
        with self._lock:
            return sum(1 for _, path, _ in self.seen if path.startswith(prefix))


class CookieServer(LoopbackServer):
    """Sets a `visitor` cookie on every answer and keeps (path, Cookie header) of every
    request in `seen` ("" when none came); the body says what it got, `{"cookie": ...}`."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Cookies(Handler):
            def do_GET(self) -> None:
                got = self.headers.get("Cookie") or ""
                with server._lock:
                    server.seen.append((self.path, got))
                    number = len(server.seen)
                self.reply(200, json.dumps({"cookie": got}).encode(),
                           {"Set-Cookie": f"visitor={number}; Path=/"})

        super().__init__(Cookies)


class StallingServer(LoopbackServer):
    """Reads each request, counts it, and never answers (until the server shuts down): a shop
    whose workers all hang. `/health` answers 204, uncounted."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        server = self

        class Stalling(Handler):
            def _hang(self) -> None:
                if self.path == "/health":
                    self.reply(204)
                    return
                with server._lock:
                    server.count += 1
                server._closing.wait(120)
                self.close_connection = True

            do_GET = do_POST = _hang

        super().__init__(Stalling)

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        super().__exit__(*exc)


class RouteServer(LoopbackServer):
    """A small shop double: `/to/<status>?url=U` answers that status with `Location: U`,
    `/json?url=U` answers `{"url": U}`, `/metrics` a Prometheus sample, `/echo/<status>` that
    status with the request (line, headers, body) as its body; anything else `{"ok": true}`.
    Counts requests per path."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.per_path: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Routes(Handler):
            def _answer(self) -> None:
                from urllib.parse import parse_qs, urlsplit

                payload = self.body()
                parts = urlsplit(self.path)
                with server._lock:
                    server.per_path[parts.path] = server.per_path.get(parts.path, 0) + 1
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                segments = parts.path.strip("/").split("/")
                if segments[0] == "to" and len(segments) > 1:
                    self.reply(int(segments[1]), headers={"Location": query.get("url", "/")})
                elif segments[0] == "json":
                    self.reply(200, json.dumps({"url": query.get("url")}).encode())
                elif segments[0] == "metrics":
                    self.reply(200, b"shop_up 1\n", content_type="text/plain")
                elif segments[0] == "echo":
                    status = int(segments[1]) if len(segments) > 1 else 200
                    text = f"{self.requestline}\n{self.headers}\n".encode() + payload
                    self.reply(status, text, content_type="text/plain")
                else:
                    self.reply(200, b'{"ok": true, "items": [{"id": 1}]}')

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

        super().__init__(Routes, host)
