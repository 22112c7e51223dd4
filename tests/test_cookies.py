"""The users' lean cookie jar sends and keeps exactly the cookies the standard jar does.

Both jars run the same requests through real FastHttpSessions (in a subprocess: locust patches
the process with gevent) against a real loopback server that sets, scopes and expires cookies
and answers with the Cookie header it received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.servers import Handler, LoopbackServer
from tests.test_arrivals import in_engine


class CookieServer(LoopbackServer):
    """`/set/NAME/VALUE[/PATH...]` sets a cookie scoped to /PATH (default /), `/expire/NAME`
    expires it, `/set2/NAME/VALUE` sets one in lower case; every answer is the Cookie header."""

    def __init__(self) -> None:
        class Cookies(Handler):
            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                header = {}
                if parts[0] == "set":
                    scope = "/" + "/".join(parts[3:])
                    header = {"Set-Cookie": f"{parts[1]}={parts[2]}; Path={scope}"}
                elif parts[0] == "set2":
                    header = {"set-cookie": f"{parts[1]}={parts[2]}; path=/"}
                elif parts[0] == "expire":
                    header = {"Set-Cookie": f"{parts[1]}=; Max-Age=0; Path=/"}
                self.reply(200, json.dumps(self.headers.get("Cookie", "")).encode(), header,
                           content_type=None)

        super().__init__(Cookies)


@pytest.fixture(scope="module")
def cookie_server() -> Iterator[CookieServer]:
    with CookieServer() as server:
        yield server


PATHS = ["/a", "/set/sid/1", "/b", "/set/deep/2/shop/cart", "/shop/cart/x", "/c",
         "/set2/low/3", "/d", "/expire/sid", "/e", "/expire/deep", "/expire/low", "/f"]

JARS = """
    import json
    from locust.contrib.fasthttp import FastHttpSession
    from locust.event import EventHook
    from shop_loadtest.runtime.cookies import LeanCookieJar, use_lean_cookie_jar

    URL, PATHS = ARGS

    def session(lean):
        s = FastHttpSession(URL, request_event=EventHook(), user=None)
        if lean:
            assert isinstance(use_lean_cookie_jar(s), LeanCookieJar)
        return s

    sent = {}
    for lean in (False, True):
        s = session(lean)
        sent[str(lean)] = [json.loads(s.get(p).content) for p in PATHS]
    print(json.dumps(sent))
"""


def test_the_lean_jar_sends_what_the_standard_jar_sends(cookie_server):
    sent = in_engine(JARS.replace("ARGS", repr((cookie_server.url, PATHS))))
    standard, lean = sent["False"], sent["True"]
    assert lean == standard
    # and the sequence exercised every case: none yet, one, a path-scoped one, a lower-case
    # header, and expiry back to none
    assert standard[0] == "" and standard[2] == "sid=1"
    assert set(standard[4].split("; ")) == {"sid=1", "deep=2"} and standard[5] == "sid=1"
    assert set(standard[7].split("; ")) == {"sid=1", "low=3"}
    assert standard[9] == "low=3" and standard[-1] == ""
