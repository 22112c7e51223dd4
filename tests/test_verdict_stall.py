"""A stalled shop is the shop's failure: the evidence run.json carries about requests without
an answer (runner.request_evidence), and the one verdict rule that reads it
(judge/verdict.py: stalled, blame_stall, which `decide` applies last). Pure functions, tested
directly."""

from __future__ import annotations

import json

import pytest

from shop_loadtest.judge.verdict import blame_stall, stall_evidence, stalled
from shop_loadtest.run.runner import request_evidence


def _evidence(timeouts=0, waiting=0, longest_ms=None, timeout_s=30.0):
    return {"requests": {"timeout_s": timeout_s, "timeouts": timeouts,
                         "in_flight_at_stop": waiting, "in_flight_longest_ms": longest_ms}}


def _summary(*problems: str, meta: dict | None = None) -> dict:
    return {"generator": {"problems": list(problems)}, "stall": stall_evidence(meta or {})}


@pytest.mark.parametrize(("meta", "expected"), [
    ({}, None),
    (_evidence(), None),
    (_evidence(waiting=20, longest_ms=80.0), None),  # a healthy run's last requests
    (_evidence(waiting=2, longest_ms=14_900.0), None),  # under half the 30 s timeout
    (_evidence(timeouts=3), ("the shop stalled: 3 requests timed out (timeout 30 s)", False)),
    (_evidence(waiting=2, longest_ms=15_000.0),
     ("the shop stalled: 2 requests were still waiting for an answer at stop (the longest "
      "15 s)", True)),
    (_evidence(timeouts=1, waiting=4, longest_ms=3_000.0, timeout_s=5),
     ("the shop stalled: 1 requests timed out (timeout 5 s); 4 requests were still waiting "
      "for an answer at stop (the longest 3 s)", True)),
])
def test_a_stall_is_read_from_timeouts_and_requests_left_waiting(meta, expected):
    assert stalled(meta) == expected


SATURATED = "load generator saturated: CPU above 90% for 6 s in a row on local (t=1-7 s)"
DROPPED = "load generator could not keep up: 10 of 154 due arrivals dropped (6.5% > 1%)"


@pytest.mark.parametrize(("verdict", "problems", "meta", "expected"), [
    # a stall behind dropped arrivals or an empty run is the shop's, not the generator's
    ("inconclusive", [DROPPED], _evidence(timeouts=5), "fail"),
    ("inconclusive", [], _evidence(waiting=2, longest_ms=20_000.0), "fail"),
    # a generator that was itself saturated still cannot be trusted
    ("inconclusive", [SATURATED], _evidence(timeouts=5), "inconclusive"),
    # requests left hanging never pass; timeouts alone are judged by the error budgets
    ("pass", [], _evidence(waiting=1, longest_ms=16_000.0), "fail"),
    ("pass", [], _evidence(timeouts=2), "pass"),
    ("fail", [], _evidence(timeouts=2), "fail"),
    ("inconclusive", [DROPPED], _evidence(), "inconclusive"),
    ("pass", [], _evidence(waiting=3, longest_ms=10.0), "pass"),
])
def test_blame_stall_turns_a_stall_into_the_shops_failure(verdict, problems, meta, expected):
    got, reasons = blame_stall(verdict, ["earlier reason"], _summary(*problems, meta=meta))
    assert got == expected
    if stalled(meta) is None:
        assert reasons == ["earlier reason"]
    else:
        assert any(r.startswith("the shop stalled: ") for r in reasons)
        assert "earlier reason" in reasons
        if expected == "fail" and verdict != "fail":
            assert reasons[0].startswith("the shop stalled: ")


def test_request_evidence_adds_up_every_interval_and_survives_a_torn_line(tmp_path):
    lines = [
        {"endpoints": {"a": {"stopped": 0}, "b": {"stopped": 2, "stopped_max_ms": 1500.5}},
         "errors": [{"endpoint": "a", "kind": "timeout", "count": 3},
                    {"endpoint": "a", "kind": "HTTP 500", "count": 9}]},
        {"endpoints": {"a": {"stopped": 1, "stopped_max_ms": 2500.0}},
         "errors": [{"endpoint": "b", "kind": "timeout", "count": 1},
                    {"endpoint": "b", "kind": "in flight at stop", "count": 3}]},
    ]
    path = tmp_path / "intervals.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"endpoints": {"a"')
    assert request_evidence(path) == {"timeouts": 4, "in_flight_at_stop": 3,
                                      "in_flight_longest_ms": 2500.0}
    assert request_evidence(tmp_path / "missing.jsonl") == {
        "timeouts": 0, "in_flight_at_stop": 0, "in_flight_longest_ms": None}


def test_decide_itself_applies_the_stall_rule_to_a_run_that_would_pass():
    """The stall rule is part of `decide`, not a step a caller may forget."""
    from shop_loadtest.judge.verdict import decide
    from tests.test_safety_hosts import _summary as clean_summary

    clean = clean_summary({"count": 0, "passed": True, "refusals": []})
    assert decide({**clean, "stall": stall_evidence({})}, tolerate_worker_loss=False)[0] == "pass"
    hanging = {**clean, "stall": stall_evidence(_evidence(waiting=2, longest_ms=20_000.0))}
    verdict, reasons = decide(hanging, tolerate_worker_loss=False)
    assert verdict == "fail" and reasons[0].startswith("the shop stalled: 2 requests")


def test_an_interrupted_run_is_inconclusive_not_a_shop_failure():
    """Ctrl-C 4 s into a 30 s stage leaves 4% delivered and a few requests on the wire: that
    is the stop's doing (find-capacity once called it "the shop stalled" and went on)."""
    from shop_loadtest.judge.verdict import decide
    from tests.test_safety_hosts import _summary as clean_summary

    cut = clean_summary({"count": 0, "passed": True, "refusals": []})
    cut.update(exit_reason="interrupted", stall={"timeouts": 0, "in_flight_at_stop": 3,
                                                 **stall_evidence({})})
    cut["delivery"] = {**cut["delivery"], "unit": "arrivals", "held": False, "ratio": 0.04,
                       "stages": [{"name": "hold", "planned": 1200.0, "achieved": 50.0,
                                   "ratio": 0.04, "judged": True, "held": False}]}
    verdict, reasons = decide(cut, tolerate_worker_loss=False)
    assert verdict == "inconclusive"
    assert reasons[0].startswith("the run was interrupted after 4 s")
    assert not any("stalled" in r or "could not start" in r for r in reasons)
