"""The load engine, for real: exact recording, the open model across processes, and a run the
generator itself could not carry, which must come out `inconclusive`.

The recorder lives in the runtime, which imports locust (gevent patches the process), so its
checks run in a subprocess; the runs are real Locust processes against real loopback servers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import cli
from tests.servers import CountingServer
from tests.test_arrivals import in_engine

RECORDER_CHECKS = """
    import json, random
    from shop_loadtest.runtime import recorder as R

    rng = random.Random(1)
    values = [rng.choice([rng.uniform(0, 2), rng.uniform(0.5, 80), rng.expovariate(0.001),
                          0.0, 0.0004, 5e9]) for _ in range(30000)]
    one_by_one, bulk = R.new_histogram(), R.new_histogram()
    for v in values:
        one_by_one.record_value(min(max(int(v * 1000.0), R.LOWEST_US), R.HIGHEST_US))
    R.record_many(bulk, R.to_us(values))
    qs = [0.0, 1.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0]

    rec = R.Recorder(redact={"s3cret"})
    for i, v in enumerate(values[:1000]):
        rec.on_request("GET", "a", v, 10, context={"late_ms": 5.0} if i % 2 else None)
    rec.on_request("POST", "b", 12.5, 3, context={"late_ms": 100.0})
    rec.on_request("POST", "b", 7.5, None, exception=RuntimeError("HTTP 500 s3cret"),
                   response=type("Resp", (), {"status_code": 500,
                                              "content": b'{"error": "s3cret leaked"}'})(),
                   url="http://127.0.0.1/b?key=s3cret")
    rec.journey_done(0.5)
    rec.journey_done(1.5)
    first, second = rec.take(), rec.take()

    folded = R.Recorder()
    n = R.FOLD_AT * 2 + 7
    for i in range(n):
        folded.on_request("GET", "c", float(i % 100), 1)
    big = folded.take()["endpoints"]["c"]
    whole = R.HdrHistogram.decode(big["hist"])

    print(json.dumps({
        "same_encoding": one_by_one.encode() == bulk.encode(),
        "same_min_max_total": [one_by_one.min_value, one_by_one.max_value,
                               one_by_one.total_count] == [bulk.min_value, bulk.max_value,
                                                           bulk.total_count],
        "same_percentiles": [one_by_one.get_value_at_percentile(q) for q in qs]
                            == R.percentiles_us(bulk, qs),
        "a": first["endpoints"]["a"], "b": first["endpoints"]["b"],
        "a_sum": sum(values[:1000]), "a_min": min(values[:1000]), "a_max": max(values[:1000]),
        "errors": first["errors"], "journeys": first["journeys"],
        "samples": first.pop("error_samples", None),
        "second": second,
        "big_n": big["n"], "big_total": whole.get_total_count(), "n": n,
        "big_sum": big["sum_ms"], "expected_sum": float(sum(i % 100 for i in range(n))),
    }))
