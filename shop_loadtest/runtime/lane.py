"""The lean lane: a request sent with the library's own bytes, without the layers that rebuild them.

A request through FastHttpUser passes five layers before its bytes reach the socket
(`FastHttpSession.request`, `UserAgent.urlopen`, `_make_request` and its `CompatRequest`, the
guard's `_urlopen`, `HTTPClient.request` and its `_build_request`), and between them they copy
and merge the same headers four times (docs/performance.md). The lane calls the pieces that
decide what is sent, in the same order and with the same arguments, and skips the plumbing
around them:

- `prepare` builds a request the way those layers would (the same header defaults, JSON
  encoding, cookie header, URL quoting, Content-Length and request text) into a `Prepared`:
  the bytes to send and the objects the response and the errors refer to;
- a step whose method, URL and headers are constants and that has no body (`CompiledRequest.
  fixed`) keeps one `Prepared` per user and sends its bytes again while the user's cookie
  jar is empty, so nothing is built per request at all;
- `send` does what is left per request: a socket from the same connection pool (with its
  keep-alive check), one `sendall`, geventhttpclient's response parser, the cookie jar, the
  status check and error mapping of `urlopen`, and the same `request` event as
  `FastHttpSession.request`, with the same fields.

What the shop receives and what is recorded are the same either way: each request is sent
once; a broken connection, a timeout or a bad status becomes the same exception and the same
response object; the allowlist is asked before every send. A request the lane cannot make
exactly (a proxy, a chunked or 100-continue body, a host the allowlist refuses, a URL the
client rejects, a session that retries or follows redirects itself) goes the session's way,
where it is sent, refused or reported as before. `tests/test_lane.py` sends the same requests
both ways to servers that answer, fail, reset, stall, set cookies and send garbage, and
compares the bytes received and every field of the events.
"""

from __future__ import annotations

import errno
import json
import time
from typing import Any

import gevent
import gevent.socket
from geventhttpclient.response import HTTPSocketPoolResponse
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, ErrorResponse, ResponseContextManager

# Headers that make a request more than one block of bytes (a chunked body, a wait for
# 100-continue): those go the session's way.
_NOT_ONE_BLOCK = ("transfer-encoding", "expect")


class LaneRefused(ValueError):
    """This request cannot be sent as one prepared block of bytes."""


class Prepared:
    """One request as the session would have sent it: its bytes, and what refers to it."""

    __slots__ = ("agent", "block_size", "data", "guard_key", "headers", "headers_type",
                 "method", "payload", "pool", "request", "request_type", "text", "url",
                 "url_split")

    agent: Any  # the session's user agent
    block_size: int
    data: bytes  # what goes on the wire
    guard_key: tuple[str, str]
    headers: dict[str, Any]  # as FastHttpSession.request passes them on
    headers_type: Any
    method: str  # as sent
    payload: Any  # the body as FastHttpSession.request passes it on
    pool: Any
    request: Any  # the CompatRequest urlopen would have made
    request_type: str  # the method as recorded
    text: str  # the request head, as the response's `_sent_request`
    url: str
    url_split: Any

    def usable(self, guard: Any, empty_jar: bool = True) -> bool:
        """May it go now: a host the allowlist allows (else the session's path refuses it
        and records why) and, for bytes built earlier, still no cookie to add."""
        if empty_jar:
            jar = self.agent.cookiejar
            if jar is not None and jar._cookies:
                return False
        scheme, netloc = self.guard_key
        return bool(guard.allows(scheme, netloc, self.url_split))


def prepare(session: Any, method: str, url: str, headers: dict[str, Any] | None,
            data: Any = None, json_body: Any = None, guard: Any = None) -> Prepared:
    """`session.request(method, url, headers=headers, data=data, json=json_body)` up to the
    socket, as `FastHttpSession.request`, `UserAgent.urlopen` and `HTTPClient.request` build
    it; raises ValueError (LaneRefused among them) for what must go the session's way. With
    a `guard`, a host it refuses is refused before a client is made for it, as in the
    session's own path."""
    agent = session.client
    if agent.max_retries or agent.max_redirects:  # the lane does neither
        raise LaneRefused("a session that retries or follows redirects")
    if agent.clientpool.client_args.get("proxy_host"):
        raise LaneRefused("a proxy")
    built = session._build_url(url)
    # FastHttpSession.request: its header defaults and the JSON body
    given = dict(headers) if headers else {}
    if session.auth_header:
        given["Authorization"] = session.auth_header
    if "Accept-Encoding" not in given and "accept-encoding" not in given:
        given["Accept-Encoding"] = "gzip, deflate, br"
    if not data and json_body is not None:
        data = json.dumps(json_body)
        if "Content-Type" not in given and "content-type" not in given:
            given["Content-Type"] = "application/json"
        if "Accept" not in given and "accept" not in given:
            given["Accept"] = "application/json"
    # UserAgent.urlopen: its default headers, the request object, the cookies
    merged = agent.default_headers.copy()
    merged.update(given)
    request = agent._make_request(built, method, headers=merged, payload=data)
    if agent.cookiejar is not None:
        agent.cookiejar.add_cookie_header(request)
    # HTTPClient.request: the body as bytes, the request text
    split = request.url_split
    if guard is not None and not guard.allows(split.scheme, split.netloc, split):
        raise LaneRefused("a host the allowlist refuses")
    client = agent.clientpool.get_client(split)
    body = request.payload
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, bytes):
        raise LaneRefused("a streamed body")
    sent = client.headers_type()
    sent.update(client.default_headers)
    sent.update(request.headers)
    if any(name in sent for name in _NOT_ONE_BLOCK):
        raise LaneRefused("a chunked or 100-continue request")
    out = Prepared()
    out.method = request.method.upper()
    out.text = client._build_request(out.method, getattr(split, "quoted_uri", split.request_uri),
                                     body=body, headers=request.headers, chunked=False)
    out.data = out.text.encode("latin-1") + body
    out.request_type = method  # as the session records it
    out.agent = agent
    out.pool = client._connection_pool
    out.block_size = client.block_size
    out.headers_type = client.headers_type
    out.request = request
    out.headers = given
    out.payload = data
    out.url = built
    out.url_split = split
    out.guard_key = (split.scheme, split.netloc)
    return out


