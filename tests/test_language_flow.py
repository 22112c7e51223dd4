"""The scenario language, round two (issue 18), part two: `if:` on a block, `retry:`, `for:`
and the richer checks (header, final URL, redirect chain, body does not contain, JSON type).

Fast tests check validation (file:line, did-you-mean), the generated code and the pure runtime
objects; the e2e tests run one scenario using all of them on the demo shop's flash deals
(three of which sell out), under `shop-loadtest run` and under plain `locust -f`."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from shop_loadtest.generate.blocks import to_block
from shop_loadtest.generate.locustfile import render_locustfile
from shop_loadtest.journeys import (
    MAX_FOR_ITEMS,
    MAX_RETRY,
    ForStep,
    IfStep,
    Journey,
    LoopError,
    RequestStep,
    ResponseView,
    Retry,
    Settings,
    ThinkStep,
    pause_after_failure,
)
from shop_loadtest.journeys.checks import compile_response_check, json_type, same_url
from shop_loadtest.runtime.process import Process
from shop_loadtest.scenario import load_scenario_text, parse_for
from tests.conftest import cli
from tests.scenario_text import journey_text as _journey
from tests.scenario_text import scenario_error as _error

LIST = ("      - request: GET /api/deals\n"
        "        capture: {ids: {from: 'json:$.items[*].id', pick: all}}\n")




# --- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize(("steps", "message"), [
    # if: on a block
    ("      - set: {stock: 1}\n      - {if: 'stok > 0', steps: [{request: GET /}]}\n",
     "s.yaml:7:14: journeys.0.steps.1.if: unknown variable 'stok' (did you mean stock?)"),
    ("      - {if: 'a', steps: []}\n", "s.yaml:6:9: journeys.0.steps.0: if: needs steps:"),
    ("      - {if: 'a', name: x, steps: [{request: GET /}]}\n",
     "s.yaml:6:9: journeys.0.steps.0: a if step takes only if: and steps:"),
    ("      - {if: 'a', request: GET /, steps: [{request: GET /}]}\n",
     "s.yaml:6:9: journeys.0.steps.0: a step is one of a request"),
    ("      - {steps: [{request: GET /}]}\n",
     "s.yaml:6:9: journeys.0.steps.0: steps: goes with repeat: N, for: item in list or if:"),
    ("      - set: {a: 1}\n      - if: a\n        steps:\n          - request: GET /{{ b }}\n",
     "s.yaml:9:22: journeys.0.steps.1.steps.0.request: unknown variable 'b'"),
    # on_fail_pause on a step
    ("      - {think: 1s, on_fail_pause: 2s}\n",
     "s.yaml:6:9: journeys.0.steps.0: on_fail_pause goes on a request step whose failure ends "
     "the journey (not with on_fail: continue)"),
    ("      - {request: GET /, on_fail: continue, on_fail_pause: 2s}\n",
     "s.yaml:6:9: journeys.0.steps.0: on_fail_pause goes on a request step whose failure ends "
     "the journey"),
    ("      - {request: GET /, on_fail_pause: soon}\n",
     "s.yaml:6:41: journeys.0.steps.0.on_fail_pause: expected a duration such as 90s"),
    # retry:
    ("      - {request: GET /, retry: {times: 11}}\n",
     "s.yaml:6:41: journeys.0.steps.0.retry.times: Input should be less than or equal to 10"),
    ("      - {request: GET /, retry: {times: 1}}\n",
     "s.yaml:6:41: journeys.0.steps.0.retry.times: Input should be greater than or equal to 2"),
    ("      - {request: GET /, retry: {times: 3, until: 'respons.status == 201'}}\n",
     "s.yaml:6:51: journeys.0.steps.0.retry.until: unknown variable 'respons' (did you mean "
     "response?)"),
    ("      - {request: GET /, retry: {times: 3, until: 'x ==' }}\n",
     "s.yaml:6:51: journeys.0.steps.0.retry.until: template does not parse"),
    ("      - {request: GET /, retry: {times: 3, think: soon}}\n",
     "s.yaml:6:51: journeys.0.steps.0.retry.think: expected a duration"),
    ("      - {request: GET /, retry: {times: 3, untill: x}}\n",
     "s.yaml:6:44: journeys.0.steps.0.retry.untill: unknown field 'untill' (did you mean "
     "until?)"),
    ("      - {set: {a: 1}, retry: {times: 3}}\n",
     "s.yaml:6:9: journeys.0.steps.0: retry: goes on a request step"),
    ("      - {request: 'GET /{{ attempt }}'}\n",
     "s.yaml:6:19: journeys.0.steps.0.request: unknown variable 'attempt'"),
    # for:
    (LIST + "      - for: id in idz\n        steps: [{request: 'GET /p/{{ id }}'}]\n",
     "s.yaml:8:14: journeys.0.steps.1.for: unknown variable 'idz' (did you mean ids?)"),
    (LIST + "      - for: ids\n        steps: [{request: GET /}]\n",
     "s.yaml:8:14: journeys.0.steps.1.for: expected `name in list`"),
    (LIST + "      - for: host in ids\n        steps: [{request: GET /}]\n",
     "s.yaml:8:14: journeys.0.steps.1.for: for name 'host' must be a plain name"),
    (LIST + "      - for: id in ids\n        steps: [{request: 'GET /p/{{ idd }}'}]\n",
     "s.yaml:9:27: journeys.0.steps.1.steps.0.request: unknown variable 'idd' (did you mean "
     "id?)"),
    (LIST + "      - for: id in ids\n",
     "s.yaml:8:9: journeys.0.steps.1: for: needs steps:"),
    (LIST + "      - for: id in ids\n        steps: [{repeat: 2, steps: [{request: GET /}]}]\n",
     "s.yaml:8:9: journeys.0.steps.1: a for block cannot hold another repeat or for loop"),
    (LIST + "      - repeat: 2\n        steps:\n          - if: 'ids'\n            steps:\n"
     "              - {for: i in ids, steps: [{request: GET /}]}\n",
     "s.yaml:8:9: journeys.0.steps.1: a repeat block cannot hold another repeat or for loop"),
    (LIST + "      - {for: id in ids, if: 'ids', steps: [{request: GET /}]}\n",
     "s.yaml:8:9: journeys.0.steps.1: if: goes on a request, a set: step or a block of steps: "
     "(not on for"),
    ("      - request: GET /{{ id }}\n" + LIST + "      - for: id in ids\n"
     "        steps: [{request: GET /}]\n",
     "s.yaml:6:18: journeys.0.steps.0.request: 'id' is used before the step that assigns it "
     "(step 3)"),
    # checks
    ("      - request: GET /\n        check: [{header: Location, equals: /a, contains: a}]\n",
     "s.yaml:7:17: journeys.0.steps.0.check.0: a header check takes exactly one of contains:, "
     "equals:, exists:"),
    ("      - request: GET /\n        check: [{json: $.a, type: text}]\n",
     "s.yaml:7:35: journeys.0.steps.0.check.0.type: "),
    ("      - request: GET /\n        check: [{json: $.a, contains: x}]\n",
     "s.yaml:7:17: journeys.0.steps.0.check.0: contains: does not go with json: (use one of "
     "equals:, exists:, type:)"),
    ("      - request: GET /\n        check: [{final_url: /a, equals: /a}]\n",
     "s.yaml:7:17: journeys.0.steps.0.check.0: equals: goes with json: $.path, header: Name or "
     "var: name, not with final_url:"),
    ("      - request: GET /\n        capture: {order_id: 'json:$.id'}\n"
     "        check: [{var: order_d, type: integer}]\n",
     "s.yaml:8:23: journeys.0.steps.0.check.0.var: unknown variable 'order_d' (did you mean "
     "order_id?)"),
    ("      - request: GET /\n        check: [{var: a, contains: x}]\n",
     "s.yaml:7:17: journeys.0.steps.0.check.0: contains: does not go with var: (use one of "
     "equals:, exists:, type:)"),
    ("      - request: GET /\n        check: [{redirect_chain: [303, 2000]}]\n",
     "s.yaml:7:40: journeys.0.steps.0.check.0.redirect_chain.1: an HTTP status is between 100 "
     "and 599, got 2000"),
    ("      - request: GET /\n        check: [{body_not_contain: x}]\n",
     "s.yaml:7:18: journeys.0.steps.0.check.0.body_not_contain: unknown field "
     "'body_not_contain' (did you mean body_not_contains?)"),
    ("      - request: GET /\n        check: [{final_url: '{{ base_ur }}/cart'}]\n",
     "s.yaml:7:29: journeys.0.steps.0.check.0.final_url: unknown variable 'base_ur' (did you "
     "mean base_url?)"),
    ("      - request: GET /\n        check: [{json: '$.[', type: string}]\n",
     "s.yaml:7:24: journeys.0.steps.0.check.0.json: JSON path '$.[' does not parse"),
])
def test_bad_blocks_retries_loops_and_checks_give_one_located_line(steps, message):
    assert _error(_journey(steps)).startswith(message)


def test_for_parses_a_name_and_an_expression_with_or_without_braces():
    assert parse_for("item in ids") == ("item", "ids")
    assert parse_for("url in {{ urls[:3] }}") == ("url", "urls[:3]")
    for bad in ("ids", "in ids", "1x in ids", "x in ", "x in {{ }}"):
        with pytest.raises(ValueError):
            parse_for(bad)


def test_the_bounds_are_documented_numbers():
    assert (MAX_RETRY, MAX_FOR_ITEMS) == (10, 100)
    reference = (Path(__file__).parent.parent / "docs" / "scenario-reference.md").read_text()
    assert "at most 10 tries" in reference and "at most 100 items" in reference


# --- generated code and runtime objects ---------------------------------------------------------

FLOW = """\
      - request: GET /api/deals
        capture:
          ids: {from: "json:$.items[*].id", pick: all}
          urls: {from: "json:$.items[*].url", pick: all}
        check:
          - {header: Content-Type, contains: application/json}
          - {header: X-Debug, exists: false}
          - {json: $.items, type: array}
          - {json: "$.items[0].stock", type: integer}
          - {json: "$.items[0].url", equals: "{{ base_url }}/api/deals/1"}
          - {body_not_contains: Traceback}
      - for: url in urls[:2]
        steps:
          - request: GET {{ url }}
            name: deal
            check: [{json: $.url, equals: "{{ url }}"}]
      - request: POST /api/deals/{{ ids[attempt - 1] }}/claim
        name: claim
        expect: {status: [201, 409]}
        retry: {times: 4, until: "response.status == 201"}
        capture: {left: {from: "json:$.stock", default: null}}
        check: [{var: left, type: [integer, "null"]}]
      - think: 10ms
      - if: attempt > 1
        steps:
          - request: GET /api/cart
            name: cart after a sold-out deal
            check: [{json: $.count, type: integer}]
      - request: GET /products/1
        capture: {csrf: "form:csrf_token"}
      - request: POST /cart/add
        name: add
        form: {product_id: 1, quantity: 1, csrf_token: "{{ csrf }}"}
        follow_redirects: false
        check: [{status: 303}, {header: Location, equals: /cart}]
      - request: POST /cart/add
        name: add and follow
        form: {product_id: 1, quantity: 1, csrf_token: "{{ csrf }}"}
        check: [{final_url: /cart}, {redirect_chain: [303, 200]}, {body_contains: Cart}]