"""


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return dict(in_engine(RECORDER_CHECKS))


def test_bulk_recording_builds_the_same_histogram_as_hdrh_one_value_at_a_time(recorded):
    assert recorded["same_encoding"] is True
    assert recorded["same_min_max_total"] is True
    assert recorded["same_percentiles"] is True


def test_an_interval_keeps_exact_counts_sums_and_extremes(recorded):
    a = recorded["a"]
    assert (a["n"], a["fail"], a["bytes"]) == (1000, 0, 10_000)
    assert a["sum_ms"] == pytest.approx(recorded["a_sum"], rel=1e-12, abs=1e-3)
    assert a["min_ms"] == pytest.approx(recorded["a_min"], abs=1e-3)
    assert a["max_ms"] == pytest.approx(recorded["a_max"], abs=1e-3)
    assert a["hist_due"] is not None  # half the requests carried their lateness
    assert a["p50_ms"] <= a["p95_ms"] <= a["p99_ms"]


def test_the_locust_listener_records_lateness_failures_and_redacts_secrets(recorded):
    b = recorded["b"]
    assert (b["n"], b["fail"], b["bytes"], b["sum_ms"]) == (2, 1, 3, 20.0)
    assert b["hist_due"] is not None
    assert recorded["errors"] == [{"endpoint": "b", "kind": "HTTP 500",
                                   "message": "*** leaked", "count": 1}]
    assert recorded["samples"] == [{"endpoint": "b", "kind": "HTTP 500",
                                    "message": "*** leaked", "status": 500, "method": "POST",
                                    "path": "/b", "body": '{"error": "*** leaked"}'}]
    assert recorded["journeys"] == {"completed": 2, "mean_s": 1.0}


def test_taking_an_interval_starts_the_next_one_empty(recorded):
    assert recorded["second"] == {"endpoints": {}, "errors": [],
                                  "journeys": {"completed": 0, "mean_s": None}}


def test_long_intervals_fold_into_the_histogram_without_losing_a_request(recorded):
    assert recorded["big_n"] == recorded["big_total"] == recorded["n"]
    assert recorded["big_sum"] == recorded["expected_sum"]


# --- real runs ------------------------------------------------------------------------------

def write_scenario(tmp_path: Path, host: str, stages: list[tuple[str, float, float]],
                   **load: Any) -> Path:
    data = {
        "name": "engine",
        "target": {"host": host},
        "load": {"model": "arrival_rate", **load,
                 "stages": [{"name": n, "duration": d, "target": t} for n, d, t in stages]},
        "journeys": [{"name": "j", "steps": [{"request": "GET /api/products",
                                              "name": "GET /api/products"}]}],
    }
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.e2e
def test_a_pool_at_max_users_that_cannot_keep_up_fails_the_run(tmp_path):
    # 100 journeys/s of 50 ms each need 5+ users; a pool of 2 serves under 40/s, so most
    # arrivals wait past max_lateness and are dropped. The generator itself is healthy and
    # every user is waiting on the shop: the shop's failure (issue 11), never a pass.
    with CountingServer(delay_s=0.05) as server:
        path = write_scenario(tmp_path, server.url, [("open", 0, 100), ("hold", 3, 100)],
                              max_users=2, max_lateness="200ms")
        out = tmp_path / "run"
        result = cli("run", str(path), "--out", str(out))
    assert result.returncode == 1, result.stderr + result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "fail"
    assert any("could not start: all 2 users were waiting on the shop" in reason
               for reason in summary["reasons"])
    arrivals = summary["arrivals"]
    assert arrivals["due"] == 300
    assert arrivals["started"] + arrivals["dropped"] == arrivals["due"]
    assert arrivals["dropped"] > 100
    # the server saw what was started (and the runner's reachability check)
    assert arrivals["started"] - 2 <= server.count - 1 <= arrivals["started"]
    (endpoint,) = summary["endpoints"]
    # latency from when a request was due shows the wait that the send time hides
    assert endpoint["p95_due_ms"] > endpoint["p95_ms"] + 50


@pytest.mark.e2e
def test_two_worker_processes_deliver_the_target_rate_exactly(tmp_path):
    # a ramp to 200/s over 1 s (100 arrivals), then 3 s at 200/s (600): 700 in all
    with CountingServer() as server:
        path = write_scenario(tmp_path, server.url,
                              [("ramp", 1, 200), ("hold", 3, 200)])
        out = tmp_path / "run"
        result = cli("run", str(path), "--workers", "2", "--out", str(out))
        received = server.count - 1  # less the runner's reachability check
    assert result.returncode == 0, result.stderr + result.stdout
    assert 693 <= received <= 700
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arrivals"]["due"] == 700
    assert summary["arrivals"]["dropped"] == 0
    # every request the server answered was recorded, up to the last second
    assert received - 2 <= summary["requests"] <= received
    intervals = lines(out / "intervals.jsonl")
    for source in ("worker-0", "worker-1"):
        mine = sorted((r for r in intervals if r["source"] == source), key=lambda r: r["t"])
        assert sum(r["arrivals"]["due"] for r in mine) == 350
        # CPU, loop lag and memory of every load process, every second from the start
        assert mine[0]["t"] <= 1.5 and all(r["health"]["cpu_pct"] is not None for r in mine)
        assert len(mine) >= 4
    stages = [e["detail"]["name"] for e in lines(out / "events.jsonl") if e["kind"] == "stage"]
    assert stages == ["ramp", "hold"]
