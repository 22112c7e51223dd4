"""The shop receives exactly the traffic the scenario describes, and the report counts all of
it: real Locust runs (the CLI, as a user runs it) against loopback servers that reset
connections, answer 500, redirect, stall and set cookies. Each server counts what it got."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import cli
from tests.servers import (
    CookieServer,
    CountingServer,
    RedirectServer,
    ResettingServer,
    StallingServer,
)

pytestmark = pytest.mark.e2e


def run(tmp_path: Path, host: str, journeys: list[dict[str, Any]], *, seconds: float = 4.0,
        users: int = 1, model: str = "users", **extra: Any) -> tuple[dict[str, Any], Path]:
    """Run a scenario holding `users` users (or arrivals/s) for `seconds`; its summary."""
    scenario = {
        "name": "fidelity",
        "target": {"host": host, "health_path": "/health", **extra.pop("target", {})},
        "load": {"model": model, **extra.pop("load", {}),
                 "stages": [{"duration": 0, "target": users},
                            {"duration": seconds, "target": users}]},
        "journeys": journeys,
        **extra,
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "fidelity.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    out = tmp_path / "run"
    result = cli("run", str(path), "--out", str(out), timeout=120)
    assert (out / "summary.json").exists(), result.stderr[-3000:] + result.stdout[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    summary["exit_code"] = result.returncode
    return summary, out


def endpoint(summary: dict[str, Any], name: str) -> dict[str, Any]:
    found = [e for e in summary["endpoints"] if e["name"] == name]
    assert found, [e["name"] for e in summary["endpoints"]]
    return found[0]


def run_meta(out: Path) -> dict[str, Any]:
    return json.loads((out / "run.json").read_text())


# --- 1. each request is sent once --------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_shop_that_resets_connections_receives_each_request_once(tmp_path, method):
    with ResettingServer() as server:
        summary, out = run(tmp_path, server.url, [{"name": "reset", "steps": [
            {"request": f"{method} /x", "name": "x"}]}], seconds=3, users=2)
        received = server.count
    in_flight = run_meta(out)["requests"]["in_flight_at_stop"]
    x = endpoint(summary, "x")
    assert x["failures"] == x["requests"] > 0
    # every request the shop got is in the report, and nothing else: once each
    assert x["requests"] <= received <= x["requests"] + in_flight
    kinds = {e["kind"] for e in summary["errors"]}
    assert kinds <= {"ConnectionResetError", "HTTPConnectionClosed", "in flight at stop"}, (
        summary["errors"])


# --- 2. a failure keeps the planned pacing -----------------------------------------------------

def test_a_failing_step_still_waits_out_the_journeys_think_time(tmp_path):
    with CountingServer(status=500) as server:
        summary, _ = run(tmp_path, server.url, [{"name": "fails", "steps": [
            {"request": "GET /api/products", "name": "products"}, {"think": "1s"},
            {"request": "GET /api/cart", "name": "cart"}]}], seconds=5)
        received = server.count - 1  # less the runner's reachability check
    # the plan: one journey (two requests when it succeeds) per second; failing at its first
    # request, the user still waits 1 s before the next journey: about 5, never 45
    assert 3 <= received <= 6 + 1, received
    products = endpoint(summary, "products")
    assert products["requests"] == products["failures"] == received


def test_a_reset_does_not_make_a_user_spin_either(tmp_path):
    with ResettingServer() as server:
        run(tmp_path, server.url, [{"name": "resets", "steps": [
            {"request": "GET /x", "name": "x"}, {"think": "500ms"},
            {"request": "GET /y", "name": "y"}, {"think": "500ms"}]}], seconds=4)
        received = server.count
    assert 2 <= received <= 4 + 1, received


@pytest.mark.parametrize("where", ["journey", "step"])
def test_an_on_fail_pause_backs_off_longer_than_the_think_times(tmp_path, where):
    step = {"request": "GET /api/products", "name": "products"}
    journey: dict = {"name": "backs-off"}
    (journey if where == "journey" else step)["on_fail_pause"] = "2s"
    journey["steps"] = [step, {"think": "200ms"}]
    with CountingServer(status=500) as server:
        run(tmp_path, server.url, [journey], seconds=5)
        received = server.count - 1
    assert 2 <= received <= 3 + 1, received


# --- 3. every redirect hop is a request --------------------------------------------------------

def test_every_redirect_hop_is_recorded_as_its_own_request(tmp_path):
    with RedirectServer(hops=3) as server:
        summary, out = run(tmp_path, server.url, [{"name": "hops", "steps": [
            {"request": "GET /start", "name": "start", "check": [{"json": "$.ok",
                                                                  "equals": True}]},
            {"think": "100ms"}]}], seconds=3)
        received = server.count("/start") + server.count("/hop/") + server.count("/end")
        starts = server.count("/start")
    in_flight = run_meta(out)["requests"]["in_flight_at_stop"]
    names = {e["name"]: e for e in summary["endpoints"]}
    assert set(names) == {"start", "start (redirect 1)", "start (redirect 2)",
                          "start (redirect 3)"}
    assert summary["requests"] <= received <= summary["requests"] + in_flight
    assert starts - 1 <= names["start (redirect 3)"]["requests"] <= starts
    assert summary["failures"] == 0, summary["errors"]
    # throughput counts what the shop served: four requests per journey
    assert summary["rps"] == pytest.approx(received / summary["duration_s"], rel=0.2)


def test_a_307_keeps_the_method_and_body_and_a_303_turns_into_a_get(tmp_path):
    for status, expected in ((307, ("POST", b'{"a": 1}')), (303, ("GET", b""))):
        with RedirectServer(hops=1, status=status) as server:
            summary, _ = run(tmp_path / str(status), server.url, [{"name": "post", "steps": [
                {"request": "POST /start", "name": "post", "json": {"a": 1}},
                {"think": "500ms"}]}], seconds=1)
            seen = list(server.seen)
        hops = [(m, body) for m, path, body in seen if path != "/start" and path != "/health"]
        assert hops and set(hops) == {expected}, (status, hops)
        assert endpoint(summary, "post (redirect 1)")["method"] == expected[0]


def test_a_redirect_loop_stops_at_the_hop_limit_as_a_failure(tmp_path):
    with RedirectServer() as server:
        summary, _ = run(tmp_path, server.url, [{"name": "loop", "steps": [
            {"request": "GET /loop", "name": "loop"}, {"think": "1s"}]}], seconds=1)
        received = server.count("/loop")
    assert summary["requests"] == received
    assert any("redirect" in e["message"] for e in summary["errors"]), summary["errors"]


# --- 4. a journey is one visitor ---------------------------------------------------------------

def _visits(steps: int = 2) -> list[dict[str, Any]]:
    return [{"request": f"GET /visit/{k}", "name": f"visit {k}"} for k in range(steps)] + [
        {"think": "200ms"}]


@pytest.mark.parametrize("model", ["users", "arrival_rate"])
def test_no_cookie_is_carried_from_one_journey_to_the_next(tmp_path, model):
    with CookieServer() as server:
        summary, _ = run(tmp_path, server.url, [{"name": "visitor", "steps": _visits()}],
                         seconds=2, users=2 if model == "users" else 5, model=model)
        seen = list(server.seen)
    assert summary["failures"] == 0
    firsts = [cookie for path, cookie in seen if path == "/visit/0"]
    seconds = [cookie for path, cookie in seen if path == "/visit/1"]
    assert len(firsts) >= 4 and len(seconds) >= 4
    # each journey starts with an empty jar; its second request carries the first's cookie
    assert set(firsts) == {""}, seen
    assert all(c.startswith("visitor=") for c in seconds), seen


def test_session_keep_carries_cookies_and_captures_across_a_users_journeys(tmp_path):
    with CookieServer() as server:
        summary, _ = run(tmp_path, server.url, [{"name": "member", "session": "keep", "steps": [
            {"request": "GET /visit/0", "name": "visit",
             "capture": {"seen": "json:$.cookie"}},
            {"request": "GET /visit/1?seen={{ seen }}", "name": "seen"},
            {"think": "200ms"}]}], seconds=2)
        seen = list(server.seen)
    assert summary["failures"] == 0
    firsts = [cookie for path, cookie in seen if path == "/visit/0"]
    assert len(firsts) >= 4
    # the first visit starts empty; every later journey of the user carries the cookie on
    assert firsts[0] == "" and all(c.startswith("visitor=") for c in firsts[1:]), seen


# --- timeouts and requests in flight at stop (issue 11, point 5) ------------------------------

def test_a_request_without_an_answer_times_out_as_a_failed_request_of_kind_timeout(tmp_path):
    with StallingServer() as server:
        summary, out = run(tmp_path, server.url, [{"name": "hangs", "steps": [
            {"request": "GET /slow", "name": "slow", "timeout": "500ms"},
            {"request": "GET /x", "name": "x"}]}],
            seconds=3, target={"timeout": "20s"}, budgets=["error_rate < 1%"])
        received = server.count
    slow = endpoint(summary, "slow")
    assert slow["failures"] == slow["requests"] >= 3  # about one each 500 ms, never 20 s
    assert 450 <= slow["p50_ms"] <= 1500
    assert {e["kind"] for e in summary["errors"]} <= {"timeout", "in flight at stop"}
    evidence = run_meta(out)["requests"]
    assert evidence["timeout_s"] == 20
    assert evidence["timeouts"] == slow["failures"]
    # a request cut off at stop may not have reached the shop yet
    assert slow["requests"] <= received <= slow["requests"] + evidence["in_flight_at_stop"]
    assert summary["verdict"] == "fail" and summary["exit_code"] == 1
    assert any(r.startswith("the shop stalled: ") for r in summary["reasons"])


def test_requests_in_flight_at_stop_are_counted_and_the_stall_is_the_shops(tmp_path):
    with StallingServer() as server:
        summary, out = run(tmp_path, server.url, [{"name": "hangs", "steps": [
            {"request": "GET /slow", "name": "slow"}]}], seconds=4, users=2,
            target={"timeout": "6s"})
        received = server.count
    evidence = run_meta(out)["requests"]
    # nothing was answered: without the count, these requests would vanish from the report
    assert summary["requests"] == 0
    assert evidence["in_flight_at_stop"] == received == 2
    assert evidence["in_flight_longest_ms"] >= 3000  # half the timeout: a stall
    assert evidence["timeouts"] == 0
    assert summary["verdict"] == "fail" and summary["exit_code"] == 1
    assert "still waiting for an answer at stop" in summary["reasons"][0]