"""


def test_blocks_loops_and_retries_generate_readable_code():
    scenario = load_scenario_text(_journey(FLOW), file="s.yaml")
    block = to_block(scenario.journeys[0].steps)
    loop, claim, pause, cond = block[1], block[2], block[3], block[4]
    assert isinstance(loop, ForStep) and (loop.var, loop.source) == ("url", "urls[:2]")
    assert isinstance(claim, RequestStep)
    # the pause between tries is the think step right after the request
    assert claim.retry == Retry(4, "response.status == 201", (0.01, 0.01))
    assert isinstance(pause, ThinkStep)
    assert isinstance(cond, IfStep) and cond.step is None and len(cond.steps) == 1
    source = render_locustfile(scenario, source="s.yaml", output="s.py")
    assert ("        ForStep('url', 'urls[:2]', steps=[\n"
            "            RequestStep(\n"
            "                'GET', '{{ url }}',\n") in source
    assert ("            retry=Retry(times=4, until='response.status == 201', "
            "think=(0.01, 0.01)),\n") in source
    assert "        IfStep('attempt > 1', steps=[\n" in source
    assert ("            check=[{'final_url': '/cart'},\n"
            "                   {'redirect_chain': [303, 200]},\n") in source
    assert ("from shop_loadtest.journeys import (\n    ForStep,\n    IfStep,\n    Journey,\n"
            "    RequestStep,\n    Retry,\n    Settings,\n    ThinkStep,\n)\n") in source
    journey = Journey("j", 1.0, block)
    assert journey.assigns()  # ids, urls, the for's url and attempt: reset per fresh run
    proc = Process(object(), Settings())
    compiled = proc._block(block)
    assert compiled.repeats  # spliced per run: the run's own copy of the items
    assert compiled.items[2].until({"response": ResponseView(201)}) is True
    assert compiled.items[1].source({"urls": ["/a", "/b", "/c"]}) == ["/a", "/b"]


def test_a_retry_without_its_own_think_waits_one_second_or_the_next_think():
    scenario = load_scenario_text(_journey(
        "      - {request: GET /a, retry: {times: 2}}\n"
        "      - {request: GET /b, retry: {times: 3, think: 1s..2s}}\n"
        "      - think: {exponential: 3s}\n"
        "      - {request: GET /c, retry: {times: 2}}\n"
        "      - think: {exponential: 2s, max: 9s}\n"), file="s.yaml")
    block = to_block(scenario.journeys[0].steps)
    assert [s.retry.think for s in block if isinstance(s, RequestStep) and s.retry] == [
        (1.0, 1.0), (1.0, 2.0), (2.0, 2.0)]
    assert Retry(2, think=(1.0, 2.0)).pause(random.Random(1)) == pytest.approx(1.134, abs=1e-3)


def test_a_for_walks_lists_only_and_at_most_its_maximum():
    loop = ForStep("x", "xs")
    assert loop.values((1, 2)) == [1, 2] and loop.values([]) == []
    assert len(loop.values(list(range(MAX_FOR_ITEMS)))) == MAX_FOR_ITEMS
    with pytest.raises(LoopError, match=r"101 items, more than the 100 a for: walks "
                                        r"\(slice the list: xs\[:100\]\)"):
        loop.values(list(range(MAX_FOR_ITEMS + 1)))
    for value in ("abc", {"a": 1}, 3, None):
        with pytest.raises(LoopError, match="expected a list"):
            loop.values(value)


def _check(spec: dict[str, Any]) -> Any:
    check = compile_response_check(None, spec, "end_journey")
    assert check is not None
    return check


@pytest.mark.parametrize(("spec", "view", "problem"), [
    ({"header": "Location", "equals": "/cart"}, ResponseView(303, {"location": "/cart"}), None),
    ({"header": "Location", "equals": "/cart"}, ResponseView(303, {"Location": "/login"}),
     "check header Location == '/cart': got '/login'"),
    ({"header": "Location", "equals": "/cart"}, ResponseView(200, {}),
     "check header Location == '/cart': got not there"),
    ({"header": "X-Debug", "exists": False}, ResponseView(200, {"X-Debug": "on"}),
     "check header X-Debug is absent: found 'on'"),
    ({"header": "X-Id", "exists": True}, ResponseView(200, {}),
     "check header X-Id exists: not there"),
    ({"body_not_contains": "Traceback"}, ResponseView(500, text="Traceback (most recent"),
     "check body does not contain 'Traceback': found"),
    ({"body_not_contains": "Traceback"}, ResponseView(200, text="ok"), None),
    ({"final_url": "/cart"}, ResponseView(200, url="http://s.test/cart"), None),
    ({"final_url": "/cart"}, ResponseView(200, url="http://s.test/cart?x=1"), None),
    ({"final_url": "/cart?x=2"}, ResponseView(200, url="http://s.test/cart?x=1"),
     "check final_url '/cart?x=2': got 'http://s.test/cart?x=1'"),
    ({"final_url": "/cart"}, ResponseView(200, url="http://s.test/login"),
     "check final_url '/cart': got 'http://s.test/login'"),
    ({"final_url": "http://s.test/cart"}, ResponseView(200, url="http://s.test/cart"), None),
    ({"redirect_chain": [303, 200]}, ResponseView(200, chain=(302, 200)),
     "check redirect_chain [303, 200]: got [302, 200]"),
    ({"redirect_chain": [200]}, ResponseView(200), None),
    ({"json": "$.n", "type": "integer"}, ResponseView(200, text='{"n": "3"}'),
     "check $.n is integer: got string '3'"),
    ({"json": "$.n", "type": "number"}, ResponseView(200, text='{"n": 3}'), None),
    ({"json": "$.n", "type": "integer"}, ResponseView(200, text='{"n": true}'),
     "check $.n is integer: got boolean True"),
    ({"json": "$.n", "type": ["string", "null"]}, ResponseView(200, text='{"n": null}'), None),
    ({"json": "$.n", "type": "array"}, ResponseView(200, text='{}'),
     "check $.n is array: nothing there"),
    ({"var": "order_id", "type": "integer"}, ResponseView(201), None),
    ({"var": "order_id", "equals": 7}, ResponseView(201), "check order_id == 7: got 12"),
    ({"var": "order_id", "exists": False}, ResponseView(201),
     "check order_id is not set: it is 12"),
    ({"var": "gone", "exists": True}, ResponseView(201), "check gone exists: not set"),
    ({"var": "gone", "type": "string"}, ResponseView(201), "check gone: not set"),
])
def test_richer_checks_hold_or_say_what_they_found(spec, view, problem):
    assert _check(spec).failure(view, {"order_id": 12}) == problem


def test_json_types_use_json_schema_names_and_urls_compare_by_path():
    assert [json_type(v) for v in (None, True, 1, 1.5, "a", [], {})] == [
        "null", "boolean", "integer", "number", "string", "array", "object"]
    assert same_url("http://s.test/a/", "http://s.test/a")
    assert not same_url("http://s.test/a", "/b") and same_url("http://s.test", "/")


# --- e2e on the demo shop -----------------------------------------------------------------------

def _scenario(host: str, steps: str, model: str = "arrival_rate", target: int = 8,
              budgets: str = "") -> str:
    return (f"name: flow-demo\ntarget: {{host: '{host}'}}\nload:\n  model: {model}\n"
            f"  stages: [{{duration: 0s, target: {target}}}, {{duration: 3s, target: {target}}}]\n"
            f"{budgets}journeys:\n  - name: deals\n    steps:\n" + steps)


def _run(tmp_path: Path, text: str) -> dict[str, Any]:
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    out = tmp_path / "run"
    result = cli("run", str(path), "--out", str(out), timeout=120)
    assert (out / "summary.json").exists(), result.stderr[-3000:] + result.stdout[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    summary["exit_code"] = result.returncode
    summary["by_name"] = {e["name"]: e for e in summary["endpoints"]}
    return summary


def _deals(shop: str) -> dict[int, int]:
    with urllib.request.urlopen(f"{shop}/api/deals", timeout=10) as answer:
        return {d["id"]: d["stock"] for d in json.loads(answer.read())["items"]}


@pytest.mark.e2e
def test_a_journey_moves_on_from_sold_out_deals_and_every_check_holds(tmp_path, demo_shop):
    """The shop's first three deals sell out within the run: each try is a recorded request
    (409s included), the if block runs only for journeys that needed another deal, the for
    block fetches the two absolute deal URLs, and the header, type, base_url, final URL and
    redirect-chain checks all hold on the real shop."""
    summary = _run(tmp_path, _scenario(demo_shop, FLOW))
    by_name = summary["by_name"]
    assert sum(e["failures"] for e in summary["endpoints"]) == 0, summary["errors"]
    journeys = by_name["GET /api/deals"]["requests"]
    assert journeys >= 20
    assert by_name["deal"]["requests"] >= 2 * (journeys - 3)  # a few cut short by the end
    claims, after = by_name["claim"]["requests"], by_name["cart after a sold-out deal"]
    assert _deals(demo_shop)[1] == _deals(demo_shop)[2] == _deals(demo_shop)[3] == 0
    # at most 15 journeys got a deal on their first try; the others tried again, up to 4
    assert after["requests"] >= journeys - 15 - 2
    assert journeys - 3 + after["requests"] <= claims <= 4 * journeys
    assert by_name["add"]["requests"] > 0 and by_name["add and follow (redirect 1)"][
        "requests"] > 0
    assert summary["exit_code"] == 0, summary["reasons"]


@pytest.mark.e2e
def test_a_retry_that_never_succeeds_fails_after_its_last_try_and_keeps_the_pace(tmp_path,
                                                                               demo_shop):
    """Deal 1 sells out: a journey that insists on it sends 3 tries, 200 ms apart, all
    recorded, and the last one fails with the until it waited for. Beside it, a for over a
    value that is not a list is a recorded failure (once a second at most), not a skip."""
    steps = ("      - request: POST /api/deals/1/claim\n"
             "        name: claim\n"
             "        expect: {status: [201, 409]}\n"
             "        retry: {times: 3, until: 'response.status == 201', think: 200ms}\n"
             "      - request: GET /api/cart\n"
             "        name: after\n"
             "  - name: not-a-list\n"
             "    steps:\n"
             "      - set: {word: abc}\n"
             "      - for: letter in word\n"
             "        steps: [{request: 'GET /api/products/1', name: never}]\n")
    summary = _run(tmp_path, _scenario(demo_shop, steps, model="users", target=2))
    loop = summary["by_name"]["for letter in word"]
    assert 1 <= loop["requests"] == loop["failures"] <= 4
    assert "never" not in summary["by_name"]
    assert "for letter in word: expected a list, got str" in json.dumps(summary["errors"])
    claim = summary["by_name"]["claim"]
    failed = claim["failures"]
    # 5 units sold, then 3 tries per journey (one of them cut short by the end)
    assert failed >= 2 and claim["requests"] <= 5 + 3 * (failed + 1)
    # one user for 3 s; a failing journey waits 2 x 200 ms between its tries: at most 8 of
    # them (without the pauses there would be hundreds)
    assert failed <= 9 and claim["requests"] <= 5 + 3 * 9
    assert "retry until response.status == 201: still false after 3 tries" in json.dumps(
        summary["errors"])
    assert summary["verdict"] == "fail" and summary["exit_code"] == 1


@pytest.mark.e2e
def test_the_generated_locustfile_runs_blocks_loops_and_retries_under_plain_locust(tmp_path,
                                                                                   demo_shop):
    path = tmp_path / "flow.yaml"
    path.write_text(_scenario(demo_shop, FLOW, model="users", target=2))
    locustfile = tmp_path / "flow_locustfile.py"
    result = cli("generate", str(path), "-o", str(locustfile))
    assert result.returncode == 0, result.stderr
    run = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host",
         demo_shop, "--only-summary", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    stats = {s["name"]: s for s in json.loads(run.stdout)}
    assert sum(s["num_failures"] for s in stats.values()) == 0, run.stderr[-2000:]
    assert stats["deal"]["num_requests"] > 0 and stats["claim"]["num_requests"] > 0
    assert stats["add and follow (redirect 1)"]["num_requests"] > 0


def test_a_bare_null_in_a_type_list_names_the_json_type_null():
    scenario = load_scenario_text(_journey(
        "      - request: GET /\n        check: [{json: $.a, type: [string, null]}, "
        "{json: $.b, type: null}]\n"), file="s.yaml")
    assert [c.type for c in scenario.journeys[0].steps[0].check] == [["string", "null"], "null"]


def test_a_run_writes_out_for_blocks_as_reached_and_plans_the_pauses_of_blocks_not_reached():
    from shop_loadtest.runtime.flow import for_items, planned

    proc = Process(object(), Settings())
    block = proc._block([
        ForStep("x", "xs", steps=[RequestStep("GET", "/{{ x }}", "x"), ThinkStep(1, 1)]),
        IfStep("go", steps=[ThinkStep(2, 2)]),
    ])
    loop, cond = block.items
    items = for_items(loop, {"xs": ["a", "b"]})
    assert len(items) == 6  # (bind, request, think) per item
    ctx: dict[str, Any] = {}
    for name, render in items[3].renderers:
        ctx[name] = render(ctx)
    assert ctx == {"x": "b"} and items[4].url({"x": "b"}) == "/b"
    with pytest.raises(LoopError):
        for_items(loop, {"xs": "ab"})
    # a failure before both blocks still waits their think times: the for's once, the if's
    thinks = [i for i in planned([loop, cond], random.Random()) if isinstance(i, ThinkStep)]
    assert [t.low for t in thinks] == [1, 2]


def test_a_budget_may_name_an_endpoint_inside_a_block():
    text = _journey(LIST + "      - for: id in ids\n        steps: [{request: 'GET /p/{{ id }}', "
                    "name: deal}]\n      - if: ids\n        steps: [{request: GET /c, name: c}]\n")
    load_scenario_text(text + "budgets: ['p95 of deal < 1s', 'p95 of c < 1s']\n", file="s.yaml")
    assert "no step produces an endpoint matching 'dael'" in _error(
        text + "budgets: ['p95 of dael < 1s']\n")


def test_a_steps_on_fail_pause_is_generated_and_outlasts_the_journeys():
    scenario = load_scenario_text(_journey("      - {request: GET /, on_fail_pause: 2s}\n"
                                           "      - think: 500ms\n"), file="s.yaml")
    source = render_locustfile(scenario, source="s.yaml", output="s.py")
    assert "        RequestStep('GET', '/', name='GET /', on_fail_pause=2.0),\n" in source
    block = to_block(scenario.journeys[0].steps)
    assert pause_after_failure(block, 0, random.Random(1), 1.0) == 2.0
    assert pause_after_failure(block, 0, random.Random(1), 3.0) == 3.0
