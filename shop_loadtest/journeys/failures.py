"""What a failed request says about itself: one (kind, message) format, and body samples.

Only failed requests come here, never the successful path. Every text that leaves passes the
one secret mask (`SecretEnv.scrub`) on the whole text first, and is cut after: a cut secret
must never survive as a prefix. See docs/results-format.md (`errors`, `error_samples`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from shop_loadtest.journeys.redirects import RedirectError
from shop_loadtest.safety.hosts import REFUSED_KIND, HostNotAllowed

# A body is read this far for the sample and the shop's words: enough for any error page's
# message, bounded so a 50 MB error page costs nothing.
BODY_READ_BYTES = 64 * 1024
SAMPLE_CHARS = 500
MESSAGE_CHARS = 300
# JSON keys error bodies put their message under (Django REST, FastAPI, Rails, Flask, ours).
_MESSAGE_KEYS = ("error", "message", "detail", "title", "errors", "msg", "reason")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.S | re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.S | re.I)
_SPACE = re.compile(r"\s+")

Mask = Callable[[str], str]


def escape_control(text: str) -> str:
    """Control characters as visible escapes (`\\n`, `\\x1b`): a body sample can neither
    break a terminal, a log line nor a Markdown table."""
    def one(m: re.Match[str]) -> str:
        ch = m.group()
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\x{ord(ch):02x}"
                                                             if ord(ch) < 256
                                                             else f"\\u{ord(ch):04x}")
    return _CONTROL.sub(one, text)


def masked_cut(text: str, mask: Mask, limit: int) -> str:
    """Mask the whole text, then cut it, then escape control characters."""
    return escape_control(mask(text)[:limit])


def body_text(response: Any) -> str:
    """The first BODY_READ_BYTES of a response's body as text ('' when there is none)."""
    try:
        content = getattr(response, "content", None)
    except Exception:
        return ""
    if not content:
        return ""
    if isinstance(content, str):
        return content[:BODY_READ_BYTES]
    return bytes(content[:BODY_READ_BYTES]).decode("utf-8", errors="replace")


def shop_words(body: str) -> str:
    """The shop's own message in an error body: a JSON error field, an HTML page's text, or
    the first line of plain text. '' when the body says nothing."""
    stripped = body.strip()
    if not stripped:
        return ""
    if stripped[0] in "{[":
        try:
            # raw_decode: a JSON document followed by anything (a newline, junk) still counts
            found = _json_message(json.JSONDecoder().raw_decode(stripped)[0])
        except ValueError:
            found = None
        if found:
            return _SPACE.sub(" ", found).strip()
    if "<" in stripped and ">" in stripped:
        title = _TITLE.search(stripped)
        text = _SPACE.sub(" ", _TAG.sub(" ", stripped)).strip()
        heading = _SPACE.sub(" ", title.group(1)).strip() if title else ""
        # An error page's title is often only the status ("507 Insufficient Storage"); its
        # text says why. Keep the text, which starts with the heading anyway.
        return text or heading
    return _SPACE.sub(" ", stripped.splitlines()[0]).strip()


def _json_message(value: Any, depth: int = 0) -> str | None:
    if depth > 3:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [m for m in (_json_message(v, depth + 1) for v in value[:3]) if m]
        return "; ".join(parts) or None
    if isinstance(value, dict):
        for key in _MESSAGE_KEYS:
            if key in value:
                found = _json_message(value[key], depth + 1)
                if found:
                    return found
    return None


def status_of(response: Any) -> int:
    try:
        return int(getattr(response, "status_code", 0) or 0)
    except (TypeError, ValueError):
        return 0


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


TIMEOUT = "timeout"


def timeout_in(exc: BaseException | None) -> BaseException | None:
    """The timeout behind a failure, whichever layer noticed it: the runtime's timer, a socket
    or gevent, possibly wrapped by geventhttpclient (`RetriesExceeded(original=...)`)."""
    for _ in range(4):
        if exc is None:
            return None
        if isinstance(exc, TimeoutError) or type(exc).__name__ == "Timeout":
            return exc
        exc = getattr(exc, "original", None)
    return None


def describe_failure(exception: BaseException | None, response: Any,
                     mask: Mask = lambda text: text) -> tuple[str, str] | None:
    """(kind, message) of a failed request, masked and cut, in one format:

    - a bad status: `("HTTP 507", "database or disk is full")`: the shop's own words from the
      body, else the status's reason phrase (whether Locust or a check judged the status);
    - a failed check or capture: `("check failed", "check $.id: missing")`;
    - no response: `("ConnectionRefusedError", "[Errno 111] Connection refused")`;
    - no answer in time, whichever layer noticed: `("timeout", "...")`.
    """
    if exception is None:
        return None
    for refused in (exception, getattr(response, "error", None)):
        if isinstance(refused, HostNotAllowed):  # whatever the user's code called it
            return REFUSED_KIND, masked_cut(str(refused), mask, MESSAGE_CHARS)
    timeout = timeout_in(exception) or timeout_in(getattr(response, "error", None))
    if timeout is not None:
        return TIMEOUT, masked_cut(str(timeout) or "timed out", mask, MESSAGE_CHARS)
    text = str(exception) or type(exception).__name__
    status = status_of(response)
    if status == 0:
        cause = getattr(response, "error", None) or exception
        kind, text = type(cause).__name__, str(cause) or text
    elif type(exception).__name__ == "CatchResponseError" and not text.startswith("HTTP "):
        kind = "check failed"
    elif isinstance(exception, RedirectError):  # the status is a redirect; the hop limit failed
        kind = "too many redirects"
    else:
        # Locust's own status failure reads "URL http://...: code=403" and ours "HTTP 406":
        # both become the status and what the shop said about it.
        kind = f"HTTP {status}"
        # Mask the whole body before picking the shop's words out of it: stripping tags or
        # decoding JSON first can split a secret (`p@ss<z>` -> `p@ss`) past what the mask
        # knows. Mask first, transform and cut after.
        text = shop_words(mask(body_text(response))) or reason_phrase(status) or kind
    return kind, masked_cut(text, mask, MESSAGE_CHARS)


def url_path(url: Any, response: Any) -> str:
    """The path of the request's URL, without query or fragment (where tokens live)."""
    raw = url
    if not raw:
        request = getattr(response, "request", None)
        raw = getattr(request, "url", None) or getattr(response, "url", None)
    if not raw:
        return ""
    try:
        return urlsplit(str(raw)).path or "/"
    except ValueError:
        return ""


def failure_sample(method: str, url: Any, response: Any, mask: Mask) -> dict[str, Any]:
    """One failed request as a sample: status, method, URL path and the body's start."""
    return {
        "status": status_of(response) or None,
        "method": method,
        "path": masked_cut(url_path(url, response), mask, MESSAGE_CHARS),
        "body": masked_cut(body_text(response), mask, SAMPLE_CHARS),
    }
