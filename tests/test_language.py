"""The scenario language, round two (issue 18): `set:` steps and `{{ host }}`/`{{ base_url }}`.

Fast tests check validation (file:line, did-you-mean), the generated code and the runtime
objects; the e2e tests run the generated locustfile on the demo shop, under `shop-loadtest run`
and under plain `locust -f`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from shop_loadtest.generate.blocks import to_block
from shop_loadtest.generate.locustfile import render_locustfile
from shop_loadtest.journeys import Journey, RequestStep, SetStep, Settings, target_names
from shop_loadtest.runtime.process import Process
from shop_loadtest.runtime.sessions import Visit
from shop_loadtest.scenario import load_scenario_text
from tests.conftest import cli
from tests.scenario_text import HEAD
from tests.scenario_text import journey_text as _journey
from tests.scenario_text import scenario_error as _error

# --- set: validation ----------------------------------------------------------------------------

def test_set_values_are_usable_by_later_steps_and_by_later_names_of_the_same_step():
    scenario = load_scenario_text(_journey(
        "      - set: {email: '{{ faker.email() }}', login: '{{ email }}', n: 3}\n"
        "      - request: POST /api/login\n"
        "        json: {email: '{{ login }}', count: '{{ n }}'}\n"), file="s.yaml")
    step = scenario.journeys[0].steps[0]
    assert step.set_ == {"email": "{{ faker.email() }}", "login": "{{ email }}", "n": 3}


@pytest.mark.parametrize(("steps", "message"), [
    ("      - set: {email: '{{ faker.emial() }}'}\n",
     "s.yaml:6:22: journeys.0.steps.0.set.email: unknown Faker provider faker.emial (did you "
     "mean faker.email?)"),
    ("      - set: {email: x}\n      - request: GET /u/{{ emial }}\n",
     "s.yaml:7:18: journeys.0.steps.1.request: unknown variable 'emial' (did you mean email?)"),
    ("      - request: GET /u/{{ email }}\n      - set: {email: x}\n",
     "s.yaml:6:18: journeys.0.steps.0.request: 'email' is used before the step that sets it "
     "(step 2)"),
    ("      - set: {a: '{{ b }}', b: 1}\n",
     "s.yaml:6:18: journeys.0.steps.0.set.a: 'b' is used before the step that sets it (step 1)"),
    ("      - set: {host: x}\n",
     "s.yaml:6:21: journeys.0.steps.0.set.host: set name 'host' must be a plain name"),
    ("      - set: {my-name: x}\n",
     "s.yaml:6:24: journeys.0.steps.0.set.my-name: set name 'my-name' must be a plain name"),
    ("      - set: {a: 1}\n        request: GET /\n",
     "s.yaml:6:9: journeys.0.steps.0: a step is one of a request"),
    ("      - set: {a: 1}\n        name: x\n",
     "s.yaml:6:9: journeys.0.steps.0: a set step takes nothing else"),
    ("      - set: {}\n",
     "s.yaml:6:9: journeys.0.steps.0: set: needs at least one name: value"),
    ("      - sett: {a: 1}\n",
     "s.yaml:6:9: journeys.0.steps.0.sett: unknown field 'sett' (did you mean set?)"),
])
def test_bad_set_steps_give_one_located_line_with_a_suggestion(steps, message):
    assert _error(_journey(steps)).startswith(message)


def test_a_name_set_in_the_steps_is_not_yet_there_in_on_start():
    text = (HEAD + "journeys:\n  - name: j\n    on_start:\n      - request: GET /{{ a }}\n"
            "    steps:\n      - set: {a: x}\n")
    assert _error(text).startswith(
        "s.yaml:6:18: journeys.0.on_start.0.request: 'a' is used before the journey's steps, "
        "which run after on_start")


# --- {{ host }} / {{ base_url }} ----------------------------------------------------------------

def test_host_and_base_url_are_the_users_host_without_a_trailing_slash():
    assert target_names("http://127.0.0.1:8000/") == {"host": "http://127.0.0.1:8000",
                                                      "base_url": "http://127.0.0.1:8000"}
    assert target_names("https://shop.example/base") == {
        "host": "https://shop.example/base", "base_url": "https://shop.example/base"}
    assert target_names(None) == {"host": "", "base_url": ""}


def test_host_and_base_url_validate_in_steps_variables_and_headers():
    text = (HEAD + "variables: {api: '{{ base_url }}/api'}\n"
            "target: {host: 'http://127.0.0.1:1', headers: {Origin: '{{ host }}'}}\n"
            "journeys:\n  - name: j\n    steps:\n"
            "      - request: GET {{ base_url }}/api/products\n"
            "      - request: POST /api/cart/items\n"
            "        json: {next: '{{ api }}/cart', back: '{{ host }}'}\n")
    load_scenario_text(text, file="s.yaml")
    assert _error(_journey("      - request: GET {{ base_ur }}/x\n")).endswith(
        "unknown variable 'base_ur' (did you mean base_url?)")
    assert "variable name 'base_url' must be a plain name" in _error(
        HEAD + "variables: {base_url: x}\njourneys: [{name: j, steps: [{request: GET /}]}]\n")
    assert "capture name 'host' must be a plain name" in _error(_journey(
        "      - {request: GET /, capture: {host: 'header:Host'}}\n"))


# --- generated code and runtime objects ---------------------------------------------------------

SET_SCENARIO = textwrap.dedent("""\
    name: set-demo
    target: {host: "http://127.0.0.1:9"}
    load:
      model: {model}
      stages: [{duration: 0s, target: 1}, {duration: {seconds}s, target: 1}]
    journeys:
      - name: login
        steps:
          - set:
              email: "{{ faker.email() }}"
              me_url: "{{ base_url }}/api/me"
          - request: POST /api/login
            json: {email: "{{ email }}", password: secret}
          - request: GET {{ me_url }}
            name: me
            check:
              - {json: $.email, equals: "{{ email }}"}
    """)


def _set_scenario(model: str = "users", seconds: float = 3) -> str:
    return SET_SCENARIO.replace("{model}", model).replace("{seconds}", str(seconds))


def test_set_steps_are_generated_as_readable_set_step_calls_that_compile():
    scenario = load_scenario_text(_set_scenario(), file="set.yaml")
    block = to_block(scenario.journeys[0].steps)
    assert block[0] == SetStep({"email": "{{ faker.email() }}", "me_url": "{{ base_url }}/api/me"})
    source = render_locustfile(scenario, source="set.yaml", output="set.py")
    assert ("        SetStep({'email': '{{ faker.email() }}', 'me_url': '{{ base_url }}/api/me'}),"
            in source.splitlines())
    assert "import Journey, RequestStep, SetStep, Settings, ThinkStep" in source
    plain = render_locustfile(load_scenario_text(_journey("      - request: GET /\n"),
                                                 file="s.yaml"), source="s.yaml", output="s.py")
    assert "SetStep" not in plain  # imported only where it is used


def test_a_set_step_makes_fresh_journeys_reset_their_variables():
    only_set = Journey("j", 1.0, [SetStep({"a": "{{ uuid() }}"}), RequestStep("GET", "/", "/")])
    assert only_set.assigns()
    assert not Journey("j", 1.0, [RequestStep("GET", "/", "/")]).assigns()
    visit = Visit({"vars": {}}, fresh=True, captures=only_set.assigns())
    visit.on_start_done()
    visit.begin()["a"] = "from run 1"
    assert "a" not in visit.begin()
    kept = Visit({"vars": {}}, fresh=False, captures=True)
    kept.begin()["a"] = "from run 1"
    assert kept.begin()["a"] == "from run 1"


def test_set_values_are_compiled_in_order_and_keep_their_type(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text("code\nX1\n")
    from shop_loadtest.journeys import DataSource

    proc = Process(object(), Settings(data=[DataSource("coupons", csv)]))
    block = proc._block([SetStep({"n": "{{ 2 + 1 }}", "twice": "{{ n * 2 }}",
                                  "code": "{{ coupons.code }}-{{ n }}"})])
    assert block.data == ("coupons",)  # a set: that reads a data row draws it
    ctx: dict[str, Any] = {"coupons": {"code": "X1"}}
    for name, render in block.items[0].renderers:
        ctx[name] = render(ctx)
    assert (ctx["n"], ctx["twice"], ctx["code"]) == (3, 6, "X1-3")


# --- e2e on the demo shop -----------------------------------------------------------------------

def _run(tmp_path: Path, text: str, *args: str) -> dict[str, Any]:
    path = tmp_path / "set.yaml"
    path.write_text(text)
    out = tmp_path / "run"
    result = cli("run", str(path), "--out", str(out), *args, timeout=120)
    assert (out / "summary.json").exists(), result.stderr[-3000:] + result.stdout[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    summary["exit_code"] = result.returncode
    summary["by_name"] = {e["name"]: e for e in summary["endpoints"]}
    return summary


@pytest.mark.e2e
@pytest.mark.parametrize("model", ["users", "arrival_rate"])
def test_a_set_value_is_sent_in_two_steps_and_base_url_follows_host(tmp_path, demo_shop, model):
    """The email made once is the one the shop logged in (the check compares them), and the
    absolute `{{ base_url }}/api/me` goes to the host given on the command line, not the
    scenario's unreachable one."""
    summary = _run(tmp_path, _set_scenario(model), "--host", demo_shop,
                   "--allow-host", demo_shop)
    login, me = summary["by_name"]["POST /api/login"], summary["by_name"]["me"]
    assert me["requests"] > 0 and login["requests"] >= me["requests"]
    assert login["failures"] == me["failures"] == 0, summary["errors"]
    assert summary["exit_code"] == 0, summary["reasons"]


