"""Whole-run figures with their uncertainty: a circular block bootstrap over intervals.

A run's figures (p50, p95, p99 of the merged HDR histograms, error rate, throughput) are
statistics of a time series whose seconds are not independent: a slow second follows a slow
second (a GC pause, a busy neighbour, a cold cache). Resampling single seconds, or single
requests, would pretend they are and make every difference look significant. A block bootstrap
resamples *runs of consecutive intervals* instead, so the autocorrelation within a block is
kept (Künsch 1989; the circular variant of Politis & Romano 1992 gives every interval the same
chance of being drawn). Each replicate is a pretend run of the same length, stage by stage:
blocks never cross a stage boundary, so a replicate has as much ramp and as much peak as the
real run.

    sample = Sample.of(run, ["GET /api/products"])
    plan = Resampling.plan(sample, seed=7, resamples=1000)
    stats = plan.figures(sample)       # metric -> (resamples,) array; column 0 is the real run

Everything is seeded, so the same two folders always give the same answer.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shop_loadtest.results import RunData, bucket_values_us

QUANTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}
MAX_SLOTS = 240  # longer runs are summed into this many slots first (a soak: 60 s slots)
RESAMPLES = 1000


@dataclass(frozen=True)
class Sample:
    """Some endpoints of one run, slot by slot (a slot is one interval, or several summed)."""

    t: np.ndarray  # (T,) end time of each slot
    dt: np.ndarray  # (T,) seconds in each slot
    n: np.ndarray  # (T,) requests
    fail: np.ndarray  # (T,) failed requests
    buckets: np.ndarray  # (B,) HDR bucket indexes seen, sorted
    counts: np.ndarray  # (T, B) requests per bucket per slot
    segment: np.ndarray  # (T,) stage number of each slot: blocks stay inside one

    @classmethod
    def of(cls, run: RunData, endpoints: list[str]) -> Sample:
        """The slots of a run for these endpoints (merged), on the run's interval grid."""
        grid = run.grid
        dts = run.ticks.groupby("t")["dt"].max() if len(run.ticks) else pd.Series(dtype=float)
        dt = dts.reindex(grid).fillna(run.interval_s).to_numpy(float)
        iv = run.intervals
        rows = np.flatnonzero(iv["endpoint"].isin(endpoints).to_numpy())
        slot = np.searchsorted(grid, iv["t"].to_numpy(float)[rows])
        n = np.bincount(slot, weights=iv["n"].to_numpy(float)[rows], minlength=len(grid))
        fail = np.bincount(slot, weights=iv["fail"].to_numpy(float)[rows], minlength=len(grid))
        decoded = run.hists.rows("hist", rows)
        present = [(s, c) for s, c in zip(slot.tolist(), decoded, strict=True) if c is not None]
        buckets = (np.unique(np.concatenate([c.idx for _, c in present])) if present
                   else np.empty(0, dtype=np.int64))
        counts = np.zeros((len(grid), len(buckets)))
        for s, c in present:
            np.add.at(counts[s], np.searchsorted(buckets, c.idx), c.cnt)
        segment = _segments(run, grid, dt)
        return _coarsen(cls(grid, dt, n, fail, buckets, counts, segment))

    @property
    def slots(self) -> int:
        return len(self.t)

    @property
    def busy_slots(self) -> int:
        """Slots with at least one request."""
        return int((self.n > 0).sum())