def prepare_or_none(session: Any, method: str, url: str, headers: dict[str, Any] | None,
                    kwargs: dict[str, Any], guard: Any = None) -> Prepared | None:
    """`prepare`, or None when the request must go the session's way (which then sends it,
    refuses it, or reports why it cannot be built)."""
    try:
        return prepare(session, method, url, headers, kwargs.get("data"), kwargs.get("json"),
                       guard)
    except (ValueError, UnicodeError, TypeError):
        return None


def _exchange(prep: Prepared) -> Any:
    """`HTTPClient.request` for these bytes with no retry budget (`SingleTryClientPool`)."""
    pool = prep.pool
    sock = pool.get_socket()
    try:
        sock.sendall(prep.data)
    except gevent.socket.error as e:
        if e.errno not in (errno.ECONNRESET, errno.EPIPE):
            pool.release_socket(sock)
            raise
        # The shop may have answered before closing (a 4xx to a request it refused): read
        # that answer rather than hide it behind the socket error.
    response = HTTPSocketPoolResponse(sock, pool, block_size=prep.block_size,
                                      method=prep.method, headers_type=prep.headers_type)
    response._sent_request = prep.text
    return response


def _open(prep: Prepared) -> Any:
    """`UserAgent.urlopen` with no retries and no redirects (`max_retries = max_redirects =
    0`, as the runtime sets them): the response, or the exception the session would raise."""
    agent = prep.agent
    request = prep.request
    try:
        started = time.monotonic()
        resp = agent.response_type(_exchange(prep), request=request, sent_request=prep.text)
        resp._elapsed = time.monotonic() - started
    except gevent.GreenletExit:
        raise
    except BaseException as e:  # urlopen's own handling
        e.request = request  # type: ignore[attr-defined]
        last_error = agent._handle_error(e, url=request.url)  # raises all but retryable
        agent._handle_retries_exceeded(prep.url, last_error=last_error)  # raises
    headers = resp.headers
    if agent.cookiejar is not None and ("set-cookie" in headers or "set-cookie2" in headers):
        agent.cookiejar.extract_cookies(resp, request)
    try:
        agent._verify_status(resp.status_code, url=request.url)
    except Exception as e:
        e.response = resp  # type: ignore[attr-defined]
        e.request = request  # type: ignore[attr-defined]
        e.http_log = agent._conversation_str(  # type: ignore[attr-defined]
            request.url, resp, payload=request.payload)
        resp.release()
        last_error = agent._handle_error(e, url=request.url)  # a bad status: raises
        agent._handle_retries_exceeded(prep.url, last_error=last_error)
    return resp


def send(session: Any, prep: Prepared, name: str, catch: bool, context: Any) -> Any:
    """What `FastHttpSession.request(..., name=name, catch_response=catch, context=context)`
    returns for this request: the same response object, after the same `request` event."""
    start_time = time.time()
    if session.user:
        context = {**session.user.context(), **context}
    start_perf_counter = time.perf_counter()
    try:
        response = _open(prep)
    except FAILURE_EXCEPTIONS as e:
        if hasattr(e, "response"):
            response = e.response
            response.error = e
        else:
            response = ErrorResponse(session.client._make_request(
                prep.url, method=prep.request_type, headers=prep.headers, payload=prep.payload,
                params=None), e)
    request_meta = {
        "request_type": prep.request_type, "name": name, "context": context,
        "response": response, "exception": None, "start_time": start_time, "url": prep.url,
        "response_length": 0,
    }
    try:
        request_meta["response_length"] = len(response.content) if response.content else 0
    except FAILURE_EXCEPTIONS as e:
        request_meta["response_time"] = (time.perf_counter() - start_perf_counter) * 1000
        request_meta["exception"] = e
        if catch:
            return ResponseContextManager(response, session.request_event, request_meta, catch)
        session.request_event.fire(**request_meta)
        return response
    request_meta["response_time"] = (time.perf_counter() - start_perf_counter) * 1000
    try:
        response.raise_for_status()
    except FAILURE_EXCEPTIONS as e:
        request_meta["exception"] = e
    if catch:
        return ResponseContextManager(response, session.request_event, request_meta, catch)
    session.request_event.fire(**request_meta)
    return response


def lane_for(session: Any, method: str, url: str, headers: dict[str, Any],
             guard: Any = None) -> Prepared | None:
    """The bytes of a fixed request (no body), built once while the jar is empty, or None."""
    jar = session.client.cookiejar
    if jar is not None and jar._cookies:
        return None  # built now, they would carry today's cookies into every later send
    return prepare_or_none(session, method, url, headers, {}, guard)