@pytest.mark.e2e
def test_a_set_value_that_cannot_be_made_fails_the_journey_before_its_requests(tmp_path,
                                                                             demo_shop):
    text = _set_scenario().replace('me_url: "{{ base_url }}/api/me"',
                                   'token: "{{ env.SLT_TEST_NEVER_SET_TOKEN }}"')
    text = text.replace("GET {{ me_url }}", "GET /api/me")
    text += "budgets: [\"error_rate < 1%\"]\n"
    summary = _run(tmp_path, text, "--host", demo_shop, "--allow-host", demo_shop)
    failed = summary["by_name"]["set token"]
    assert failed["requests"] == failed["failures"] > 0
    # one failure a second at most: the user pauses after a failure that sent nothing
    assert failed["requests"] <= 6
    assert "POST /api/login" not in summary["by_name"]  # nothing after it was sent
    assert "SLT_TEST_NEVER_SET_TOKEN" in json.dumps(summary["errors"])
    assert summary["verdict"] == "fail" and summary["exit_code"] == 1


@pytest.mark.e2e
def test_the_generated_locustfile_runs_set_and_repeat_steps_under_plain_locust(tmp_path, demo_shop):
    scenario_path = tmp_path / "set.yaml"
    browse = "  - name: browse\n    steps:\n" + REPEAT.replace("{count}", "2").replace(
        "GET /api/cart/{{ pid }}", "GET /api/products/{{ pid }}\n        name: last")
    scenario_path.write_text(_set_scenario(seconds=3).replace("target: 1}", "target: 2}")
                             + browse)
    locustfile = tmp_path / "set_locustfile.py"
    result = cli("generate", str(scenario_path), "-o", str(locustfile))
    assert result.returncode == 0, result.stderr
    run = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host",
         demo_shop, "--only-summary", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    stats = {s["name"]: s for s in json.loads(run.stdout)}
    assert stats["me"]["num_requests"] > 0, run.stderr[-2000:]
    assert sum(s["num_failures"] for s in stats.values()) == 0, run.stderr[-2000:]
    assert stats["product"]["num_requests"] >= 2 * stats["last"]["num_requests"] > 0
    assert stats["me"]["num_requests"] > 0


