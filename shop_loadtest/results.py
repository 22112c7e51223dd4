"""Read a results folder (docs/results-format.md) into dataframes, and merge HDR histograms.

A run folder is read leniently: a truncated last line (a crash mid-write), a missing optional
file or an unreadable histogram become `RunData.warnings`, never an exception. Only a missing
folder or `run.json` raises `ResultsError`.

>>> run = load_run(Path("reports/flash-sale-20261126T203000Z"))  # doctest: +SKIP
>>> percentile_ms(merge_hist(run.intervals["hist"]), 95)  # doctest: +SKIP
231.423

Histograms are handled as sparse bucket counts (`Counts`) over the recorder's fixed layout
(1 us to 1 h, 3 significant digits), so merging thousands of them is a numpy `bincount`
rather than thousands of `HdrHistogram.add` calls.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from hdrh.codec import HdrHistogramEncoder
from hdrh.histogram import HdrHistogram

from shop_loadtest.errors import ResultsError

LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3  # as shop_loadtest.runtime.recorder

INTERVAL_COLUMNS = ["t", "ts", "dt", "source", "endpoint", "method", "n", "fail", "sum_ms",
                    "min_ms", "max_ms", "bytes", "p50_ms", "p95_ms", "p99_ms", "hist", "hist_due"]
TICK_COLUMNS = ["t", "ts", "dt", "source", "users", "target", "due", "started", "dropped",
                "late", "late_max_ms", "cpu_pct", "loop_lag_ms", "rss_mb", "journeys"]
ERROR_COLUMNS = ["t", "source", "endpoint", "kind", "message", "count"]
MONITOR_COLUMNS = ["t", "ts", "endpoint", "ok", "error", "name", "labels", "value"]
_INT_COLUMNS = ("n", "fail", "bytes", "count")


class Counts(NamedTuple):
    """A histogram as sorted bucket indexes and their counts (the recorder's layout)."""

    idx: np.ndarray
    cnt: np.ndarray

    @property
    def total(self) -> int:
        return int(self.cnt.sum())


@lru_cache(maxsize=1)
def _layout() -> HdrHistogram:
    """An empty histogram with the recorder's layout: the reference for bucket arithmetic."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def _same_layout(h: HdrHistogram) -> bool:
    ref = _layout()
    return (h.counts_len, h.unit_magnitude, h.sub_bucket_count, h.word_size) == (
        ref.counts_len, ref.unit_magnitude, ref.sub_bucket_count, ref.word_size)


def counts_of(hist: HdrHistogram) -> Counts:
    """The non-zero buckets of a histogram, re-bucketed into the standard layout if needed."""
    if not _same_layout(hist):
        standard = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)
        standard.add(hist)
        hist = standard
    dense = np.ctypeslib.as_array(hist.counts)
    idx = np.flatnonzero(dense)
    return Counts(idx.astype(np.int64), dense[idx].astype(np.int64))


def decode_counts(encoded: str | None) -> Counts | None:
    """Decode one `hist` string; None for null, empty or unreadable input."""
    if not encoded or not isinstance(encoded, str):
        return None
    try:
        payload = HdrHistogramEncoder.decode(encoded, True)
        header = payload.payload
        if (header.lowest_trackable_value, header.highest_trackable_value,
                header.significant_figures) != (LOWEST_US, HIGHEST_US, DIGITS):
            counts = counts_of(HdrHistogram.decode(encoded))
            return counts if len(counts.idx) else None
        # Straight from the payload: building an HdrHistogram costs 5x the decoding itself.
        found = payload.init_counts(_layout().counts_len)
    except Exception:  # noqa: BLE001 - hdrh raises TypeError, zlib.error and its own errors
        return None
    if not found["total"]:
        return None
    lo, hi = found["min_nonzero_index"], found["max_nonzero_index"]
    dense = np.ctypeslib.as_array(payload.counts)[lo : hi + 1]
    idx = np.flatnonzero(dense)
    return Counts(idx.astype(np.int64) + lo, dense[idx].astype(np.int64))


def merge_counts(parts: Iterable[Counts | None]) -> Counts | None:
    """Sum histograms bucket by bucket (exact: no percentile is ever averaged)."""
    present = [p for p in parts if p is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    idx = np.concatenate([p.idx for p in present])
    cnt = np.concatenate([p.cnt for p in present])
    uniq, inverse = np.unique(idx, return_inverse=True)
    return Counts(uniq, np.bincount(inverse, weights=cnt).astype(np.int64))


def bucket_values_us(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) equivalent value in microseconds of each bucket index."""
    ref = _layout()
    idx = np.asarray(idx, dtype=np.int64)
    bucket = (idx >> ref.sub_bucket_half_count_magnitude) - 1
    sub = (idx & (ref.sub_bucket_half_count - 1)) + ref.sub_bucket_half_count
    first = bucket < 0
    sub = np.where(first, sub - ref.sub_bucket_half_count, sub)
    bucket = np.where(first, 0, bucket)
    lowest = sub << (bucket + ref.unit_magnitude)
    return lowest, lowest + (np.int64(1) << (bucket + ref.unit_magnitude)) - 1


def _value_us(cumulative: np.ndarray, idx: np.ndarray, q: float) -> int:
    """The value at percentile q, as HdrHistogram.get_value_at_percentile computes it."""
    total = int(cumulative[-1])
    target = max(int(min(q, 100.0) * total / 100.0 + 0.5), 1)
    pos = min(int(np.searchsorted(cumulative, target, side="left")), len(idx) - 1)
    lowest, highest = bucket_values_us(idx[pos : pos + 1])
    return int(highest[0] if q else lowest[0])


def counts_percentile_ms(counts: Counts | None, q: float) -> float | None:
    """Percentile q (0..100) of sparse counts in milliseconds; None when empty."""
    if counts is None or not len(counts.idx):
        return None
    return _value_us(np.cumsum(counts.cnt), counts.idx, q) / 1000.0


def counts_percentiles_ms(counts: Counts | None, qs: Sequence[float]) -> list[float | None]:
    """Several percentiles of sparse counts at once, in milliseconds."""
    if counts is None or not len(counts.idx):
        return [None] * len(qs)
    cumulative = np.cumsum(counts.cnt)
    q = np.minimum(np.asarray(qs, dtype=float), 100.0)
    targets = np.maximum((q * cumulative[-1] / 100.0 + 0.5).astype(np.int64), 1)
    pos = np.minimum(np.searchsorted(cumulative, targets, side="left"), len(counts.idx) - 1)
    lowest, highest = bucket_values_us(counts.idx[pos])
    return [float(v) / 1000.0 for v in np.where(q > 0, highest, lowest)]


def dense_percentile_ms(dense: np.ndarray, q: float) -> float | None:
    """Percentile q of a dense counts array in the standard layout (sliding windows)."""
    idx = np.flatnonzero(dense)
    if not len(idx):
        return None
    return _value_us(np.cumsum(dense[idx]), idx, q) / 1000.0


def counts_to_hist(counts: Counts) -> HdrHistogram:
    """A real HdrHistogram holding these counts."""
    hist = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)
    dense = np.ctypeslib.as_array(hist.counts)
    dense[counts.idx] = counts.cnt
    if len(counts.idx):
        hist.set_internal_tacking_values(int(counts.idx[0]), int(counts.idx[-1]),
                                         int(counts.cnt.sum()))
    return hist


