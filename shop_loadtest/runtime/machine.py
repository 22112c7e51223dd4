"""What else the load machine is doing, sampled once a second beside the load process.

A slower run on a busy machine looks exactly like a slower release. The load process's own
CPU (runtime.state.Health) cannot tell the two apart; the rest of the machine can:

- `other_cpu_pct`: CPU used by every process except the load processes (this one, and with
  `--processes N` its forked siblings and their master), in % of one core;
- `steal_pct`: CPU the hypervisor gave to other guests, in % of one core;
- `load1`: the one-minute load average; `cores`: logical CPUs;
- `runq_wait_pct`: the share of the interval this process was ready to run but waited for a
  CPU (Linux /proc/self/schedstat; None elsewhere): the direct cost of the contention.

    sampler = MachineSampler()
    sampler.take()  # {"cores": 2, "other_cpu_pct": 12.5, ...} since the previous take()

judge/machine.py turns these samples into the run's machine health.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil

SCHEDSTAT = Path("/proc/self/schedstat")
FAMILY_REFRESH_S = 10.0
MIN_SAMPLE_S = 0.5  # a shorter interval (the last flush at stop) says too little: no sample


def _busy_seconds(times: Any) -> tuple[float, float]:
    """(busy, steal) CPU-seconds summed over all CPUs; guest time is already in user."""
    steal = getattr(times, "steal", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = sum(times)
    # guest and guest_nice are counted inside user and nice on Linux: do not add them twice.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return total - idle - steal, steal


def _runq_wait_s() -> float | None:
    try:
        return int(SCHEDSTAT.read_text().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class MachineSampler:
    """Machine-wide CPU use minus the load processes' own, between two `take()` calls."""

    def __init__(self) -> None:
        self._me = psutil.Process()
        self._cores = psutil.cpu_count() or 1
        self._family: list[psutil.Process] = [self._me]
        self._family_at = -FAMILY_REFRESH_S
        self._own: dict[int, float] = {}
        self._at = time.monotonic()
        self._busy, self._steal = _busy_seconds(psutil.cpu_times())
        self._runq = _runq_wait_s()
        self._own_seconds()

    def _refresh_family(self) -> None:
        """This process, or, when it was forked by a Locust master with the same command line
        (`--processes N`), that master and all its children."""
        now = time.monotonic()
        if now - self._family_at < FAMILY_REFRESH_S:
            return
        self._family_at = now
        family = [self._me]
        try:
            parent = self._me.parent()
            if parent is not None and parent.cmdline() == self._me.cmdline():
                family = [parent, *parent.children()]
        except (psutil.Error, OSError):
            pass
        self._family = family

    def _own_seconds(self) -> float:
        """CPU-seconds the load processes used since the previous call."""
        self._refresh_family()
        used, seen = 0.0, {}
        for proc in self._family:
            try:
                times = proc.cpu_times()
            except (psutil.Error, OSError):
                continue
            now = times.user + times.system
            # A process seen for the first time counts from now on, not from its start.
            used += now - self._own.get(proc.pid, now)
            seen[proc.pid] = now
        self._own = seen
        return max(used, 0.0)

    def take(self) -> dict[str, float | int | None] | None:
        """Averages since the previous sample; None when that was under MIN_SAMPLE_S ago."""
        now = time.monotonic()
        elapsed = now - self._at
        if elapsed < MIN_SAMPLE_S:
            return None
        busy, steal = _busy_seconds(psutil.cpu_times())
        own = self._own_seconds()
        runq = _runq_wait_s()
        other = max(busy - self._busy - own, 0.0)
        sample: dict[str, float | int | None] = {
            "cores": self._cores,
            "other_cpu_pct": round(100.0 * other / elapsed, 1),
            "steal_pct": round(100.0 * max(steal - self._steal, 0.0) / elapsed, 1),
            "load1": round(psutil.getloadavg()[0], 2),
            "runq_wait_pct": (round(100.0 * max(runq - self._runq, 0.0) / elapsed, 1)
                              if runq is not None and self._runq is not None else None),
            "family": len(self._family),
        }
        self._at, self._busy, self._steal, self._runq = now, busy, steal, runq
        return sample
