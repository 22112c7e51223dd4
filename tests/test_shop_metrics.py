"""The shop's own metrics in the report: counters as rates, histograms as server-side
percentiles beside the client's, resources against their limit, scrape health, stages and
campaign time on the time charts."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from shop_loadtest.judge.scrapes import scrape_table
from shop_loadtest.report.charts import all_figures
from shop_loadtest.report.shop_metrics import matching_endpoint
from shop_loadtest.results import load_run
from tests.runfolder import KNOWN_STAGES, RunFolder
from tests.test_monitor import monitored_run

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, float("inf"))


def _figures(run, budgets=()):
    data = load_run(run.path)
    summary = {"budgets": [{"expr": b, "unit": "ratio", "breaches": []} for b in budgets]}
    return {f["title"]: json.loads(f["json"]) for f in all_figures(data, summary)}


def _arr(value):
    """A trace's values: plotly writes numpy arrays as {dtype, bdata} (base64)."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)


def _trace(fig, name):
    trace = next(t for t in fig["data"] if t["name"] == name)
    return {**trace, **{k: _arr(trace[k]) for k in ("x", "y", "customdata") if k in trace}}


def test_a_counter_is_drawn_as_its_rate(tmp_path):
    figures = _figures(monitored_run(tmp_path))
    rate = _trace(figures["Shop metric: rate(shop_orders_total)"], "shop_orders_total")
    assert rate["y"][2:] == pytest.approx([10.0] * (len(rate["y"]) - 2))  # 10 orders a second


def test_a_resource_is_drawn_against_its_limit_with_the_80_percent_line(tmp_path):
    # storage: 100 kB + 6 kB a second of a 200 kB cap: 80% at t=10 s, 86% at the end
    run = monitored_run(tmp_path, limit=200_000.0, seconds=12)
    fig = _figures(run)["Shop resource: storage"]
    used = _trace(fig, "shop_db_size_bytes / limit")
    assert max(used["y"]) == pytest.approx(86.0)
    notes = [a["text"] for a in fig["layout"]["annotations"]]
    assert "limit" in notes and "80%" in notes
    assert "crossed 80% at t=10.5 s" in notes  # the first scrape at or above 80%


def _histogram_run(path):
    run = RunFolder(path, stages=KNOWN_STAGES, budgets=["p95 < 1s"])
    run.meta["monitor"] = {"endpoints": ["/metrics"], "interval_s": 1.0}
    counts = np.zeros(len(BUCKETS))
    for t in range(1, 11):
        run.interval(float(t), {"GET /api/products/{id}": [30.0] * 10, "GET /api/x": [5.0] * 4})
        # the server answers in 20..25 ms: every request in the 0.025 bucket and above
        counts += np.array([0, 0, 10, 10, 10, 10, 10])
        samples = [("shop_http_request_duration_seconds_bucket",
                    {"method": "GET", "route": "/api/products/<int:id>", "le": str(le)}, c)
                   for le, c in zip(BUCKETS, counts, strict=True)]
        samples += [("shop_http_requests_total", {"route": "/api/products/<int:id>"}, 10.0 * t)]
        run.monitor(float(t), samples)
    run.finish(t=10.0)
    return run


def test_a_prometheus_histogram_gives_the_servers_percentiles_beside_the_clients(tmp_path):
    figures = _figures(_histogram_run(tmp_path))
    fig = figures["Shop metric: shop_http_request_duration_seconds, server vs client"]
    server = _trace(fig, "server p95 method=GET,route=/api/products/&lt;int:id&gt;")  # escaped
    client = _trace(fig, "client p95 GET /api/products/{id}")
    # interpolated inside the (10 ms, 25 ms] bucket, as Prometheus' histogram_quantile does
    assert server["y"] == pytest.approx([24.25] * len(server["y"]))
    assert client["y"][0] == pytest.approx(30.0, rel=1e-3)  # the gap: network and queueing


@pytest.mark.parametrize("labels, endpoint", [
    ({"method": "GET", "route": "/api/products/<int:id>"}, "GET /api/products/{id}"),
    ({"method": "POST", "route": "/api/products/<int:id>"}, None),
    ({"path": "/api/x"}, "GET /api/x"),
    ({"status": "200"}, None),
])
def test_server_series_match_client_endpoints_by_method_and_route(labels, endpoint):
    assert matching_endpoint(labels, ["GET /api/products/{id}", "GET /api/x"]) == endpoint


def test_at_most_six_shop_charts_budget_named_metrics_first(tmp_path):
    run = RunFolder(tmp_path)
    run.meta["monitor"] = {"endpoints": ["/metrics"], "interval_s": 1.0}
    for t in range(1, 6):
        run.interval(float(t), {"GET /a": [5.0] * 5})
        # ten busy gauges, and a quiet one a budget names
        run.monitor(float(t), [(f"busy_{i}", {"k": str(j)}, float(t)) for i in range(10)
                               for j in range(3)] + [("quiet_gauge", {}, 1.0)])
    run.finish(t=5.0)
    shop = [k for k in _figures(run, budgets=["gauge_max(quiet_gauge) < 2"])
            if k.startswith("Shop")]
    assert len(shop) == 6 and shop[0] == "Shop metric: quiet_gauge"


