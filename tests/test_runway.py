"""Runway: growth per unit of work projected to the campaign forecast. The math is pure and
checked against known growth; one real run reproduces the 2024-08-15 outage."""

from __future__ import annotations

import json
import math

import pytest

from shop_loadtest.errors import ScenarioError
from shop_loadtest.judge.budgets import evaluate
from shop_loadtest.judge.runway import (
    capacity_summary,
    format_span,
    runway_s,
    slope,
    units_per_hour,
    write_capacity,
)
from shop_loadtest.results import load_run
from shop_loadtest.scenario import load_scenario_text
from shop_loadtest.scenario.budgets import parse_budget
from shop_loadtest.scenario.options import Forecast
from tests.conftest import ROOT, cli
from tests.test_monitor import monitored_run

FOUR_HOURS = {"duration": "4h", "orders_per_hour": 1000}


@pytest.mark.parametrize("xs, ys, expected", [
    ([0, 10, 20], [100, 1100, 2100], 100.0),
    ([0, 1, 2, 3], [0, 4096, 4096, 8192], 2457.6),  # page-sized steps: the trend, not a step
    ([5, 5, 5], [1, 2, 3], None),  # no work done: no growth per unit
    ([1], [1], None),
])
def test_growth_per_unit_is_the_least_squares_slope(xs, ys, expected):
    assert slope(xs, ys) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize("limit, used, per_unit, rate, expected", [
    (1_000_000, 100_000, 600, 1000, 5400.0),  # 900 kB at 600 B x 1000/h = 1 h 30 min
    (2_000_000, 86_000, 600, 1000, 11484.0),
    (1_000, 1_000, 600, 1000, 0.0),  # already full
    (1_000, 2_000, 600, 1000, 0.0),
    (1_000, 0, 0, 1000, math.inf),  # does not grow with orders
    (1_000, 0, 600, 0, math.inf),
])
def test_runway_is_what_is_left_over_the_growth_rate(limit, used, per_unit, rate, expected):
    assert runway_s(limit=limit, used=used, per_unit=per_unit, units_per_hour=rate) == expected


@pytest.mark.parametrize("seconds, text", [
    (11400, "3 h 10 min"), (5400, "1 h 30 min"), (7200, "2 h"), (90, "1 min 30 s"),
    (60, "1 min"), (11, "11 s"), (86400 * 3, "3.0 days"), (math.inf, "never"),
    (None, "unknown"),
])
def test_spans_read_like_people_say_them(seconds, text):
    assert format_span(seconds) == text


def test_forecast_work_comes_from_orders_or_from_the_peak_rate():
    assert units_per_hour(Forecast(duration=3600, orders_per_hour=500), 10, 100) == 500
    # 40 journeys/s at the peak, 0.3 orders per journey measured (30 of 100)
    by_peak = Forecast(duration=3600, peak_rate="40/s")
    assert units_per_hour(by_peak, 30, 100) == pytest.approx(40 * 0.3 * 3600)
    assert units_per_hour(by_peak, 30, 0) is None


def test_a_forecast_needs_some_load():
    base = "name: x\nload: {stages: [{duration: 1, target: 1}]}\njourneys: [{name: j, " \
           "steps: [{request: GET /}]}]\n"
    with pytest.raises(ScenarioError, match="orders_per_hour, peak_rate"):
        load_scenario_text(base + "forecast: {duration: 4h}\n")
    scenario = load_scenario_text(base + "forecast: {duration: 4h, peak_rate: 2400/m}\n")
    assert scenario.forecast.peak_rate == 40.0 and scenario.forecast.duration == 14400


def test_a_run_with_known_growth_projects_the_known_runway(tmp_path):
    run = load_run(monitored_run(tmp_path, forecast=FOUR_HOURS).path)
    summary = capacity_summary(run)
    (storage,) = [r for r in summary["resources"] if r["resource"] == "storage"]
    assert storage["per_unit"] == pytest.approx(600.0)
    assert storage["used_start"] == 100_000 and storage["limit"] == 1_000_000
    assert storage["work_done"] == 100
    assert storage["runway_s"] == pytest.approx(5400.0)
    assert storage["runway"] == "1 h 30 min"
    assert storage["runway_vs_campaign"] == pytest.approx(5400 / 14400)
    assert storage["lasts_campaign"] is False
    assert storage["at_campaign_end"] == pytest.approx(100_000 + 600 * 4000)
    assert summary["headlines"] == [
        "storage full after 1 h 30 min at forecast load (1,000 orders/h); "
        "the campaign lasts 4h: it runs out during the campaign"]
    (rows,) = [r for r in summary["resources"] if r["resource"] == "rows"]
    assert rows["labels"] == {"table": "orders"} and rows["per_unit"] == pytest.approx(1.0)


