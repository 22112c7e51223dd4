"""A journey is one visitor: the cookie jar and variables each run of a journey starts from.

Each user keeps one `Visit` per journey it runs. With `session: fresh` (the default) every run
starts from the state the journey's `on_start` left (an empty jar and the scenario's variables
when it has none): nothing set by an earlier run, nor by another journey the same pool user
ran, is carried over (k6 resets its jar per iteration the same way). With `session: keep` the
jar and captures carry on across the user's runs of that journey (a logged-in customer).

A fresh start must be cheap, since it happens on every journey: an empty jar is left alone,
a used one is cleared in place (no new jar, no new lock), and the variables are one dict copy.
"""

from __future__ import annotations

from http.cookiejar import Cookie
from typing import Any

from shop_loadtest.runtime.cookies import LeanCookieJar


class Visit:
    """One user's session for one journey."""

    __slots__ = ("captures", "fresh", "jar", "started", "start_cookies", "start_vars", "vars")

    def __init__(self, base_vars: dict[str, Any], *, fresh: bool, captures: bool = True) -> None:
        self.fresh = fresh
        self.captures = captures  # its steps capture: a run can leave variables behind
        self.jar = LeanCookieJar()
        self.vars = dict(base_vars)
        self.start_vars = base_vars
        self.start_cookies: list[Cookie] = []
        self.started = False  # on_start went through (or there was none)

    def begin(self) -> dict[str, Any]:
        """The variables of the next run, after a fresh session was reset."""
        if self.fresh:
            jar = self.jar
            if jar._cookies:  # type: ignore[attr-defined]
                jar.clear()
            if self.start_cookies:
                for cookie in self.start_cookies:
                    jar.set_cookie(cookie)
            if self.captures:  # else a run only (re)draws data rows, never adds a variable
                self.vars = dict(self.start_vars)
        return self.vars

    def on_start_done(self) -> None:
        """What on_start left is where every fresh run starts from."""
        self.started = True
        if self.fresh:
            self.start_cookies = list(self.jar)
            self.start_vars = dict(self.vars)

    def on_start_failed(self, base_vars: dict[str, Any]) -> None:
        """Try on_start again from scratch next time."""
        if self.jar._cookies:  # type: ignore[attr-defined]
            self.jar.clear()
        self.vars = dict(base_vars)
