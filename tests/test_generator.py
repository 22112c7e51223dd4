"""The generated locustfile: readable, compiles, stable, and the committed ones are current."""

import ast
from pathlib import Path

import pytest
import yaml

from shop_loadtest.generator import render_locustfile
from shop_loadtest.scenario import load_scenario, load_scenario_text

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))

HOSTILE = yaml.safe_dump({
    "name": "hostile",
    "description": 'ends with triple quotes """ and a backslash \\',
    "target": {"host": "http://127.0.0.1:1"},
    "load": {"model": "users", "stages": [{"duration": "5s", "target": 2}]},
    "journeys": [{"name": "a-b.c", "steps": [{
        "request": "POST /x?q=\'\"\"\"",
        "name": "'); import os; os.system('echo pwned') #",
        "json": {"k'\"": "{{ faker.name() }}"},
    }]}],
})


def test_values_are_python_literals_even_when_hostile():
    scenario = load_scenario_text(HOSTILE)
    source = render_locustfile(scenario, source="hostile.yaml", output="x.py")
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", "") == "RequestStep"]
    assert len(calls) == 1
    name = next(k.value.value for k in calls[0].keywords if k.arg == "name")
    assert name == "'); import os; os.system('echo pwned') #"
    assert "os.system" not in {getattr(n, "attr", None) for n in ast.walk(tree)}


def test_header_names_the_source_and_classes_follow_journeys():
    scenario = load_scenario_text(HOSTILE)
    source = render_locustfile(scenario, source="scenarios/hostile.yaml", output="x.py")
    assert source.startswith("# Generated from scenarios/hostile.yaml by shop-loadtest")
    assert "class ABC(JourneyUser):" in source
    assert "class Shape(CampaignShape):" in source


def test_rendering_is_deterministic():
    scenario = load_scenario(SCENARIOS[0])
    a = render_locustfile(scenario, source="s.yaml", output="o.py")
    b = render_locustfile(load_scenario(SCENARIOS[0]), source="s.yaml", output="o.py")
    assert a == b


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_committed_locustfiles_are_current(path):
    """Fails when a scenario changed and `make generate` was not run."""
    scenario = load_scenario(path)
    rel = path.relative_to(ROOT)
    out = Path("locustfiles") / f"{scenario.name}.py"
    expected = render_locustfile(scenario, source=rel.as_posix(), output=out.as_posix(),
                                 base=path.parent)
    committed = ROOT / out
    assert committed.exists(), f"run: shop-loadtest generate {rel}"
    assert committed.read_text() == expected, f"stale: run `make generate` ({rel})"
