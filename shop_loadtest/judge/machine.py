"""Machine health: did other work on the load machine leave the load process its share?

The runtime samples the machine every second beside each load process (runtime/machine.py:
CPU of the other processes, steal, load average). A second is **contended** when the other
processes and the hypervisor took so much that, beyond what the load process itself used, less
than `HEADROOM_PCT` of a core was left idle per load process:

    cores x 100% - other_cpu_pct - steal_pct - cpu_pct < HEADROOM_PCT x min(family, cores)
    and other_cpu_pct + steal_pct >= HEADROOM_PCT   (other work, not the load, filled it)

Then every wake-up of the load process (and of a target on the same machine) waits in the
run queue, and latencies measure the machine as much as the target. Measured on a 2-core
machine (docs/ci.md): with three CPU-bound processes beside a run, p95 went from 13 ms to
44 ms while the load process itself used 6% of a core; with one core's worth of other work
and the rest idle, latencies did not move.

A run is **busy** (flagged) when at least `BUSY_SHARE` of its sampled seconds were contended on
some source: it must not be compared with, or judged as, a run on a quiet machine.

    health = machine_health(run.ticks)
    health.busy, health.problem   # True, "busy machine: ... for 4 of 4 s ..."
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BUSY_SHARE = 0.25  # of the sampled seconds contended: the run is flagged
HEADROOM_PCT = 25.0  # of a core, idle per load process, below which a second is contended


@dataclass(frozen=True)
class MachineHealth:
    """What else the load machine did during a run, and whether that makes the run suspect."""

    sampled: bool  # False: the run folder has no machine samples (older runs)
    seconds: int = 0  # sampled seconds (per source, the worst source)
    contended_s: int = 0
    cores: int | None = None
    other_cpu_mean_pct: float | None = None  # % of one core
    other_cpu_max_pct: float | None = None
    steal_mean_pct: float | None = None
    load1_max: float | None = None
    runq_wait_mean_pct: float | None = None
    source: str | None = None  # the source the figures are from (the worst)

    @property
    def busy(self) -> bool:
        return self.sampled and self.seconds > 0 and (
            self.contended_s >= BUSY_SHARE * self.seconds)

    @property
    def problem(self) -> str | None:
        if not self.busy:
            return None
        return (f"busy machine: other processes left the load process less than its share of "
                f"the CPU (under {HEADROOM_PCT:g}% of a core idle) for {self.contended_s} of "
                f"{self.seconds} s on {self.source} ({self.describe()})")

    def describe(self) -> str:
        if not self.sampled:
            return "not sampled"
        parts = [f"other processes {_pct(self.other_cpu_mean_pct)} on average "
                 f"(max {_pct(self.other_cpu_max_pct)}) of {(self.cores or 0) * 100}%",
                 f"steal {_pct(self.steal_mean_pct)}"]
        if self.load1_max is not None:
            parts.append(f"load average up to {self.load1_max:g} on {self.cores} cores")
        if self.runq_wait_mean_pct is not None:
            parts.append(f"the load process waited for a CPU {_pct(self.runq_wait_mean_pct)} "
                         "of the time")
        return ", ".join(parts)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def contended(other: np.ndarray, steal: np.ndarray, own: np.ndarray, cores: np.ndarray,
              family: np.ndarray) -> np.ndarray:
    """Per second: did the other work leave the load processes less than their share?"""
    taken = np.nan_to_num(other) + np.nan_to_num(steal)
    count = np.minimum(np.nan_to_num(family, nan=1.0).clip(min=1.0), cores)
    idle = 100.0 * cores - taken - np.nan_to_num(own)
    return (idle < HEADROOM_PCT * count) & (taken >= HEADROOM_PCT)


def machine_health(ticks: pd.DataFrame) -> MachineHealth:
    """The machine health of a run from its ticks (`RunData.ticks`); the worst source counts."""
    if "other_cpu_pct" not in ticks or not ticks["other_cpu_pct"].notna().any():
        return MachineHealth(sampled=False)
    worst: MachineHealth | None = None
    for source, rows in ticks[ticks["other_cpu_pct"].notna()].groupby("source", sort=True):
        cores = rows["cores"].fillna(1.0).clip(lower=1.0).to_numpy(float)
        flags = contended(rows["other_cpu_pct"].to_numpy(float),
                          rows["steal_pct"].to_numpy(float), rows["cpu_pct"].to_numpy(float),
                          cores, rows["family"].to_numpy(float))
        health = MachineHealth(
            sampled=True, seconds=len(rows), contended_s=int(flags.sum()),
            cores=int(cores.max()), other_cpu_mean_pct=_mean(rows["other_cpu_pct"]),
            other_cpu_max_pct=_max(rows["other_cpu_pct"]), steal_mean_pct=_mean(rows["steal_pct"]),
            load1_max=_max(rows["load1"]), runq_wait_mean_pct=_mean(rows["runq_wait_pct"]),
            source=str(source))
        if worst is None or health.contended_s / health.seconds > (
                worst.contended_s / worst.seconds):
            worst = health
    assert worst is not None
    return worst


def _mean(values: pd.Series) -> float | None:
    return None if not values.notna().any() else round(float(values.mean()), 1)


def _max(values: pd.Series) -> float | None:
    return None if not values.notna().any() else round(float(values.max()), 2)
