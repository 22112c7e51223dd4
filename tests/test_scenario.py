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
         "bad.yaml:2:5: YAML syntax error: expected ',' or ']', but got ':'"),
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
         "bad.yaml:10:18: journeys.0.steps.0.capture: capture 'pid': expected one of json:, "
         "regex:, header: followed by the expression, got 'xpath://id'"),
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
