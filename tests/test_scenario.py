"""Valid and invalid scenario files, with the exact one-line message each must give."""

import json
import textwrap
from pathlib import Path

import pytest

from shop_loadtest.errors import ScenarioError
from shop_loadtest.scenario import load_scenario, load_scenario_text, scenario_json_schema

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
name: tiny
load:
  model: users
  stages:
    - {duration: 10s, target: 5}
journeys:
  - name: home
    steps:
      - request: GET /api/products
        capture: {pid: "json:$.items[0].id"}
      - think: 1s..2s
      - request: GET /api/products/{{ pid }}
        name: GET /api/products/{id}
budgets: ["p95 < 500ms"]
"""


def _with(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


def test_a_good_scenario_loads_with_typed_values():
    s = load_scenario_text(GOOD, file="good.yaml")
    assert s.name == "tiny"
    assert s.load.stages[0].duration == 10.0
    step = s.journeys[0].steps[2]
    assert (step.method, step.label) == ("GET", "GET /api/products/{id}")
    assert s.journeys[0].steps[0].label == "GET /api/products"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_with("name: tiny", "name: [tiny"),
         "bad.yaml:2:5: YAML syntax error: did not find expected ',' or ']'"),
        (_with("  model: users", "  model: users\n  modle: users"),
         "bad.yaml:4:3: load.modle: unknown field 'modle' (did you mean model?)"),
        (_with("  model: users", "  model: user"),
         "bad.yaml:3:10: load.model: Input should be 'users' or 'arrival_rate'"),
        (_with("duration: 10s", "duration: -10s"),
         "bad.yaml:5:18: load.stages.0.duration: a duration cannot be negative, got '-10s'"),
        (_with("duration: 10s", "duration: 10 minutes"),
         "bad.yaml:5:18: load.stages.0.duration: expected a duration such as 90s, 1m30s or "
         "400ms, got '10 minutes'"),
        (_with("target: 5", "target: -5"),
         "bad.yaml:5:31: load.stages.0.target: Input should be greater than or equal to 0"),
        (_with("      - request: GET /api/products\n",
               "      - request: FETCH /api/products\n"),
         "bad.yaml:9:18: journeys.0.steps.0.request: expected 'METHOD /path' with METHOD one "
         "of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, got 'FETCH /api/products'"),
        (_with('budgets: ["p95 < 500ms"]', 'budgets: ["p95 < 500 parsecs"]'), None),
        (_with("GET /api/products/{{ pid }}", "GET /api/products/{{ pid }"),
         "bad.yaml:12:18: journeys.0.steps.2.request: template does not parse: unexpected '}'"),
        (_with("GET /api/products/{{ pid }}", "GET /api/products/{{ pdi }}"),
         "bad.yaml:12:18: journeys.0.steps.2.request: unknown variable 'pdi' (did you mean "
         "pid?)"),
        (_with("      - request: GET /api/products\n",
               "      - request: GET /api/products?x={{ pid }}\n"),
         "bad.yaml:9:18: journeys.0.steps.0.request: 'pid' is used before the step that "
         "captures it (step 1)"),
        (_with("      - think: 1s..2s", "      - think: 2s..1s"),
         "bad.yaml:11:16: journeys.0.steps.1.think: think range '2s..1s' ends before it "
         "starts"),
        (_with('capture: {pid: "json:$.items[0].id"}', 'capture: {pid: "xpath://id"}'),
         "bad.yaml:10:24: journeys.0.steps.0.capture.pid: capture 'pid': expected one of json:, "
         "regex:, header:, cookie:, css:, form: followed by the expression, got 'xpath://id'"),
        (_with("name: tiny\n", ""), "bad.yaml:1:1: name: missing required field 'name'"),
        ("- a\n- b\n", "bad.yaml:1:1: a scenario is a YAML mapping with name, load and journeys"),
    ],
)
def test_bad_scenarios_give_one_located_line(text, message):
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, file="bad.yaml")
    got = str(info.value)
    assert "\n" not in got
    if message is None:  # budget messages belong to budgets.py; only the location is ours
        assert got.startswith("bad.yaml:14:11: budgets.0: ")
    else:
        assert got == message


def test_a_zero_second_stage_is_a_jump_not_an_error():
    s = load_scenario_text(_with("- {duration: 10s, target: 5}",
                                 "- {duration: 0s, target: 5}\n    - {duration: 10s, target: 5}"))
    assert s.profile().value(0) == 5


def test_faker_typos_are_caught_at_validate_time():
    step = "      - request: POST /api/checkout\n        json: {email: '{{ faker.emial() }}'}"
    text = _with("      - think: 1s..2s", step)
    with pytest.raises(ScenarioError, match=r"unknown Faker provider faker.emial \(did you mean "
                                            r"faker.email\?\)"):
        load_scenario_text(text, file="bad.yaml")


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ScenarioError, match=r"nope.yaml: no such file"):
        load_scenario(tmp_path / "nope.yaml")


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_scenario_validates(path):
    scenario = load_scenario(path)
    assert scenario.profile(path.parent).duration > 0


def test_committed_json_schema_is_current():
    committed = json.loads((ROOT / "shop_loadtest/schemas/scenario.schema.json").read_text())
    assert committed == scenario_json_schema()


def test_json_schema_accepts_shipped_scenarios():
    import jsonschema
    import yaml

    schema = scenario_json_schema()
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_template_kinds_are_checked_with_a_suggestion():
    text = textwrap.dedent("""\
        name: t
        load:
          model: arrival_rate
          template: {kind: flash_sael, baseline: 1, peak: 2}
        journeys: [{name: a, steps: [{request: GET /}]}]
        """)
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, file="t.yaml")
    assert str(info.value) == (
        "t.yaml:4:13: load.template: unknown template kind 'flash_sael' (did you mean "
        "flash_sale?)")


# --- The storefront language (issue 3): tables of valid and invalid steps ----------------------

HEAD = "name: t\nload: {model: users, stages: [{duration: 10s, target: 1}]}\n"
COUPONS = "code,percent\nBF-1,10\nBF-2,15\n"


def _journey(steps: str, extra: str = "", top: str = "") -> str:
    """A scenario whose one journey has `steps`; the first step is on line 6 + top lines."""
    return HEAD + top + "journeys:\n  - name: j\n" + extra + "    steps:\n" + steps


def _load(text: str, tmp_path: Path):
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "coupons.csv").write_text(COUPONS)
    (tmp_path / "users.py").write_text("from locust import HttpUser\n\nclass Vip(HttpUser):\n"
                                       "    pass\n")
    return load_scenario_text(text, file="s.yaml", base=tmp_path)


GOOD_STEPS = {
    "every method and body": _journey(
        "      - {request: GET /a}\n"
        "      - {request: POST /a, json: {x: 1}}\n"
        "      - {request: PUT /a, form: {x: '{{ random_int() }}'}}\n"
        "      - {request: PATCH /a, body: 'raw {{ uuid() }}', headers: {Content-Type: text/x}}\n"
        "      - {request: DELETE /a, follow_redirects: false, on_fail: continue}\n"),
    "query parameters": _journey(
        "      - request: GET /search\n"
        "        query: {q: '{{ term }}', page: 2, tags: [a, b]}\n", top="variables: {term: x}\n"),
    "every capture kind, short and long": _journey(
        "      - request: GET /\n"
        "        capture:\n"
        "          a: json:$.items[0].id\n"
        "          b: regex:order (\\d+)\n"
        "          c: header:Location\n"
        "          d: cookie:session\n"
        "          e: css:input[name=csrf_token]@value\n"
        "          f: form:csrf_token\n"
        "          g: \"form:form[action='/login'] csrf_token\"\n"
        "          h: {from: 'css:a.product@href', pick: random}\n"
        "          i: {from: 'json:$.items[*].id', pick: all, default: [], on_fail: continue}\n"
        "      - request: GET /{{ a }}/{{ b }}/{{ c }}/{{ d }}/{{ e }}/{{ f }}/{{ g }}/{{ h }}\n"),
    "checks, with the step's own captures": _journey(
        "      - request: GET /\n"
        "        capture: {id: json:$.id}\n"
        "        check:\n"
        "          - status: [200, 201]\n"
        "          - {json: $.id, exists: true}\n"
        "          - {json: $.state, equals: paid, on_fail: continue}\n"
        "          - {json: $.missing, equals: null}\n"
        "          - {body_contains: 'Order #{{ id }}'}\n"),
    "think times": _journey(
        "      - think: 2s\n      - think: 1s..3s\n      - think: 1.5\n"
        "      - think: {exponential: 2s, max: 10s}\n"
        "      - think: {normal: 2s, sd: 500ms, min: 1s}\n      - request: GET /\n"),
    "on_start and on_stop": _journey(
        "      - request: GET /me?t={{ token }}\n        capture: {me: json:$.name}\n",
        extra="    on_start:\n"
              "      - request: POST /login\n        capture: {token: json:$.token}\n"
              "    on_stop:\n"
              "      - request: POST /logout?t={{ token }}&me={{ me }}\n"),
    "data, faker, variables, secrets": _journey(
        "      - request: POST /checkout\n"
        "        headers: {Authorization: 'Bearer {{ env.SHOP_TOKEN }}'}\n"
        "        form: {coupon: '{{ coupons.code }}', pct: \"{{ coupons['percent'] }}\",\n"
        "               who: '{{ faker.name() }}', pw: '{{ password }}'}\n",
        top="data:\n  coupons: {file: data/coupons.csv, mode: unique, per: user}\n"
            "faker: {locale: [de_DE, fr_FR], seed: 7}\n"
            "variables: {password: \"{{ env.get('PW', 'secret') }}\"}\n"
            "target: {headers: {X-Shop: '{{ password }}'}}\n"),
    "a hand-written class beside generated journeys": HEAD + (
        "journeys:\n  - {name: vip, class: users.py:Vip, weight: 2}\n"
        "  - {name: j, steps: [{request: GET /}]}\n"),
}


@pytest.mark.parametrize("text", GOOD_STEPS.values(), ids=GOOD_STEPS.keys())
def test_the_storefront_language_loads(text, tmp_path):
    scenario = _load(text, tmp_path)
    assert scenario.journeys


BAD_STEPS = [
    (_journey("      - request: GET /\n        capture: {x: 'jsn:$.a'}\n"),
     "s.yaml:7:22: journeys.0.steps.0.capture.x: capture 'x': expected one of json:, regex:, "
     "header:, cookie:, css:, form: followed by the expression, got 'jsn:$.a' (did you mean "
     "json:?)"),
    (_journey("      - request: GET /\n        capture: {x: 'regex:(a'}\n"),
     "s.yaml:7:22: journeys.0.steps.0.capture.x: capture 'x': regex '(a' does not compile: "
     "missing ), unterminated subpattern at position 0"),
    (_journey("      - request: GET /\n        capture: {x: 'css:a[href'}\n"),
     "s.yaml:7:22: journeys.0.steps.0.capture.x: capture 'x': CSS selector 'a[href' does not "
     "parse: Malformed attribute selector at position 1"),
    (_journey("      - request: GET /\n        capture: {x: 'json:$.[['}\n"),
     "s.yaml:7:22: journeys.0.steps.0.capture.x: capture 'x': JSON path '$.[[' does not parse: "
     "Parse error at 1:3 near token [ ([)"),
    (_journey("      - request: GET /\n        capture:\n          x: {from: 'css:a@href', "
              "pick: any}\n"),
     "s.yaml:8:41: journeys.0.steps.0.capture.x.pick: Input should be 'first', 'random' or "
     "'all'"),
    (_journey("      - request: GET /\n        capture:\n          x: {frm: 'css:a@href'}\n"),
     "s.yaml:8:15: journeys.0.steps.0.capture.x.frm: unknown field 'frm' (did you mean from?)"),
    (_journey("      - request: GET /\n        capture:\n          x: {from: 'xpath://a'}\n"),
     "s.yaml:8:21: journeys.0.steps.0.capture.x.from: capture 'x': expected one of json:, "
     "regex:, header:, cookie:, css:, form: followed by the expression, got 'xpath://a'"),
    (_journey("      - request: GET /\n        capture: {faker: 'header:Location'}\n"),
     "s.yaml:7:26: journeys.0.steps.0.capture.faker: capture name 'faker' must be a plain name "
     "(letters, digits, _) other than faker, random_int, random_choice, random_float, uuid, "
     "env, vars, host, base_url"),
    (_journey("      - request: GET /\n        check:\n          - {status: 200, "
              "body_contains: ok}\n"),
     "s.yaml:8:13: journeys.0.steps.0.check.0: a check is one of {status: 200}, {json: $.path, "
     "equals: value | exists: true | type: string}, {header: Name, equals: value | contains: "
     "text | exists: true}, {body_contains: text}, {body_not_contains: text}, {final_url: "
     "/path}, {redirect_chain: [303, 200]} or {var: name, equals: value | exists: true | "
     "type: integer}"),
    (_journey("      - request: GET /\n        check:\n          - {json: $.a}\n"),
     "s.yaml:8:13: journeys.0.steps.0.check.0: a json check takes exactly one of equals:, "
     "exists:, type:"),
    (_journey("      - request: GET /\n        check:\n"
              "          - {body_contains: a, equals: b}\n"),
     "s.yaml:8:13: journeys.0.steps.0.check.0: equals: goes with json: $.path, header: Name or "
     "var: name, not with body_contains:"),
    (_journey("      - request: GET /\n        check:\n          - {body_contain: a}\n"),
     "s.yaml:8:14: journeys.0.steps.0.check.0.body_contain: unknown field 'body_contain' (did "
     "you mean body_contains?)"),
    (_journey("      - request: GET /\n        check: [{status: ok}]\n"),
     "s.yaml:7:26: journeys.0.steps.0.check.0.status.0: Input should be a valid integer, "
     "unable to parse string as an integer"),
    (_journey("      - request: GET /\n        check:\n          - {body_contains: '{{ y }}'}\n"
              "      - request: GET /\n        capture: {y: 'header:X'}\n"),
     "s.yaml:8:29: journeys.0.steps.0.check.0.body_contains: 'y' is used before the step that "
     "captures it (step 2)"),
    (_journey("      - request: GET /\n        on_fail: end\n"),
     "s.yaml:7:18: journeys.0.steps.0.on_fail: Input should be 'continue' or 'end_journey'"),
    (_journey("      - request: GET /\n        follow_redirect: false\n"),
     "s.yaml:7:9: journeys.0.steps.0.follow_redirect: unknown field 'follow_redirect' (did you "
     "mean follow_redirects?)"),
    (_journey("      - request: GET /search\n        query: {q: '{{ serch }}'}\n",
              top="variables: {search: oak}\n"),
     "s.yaml:8:20: journeys.0.steps.0.query.q: unknown variable 'serch' (did you mean "
     "search?)"),
    (_journey("      - think: {exponental: 2s}\n"),
     "s.yaml:6:17: journeys.0.steps.0.think.exponental: unknown field 'exponental' (did you "
     "mean exponential?)"),
    (_journey("      - think: {normal: 2s}\n"),
     "s.yaml:6:16: journeys.0.steps.0.think: a normal think time needs sd: (its standard "
     "deviation)"),
    (_journey("      - think: {exponential: 2 sec}\n"),
     "s.yaml:6:30: journeys.0.steps.0.think.exponential: expected a duration such as 90s, "
     "1m30s or 400ms, got '2 sec'"),
    (_journey("      - think: 1s\n        check: [{status: 200}]\n"),
     "s.yaml:6:9: journeys.0.steps.0: a think step takes no name, capture, check, expect or "
     "timeout"),
    (_journey("      - request: GET /?t={{ token }}\n",
              extra="    on_start:\n      - request: GET /x?t={{ token }}\n"
                    "      - request: POST /login\n        capture: {token: 'json:$.token'}\n"),
     "s.yaml:6:18: journeys.0.on_start.0.request: 'token' is used before the step that "
     "captures it (on_start step 2)"),
    (_journey("      - request: GET /\n        capture: {token: 'json:$.t'}\n",
              extra="    on_start:\n      - request: GET /x?t={{ token }}\n"),
     "s.yaml:6:18: journeys.0.on_start.0.request: 'token' is used before the journey's steps, "
     "which run after on_start"),
    (HEAD + "journeys:\n  - name: j\n    class: users.py:Vip\n    steps: [{request: GET /}]\n",
     "s.yaml:4:5: journeys.0: a journey with class: takes no steps, on_start or on_stop (the "
     "class brings its own tasks)"),
    (HEAD + "journeys:\n  - name: j\n    class: users:Vip\n",
     "s.yaml:5:12: journeys.0.class: expected path/to/file.py:ClassName, got 'users:Vip'"),
    (HEAD + "journeys:\n  - name: j\n    class: users.py:Vop\n",
     "s.yaml:5:12: journeys.0.class: users.py defines no class Vop at its top level"),
    (HEAD + "journeys:\n  - name: j\n    weight: 2\n",
     "s.yaml:4:5: journeys.0: a journey needs steps (or class: path.py:ClassName)"),
    (_journey("      - request: GET /\n", top="data:\n  coupons: {file: c.csv, mode: once}\n"),
     "s.yaml:4:32: data.coupons.mode: Input should be 'random', 'sequential' or 'unique'"),
    (_journey("      - request: GET /?c={{ coupons.cod }}\n",
              top="data:\n  coupons: {file: data/coupons.csv, mode: unique}\n"),
     "s.yaml:8:18: journeys.0.steps.0.request: data 'coupons' has no column 'cod' (did you "
     "mean code?) (columns: code, percent)"),
    (_journey("      - request: GET /?c={{ coupons['percnt'] }}\n",
              top="data:\n  coupons: {file: data/coupons.csv}\n"),
     "s.yaml:8:18: journeys.0.steps.0.request: data 'coupons' has no column 'percnt' (did you "
     "mean percent?) (columns: code, percent)"),
    (_journey("      - request: GET /\n",
              top="variables: {coupons: 1}\ndata:\n  coupons: {file: data/coupons.csv}\n"),
     "s.yaml:5:12: data.coupons: data name 'coupons' must be a plain name (letters, digits, _), "
     "not a variable nor one of faker, random_int, random_choice, random_float, uuid, env, "
     "vars, host, base_url"),
    (_journey("      - request: GET /\n", top="faker: {locale: de_DX}\n"),
     "s.yaml:3:17: faker.locale: unknown Faker locale 'de_DX' (did you mean de_DE?)"),
    (_journey("      - request: GET /\n", top="variables: {token: '{{ evn.TOKEN }}'}\n"),
     "s.yaml:3:20: variables.token: unknown variable 'evn' (did you mean env?)"),
    (_journey("      - request: GET /\n",
              top="target: {headers: {Authorization: 'Bearer {{ env.TOKEN }'}}\n"),
     "s.yaml:3:35: target.headers.Authorization: template does not parse: unexpected '}'"),
]


@pytest.mark.parametrize(("text", "message"), BAD_STEPS)
def test_storefront_language_errors_are_located_with_a_suggestion(text, message, tmp_path):
    with pytest.raises(ScenarioError) as info:
        _load(text, tmp_path)
    assert str(info.value) == message


def test_a_missing_data_file_says_where_paths_start(tmp_path):
    text = _journey("      - request: GET /?c={{ coupons.code }}\n",
                    top="data:\n  coupons: {file: nope.csv, mode: unique}\n")
    with pytest.raises(ScenarioError) as info:
        _load(text, tmp_path)
    assert str(info.value) == (
        f"s.yaml:4:19: data.coupons.file: no such file 'nope.csv' (paths are relative to the "
        f"scenario file's folder, {tmp_path.as_posix()})")


def test_a_class_path_given_from_the_current_folder_gets_the_right_one(tmp_path, monkeypatch):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "locustfiles").mkdir()
    (tmp_path / "locustfiles" / "custom.py").write_text("class Vip:\n    pass\n")
    monkeypatch.chdir(tmp_path)
    text = HEAD + "journeys:\n  - name: j\n    class: locustfiles/custom.py:Vip\n"
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, file="s.yaml", base=Path("scenarios"))
    assert str(info.value).endswith(
        "from the current folder it is ../locustfiles/custom.py:Vip")


def test_captures_keep_their_long_form_and_checks_their_statuses(tmp_path):
    scenario = _load(GOOD_STEPS["every capture kind, short and long"], tmp_path)
    capture = scenario.journeys[0].steps[0].capture
    assert capture["a"] == "json:$.items[0].id"
    assert capture["h"].from_ == "css:a.product@href" and capture["h"].pick == "random"
    checks = _load(GOOD_STEPS["checks, with the step's own captures"], tmp_path)
    assert checks.journeys[0].steps[0].check[0].status == [200, 201]


def _yaml_blocks(path: Path) -> list[tuple[int, str]]:
    """(first line, text) of every ```yaml block of a Markdown file."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if current is None and line.strip() == "```yaml":
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            blocks.append((start, "\n".join(current) + "\n"))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


