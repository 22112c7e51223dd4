"""Read a results folder (docs/results-format.md) into dataframes: `load_run` -> `RunData`.

A run folder is read leniently: a truncated last line (a crash mid-write), a missing optional
file or an unreadable histogram become `RunData.warnings`, never an exception. What is read is
checked (`results.checks`): damaged values and duplicated lines are left out with one warning
per kind of damage. `ResultsError` is raised when nothing trustworthy is left: no folder or
`run.json`, an unknown schema version, unreadable budgets, or no usable interval line.
"""

from __future__ import annotations

import binascii
import json
import math
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shop_loadtest.errors import ResultsError
from shop_loadtest.results.checks import Damage, check_interval, check_meta
from shop_loadtest.results.histograms import HistCache, decode_counts, merge_counts
from shop_loadtest.results.numbers import number as _num  # the one lenient reader

INTERVAL_COLUMNS = ["t", "ts", "dt", "source", "endpoint", "method", "n", "fail", "sum_ms",
                    "min_ms", "max_ms", "bytes", "p50_ms", "p95_ms", "p99_ms", "hist", "hist_due"]
# health.machine, sampled beside each load process (runtime/machine.py)
MACHINE_COLUMNS = ["cores", "other_cpu_pct", "steal_pct", "load1", "runq_wait_pct", "family"]
TICK_COLUMNS = ["t", "ts", "dt", "source", "users", "target", "due", "started", "dropped",
                "dropped_full", "late", "late_full", "late_max_ms", "cpu_pct", "loop_lag_ms",
                "rss_mb", "journeys", *MACHINE_COLUMNS, "late_hist"]
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
    # A few failed requests per endpoint and kind as the load processes kept them: status,
    # method, path, the body's start (masked at the source), `t` and `source`.
    error_samples: tuple[dict[str, Any], ...] = ()
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
    meta, warnings = check_meta(meta, str(meta_path))
    intervals, ticks, errors, samples = _intervals(
        _checked_intervals(run_dir / "intervals.jsonl", warnings), warnings)
    events = _read_jsonl(run_dir / "events.jsonl", warnings)
    monitor = _monitor(_read_jsonl(run_dir / "monitor.jsonl", warnings))
    return RunData(meta=meta, intervals=intervals, ticks=ticks, errors=errors, events=events,
                   monitor=monitor, warnings=tuple(warnings), run_dir=run_dir,
                   error_samples=tuple(samples))


