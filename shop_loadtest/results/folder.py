"""Read a results folder (docs/results-format.md) into dataframes: `load_run` -> `RunData`.

A run folder is read leniently: a truncated last line (a crash mid-write), a missing optional
file or an unreadable histogram become `RunData.warnings`, never an exception. Only a missing
folder or `run.json` raises `ResultsError`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shop_loadtest.errors import ResultsError
from shop_loadtest.results.histograms import HistCache

INTERVAL_COLUMNS = ["t", "ts", "dt", "source", "endpoint", "method", "n", "fail", "sum_ms",
                    "min_ms", "max_ms", "bytes", "p50_ms", "p95_ms", "p99_ms", "hist", "hist_due"]
# health.machine, sampled beside each load process (runtime/machine.py)
MACHINE_COLUMNS = ["cores", "other_cpu_pct", "steal_pct", "load1", "runq_wait_pct", "family"]
TICK_COLUMNS = ["t", "ts", "dt", "source", "users", "target", "due", "started", "dropped",
                "late", "late_max_ms", "cpu_pct", "loop_lag_ms", "rss_mb", "journeys",
                *MACHINE_COLUMNS]
ERROR_COLUMNS = ["t", "source", "endpoint", "kind", "message", "count"]
MONITOR_COLUMNS = ["t", "ts", "endpoint", "ok", "error", "name", "labels", "value"]
_INT_COLUMNS = ("n", "fail", "bytes", "count")


@dataclass(frozen=True, eq=False)
class RunData:
    """Everything a results folder holds, as plain data (see docs/results-format.md)."""

    meta: dict[str, Any]
    intervals: pd.DataFrame
    ticks: pd.DataFrame
    errors: pd.DataFrame
    events: list[dict[str, Any]]
    monitor: pd.DataFrame
    warnings: tuple[str, ...] = ()
    run_dir: Path | None = None
    hists: HistCache = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hists", HistCache(self.intervals))

    @property
    def stages(self) -> list[dict[str, Any]]:
        return [s for s in self.meta.get("stages") or [] if isinstance(s, dict)]

    @property
    def grid(self) -> np.ndarray:
        """Every interval end time `t` seen in the run, sorted."""
        times = np.concatenate([self.intervals["t"].to_numpy(float),
                                self.ticks["t"].to_numpy(float)])
        return np.unique(times)

    @property
    def interval_s(self) -> float:
        dts = self.ticks["dt"].dropna()
        return float(dts.median()) if len(dts) else 1.0

    @property
    def duration_s(self) -> float:
        """Seconds from the start of the first interval to the end of the last."""
        grid = self.grid
        if not len(grid):
            return 0.0
        return float(grid[-1] - max(grid[0] - self.interval_s, 0.0))

    @property
    def endpoints(self) -> list[str]:
        """Endpoint names, busiest first."""
        if self.intervals.empty:
            return []
        return list(self.intervals.groupby("endpoint")["n"].sum()
                    .sort_values(ascending=False, kind="stable").index)


def load_run(run_dir: Path) -> RunData:
    """Read a (possibly partial) results folder."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ResultsError(f"{run_dir}: no such results folder")
    meta_path = run_dir / "run.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{meta_path}: missing; is this a results folder?") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ResultsError(f"{meta_path}: unreadable ({exc})") from None
    if not isinstance(meta, dict):
        raise ResultsError(f"{meta_path}: expected a JSON object")
    warnings: list[str] = []
    intervals, ticks, errors = _intervals(_read_jsonl(run_dir / "intervals.jsonl", warnings),
                                          warnings)
    events = _read_jsonl(run_dir / "events.jsonl", warnings)
    monitor = _monitor(_read_jsonl(run_dir / "monitor.jsonl", warnings))
    return RunData(meta=meta, intervals=intervals, ticks=ticks, errors=errors, events=events,
                   monitor=monitor, warnings=tuple(warnings), run_dir=run_dir)


