"""Machine health: what else the load machine does, sampled for real and judged by one rule."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from shop_loadtest.judge.machine import BUSY_SHARE, contended, machine_health
from shop_loadtest.report.build import build_reports
from shop_loadtest.results import load_run
from shop_loadtest.runtime.machine import MachineSampler
from tests.runfolder import RunFolder

QUIET = {"cores": 2, "other_cpu_pct": 20.0, "steal_pct": 0.0, "load1": 0.4,
         "runq_wait_pct": 1.0, "family": 1}
BUSY = {**QUIET, "other_cpu_pct": 185.0, "load1": 5.0, "runq_wait_pct": 14.0}
SPIN = "import time\nend = time.monotonic() + 20\nwhile time.monotonic() < end: pass\n"


@pytest.mark.parametrize(("other", "steal", "own", "cores", "family", "flag"), [
    (20, 0, 30, 2, 1, False),  # a quiet machine
    (100, 0, 30, 2, 1, False),  # one core's worth of other work: 70% still idle
    (160, 0, 30, 2, 1, True),  # 10% idle: every wake-up waits
    (100, 60, 30, 2, 1, True),  # the hypervisor took it
    (0, 0, 190, 2, 2, False),  # the load itself fills the machine: generator health's job
    (150, 0, 10, 4, 2, False),  # 4 cores: 240% idle for 2 load processes
    (350, 0, 10, 4, 2, True),
    (70, 0, 20, 1, 1, True),  # one core: nothing left
    (np.nan, np.nan, np.nan, 2, np.nan, False),  # no sample
])
def test_a_second_is_contended_when_other_work_leaves_no_room(other, steal, own, cores, family,
                                                              flag):
    got = contended(np.array([other], float), np.array([steal], float), np.array([own], float),
                    np.array([cores], float), np.array([family], float))
    assert bool(got[0]) is flag


def machine_run(path: Path, busy_seconds: int, seconds: int = 20, *,
                machine: bool = True) -> RunFolder:
    run = RunFolder(path, stages=[{"name": "hold", "start_s": 0.0, "end_s": float(seconds),
                                   "from": 4, "to": 4}])
    for t in range(1, seconds + 1):
        sample = (BUSY if t <= busy_seconds else QUIET) if machine else None
        run.interval(float(t), {"GET /a": [10.0] * 20}, machine=sample)
    run.finish(t=float(seconds))
    return run


@pytest.mark.parametrize(("busy_seconds", "busy"), [(0, False), (4, False), (5, True),
                                                    (20, True)])
def test_a_run_is_busy_when_a_quarter_of_its_seconds_were_contended(tmp_path, busy_seconds,
                                                                     busy):
    assert BUSY_SHARE == 0.25
    health = machine_health(load_run(machine_run(tmp_path, busy_seconds).path).ticks)
    assert health.sampled and health.seconds == 20 and health.contended_s == busy_seconds
    assert health.busy is busy
    assert (health.problem is not None) is busy
    if busy:
        assert health.problem.startswith("busy machine: other processes left the load process "
                                         f"less than its share of the CPU (under 25% of a core "
                                         f"idle) for {busy_seconds} of 20 s on local")


def test_a_run_without_samples_is_not_sampled_not_quiet(tmp_path):
    health = machine_health(load_run(machine_run(tmp_path, 0, machine=False).path).ticks)
    assert not health.sampled and not health.busy and health.describe() == "not sampled"


def test_the_report_shows_machine_health(tmp_path):
    busy = machine_run(tmp_path / "busy", 20).path
    build_reports(busy)
    page = (busy / "report.html").read_text()
    assert '<h2 id="machine">Machine health</h2>' in page
    assert "busy machine: other processes left the load process" in page
    quiet = machine_run(tmp_path / "quiet", 0).path
    build_reports(quiet)
    assert "Quiet enough" in (quiet / "report.html").read_text()
    old = machine_run(tmp_path / "old", 0, machine=False).path
    build_reports(old)
    assert "Not sampled" in (old / "report.html").read_text()


def test_the_sampler_sees_cpu_bound_processes_beside_it():
    """Truthful under any load: the other CPU it reports is at least what the spinning
    children were measured to use (this machine is shared; others may add to it)."""
    sampler = MachineSampler()
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(2)]
    try:
        procs = [psutil.Process(p.pid) for p in spinners]
        time.sleep(0.3)  # let them start
        sampler.take()
        before = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        start = time.monotonic()
        time.sleep(1.5)
        sample = sampler.take()
        used = sum(p.cpu_times().user + p.cpu_times().system for p in procs) - before
        elapsed = time.monotonic() - start
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    assert sample is not None
    assert used / elapsed > 0.2  # the children did run
    assert sample["other_cpu_pct"] >= 0.8 * 100.0 * used / elapsed
    assert sample["cores"] == psutil.cpu_count() and sample["family"] == 1
    assert sample["other_cpu_pct"] <= 100.0 * psutil.cpu_count() + 5


def test_the_sampler_does_not_count_the_load_process_as_other_work():
    sampler = MachineSampler()
    me = psutil.Process()
    time.sleep(0.6)
    sampler.take()

    def own_s() -> float:
        return me.cpu_times().user + me.cpu_times().system

    def busy_s() -> float:
        times = psutil.cpu_times()
        return sum(times) - times.idle - getattr(times, "iowait", 0.0)

    own_before, busy_before, start = own_s(), busy_s(), time.monotonic()
    # Spin until this process has used 0.4 s of CPU: on a loaded box that takes longer.
    while own_s() - own_before < 0.4 and time.monotonic() - start < 10.0:
        pass
    sample = sampler.take()
    elapsed = time.monotonic() - start
    own, busy = own_s() - own_before, busy_s() - busy_before
    assert sample is not None and own >= 0.4
    # Counted as other work, our own 0.4 s would push it past this bound (30 ms of slack for
    # the kernel's 10 ms accounting ticks).
    assert sample["other_cpu_pct"] <= 100.0 * (busy - 0.75 * own + 0.03) / elapsed


def test_a_sample_under_half_a_second_is_skipped():
    sampler = MachineSampler()
    assert sampler.take() is None  # right after the start: too short to say anything
    time.sleep(0.6)
    assert sampler.take() is not None
