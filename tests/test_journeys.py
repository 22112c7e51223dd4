"""Templates, captures, checks, think times and data pools, without Locust: journeys.py is pure.

Captures and checks run on real responses of the demo shop (fetched with http.client) as well
as on small hand-written bodies for the edge cases.
"""

from __future__ import annotations

import http.client
import random
from urllib.parse import urlencode, urlsplit

import pytest
from jinja2 import UndefinedError

from shop_loadtest.generate.blocks import to_block
from shop_loadtest.journeys import (
    Capture,
    DataExhausted,
    DataPool,
    DataSource,
    MissingSecret,
    RequestStep,
    ResponseView,
    Row,
    SecretEnv,
    ThinkStep,
    compile_request,
    compile_value,
    make_environment,
)
from shop_loadtest.scenario import load_scenario_text


@pytest.fixture(scope="module")
def env():
    return make_environment(seed=1)


class Client:
    """A tiny cookie-keeping HTTP client for the demo shop (no redirects followed)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.cookies: dict[str, str] = {}

    def __call__(self, method: str, path: str, form: dict | None = None) -> ResponseView:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        pairs = resp.getheaders()
        conn.close()
        view = ResponseView(resp.status, pairs, text, lambda: dict(self.cookies))
        for name, value in pairs:
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        return view


def cap(spec, **options) -> Capture:
    return Capture.parse("x", {"from": spec, **options} if options else spec)


# --- Templates --------------------------------------------------------------------------------

def test_constants_are_returned_as_they_are_without_rendering():
    class NoTemplates:  # any attempt to compile a template fails loudly
        def __getattr__(self, name):
            raise AssertionError(f"compiled a constant: {name}")

    value = {"a": [1, "two", {"three": 3.0}], "b": None}
    render = compile_value(NoTemplates(), value)
    assert render({}) is value
    step = RequestStep("POST", "/cart/add", name="add", query={"page": 2}, form={"q": "a b"},
                       headers={"X-A": "1"})
    req = compile_request(NoTemplates(), step, {"Accept": "text/html"})
    assert req.url({}) == "/cart/add?page=2" and req.url({}) is req.url({})
    assert req.payload({}) == "q=a+b" and req.headers({}) is req.headers({})


def test_a_single_expression_keeps_its_type_and_text_templates_render(env):
    render = compile_value(env, {"id": "{{ pid }}", "ids": ["{{ pid + 1 }}"],
                                 "label": "product {{ pid }}"})
    assert render({"pid": 7}) == {"id": 7, "ids": [8], "label": "product 7"}


def test_an_undefined_name_fails_instead_of_sending_an_empty_value(env):
    with pytest.raises(UndefinedError, match="'pid' is undefined"):
        compile_value(env, "{{ pid }}")({})
    with pytest.raises(UndefinedError):
        compile_value(env, "/products/{{ pid }}")({})


def test_a_seed_makes_faker_and_the_random_helpers_repeat():
    def draw(seed):
        e = make_environment(seed=seed, locale="de_DE")
        return compile_value(e, "{{ faker.name() }} {{ random_int(1, 10**6) }} {{ uuid() }}")({})

    assert draw(42) == draw(42) != draw(43)


def test_secrets_are_remembered_scrubbed_and_missing_ones_named():
    secrets = SecretEnv({"SHOP_TOKEN": "s3cr3t-value"})
    e = make_environment(secrets=secrets)
    assert compile_value(e, "Bearer {{ env.SHOP_TOKEN }}")({}) == "Bearer s3cr3t-value"
    assert secrets.scrub("denied for s3cr3t-value") == "denied for ***"
    with pytest.raises(MissingSecret, match="environment variable NOPE is not set"):
        compile_value(e, "{{ env.NOPE }}")({})
    assert compile_value(e, "{{ env.get('NOPE', 'fallback') }}")({}) == "fallback"


# --- Requests ---------------------------------------------------------------------------------

def test_query_parameters_are_templated_and_url_encoded(env):
    step = RequestStep("GET", "/search?sort=price", name="s",
                       query={"q": "{{ term }}", "tags": ["a", "b"], "skip": None, "page": 2})
    req = compile_request(env, step)
    assert req.url({"term": "café & tea"}) == (
        "/search?sort=price&q=caf%C3%A9+%26+tea&tags=a&tags=b&page=2")


def test_bodies_headers_and_expected_statuses(env):
    form = compile_request(env, RequestStep("POST", "/login", name="l",
                                            form={"email": "{{ e }}", "n": 1},
                                            headers={"content-type": "text/x"}),
                           {"Content-Type": "a/b", "X-Shop": "{{ e }}"})
    assert form.payload({"e": "a@b.c"}) == "email=a%40b.c&n=1"
    assert form.headers({"e": "a@b.c"}) == {"content-type": "text/x", "X-Shop": "a@b.c"}
    assert not form.is_json and form.expected(303) and not form.expected(404)
    js = compile_request(env, RequestStep("PUT", "/x", name="x", json={"n": "{{ n }}"},
                                          check=[{"status": [200, 204], "on_fail": "continue"}]))
    assert js.is_json and js.payload({"n": 3}) == {"n": 3}
    assert js.statuses == {200, 204} and js.status_on_fail == "continue"
    raw = compile_request(env, RequestStep("PATCH", "/x", name="x", body="n={{ n }}"))
    assert raw.payload({"n": 3}) == "n=3"


# --- Captures on the demo shop's real pages ---------------------------------------------------

@pytest.fixture(scope="module")
def shop(demo_shop):
    return Client(demo_shop)


def test_css_captures_on_the_catalogue(shop):
    page = shop("GET", "/")
    assert page.status == 200
    first = cap("css:ul.products a@href").extract(page)
    every = cap("css:ul.products a@href", pick="all").extract(page)
    assert first == "/products/1" and len(every) == 24 and every[0] == first
    assert cap("css:ul.products a@href", pick="random").extract(page, random.Random(3)) in every
    names = cap("css:ul.products a", pick="all").extract(page)
    assert cap("css:ul.products a").extract(page) == names[0] and len(names) == 24


def test_the_csrf_token_read_three_ways_is_the_one_the_shop_accepts(shop):
    page = shop("GET", "/products/5")
    token = cap("form:csrf_token").extract(page)
    assert token == cap("css:input[name=csrf_token]@value").extract(page)
    assert token == cap(r'regex:name="csrf_token" value="([^"]+)"').extract(page)
    assert cap("form:form[action='/cart/add'] product_id").extract(page) == "5"
    name = cap("css:main h1").extract(page)
    assert name == cap("json:$.name").extract(shop("GET", "/api/products/5"))

    refused = shop("POST", "/cart/add", {"product_id": 5, "quantity": 1, "csrf_token": "x"})
    assert refused.status == 403
    added = shop("POST", "/cart/add", {"product_id": 5, "quantity": 1, "csrf_token": token})
    assert added.status == 303
    assert cap("header:Location").extract(added) == "/cart"
    assert cap("cookie:shop_session").extract(added) == shop.cookies["shop_session"]
    checkout = shop("GET", "/checkout")
    assert cap("form:address").extract(checkout) == ""  # a textarea, read by the parser
    assert cap("form:form[action='/checkout'] csrf_token").extract(checkout) == token


def test_json_captures_on_the_api(shop):
    listing = shop("GET", "/api/products?page=2")
    ids = cap("json:$.items[*].id", pick="all").extract(listing)
    assert ids == list(range(21, 41))
    assert cap("json:$.items[0].id").extract(listing) == 21
    with pytest.raises(LookupError, match=r"capture x: nothing matched json:\$.nope"):
        cap("json:$.nope").extract(listing)
    html = shop("GET", "/")
    with pytest.raises(LookupError, match="capture x: the response is not JSON"):
        cap("json:$.id").extract(html)
    assert cap("json:$.id", default=None).extract(html) is None


def test_a_cookie_set_earlier_comes_from_the_jar():
    jar = {"session": "from-the-jar"}
    view = ResponseView(200, [("Set-Cookie", "other=1; Path=/")], "", lambda: jar)
    assert cap("cookie:other").extract(view) == "1"
    assert cap("cookie:session").extract(view) == "from-the-jar"


# --- Form fields: the fast path and the parser agree ------------------------------------------

FORM = """<form action="/a"><input type=hidden name=t value='a&amp;b'>
<input name="gt" value="x>y" data-x='"'>
<input type="checkbox" name="c" value="no"><input type="checkbox" name="c" value="yes" checked>
<input name="empty"><textarea name="note">hi &lt;3</textarea>
<select name="s"><option value="1">one</option><option value="2" selected>two</option></select>
</form><!-- <input name="ghost" value="1"> -->"""


@pytest.mark.parametrize(("field", "first", "every"), [
    ("t", "a&b", ["a&b"]),
    ("gt", "x>y", ["x>y"]),
    ("c", "yes", ["yes"]),
    ("empty", "", [""]),
    ("note", "hi <3", ["hi <3"]),
    ("s", "2", ["2"]),
])
def test_form_fields_read_like_a_browser_would_submit_them(field, first, every):
    view = ResponseView(200, text=FORM)
    assert cap(f"form:{field}").extract(view) == first
    assert cap(f"form:{field}", pick="all").extract(view) == every
    assert cap(f"form:form {field}").extract(ResponseView(200, text=FORM)) == first


# --- Checks -----------------------------------------------------------------------------------

def _checks(env, *specs):
    return compile_request(env, RequestStep("GET", "/", name="x", check=list(specs))).checks


def test_checks_pass_and_fail_with_a_readable_message(env):
    view = ResponseView(200, text='{"state": "paid", "id": 12, "lines": []}')
    equals, exists, absent, body = _checks(
        env, {"json": "$.state", "equals": "{{ want }}"}, {"json": "$.id", "exists": True},
        {"json": "$.error", "exists": False}, {"body_contains": "#{{ n }}"})
    assert equals.failure(view, {"want": "paid"}) is None
    assert equals.failure(view, {"want": "open"}) == "check $.state == 'open': got 'paid'"
    assert exists.failure(view, {}) is None and absent.failure(view, {}) is None
    assert body.failure(view, {"n": 12}) == "check body contains '#12': not found"
    nothing = ResponseView(200, text="{}")
    assert exists.failure(nothing, {}) == "check $.id exists: nothing there"
    assert equals.failure(nothing, {"want": "paid"}) == "check $.state == 'paid': nothing there"


def test_equals_compares_types_as_json_gives_them(env):
    (check,) = _checks(env, {"json": "$.id", "equals": "{{ id }}"})
    view = ResponseView(200, text='{"id": 12}')
    assert check.failure(view, {"id": 12}) is None
    assert check.failure(view, {"id": "12"}) == "check $.id == '12': got 12"


# --- Think times and data ---------------------------------------------------------------------

def test_think_times_fixed_range_and_distributions():
    rng = random.Random(5)
    assert ThinkStep(2.0, 2.0).draw(rng) == 2.0
    assert all(1.0 <= ThinkStep(1.0, 3.0).draw(rng) <= 3.0 for _ in range(200))
    exp = [ThinkStep(0.0, None, dist="exponential", mean=2.0).draw(rng) for _ in range(4000)]
    assert 1.85 < sum(exp) / len(exp) < 2.15
    normal = [ThinkStep(1.5, 2.5, dist="normal", mean=2.0, sd=1.0).draw(rng) for _ in range(500)]
    assert min(normal) == 1.5 and max(normal) == 2.5


def _pool(mode: str, n: int = 6) -> DataPool:
    rows = [Row({"code": f"C{i}"}) for i in range(n)]
    return DataPool(DataSource("coupons", "x.csv", mode=mode), rows, random.Random(1))


def test_sequential_goes_round_and_random_draws_any_row():
    seq = _pool("sequential", 3)
    assert [seq.draw().code for _ in range(5)] == ["C0", "C1", "C2", "C0", "C1"]
    rnd = _pool("random", 3)
    assert {rnd.draw().code for _ in range(100)} == {"C0", "C1", "C2"}


def test_unique_rows_are_never_reused_and_exhaustion_is_named():
    pool = _pool("unique", 3)
    assert [pool.draw().code for _ in range(3)] == ["C0", "C1", "C2"]
    with pytest.raises(DataExhausted, match="data 'coupons' is exhausted: all 3 unique rows are "
                                            "used"):
        pool.draw()


def test_workers_split_a_unique_pool_without_overlap():
    shares = []
    for index in range(3):
        pool = _pool("unique", 10)
        pool.share(index, 3)
        shares.append([pool.draw().code for _ in range(pool.remaining())])
    assert sorted(c for share in shares for c in share) == sorted(f"C{i}" for i in range(10))
    assert shares[1] == ["C1", "C4", "C7"]
    late = _pool("unique", 4)
    late.draw()  # C0 was handed out before the share arrived
    late.share(0, 2)
    assert [late.draw().code for _ in range(late.remaining())] == ["C2"]


def test_rows_read_by_name_or_subscript_in_templates(env, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("code, discount pct\nA1, 10\n")
    pool = DataPool.load(DataSource("c", path))
    row = pool.draw()
    assert compile_value(env, "{{ c.code }}/{{ c['discount pct'] }}")({"c": row}) == "A1/10"


# --- Scenario steps as the generator writes them ---------------------------------------------

def test_to_block_keeps_long_captures_checks_and_distributions():
    scenario = load_scenario_text("""