def _read_jsonl(path: Path, warnings: list[str]) -> list[dict[str, Any]]:
    """JSON objects, one a line; bad lines are skipped with a warning, a missing file is []."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        warnings.append(f"{path.name}: unreadable ({exc.strerror or exc})")
        return []
    lines = text.split("\n")
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            last = number == len(lines)  # no newline after it: the writer stopped mid-line
            warnings.append(f"{path.name}:{number}: "
                            + ("truncated last line ignored" if last else "not JSON, ignored"))
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            warnings.append(f"{path.name}:{number}: not a JSON object, ignored")
    return records


def _num(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _intervals(records: list[dict[str, Any]], warnings: list[str]
               ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows: list[dict[str, Any]] = []
    ticks: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for rec in records:
        t_raw, dt = _num(rec.get("t")), _num(rec.get("dt"))
        if math.isnan(t_raw):
            warnings.append("intervals.jsonl: a line without `t` ignored")
            continue
        dt = dt if dt > 0 else 1.0
        # Sources flush a few ms apart: put lines on the interval grid so they add up.
        t = round(max(round(t_raw / dt), 1) * dt, 6)
        base = {"t": t, "ts": _num(rec.get("ts")), "dt": dt, "source": str(rec.get("source"))}
        arrivals, health = _obj(rec.get("arrivals")), _obj(rec.get("health"))
        journeys, machine = _obj(rec.get("journeys")), _obj(health.get("machine"))
        ticks.append({**base, "users": _num(rec.get("users")), "target": _num(rec.get("target")),
                      **{k: _num(arrivals.get(k)) for k in
                         ("due", "started", "dropped", "late", "late_max_ms")},
                      **{k: _num(health.get(k)) for k in ("cpu_pct", "loop_lag_ms", "rss_mb")},
                      "journeys": _num(journeys.get("completed")),
                      **{k: _num(machine.get(k)) for k in MACHINE_COLUMNS}})
        for name, ep in _obj(rec.get("endpoints")).items():
            if not isinstance(ep, dict):
                continue
            rows.append({**base, "endpoint": str(name), "method": str(ep.get("method") or ""),
                         **{k: _num(ep.get(k)) for k in
                            ("n", "fail", "sum_ms", "min_ms", "max_ms", "bytes",
                             "p50_ms", "p95_ms", "p99_ms")},
                         "hist": ep.get("hist"), "hist_due": ep.get("hist_due")})
        for err in rec.get("errors") or []:
            if isinstance(err, dict):
                errors.append({"t": t, "source": base["source"],
                               "endpoint": str(err.get("endpoint")),
                               "kind": str(err.get("kind")), "message": str(err.get("message")),
                               "count": _num(err.get("count"))})
    return (_frame(rows, INTERVAL_COLUMNS), _frame(_merge_ticks(ticks), TICK_COLUMNS),
            _frame(errors, ERROR_COLUMNS))


_TICK_SUM = ("due", "started", "dropped", "late", "journeys")
_TICK_MAX = ("late_max_ms", "cpu_pct", "loop_lag_ms", "rss_mb", *MACHINE_COLUMNS)


def _merge_ticks(ticks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One tick per source and slot. The last flush at stop is a partial interval that lands
    on the slot of the one before it: its counts add up, but users and target are levels,
    so the later value stands instead of being counted twice."""
    merged: dict[tuple[float, str], dict[str, Any]] = {}
    for tick in ticks:
        key = (tick["t"], tick["source"])
        seen = merged.get(key)
        if seen is None:
            merged[key] = dict(tick)
            continue
        for k in _TICK_SUM:
            seen[k] = np.nansum([seen[k], tick[k]]) if not (
                math.isnan(seen[k]) and math.isnan(tick[k])) else math.nan
        for k in _TICK_MAX:
            seen[k] = max(seen[k], tick[k]) if not math.isnan(seen[k]) else tick[k]
        for k in ("users", "target", "ts"):
            if not math.isnan(tick[k]):
                seen[k] = tick[k]
    return list(merged.values())


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for column in _INT_COLUMNS:
        if column in frame:
            frame[column] = frame[column].fillna(0).astype("int64")
    for column in ("t", "ts", "dt"):
        if column in frame:
            frame[column] = frame[column].astype(float)
    if len(frame) and "t" in frame:
        frame = frame.sort_values("t", kind="stable", ignore_index=True)
    return frame


def _monitor(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per sample; a scrape without samples (a failed one) keeps one row, no name."""
    rows: list[dict[str, Any]] = []
    for rec in records:
        base = {"t": _num(rec.get("t")), "ts": _num(rec.get("ts")),
                "endpoint": rec.get("endpoint"), "ok": rec.get("ok"), "error": rec.get("error")}
        samples = [s for s in rec.get("samples") or [] if isinstance(s, dict)]
        if not samples:
            rows.append({**base, "name": None, "labels": {}, "value": math.nan})
        for sample in samples:
            rows.append({**base, "name": sample.get("name"), "labels": _obj(sample.get("labels")),
                         "value": _num(sample.get("value"))})
    frame = pd.DataFrame.from_records(rows, columns=MONITOR_COLUMNS)
    frame["t"] = frame["t"].astype(float)
    frame["value"] = frame["value"].astype(float)
    return frame

