"""The monitor: selectors, scraping with prometheus-client's parser, monitor.jsonl written as
it goes, and budgets over the scraped series."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from shop_loadtest.errors import ScenarioError
from shop_loadtest.judge.budgets import evaluate
from shop_loadtest.judge.monitor_stats import increase
from shop_loadtest.results import load_run
from shop_loadtest.run.monitor import Monitor, parse_samples, run_meta, scrape
from shop_loadtest.scenario import load_scenario_text
from shop_loadtest.scenario.budgets import parse_budget
from shop_loadtest.scenario.options import MonitorConfig, Selector
from tests.runfolder import PRODUCTS, RunFolder

METRICS = """\
# HELP shop_orders Orders stored.
# TYPE shop_orders counter
shop_orders_total 42.0
shop_orders_created 1.7e9
# HELP shop_db_rows Rows per table.
# TYPE shop_db_rows gauge
shop_db_rows{table="orders"} 42.0
shop_db_rows{table="products"} 300.0
# HELP shop_http_request_duration_seconds Time to answer.
# TYPE shop_http_request_duration_seconds histogram
shop_http_request_duration_seconds_bucket{le="0.1",method="GET"} 3.0
shop_http_request_duration_seconds_bucket{le="+Inf",method="GET"} 4.0
shop_http_request_duration_seconds_count{method="GET"} 4.0
shop_http_request_duration_seconds_sum{method="GET"} 0.5
"""


def monitored_run(path: Path, *, seconds: int = 10, orders_per_s: float = 10.0,
                  bytes_per_order: float = 600.0, used0: float = 100_000.0,
                  limit: float = 1_000_000.0, budgets: tuple[str, ...] = (),
                  forecast: dict | None = None, failed_at: tuple[float, ...] = ()) -> RunFolder:
    """A run whose storage grows exactly `bytes_per_order` per order, scraped every second
    (and once before the load, at t=-1)."""
    # the plan is the orders it delivers, each arrival recorded: the delivery check holds
    level = orders_per_s
    run = RunFolder(path, budgets=budgets, model="arrival_rate",
                    stages=[{"name": "steady", "start_s": 0.0, "end_s": float(seconds),
                             "from": level, "to": level}])
    run.meta.update(monitor=MonitorConfig().model_dump(mode="json"), forecast=forecast)
    for t in range(-1, seconds + 1):
        if t >= 1:
            run.interval(float(t), {PRODUCTS: [10.0] * 10}, target=level,
                         arrivals={"due": level, "started": level, "dropped": 0, "late": 0})
        if t in failed_at:
            run.monitor(float(t) + 0.5, [], ok=False, error="URLError: connection refused")
            continue
        orders = orders_per_s * max(t, 0)
        run.monitor(float(t) + 0.5, [
            ("shop_orders_total", {}, orders),
            ("shop_db_size_bytes", {}, used0 + bytes_per_order * orders),
            ("shop_db_storage_limit_bytes", {}, limit),
            ("shop_db_rows", {"table": "orders"}, orders),
            ("shop_open_connections", {}, 2.0 + (t == 4)),
        ])
    run.finish(t=float(seconds))
    return run


@pytest.mark.parametrize("text, name, labels", [
    ("shop_db_size_bytes", "shop_db_size_bytes", ()),
    ('shop_db_rows{table="orders"}', "shop_db_rows", (("table", "orders"),)),
    ("x{a=1, b=\"two words\"}", "x", (("a", "1"), ("b", "two words"))),
    ("x{}", "x", ()),
])
def test_selectors_parse(text, name, labels):
    assert Selector.parse(text) == Selector(name, labels)


@pytest.mark.parametrize("text", ["", "1abc", "x{table}", 'x{a="1"', "a b"])
def test_bad_selectors_are_refused(text):
    with pytest.raises(ValueError, match="metric|labels"):
        Selector.parse(text)


def test_selectors_match_labels_ignoring_case():
    sel = Selector.parse('shop_http_requests_total{method="post"}')
    assert sel.matches("shop_http_requests_total", {"method": "POST", "status": "201"})
    assert not sel.matches("shop_http_requests_total", {"method": "GET"})
    assert not sel.matches("other", {"method": "POST"})


def test_samples_come_from_prometheus_clients_parser_minus_buckets_and_created():
    samples = parse_samples(METRICS, MonitorConfig().keeps)
    names = [(s["name"], s["labels"]) for s in samples]
    assert ("shop_orders_total", {}) in names
    assert ("shop_db_rows", {"table": "products"}) in names
    assert ("shop_http_request_duration_seconds_count", {"method": "GET"}) in names
    assert not any(n.endswith(("_bucket", "_created")) for n, _ in names)
    assert len(parse_samples(METRICS)) == len(samples) + 3


def test_a_failed_scrape_is_a_record_not_an_exception():
    record = scrape("http://127.0.0.1:9/metrics", timeout=1.0)
    assert record["ok"] is False and record["samples"] == []
    assert "refused" in record["error"].lower() or "error" in record["error"].lower()


def test_garbage_metrics_are_a_failed_scrape():
    record = scrape("x", timeout=1.0, fetch=lambda url, timeout: "not { prometheus")
    assert record["ok"] is False and record["error"]


def test_the_monitor_writes_each_scrape_as_it_comes(tmp_path, demo_shop):
    out = tmp_path / "monitor.jsonl"
    origin: dict[str, float | None] = {"t0": None}
    monitor = Monitor([demo_shop + "/metrics", "http://127.0.0.1:9/metrics"], out,
                      interval_s=0.1, timeout_s=1.0, origin=lambda: origin["t0"],
                      keep=MonitorConfig().keeps).start()
    time.sleep(0.35)
    assert not out.exists() or out.read_text() == ""  # held back until the load starts
    origin["t0"] = time.time()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and out.read_text().count("\n") < 6:
        time.sleep(0.05)
    assert out.read_text().count("\n") >= 6  # flushed while running
    monitor.stop()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    ok = [r for r in lines if r["ok"]]
    failed = [r for r in lines if not r["ok"]]
    assert ok and failed and len(ok) == len(failed)
    assert ok[0]["t"] < 0 < ok[-1]["t"]  # scrapes before the load keep negative times
    names = {s["name"] for s in ok[0]["samples"]}
    assert {"shop_db_size_bytes", "shop_orders_total", "shop_db_rows"} <= names
    assert all(r["error"] for r in failed)


def test_monitoring_is_on_with_a_section_or_an_auto_started_demo_shop():
    base = "name: x\nload: {stages: [{duration: 1, target: 1}]}\njourneys: [{name: j, " \
           "steps: [{request: GET /}]}]\n"
    plain = load_scenario_text(base)
    assert run_meta(plain, demo_shop=False)["monitor"] is None
    assert run_meta(plain, demo_shop=True)["monitor"]["endpoints"] == ["/metrics"]
    watched = load_scenario_text(base + "monitor: {interval: 500ms, endpoints: "
                                        "[http://127.0.0.1:9100/metrics]}\n")
    meta = run_meta(watched, demo_shop=False)["monitor"]
    assert meta["interval"] == 0.5 and meta["endpoints"] == ["http://127.0.0.1:9100/metrics"]


@pytest.mark.parametrize("section, message", [
    ("monitor: {endpoints: [metrics]}", "expected a URL or a path"),
    ("monitor: {interval: 0}", "greater than 0"),
    ("monitor: {resources: [{name: s, used: 'a b'}]}", "expected a metric"),
    ("monitor: {intervall: 1s}", "did you mean interval?"),
])
def test_bad_monitor_sections_name_the_field(section, message):
    text = ("name: x\nload: {stages: [{duration: 1, target: 1}]}\njourneys: [{name: j, "
            f"steps: [{{request: GET /}}]}}]\n{section}\n")
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario_text(text, file="s.yaml")
    assert "s.yaml:4" in str(err.value)


def test_counter_increase_survives_a_restart():
    import numpy as np

    assert increase(np.array([5.0, 7.0, 10.0, 2.0, 4.0])) == 5 + 2 + 2


@pytest.mark.parametrize("expr, observed, status", [
    ("used(storage) < 80%", 0.16, "pass"),  # 100 kB + 600 B x 100 orders of 1 MB
    ("used < 15%", 0.16, "fail"),
    ("gauge_max(shop_open_connections) < 3", 3.0, "fail"),
    ("gauge_max(shop_open_connections) <= 3", 3.0, "pass"),
    ('gauge_max(shop_db_rows{table="orders"}) < 1000', 100.0, "pass"),
    ("rate(shop_orders_total) > 9/s", 10.0, "pass"),
    ("rate(shop_orders_total) < 600/m", 10.0, "fail"),
    ("gauge_max(no_such_metric) < 1", None, "no_data"),
    ("used(memory) < 80%", None, "no_data"),
])
def test_resource_budgets_over_the_monitor_series(tmp_path, expr, observed, status):
    run = load_run(monitored_run(tmp_path).path)
    (result,) = evaluate([parse_budget(expr)], run)
    assert result.status == status, result
    if observed is None:
        assert result.observed is None and "monitor" in result.note
    else:
        assert result.observed == pytest.approx(observed)


def test_a_windowed_storage_budget_says_when_it_first_broke(tmp_path):
    run = load_run(monitored_run(tmp_path).path)
    (result,) = evaluate([parse_budget("used(storage) < 13% for 2s")], run)
    # used crosses 13% between the scrapes at t=4.5 (12.7%) and t=5.5 (13.3%)
    assert result.status == "fail" and result.first_breach_t == 6.0


def test_failed_scrapes_are_skipped_not_fatal(tmp_path):
    run = load_run(monitored_run(tmp_path, failed_at=(3, 4)).path)
    (result,) = evaluate([parse_budget("used(storage) < 80%")], run)
    assert result.status == "pass" and result.observed == pytest.approx(0.16)
    assert run.monitor["ok"].eq(False).sum() == 2


def test_without_monitor_data_a_resource_budget_has_no_data(tmp_path):
    run = RunFolder(tmp_path)
    run.interval(1.0, {PRODUCTS: [5.0]})
    run.finish(t=1.0)
    (result,) = evaluate([parse_budget("used(storage) < 80%")], load_run(tmp_path))
    assert result.status == "no_data" and "monitor" in result.note


DOC_BASE = """
name: doc
load: {model: arrival_rate, stages: [{name: peak, duration: 1m, target: 10}]}
journeys:
  - {name: browse, steps: [{request: GET /}]}
  - {name: cart, steps: [{request: GET /}]}
  - {name: buy, steps: [{request: GET /}]}
