"""The generated locustfile: readable, compiles, stable, and the committed ones are current."""

import ast
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from shop_loadtest.generate.blocks import to_block
from shop_loadtest.generate.locustfile import render_locustfile
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


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_rendering_is_deterministic(path):
    a = render_locustfile(load_scenario(path), source="s.yaml", output="o.py", base=path.parent)
    b = render_locustfile(load_scenario(path), source="s.yaml", output="o.py", base=path.parent)
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


def _journeys_in(source: str) -> dict[str, list[Any]]:
    """Each `Journey(...)` of a generated file, rebuilt from its code with nothing but the step
    classes in scope: name -> [on_start, steps, on_stop] (loops, conditions and retries
    included, so a nested step counts where it stands)."""
    import shop_loadtest.journeys as steps

    scope = {name: getattr(steps, name) for name in steps.__all__}
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Journey":
            journey = eval(compile(ast.Expression(node), "generated", "eval"), scope)
            out[journey.name] = [journey.on_start, journey.steps, journey.on_stop]
    return out


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_generated_steps_are_exactly_the_scenario_steps(path):
    """Wrapped long literals still say the same thing: every step round-trips."""
    scenario = load_scenario(path)
    source = render_locustfile(scenario, source="s.yaml", output="o.py", base=path.parent)
    expected = {j.name: [to_block(block) for block in (j.on_start, j.steps, j.on_stop)]
                for j in scenario.journeys if j.class_ is None}
    assert _journeys_in(source) == expected
    assert max(len(line) for line in source.splitlines()[7:]) <= 100


STOREFRONT = """
name: store
target: {host: http://127.0.0.1:1, headers: {Authorization: "Bearer {{ env.SHOP_TOKEN }}"}}
load: {model: users, stages: [{duration: 5s, target: 2}]}
variables: {token: "{{ env.SHOP_TOKEN }}"}
data:
  coupons: {file: data/coupons.csv, mode: unique, per: user}
faker: {locale: de_DE, seed: 3}
journeys:
  - name: buy
    on_start: [{request: POST /login, capture: {t: json:$.t}}]
    steps: [{request: "GET /c/{{ coupons.code }}?t={{ token }}"}]
    on_stop: [{request: POST /logout}]
  - {name: vip, class: ../locustfiles/custom.py:VipBuyer, weight: 3}
"""


def test_data_files_and_user_classes_are_found_from_the_generated_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOP_TOKEN", "tok-do-not-write-me")
    (tmp_path / "scenarios" / "data").mkdir(parents=True)
    (tmp_path / "scenarios" / "data" / "coupons.csv").write_text("code\nA\n")
    (tmp_path / "locustfiles").mkdir()
    (tmp_path / "locustfiles" / "custom.py").write_text(
        "from locust import HttpUser\n\n\nclass VipBuyer(HttpUser):\n    pass\n")
    scenario = load_scenario_text(STOREFRONT, base=tmp_path / "scenarios")
    source = render_locustfile(scenario, source="scenarios/store.yaml",
                               output="locustfiles/store.py", base=tmp_path / "scenarios")
    assert "HERE = Path(__file__).resolve().parent" in source
    assert "DataSource('coupons', HERE / '../scenarios/data/coupons.csv', mode='unique', " \
           "per='user')" in source
    assert "Vip = user_class(HERE / 'custom.py', 'VipBuyer', alias='Vip', weight=3.0, " \
           "host=HOST, journey='vip')" in source
    assert "user_classes = [Buy, Vip]" in source
    assert "locale='de_DE'" in source and "seed=3" in source
    assert "on_start=[" in source and "on_stop=[" in source
    assert "tok-do-not-write-me" not in source  # templates are rendered at run time only
    elsewhere = render_locustfile(scenario, source="scenarios/store.yaml",
                                  output="/tmp/runs/x/locustfile.py", base=tmp_path)
    target = (Path.cwd() / "scenarios/data/coupons.csv").resolve()
    assert f"HERE / {Path(os.path.relpath(target, '/tmp/runs/x')).as_posix()!r}" in elsewhere


def test_a_docstring_survives_quotes_and_backslashes():
    scenario = load_scenario_text(HOSTILE)
    tree = ast.parse(render_locustfile(scenario, source="h.yaml", output="x.py"))
    assert ast.get_docstring(tree).startswith('hostile: ends with triple quotes \'\'\' and a')
