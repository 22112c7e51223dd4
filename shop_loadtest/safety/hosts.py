"""The allowlist: which hosts may get traffic, and the one check every request passes.

A host is compared as its origin, `(scheme, host, port)`, spelled exactly as the client will
connect to it (lower-cased host, default port filled in). Any other spelling of an allowed
host (`127.1`, `0x7f.0.0.1`, a trailing dot, `user@` tricks) is a different origin and is
refused: the check never resolves names, so it can only err on the side of refusing.

    >>> allow = Allowlist.of(["http://127.0.0.1:8800"])
    >>> allow.allows("http://127.0.0.1:8800/api?q=1"), allow.allows("HTTP://127.0.0.1:8800")
    (True, True)
    >>> allow.allows("http://127.0.0.1@127.0.0.2:8800/")
    False
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shop_loadtest.errors import TargetNotAllowed

REFUSED_KIND = "refused: host not allowed"
Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin | None:
    """`http://Host:80/x` -> ("http", "host", 80); None for what is not an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port
    except ValueError:  # a port that is not a number, a bad IPv6 literal
        return None
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def origin_text(origin: Origin) -> str:
    """("http", "h", 80) -> `http://h:80`: how refusals name a host (never a path or userinfo,
    so a refusal message cannot carry a secret from the URL)."""
    scheme, host, port = origin
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def origin(url: str) -> str:
    """`http://Host:80/x` -> `http://host:80`: what two host URLs are compared by."""
    found = origin_of(url)
    return origin_text(found) if found else url


class HostNotAllowed(ConnectionRefusedError):
    """A request to a host the allowlist does not hold; raised before anything is sent.

    A ConnectionRefusedError, so HTTP clients report it as a failed request (status 0)."""

    def __init__(self, host: str, where: str | None = None) -> None:
        self.host = host
        self.where = where
        text = f"{host} is not an allowed host" + (f" ({where})" if where else "")
        super().__init__(text)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Allowlist:
    """The origins that may get traffic. Empty: nothing may."""

    origins: frozenset[Origin]

    @classmethod
    def of(cls, urls: Iterable[str | None]) -> Allowlist:
        found = (origin_of(u) for u in urls if u)
        return cls(frozenset(o for o in found if o is not None))

    def allows(self, url: str) -> bool:
        return origin_of(url) in self.origins

    def allows_origin(self, scheme: str, host: str, port: int | None) -> bool:
        """The check at the connection: the parts the client connects with."""
        scheme = scheme.lower()
        return (scheme, host.lower(), port or (443 if scheme == "https" else 80)) in self.origins

    def check(self, url: str, where: str | None = None) -> None:
        """Raise HostNotAllowed unless `url`'s origin is allowed."""
        if origin_of(url) not in self.origins:
            found = origin_of(url)
            raise HostNotAllowed(origin_text(found) if found else repr(url[:80]), where)

    def describe(self) -> str:
        return ", ".join(sorted(origin_text(o) for o in self.origins)) or "none"


def scenario_allowlist(host: str | None, allowed_hosts: Iterable[str],
                       extra: Iterable[str] = ()) -> Allowlist:
    """The scenario's host, its `target.allowed_hosts` and the command line's `--allow-host`."""
    return Allowlist.of([host, *allowed_hosts, *extra])


def check_target_allowed(host: str, allow: Allowlist) -> None:
    """The run's target must be allowed before anything starts (exit 2 otherwise)."""
    if not allow.allows(host):
        raise TargetNotAllowed(
            f"refusing to send load to {host}: not the scenario's host nor in "
            f"target.allowed_hosts (allowed: {allow.describe()}); add it there or pass "
            f"--allow-host {host}")


# --- the CLI process's requests (health check, monitor scrapes) ----------------------------
Refused = Callable[[HostNotAllowed], None]


class _GuardedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, allow: Allowlist, where: str) -> None:
        self.allow, self.where = allow, where

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> Any:
        self.allow.check(newurl, f"redirect of the {self.where}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def guarded_urlopen(url: str, *, allow: Allowlist, where: str, timeout: float) -> Any:
    """urllib's urlopen through the allowlist: the URL and every redirect hop are checked
    before they are requested, and no proxy is used (a proxy is another host).

    Raises HostNotAllowed (nothing sent to that host), or what urlopen raises."""
    allow.check(url, where)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         _GuardedRedirects(allow, where))
    return opener.open(url, timeout=timeout)


def refusal_event(exc: HostNotAllowed) -> dict[str, Any]:
    """The `refused` event's detail (events.jsonl) for one refused request."""
    return {"host": exc.host, "where": exc.where or "", "count": 1}


__all__ = ["REFUSED_KIND", "Allowlist", "HostNotAllowed", "check_target_allowed",
           "guarded_urlopen", "origin", "origin_of", "origin_text", "refusal_event",
           "scenario_allowlist"]
