"""`shop-loadtest alerts`: rules from a run's measurements, checked by the real promtool."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from shop_loadtest.capacity.alerts import Settings, build_rules, gather, write_alerts
from shop_loadtest.capacity.alerts.model import prom_duration
from shop_loadtest.capacity.alerts.rules import camel, le_matcher, number, with_matchers
from shop_loadtest.capacity.alerts.unittests import satisfying
from shop_loadtest.errors import InputError
from shop_loadtest.scenario.options import MonitorConfig
from tests.conftest import cli
from tests.prometheus import MISSING, PROMTOOL
from tests.runfolder import RunFolder

needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason=MISSING)
LIMIT, START, PER_ORDER = 2_000_000.0, 86_016.0, 600.0
BUDGETS = ["p95 < 500ms", "error_rate < 1%", "used(storage) < 80% for 5s",
           "p99 of POST /api/checkout < 1s"]


def monitored_run(path: Path, *, orders_per_s: int = 10, seconds: int = 20,
                  budgets: list[str] | None = None, monitor: bool = True,
                  forecast: dict[str, object] | None = None) -> Path:
    """A run whose shop stores exactly 600 bytes per order, 10 orders a second, and answers
    20 requests a second."""
    run = RunFolder(path, scenario="campaign", model="arrival_rate",
                    budgets=BUDGETS if budgets is None else budgets)
    run.meta["monitor"] = MonitorConfig().model_dump(mode="json") if monitor else None
    run.meta["forecast"] = forecast if forecast is not None else {
        "duration": 14400.0, "orders_per_hour": 1000.0, "peak_rate": None}
    run._write_meta()
    for t in range(0, seconds + 1):
        orders = orders_per_s * t
        run.monitor(float(t), [("shop_db_size_bytes", {}, START + PER_ORDER * orders),
                               ("shop_db_storage_limit_bytes", {}, LIMIT),
                               ("shop_orders_total", {}, float(orders))])
        if t:
            run.interval(float(t), {"GET /api/products": [10.0] * 10,
                                    "POST /api/checkout": [20.0] * 10},
                         arrivals={"due": 10, "started": 10, "dropped": 0, "late": 0})
    return run.finish(t=float(seconds))


def capacity_folder(path: Path, *, sustainable: float = 280.0, rps: float = 490.8) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    steps = [{"rate": 160.0, "verdict": "pass", "rps": 302.5},
             {"rate": sustainable, "verdict": "pass", "rps": rps},
             {"rate": 320.0, "verdict": "fail", "rps": 570.8}]
    (path / "capacity.json").write_text(json.dumps({
        "sustainable_rate": sustainable, "breaking_rate": 320.0, "knee_rate": 240.0,
        "headroom_text": "7x forecast", "summary": "sustains 280 journeys/s, breaks at 320/s",
        "steps": steps}))
    return path


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_evidence_is_what_the_run_measured(tmp_path: Path) -> None:
    evidence = gather(monitored_run(tmp_path / "run"))
    (storage,) = evidence.resources  # rows has no limit: no runway
    assert storage.limit == LIMIT and storage.used_start == START
    assert storage.per_unit == pytest.approx(PER_ORDER)
    # (2,000,000 - 86,016) B / (600 B x 1,000 orders/h)
    assert storage.runway_s == pytest.approx((LIMIT - START) / 600 / 1000 * 3600, rel=1e-3)
    assert evidence.capacity is not None and evidence.capacity.source == "run"
    assert evidence.capacity.rps == pytest.approx(20.0)
    assert evidence.orders_per_hour_measured == pytest.approx(36_000)


def test_rules_carry_the_measured_figures(tmp_path: Path) -> None:
    run = monitored_run(tmp_path / "run")
    built = build_rules(gather(run, capacity_folder(tmp_path / "cap")), Settings())
    alerts = {(r.alert, r.labels["severity"]): r for r in built.rules.alerts}
    runway = alerts[("ShopStorageFullSoon", "page")]
    # 4 h horizon + 5 m `for` + 1 m evaluation: steady growth pages with 4 h left
    assert runway.expr == ("predict_linear(shop_db_size_bytes[1h], 14760) >= on(job, instance) "
                           "group_left() (shop_db_storage_limit_bytes > 0)")
    assert runway.for_s == 300
    assert runway.annotations["growth_per_order"].startswith("600 bytes per order")
    assert runway.annotations["measured_limit"].startswith("2,000,000 bytes")
    assert runway.annotations["run_id"] == "run"
    assert runway.annotations["measured_at"] == "2025-11-26"
    assert runway.annotations["runbook"] == "RUNBOOK.md#shopstoragefullsoon"
    assert alerts[("ShopStorageAlmostFull", "ticket")].expr.endswith(">= 0.8")
    traffic = alerts[("ShopTrafficAboveTestedCapacity", "page")]
    assert traffic.expr == ('sum by (job) (rate(shop_http_requests_total{route!="/metrics"}[5m]))'
                            " > 392.64")  # 80% of 490.8 requests/s at 280 journeys/s
    assert "280 journeys/s" in traffic.annotations["tested_capacity"]
    errors = alerts[("ShopErrorBudgetBurn", "page")]
    assert "ratio_rate1h" in errors.expr and "> (14.4 * 0.01)" in errors.expr
    assert "ratio_rate6h" in errors.expr and "> (6 * 0.01)" in errors.expr
    ticket = alerts[("ShopErrorBudgetBurn", "ticket")]
    assert "ratio_rate3d" in ticket.expr and "> (1 * 0.01)" in ticket.expr
    latency = alerts[("ShopLatencyBudgetBurn", "page")]
    assert "> (14.4 * 0.05)" in latency.expr  # p95: 5% of requests may be slower
    records = {r.expr for g in built.rules.groups for r in g.rules if hasattr(r, "record")}
    assert any('le="0.5"' in e for e in records)
    assert any("p99 of post /api/checkout" in n.lower() for n in built.notes)


@needs_promtool
def test_generated_rules_pass_promtool_check_and_their_own_unit_tests(tmp_path: Path) -> None:
    run = monitored_run(tmp_path / "run")
    out = tmp_path / "rules" / "alerts.yml"
    done = cli("alerts", str(run), "-o", str(out), "--capacity", str(capacity_folder(
        tmp_path / "cap")))
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and (out.parent / "RUNBOOK.md").exists()
    checked = promtool("check", "rules", "alerts.yml", cwd=out.parent)
    assert checked.returncode == 0 and "SUCCESS: 21 rules found" in checked.stdout, checked
    tested = promtool("test", "rules", "alerts.test.yml", cwd=out.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = [t["name"] for t in yaml.safe_load((out.parent / "alerts.test.yml").read_text())
             ["tests"]]
    assert any("pages at least 4h before full" in c for c in cases)
    assert any("requests at 90% of the tested capacity" in c and "fire" in c for c in cases)


@needs_promtool
@pytest.mark.parametrize(("find", "replace", "why"), [
    ("14760)", "14400)", "predicting only the horizon pages too late"),
    ("> 392.64", "> 450", "a threshold above 90% of capacity does not fire"),
    (">= 0.8", ">= 0.9", "85% used no longer fires"),
    ("(14.4 * 0.01)", "(99 * 0.01)", "the fast burn no longer pages"),
])
def test_the_written_unit_tests_fail_on_a_wrong_rule(tmp_path: Path, find: str, replace: str,
                                                     why: str) -> None:
    run = monitored_run(tmp_path / "run")
    out = tmp_path / "rules" / "alerts.yml"
    write_alerts(run, out, capacity_dir=capacity_folder(tmp_path / "cap"))
    assert promtool("test", "rules", "alerts.test.yml", cwd=out.parent).returncode == 0
    text = out.read_text()
    assert find in text
    out.write_text(text.replace(find, replace))
    broken = promtool("test", "rules", "alerts.test.yml", cwd=out.parent)
    assert broken.returncode != 0, why


@needs_promtool
def test_short_horizon_for_rehearsals_still_passes_promtool(tmp_path: Path) -> None:
    run = monitored_run(tmp_path / "run")
    out = tmp_path / "alerts.yml"
    done = cli("alerts", str(run), "-o", str(out), "--horizon", "30s", "--lookback", "6s",
               "--for", "0s", "--interval", "1s", "--rate-window", "10s")
    assert done.returncode == 0, done.stderr
    rule = next(r for g in yaml.safe_load(out.read_text())["groups"] for r in g["rules"]
                if r.get("alert") == "ShopStorageFullSoon")
    assert "for" not in rule and "[6s], 31)" in rule["expr"]
    assert promtool("check", "rules", out.name, cwd=tmp_path).returncode == 0
    tested = promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout


@needs_promtool
def test_prometheusrule_wraps_the_same_groups(tmp_path: Path) -> None:
    run = monitored_run(tmp_path / "run")
    out = tmp_path / "alerts.yaml"
    written = write_alerts(run, out, fmt="prometheusrule")
    resource = yaml.safe_load(out.read_text())
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["metadata"]["name"] == "shop-loadtest-campaign"
    assert resource["spec"] == yaml.safe_load(written.rule_file.read_text())
    assert written.rule_file.name == "alerts.rules.yml"
    assert promtool("test", "rules", "alerts.test.yml", cwd=tmp_path).returncode == 0


def test_runbook_has_the_figures_and_a_section_for_every_runbook_link(tmp_path: Path) -> None:
    run = monitored_run(tmp_path / "run")
    written = write_alerts(run, tmp_path / "out" / "alerts.yml",
                           capacity_dir=capacity_folder(tmp_path / "cap"))
    text = written.runbook.read_text()
    headings = {h.lower() for h in re.findall(r"^### (\S+)$", text, flags=re.M)}
    for rule in written.rules.alerts:
        assert rule.annotations["runbook"].split("#")[1] in headings
    assert "600 bytes per order" in text and "2,000,000 bytes" in text
    assert "280 journeys/s (490.8 requests/s)" in text
    assert "knee of the latency curve: 240 journeys/s" in text
    assert "7x forecast" in text
    assert "**First things to check.**" in text
    assert "p99 of POST /api/checkout" in text  # not turned into an alert, and says why


def test_runbook_says_what_failed_first(tmp_path: Path) -> None:
    path = monitored_run(tmp_path / "run", orders_per_s=10, seconds=20)
    run = RunFolder.__new__(RunFolder)
    run.path = path
    for t in (21, 22):  # the storage is full and checkout fails
        run.monitor(float(t), [("shop_db_size_bytes", {}, LIMIT),
                               ("shop_db_storage_limit_bytes", {}, LIMIT),
                               ("shop_orders_total", {}, 200.0)])
        run.interval(float(t), {"POST /api/checkout": [20.0] * 10},
                     errors={"POST /api/checkout": [("HTTP 507", "database or disk is full",
                                                     10)]})
    text = write_alerts(path, tmp_path / "out" / "alerts.yml").runbook.read_text()
    assert "first resource full: **storage**, at t=21.0 s" in text
    assert ("first failed request: `POST /api/checkout` HTTP 507 (database or disk is full)"
            in text)


def test_a_run_without_monitor_data_is_bad_input(tmp_path: Path) -> None:
    run = monitored_run(tmp_path / "run", monitor=False, budgets=["p95 < 500ms"])
    done = cli("alerts", str(run), "-o", str(tmp_path / "alerts.yml"))
    assert done.returncode == 2
    assert "measured nothing to alert on" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--horizon", "banana"), "--horizon:"),
    (("--lookback", "1m"), "--lookback 1m must span at least two evaluation intervals"),
    (("--share", "150%"), "--share must be in"),
    (("--format", "helm"), "--format helm"),
])
def test_bad_flags_are_named(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    run = monitored_run(tmp_path / "run")
    interval = ("--interval", "1m") if args[0] == "--lookback" else ()
    done = cli("alerts", str(run), "-o", str(tmp_path / "a.yml"), *args, *interval)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_missing_folders_are_bad_input(tmp_path: Path) -> None:
    done = cli("alerts", str(tmp_path / "nope"), "-o", str(tmp_path / "a.yml"))
    assert done.returncode == 2 and "no such results folder" in done.stderr
    run = monitored_run(tmp_path / "run")
    done = cli("alerts", str(run), "--capacity", str(run), "-o", str(tmp_path / "a.yml"))
    assert done.returncode == 2 and "no find-capacity capacity.json" in done.stderr


def test_the_highest_rate_held_stops_at_the_first_broken_budget(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run", model="arrival_rate", budgets=["p95 < 100ms"])
    run.meta["monitor"] = MonitorConfig().model_dump(mode="json")
    run._write_meta()
    for t in range(1, 31):  # 10 req/s, then 50 req/s but slow from t=21
        rate, ms = (10, 10.0) if t <= 20 else (50, 500.0)
        run.interval(float(t), {"GET /": [ms] * rate})
        run.monitor(float(t), [("shop_db_size_bytes", {}, 1000.0),
                               ("shop_db_storage_limit_bytes", {}, LIMIT),
                               ("shop_orders_total", {}, float(t))])
    evidence = gather(run.finish(t=30.0))
    assert evidence.capacity is not None
    assert evidence.capacity.rps == pytest.approx(10.0)  # not the 50/s that broke p95


def test_budgets_that_allow_many_bad_requests_keep_only_possible_burn_rates(tmp_path: Path
                                                                            ) -> None:
    run = monitored_run(tmp_path / "run", budgets=["p50 < 100ms", "error_rate < 50%"])
    built = build_rules(gather(run), Settings())
    latency = [r for r in built.rules.alerts if r.alert == "ShopLatencyBudgetBurn"]
    # 50% may be slow: 14.4x, 6x and 3x would need more than 100% slow requests
    assert [r.labels["severity"] for r in latency] == ["ticket"]
    assert "(1 * 0.5)" in latency[0].expr and "14.4" not in latency[0].expr


@pytest.mark.parametrize(("seconds", "text"), [
    (14400, "4h"), (90, "1m30s"), (0.5, "500ms"), (0, "0s"), (86400 * 3, "3d"),
    (3601, "1h1s")])
def test_prom_duration(seconds: float, text: str) -> None:
    assert prom_duration(seconds) == text


def test_promql_pieces() -> None:
    assert with_matchers("x") == "x"
    assert with_matchers("x", 'a="1"', "") == 'x{a="1"}'
    assert with_matchers('x{b="2"}', 'a=~"1.."') == 'x{b="2",a=~"1.."}'
    assert le_matcher(0.5) == 'le="0.5"'
    assert le_matcher(1.0) == 'le=~"1(\\\\.0)?"'  # Python clients write 1.0, Go ones 1
    assert number(196608.0) == "196608" and number(0.144) == "0.144"
    assert camel("disk_space") == "DiskSpace" and camel("storage") == "Storage"


@pytest.mark.parametrize(("matchers", "negated", "expected"), [
    ('route!="/metrics"', "", {"route": "/api/checkout"}),
    ('status=~"5.."', "", {"status": "500"}),
    ('route!="/metrics"', 'status=~"5.."', {"route": "/api/checkout", "status": "200"}),
    ('handler="/api"', "", {"handler": "/api"}),
    ('code=~"(4|5).."', "", {"code": "500"}),
])
def test_label_values_for_synthetic_series(matchers: str, negated: str,
                                           expected: dict[str, str]) -> None:
    found = satisfying(matchers, not_matching=negated)
    assert found is not None
    for key, value in expected.items():
        assert key in found
        if key in ("route",):
            assert found[key] != "/metrics"
        else:
            assert found[key] == value


def test_settings_round_to_whole_evaluations() -> None:
    s = Settings(horizon_s=100, for_s=61, interval_s=60, lookback_s=600).checked()
    assert (s.horizon_s, s.for_s) == (120, 120)
    with pytest.raises(InputError, match="--interval"):
        Settings(interval_s=0).checked()


@needs_promtool
def test_an_endpoint_mapped_in_monitor_traffic_gets_its_own_slo(tmp_path: Path) -> None:
    path = monitored_run(tmp_path / "run")
    meta = json.loads((path / "run.json").read_text())
    meta["monitor"]["traffic"]["endpoints"] = {
        "POST /api/checkout": 'method="POST",route="/api/checkout"'}
    (path / "run.json").write_text(json.dumps(meta))
    written = write_alerts(path, tmp_path / "out" / "alerts.yml")
    checkout = [r for r in written.rules.alerts
                if r.labels.get("slo") == "p99 of POST /api/checkout < 1s"]
    assert {r.labels["severity"] for r in checkout} == {"page", "ticket"}
    records = [r.expr for g in written.rules.groups for r in g.rules
               if getattr(r, "labels", {}).get("slo") == "p99 of POST /api/checkout < 1s"
               and hasattr(r, "record")]
    assert records and all('method="POST",route="/api/checkout"' in e
                           and 'le=~"1(\\\\.0)?"' in e for e in records)
    assert not any("p99 of post" in n.lower() for n in written.notes)
    tested = promtool("test", "rules", "alerts.test.yml", cwd=tmp_path / "out")
    assert tested.returncode == 0, tested.stdout


def test_bad_endpoint_matchers_are_a_scenario_error() -> None:
    with pytest.raises(ValueError, match="PromQL label matchers"):
        MonitorConfig.model_validate({"traffic": {"endpoints": {"POST /x": "route=/x"}}})
