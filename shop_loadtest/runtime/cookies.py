"""The users' cookie jar: the standard library's, minus the work that cannot change anything.

FastHttpUser runs `CookieJar.add_cookie_header` before and `extract_cookies` after every
request. Both take the jar's lock (a pure-Python RLock once gevent has patched threading),
read the clock and walk the cookie policy, even when the jar is empty and the response sets
no cookie. On loopback that was about 15 us of the ~180 us of CPU a request costs
(docs/performance.md). This jar skips exactly those two cases and hands everything else to
the standard library, so the cookies sent and kept are the same.
"""

from __future__ import annotations

from http.cookiejar import CookieJar
from typing import Any


class LeanCookieJar(CookieJar):
    def add_cookie_header(self, request: Any) -> None:
        # Nothing stored, nothing to add (and nothing to expire).
        if self._cookies:  # type: ignore[attr-defined]
            super().add_cookie_header(request)

    def extract_cookies(self, response: Any, request: Any) -> None:
        # The standard library returns early on the same test, after taking the lock. Both
        # header types (geventhttpclient's and http.client's) match names case-insensitively.
        headers = response.info()
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response, request)


def use_lean_cookie_jar(session: Any) -> LeanCookieJar:
    """Give a FastHttpSession (before its first request) a LeanCookieJar: the session and
    its geventhttpclient user agent share one jar."""
    jar = LeanCookieJar()
    session.cookiejar = jar
    session.client.cookiejar = jar
    return jar
