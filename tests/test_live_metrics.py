"""`run --metrics-port`: the load test's own Prometheus metrics, read from its run folder."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shop_loadtest.errors import InputError
from shop_loadtest.run.live_metrics import BUCKETS_S, MetricsServer, RunState, bucket_counts
from tests.conftest import ROOT
from tests.runfolder import RunFolder, known_run

DASHBOARD = ROOT / "deploy" / "grafana" / "shop-loadtest.json"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_bucket_counts_put_each_request_in_the_first_bucket_at_or_above_it(tmp_path: Path
                                                                           ) -> None:
    run = RunFolder(tmp_path / "run")
    run.interval(1.0, {"GET /": [0.5, 3.0, 7.0, 7.0, 400.0, 20_000.0]})
    hist = json.loads((tmp_path / "run" / "intervals.jsonl").read_text())["endpoints"]["GET /"]
    counts = bucket_counts(hist["hist"])
    by_bound = dict(zip((*BUCKETS_S, "+Inf"), counts, strict=True))
    assert by_bound[0.001] == 1 and by_bound[0.005] == 1 and by_bound[0.01] == 2
    assert by_bound[0.5] == 1 and by_bound["+Inf"] == 1  # 20 s is beyond the last bucket
    assert sum(counts) == 6
    assert bucket_counts(None) == [0] * (len(BUCKETS_S) + 1)


def test_run_state_adds_up_the_known_run(tmp_path: Path) -> None:
    known_run(tmp_path / "run")
    state = RunState()
    for line in (tmp_path / "run" / "intervals.jsonl").read_text().splitlines():
        state.add(json.loads(line))
    products = state.endpoints["GET /api/products"]
    assert products.requests == 100 and products.failures == 2  # 2 x HTTP 404 at t=9
    assert sum(products.buckets) == 100
    assert products.sum_s == pytest.approx(10 * 0.55)  # 10..100 ms, ten times
    assert state.endpoints["POST /api/checkout"].failures == 10
    assert state.errors[("POST /api/checkout", "HTTP 503")] == 10
    assert state.latest_t == 10.0


def test_server_exposes_the_folder_as_prometheus_metrics(tmp_path: Path) -> None:
    run = known_run(tmp_path / "run", budgets=["p95 < 500ms", "error_rate < 1%"])
    server = MetricsServer(run.path, 0).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        server.read_once()
        metrics = scrape(server.url)
    finally:
        server.stop()
    requests = ("shop_loadtest_requests_total",
                (("endpoint", "GET /api/products"), ("method", "GET")))
    assert metrics[requests] == 100
    assert metrics[("shop_loadtest_request_failures_total",
                    (("endpoint", "POST /api/checkout"), ("method", "POST")))] == 10
    assert metrics[("shop_loadtest_request_errors_total",
                    (("endpoint", "POST /api/checkout"), ("kind", "HTTP 503")))] == 10
    assert metrics[("shop_loadtest_request_duration_seconds_count",
                    (("endpoint", "POST /api/checkout"),))] == 100
    # 80 checkouts at 200 ms, 20 at 1 s: cumulative buckets. HDR keeps 3 digits, so 1 s
    # exactly may have been up to 0.1% more: it is counted above the 1 s bound, never below.
    bucket = "shop_loadtest_request_duration_seconds_bucket"
    checkout = ("endpoint", "POST /api/checkout")
    assert metrics[(bucket, (checkout, ("le", "0.25")))] == 80
    assert metrics[(bucket, (checkout, ("le", "1.0")))] == 80
    assert metrics[(bucket, (checkout, ("le", "2.5")))] == 100
    assert metrics[("shop_loadtest_users_planned", ())] == 0.0  # the ramp-down's end
    assert metrics[("shop_loadtest_running", ())] == 0  # the stop event was written
    assert metrics[("shop_loadtest_generator_cpu_percent", (("source", "local"),))] == 30.0
    # the known run breaks its error budget (12 of 300 failed) and keeps p95 under 500 ms?
    state = {(dict(k)["budget"], dict(k)["state"]): v for (n, k), v in metrics.items()
             if n == "shop_loadtest_budget_state"}
    assert state[("error_rate < 1%", "fail")] == 1 and state[("error_rate < 1%", "pass")] == 0
    assert sum(v for (b, _), v in state.items() if b == "p95 < 500ms") == 1


def test_server_follows_a_growing_folder(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run", model="arrival_rate")
    server = MetricsServer(run.path, 0).start()
    try:
        run.interval(1.0, {"GET /": [5.0] * 4}, target=20.0,
                     arrivals={"due": 20, "started": 18, "dropped": 2, "late": 1})
        server.read_once()
        first = scrape(server.url)
        run.interval(2.0, {"GET /": [5.0] * 6}, target=40.0,
                     arrivals={"due": 40, "started": 40, "dropped": 0, "late": 0})
        with (run.path / "intervals.jsonl").open("a") as handle:
            handle.write('{"t": 3.0, "endpoints": {"GET /": {"n": 9')  # half-written
        server.read_once()
        second = scrape(server.url)
    finally:
        server.stop()
    key = ("shop_loadtest_requests_total", (("endpoint", "GET /"), ("method", "GET")))
    assert (first[key], second[key]) == (4, 10)
    assert first[("shop_loadtest_arrival_rate_planned", ())] == 20.0
    assert first[("shop_loadtest_arrival_rate_achieved", ())] == 18.0
    assert second[("shop_loadtest_arrival_rate_planned", ())] == 40.0
    assert second[("shop_loadtest_arrivals_total", (("state", "dropped"),))] == 2
    assert second[("shop_loadtest_running", ())] == 1


def test_a_port_in_use_is_bad_input_named(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"--metrics-port {port}: cannot listen"):
            MetricsServer(run.path, port).start()


def test_run_with_a_taken_metrics_port_is_bad_input_before_any_load(tmp_path: Path) -> None:
    from tests.conftest import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli("run", "scenarios/flash-sale.yaml", "--out", str(tmp_path / "run"),
                   "--metrics-port", str(port))
    assert done.returncode == 2, done.stderr
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1" in done.stderr
    assert not (tmp_path / "run" / "intervals.jsonl").exists()  # no load was sent


def test_the_exporter_never_imports_locust() -> None:
    code = ("import sys, shop_loadtest.run.live_metrics, shop_loadtest.run.runner, "
            "shop_loadtest.cli; assert 'locust' not in sys.modules and 'gevent' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_dashboard_queries_only_metrics_that_exist(tmp_path: Path) -> None:
    """Every metric a Grafana panel names is exported by us or by the demo shop."""
    import re

    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 8
    known_run(tmp_path / "closed", budgets=["p95 < 500ms"])
    open_model = RunFolder(tmp_path / "open", model="arrival_rate")
    open_model.interval(1.0, {"GET /": [5.0]}, arrivals={"due": 1, "started": 1})
    ours: set[str] = set()
    for folder in (tmp_path / "closed", tmp_path / "open"):
        server = MetricsServer(folder, 0).start()
        try:
            server.read_once()
            ours |= {name for name, _ in scrape(server.url)}
        finally:
            server.stop()
    shop = {"shop_http_requests_total", "shop_http_request_duration_seconds_bucket",
            "shop_db_size_bytes", "shop_db_storage_limit_bytes", "shop_orders_total",
            "ALERTS"}
    named = {m for e in exprs for m in re.findall(r"\b((?:shop_|ALERTS)[a-zA-Z0-9_:]*)", e)
             if not m.startswith("shop_loadtest:")}
    assert named - ours - shop == set()