"""


def _doc_blocks() -> list[tuple[str, str]]:
    import re

    from tests.conftest import ROOT

    return [(name, block) for name in ("monitoring.md", "capacity.md")
            for block in re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / name).read_text(),
                                    flags=re.S)]


@pytest.mark.parametrize(("doc", "block"), _doc_blocks(), ids=lambda v: v[:20])
def test_every_yaml_example_in_the_docs_loads(doc, block):
    load_scenario_text(DOC_BASE + block, file=f"docs/{doc}")


def test_under_a_speedup_a_cumulative_resource_is_judged_on_the_real_campaign(tmp_path):
    # 100 kB + 600 B x 100 orders of 1 MB: 16% used. Under --speedup 10 the run did a tenth
    # of the campaign's orders: the campaign writes 600 kB, 70% of the cap.
    run = monitored_run(tmp_path)
    plain = load_run(run.path)
    (held,) = evaluate([parse_budget("used(storage) < 50%")], plain)
    assert held.status == "pass" and held.observed == pytest.approx(0.16) and not held.note
    run.meta["speedup"] = 10.0
    run.finish(t=10.0)
    (broke,) = evaluate([parse_budget("used(storage) < 50%")], load_run(run.path))
    assert broke.status == "fail" and broke.observed == pytest.approx(0.70)
    assert "projected to the real campaign" in broke.note and "--speedup 10" in broke.note
    # a level, not a growth: gauges are judged as measured
    (gauge,) = evaluate([parse_budget("gauge_max(shop_open_connections) < 4")],
                        load_run(run.path))
    assert gauge.status == "pass" and gauge.observed == 3.0 and not gauge.note


def test_the_report_and_summary_md_say_the_speedup_and_the_projection(tmp_path):
    from shop_loadtest.report import build_reports

    run = monitored_run(tmp_path, budgets=("used(storage) < 50%", "p95 < 1s"))
    run.meta["speedup"] = 10.0
    run.finish(t=10.0)
    summary = build_reports(run.path)
    assert summary["verdict"] == "fail"
    md = (run.path / "summary.md").read_text().splitlines()
    assert "speedup 10x, 10 s wall = 100 s of campaign" in md[0]
    assert md[2] == "**target: http://127.0.0.1:8800**"  # the integrity branch's line
    assert md[4] == ("*Under --speedup 10, used(storage) \\< 50%: judged on the projection to "
                     "the real campaign (the growth measured, times the speedup).*")
    html = (run.path / "report.html").read_text()
    assert "speedup 10x</span></h1>" in html
    assert "are judged on the projection to the real campaign" in html


def test_a_projection_past_the_limit_reads_full_not_more(tmp_path):
    run = monitored_run(tmp_path)  # 16% used; x10 of the growth would be 70%, x100 610%
    run.meta["speedup"] = 100.0
    run.finish(t=10.0)
    (full,) = evaluate([parse_budget("used(storage) < 80%")], load_run(run.path))
    assert full.status == "fail" and full.observed == pytest.approx(1.0)


def test_the_latency_histograms_buckets_are_kept_though_other_buckets_are_not():
    other = METRICS + ('# TYPE other_seconds histogram\nother_seconds_bucket{le="+Inf"} 1.0\n'
                       'other_seconds_count 1.0\nother_seconds_sum 0.1\n')
    config = MonitorConfig()
    kept = parse_samples(other, lambda n: config.keeps(n) or config.keeps_bucket(n))
    buckets = {s["name"] for s in kept if s["name"].endswith("_bucket")}
    assert buckets == {"shop_http_request_duration_seconds_bucket"}
    assert not MonitorConfig(buckets=[]).keeps_bucket("shop_http_request_duration_seconds_bucket")
    assert MonitorConfig(buckets=["other_*"]).keeps_bucket("other_seconds_bucket")
    # once every 10 s on a long run, a 30th of a short one, never more often than scrapes
    assert [config.buckets_every_s(s) for s in (4 * 3600, 78, 20)] == [10.0, 2.6, 2.0]
    assert MonitorConfig(buckets_every=30).buckets_every_s(78) == 30.0


def test_buckets_are_capped_by_whole_series():
    from shop_loadtest.run.monitor import cap_buckets

    samples = [{"name": "h_bucket", "labels": {"route": r, "le": le}, "value": 1.0}
               for r in "abc" for le in ("0.1", "1", "+Inf")] + [
        {"name": "g", "labels": {}, "value": 2.0}]
    kept, dropped = cap_buckets(samples, cap=7)
    assert dropped == 3 and {s["labels"].get("route") for s in kept} == {"a", "b", None}


def test_buckets_are_scraped_once_every_buckets_every_and_at_the_end(tmp_path):
    clock = {"now": 1000.0}
    config = MonitorConfig()
    monitor = Monitor(["x"], tmp_path / "monitor.jsonl", interval_s=1.0, timeout_s=1.0,
                      origin=lambda: 1000.0, keep=config.keeps, keep_bucket=config.keeps_bucket,
                      buckets_every_s=5.0, fetch=lambda url, timeout: METRICS,
                      clock=lambda: clock["now"])
    monitor._handle = (tmp_path / "monitor.jsonl").open("a")
    for _ in range(12):
        monitor.scrape_once()
        clock["now"] += 1.0
    monitor.scrape_once(final=True)
    monitor._handle.close()
    lines = [json.loads(x) for x in (tmp_path / "monitor.jsonl").read_text().splitlines()]
    with_buckets = [r["t"] for r in lines
                    if any(s["name"].endswith("_bucket") for s in r["samples"])]
    assert with_buckets == [0.0, 5.0, 10.0, 12.0]


def test_monitor_budgets_judged_on_the_lines_read_agree_with_the_whole_folder(tmp_path):
    from shop_loadtest.results.light import MonitorEvidence
    from shop_loadtest.run.live import JsonlTail
    from tests.test_runway import FOUR_HOURS

    budgets = [parse_budget(b) for b in (
        "used(storage) < 1%", "used(storage) < 80% for 3s", "gauge_max(shop_open_connections) < 3",
        "rate(shop_orders_total) > 9/s for 4s", "runway(storage) > 100%",
        "used(storage) < 80% during steady")]
    run = monitored_run(tmp_path, forecast=FOUR_HOURS, failed_at=(5,), limit=200_000.0)
    # a last flush at stop onto an old slot of its source (the settled frame is rebuilt)
    run.interval(4.3, {PRODUCTS: [10.0] * 10}, target=10.0)
    meta = json.loads((run.path / "run.json").read_text())
    evidence = MonitorEvidence()
    lines = JsonlTail(run.path / "intervals.jsonl").read()
    for i in range(0, len(lines), 3):  # in reads of 3 lines, judged after each, as live
        evidence.add_intervals(lines[i:i + 3] + lines[:1])  # and a line written twice
        evidence.run(meta)
    tail = JsonlTail(run.path / "monitor.jsonl")
    records = tail.read()
    evidence.add_monitor(records[:5])
    evidence.add_monitor(records[5:])
    light_run = evidence.run(meta)
    light = evaluate(budgets, light_run)
    assert evidence._settled_n > 0  # most lines were settled, not read again
    assert light_run.ticks.equals(load_run(run.path).ticks)
    whole = evaluate(budgets, load_run(run.path))
    assert [r.to_json() for r in light] == [r.to_json() for r in whole]
    assert [r.status for r in whole] == ["fail", "fail", "fail", "pass", "fail", "fail"]


def test_the_runners_abort_check_judges_monitor_rules_on_the_lines_it_read(tmp_path):
    from shop_loadtest.run.runner import abort_checker

    # storage passes 50% of its cap at t=6.5 (100 kB + 6 kB a second of 200 kB)
    run = monitored_run(tmp_path, limit=200_000.0)
    run.meta["abort"] = ["used(storage) > 50%"]
    run.finish(t=10.0)
    hit = abort_checker(run.path)()
    assert hit is not None and hit["rule"] == "used(storage) > 50%"
    assert hit["observed"] > 0.5
    # and the live view shows it fired, from the same lines
    from shop_loadtest.run.live import FolderWatch

    (view,) = FolderWatch(run.path).snapshot(10.0, 10.0).aborts
    assert (view.state, view.fired_t) == ("fired", hit["t"])