# --- repeat: -----------------------------------------------------------------------------------

def test_repeat_counts_parse_within_the_documented_bounds():
    from shop_loadtest.journeys import MAX_REPEAT
    from shop_loadtest.scenario import parse_repeat

    assert MAX_REPEAT == 100
    assert parse_repeat(3) == (3, 3) and parse_repeat("3..6") == (3, 6)
    assert parse_repeat("1..100") == (1, 100)
    for bad in (0, 101, "6..3", "0..2", "3..101", "x", "3..", True):
        with pytest.raises(ValueError):
            parse_repeat(bad)


REPEAT = ("      - request: GET /api/products\n"
          "        capture: {ids: {from: 'json:$.items[*].id', pick: all}}\n"
          "      - repeat: {count}\n"
          "        steps:\n"
          "          - set: {pid: '{{ random_choice(ids) }}'}\n"
          "          - request: GET /api/products/{{ pid }}\n"
          "            name: product\n"
          "          - think: 10ms\n"
          "      - request: GET /api/cart/{{ pid }}\n")


@pytest.mark.parametrize(("steps", "message"), [
    (REPEAT.replace("{count}", "3000"),
     "s.yaml:8:17: journeys.0.steps.1.repeat: repeat counts go from 1 to 100 (low "
     "first), got 3000"),
    (REPEAT.replace("{count}", "6..3"),
     "s.yaml:8:17: journeys.0.steps.1.repeat: repeat counts go from 1 to 100"),
    (REPEAT.replace("{count}", "three"),
     "s.yaml:8:17: journeys.0.steps.1.repeat: expected a count N or a range N..M"),
    (REPEAT.replace("{count}", "2").replace("random_choice(ids)", "random_choice(idz)"),
     "s.yaml:10:24: journeys.0.steps.1.steps.0.set.pid: unknown variable 'idz' (did you mean "
     "ids?)"),
    (REPEAT.replace("{count}", "2").replace("GET /api/cart/{{ pid }}", "GET /c/{{ pdi }}"),
     "s.yaml:14:18: journeys.0.steps.2.request: unknown variable 'pdi' (did you mean pid?)"),
    ("      - request: GET /{{ pid }}\n" + REPEAT.replace("{count}", "2"),
     "s.yaml:6:18: journeys.0.steps.0.request: 'pid' is used before the step that assigns it "
     "(step 3)"),
    ("      - repeat: 2\n        steps:\n          - repeat: 2\n            steps: "
     "[{request: GET /}]\n",
     "s.yaml:6:9: journeys.0.steps.0: a repeat block cannot hold another repeat"),
    ("      - repeat: 2\n", "s.yaml:6:9: journeys.0.steps.0: repeat: needs steps:"),
    ("      - {repeat: 2, name: x, steps: [{request: GET /}]}\n",
     "s.yaml:6:9: journeys.0.steps.0: a repeat step takes only repeat: and steps:"),
    ("      - {request: GET /, steps: [{request: GET /}]}\n",
     "s.yaml:6:9: journeys.0.steps.0: steps: goes with repeat: N"),
    ("      - {repaet: 2, steps: [{request: GET /}]}\n",
     "s.yaml:6:10: journeys.0.steps.0.repaet: unknown field 'repaet' (did you mean repeat?)"),
])
def test_bad_repeat_blocks_give_one_located_line_with_a_suggestion(steps, message):
    assert _error(_journey(steps)).startswith(message)


