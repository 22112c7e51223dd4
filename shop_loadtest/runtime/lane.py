"""The lean lane: a step whose request is fully known up front, sent as ready-made bytes.

A request through FastHttpUser passes five layers before its bytes reach the socket
(`FastHttpSession.request`, `UserAgent.urlopen`, `_make_request` and its `CompatRequest`, the
guard's `_urlopen`, `HTTPClient.request` and its `_build_request`), and they rebuild the same
header dicts, URL objects and request text on every call, about a quarter of the CPU a loopback
request costs (docs/performance.md). For a step whose method, URL and headers are constants,
none of that can change between two sends while the user's cookie jar is empty. A `Lane` asks
those same layers once for the request text they would send, keeps its bytes, and then does per
request only what is left: a socket from the same connection pool, one `sendall`, the library's
own response parser, and the same status check, error mapping and request event.

What the shop receives and what is recorded are the same as through the session:
- the bytes are the library's own (`HTTPClient._build_request`), built once;
- each request is sent once, and a broken connection, a timeout or a bad status becomes the
  same exception and the same response object as through `FastHttpSession.request` (the code
  below follows it and `UserAgent.urlopen` with no retries and no redirects, as the runtime
  configures every session);
- the guard's allowlist is asked on every send; a refused host, a proxy, a cookie to send or a
  body to stream takes the session's own path instead;
- `tests/test_lane.py` sends the same requests both ways to servers that answer, fail, reset,
  stall and set cookies, and compares the bytes received and the events recorded.
"""

from __future__ import annotations

import errno
import time
from typing import Any

import gevent
import gevent.socket
from geventhttpclient.response import HTTPSocketPoolResponse
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, ErrorResponse, ResponseContextManager

# Headers whose request is not one block of bytes (a chunked body, a 100-continue wait).
_NOT_FIXED = ("transfer-encoding", "expect")


class Lane:
    """One step's request for one user's session, as the bytes its client would send."""

    __slots__ = ("agent", "block_size", "data", "guard_key", "headers", "headers_type",
                 "method", "pool", "request", "request_type", "text", "url", "url_split")

    def __init__(self, session: Any, method: str, url: str, headers: dict[str, Any],
                 ) -> None:
        agent = session.client
        built = session._build_url(url)
        # What FastHttpSession.request adds, then what urlopen merges, in their order.
        fixed = dict(headers) if headers else {}
        if session.auth_header:
            fixed["Authorization"] = session.auth_header
        if "Accept-Encoding" not in fixed and "accept-encoding" not in fixed:
            fixed["Accept-Encoding"] = "gzip, deflate, br"
        merged = agent.default_headers.copy()
        merged.update(fixed)
        request = agent._make_request(built, method, headers=merged)
        split = request.url_split
        client = agent.clientpool.get_client(split)
        sent = client.headers_type()
        sent.update(client.default_headers)
        sent.update(request.headers)
        if any(name in sent for name in _NOT_FIXED):
            raise LaneRefused("a chunked or 100-continue request")
        uri = getattr(split, "quoted_uri", split.request_uri)
        self.request_type = method  # as the session records it
        self.method = request.method.upper()
        self.text = client._build_request(self.method, uri, body=b"", headers=request.headers,
                                          chunked=False)
        self.data = self.text.encode("latin-1")
        self.agent = agent
        self.pool = client._connection_pool
        self.block_size = client.block_size
        self.headers_type = client.headers_type
        self.request = request
        self.headers = fixed
        self.url = built
        self.url_split = split
        self.guard_key = (split.scheme, split.netloc)

    def usable(self, guard: Any) -> bool:
        """Can this send go the lean way: an empty cookie jar (nothing to add) and a host
        the allowlist allows (else the session's path refuses it and records why)."""
        jar = self.agent.cookiejar
        if jar is not None and jar._cookies:
            return False
        scheme, netloc = self.guard_key
        return bool(guard.allows(scheme, netloc, self.url_split))

    def _exchange(self) -> Any:
        """`HTTPClient.request` for these bytes with no retry budget (`SingleTryClientPool`)."""
        pool = self.pool
        sock = pool.get_socket()
        try:
            sock.sendall(self.data)
        except gevent.socket.error as e:
            if e.errno not in (errno.ECONNRESET, errno.EPIPE):
                pool.release_socket(sock)
                raise
            # The shop may have answered before closing (a 4xx to a request it refused):
            # read that answer rather than hide it behind the socket error.
        response = HTTPSocketPoolResponse(sock, pool, block_size=self.block_size,
                                          method=self.method, headers_type=self.headers_type)
        response._sent_request = self.text
        return response

    def open(self) -> Any:
        """`UserAgent.urlopen` with no retries and no redirects (`max_retries =
        max_redirects = 0`, as the runtime sets them): the response, or the exception the
        session would have got."""
        agent = self.agent
        request = self.request
        try:
            started = time.monotonic()
            resp = agent.response_type(self._exchange(), request=request,
                                       sent_request=self.text)
            resp._elapsed = time.monotonic() - started
        except gevent.GreenletExit:
            raise
        except BaseException as e:  # urlopen's own handling, below
            e.request = request  # type: ignore[attr-defined]
            last_error = agent._handle_error(e, url=request.url)  # raises all but retryable
            agent._handle_retries_exceeded(self.url, last_error=last_error)  # raises
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
            agent._handle_retries_exceeded(self.url, last_error=last_error)
        return resp

    def send(self, session: Any, name: str, catch: bool, context: Any) -> Any:
        """`FastHttpSession.request(method, url, name=name, headers=..., catch_response=catch,
        context=context)` for this lane's request: the same response object, the same
        `request` event with the same fields."""
        start_time = time.time()
        if session.user:
            context = {**session.user.context(), **context}
        start_perf_counter = time.perf_counter()
        try:
            response = self.open()
        except FAILURE_EXCEPTIONS as e:
            if hasattr(e, "response"):
                response = e.response
                response.error = e
            else:
                response = ErrorResponse(session.client._make_request(
                    self.url, method=self.request_type, headers=self.headers, payload=None,
                    params=None), e)
        request_meta = {
            "request_type": self.request_type, "name": name, "context": context,
            "response": response, "exception": None, "start_time": start_time,
            "url": self.url, "response_length": 0,
        }
        try:
            request_meta["response_length"] = len(response.content) if response.content else 0
        except FAILURE_EXCEPTIONS as e:
            request_meta["response_time"] = (time.perf_counter() - start_perf_counter) * 1000
            request_meta["exception"] = e
            if catch:
                return ResponseContextManager(response, session.request_event, request_meta,
                                              catch)
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


class LaneRefused(ValueError):
    """This request cannot be sent as fixed bytes: the session's path sends it."""


def lane_for(session: Any, method: str, url: str, headers: dict[str, Any]) -> Lane | None:
    """The lane of a fixed request, or None when it must go the session's way (a proxy, a
    body, a URL the client will not build: the session's path reports that)."""
    agent = session.client
    if agent.clientpool.client_args.get("proxy_host"):
        return None
    if agent.max_retries or agent.max_redirects:  # the lane follows neither
        return None
    try:
        return Lane(session, method, url, headers)
    except (ValueError, UnicodeError):
        return None
