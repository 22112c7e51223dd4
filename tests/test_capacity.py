"""find-capacity: the search and the knee are pure functions of the steps; one real search on
the demo shop, confirmed by a run at the rate found and broken by a run at 1.5x."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shop_loadtest.capacity.find import (
    Search,
    Step,
    conclude,
    knee,
    next_rate,
    step_scenario,
    verdict,
)
from shop_loadtest.errors import InputError
from tests.conftest import cli


def steps(*pairs: tuple[float, str]) -> list[Step]:
    return [Step(rate, verdict, f"run-{i}") for i, (rate, verdict) in enumerate(pairs)]


SEARCH = Search(start=10, max_rate=1000, min_rate=0.1, precision=0.1, max_steps=8)


@pytest.mark.parametrize("done, expected", [
    ([], 10),
    ([(10, "pass")], 20),
    ([(10, "pass"), (20, "pass")], 40),
    ([(10, "pass"), (20, "fail")], 15),
    ([(10, "pass"), (20, "fail"), (15, "pass")], 17.5),
    ([(10, "pass"), (20, "fail"), (15, "fail")], 12.5),
    ([(10, "fail")], 5),
    ([(10, "fail"), (5, "fail")], 2.5),
    ([(10, "pass"), (10.5, "fail")], None),  # within 10%: done
    ([(10, "pass"), (20, "inconclusive")], None),  # the generator gave out: stop there
    ([(10, "pass"), (20, "error")], None),
    ([(10, "pass")] * 8, None),  # max_steps
    ([(0.15, "fail")], None),  # below min_rate
    ([(10, "pass"), (30, "fail"), (20, "pass"), (25, "pass")], 27.5),
])
def test_the_search_doubles_then_bisects(done, expected):
    assert next_rate(steps(*done), SEARCH) == expected


def test_the_search_stops_at_the_maximum_rate():
    search = Search(start=40, max_rate=50)
    assert next_rate(steps((40, "pass")), search) == 50
    assert next_rate(steps((40, "pass"), (50, "pass")), search) is None


def test_rates_are_rounded_to_three_digits():
    search = Search(start=10, max_rate=1000)
    assert next_rate(steps((10, "pass"), (13.3333, "fail")), search) == 11.7


@pytest.mark.parametrize("points, expected", [
    ([(10, 5), (20, 5), (30, 6), (40, 20), (50, 80)], 40),
    ([(10, 5), (20, 6), (40, 7), (80, 300), (60, 9)], 60),  # order of the steps does not matter
    ([(10, 5), (20, 5), (30, 5)], None),  # flat: no knee
    ([(10, 5), (20, 6)], None),  # too few points
    ([(10, 50), (20, 40), (30, 30)], None),  # falling
    ([(10, 1), (20, 2), (30, 3), (40, 4)], None),  # a straight line has no knee
])
def test_the_knee_is_where_latency_bends_upward(points, expected):
    assert knee(points) == expected


def test_conclusion_gives_the_headroom_against_the_forecast():
    done = [Step(10, "pass", "a", p95_ms=5), Step(20, "pass", "b", p95_ms=6),
            Step(40, "fail", "c", p95_ms=90), Step(30, "pass", "d", p95_ms=12),
            Step(35, "fail", "e", p95_ms=40)]
    result = conclude(done, forecast_peak=20)
    assert result["sustainable_rate"] == 30 and result["breaking_rate"] == 35
    assert result["headroom"] == 1.5 and result["headroom_text"] == "1.5x forecast"
    assert result["summary"] == ("sustains 30 journeys/s, breaks at 35/s; "
                                 "1.5x the forecast peak of 20/s")
    assert result["knee_rate"] == 30
    assert verdict(result) == "pass"
    assert verdict(conclude(done, forecast_peak=40)) == "fail"  # below the forecast


@pytest.mark.parametrize("done, expected", [
    ([(10, "fail"), (5, "fail")], "fail"),
    ([(10, "inconclusive")], "inconclusive"),
    ([(10, "pass")], "pass"),
])
def test_the_verdict_of_a_search(done, expected):
    assert verdict(conclude(steps(*done), forecast_peak=None)) == expected


def test_a_step_holds_the_scenarios_journeys_at_one_rate(tmp_path):
    data = {
        "name": "shop", "load": {"model": "users", "time_scale": 2, "max_users": 50,
                                 "stages": [{"name": "peak", "duration": 60, "target": 5}]},
        "data": {"customers": {"file": "data/customers.csv"}},
        "journeys": [{"name": "j", "steps": [{"request": "GET /"}]}],
        "budgets": ["p95 < 1s", "p95 during peak < 500ms", "error_rate < 1%"],
        "abort": ["error_rate > 50% during peak"],
    }
    step, notes = step_scenario(data, 12.5, 20.0, tmp_path)
    assert step["name"] == "shop-at-12.5"
    assert step["load"] == {"model": "arrival_rate", "max_users": 50, "stages": [
        {"name": "jump", "duration": 0, "target": 12.5},
        {"name": "hold", "duration": 20.0, "target": 12.5}]}
    assert step["budgets"] == ["p95 < 1s", "error_rate < 1%"] and step["abort"] == []
    assert len(notes) == 2 and "p95 during peak" in notes[0]
    assert step["data"]["customers"]["file"] == str(tmp_path / "data" / "customers.csv")
    assert data["budgets"][1] == "p95 during peak < 500ms"  # the original is untouched


def test_a_closed_model_user_class_cannot_be_stepped(tmp_path):
    data = {"name": "x", "load": {}, "journeys": [{"name": "vip", "class": "vip.py:Vip"}]}
    with pytest.raises(InputError, match="open model"):
        step_scenario(data, 1, 1, tmp_path)


# A budget tight enough that the breaking point is low and sharp: the demo shop's database is
# capped at 0.25 MB, and `used(storage) < 80%` breaks once a step takes more than ~180 orders
# (page-sized growth makes that +-4%). At 3.5 s a step, that is about 52 journeys/s: the search
# goes 20, 40 pass, 80 fail, 60 fail and stops (60/40 is within --precision 50%).
CAPPED = """
name: capped
target: {demo_shop: {storage_limit_mb: 0.25}}
load:
  model: arrival_rate
  stages: [{duration: 10s, target: 20}]
