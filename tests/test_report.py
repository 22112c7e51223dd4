import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import plotly.offline
import pytest

from shop_loadtest.errors import ResultsError
from shop_loadtest.judge.summary import judge_run
from shop_loadtest.report import build_reports, charts, terminal_summary
from shop_loadtest.report.charts import log_ticks
from shop_loadtest.results import load_run
from tests.runfolder import CHECKOUT, RunFolder, known_run

SCHEMA = json.loads((Path(__file__).parent.parent / "shop_loadtest" / "schemas"
                     / "summary.schema.json").read_text())
HOSTILE = "<script>alert(1)</script>"
OUTPUTS = ("summary.json", "report.html", "junit.xml", "summary.md")


def summarize(path: Path, *, tolerate_worker_loss: bool = False) -> dict:
    return judge_run(load_run(path), tolerate_worker_loss=tolerate_worker_loss)


def validate(summary: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(summary)


# --- verdict rules ----------------------------------------------------------------------------
HOLDS, BREAKS = ["p99 < 2s", "error_rate < 5%"], ["p95 < 500ms", "error_rate < 5%"]
BROKE = "budget broke: p95 < 500ms (observed 1000.4 ms vs limit 500.0 ms)"


def _lag(path, lag_seconds):
    run = RunFolder(path, budgets=HOLDS)
    for t in range(1, 11):
        run.interval(float(t), {"GET /a": [10.0] * 5},
                     loop_lag_ms=300.0 if t <= lag_seconds else 2.0)
    run.finish(t=10.0)


def _arrivals(path, dropped):
    run = RunFolder(path, model="arrival_rate", budgets=HOLDS)
    for t in range(1, 11):
        run.interval(float(t), {"GET /a": [10.0] * 5},
                     arrivals={"due": 100, "started": 100 - dropped, "dropped": dropped,
                               "late": 0, "late_max_ms": 0.0})
    run.finish(t=10.0)


def _lost(path):
    run = known_run(path, budgets=HOLDS, finish=False)
    run.event(4.2, "worker_lost", worker="host_1234", users=10)
    run.finish(t=10.0)


def _no_requests(path):
    run = RunFolder(path, budgets=HOLDS, stages=[
        {"name": "s", "start_s": 0.0, "end_s": 1.0, "from": 10, "to": 10}])
    run.interval(1.0, {})
    run.finish(t=1.0)


def _aborted(path):
    rule = f"error_rate of {CHECKOUT} > 40% for 1s"
    run = known_run(path, seconds=6, budgets=HOLDS, abort=[rule], finish=False)
    run.event(6.4, "abort", rule=rule, t=6.0, observed=0.5)
    run.finish("aborted", t=6.5, abort_reason={"rule": rule, "t": 6.0, "observed": 0.5})


def _killed(path):
    """`kill -9` of the load process 7 s into a 20 s shape: no stop event, exit code -9."""
    run = RunFolder(path, budgets=HOLDS, stages=[
        {"name": "s", "start_s": 0.0, "end_s": 20.0, "from": 10, "to": 10}])
    for t in range(1, 8):
        run.interval(float(t), {"GET /a": [10.0] * 5})
    run.finish("load_process_died", locust_exit_code=-9)


def _short_shape(path):
    """Exit code 0 and a stop event, but only 12 s of a 20 s shape played."""
    run = RunFolder(path, budgets=HOLDS, stages=[
        {"name": "s", "start_s": 0.0, "end_s": 20.0, "from": 10, "to": 10}])
    for t in range(1, 13):
        run.interval(float(t), {"GET /a": [10.0] * 5})
    run.finish(t=12.0)


def _users(path, users, target=10, max_users=None):
    run = RunFolder(path, budgets=HOLDS, stages=[
        {"name": "s", "start_s": 0.0, "end_s": 10.0, "from": target, "to": target}],
        max_users=max_users)
    for t in range(1, 11):
        run.interval(float(t), {"GET /a": [10.0] * 2}, users=users, target=target)
    run.finish(t=10.0)


def _open(path, started, *, full=0, cpu=30.0):
    """100 arrivals/s planned for 10 s; `full` of the missing ones found the pool full."""
    run = RunFolder(path, model="arrival_rate", budgets=HOLDS, max_users=2000)
    for t in range(1, 11):
        dropped = 100 - started
        run.interval(float(t), {"GET /a": [10.0] * 5}, cpu=cpu,
                     arrivals={"due": 100, "started": started, "dropped": dropped,
                               "dropped_full": full, "late": 0, "late_max_ms": 0.0})
    run.finish(t=10.0)


def _workers(path, joined, refused=0):
    run = known_run(path, budgets=HOLDS, finish=False, workers_expected=2)
    run.event(0.0, "start", workers=joined, role="master", expected=2, refused=refused)
    for _ in range(refused):
        run.event(0.0, "worker_refused", client_id="intruder", reason="wrong run token")
    run.finish(t=10.0)


def _all_failed(path):
    run = RunFolder(path)
    for t in range(1, 11):
        run.interval(float(t), {"GET /a": [10.0] * 5},
                     errors={"GET /a": [("HTTP 500", "boom", 5)]})
    run.finish(t=10.0)


CPU_5S = [30, 30, 95, 95, 95, 95, 95, 30, 30, 30]
CPU_4S = [30, 30, 95, 95, 95, 95, 30, 95, 30, 30]
HELD = "all 2 budgets held"
USERS_OK = "delivered 100% of planned users (min 95% per stage)"
IMPLIED = "no budgets in the scenario: judged on the implied budget error_rate < 1%"

VERDICTS = [
    ("budgets hold", lambda p: known_run(p, budgets=HOLDS), False, "pass", [HELD, USERS_OK]),
    ("no budgets: the implied error_rate < 1% breaks", lambda p: known_run(p), False, "fail",
     ["budget broke: error_rate < 1% (observed 4.00% vs limit 1.00%)", IMPLIED]),
    ("no budgets, every request failed", _all_failed, False, "fail",
     ["budget broke: error_rate < 1% (observed 100.00% vs limit 1.00%)", IMPLIED]),
    ("a budget broke", lambda p: known_run(p, budgets=BREAKS), False, "fail", [BROKE]),
    ("CPU saturated 5 s", lambda p: known_run(p, budgets=BREAKS, cpu=CPU_5S), False,
     "inconclusive", ["load generator saturated: CPU above 90% for 5 s in a row on local "
                      "(t=2-7 s)", f"(not trusted) {BROKE}"]),
    ("CPU high 4 s only", lambda p: known_run(p, budgets=HOLDS, cpu=CPU_4S), False, "pass",
     [HELD, USERS_OK]),
    ("loop lag 5 s", lambda p: _lag(p, 5), False, "inconclusive",
     ["load generator saturated: event-loop lag above 200 ms for 5 s in a row on local "
      "(t=0-5 s)"]),
    ("loop lag 4 s", lambda p: _lag(p, 4), False, "pass", [HELD, USERS_OK]),
    ("2% arrivals dropped, users free", lambda p: _arrivals(p, 2), False, "inconclusive",
     ["load generator could not keep up: 20 of 1000 due arrivals dropped with the user pool "
      "below max_users (2.0% > 1%)"]),
    ("1% arrivals dropped", lambda p: _arrivals(p, 1), False, "pass",
     [HELD, "delivered 99% of planned arrivals (min 95% per stage)"]),
    ("worker lost", _lost, False, "inconclusive",
     ["worker host_1234 was lost at t=4.2 s; rerun, or pass --tolerate-worker-loss to "
      "accept it"]),
    ("worker lost, tolerated", _lost, True, "pass",
     [HELD, USERS_OK, "worker host_1234 was lost at t=4.2 s (tolerated)"]),
    ("engine error", lambda p: known_run(p, budgets=HOLDS, finish=False).finish("engine_error"),
     False, "inconclusive",
     ["the load engine failed (exit_reason engine_error); see locust.log"]),
    ("no requests", _no_requests, False, "inconclusive", ["no requests were recorded"]),
    ("aborted by a rule", _aborted, False, "fail",
     [f"aborted by rule 'error_rate of {CHECKOUT} > 40% for 1s' at t=6 s"]),
    ("interrupted, budgets held",
     lambda p: known_run(p, seconds=5, budgets=HOLDS, finish=False).finish("interrupted"),
     False, "inconclusive", ["the run was interrupted after 5 s, before the shape ended; "
                             "budgets were judged on partial data"]),
    ("interrupted, a budget broke",
     lambda p: known_run(p, seconds=7, budgets=BREAKS, finish=False).finish("interrupted"),
     False, "fail", ["budget broke: p95 < 500ms (observed 1000.4 ms vs limit 500.0 ms)",
                     "the run was interrupted after 7 s, before the shape ended; budgets "
                     "were judged on partial data"]),
    ("never finished", lambda p: known_run(p, budgets=HOLDS, finish=False), False,
     "inconclusive", ["run.json has no exit_reason: the run did not finish (crashed?)"]),
    ("a budget without data", lambda p: known_run(p, budgets=["p95 of GET /typo < 1s"]),
     False, "inconclusive",
     ["budget 'p95 of GET /typo < 1s' has no data: no endpoint matches 'GET /typo'"]),
    # --- the evidence behind a pass (issue 11) ---
    ("the load process was killed", _killed, False, "inconclusive",
     ["the load process died (signal 9) after 7 s of 20 s"]),
    ("the shape ended early", _short_shape, False, "inconclusive",
     ["the shape ended early: 12 s of 20 s played"]),
    ("no users ran", lambda p: _users(p, 0), False, "inconclusive",
     ["stage s delivered 0.0% of its planned users (0 of 10; min 95%): the load generator "
      "did not start the planned users"]),
    ("half the users", lambda p: _users(p, 5), False, "inconclusive",
     ["stage s delivered 50.0% of its planned users (5 of 10; min 95%): the load generator "
      "did not start the planned users"]),
    ("a target above max_users", lambda p: _users(p, 2000, target=10**9, max_users=2000),
     False, "inconclusive",
     ["stage s delivered 0.0% of its planned users (2000 of 1000000000; min 95%): the shape asks "
      "for more users than max_users (2000) allows"]),
    ("96% of the users", lambda p: _users(p, 96, target=100), False, "pass",
     [HELD, "delivered 96% of planned users (min 95% per stage)"]),
    ("arrivals dropped: pool full, generator healthy", lambda p: _open(p, 80, full=20), False,
     "fail", ["200 arrivals could not start: all 2000 users were waiting on the shop; stage "
              "steady delivered 80.0% of its planned arrivals (800 of 1000; min 95%)"]),
    ("arrivals dropped: pool full, generator saturated",
     lambda p: _open(p, 80, full=20, cpu=95.0), False, "inconclusive",
     ["load generator saturated: CPU above 90% for 10 s in a row on local (t=0-10 s)",
      "stage steady delivered 80.0% of its planned arrivals (800 of 1000; min 95%): the load "
      "generator did not deliver the planned load"]),
    ("2% of arrivals found the pool full, delivery held", lambda p: _open(p, 98, full=2),
     False, "fail", ["20 arrivals could not start: all 2000 users were waiting on the shop"]),
    ("arrivals never released", lambda p: _open(p, 50), False, "inconclusive",
     ["load generator could not keep up: 500 of 1000 due arrivals dropped with the user pool "
      "below max_users (50.0% > 1%)",
      "stage steady delivered 50.0% of its planned arrivals (500 of 1000; min 95%): the load "
      "generator did not deliver the planned load"]),
    ("fewer workers than expected", lambda p: _workers(p, 1), False, "inconclusive",
     ["1 load processes took part, 2 expected"]),
    ("an intruder refused, the expected workers joined", lambda p: _workers(p, 2, refused=1),
     False, "pass", [HELD, USERS_OK, "1 worker(s) that were not part of this run were refused "
                                     "(wrong run token)"]),
]


@pytest.mark.parametrize(("case", "write", "tolerate", "verdict", "reasons"), VERDICTS,
                         ids=[v[0] for v in VERDICTS])
def test_verdict_rules(tmp_path, case, write, tolerate, verdict, reasons):
    write(tmp_path)
    summary = summarize(tmp_path, tolerate_worker_loss=tolerate)
    assert (summary["verdict"], summary["reasons"]) == (verdict, reasons)
    validate(summary)


def test_aborted_run_records_the_rule(tmp_path):
    _aborted(tmp_path)
    summary = summarize(tmp_path)
    assert summary["aborted"] == {"rule": f"error_rate of {CHECKOUT} > 40% for 1s",
                                  "t": 6.0, "observed": 0.5}
    assert summary["abort_rules"] == [{"expr": f"error_rate of {CHECKOUT} > 40% for 1s",
                                       "triggered": True, "t": 6.0, "observed": 0.5,
                                       "limit": 0.4, "unit": "ratio"}]


# --- the outputs --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The known run with budgets that pass and break, rebuilt once for the output tests."""
    path = tmp_path_factory.mktemp("built")
    run = known_run(path, budgets=["p95 < 500ms", f"p95 of {CHECKOUT} < 800ms for 3s",
                                   "error_rate < 5%", "throughput > 29/s"],
                    abort=["error_rate > 50% for 2s"])
    run.monitor(2.0, [("shop_db_bytes", {"db": "main"}, 1.0e6)])
    run.monitor(8.0, [("shop_db_bytes", {"db": "main"}, 1.4e6)])
    summary = build_reports(path)
    return path, summary


def test_build_reports_writes_every_output(built):
    path, summary = built
    for name in OUTPUTS:
        assert (path / name).stat().st_size > 0
    assert json.loads((path / "summary.json").read_text()) == summary
    assert not list(path.glob(".*.tmp"))


def test_summary_json_matches_the_schema_and_the_run(built):
    _, summary = built
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validate(summary)
    assert summary["verdict"] == "fail"
    assert (summary["requests"], summary["failures"], summary["rps"]) == (300, 12, 30.0)
    assert summary["error_rate"] == 0.04
    checkout = next(e for e in summary["endpoints"] if e["name"] == CHECKOUT)
    assert (checkout["requests"], checkout["failures"]) == (100, 10)
    assert checkout["p50_ms"] == pytest.approx(200.0, rel=1e-3)
    assert checkout["p95_ms"] == pytest.approx(1000.0, rel=1e-3)
    assert checkout["mean_ms"] == 360.0 and checkout["max_ms"] == 1000.0
    assert [b["passed"] for b in summary["budgets"]] == [False, False, True, True]
    windowed = summary["budgets"][1]
    assert windowed["first_breach"] == [3.0, 6.0] and windowed["first_breach_t"] == 6.0
    assert summary["errors"][0] == {"endpoint": CHECKOUT, "kind": "HTTP 503",
                                    "message": "Service Unavailable",
                                    "example": "Service Unavailable", "count": 10,
                                    "first_t": 6.0, "last_t": 7.0, "samples": []}
    assert summary["arrivals"] is None and summary["latency_due"] is None
    assert summary["generator"]["cpu_max_pct"] == 30.0


def test_report_html_is_self_contained(built):
    html = (built[0] / "report.html").read_text()
    for external in ('src="http', "src='http", "<link", "@import", "url(http", "url('http",
                     'url("http'):
        assert external not in html.lower()
    assert html.count(plotly.offline.get_plotlyjs()) == 1
    assert html.count("<script") == 3  # config, plotly.js, the charts
    ids = re.findall(r'<div class="chart" id="([^"]+)"', html)
    assert {"chart-throughput", "chart-latency", "chart-errors", "chart-distribution",
            "chart-generator", "chart-users", "chart-monitor-0"} <= set(ids)
    for chart in ids:
        assert f'Plotly.newPlot("{chart}"' in html


def test_report_html_shows_the_verdict_budgets_and_run(built):
    html = (built[0] / "report.html").read_text()
    assert '<section class="verdict fail"' in html and ">FAIL</div>" in html
    assert "budget broke: p95 &lt; 500ms (observed 1000.4 ms vs limit 500.0 ms)" in html
    assert "first breach in window 3-6 s" in html
    assert "Service Unavailable" in html
    assert "Scenario as run" in html and "name: demo" in html
    assert "Shop metric: shop_db_bytes" in html


def test_log_ticks_are_labelled_in_full_and_cover_the_values():
    ticks, labels = log_ticks([2.1, 8.3, 480.0, 1000.0])
    assert ticks[0] == 2 and ticks[-1] == 1000
    assert labels == ["2", "5", "10", "20", "50", "100", "200", "500", "1 s"]
    assert log_ticks([0.3, 0.0, float("nan")])[1] == ["0.2", "0.5"]
    assert log_ticks([]) == ([], [])


def test_the_latency_chart_labels_its_budget_lines_in_full(built):
    path, summary = built
    run = load_run(path)
    fig = charts.latency(run, summary["budgets"])
    labels = {a.text: a.y for a in fig.layout.annotations}
    # on a log axis, the label sits at log10 of the limit (500 ms -> 2.7), beside its line
    assert labels["p95 &lt; 500ms"] == pytest.approx(math.log10(500.0))
    assert [s.y0 for s in fig.layout.shapes if s.y0 == s.y1] == [500.0]
    assert "500" in fig.layout.yaxis.ticktext and fig.layout.updatemenus[0].x == 0.0


def test_the_failures_chart_names_a_lone_kind(tmp_path):
    run = RunFolder(tmp_path)
    for t in (1.0, 2.0):
        run.interval(t, {"GET /a": [10.0] * 4}, errors={"GET /a": [("HTTP 503", "busy", 1)]})
    run.finish(t=2.0)
    data = load_run(tmp_path)
    fig = charts.errors(data, charts._per_t(data), [])
    assert [t.name for t in fig.data] == ["HTTP 503"] and fig.layout.showlegend


def test_report_escapes_hostile_names(tmp_path):
    run = RunFolder(tmp_path, budgets=[f"p95 of {HOSTILE} < 1s"],
                    scenario_yaml=f"name: x\n# </pre>{HOSTILE}\n")
    for t in range(1, 4):
        run.interval(float(t), {HOSTILE: [10.0, 20.0]},
                     errors={HOSTILE: [("HTTP 500", '<img src=x onerror="alert(2)">', 1)]})
    run.finish(t=3.0)
    summary = build_reports(tmp_path)
    assert summary["budgets"][0]["endpoint"] == HOSTILE and summary["budgets"][0]["passed"]
    html = (tmp_path / "report.html").read_text()
    assert HOSTILE not in html
    assert "<img src=x" not in html and "</pre><script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    markdown = (tmp_path / "summary.md").read_text()
    assert HOSTILE not in markdown and "\\<script\\>alert(1)\\</script\\>" in markdown
    ET.parse(tmp_path / "junit.xml")


def test_junit_has_one_case_per_budget(built):
    path, summary = built
    suites = ET.parse(path / "junit.xml").getroot()
    [suite] = suites.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [b["expr"] for b in summary["budgets"]] + [
        "requests only to allowed hosts", "generator health", "run completed"]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("7", "2", "0")
    failure = cases[0].find("failure")
    assert failure.get("message") == "observed 1000.4 ms vs limit 500.0 ms"
    assert cases[2].find("failure") is None


def test_junit_reports_an_untrusted_run_as_an_error(tmp_path):
    known_run(tmp_path, budgets=HOLDS, cpu=CPU_5S)
    build_reports(tmp_path)
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    health = next(c for c in suite.findall("testcase") if c.get("name") == "generator health")
    assert "CPU above 90%" in health.find("error").get("message")
    assert suite.get("errors") == "1"


def test_summary_markdown_has_verdict_and_tables(built):
    text = (built[0] / "summary.md").read_text()
    first = text.splitlines()[0]
    assert first == ("## ❌ demo: FAIL · http://127.0.0.1:8800 · no speedup, 10 s · "
                     "generator healthy")
    assert "| p95 \\< 500ms | 1000.4 ms | \\< 500.0 ms | ❌ FAIL |" in text
    assert "| Endpoint | Requests | Failed | p95 | p99 | req/s |" in text
    assert f"| {CHECKOUT} | 100 | 10 |" in text
    # what a reviewer needs first: what broke, then why requests failed, then the rest
    order = [text.index(h) for h in ("#### Failing budgets", "#### Errors (12 failed",
                                     "#### Budgets held", "#### Endpoints")]
    assert order == sorted(order)
    assert f"| {CHECKOUT} | HTTP 503 | Service Unavailable | 10 |" in text


def test_terminal_summary_lists_budgets_endpoints_and_verdict(built):
    text = terminal_summary(built[1])
    lines = text.splitlines()
    assert re.search(r"^p95 < 500ms\s+1000\.4 ms\s+< 500\.0 ms\s+FAIL$", text, re.M)
    assert re.search(r"^throughput > 29/s\s+30\.0/s\s+> 29\.0/s\s+PASS$", text, re.M)
    assert any(line.startswith("all endpoints") and "300" in line for line in lines)
    assert "verdict: FAIL" in lines
    assert "  - " + BROKE in lines


def test_open_model_report_shows_arrivals_and_due_latency(tmp_path):
    _arrivals(tmp_path, dropped=0)
    summary = build_reports(tmp_path)
    validate(summary)
    assert summary["arrivals"]["due"] == 1000 and summary["arrivals"]["dropped_pct"] == 0.0
    html = (tmp_path / "report.html").read_text()
    assert 'id="chart-arrivals"' in html


def test_partial_folder_still_gets_a_report(tmp_path):
    run = known_run(tmp_path, seconds=5, budgets=HOLDS, finish=False)
    run.truncate_last_line()
    summary = build_reports(tmp_path)
    validate(summary)
    assert summary["verdict"] == "inconclusive"
    assert summary["warnings"] == ["intervals.jsonl:5: truncated last line ignored"]
    assert "truncated last line ignored" in (tmp_path / "report.html").read_text()


def test_empty_folder_reports_inconclusive(tmp_path):
    RunFolder(tmp_path, budgets=HOLDS).finish("completed")
    summary = build_reports(tmp_path)
    validate(summary)
    assert summary["verdict"] == "inconclusive"
    assert summary["reasons"][0] == "no requests were recorded"
    assert "INCONCLUSIVE" in terminal_summary(summary)


def test_missing_folder_is_a_results_error(tmp_path):
    with pytest.raises(ResultsError, match="run.json: missing"):
        build_reports(tmp_path)


def test_docs_summary_example_matches_the_schema():
    docs = (Path(__file__).resolve().parent.parent / "docs" / "reports.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)```", docs, re.S).group(1))
    validate(example)


def test_summary_md_of_a_10_endpoint_run_fits_a_pull_request(tmp_path):
    from tests.runfolder import synthetic_run

    run = synthetic_run(tmp_path, duration_s=60, endpoints=10, rps_per_endpoint=5)
    # a second error kind on another endpoint, so the errors section has more than one group
    run.interval(61.0, {"GET /api/endpoint-0": [10.0] * 5},
                 errors={"GET /api/endpoint-0": [("HTTP 404", "product 12 not found", 2),
                                                 ("HTTP 404", "product 97 not found", 1)]})
    run.finish(t=61.0)
    summary = build_reports(run.path)
    lines = (run.path / "summary.md").read_text().splitlines()
    assert len(lines) < 40, "\n".join(lines)
    assert lines[0].startswith(f"## {'❌' if summary['verdict'] == 'fail' else '⚠️'} soak: ")
    assert "· http://127.0.0.1:8800 · no speedup, 61 s · generator healthy" in lines[0]
    text = "\n".join(lines)
    assert text.index("#### Failing budgets") < text.index("#### Errors") < text.index(
        "#### Endpoints")
    # the two 404s differ only in the product id: one group
    assert "| GET /api/endpoint-0 | HTTP 404 | product {n} not found | 3 |" in text
