"""The bounded YAML reader: each dangerous corner of YAML is a located error, found fast."""

from __future__ import annotations

import pytest

from shop_loadtest import limits
from shop_loadtest.errors import ScenarioError, ScenarioErrors
from shop_loadtest.scenario import load_scenario_text
from shop_loadtest.scenario.reading import read_yaml


def error_of(text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        read_yaml(text, "s.yaml")
    return str(caught.value)


def test_plain_yaml_reads_with_the_position_of_every_value():
    doc = read_yaml("a: 1\nb:\n  - x\n  - {c: 2}\n", "s.yaml")
    assert doc.data == {"a": 1, "b": ["x", {"c": 2}]}
    assert doc.marks[("b", 1, "c")] == (4, 9)
    assert doc.marks[("b", "<key>")] == (2, 1)
    assert doc.duplicates == []


def test_aliases_and_merge_keys_that_stay_small_are_fine():
    doc = read_yaml("base: &b {x: 1, y: 2}\nuse: {<<: *b, y: 3}\nagain: *b\n", "s.yaml")
    assert doc.data["use"] == {"x": 1, "y": 3}
    assert doc.data["again"] == {"x": 1, "y": 2}
    assert doc.duplicates == []


@pytest.mark.parametrize(("text", "message"), [
    ("a: &a [1, *a]\n", "s.yaml:1:4: a recursive alias"),
    ("a: &a {k: *a}\n", "s.yaml:1:4: a recursive alias"),
    ("a: \"x\x00y\"\n", "s.yaml:1:6: a NUL byte cannot appear"),
    ("a: \x07\n", "s.yaml:1:4: the control character U+0007 cannot appear"),
    ("a: " + "[" * 65 + "]" * 65 + "\n", "s.yaml:1:67: YAML nests deeper than 64 levels"),
    ("a: " + "[" * 3000 + "]" * 3000 + "\n", "YAML nests deeper than 64 levels"),
    ("a: !!python/object/apply:os.system ['true']\n", "s.yaml:1:4: YAML value error: could "
                                                      "not determine a constructor"),
    ("a: [1\n", "YAML syntax error"),
    ("a: " + "7" * 5000 + "\n", "s.yaml:1:4: YAML value error: an integer of 5,000 digits"),
    ("a: 2001-13-45\n", "s.yaml:1:4: YAML value error: cannot read this value (month must"),
])
def test_dangerous_yaml_is_one_located_error(text, message):
    assert message in error_of(text)


def test_an_alias_bomb_is_refused_before_it_expands():
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    assert "aliases expand to more than 100,000 values" in error_of("\n".join(lines))


def test_aliases_that_nest_deeper_than_the_text_are_refused():
    """Each alias adds the depth of what it names: 10 levels written can be 640 followed."""
    lines = ["l0: &l0 " + "[" * 10 + "]" * 10]
    lines += [f"l{i}: &l{i} " + "[" * 9 + f"*l{i - 1}" + "]" * 9 for i in range(1, 10)]
    assert "nests deeper than 64 levels once aliases are followed" in error_of("\n".join(lines))


def test_a_file_too_large_is_refused_without_parsing_it():
    text = "a: " + "x" * limits.MAX_FILE_BYTES
    assert error_of(text) == "s.yaml: the file is larger than 1,000,000 bytes (docs/limits.md)"


def test_every_duplicate_key_is_named_with_the_line_of_the_first():
    doc = read_yaml("a: 1\nb: {c: 1,\n  c: 2}\na: 3\n", "s.yaml")
    assert sorted(str(e) for e in doc.duplicates) == [
        "s.yaml:3:3: b: duplicate key 'c' (first at line 2); a repeated key would silently "
        "replace the first",
        "s.yaml:4:1: duplicate key 'a' (first at line 1); a repeated key would silently "
        "replace the first"]


def test_a_merge_key_overridden_is_not_a_duplicate():
    assert read_yaml("b: &b {x: 1}\nc:\n  <<: *b\n  x: 2\n", "s.yaml").duplicates == []


def test_a_scenario_reports_all_its_errors_sorted_by_line_at_most_twenty_printed():
    stages = "\n".join(f"    - {{duration: {i}x, target: 1}}" for i in range(25))
    text = f"name: many\nload:\n  stages:\n{stages}\njourneys: [{{name: a, steps: []}}]\n"
    with pytest.raises(ScenarioErrors) as caught:
        load_scenario_text(text, file="m.yaml")
    errors = caught.value.errors
    assert len(errors) == 26
    assert [e.line for e in errors] == sorted(e.line for e in errors)
    lines = caught.value.lines()
    assert len(lines) == 21 and lines[-1] == "m.yaml: ... and 6 more errors"
    assert str(caught.value).startswith("m.yaml:4:")  # also the first error, for old callers


def test_a_budget_endpoint_typo_suggests_the_endpoint_a_step_produces():
    text = ("name: shop\nload: {stages: [{duration: 10s, target: 1}]}\njourneys:\n"
            "  - {name: buy, steps: [{request: POST /api/checkout}, {request: GET /api/cart}]}\n"
            "budgets: [p95 of POST /api/chekout < 800ms, p95 of GET /api/* < 1s]\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario_text(text, file="b.yaml")
    assert str(caught.value) == (
        "b.yaml:5:11: budgets.0: no step produces an endpoint matching 'POST /api/chekout' "
        "(did you mean POST /api/checkout?); endpoints: POST /api/checkout, GET /api/cart")


def test_an_error_line_is_at_most_400_characters_and_keeps_its_line_number():
    """Found by the fuzzer: a 300-character capture name made a 470-character line."""
    from shop_loadtest.errors import ScenarioError

    error = ScenarioError("m" * 1000, file="/tmp/" + "f" * 300 + ".yaml", line=3, col=4,
                          path="journeys.0.capture." + "x" * 500)
    assert len(str(error)) == 400
    assert "...:3:4: journeys.0.capture.xxx" in str(error)
