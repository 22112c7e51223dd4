"""Redirects as browsers follow them (the Fetch standard's rules), one hop at a time.

The runtime follows redirects itself, so that each hop is a request of its own in the results
(timed, counted, and sent through the same session call as every step). This module only
says where the next hop goes and with which method; it does no I/O.

    >>> next_hop("POST", 303, "http://shop.test/cart/add", "/cart")
    Hop(method='GET', url='http://shop.test/cart', keep_body=False, same_origin=True)
    >>> next_hop("POST", 307, "http://shop.test/pay", "https://psp.test/pay").keep_body
    True
    >>> next_hop("GET", 200, "http://shop.test/", None) is None
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
# Hops followed after the step's own request; one more redirect is a failed request. Browsers
# stop at 20; k6 and requests' defaults are 10 and 30.
MAX_REDIRECTS = 10


class RedirectError(ValueError):
    """A redirect that is not followed: to a scheme other than http(s), or one hop too many."""


@dataclass(frozen=True)
class Hop:
    method: str
    url: str
    keep_body: bool
    same_origin: bool


def next_hop(method: str, status: int, url: str, location: str | None) -> Hop | None:
    """The request a browser sends after an answer `status` with `Location: location` to
    `method url`, or None when the answer is not a redirect to follow.

    303 turns every method but HEAD into a body-less GET; 301 and 302 do so for POST only (what
    browsers do, whatever the old RFCs said); 307 and 308 keep the method and the body.
    Raises RedirectError for a Location that is not http(s).
    """
    if status not in REDIRECT_STATUSES or not location:
        return None
    target = urljoin(url, location.strip()).split("#", 1)[0]
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RedirectError(f"redirect to {target[:200]!r} not followed: not an http(s) URL")
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        new_method, keep_body = ("GET" if method != "HEAD" else "HEAD"), False
    else:
        new_method, keep_body = method, True
    before = urlsplit(url)
    same = (before.scheme, before.hostname, before.port) == (parts.scheme, parts.hostname,
                                                             parts.port)
    return Hop(new_method, target, keep_body, same)


def with_scheme(url: str, base_url: str) -> str:
    """A rendered or captured `//host/x` is a URL without its scheme, as a browser reads it:
    made absolute with the target's scheme, so the guard judges its host (the HTTP client
    would refuse it as a request target, with an error no request event records).

    >>> with_scheme("//127.0.0.2:9/x", "https://shop:8443"), with_scheme("/x", "http://shop")
    ('https://127.0.0.2:9/x', '/x')
    """
    if not url.startswith("//"):
        return url
    return f"{base_url.split(':', 1)[0]}:{url}"


def hop_name(step_name: str, hop: int) -> str:
    """The stats name of the `hop`-th redirect followed from a step: `name (redirect 1)`."""
    return step_name if hop == 0 else f"{step_name} (redirect {hop})"