def test_repeat_blocks_generate_readable_code_and_expand_per_run():
    import random

    from shop_loadtest.journeys import RepeatStep, ThinkStep, expand, pause_after_failure

    scenario = load_scenario_text(_journey(REPEAT.replace("{count}", "2..3")), file="s.yaml")
    source = render_locustfile(scenario, source="s.yaml", output="s.py")
    assert ("        RepeatStep(2, 3, steps=[\n"
            "            SetStep({'pid': '{{ random_choice(ids) }}'}),\n"
            "            RequestStep('GET', '/api/products/{{ pid }}', name='product'),\n"
            "            ThinkStep(0.01, 0.01),\n"
            "        ]),\n") in source
    assert "import Journey, RepeatStep, RequestStep, SetStep, Settings, ThinkStep" in source
    journey = to_block(scenario.journeys[0].steps)
    repeat = journey[1]
    assert isinstance(repeat, RepeatStep) and (repeat.low, repeat.high) == (2, 3)
    proc = Process(object(), Settings())
    block = proc._block(journey)
    assert block.repeats and not proc._block(journey[:1]).repeats
    rng = random.Random(7)
    counts = set()
    for _ in range(200):
        items = expand(block.items, rng)
        rounds = (len(items) - 2) // 3
        assert len(items) == 2 + 3 * rounds and items[-1] is block.items[-1]
        counts.add(rounds)
    assert counts == {2, 3}
    # a failure in round 1 of 3 still waits out the think times of rounds 2 and 3
    fixed = proc._block([RepeatStep(3, 3, [RequestStep("GET", "/", "/"), ThinkStep(1, 1)])])
    items = expand(fixed.items, rng)
    assert pause_after_failure(items, 0, rng) == 3
    assert pause_after_failure(items, 2, rng) == 2


