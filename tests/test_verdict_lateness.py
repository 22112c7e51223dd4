"""Late arrivals are judged (issue 20): a generator that starts a large share of its arrivals
late for seconds on end cannot be trusted, even when its own CPU figure looks normal; the
report gives how late arrivals started, as percentiles. Built run folders, no Locust."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import jsonschema
import pytest

from shop_loadtest.judge.summary import judge_run as judge
from shop_loadtest.report.terminal import terminal_summary
from shop_loadtest.results import load_run
from tests.runfolder import RunFolder
from tests.test_integrity import locust_processes, start_run
from tests.test_runner import scenario

SCHEMA = json.loads((Path(__file__).parent.parent / "shop_loadtest" / "schemas"
                     / "summary.schema.json").read_text())

HOLDS = ["p99 < 2s", "error_rate < 5%"]
FELL_BEHIND = "load generator fell behind"


def _open_run(path: Path, late_seconds: range, *, late: int = 30, full: int = 0,
              cpu: float = 30.0, seconds: int = 10) -> dict:
    """100 arrivals/s for `seconds`; in `late_seconds`, `late` of them start 150-300 ms late
    (`full` of those while the pool was full), the rest within 2 ms."""
    run = RunFolder(path, model="arrival_rate", budgets=HOLDS, max_users=2000)
    for t in range(1, seconds + 1):
        n_late = late if t in late_seconds else 0
        lateness = [0.5 + 0.015 * k for k in range(100 - n_late)]
        lateness += [150.0 + 150.0 * k / max(n_late, 1) for k in range(n_late)]
        run.interval(float(t), {"GET /a": [10.0] * 5}, cpu=cpu, lateness_ms=lateness,
                     arrivals={"due": 100, "started": 100, "dropped": 0, "late": n_late,
                               "late_full": full if n_late else 0,
                               "late_max_ms": max(lateness)})
    run.finish(t=float(seconds))
    return judge(load_run(path))


def test_arrivals_started_late_for_5_s_in_a_row_make_the_run_inconclusive(tmp_path):
    summary = _open_run(tmp_path, range(3, 9))
    assert summary["verdict"] == "inconclusive"
    (reason,) = [r for r in summary["reasons"] if r.startswith(FELL_BEHIND)]
    assert reason.startswith(
        "load generator fell behind: 30% of arrivals started more than 100 ms late with the "
        "user pool below max_users, for 6 s in a row on local (t=2-8 s; p99 lateness ")
    assert summary["generator"]["healthy"] is False
    assert summary["generator"]["cpu_max_pct"] == 30.0  # the CPU rule alone would pass it
    jsonschema.Draft202012Validator(SCHEMA).validate(summary)


@pytest.mark.parametrize(("case", "late_seconds", "late", "full"), [
    ("a healthy run's start-up: the first two seconds late", range(1, 3), 40, 0),
    ("late for 4 s only", range(3, 7), 30, 0),
    ("a few late each second, under 10%", range(1, 11), 8, 0),
    ("late because every user was waiting on the shop", range(1, 11), 30, 30),
])
def test_lateness_that_is_not_the_generators_trouble_does_not_count(tmp_path, case,
                                                                     late_seconds, late, full):
    summary = _open_run(tmp_path, late_seconds, late=late, full=full)
    assert not any(r.startswith(FELL_BEHIND) for r in summary["reasons"]), summary["reasons"]
    assert summary["verdict"] == "pass", summary["reasons"]


def test_the_summary_and_the_terminal_give_lateness_percentiles(tmp_path):
    summary = _open_run(tmp_path, range(1, 11), late=2)
    arrivals = summary["arrivals"]
    # 98 of 100 a second start within 2 ms, 2 start 150-225 ms late
    assert arrivals["late_p50_ms"] == pytest.approx(1.23, abs=0.01)
    assert arrivals["late_p95_ms"] < 2.0
    assert 150.0 <= arrivals["late_p99_ms"] <= 226.0
    assert arrivals["late"] == 20 and arrivals["late_full"] == 0
    text = terminal_summary(summary)
    assert "arrivals: 1,000 due, 1,000 started, 0 dropped, 20 late (> 100 ms); started late " \
           "by p50 1.2 ms" in text


def test_a_run_recorded_before_lateness_histograms_has_no_percentiles(tmp_path):
    run = RunFolder(tmp_path, model="arrival_rate", budgets=HOLDS)
    for t in range(1, 11):
        run.interval(float(t), {"GET /a": [10.0] * 5},
                     arrivals={"due": 100, "started": 100, "dropped": 0, "late": 0,
                               "late_max_ms": 3.0})
    run.finish(t=10.0)
    summary = judge(load_run(tmp_path))
    assert summary["verdict"] == "pass"
    assert summary["arrivals"]["late_p99_ms"] is None
    assert "started late by" not in terminal_summary(summary)


# --- for real: a load process throttled as a CPU limit throttles it ------------------------
STOP_S, RUN_S = 0.18, 0.22


@pytest.mark.e2e
def test_a_throttled_generator_starts_arrivals_late_and_the_run_is_inconclusive(
        tmp_path, counting_server):
    """The load process is stopped 180 ms of every 400 ms (SIGSTOP/SIGCONT), as a container's
    CPU quota stops a process that used its share: its own CPU figure stays low and its loop
    lag under 200 ms, but a fifth of the arrivals start more than 100 ms late."""
    path = scenario(tmp_path, counting_server.url, model="arrival_rate",
                    stages=[(0, 100), (7, 100)])
    out = tmp_path / "run"
    proc = start_run(str(path), "--out", str(out))
    throttled: set[int] = set()
    try:
        while proc.poll() is None:
            found = locust_processes(proc.pid)
            throttled |= {p.pid for p in found}
            for p in found:
                _signal(p.pid, signal.SIGSTOP)
            time.sleep(STOP_S)
            for pid in throttled:
                _signal(pid, signal.SIGCONT)
            time.sleep(RUN_S)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        for pid in throttled:
            _signal(pid, signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
    assert throttled, "no Locust process was found to throttle"
    assert proc.returncode == 3, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "inconclusive"
    behind = [r for r in summary["reasons"] if r.startswith(FELL_BEHIND)]
    assert behind, summary["reasons"]
    assert "more than 100 ms late with the user pool below max_users" in behind[0]
    assert summary["arrivals"]["late_p99_ms"] > 100.0
    assert FELL_BEHIND in stdout


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
