"""The lean lane (runtime/lane.py) against the session it stands in for: the same requests
sent both ways, for real, to a loopback server scripted to answer, fail, reset, stall, set
cookies and send garbage. The shop must receive the same bytes, and Locust's request event
(what Locust's stats and our recorder see) must carry the same fields, failure kinds and
response objects, whichever way a request went."""

from __future__ import annotations

import gzip
import socket
import struct
import time
from typing import Any

import pytest

from tests.servers import RawServer, read_request
from tests.test_arrivals import in_engine
from tests.test_client import ClosingServer

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
ZIPPED = gzip.compress(b'{"items": [1, 2, 3]}')
ANSWERS: dict[str, bytes | str] = {
    "/ok": OK,
    "/gzip": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip"
              b"\r\nContent-Length: " + str(len(ZIPPED)).encode() + b"\r\n\r\n" + ZIPPED),
    "/full": (b"HTTP/1.1 507 Insufficient Storage\r\nContent-Type: text/plain\r\n"
              b"Content-Length: 24\r\n\r\ndatabase or disk is full"),
    "/missing": b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    "/cookie": (b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=abc; Path=/\r\nContent-Length: 2\r\n\r\n"
                b"ok"),
    "/redirect": b"HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n",
    "/chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
    "/garbage": b"NOT HTTP AT ALL\r\n\r\n",
    "/half": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
    "/reset": "reset",
    "/close": "close",
    "/slow": "slow",
}


class ScriptedServer(RawServer):
    """Keep-alive HTTP/1.1 on raw sockets: each request's bytes are kept, in order, and the
    path picks the answer (`ANSWERS`): bytes to send, or a way to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[bytes] = []

    def serve(self, conn: socket.socket) -> None:
        data = b""
        with conn:
            while True:
                request = read_request(conn, data)
                if request is None:
                    return
                head, body, data = request
                self.received.append(head + b"\r\n\r\n" + body)
                path = head.split(b" ")[1].decode().split("?")[0]
                answer = ANSWERS.get(path, OK)
                if answer == "reset":  # RST, not FIN
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if answer == "close":
                    return
                if answer == "slow":
                    time.sleep(1.0)
                    answer = OK
                assert isinstance(answer, bytes)
                conn.sendall(answer)
                if path in ("/garbage", "/half"):
                    return


BOTH_WAYS = """
    import json
    from locust.env import Environment
    from locust.contrib.fasthttp import FastHttpSession
    from shop_loadtest.runtime.client import RequestTimer, send_once
    from shop_loadtest.runtime.cookies import use_lean_cookie_jar
    from shop_loadtest.runtime.lane import lane_for, prepare_or_none, send
    from shop_loadtest.journeys.failures import describe_failure, failure_sample

    events = []
    env = Environment()
    env.events.request.add_listener(lambda **kw: events.append(kw))

    def session():
        # as the runtime's users make theirs: no redirects, no retries, no socket timeouts
        s = FastHttpSession(URL, request_event=env.events.request, user=None,
                            max_redirects=0, max_retries=0, network_timeout=None,
                            connection_timeout=None)
        use_lean_cookie_jar(s)
        send_once(s)
        return s

    def event(kw):
        exc, resp = kw["exception"], kw["response"]
        return {
            "fields": sorted(kw),
            "request_type": kw["request_type"], "name": kw["name"], "url": kw["url"],
            "context": kw["context"], "response_length": kw["response_length"],
            "timed": kw["response_time"] > 0,
            "exception": [type(exc).__name__, str(exc)] if exc is not None else None,
            "response": [type(resp).__name__, resp.status_code,
                         (resp.headers or {}).get("location")],
            "failure": describe_failure(exc, resp),
            "sample": failure_sample("GET", kw["url"], resp, lambda t: t) if exc else None,
        }

    class Allow:
        def allows(self, scheme, netloc, url):
            return True
    GUARD = Allow()

    def send_one(way, spec, catch):
        method, path, headers, kwargs, cookie = spec
        s = session()
        if cookie:  # a cookie in the jar first: the request must carry it
            s.request("GET", "/cookie", name="cookie first")
            events.pop()
        timer = RequestTimer()
        timer.start(0.4)
        try:
            if way == "lane":
                fixed = not kwargs and not cookie
                prep = (lane_for(s, method, path, headers) if fixed else
                        prepare_or_none(s, method, path, headers, kwargs))
                assert prep is not None and prep.usable(GUARD, empty_jar=fixed), spec
                r = send(s, prep, "step " + path, catch, {"late_ms": 1.5})
            else:
                r = s.request(method, path, name="step " + path, headers=headers,
                              catch_response=catch, context={"late_ms": 1.5}, **kwargs)
        finally:
            timer.cancel()
        if catch:
            with r:
                text = r.text if r.status_code else None
                if r.status_code == 200:
                    r.failure("judged " + str(len(text or "")))
        jar = sorted((c.name, c.value) for c in s.cookiejar)
        return {"event": event(events.pop()), "jar": jar, "left": len(events)}

    out = {}
    for key, spec in SPECS.items():
        for catch in (False, True):
            out[key + ("?catch" if catch else "")] = [send_one(way, spec, catch)
                                                      for way in ("session", "lane")]
    print(json.dumps(out))
