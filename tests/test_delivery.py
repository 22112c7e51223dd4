"""The delivery check as a pure function: planned against delivered, per stage."""

from __future__ import annotations

import pytest

from shop_loadtest.judge.delivery import Sample, delivery, describe


def stage(name: str, start: float, end: float, a: float, b: float) -> dict:
    return {"name": name, "start_s": start, "end_s": end, "from": a, "to": b}


def arrivals(rate_of, seconds: int, **kw: float) -> list[Sample]:
    return [Sample(t=float(t), started=rate_of(t), **kw) for t in range(1, seconds + 1)]


def test_open_model_compares_started_arrivals_with_the_rate_integral():
    stages = [stage("ramp", 0, 10, 0, 20), stage("peak", 10, 20, 20, 20)]
    # the ramp plans 100 arrivals (t-0.5)*2 a second; the peak 200
    samples = arrivals(lambda t: 2 * t - 1 if t <= 10 else 20, 20)
    result = delivery("arrival_rate", stages, samples)
    assert [(s["planned"], s["achieved"]) for s in result["stages"]] == [(100, 100), (200, 200)]
    assert result["held"] and result["ratio"] == 1.0
    assert describe(result) == "delivered 100% of planned arrivals (min 95% per stage)"


@pytest.mark.parametrize(("per_second", "held"), [(19, True), (18, False)])
def test_the_tolerance_is_per_stage(per_second, held):
    stages = [stage("a", 0, 10, 20, 20), stage("b", 10, 20, 20, 20)]
    samples = arrivals(lambda t: 20 if t <= 10 else per_second, 20)
    result = delivery("arrival_rate", stages, samples, min_delivered=0.95)
    assert result["stages"][0]["held"]
    assert result["stages"][1]["held"] is held and result["held"] is held


def test_an_arrival_at_a_stage_edge_may_start_in_the_next_interval():
    stages = [stage("short", 0, 1, 10, 10), stage("next", 1, 5, 40, 40)]
    samples = [Sample(t=1.0, started=9), Sample(t=2.0, started=41),
               *arrivals(lambda t: 40, 5)[2:]]
    assert delivery("arrival_rate", stages, samples)["held"]


def test_arrivals_after_the_shape_count_for_the_last_stage():
    stages = [stage("s", 0, 2, 10, 10)]
    samples = [Sample(t=1.0, started=10), Sample(t=2.0, started=5), Sample(t=3.0, started=5)]
    result = delivery("arrival_rate", stages, samples)
    assert result["stages"][0]["achieved"] == 20 and result["held"]


def test_closed_model_judges_holds_after_their_ramp():
    stages = [stage("ramp", 0, 4, 0, 40), stage("hold", 4, 10, 40, 40)]
    users = {1: 10, 2: 20, 3: 30, 4: 40, 5: 33, 6: 40, 7: 40, 8: 40, 9: 40, 10: 40}
    samples = [Sample(t=float(t), users=float(u)) for t, u in users.items()]
    result = delivery("users", stages, samples)
    ramp, hold = result["stages"]
    assert not ramp["judged"] and hold["judged"] and hold["achieved"] == 40 and result["held"]


def test_closed_model_with_no_users_is_not_delivered():
    stages = [stage("hold", 0, 10, 10, 10)]
    samples = [Sample(t=float(t), users=0.0) for t in range(1, 11)]
    result = delivery("users", stages, samples)
    assert result["judged"] and not result["held"] and result["ratio"] == 0.0


def test_a_target_above_max_users_is_flagged_capped():
    stages = [stage("hold", 0, 5, 10**9, 10**9)]
    samples = [Sample(t=float(t), users=2000.0) for t in range(1, 6)]
    result = delivery("users", stages, samples, max_users=2000)
    assert result["capped"] and not result["held"]


def test_ramps_only_are_judged_by_their_peak():
    stages = [stage("up", 0, 3, 0, 9)]
    samples = [Sample(t=1.0, users=3.0), Sample(t=2.0, users=6.0), Sample(t=3.0, users=9.0)]
    result = delivery("users", stages, samples)
    assert result["judged"] and result["held"]


def test_nothing_recorded_is_nothing_shown():
    result = delivery("users", [stage("hold", 0, 5, 10, 10)], [])
    assert not result["judged"] and not result["held"]