REFERENCE = ROOT / "docs" / "scenario-reference.md"


@pytest.mark.parametrize(("line", "text"), _yaml_blocks(REFERENCE),
                         ids=lambda v: f"line {v}" if isinstance(v, int) else "")
def test_every_example_of_the_reference_loads(line, text):
    """The examples are whole scenarios, read as if they were in scenarios/."""
    import jsonschema
    import yaml

    # leading newlines: error lines are the Markdown file's own
    load_scenario_text("\n" * (line - 1) + text, file="docs/scenario-reference.md",
                       base=ROOT / "scenarios")
    jsonschema.validate(yaml.safe_load(text), scenario_json_schema())


def test_the_reference_shows_every_field_of_the_journey_language():
    from shop_loadtest import scenario as sc

    text = "".join(t for _, t in _yaml_blocks(REFERENCE))
    models = (sc.Target, sc.DataSource, sc.FakerOptions, sc.Journey, sc.Step, sc.CaptureSpec,
              sc.Check, sc.ThinkDistribution, sc.Expect)
    missing = [f"{model.__name__}.{field.alias or name}" for model in models
               for name, field in model.model_fields.items()
               if f"{field.alias or name}:" not in text]
    assert missing == []


@pytest.mark.parametrize("text", GOOD_STEPS.values(), ids=GOOD_STEPS.keys())
def test_the_json_schema_accepts_the_storefront_language(text):
    import jsonschema
    import yaml

    jsonschema.validate(yaml.safe_load(text), scenario_json_schema())


@pytest.mark.parametrize(("line", "text"), [
    (line, text) for line, text in _yaml_blocks(ROOT / "docs" / "migration.md")
    if text.startswith("# shop-loadtest")], ids=lambda v: f"line {v}" if isinstance(v, int) else "")
def test_the_migration_guide_translations_load(line, text):
    load_scenario_text("\n" * (line - 1) + text, file="docs/migration.md")


def test_a_budget_during_an_unknown_stage_is_caught_at_validate_time():
    text = GOOD.replace("    - {duration: 10s, target: 5}",
                        "    - {name: peak, duration: 10s, target: 5}")
    text = text.replace('budgets: ["p95 < 500ms"]', 'budgets: ["p95 < 500ms during paek"]')
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, file="bad.yaml")
    assert str(info.value) == ("bad.yaml:14:11: budgets.0: no stage named 'paek' "
                               "(did you mean peak?); stages: peak")