"""

def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


CLOSED_PORT = _closed_port()
HEADERS = {"Accept": "application/json", "X-Campaign": "spring"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# name -> (method, path, headers, session keyword arguments, a cookie in the jar first)
SPECS: dict[str, tuple[str, str, dict[str, str], dict[str, Any], bool]] = {
    **{path: ("GET", path, HEADERS, {}, False) for path in ANSWERS},
    "json": ("POST", "/ok", HEADERS, {"json": {"product_id": 7, "name": "Zoë", "n": [1]}},
             False),
    "json-full": ("PUT", "/full", {}, {"json": [1, 2]}, False),
    "form": ("POST", "/ok", FORM, {"data": "email=a%40b.test&name=Zo%C3%AB"}, False),
    "body": ("POST", "/missing", {}, {"data": "plain words"}, False),
    "cookie": ("GET", "/ok", HEADERS, {}, True),
    "cookie-json": ("POST", "/cookie", {}, {"json": {"a": 1}}, True),
    "query": ("GET", "/ok?q=red shoes&size=ü&x=1%202", {}, {}, False),
    "post-reset": ("POST", "/reset", {}, {"json": {"a": 1}}, False),
    "post-slow": ("POST", "/slow", {}, {"data": "x=1"}, False),
    # nobody listens there: refused before anything is sent
    "refused": ("GET", f"http://127.0.0.1:{CLOSED_PORT}/ok", {}, {}, False),
}


@pytest.fixture(scope="module")
def both_ways() -> tuple[dict[str, Any], list[bytes]]:
    with ScriptedServer() as server:
        got = in_engine(BOTH_WAYS.replace("URL", repr(server.url))
                        .replace("SPECS", repr(SPECS)), timeout=120)
        received = list(server.received)
    return got, received


@pytest.mark.parametrize("key", list(SPECS))
@pytest.mark.parametrize("catch", [False, True])
def test_the_lane_records_what_the_session_records(both_ways, key, catch):
    got, _ = both_ways
    session, lane = got[key + ("?catch" if catch else "")]
    assert lane == session
    assert session["left"] == 0  # one event per request, not more


def test_the_cases_fail_as_a_shop_would_make_them_fail(both_ways):
    """The script is worth comparing: each case ends as the failure it stands for."""
    got, _ = both_ways
    kinds = {path: got[path][1]["event"]["failure"] for path in ANSWERS}
    assert kinds["/ok"] is None and kinds["/gzip"] is None and kinds["/chunked"] is None
    assert kinds["/full"] == ["HTTP 507", "database or disk is full"]
    assert kinds["/missing"][0] == "HTTP 404"
    assert kinds["/slow"][0] == "timeout"
    # geventhttpclient reads a reset before any answer as a closed connection
    assert kinds["/reset"][0] == kinds["/close"][0] == "HTTPConnectionClosed"
    for path in ("/garbage", "/half"):
        assert kinds[path] is not None, path
    lane = {path: got[path][1] for path in ANSWERS}
    assert lane["/gzip"]["event"]["response_length"] == len(b'{"items": [1, 2, 3]}')
    assert lane["/cookie"]["jar"] == [["sid", "abc"]]
    assert lane["/redirect"]["event"]["response"] == ["FastResponse", 302, "/ok"]
    assert got["/ok?catch"][1]["event"]["failure"] == ["check failed", "judged 5"]
    assert got["json-full"][1]["event"]["failure"] == ["HTTP 507", "database or disk is full"]
    assert got["post-slow"][1]["event"]["failure"][0] == "timeout"
    assert got["refused"][1]["event"]["failure"][0] == "ConnectionRefusedError"


def test_the_shop_receives_the_same_bytes_either_way(both_ways):
    _, received = both_ways
    # in the order sent: per spec, without and with catch_response, the session's request
    # then the lane's, each after its own first request for a cookie where the spec asks
    sends = [(2 if spec[4] else 1) for key, spec in SPECS.items() for _ in range(2)
             if key != "refused"]
    assert len(received) == 2 * sum(sends)  # each request once, whatever its fate
    at = 0
    for n in sends:
        session_bytes, lane_bytes = received[at:at + n], received[at + n:at + 2 * n]
        assert lane_bytes == session_bytes
        at += 2 * n
    first = received[0].decode("latin-1")
    assert first.startswith("GET /ok HTTP/1.1\r\n")
    assert "X-Campaign: spring" in first and "Accept-Encoding: gzip, deflate, br" in first
    text = b"".join(received).decode("latin-1")
    assert '{"product_id": 7, "name": "Zo\\u00eb", "n": [1]}' in text  # the JSON body
    assert "Cookie: sid=abc" in text  # a request with a cookie in the jar carries it


LANE_RULES = """
    import json
    from http.cookiejar import Cookie
    from locust.env import Environment
    from locust.contrib.fasthttp import FastHttpSession
    from shop_loadtest.runtime.client import send_once
    from shop_loadtest.runtime.cookies import use_lean_cookie_jar
    from shop_loadtest.runtime.guard import HostGuard
    from shop_loadtest.runtime.lane import lane_for, prepare_or_none, send
    from shop_loadtest.safety.hosts import Allowlist

    env = Environment()
    seen = []
    env.events.request.add_listener(lambda exception=None, **kw: seen.append(exception))

    def session(**kw):
        s = FastHttpSession(URL, request_event=env.events.request, user=None,
                            max_redirects=0, max_retries=0, **kw)
        use_lean_cookie_jar(s)
        send_once(s)
        return s

    guard = HostGuard(Allowlist.of([URL]))
    s = session()
    lane = lane_for(s, "GET", "/x", {})
    kept = [lane.usable(guard)]
    for _ in range(5):
        send(s, lane, "x", False, {})
    elsewhere = lane_for(s, "GET", "http://127.0.0.2:9/x", {})
    s.cookiejar.set_cookie(Cookie(0, "sid", "1", None, False, "127.0.0.1", False, False, "/",
                                  True, False, None, False, None, None, {}))
    kept.append(lane.usable(guard))   # a cookie to send: bytes built before cannot carry it
    out = {
        "kept": kept,
        "with_cookies": None is lane_for(s, "GET", "/x", {}),  # nor are they built with one
        "elsewhere": elsewhere.usable(guard),   # the allowlist is asked on every send
        "elsewhere_built": prepare_or_none(s, "POST", "http://127.0.0.2:9/x", {},
                                           {"json": {}}).usable(guard, empty_jar=False),
        # given the guard, a refused host is refused before a client is made for it
        "refused_early": None is prepare_or_none(s, "GET", "http://127.0.0.3:9/x", {}, {},
                                                 guard),
        "clients": sorted(f"{h}:{p}" for h, p in s.client.clientpool.clients),
        "failures": [repr(e) for e in seen if e is not None],
        "proxy": None is lane_for(session(proxy_host="127.0.0.1", proxy_port=9), "GET", "/x", {}),
        "chunked": None is lane_for(s, "GET", "/x", {"Transfer-Encoding": "chunked"}),
        "expect": None is lane_for(s, "GET", "/x", {"Expect": "100-continue"}),
        "bad_method": None is lane_for(s, "GET /x", "/x", {}),
        "retries": None is lane_for(FastHttpSession(URL, request_event=env.events.request,
                                            user=None), "GET", "/x", {}),
    }
    print(json.dumps(out))
