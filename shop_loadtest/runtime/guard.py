"""The one outgoing-request guard of a load process: every request a user's HTTP client makes,
and every redirect hop it follows, is checked against the allowlist where the connection is
made, and refused (nothing sent) when its host is not allowed.

FastHttpUser's client (geventhttpclient) opens every hop through `UserAgent._urlopen`, so the
guard sits there: rendered and captured URLs, `//host` paths, redirects followed by the
library and hops followed one by one through the session all pass it. A step sent through its
lean lane (`runtime/lane.py`: fixed bytes, no `_urlopen`) asks the same `HostGuard.allows`
before every send, and goes the session's way, to be refused there, when it says no.
HttpUser's client (requests) sends every hop through `Session.send`. A hand-written `class:`
user's `client` is guarded when it is assigned, whatever session it is given (see
`guarded_client`).

A refusal is a failed request (status 0, kind `refused: host not allowed`, recorded by
Locust's request event as any connection error) and is also counted by the guard itself,
so it is reported even when a user's own code swallows the failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import requests
from geventhttpclient.useragent import UserAgent
from locust.clients import HttpSession
from locust.contrib.fasthttp import FastHttpSession
from urllib3.util import parse_url

from shop_loadtest.safety.hosts import Allowlist, HostNotAllowed, origin_text

# Distinct (scheme, netloc) pairs a process remembers the answer for; beyond that the
# answers are recomputed (a run that renders a new host per request stays bounded).
MAX_REMEMBERED = 1024


class RequestsHostNotAllowed(HostNotAllowed, requests.exceptions.ConnectionError):
    """HostNotAllowed for requests' HttpSession, which turns RequestException into failures
    (and reads the `request` and `response` every RequestException carries)."""

    def __init__(self, host: str, where: str | None = None, request: Any = None) -> None:
        super().__init__(host, where)
        self.request = request
        self.response = None


class HostGuard:
    """One process's allowlist check, with a memo of its answers, and where refusals go."""

    def __init__(self, allow: Allowlist,
                 on_refused: Callable[[HostNotAllowed], None] | None = None) -> None:
        self.allow = allow
        self.on_refused = on_refused
        self._answers: dict[tuple[str, str], bool] = {}

    def extend(self, urls: list[str]) -> None:
        """Allow these hosts too (a worker learns the master's)."""
        self.allow = Allowlist(self.allow.origins | Allowlist.of(urls).origins)
        self._answers = {}

    def allows(self, scheme: str, netloc: str, url: Any) -> bool:
        """Is `url` (with `.host` and `.port`) allowed? Remembered by (scheme, netloc): the
        host and port are parsed only the first time (that parse costs microseconds)."""
        key = (scheme, netloc)
        answer = self._answers.get(key)
        if answer is None:
            host, port = url.host, url.port
            answer = bool(host) and self.allow.allows_origin(scheme, host or "", port)
            if len(self._answers) >= MAX_REMEMBERED:
                self._answers.clear()
            self._answers[key] = answer
        return answer

    def refuse(self, scheme: str, host: str | None, port: int | None, where: str | None,
               error: type[HostNotAllowed] = HostNotAllowed, **extra: Any) -> HostNotAllowed:
        scheme = (scheme or "http").lower()
        exc = error(origin_text((scheme, (host or "").lower(),
                                 port or (443 if scheme == "https" else 80))), where, **extra)
        if self.on_refused is not None:
            self.on_refused(exc)
        return exc


class _Where(NamedTuple):
    host: str
    port: int | None


class _GuardedAgent(UserAgent):
    """geventhttpclient's user agent, checking each hop before it connects."""

    slt_guard: HostGuard
    slt_where: str | None = None

    def _urlopen(self, request: Any) -> Any:
        url = request.url_split
        guard = self.slt_guard
        if not guard.allows(url.scheme, url.netloc, url):
            raise guard.refuse(url.scheme, url.host, url.port, self.slt_where)
        proxy = self.clientpool.client_args.get("proxy_host")
        if proxy:  # the connection goes to the proxy: another host, unless allowed too
            port = self.clientpool.client_args.get("proxy_port")
            if not guard.allows("http", f"{proxy}:{port}", _Where(proxy, port)):
                raise guard.refuse("http", proxy, port, self.slt_where)
        return super()._urlopen(request)


