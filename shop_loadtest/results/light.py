"""A run as the monitor statistics see it, kept up to date from lines already read.

`used`, `gauge_max`, `rate` and `runway` read run.json, the ticks of intervals.jsonl (time,
users, arrivals, journeys) and monitor.jsonl; never a request figure or a histogram. The live
view and the runner's abort check used to judge them on `load_run` of the whole folder, which
at hour 4 of a soak parses 480 MB of intervals. `MonitorEvidence` is fed the lines those
callers tail anyway and keeps only what these statistics need: a small record per interval
line and the monitor frame, grown by the new scrapes. Judging on `run()` gives the batch
judge's answers on the same lines (tests/test_live.py checks it).

    evidence = MonitorEvidence()
    evidence.add_intervals(new_interval_lines)
    evidence.add_monitor(new_monitor_lines)
    results = evaluate(monitor_budgets, evidence.run(meta))
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from shop_loadtest.results.checks import check_meta
from shop_loadtest.results.folder import MONITOR_COLUMNS, RunData, _intervals, _monitor
from shop_loadtest.results.numbers import number

# What of an interval line the monitor statistics read (the rest is request figures).
_KEPT = ("t", "ts", "dt", "source", "users", "target", "arrivals", "health", "journeys")


class MonitorEvidence:
    """Interval ticks and monitor samples, appended as they are read.

    Ticks well behind the newest line (SETTLE_SLOTS intervals) are turned into a frame once
    and kept; each `run()` converts only the lines after them. Two lines of one source and
    slot add up (a load process's last flush at stop lands on its previous slot), so a line
    whose slot is already settled makes that call rebuild the whole frame: exact, and rare.
    """

    SETTLE_SLOTS = 3

    def __init__(self) -> None:
        self.ticks: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._settled: list[pd.DataFrame] = []
        self._settled_n = 0  # lines of self.ticks in self._settled
        self._keys: set[tuple[float, str]] = set()  # their (slot, source)
        self._frames: list[pd.DataFrame] = []
        self._monitor = pd.DataFrame(columns=MONITOR_COLUMNS)
        self._empty = _intervals([], [])

    def add_intervals(self, records: Iterable[dict[str, Any]]) -> None:
        for rec in records:
            if rec.get("ts") is not None:  # a line written twice is read once, as load_run does
                key = json.dumps([rec.get("source"), rec.get("t"), rec.get("ts")], default=str)
                if key in self._seen:
                    continue
                self._seen.add(key)
            health = rec.get("health")
            light = {k: rec[k] for k in _KEPT if k in rec}
            if isinstance(health, dict):  # the machine sample, not the rest of health
                light["health"] = {k: health.get(k) for k in
                                   ("cpu_pct", "loop_lag_ms", "rss_mb", "machine")}
            self.ticks.append(light)

    def add_monitor(self, records: Iterable[dict[str, Any]]) -> None:
        records = list(records)
        if records:
            self._frames.append(_monitor(records))

    def monitor(self) -> pd.DataFrame:
        if self._frames:
            frames = [f for f in (self._monitor, *self._frames) if len(f)]
            self._monitor = (pd.concat(frames, ignore_index=True) if len(frames) > 1
                             else frames[0].reset_index(drop=True))
            self._frames = []
        return self._monitor

    def _tick_frame(self, warnings: list[str]) -> pd.DataFrame:
        new = self.ticks[self._settled_n:]
        slots = [_slot(r) for r in new]
        known = [(t, dt) for t, dt in slots if t is not None]
        if known:
            latest = max(t for t, _ in known)
            cut = latest - self.SETTLE_SLOTS * max(dt for _, dt in known)
            ready = 0
            while ready < len(new) and (slots[ready][0] or -math.inf) <= cut:
                ready += 1
            if ready:
                chunk = _intervals(new[:ready], warnings)[1]
                keys = set(zip(chunk["t"].tolist(), chunk["source"].tolist(), strict=True))
                if keys & self._keys:
                    return self._rebuild(warnings)
                self._settled.append(chunk)
                self._keys |= keys
                self._settled_n += ready
                new = new[ready:]
        tail = _intervals(new, warnings)[1]
        if set(zip(tail["t"].tolist(), tail["source"].tolist(), strict=True)) & self._keys:
            return _intervals(self.ticks, warnings)[1]
        frames = [f for f in (*self._settled, tail) if len(f)]
        if not frames:
            return tail
        whole = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return whole.sort_values("t", kind="stable", ignore_index=True)

    def _rebuild(self, warnings: list[str]) -> pd.DataFrame:
        """Everything again, from the first line (a line joined a settled slot)."""
        self._settled, self._settled_n, self._keys = [], 0, set()
        return _intervals(self.ticks, warnings)[1]

    def run(self, meta: dict[str, Any]) -> RunData:
        """The run so far, without request figures (see the module's docstring)."""
        meta, warnings = check_meta(meta, "run.json")
        ticks = self._tick_frame(warnings)
        intervals, _, errors, _ = self._empty
        return RunData(meta=meta, intervals=intervals, ticks=ticks, errors=errors, events=[],
                       monitor=self.monitor(), warnings=tuple(warnings))


def _slot(rec: dict[str, Any]) -> tuple[float | None, float]:
    """A line's slot on the interval grid, as results/folder.py puts it."""
    t_raw, dt = number(rec.get("t"), math.nan), number(rec.get("dt"), math.nan)
    dt = dt if dt > 0 else 1.0
    if math.isnan(t_raw):
        return None, dt
    return round(max(round(t_raw / dt), 1) * dt, 6), dt
