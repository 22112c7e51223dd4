"""The users' HTTP client settings (runtime/client.py) and per-journey sessions
(runtime/sessions.py), for real: FastHttpSessions in a subprocess (locust patches the process
with gevent) against loopback servers that reset connections or never answer."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.servers import RawServer, ResettingServer, StallingServer, read_request
from tests.test_arrivals import in_engine

SESSION = """
    import json, time
    from locust.env import Environment
    from locust.contrib.fasthttp import FastHttpSession
    from shop_loadtest.runtime.client import RequestTimer, send_once
    from shop_loadtest.runtime.recorder import describe_failure

    seen = []
    env = Environment()
    env.events.request.add_listener(
        lambda exception=None, response=None, response_time=0, **kw:
            seen.append([describe_failure(exception, response), response_time]))

    def session(once):
        s = FastHttpSession(URL, request_event=env.events.request, user=None,
                            network_timeout=30.0, connection_timeout=30.0)
        if once:
            send_once(s)
        return s
"""


def _run(code: str, url: str) -> Any:
    return in_engine(SESSION.replace("URL", repr(url)) + code)


def test_the_library_alone_retries_a_reset_and_send_once_sends_once():
    with ResettingServer() as server:
        got = _run("""
    counts = {}
    for once in (False, True):
        s = session(once)
        for _ in range(5):
            s.request(METHOD, "/x", name="x")
        counts[once] = len(seen)
    print(json.dumps(counts))
    """.replace("METHOD", '"GET"'), server.url)
        received = server.count
    # 5 requests sent once each, after 5 that geventhttpclient sent up to 12 times each
    assert got == {"false": 5, "true": 10}
    assert received > 5 + 5 + 5  # the library's hidden retries, seen by the shop
    with ResettingServer() as server:
        _run("""
    s = session(True)
    for _ in range(7):
        s.request("GET", "/x", name="x")
    print(json.dumps(len(seen)))
    """, server.url)
        assert server.count == 7


def test_a_timed_out_request_is_kind_timeout_and_leaks_no_connection():
    with StallingServer() as server:
        got = _run("""
    s = session(True)
    timer = RequestTimer()
    took = []
    for _ in range(12):  # more than the pool's 10 connections: a leak would hang here
        began = time.perf_counter()
        timer.start(0.2)
        try:
            s.request("GET", "/x", name="x")
        finally:
            timer.cancel()
        took.append(time.perf_counter() - began)
        assert timer.fired
        timer.fired = False
    timer.start(5.0)
    timer.cancel()
    print(json.dumps({"seen": seen, "took": took, "fired": timer.fired}))
    """, server.url)
        received = server.count
    assert received == 12
    assert [kind for (kind, _), _ in got["seen"]] == ["timeout"] * 12
    assert all(0.15 <= t <= 3.0 for t in got["took"])
    assert got["fired"] is False  # a timer cancelled in time does not fire


class ClosingServer(RawServer):
    """Answers each request as HTTP/1.1 keep-alive (no `Connection: close`), then closes the
    connection anyway: what a server's idle timeout does to a socket sitting in the pool.
    It counts connections, requests and the body bytes it read."""

    threaded = False

    def __init__(self) -> None:
        super().__init__()
        self.requests = self.body_bytes = 0

    def serve(self, conn: socket.socket) -> None:
        with conn:
            request = read_request(conn)
            if request is None:
                return
            _, body, _ = request
            self.requests += 1
            self.body_bytes += len(body)
            answer = str(len(body)).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(answer)).encode()
                         + b"\r\n\r\n" + answer)


def test_a_kept_alive_socket_the_server_closed_is_replaced_not_sent_on():
    with ClosingServer() as server:
        got = _run("""
    from shop_loadtest.runtime.client import LeanConnectionPool
    s = session(True)
    sizes = []
    for k in range(6):
        body = b"x" * (8 << 20) if k == 3 else None  # one body far beyond a send buffer
        r = s.request("POST" if body else "GET", "/x", name="x", data=body)
        sizes.append(int(r.text))
        time.sleep(0.05)  # the server's FIN arrives while the socket sits in the pool
    pool = next(iter(s.client.clientpool.clients.values()))._connection_pool
    print(json.dumps({"seen": seen, "sizes": sizes,
                      "lean": type(pool) is LeanConnectionPool}))
    """, server.url)
        requests, connections, body_bytes = server.requests, server.connections, server.body_bytes
    assert got["lean"] is True
    assert [failure for failure, _ in got["seen"]] == [None] * 6  # no request failed
    assert (requests, connections) == (6, 6)  # each sent once, each on a new connection
    assert got["sizes"] == [0, 0, 0, 8 << 20, 0, 0] and body_bytes == 8 << 20


VISITS = """
    import json
    from http.cookiejar import Cookie
    from shop_loadtest.runtime.sessions import Visit

    def cookie(name, value):
        return Cookie(0, name, value, None, False, "shop.test", False, False, "/", True,
                      False, None, False, None, None, {})

    base = {"vars": {}, "region": "eu"}
    fresh, kept, login = (Visit(base, fresh=True), Visit(base, fresh=False),
                          Visit(base, fresh=True))
    out = {}
    for name, visit in (("fresh", fresh), ("kept", kept)):
        visit.on_start_done()
        runs = []
        for k in range(3):
            ctx = visit.begin()
            runs.append([sorted(c.name for c in visit.jar), sorted(ctx)])
            visit.jar.set_cookie(cookie(f"cart{k}", "1"))
            ctx[f"order{k}"] = k
        out[name] = runs
    login.jar.set_cookie(cookie("session", "s1"))   # what on_start left
    login.vars["csrf"] = "t0k"
    login.on_start_done()
    runs = []
    for k in range(2):
        ctx = login.begin()
        runs.append([sorted(c.name for c in login.jar), sorted(ctx)])
        login.jar.set_cookie(cookie("cart", "1"))
        ctx["order"] = k
    out["after_on_start"] = runs
    out["base"] = sorted(base)
    print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def visits() -> dict[str, Any]:
    return dict(in_engine(VISITS))


