"""Funnel planning: visitors and conversion -> journey weights, arrival rates, concurrent users
(Little's law) and load workers."""

from __future__ import annotations

import json

import pytest

from shop_loadtest.capacity.plan import RPS_PER_WORKER, funnel_plan, plan_scenario, render, session
from shop_loadtest.errors import InputError, ScenarioError
from shop_loadtest.scenario import load_scenario_text
from tests.conftest import cli

SHOP = """
name: shop
load:
  model: arrival_rate
  stages: [{duration: 1m, target: 20}, {duration: 5m, target: 20}]
journeys:
  - name: browse
    steps:
      - request: GET /api/products
      - think: 2s..4s
      - request: GET /api/products/1
  - name: cart
    steps:
      - request: GET /api/products
      - think: {exponential: 3s}
      - request: POST /api/cart/items
  - name: buy
    steps:
      - request: GET /api/products
      - think: 2s
      - request: POST /api/cart/items
      - think: 10s
      - request: POST /api/checkout
  - name: admin
    steps: [{request: GET /admin}]
plan:
  visitors_per_minute: 1200
  funnel:
    - {journey: browse, reach: 100%}
    - {journey: cart, reach: 30%}
    - {journey: buy, reach: 10%}
  response_time: 100ms
"""


def test_the_funnel_becomes_weights_rates_and_users_by_littles_law():
    plan = funnel_plan(visitors_per_s=20.0, steps=[("browse", 1.0, 10.0, 2),
                                                   ("cart", 0.3, 20.0, 3),
                                                   ("buy", 0.1, 60.0, 5)])
    assert [j.weight for j in plan.journeys] == [0.7, 0.2, 0.1]
    assert [j.rate for j in plan.journeys] == [14.0, 4.0, 2.0]
    assert [j.users for j in plan.journeys] == [140.0, 80.0, 120.0]  # L = lambda x W
    assert [j.requests_per_s for j in plan.journeys] == [28.0, 12.0, 10.0]
    assert plan.rate == 20.0 and plan.users == 340.0 and plan.requests_per_s == 50.0
    assert plan.orders_per_hour == 2.0 * 3600
    assert plan.workers == 1


@pytest.mark.parametrize("rps, per_worker, workers", [
    (50.0, 1000.0, 1), (1000.0, 1000.0, 1), (1001.0, 1000.0, 2), (4500.0, 1000.0, 5),
])
def test_workers_cover_the_requests_per_second(rps, per_worker, workers):
    plan = funnel_plan(visitors_per_s=rps, steps=[("j", 1.0, 1.0, 1)],
                       rps_per_worker=per_worker)
    assert plan.workers == workers


def test_a_funnel_that_starts_below_100_percent_leaves_bounces_out():
    plan = funnel_plan(visitors_per_s=10.0, steps=[("browse", 0.6, 10.0, 2),
                                                   ("buy", 0.1, 30.0, 4)])
    assert [j.rate for j in plan.journeys] == [5.0, 1.0]  # 40% bounced: no journey


def test_sessions_add_think_means_and_requests():
    scenario = load_scenario_text(SHOP)
    browse, cart, buy = scenario.journeys[:3]
    assert session(browse, think=None, response_time=0.1) == (pytest.approx(3.2), 2)
    assert session(cart, think=None, response_time=0.1) == (pytest.approx(3.2), 2)
    assert session(buy, think=None, response_time=0.1) == (pytest.approx(12.3), 3)
    assert session(buy, think=5.0, response_time=0.0) == (10.0, 3)  # plan.think overrides


def test_a_scenarios_plan_uses_its_journeys():
    plan = plan_scenario(load_scenario_text(SHOP))
    assert plan.visitors_per_s == 20.0
    assert [(j.journey, j.rate) for j in plan.journeys] == [("browse", 14.0), ("cart", 4.0),
                                                            ("buy", 2.0)]
    assert plan.users == pytest.approx(14 * 3.2 + 4 * 3.2 + 2 * 12.3)
    assert plan.rps_per_worker == RPS_PER_WORKER
    assert any("admin" in note for note in plan.notes)
    text = render(plan)
    assert "concurrent users:  82" in text and "load workers:      1" in text
    assert "browse: weight 70" in text and "buy: weight 10" in text


def test_without_visitors_the_open_models_peak_is_the_visitor_rate():
    text = SHOP.replace("  visitors_per_minute: 1200\n", "")
    plan = plan_scenario(load_scenario_text(text))
    assert plan.visitors_per_s == 20.0 and "peak" in plan.notes[0]


@pytest.mark.parametrize("change, error, message", [
    (("{journey: buy, reach: 10%}", "{journey: buy, reach: 40%}"), ScenarioError,
     "reach cannot grow deeper"),
    (("{journey: buy, reach: 10%}", "{journey: buy, reach: 1.5}"), ScenarioError,
     "less than or equal to 1"),
    (("{journey: buy, reach: 10%}", "{journey: nope, reach: 10%}"), InputError,
     "no journey named 'nope'"),
    (("{journey: buy, reach: 10%}", "{journey: cart, reach: 10%}"), ScenarioError,
     "appears once"),
    (("model: arrival_rate", "model: users"), None, None),
])
def test_bad_plans_say_what_is_wrong(change, error, message):
    text = SHOP.replace(*change)
    if error is None:  # users model with visitors given: fine
        assert plan_scenario(load_scenario_text(text)).visitors_per_s == 20.0
        return
    with pytest.raises(error, match=message):
        plan_scenario(load_scenario_text(text))


def test_the_users_model_needs_visitors():
    text = SHOP.replace("model: arrival_rate", "model: users").replace(
        "  visitors_per_minute: 1200\n", "")
    with pytest.raises(InputError, match="visitors_per_minute"):
        plan_scenario(load_scenario_text(text))


def test_the_plan_command_prints_the_plan(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP)
    result = cli("plan", str(path))
    assert result.returncode == 0, result.stderr
    assert "concurrent users" in result.stdout and "load workers" in result.stdout
    as_json = cli("plan", str(path), "--json", "--rps-per-worker", "20")
    data = json.loads(as_json.stdout)
    assert data["workers"] == 3 and data["rps_per_worker"] == 20  # 50 req/s at 20 each
    (tmp_path / "none.yaml").write_text(SHOP.split("plan:")[0])
    missing = cli("plan", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2 and "no plan: section" in missing.stderr
