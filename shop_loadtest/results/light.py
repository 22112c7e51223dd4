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

from collections.abc import Iterable
from typing import Any

import pandas as pd

from shop_loadtest.results.checks import check_meta
from shop_loadtest.results.folder import MONITOR_COLUMNS, RunData, _intervals, _monitor

# What of an interval line the monitor statistics read (the rest is request figures).
_KEPT = ("t", "ts", "dt", "source", "users", "target", "arrivals", "health", "journeys")


class MonitorEvidence:
    """Interval ticks and monitor samples, appended as they are read."""

    def __init__(self) -> None:
        self.ticks: list[dict[str, Any]] = []
        self._frames: list[pd.DataFrame] = []
        self._monitor = pd.DataFrame(columns=MONITOR_COLUMNS)

    def add_intervals(self, records: Iterable[dict[str, Any]]) -> None:
        for rec in records:
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

    def run(self, meta: dict[str, Any]) -> RunData:
        """The run so far, without request figures (see the module's docstring)."""
        warnings: list[str] = []
        meta, warnings = check_meta(meta, "run.json")
        intervals, ticks, errors, _ = _intervals(self.ticks, warnings)
        return RunData(meta=meta, intervals=intervals, ticks=ticks, errors=errors, events=[],
                       monitor=self.monitor(), warnings=tuple(warnings))