def test_a_fresh_journey_run_starts_with_an_empty_jar_and_no_earlier_captures(visits):
    assert visits["fresh"] == [[[], ["region", "vars"]]] * 3
    assert visits["base"] == ["region", "vars"]  # nothing leaked into the user's base either


def test_session_keep_carries_cookies_and_captures_on(visits):
    assert visits["kept"] == [[[], ["region", "vars"]],
                              [["cart0"], ["order0", "region", "vars"]],
                              [["cart0", "cart1"], ["order0", "order1", "region", "vars"]]]


def test_what_on_start_left_is_where_each_fresh_run_starts(visits):
    assert visits["after_on_start"] == [[["session"], ["csrf", "region", "vars"]]] * 2


RECORDING = """
    import json, socket
    from geventhttpclient.useragent import RetriesExceeded
    from shop_loadtest.runtime.client import RequestTimeout
    from shop_loadtest.runtime.recorder import Recorder, describe_failure

    rec = Recorder()
    rec.on_request("GET", "x", 12.0, 10)
    rec.in_flight_at_stop("GET", "x", 2500.0)
    rec.in_flight_at_stop("GET", "x", 900.0)
    taken = rec.take()
    wrapped = RetriesExceeded("http://shop.test/x", 0, original=RequestTimeout(2.0))
    error_response = type("R", (), {"status_code": 0, "error": wrapped})()
    ok_response = type("R", (), {"status_code": 200})()
    print(json.dumps({
        "x": taken["endpoints"]["x"], "errors": taken["errors"],
        "wrapped": describe_failure(wrapped, error_response),
        "mid_body": describe_failure(RequestTimeout(1.0), ok_response),
        "socket": describe_failure(socket.timeout("timed out"), None),
        "reset": describe_failure(ConnectionResetError(104, "reset"), type("R", (), {
            "status_code": 0, "error": ConnectionResetError(104, "reset")})()),
    }))
"""


def test_in_flight_requests_are_counted_apart_and_timeouts_are_of_kind_timeout():
    got = in_engine(RECORDING)
    x = got["x"]
    # two requests without an answer: counted, but neither outcomes nor latency samples
    assert (x["n"], x["fail"], x["sum_ms"], x["stopped"], x["stopped_max_ms"]) == (
        1, 0, 12.0, 2, 2500.0)
    assert got["errors"] == [{"endpoint": "x", "kind": "in flight at stop",
                              "message": "no answer yet when the user was stopped",
                              "count": 2}]
    assert got["wrapped"] == ["timeout", "no complete answer within 2 s"]
    assert got["mid_body"] == ["timeout", "no complete answer within 1 s"]
    assert got["socket"] == ["timeout", "timed out"]
    assert got["reset"][0] == "ConnectionResetError"


def test_a_hand_written_fasthttpuser_sends_each_request_once_too():
    got = in_engine("""
    import json
    from locust.env import Environment
    from shop_loadtest.runtime.client import SingleTryClientPool
    from shop_loadtest.runtime.users import user_class

    cls = user_class("locustfiles/custom.py", "VipBuyer", alias="Vip", weight=1,
                     host="http://127.0.0.1:9")
    user = cls(Environment(user_classes=[cls]))
    agent = user.client.client
    print(json.dumps([type(agent.clientpool).__name__, agent.max_retries, cls.weight]))
    """)
    assert got == ["SingleTryClientPool", 0, 1]
