"""Slices of a run: the endpoints and intervals a statistic looks at, and its windows."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shop_loadtest.results.numbers import number as _num

if TYPE_CHECKING:
    from shop_loadtest.results.folder import RunData
    from shop_loadtest.results.histograms import Counts


class Scope:
    """The part of a run a budget looks at: some endpoints over some intervals ("slots").

    Per-slot totals are numpy arrays aligned with `t` (each slot's end time) and `dt`;
    histograms are decoded only when a statistic asks for them.
    """

    def __init__(self, run: RunData, t: np.ndarray, dt: np.ndarray, endpoints: list[str],
                 *, where: str, time_text: str, note: str = "") -> None:
        self.run, self.t, self.dt, self.endpoints = run, t, dt, endpoints
        self.where, self.time_text, self.note = where, time_text, note
        iv = run.intervals
        mask = iv["endpoint"].isin(endpoints).to_numpy() & np.isin(iv["t"].to_numpy(float), t)
        self.rows = np.flatnonzero(mask)
        self.slot_of_row = np.searchsorted(t, iv["t"].to_numpy(float)[self.rows])
        self._slot_counts: dict[str, Sequence[list[Counts]]] = {}

    def describe(self, window_s: float | None = None) -> str:
        window = f", every {window_s:g}s window" if window_s else ""
        return f"{self.where}, {self.time_text}{window}"

    def total(self, column: str) -> np.ndarray:
        """Per-slot sum of an interval column (`n`, `fail`, `sum_ms`, `bytes`)."""
        values = self.run.intervals[column].to_numpy(float)[self.rows]
        return np.bincount(self.slot_of_row, weights=np.nan_to_num(values),
                           minlength=len(self.t)).astype(float)

    def extreme(self, column: str, reduce: np.ufunc) -> np.ndarray:
        """Per-slot max or min (`reduce` = np.fmax / np.fmin) of an interval column; NaN empty."""
        out = np.full(len(self.t), np.nan)
        reduce.at(out, self.slot_of_row, self.run.intervals[column].to_numpy(float)[self.rows])
        return out

    def failures_where(self, kind_matches: Callable[[str], bool]) -> np.ndarray:
        """Per-slot failures whose error kind satisfies `kind_matches(kind) -> bool`."""
        errors = self.run.errors
        if errors.empty or not len(self.t):
            return np.zeros(len(self.t))
        keep = (errors["endpoint"].isin(self.endpoints).to_numpy()
                & np.isin(errors["t"].to_numpy(float), self.t)
                & errors["kind"].map(kind_matches).to_numpy(bool))
        slots = np.searchsorted(self.t, errors["t"].to_numpy(float)[keep])
        return np.bincount(slots, weights=errors["count"].to_numpy(float)[keep],
                           minlength=len(self.t)).astype(float)

    def counts(self, column: str) -> Sequence[list[Counts]]:
        """Per-slot histograms of `hist` or `hist_due`: each slot's rows merged into one."""
        if column not in self._slot_counts:
            order = np.argsort(self.slot_of_row, kind="stable")
            merged = self.run.hists.by_slot(column, self.rows[order], self.slot_of_row[order],
                                            len(self.t))
            self._slot_counts[column] = _Singles(merged)
        return self._slot_counts[column]

    def merged(self, column: str) -> Counts | None:
        """Every histogram of the scope merged into one (a whole-scope percentile)."""
        return self.run.hists.merged(column, self.rows)


class _Singles(Sequence[list["Counts"]]):
    """Each slot's one merged histogram as a list of one (or none), made when asked."""

    def __init__(self, merged: Sequence[Counts | None]) -> None:
        self._merged = merged

    def __len__(self) -> int:
        return len(self._merged)

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        c = self._merged[k]
        return [c] if c is not None else []


def _matching(names: Iterable[str], pattern: str | None) -> list[str]:
    names = list(names)
    if pattern is None:
        return names
    if pattern in names or not any(c in pattern for c in "*?["):
        return [n for n in names if n == pattern]
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def build_scope(run: RunData, endpoint: str | None = None, stage: str | None = None,
                excluding_ramps: bool = False) -> Scope:
    """Slice a run by endpoint (exact name or fnmatch glob) and time (stage, holds only).

    An interval belongs to a stage when its middle falls inside the stage.
    """
    grid = run.grid
    dts = run.ticks.groupby("t")["dt"].max() if len(run.ticks) else pd.Series(dtype=float)
    dt = dts.reindex(grid).fillna(run.interval_s).to_numpy(float)
    keep = np.ones(len(grid), dtype=bool)
    middle = grid - dt / 2
    notes, time_text = [], "whole run"
    stages = run.stages

    def inside(chosen: list[dict[str, Any]]) -> np.ndarray:
        hit = np.zeros(len(grid), dtype=bool)
        for s in chosen:
            hit |= (middle >= _num(s.get("start_s"))) & (middle < _num(s.get("end_s")))
        return hit

    if stage is not None:
        chosen = [s for s in stages if s.get("name") == stage]
        time_text = f"stage {stage}"
        if not chosen:
            known = ", ".join(str(s.get("name")) for s in stages) or "none"
            notes.append(f"no stage named {stage!r} (stages: {known})")
        keep &= inside(chosen)
    if excluding_ramps and stages:
        keep &= inside([s for s in stages if _num(s.get("from")) == _num(s.get("to"))])
        time_text += ", holds only"
    names = _matching(run.endpoints, endpoint)
    if endpoint is None:
        where = "all endpoints"
    elif endpoint in names or not any(c in endpoint for c in "*?["):
        where = endpoint
    else:
        where = f"{endpoint} ({len(names)} endpoints)"
    if endpoint is not None and not names:
        notes.append(f"no endpoint matches {endpoint!r}")
    return Scope(run, grid[keep], dt[keep], names, where=where, time_text=time_text,
                 note="; ".join(notes))


def windows(scope: Scope, window_s: float | None, *, full_only: bool
            ) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) slot ranges to judge; ends are exclusive.

    Without a window: the whole scope (budgets), or every prefix of it when `full_only`
    (abort rules: "so far"). With a window: every sliding window of that length within a
    run of consecutive intervals; a run shorter than the window is judged whole, unless
    `full_only` (an abort rule must see a full window before it fires).
    """
    n = len(scope.t)
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    if window_s is None:
        if full_only:
            return np.zeros(n, dtype=np.int64), np.arange(1, n + 1)
        return np.array([0]), np.array([n])
    width = max(int(round(window_s / float(np.median(scope.dt)))), 1)
    breaks = np.flatnonzero(np.diff(scope.t) > scope.dt[1:] * 1.5) + 1
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    for a, b in zip(np.r_[0, breaks], np.r_[breaks, n], strict=True):
        if b - a >= width:
            starts.append(np.arange(a, b - width + 1))
            ends.append(starts[-1] + width)
        elif not full_only:
            starts.append(np.array([a]))
            ends.append(np.array([b]))
    if not starts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(starts), np.concatenate(ends)