def test_a_journey_with_a_repeat_estimates_its_rounds_and_resets_what_they_set():
    from shop_loadtest.journeys import RepeatStep, ThinkStep

    journey = Journey("j", 1.0, [RepeatStep(2, 4, [SetStep({"a": 1}), ThinkStep(1, 1)])])
    assert journey.assigns()
    assert journey.estimated_seconds() == pytest.approx(3.0)


@pytest.mark.e2e
@pytest.mark.parametrize("model", ["users", "arrival_rate"])
def test_a_repeat_block_sends_its_requests_the_drawn_number_of_times(tmp_path, demo_shop,
                                                                      model):
    """repeat: 3 between two single requests: the shop gets exactly three product views per
    journey run (up to one run cut short by the end), and nothing fails."""
    text = textwrap.dedent("""\
        name: repeat-demo
        target: {host: "%s"}
        load:
          model: %s
          stages: [{duration: 0s, target: 2}, {duration: 4s, target: 2}]
        journeys:
          - name: browse
            steps:
        """) % (demo_shop, model) + REPEAT.replace("{count}", "3").replace(
            "GET /api/cart/{{ pid }}", "GET /api/products/{{ pid }}\n        name: last")
    summary = _run(tmp_path, text)
    first = summary["by_name"]["GET /api/products"]["requests"]
    product = summary["by_name"]["product"]["requests"]
    last = summary["by_name"]["last"]["requests"]
    assert last > 0 and sum(e["failures"] for e in summary["endpoints"]) == 0, summary["errors"]
    started_not_done = first - last  # runs still going when the run stopped (at most 2 users)
    assert 0 <= started_not_done <= 2
    assert 3 * last <= product <= 3 * first
    assert summary["exit_code"] == 0, summary["reasons"]


# --- if: ---------------------------------------------------------------------------------------

IF_STEPS = ("      - request: GET /api/products/1\n"
            "        capture: {stock: 'json:$.stock'}\n"
            "      - request: POST /api/cart/items\n"
            "        if: '{{ stock > 0 }}'\n"
            "        json: {product_id: 1, quantity: 1}\n"
            "      - request: GET /api/cart\n"
            "        if: stock > 1000000\n"
            "        name: never\n"
            "      - request: GET /api/cart\n"
            "        name: cart\n")


