"""Redirect hops as browsers follow them (journeys/redirects.py): pure rules, no I/O."""

from __future__ import annotations

import pytest

from shop_loadtest.journeys import MAX_REDIRECTS, RedirectError, hop_name, next_hop, with_scheme

URL = "http://shop.test:8800/cart/add?x=1"


@pytest.mark.parametrize(("method", "status", "new_method", "keeps_body"), [
    ("POST", 301, "GET", False), ("POST", 302, "GET", False), ("POST", 303, "GET", False),
    ("POST", 307, "POST", True), ("POST", 308, "POST", True),
    ("GET", 301, "GET", True), ("GET", 303, "GET", False),
    ("PUT", 302, "PUT", True), ("PUT", 303, "GET", False), ("DELETE", 303, "GET", False),
    ("PATCH", 307, "PATCH", True), ("HEAD", 303, "HEAD", True), ("HEAD", 302, "HEAD", True),
])
def test_the_next_hop_takes_the_method_browsers_use(method, status, new_method, keeps_body):
    hop = next_hop(method, status, URL, "/cart")
    assert hop is not None
    assert (hop.method, hop.keep_body) == (new_method, keeps_body)


@pytest.mark.parametrize(("location", "url", "same_origin"), [
    ("/cart", "http://shop.test:8800/cart", True),
    ("next", "http://shop.test:8800/cart/next", True),
    ("?page=2#top", "http://shop.test:8800/cart/add?page=2", True),
    ("//cdn.shop.test/a", "http://cdn.shop.test/a", False),
    ("https://shop.test:8800/pay", "https://shop.test:8800/pay", False),
    ("http://shop.test:8801/", "http://shop.test:8801/", False),
    ("  /trimmed ", "http://shop.test:8800/trimmed", True),
])
def test_the_location_is_resolved_against_the_request_url(location, url, same_origin):
    hop = next_hop("GET", 302, URL, location)
    assert hop is not None and (hop.url, hop.same_origin) == (url, same_origin)


@pytest.mark.parametrize(("status", "location"), [
    (200, "/x"), (304, "/x"), (300, "/x"), (302, None), (302, ""), (201, "/created")])
def test_only_a_redirect_status_with_a_location_is_followed(status, location):
    assert next_hop("GET", status, URL, location) is None


@pytest.mark.parametrize("location", ["ftp://shop.test/x", "javascript:alert(1)",
                                      "data:text/html,hi", "mailto:ada@shop.test"])
def test_a_location_that_is_not_http_is_refused(location):
    with pytest.raises(RedirectError, match="not followed"):
        next_hop("GET", 302, URL, location)


def test_hops_are_named_after_the_step():
    assert hop_name("POST /cart/add", 0) == "POST /cart/add"
    assert hop_name("POST /cart/add", 2) == "POST /cart/add (redirect 2)"
    assert MAX_REDIRECTS == 10


@pytest.mark.parametrize(("url", "base", "expected"), [
    ("//127.0.0.2:9/x", "http://127.0.0.1:8800", "http://127.0.0.2:9/x"),
    ("//other/x?y=1", "https://shop.example", "https://other/x?y=1"),
    ("/api/products", "http://127.0.0.1:8800", "/api/products"),
    ("http://127.0.0.2/x", "http://127.0.0.1", "http://127.0.0.2/x"),
])
def test_a_scheme_less_url_takes_the_targets_scheme_so_the_guard_sees_its_host(url, base,
                                                                                expected):
    """A rendered `//host/x` must reach the allowlist as the host it names (the runtime's
    `_send` passes every URL through `with_scheme`)."""
    assert with_scheme(url, base) == expected