class _GuardedRequestsSession(HttpSession):
    """requests' session (HttpUser), checking each hop as `send` gets it."""

    slt_guard: HostGuard
    slt_where: str | None = None

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        guard = self.slt_guard
        url = parse_url(request.url)  # the parser the connection pool uses
        scheme = url.scheme or "http"
        proxies = kwargs.get("proxies") or {}
        proxy = proxies.get(scheme) or proxies.get("all")
        for target in [url, *([parse_url(proxy)] if proxy else [])]:  # a proxy is a host too
            target_scheme = target.scheme or "http"
            if not guard.allows(target_scheme, target.netloc or "", target):
                raise guard.refuse(target_scheme, target.host, target.port, self.slt_where,
                                   RequestsHostNotAllowed, request=request)
        return super().send(request, **kwargs)


class _GuardedFastSession(FastHttpSession):
    """A FastHttpSession whose user agent, if replaced, is guarded as it is assigned."""

    slt_guard: HostGuard

    @property  # type: ignore[override]
    def client(self) -> Any:
        return self.__dict__["client"]

    @client.setter
    def client(self, agent: Any) -> None:
        if "slt_guard" in self.__dict__:
            _guard_agent(agent, self.slt_guard, getattr(self.__dict__.get("client"),
                                                         "slt_where", None))
        self.__dict__["client"] = agent


_AGENT_CLASSES: dict[type, type] = {}


def _guarded_class(cls: type, mixin: type) -> type:
    if issubclass(cls, mixin):
        return cls
    found = _AGENT_CLASSES.get(cls)
    if found is None:
        # The mixin first: its check runs before the session's own code for every hop.
        found = _AGENT_CLASSES[cls] = type(f"Guarded{cls.__name__}", (mixin, cls), {})
    return found


def guard_session(session: Any, guard: HostGuard, where: str | None = None) -> Any:
    """Put `session` (a FastHttpSession or HttpSession) behind `guard`; returns the object
    whose `slt_where` names the step for refusal messages. Raises TypeError for a client
    the guard cannot hold (then it must not be used at all)."""
    if isinstance(session, FastHttpSession):
        agent = _guard_agent(session.__dict__.get("client"), guard, where)
        session.__class__ = _guarded_class(type(session), _GuardedFastSession)
        session.slt_guard = guard  # type: ignore[attr-defined]
        return agent
    if isinstance(session, HttpSession):
        return _guard(session, _GuardedRequestsSession, guard, where)
    raise TypeError(f"cannot guard an HTTP client of type {type(session).__name__}: use "
                    "FastHttpUser or HttpUser (their client is checked against the allowed "
                    "hosts)")


def _guard_agent(agent: Any, guard: HostGuard, where: str | None) -> Any:
    if not isinstance(agent, UserAgent):
        raise TypeError(f"cannot guard a FastHttpSession whose client is "
                        f"{type(agent).__name__}")
    return _guard(agent, _GuardedAgent, guard, where)


def _guard(target: Any, mixin: type, guard: HostGuard, where: str | None) -> Any:
    # The instance keeps its state and gains the check: the session was built by Locust with
    # its own options, and we do not rebuild it.
    target.__class__ = _guarded_class(type(target), mixin)
    target.slt_guard = guard
    target.slt_where = where
    return target


def process_guard(environment: Any, fallback_host: str | None = None) -> HostGuard:
    """The load process's guard (the runtime's, once `install` ran); without the runtime,
    one that allows only the user's own host and Locust's --host."""
    state = getattr(environment, "shop_loadtest", None)
    if state is not None:
        return state.guard  # type: ignore[no-any-return]
    guard = getattr(environment, "slt_fallback_guard", None)
    if guard is None:
        guard = HostGuard(Allowlist.of([fallback_host, getattr(environment, "host", None)]))
        environment.slt_fallback_guard = guard
    return guard  # type: ignore[no-any-return]


class guarded_client:
    """`client` of a hand-written user class: whatever session is assigned to it (Locust's in
    the user's __init__, or one the user's own code builds) is guarded first."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_slt_{name}"

    def __get__(self, user: Any, owner: type | None = None) -> Any:
        if user is None:
            return self
        try:
            return user.__dict__[self.slot]
        except KeyError:
            raise AttributeError("client") from None

    def __set__(self, user: Any, session: Any) -> None:
        guard = process_guard(user.environment, getattr(user, "host", None))
        guard_session(session, guard, self.where)
        user.__dict__[self.slot] = session
