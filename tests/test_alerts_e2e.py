"""The outage of the seed document caught by production monitoring, end to end: a real
Prometheus scrapes the demo shop and the load test's own metrics port, loads the rules
`shop-loadtest alerts` generated from an earlier run, and the postmortem scenario is replayed
(its promotion cut to 4 minutes: the storage fills in the first). The storage alert must be
firing before the first 507."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli
from tests.prometheus import MISSING, PROMETHEUS, PROMTOOL, Prometheus, free_port

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(PROMETHEUS is None or PROMTOOL is None, reason=MISSING)]

POSTMORTEM = ROOT / "scenarios" / "postmortem-2024-08-15.yaml"
ALERT = "ShopStorageFullSoon"
REPLAY_SPEEDUP = 20  # baseline 15 s, newsletter ramp 3 s, promotion 12 s
# The storage fills about 5 s (wall) into the promotion; the 6 minutes after that would add
# only more 507s, and 25 s to the suite.
PROMOTION = ("{name: promotion, duration: 10m, target: 60}",
             "{name: promotion, duration: 4m, target: 60}")
# Scaled to the replay: the 0.2 MB cap fills within seconds of the newsletter's ramp. A 30 s
# horizon stays silent through the baseline, even if a 4 KiB page is added then.
RULE_FLAGS = ("--horizon", "30s", "--lookback", "6s", "--for", "0s", "--interval", "1s",
              "--rate-window", "10s")


def _first_507(run_dir: Path) -> float:
    """Epoch of the start of the second in which the first 507 answer was recorded."""
    for line in (run_dir / "intervals.jsonl").read_text().splitlines():
        record = json.loads(line)
        if any(e["kind"] == "HTTP 507" for e in record.get("errors") or []):
            return float(record["ts"]) - float(record["dt"])
    raise AssertionError("the replay never hit a 507: the storage cap did not fill")


@pytest.mark.timeout(400)
def test_storage_alert_fires_in_prometheus_before_the_first_507(tmp_path: Path) -> None:
    from shop_loadtest.run.runner import demo_shop

    text = POSTMORTEM.read_text()
    assert PROMOTION[0] in text
    postmortem = tmp_path / POSTMORTEM.name
    postmortem.write_text(text.replace(*PROMOTION))
    earlier = tmp_path / "earlier"
    first = cli("run", str(postmortem), "--speedup", "60", "--out", str(earlier), timeout=180)
    assert first.returncode == 1, first.stderr[-2000:]
    rules_dir = tmp_path / "rules"
    made = cli("alerts", str(earlier), "-o", str(rules_dir / "alerts.yml"), *RULE_FLAGS)
    assert made.returncode == 0, made.stderr
    for args in (("check", "rules", "alerts.yml"), ("test", "rules", "alerts.test.yml")):
        checked = subprocess.run([str(PROMTOOL), *args], cwd=rules_dir, capture_output=True,
                                 text=True, timeout=120)
        assert checked.returncode == 0, checked.stdout + checked.stderr

    metrics_port = free_port()
    with demo_shop(tmp_path / "shop.sqlite", tmp_path / "shop.log",
                   storage_limit_mb=0.2) as shop, \
         Prometheus(tmp_path / "prometheus",
                    {"shop": shop.removeprefix("http://"),
                     "shop-loadtest": f"127.0.0.1:{metrics_port}"},
                    [rules_dir / "alerts.yml"]) as prometheus:
        prometheus.wait_for('up{job="shop"} == 1')
        began = time.time()
        replay = tmp_path / "replay"
        proc = subprocess.run(
            [sys.executable, "-m", "shop_loadtest", "run", str(postmortem), "--host", shop,
             "--allow-host", shop, "--speedup", str(REPLAY_SPEEDUP), "--out", str(replay),
             "--metrics-port", str(metrics_port)],
            cwd=ROOT, capture_output=True, text=True, timeout=240)
        assert proc.returncode == 1, proc.stderr[-3000:]
        assert f"127.0.0.1:{metrics_port}/metrics" in proc.stderr
        time.sleep(2)  # the last scrape and evaluation
        ended = time.time()
        firing = prometheus.query_range(f'ALERTS{{alertname="{ALERT}",alertstate="firing"}}',
                                        began, ended)
        # The load test's own metrics were scraped beside the shop's: its 507s are there too.
        seen = prometheus.query(
            'max_over_time(shop_loadtest_request_errors_total{kind="HTTP 507"}[5m])')
        shop_507 = prometheus.query(
            'max_over_time(shop_http_requests_total{status="507"}[5m])')
        planned = prometheus.query("max_over_time(shop_loadtest_arrival_rate_planned[5m])")
        traffic = prometheus.query_range(
            'ALERTS{alertname="ShopTrafficAboveTestedCapacity",alertstate="firing"}',
            began, ended)
        # Every panel of the Grafana dashboard is a query this Prometheus answers; the load
        # test's own panels have data.
        dashboard = json.loads((ROOT / "deploy/grafana/shop-loadtest.json").read_text())
        empty = []
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$__rate_interval", "10s")
                if not prometheus.query_range(expr, began, ended):
                    empty.append(panel["title"])
        timeline = {q: prometheus.query_range(q, began, ended) for q in (
            "shop_db_size_bytes", "predict_linear(shop_db_size_bytes[6s], 31)",
            f'ALERTS{{alertname="{ALERT}"}}')}
    start = next(json.loads(x)["ts"] for x in (replay / "events.jsonl").read_text().splitlines()
                 if json.loads(x)["kind"] == "start")
    print(f"\nload started at +{start - began:.1f} s")
    for q, result in timeline.items():
        for series in result:
            print(q, series["metric"].get("alertstate", ""),
                  " ".join(f"{float(t) - start:.0f}:{float(v):.0f}" for t, v in series["values"]))
    assert firing, f"{ALERT} never fired; Prometheus log: {prometheus.log.read_text()[-1500:]}"
    fired_at = min(float(v[0]) for series in firing for v in series["values"])
    first_507 = _first_507(replay)
    lead = first_507 - fired_at
    print(f"\nShopTrafficAboveTestedCapacity fired: {bool(traffic)}")
    print(f"{ALERT} firing {lead:.1f} s before the first 507 "
          f"(fired at +{fired_at - began:.1f} s, first 507 at +{first_507 - began:.1f} s)")
    assert lead > 0, f"the alert fired {-lead:.1f} s after the first 507"
    # ...and not from the start: through the baseline, before the newsletter (t=15 s), the
    # storage lasts longer than the horizon.
    assert fired_at > start + 10, f"{ALERT} fired in the baseline, t={fired_at - start:.1f} s"
    assert seen and float(seen[0]["value"][1]) > 0
    assert shop_507 and float(shop_507[0]["value"][1]) > 0
    assert planned and float(planned[0]["value"][1]) == 60.0
    # closed-model users only exist in closed-model runs
    assert set(empty) <= {"Users"}, empty