"""


def test_the_lane_keeps_one_connection_and_steps_aside_when_it_cannot_be_exact():
    with ScriptedServer() as server:
        got = in_engine(LANE_RULES.replace("URL", repr(server.url)))
        requests, connections = len(server.received), server.connections
    assert (requests, connections) == (5, 1)  # kept alive, each request sent once
    assert got["failures"] == []
    assert got["kept"] == [True, False]
    assert got["elsewhere"] is False and got["elsewhere_built"] is False
    assert got["refused_early"] is True and "127.0.0.3:9" not in got["clients"]
    # a proxy, a body framed in chunks, a 100-continue, a request the client would refuse, or a
    # session that retries or follows redirects itself: the session's own path sends those
    for case in ("proxy", "chunked", "expect", "bad_method", "retries", "with_cookies"):
        assert got[case] is True, case


def test_a_kept_alive_socket_the_server_closed_is_replaced_through_the_lane_too():
    with ClosingServer() as server:
        got = in_engine(LANE_RULES.split("guard = HostGuard")[0].replace("URL", repr(server.url))
                        + """
    import time
    s = session()
    lane = lane_for(s, "GET", "/x", {})
    texts = []
    for _ in range(4):
        texts.append(send(s, lane, "x", False, {}).text)
        time.sleep(0.05)  # the server's FIN arrives while the socket sits in the pool
    print(json.dumps({"texts": texts, "failures": [repr(e) for e in seen if e is not None]}))
    """)
        requests, connections = server.requests, server.connections
    assert got == {"texts": ["0"] * 4, "failures": []}
    assert (requests, connections) == (4, 4)