def test_scrape_health_counts_failures_and_keeps_the_last_error(tmp_path):
    run = monitored_run(tmp_path, failed_at=(-1, 3, 4))
    (health,) = scrape_table(load_run(run.path))
    assert health == {"endpoint": "http://127.0.0.1:8800/metrics", "ok": 9, "failed": 3,
                      "last_error": "URLError: connection refused", "last_error_t": 4.5,
                      "first_failed": True}


def test_time_charts_mark_the_stages_and_read_campaign_time_under_a_speedup(tmp_path):
    run = RunFolder(tmp_path, stages=KNOWN_STAGES)
    run.meta["speedup"] = 10.0
    for t in range(1, 11):
        run.interval(float(t), {"GET /a": [5.0] * 5})
    run.finish(t=10.0)
    figures = _figures(run)
    for title in ("Throughput", "Users", "Latency", "Failures", "Generator"):
        fig = figures[title]
        notes = {a["text"] for a in fig["layout"]["annotations"]}
        assert {"ramp-up", "steady", "ramp-down"} <= notes, title
        assert "campaign time" in fig["layout"]["xaxis"]["title"]["text"], title
    rps = _trace(figures["Throughput"], "requests/s")
    assert rps["x"][-1] == 100.0 and rps["customdata"][-1] == 10.0  # campaign, wall
    stage_lines = [s["x0"] for s in figures["Users"]["layout"]["shapes"]]
    assert stage_lines == [0.0, 20.0, 80.0]
    assert "campaign time" not in json.dumps(figures["Latency distribution"]["layout"])


def test_under_a_speedup_the_resource_chart_draws_what_the_budget_judges(tmp_path):
    run = monitored_run(tmp_path)  # 16% measured; the campaign's growth (x10) reaches 70%
    run.meta["speedup"] = 10.0
    run.finish(t=10.0)
    figures = _figures(run)
    fig = figures["Shop resource: storage"]
    projected = _trace(fig, "projected to the campaign (x10)")
    assert max(projected["y"]) == pytest.approx(70.0)
    assert "Shop metric: shop_db_storage_limit_bytes" not in figures  # it is the 100% line


def test_the_servers_whole_run_percentiles_sit_beside_the_clients_in_report_html(tmp_path):
    from shop_loadtest.report.build import build_reports
    from shop_loadtest.report.shop_metrics import server_latency

    run = _histogram_run(tmp_path)
    # a restart of the shop halfway: its counters fall to 0 and count again
    run.monitor(10.5, [("shop_http_request_duration_seconds_bucket",
                        {"method": "GET", "route": "/api/products/<int:id>", "le": str(le)},
                        c) for le, c in zip(BUCKETS, (0, 0, 5, 5, 5, 5, 5), strict=True)])
    (server,) = server_latency(load_run(run.path)).values()
    assert server["count"] == 95  # 90 from t=1..10, then 5 after the restart
    assert server["p50_ms"] == pytest.approx(17.5) and server["p95_ms"] == pytest.approx(24.25)
    build_reports(run.path)
    html = (run.path / "report.html").read_text()
    assert "<th title=\"the shop's own histogram\">server p95</th>" in html
    assert '<td class="n server">24.2 ms</td>' in html


def test_a_route_the_shop_first_counts_mid_run_keeps_its_first_requests(tmp_path):
    from shop_loadtest.report.shop_metrics import server_latency

    run = _histogram_run(tmp_path)  # buckets scraped at t=1..10; /api/x is first seen at 11
    run.monitor(11.0, [("shop_http_request_duration_seconds_bucket",
                        {"method": "GET", "route": "/api/x", "le": str(le)}, c)
                       for le, c in zip(BUCKETS, (4, 4, 4, 4, 4, 4, 4), strict=True)])
    server = server_latency(load_run(run.path))["GET /api/x"]
    assert server["count"] == 4 and server["p95_ms"] == pytest.approx(4.75)


def test_a_percentile_in_the_first_bucket_reads_at_most_its_bound(tmp_path):
    from shop_loadtest.report.build import build_reports

    run = _histogram_run(tmp_path)
    run.monitor(11.0, [("shop_http_request_duration_seconds_bucket",
                        {"method": "GET", "route": "/api/x", "le": str(le)}, 4)
                       for le in BUCKETS])  # every answer under 5 ms: the first bucket
    build_reports(run.path)
    assert '<td class="n server">&le; 5.0 ms</td>' in (run.path / "report.html").read_text()