def _segments(run: RunData, grid: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """The stage each interval's middle falls in (0 without stages)."""
    stages = run.stages
    if not stages:
        return np.zeros(len(grid), dtype=np.int64)
    starts = np.array([float(s.get("start_s") or 0.0) for s in stages])
    order = np.argsort(starts, kind="stable")
    return np.searchsorted(starts[order], grid - dt / 2, side="right").astype(np.int64)


def _coarsen(sample: Sample) -> Sample:
    """Sum consecutive slots of the same stage so a long run has at most MAX_SLOTS of them."""
    size = math.ceil(sample.slots / MAX_SLOTS)
    if size <= 1:
        return sample
    # a new group starts every `size` slots and at every stage change
    change = np.r_[True, np.diff(sample.segment) != 0]
    stage_start = np.maximum.accumulate(np.where(change, np.arange(sample.slots), 0))
    starts = np.flatnonzero(change | ((np.arange(sample.slots) - stage_start) % size == 0))
    ends = np.r_[starts[1:] - 1, sample.slots - 1]

    def total(x: np.ndarray) -> np.ndarray:
        return np.add.reduceat(x, starts, axis=0)

    return Sample(sample.t[ends], total(sample.dt), total(sample.n), total(sample.fail),
                  sample.buckets, total(sample.counts), sample.segment[ends])


def block_length(sample: Sample) -> int:
    """Block length in slots: at least T^(1/3) (the rate-optimal order for variance, Hall,
    Horowitz & Jing 1995), and twice the lag at which the per-slot mean latency's
    autocorrelation first falls inside the noise band 2/sqrt(T) (Politis 2003's empirical rule),
    so a run whose slow seconds come in spells of several seconds gets blocks that hold them."""
    t = sample.slots
    floor = max(1, math.ceil(t ** (1.0 / 3.0)))
    busy = sample.n > 0
    if busy.sum() < 4 or not len(sample.buckets):
        return min(floor, max(t // 2, 1))
    _, highest = bucket_values_us(sample.buckets)
    mean = (sample.counts @ highest.astype(float))[busy] / sample.n[busy]
    x = mean - mean.mean()
    var = float(x @ x)
    lag = 1
    if var > 0:
        band = 2.0 / math.sqrt(len(x))
        while lag < len(x) // 2 and float(x[:-lag] @ x[lag:]) / var > band:
            lag += 1
    return max(1, min(max(floor, 2 * lag if lag > 1 else 1), max(t // 2, 1)))


def seed_for(seed: int, *parts: str) -> int:
    """A stable per-(run, endpoint) seed: the same names always draw the same blocks."""
    return seed * 1_000_003 + zlib.crc32("\x00".join(parts).encode())


@dataclass(frozen=True)
class Resampling:
    """How many times each slot appears in each replicate: row 0 is the real run (all ones)."""

    weights: np.ndarray  # (1 + resamples, T)
    block: int

    @classmethod
    def plan(cls, sample: Sample, *, seed: int, resamples: int = RESAMPLES,
             block: int | None = None) -> Resampling:
        block = block or block_length(sample)
        rng = np.random.default_rng(seed)
        weights = np.zeros((resamples + 1, sample.slots))
        weights[0] = 1.0
        for segment in np.unique(sample.segment):
            where = np.flatnonzero(sample.segment == segment)
            length = len(where)
            size = min(block, length)
            blocks = math.ceil(length / size)
            starts = rng.integers(0, length, size=(resamples, blocks))
            picked = (starts[:, :, None] + np.arange(size)).reshape(resamples, -1)[:, :length]
            picked %= length  # circular: a block that runs off the end wraps to the start
            rows = np.repeat(np.arange(1, resamples + 1), length)
            np.add.at(weights, (rows, where[picked.ravel()]), 1.0)
        return cls(weights, block)

    def figures(self, sample: Sample) -> dict[str, np.ndarray]:
        """metric -> its value in the real run (index 0) and every replicate; NaN: no data."""
        w = self.weights
        n, fail, dt = w @ sample.n, w @ sample.fail, w @ sample.dt
        out: dict[str, np.ndarray] = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            out["error_rate"] = np.where(n > 0, fail / n, np.nan)
            out["throughput"] = np.where((dt > 0) & (sample.n.sum() > 0), n / dt, np.nan)
        if len(sample.buckets):
            cumulative = np.cumsum(w @ sample.counts, axis=1)
            total = cumulative[:, -1]
            lowest, highest = bucket_values_us(sample.buckets)
            for name, q in QUANTILES.items():
                # as HdrHistogram: the bucket of the ceil-ish (q% of total)-th value, its top
                target = np.maximum(np.floor(q * total / 100.0 + 0.5), 1.0)
                pos = np.minimum((cumulative < target[:, None]).sum(axis=1),
                                 len(sample.buckets) - 1)
                value = (highest if q > 0 else lowest)[pos] / 1000.0
                out[name] = np.where(total > 0, value, np.nan)
        else:
            out.update({name: np.full(len(w), np.nan) for name in QUANTILES})
        return out