def merge_hist(encoded: Iterable[str | None]) -> HdrHistogram | None:
    """Merge base64 `hist` strings into one histogram; None when there is nothing to merge."""
    merged = merge_counts(decode_counts(e) for e in encoded)
    return counts_to_hist(merged) if merged is not None else None


def percentile_ms(hist: HdrHistogram | None, q: float) -> float | None:
    """Percentile q (0..100) of a microsecond histogram, in milliseconds; None when empty."""
    if hist is None or not hist.get_total_count():
        return None
    return counts_percentile_ms(counts_of(hist), q)


def percentiles_ms(hist: HdrHistogram | None, qs: Sequence[float]) -> dict[float, float | None]:
    """Several percentiles at once: `{50: 12.3, 95: 80.1}`."""
    if hist is None or not hist.get_total_count():
        return {q: None for q in qs}
    counts = counts_of(hist)
    return {q: counts_percentile_ms(counts, q) for q in qs}


class HistCache:
    """Decodes each interval row's histogram at most once, and only when asked."""

    def __init__(self, intervals: pd.DataFrame) -> None:
        self._columns = {c: intervals[c].to_numpy() for c in ("hist", "hist_due")
                         if c in intervals}
        self._decoded: dict[tuple[str, int], Counts | None] = {}

    def rows(self, column: str, positions: Iterable[int]) -> list[Counts | None]:
        values = self._columns.get(column)
        out: list[Counts | None] = []
        for pos in positions:
            key = (column, int(pos))
            if key not in self._decoded:
                self._decoded[key] = decode_counts(values[pos]) if values is not None else None
            out.append(self._decoded[key])
        return out

    def merged(self, column: str, positions: Iterable[int]) -> Counts | None:
        return merge_counts(self.rows(column, positions))


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
        journeys = _obj(rec.get("journeys"))
        ticks.append({**base, "users": _num(rec.get("users")), "target": _num(rec.get("target")),
                      **{k: _num(arrivals.get(k)) for k in
                         ("due", "started", "dropped", "late", "late_max_ms")},
                      **{k: _num(health.get(k)) for k in ("cpu_pct", "loop_lag_ms", "rss_mb")},
                      "journeys": _num(journeys.get("completed"))})
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
_TICK_MAX = ("late_max_ms", "cpu_pct", "loop_lag_ms", "rss_mb")


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


# --- slices of a run ------------------------------------------------------------------------
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
        self._slot_counts: dict[str, list[list[Counts]]] = {}

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

    def counts(self, column: str) -> list[list[Counts]]:
        """Per-slot histograms (one per source and endpoint) of `hist` or `hist_due`."""
        if column not in self._slot_counts:
            order = np.argsort(self.slot_of_row, kind="stable")
            bounds = np.searchsorted(self.slot_of_row[order], np.arange(len(self.t) + 1))
            decoded = self.run.hists.rows(column, self.rows[order])
            self._slot_counts[column] = [
                [c for c in decoded[bounds[i]:bounds[i + 1]] if c is not None]
                for i in range(len(self.t))]
        return self._slot_counts[column]


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


def empty_dense() -> np.ndarray:
    """A zeroed dense counts array in the standard layout (for running window sums)."""
    return np.zeros(_layout().counts_len, dtype=np.int64)