name: t
load: {model: users, stages: [{duration: 1s, target: 1}]}
journeys:
  - name: j
    steps:
      - request: DELETE /cart/items/1
        capture: {a: header:X, b: {from: "css:a@href", pick: all}}
        check: [{status: 200}, {json: $.count, equals: 0, on_fail: continue}]
        on_fail: continue
      - think: {normal: 2s, sd: 500ms, max: 3s}
""")
    request, think = to_block(scenario.journeys[0].steps)
    assert request.capture == {"a": "header:X", "b": {"from": "css:a@href", "pick": "all"}}
    assert request.check == [{"status": [200]},
                             {"json": "$.count", "equals": 0, "on_fail": "continue"}]
    assert request.on_fail == "continue" and request.method == "DELETE"
    assert think == ThinkStep(0.0, 3.0, dist="normal", mean=2.0, sd=0.5)


# --- the pause after a failure (no closed-model user may run faster than its plan) ----------

def _steps(*items):
    from shop_loadtest.journeys import RequestStep, ThinkStep

    return [ThinkStep(x, x) if isinstance(x, float) else RequestStep("GET", x, x)
            for x in items]


@pytest.mark.parametrize("failed_at", range(-1, 6))
def test_a_failure_anywhere_waits_out_the_think_times_not_reached(failed_at):
    import random

    from shop_loadtest.journeys import RequestStep, ThinkStep, pause_after_failure

    steps = _steps("/a", 1.0, "/b", 0.5, "/c", 2.0)
    if failed_at >= 0 and not isinstance(steps[failed_at], RequestStep):
        return  # only a request (or the data draw, -1) can fail
    reached = sum(s.low for s in steps[:max(failed_at, 0)] if isinstance(s, ThinkStep))
    pause = pause_after_failure(steps, failed_at, random.Random(1))
    # the whole journey takes as long as its think times say, however early it failed
    assert reached + pause == pytest.approx(3.5)


@pytest.mark.parametrize(("on_fail_pause", "expected"), [(None, 2.0), (0.5, 2.0), (5.0, 5.0)])
def test_on_fail_pause_is_a_floor_never_a_shortcut(on_fail_pause, expected):
    import random

    from shop_loadtest.journeys import pause_after_failure

    steps = _steps("/a", 1.0, "/b", 2.0)
    assert pause_after_failure(steps, 2, random.Random(), on_fail_pause) == expected


def test_a_random_think_time_is_drawn_as_it_would_have_been():
    import random

    from shop_loadtest.journeys import ThinkStep, pause_after_failure

    steps = [*_steps("/a"), ThinkStep(1.0, 3.0)]
    pauses = [pause_after_failure(steps, 0, random.Random(seed)) for seed in range(200)]
    assert all(1.0 <= p <= 3.0 for p in pauses)
    assert sum(pauses) / len(pauses) == pytest.approx(2.0, abs=0.2)
    assert pause_after_failure(_steps("/a", "/b"), 0, random.Random()) == 0.0