def _iter_jsonl(path: Path, warnings: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each JSON object line, read line by line (a 4-hour file is
    never held whole); bad lines are skipped with a warning, a missing file yields nothing."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    except OSError as exc:
        warnings.append(f"{path.name}: unreadable ({exc.strerror or exc})")
        return
    with handle:
        number = 0
        try:
            for raw in handle:
                number += 1
                line = raw.decode("utf-8", errors="replace")
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    last = not raw.endswith(b"\n")  # the writer stopped mid-line
                    warnings.append(f"{path.name}:{number}: " + (
                        "truncated last line ignored" if last else "not JSON, ignored"))
                    continue
                if isinstance(record, dict):
                    yield number, record
                else:
                    warnings.append(f"{path.name}:{number}: not a JSON object, ignored")
        except OSError as exc:
            warnings.append(f"{path.name}: unreadable ({exc.strerror or exc})")


def _checked_intervals(path: Path, warnings: list[str]) -> Iterator[dict[str, Any]]:
    """intervals.jsonl, each line checked as it is read; a line written twice (same source, t
    and ts) is read once. ResultsError, once read to the end, when the file had lines and none
    of them could be used."""
    damage = Damage(path.name)
    seen: set[str] = set()
    lines = usable = 0
    had_figures = kept_figures = False
    for line, rec in _iter_jsonl(path, warnings):
        lines += 1
        had_figures = had_figures or bool(rec.get("endpoints"))
        key = json.dumps([rec.get("source"), rec.get("t"), rec.get("ts")], default=str)
        if rec.get("ts") is not None and key in seen:
            damage.note("duplicated lines (same source, t and ts), read once", line)
            continue
        seen.add(key)
        checked = check_interval(rec, line, damage)
        if checked is not None:
            usable += 1
            kept_figures = kept_figures or bool(checked["endpoints"])
            yield checked
    warnings.extend(damage.warnings())
    if lines and (not usable or (had_figures and not kept_figures)):
        first = damage.warnings()[0] if damage.kinds else "no usable line"
        raise ResultsError(f"{path}: none of its {lines} lines holds usable figures "
                           f"({first})")


def _read_jsonl(path: Path, warnings: list[str]) -> list[dict[str, Any]]:
    """JSON objects, one a line, for the small files; bad lines are skipped with a warning."""
    return [rec for _, rec in _iter_jsonl(path, warnings)]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


SAMPLES_PER_KIND = 3
_SAMPLE_FIELDS = {"endpoint": str, "kind": str, "message": str, "method": str, "path": str,
                  "body": str}


def _sample(raw: Any, t: float, source: str) -> dict[str, Any] | None:
    """One `error_samples` entry, typed; None when it is not an object."""
    if not isinstance(raw, dict):
        return None
    sample: dict[str, Any] = {k: str(raw.get(k) or "") for k in _SAMPLE_FIELDS}
    status = _num(raw.get("status"))
    sample["status"] = None if math.isnan(status) else int(status)
    sample.update(t=t, source=source)
    return sample


def _compact(encoded: Any) -> bytes | str | None:
    """A `hist` string as its base64-decoded bytes: a quarter less memory for the million
    histograms of a 4-hour run. Every reader of `hist` (decode_counts, HistCache) takes both;
    a string that is not base64 is kept as it is, for them to reject."""
    if not isinstance(encoded, str) or not encoded:
        return None
    try:
        return binascii.a2b_base64(encoded)
    except (binascii.Error, ValueError):
        return encoded


_ROW_NUMBERS = ("n", "fail", "sum_ms", "min_ms", "max_ms", "bytes", "p50_ms", "p95_ms",
                "p99_ms")


def _intervals(records: Iterable[dict[str, Any]], warnings: list[str]
               ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    # One list per column, not a dict per row: a 4-hour, 30-endpoint run has 432,000 rows.
    # Numbers go to compact arrays and names are interned, so a row costs ~80 bytes plus its
    # histogram strings.
    cols: dict[str, Any] = {c: array("d") for c in ("t", "ts", "dt", *_ROW_NUMBERS)}
    cols.update(source=[], endpoint=[], method=[], hist=[], hist_due=[])
    names: dict[str, str] = {}
    ticks: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    sampled: dict[tuple[str, str], int] = {}
    for rec in records:
        t_raw, dt = _num(rec.get("t")), _num(rec.get("dt"))
        if math.isnan(t_raw):
            warnings.append("intervals.jsonl: a line without `t` ignored")
            continue
        dt = dt if dt > 0 else 1.0
        # Sources flush a few ms apart: put lines on the interval grid so they add up.
        t = round(max(round(t_raw / dt), 1) * dt, 6)
        source = str(rec.get("source"))
        source = names.setdefault(source, source)
        base = {"t": t, "ts": _num(rec.get("ts")), "dt": dt, "source": source}
        arrivals, health = _obj(rec.get("arrivals")), _obj(rec.get("health"))
        journeys, machine = _obj(rec.get("journeys")), _obj(health.get("machine"))
        ticks.append({**base, "users": _num(rec.get("users")), "target": _num(rec.get("target")),
                      **{k: _num(arrivals.get(k)) for k in
                         ("due", "started", "dropped", "dropped_full", "late", "late_full",
                          "late_max_ms")},
                      # how late each started arrival was: Counts, merged per slot below
                      "late_hist": decode_counts(arrivals.get("late_hist")),
                      **{k: _num(health.get(k)) for k in ("cpu_pct", "loop_lag_ms", "rss_mb")},
                      "journeys": _num(journeys.get("completed")),
                      **{k: _num(machine.get(k)) for k in MACHINE_COLUMNS}})
        for name, ep in _obj(rec.get("endpoints")).items():
            if not isinstance(ep, dict):
                continue
            name = str(name)
            method = str(ep.get("method") or "")
            cols["t"].append(t)
            cols["ts"].append(base["ts"])
            cols["dt"].append(dt)
            cols["source"].append(source)
            cols["endpoint"].append(names.setdefault(name, name))
            cols["method"].append(names.setdefault(method, method))
            for k in _ROW_NUMBERS:
                cols[k].append(_num(ep.get(k)))
            cols["hist"].append(_compact(ep.get("hist")))
            cols["hist_due"].append(_compact(ep.get("hist_due")))
        for err in rec.get("errors") or []:
            if isinstance(err, dict):
                errors.append({"t": t, "source": source,
                               "endpoint": str(err.get("endpoint")),
                               "kind": str(err.get("kind")), "message": str(err.get("message")),
                               "count": _num(err.get("count"))})
        for raw in rec.get("error_samples") or []:
            sample = _sample(raw, t, source)
            if sample is None:
                continue
            key = (sample["endpoint"], sample["kind"])
            if sampled.get(key, 0) < SAMPLES_PER_KIND:  # the first few, across all sources
                sampled[key] = sampled.get(key, 0) + 1
                samples.append(sample)
    frame = pd.DataFrame({c: (np.frombuffer(cols[c], dtype=float) if isinstance(cols[c], array)
                              else np.array(cols[c], dtype=object))
                          for c in INTERVAL_COLUMNS}, columns=INTERVAL_COLUMNS)
    cols.clear()
    return (_frame_from(frame), _frame(_merge_ticks(ticks), TICK_COLUMNS),
            _frame(errors, ERROR_COLUMNS), samples)


_TICK_SUM = ("due", "started", "dropped", "dropped_full", "late", "late_full", "journeys")
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
        seen["late_hist"] = merge_counts([seen["late_hist"], tick["late_hist"]])
    return list(merged.values())


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return _frame_from(pd.DataFrame.from_records(rows, columns=columns))


def _frame_from(frame: pd.DataFrame) -> pd.DataFrame:
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