@pytest.mark.parametrize(("steps", "message"), [
    (IF_STEPS.replace("stock > 1000000", "stok > 1000000"),
     "s.yaml:12:13: journeys.0.steps.2.if: unknown variable 'stok' (did you mean stock?)"),
    ("      - {request: GET /, if: 'x > 0', capture: {x: 'json:$.x'}}\n",
     "s.yaml:6:30: journeys.0.steps.0.if: 'x' is used before the step that captures it "
     "(step 1)"),
    ("      - {if: 'a', think: 1s}\n",
     "s.yaml:6:9: journeys.0.steps.0: if: goes on a request, a set: step or a block of steps: "
     "(not on think; put the think step inside an if block)"),
    ("      - {if: 'a', repeat: 2, steps: [{request: GET /}]}\n",
     "s.yaml:6:9: journeys.0.steps.0: if: goes on a request, a set: step or a block of steps: "
     "(not on repeat"),
    ("      - {request: GET /, if: '{{ }}'}\n",
     "s.yaml:6:9: journeys.0.steps.0: if: needs an expression"),
    ("      - {request: GET /, if: 'a >'}\n",
     "s.yaml:6:30: journeys.0.steps.0.if: template does not parse"),
])
def test_bad_if_conditions_give_one_located_line_with_a_suggestion(steps, message):
    assert _error(_journey(steps)).startswith(message)


def test_if_steps_generate_readable_code_and_test_their_expression():
    from shop_loadtest.journeys import IfStep

    scenario = load_scenario_text(_journey(IF_STEPS + "      - {set: {a: 1}, if: 'stock'}\n"),
                                  file="s.yaml")
    block = to_block(scenario.journeys[0].steps)
    assert isinstance(block[1], IfStep) and block[1].test == "stock > 0"
    assert block[4] == IfStep("stock", SetStep({"a": 1}))
    source = render_locustfile(scenario, source="s.yaml", output="s.py")
    assert "        IfStep('stock > 1000000', RequestStep('GET', '/api/cart', name='never')),\n" \
        in source
    assert "import IfStep, Journey, RequestStep, SetStep, Settings, ThinkStep" in source
    proc = Process(object(), Settings())
    compiled = proc._block(block).items
    assert compiled[1].test({"stock": 3}) is True and compiled[1].test({"stock": 0}) is False
    with pytest.raises(Exception, match="stock"):
        compiled[1].test({})  # undefined: raises (recorded as a failure), never False
    assert Journey("j", 1.0, block).assigns()


@pytest.mark.e2e
def test_if_skips_a_step_whose_condition_is_false_and_sends_the_one_that_holds(tmp_path,
                                                                              demo_shop):
    text = (f"name: if-demo\ntarget: {{host: '{demo_shop}'}}\n"
            "load: {model: arrival_rate, stages: [{duration: 0s, target: 3}, "
            "{duration: 3s, target: 3}]}\njourneys:\n  - name: j\n    steps:\n" + IF_STEPS)
    summary = _run(tmp_path, text)
    by_name = summary["by_name"]
    assert "never" not in by_name  # false: not sent, not recorded
    bought, cart = by_name["POST /api/cart/items"]["requests"], by_name["cart"]["requests"]
    assert cart > 0 and cart <= bought <= cart + 3
    assert sum(e["failures"] for e in summary["endpoints"]) == 0, summary["errors"]
    assert summary["exit_code"] == 0, summary["reasons"]


@pytest.mark.e2e
def test_an_if_over_a_missing_capture_is_a_recorded_failure_not_a_silent_skip(tmp_path,
                                                                            demo_shop):
    steps = ("      - request: GET /api/products/1\n"
             "        capture: {gone: {from: 'json:$.no_such_field', on_fail: continue}}\n"
             "      - request: GET /api/cart\n"
             "        if: gone > 0\n"
             "        name: cart\n"
             "      - request: GET /api/products/2\n"
             "        name: after\n")
    text = (f"name: if-demo\ntarget: {{host: '{demo_shop}'}}\n"
            "load: {model: users, stages: [{duration: 0s, target: 1}, "
            "{duration: 3s, target: 1}]}\nbudgets: ['error_rate < 1%']\n"
            "journeys:\n  - name: j\n    steps:\n" + steps)
    summary = _run(tmp_path, text)
    failed = summary["by_name"]["if gone > 0"]
    assert failed["requests"] == failed["failures"] > 0
    assert "after" not in summary["by_name"] and "cart" not in summary["by_name"]
    assert summary["verdict"] == "fail" and summary["exit_code"] == 1
