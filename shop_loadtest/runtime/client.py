"""The users' HTTP client settings: each request is sent once, within a time limit.

geventhttpclient's `HTTPClient.request` silently sends an idempotent request again, up to
`connection pool size + 1` times, when the connection breaks (a reset, a closed keep-alive
socket): against a shop that resets connections the shop saw 12 requests for each one
reported. `SingleTryClientPool` gives every client a retry budget of zero, so a broken
connection is one failed request, as the shop saw it. A stale keep-alive socket does not need
the retry: the connection pool already checks a reused socket before sending on it.

A request's time limit covers connecting, sending and the whole answer (not only one socket
read): `RequestTimer` throws `RequestTimeout` (a `TimeoutError`, so the client releases the
socket as for any socket error) into the user's greenlet when it runs out.

Plain-HTTP connections go through `LeanConnectionPool`, whose sockets send a request that fits
in one `send()` without gevent's `sendall` asking the kernel for the send buffer size first
(`getsockopt`, on every call). The keep-alive check before a socket is reused stays
geventhttpclient's own `select()`: a socket the server closed while it sat in the pool is seen
as closed and replaced, never sent on. A `poll()` object per socket was measured instead and
not kept: cheaper alone (0.6 us against 7 us a check), it cost 8-12% of requests per
CPU-second with 20 concurrent users in three A/B runs (docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import gevent
import gevent.socket
from geventhttpclient.client import HTTPClient, HTTPClientPool
from geventhttpclient.connectionpool import ConnectionPool
from geventhttpclient.url import URL


class LeanSocket(gevent.socket.socket):
    """A gevent socket whose `sendall` tries one plain `send()` first."""

    __slots__ = ()

    def sendall(self, data: Any, flags: int = 0) -> None:
        # gevent's sendall calls getsockopt(SO_SNDBUF) on every call, to size its chunks; a
        # request of a few hundred bytes goes out in one send on a socket that can take it.
        try:
            sent = self._sock.send(data, flags)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            super().sendall(memoryview(data)[sent:], flags)


class LeanConnectionPool(ConnectionPool):
    """geventhttpclient's plain-HTTP pool with `LeanSocket`s: the same sockets, checks and
    errors, one system call fewer per request."""

    def _create_tcp_socket(self, family: int, socktype: int, protocol: int) -> Any:
        return LeanSocket(family, socktype, protocol)


class RequestTimeout(TimeoutError):
    """A request that got no complete answer within its timeout."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within {seconds:g} s")
        self.seconds = seconds


class SingleTryClientPool(HTTPClientPool):
    """An `HTTPClientPool` whose clients send each request once."""

    def get_client(self, url: str | URL) -> HTTPClient:
        if not isinstance(url, URL):
            url = URL(url)
        key = url.host, url.port
        client = self.clients.get(key)
        if client is None:
            client = self.clients[key] = HTTPClient.from_url(url, **self.client_args)
            # HTTPClient.request allows `_connection_pool.size + 1` more tries after a broken
            # connection, and reads `size` for nothing else (geventhttpclient 2.6); the pool's
            # semaphore and queue were sized at construction and keep the real size.
            client._connection_pool.size = -1
            if type(client._connection_pool) is ConnectionPool:  # TLS keeps its own pool
                client._connection_pool.__class__ = LeanConnectionPool
        return client


def send_once(session: Any) -> None:
    """Make a FastHttpSession (before its first request) send each request once: no retries
    in its clients, nor in its user agent (FastHttpUser sets `max_retries = 0` already; a
    session made another way gets geventhttpclient's default of 3)."""
    agent = session.client
    agent.max_retries = 0
    agent.clientpool = SingleTryClientPool(**agent.clientpool.client_args)


class RequestTimer:
    """A time limit for one greenlet's requests, one at a time: `start(seconds)` before a
    request, `cancel()` after it; `fired` tells that it ran out (the caller resets it).

    One libev timer per timeout value, re-armed with `again()` (about 0.1 us). Not
    `gevent.Timeout`: it costs about 7 us to set up, and a reused one does not restart from
    zero (seen with gevent 26.9: restarted, it fired at once).
    """

    __slots__ = ("_loop", "_timer", "_timers", "fired")

    def __init__(self) -> None:
        self._loop = gevent.get_hub().loop
        self._timers: dict[float, Any] = {}
        self._timer: Any = None
        self.fired = False

    def start(self, seconds: float) -> None:
        timer = self._timers.get(seconds)
        if timer is None:
            timer = self._timers[seconds] = self._loop.timer(seconds, seconds)
        self._timer = timer
        timer.again(self._expire, gevent.getcurrent(), seconds, update=True)

    def cancel(self) -> None:
        self._timer.stop()

    def _expire(self, greenlet: Any, seconds: float) -> None:
        self._timer.stop()  # it repeats otherwise
        self.fired = True
        greenlet.throw(RequestTimeout(seconds))