journeys:
  - name: buy
    steps:
      - request: POST /api/cart/items
        json: {product_id: 1, quantity: 1}
      - request: POST /api/checkout
        json: {email: "{{ faker.email() }}", name: "{{ faker.name() }}"}
forecast: {duration: 1h, peak_rate: 20/s}
monitor: {interval: 0.5s}
budgets: [used(storage) < 80%, p95 < 1s]
"""


def _run_at(tmp_path: Path, scenario: Path, rate: float, hold_s: float) -> dict:
    data = yaml.safe_load(scenario.read_text())
    step, _ = step_scenario(data, rate, hold_s, scenario.parent)
    path = tmp_path / f"at-{rate:g}.yaml"
    path.write_text(yaml.safe_dump(step))
    out = tmp_path / f"run-at-{rate:g}"
    result = cli("run", str(path), "--out", str(out))
    assert (out / "summary.json").exists(), result.stderr[-2000:]
    return {"code": result.returncode, **json.loads((out / "summary.json").read_text())}


@pytest.mark.e2e
def test_find_capacity_finds_a_rate_that_holds_and_1_5x_breaks(tmp_path):
    scenario = tmp_path / "capped.yaml"
    scenario.write_text(CAPPED)
    out = tmp_path / "capacity"
    result = cli("find-capacity", str(scenario), "--step", "3.5s", "--precision", "50%",
                 "--max-steps", "6", "--out", str(out), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads((out / "capacity.json").read_text())
    rate = found["sustainable_rate"]
    assert rate is not None and found["breaking_rate"] <= 1.5 * rate
    assert found["headroom"] == pytest.approx(rate / 20)
    assert f"{rate / 20:.2g}x the forecast peak of 20/s" in result.stdout
    assert "report:" in result.stdout and (out / "capacity.html").stat().st_size > 100_000
    assert "Latency vs arrival rate" in (out / "capacity.html").read_text()
    assert [s["verdict"] for s in found["steps"]].count("pass") >= 1
    assert len(found["steps"]) <= 6 and all(Path(s["run_dir"]).is_dir()
                                            for s in found["steps"])

    confirmed = _run_at(tmp_path, scenario, rate, 3.5)
    assert confirmed["code"] == 0 and confirmed["verdict"] == "pass", confirmed["reasons"]
    broken = _run_at(tmp_path, scenario, 1.5 * rate, 3.5)
    assert broken["code"] == 1 and broken["verdict"] == "fail"
    assert any("used(storage)" in r for r in broken["reasons"])