def test_runway_as_a_budget(tmp_path):
    run = load_run(monitored_run(tmp_path, forecast=FOUR_HOURS).path)
    short, long_enough = evaluate([parse_budget("runway(storage) > 100%"),
                                   parse_budget("runway > 30%")], run)
    assert short.status == "fail" and short.observed == pytest.approx(0.375)
    assert long_enough.status == "pass"


def test_runway_from_the_peak_rate_uses_orders_per_journey(tmp_path):
    # 10 journeys a second and 10 orders a second: 1 order per journey; 0.5 journeys/s at the
    # peak is then 1,800 orders/h, and 900 kB / (600 B x 1800/h) = 50 min.
    forecast = {"duration": "1h", "peak_rate": 0.5}
    run = load_run(monitored_run(tmp_path, forecast=forecast).path)
    (storage, *_) = capacity_summary(run)["resources"]
    assert storage["units_per_hour"] == pytest.approx(1800.0)
    assert storage["runway_s"] == pytest.approx(3000.0)


def test_without_a_forecast_runway_has_no_data_but_growth_is_measured(tmp_path):
    run = load_run(monitored_run(tmp_path).path)
    (result,) = evaluate([parse_budget("runway > 100%")], run)
    assert result.status == "no_data" and "forecast" in result.note
    (storage, *_) = capacity_summary(run)["resources"]
    assert storage["per_unit"] == pytest.approx(600.0) and storage["runway"] is None


def test_an_uncapped_resource_has_no_runway(tmp_path):
    run = load_run(monitored_run(tmp_path, limit=0.0, forecast=FOUR_HOURS).path)
    (storage, *_) = capacity_summary(run)["resources"]
    assert storage["limit"] is None and storage["runway"] is None
    (result,) = evaluate([parse_budget("used(storage) < 80%")], run)
    assert result.status == "no_data"


def test_capacity_json_is_written_for_monitored_runs_only(tmp_path):
    monitored = monitored_run(tmp_path / "a", forecast=FOUR_HOURS).path
    data = write_capacity(monitored)
    assert json.loads((monitored / "capacity.json").read_text()) == data
    assert data["scrapes"] == {"scrapes": 12, "failed": 0, "last_error": None}
    plain = tmp_path / "b"
    from tests.runfolder import known_run

    known_run(plain)
    assert write_capacity(plain) is None and not (plain / "capacity.json").exists()


@pytest.mark.e2e
def test_the_postmortem_fails_on_storage_before_the_error_burst(tmp_path):
    out = tmp_path / "run"
    result = cli("run", "scenarios/postmortem-2024-08-15.yaml", "--speedup", "60",
                 "--out", str(out), cwd=ROOT)
    assert result.returncode == 1, result.stderr[-2000:] + result.stdout[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    budgets = {b["expr"]: b for b in summary["budgets"]}
    storage = budgets["used(storage) < 80% for 5s"]
    errors = budgets["error_rate < 1% for 5s"]
    assert storage["status"] == "fail" and errors["status"] == "fail"
    assert storage["first_breach_t"] < errors["first_breach_t"]  # the cause comes first
    assert budgets["runway(storage) > 100%"]["status"] == "fail"
    assert summary["reasons"][0].startswith("budget broke: used(storage) < 80%")
    assert any(e["kind"] == "HTTP 507" for e in summary["errors"])
    capacity = json.loads((out / "capacity.json").read_text())
    (storage_row, *_) = capacity["resources"]
    assert storage_row["full_at_t"] is not None
    assert 300 < storage_row["per_unit"] < 1200  # bytes per order
    assert capacity["headlines"][0].startswith("storage full after")
    assert capacity["scrapes"]["failed"] == 0
