"""Small real HTTP servers for tests: they count what they receive, and can answer slowly."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients stopped mid-request at the end of a run: expected


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

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the delayed ACK adds 40 ms.
            disable_nagle_algorithm = True

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with server._lock:
                    server.count += 1
                    path = self.path.split("?")[0]
                    server.per_path[path] = server.per_path.get(path, 0) + 1
                    second = int(time.time())
                    server.per_second[second] = server.per_second.get(second, 0) + 1
                if server.delay_s:
                    time.sleep(server.delay_s)
                body = json.dumps({"items": [{"id": 1}], "ok": True}).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler, host)


class ResettingServer(LoopbackServer):
    """Reads each request, counts it, then resets the connection (RST, no answer): the shop
    behind a load balancer that drops connections. `/health` answers 204, uncounted."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reset(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.path == "/health":  # the runner's reachability check gets an answer
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
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

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler)
        self._httpd.shutdown_request = lambda request: request.close()  # type: ignore[method-assign]


class RedirectServer(LoopbackServer):
    """`/start` leads through `hops` redirects (`status`: `/hop/1`, `/hop/2`, ...) to `/end`,
    which answers 200; `/loop` redirects to itself. Every request is kept as (method, path,
    body) in `seen`."""

    def __init__(self, hops: int = 3, status: int = 302) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
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
                    self.send_response(status)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                payload = json.dumps({"ok": True, "method": self.command}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler)

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

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                got = self.headers.get("Cookie") or ""
                with server._lock:
                    server.seen.append((self.path, got))
                    number = len(server.seen)
                payload = json.dumps({"cookie": got}).encode()
                self.send_response(200)
                self.send_header("Set-Cookie", f"visitor={number}; Path=/")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler)


class StallingServer(LoopbackServer):
    """Reads each request, counts it, and never answers (until the server shuts down): a shop
    whose workers all hang. `/health` answers 204, uncounted."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _hang(self) -> None:
                if self.path == "/health":
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with server._lock:
                    server.count += 1
                server._closing.wait(120)
                self.close_connection = True

            do_GET = do_POST = _hang

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler)

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

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _answer(self) -> None:
                from urllib.parse import parse_qs, urlsplit

                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                with server._lock:
                    server.per_path[parts.path] = server.per_path.get(parts.path, 0) + 1
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                segments = parts.path.strip("/").split("/")
                if segments[0] == "to" and len(segments) > 1:
                    self._send(int(segments[1]), b"", {"Location": query.get("url", "/")})
                elif segments[0] == "json":
                    self._send(200, json.dumps({"url": query.get("url")}).encode(),
                               {"Content-Type": "application/json"})
                elif segments[0] == "metrics":
                    self._send(200, b"shop_up 1\n", {"Content-Type": "text/plain"})
                elif segments[0] == "echo":
                    status = int(segments[1]) if len(segments) > 1 else 200
                    text = f"{self.requestline}\n{self.headers}\n".encode() + payload
                    self._send(status, text, {"Content-Type": "text/plain"})
                else:
                    self._send(200, b'{"ok": true, "items": [{"id": 1}]}',
                               {"Content-Type": "application/json"})

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler, host)
