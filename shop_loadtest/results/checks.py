"""What a results folder may hold, checked as it is read: types, ranges, duplicates, version.

A run folder is evidence, and evidence can be damaged: a disk error, a hand edit, two copies of
a file concatenated. Damage must never turn into a verdict: a count of 10^30 overflowed to
`requests: -9223372036854773958`, a duplicated file counted every request twice, a string
`budgets` was read one character at a time. Here each damaged value or line is left out and
noted once per kind (`Damage.warnings`), and `ResultsError` (exit 3) is raised when nothing
trustworthy is left: an unknown schema version, budgets that cannot be read, or no usable line.
"""

from __future__ import annotations

import math
from typing import Any

from shop_loadtest.errors import ResultsError
from shop_loadtest.limits import MAX_COUNT, MAX_SHAPE_S

SCHEMA_VERSION = 1  # the run.json / intervals.jsonl layout this version reads
MAX_RUN_S = 2 * MAX_SHAPE_S  # an interval later than this into the run is not one
_LATENCIES = ("sum_ms", "min_ms", "max_ms", "p50_ms", "p95_ms", "p99_ms")
_ARRIVALS = ("due", "started", "dropped", "late", "late_full")
_META_TYPES: dict[str, tuple[type, ...]] = {
    "scenario": (str,), "scenario_file": (str,), "started_at": (str,), "ended_at": (str,),
    "host": (str,), "model": (str,), "speedup": (int, float), "processes": (int,),
    "command": (list,), "versions": (dict,), "stages": (list,), "monitor": (dict,),
    "forecast": (dict,), "exit_reason": (str,), "abort_reason": (str, dict),
    "locust_exit_code": (int,),
}


class Damage:
    """Damaged values of one file, counted by kind, with the first line of each."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.kinds: dict[str, list[int]] = {}

    def note(self, kind: str, line: int) -> None:
        self.kinds.setdefault(kind, []).append(line)

    def warnings(self) -> list[str]:
        return [f"{self.file}: {len(lines)} {kind} (first at line {lines[0]})"
                for kind, lines in self.kinds.items()]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def count(value: Any) -> int | None:
    """A whole number from 0 to MAX_COUNT, else None (1e30, -5, 2.5, "3", NaN)."""
    if not _is_number(value) or not math.isfinite(value) or value != int(value):
        return None
    number = int(value)
    return number if 0 <= number <= MAX_COUNT else None


def measure(value: Any) -> float | None:
    """A finite number >= 0, else None."""
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def check_meta(meta: dict[str, Any], name: str = "run.json") -> tuple[dict[str, Any], list[str]]:
    """run.json with wrongly typed fields left out, and a warning for each; ResultsError
    when its version is unknown or its budgets cannot be read (no verdict can be earned)."""
    version = meta.get("schema_version")
    warnings: list[str] = []
    if version is None:
        warnings.append(f"{name}: no schema_version; read as version {SCHEMA_VERSION}")
    elif version != SCHEMA_VERSION or isinstance(version, bool):
        raise ResultsError(f"{name}: schema_version {version!r} is not one this shop-loadtest "
                           f"reads ({SCHEMA_VERSION}); read it with the version that wrote it")
    clean = dict(meta)
    for key in ("budgets", "abort"):
        value = meta.get(key)
        if value is not None and not (isinstance(value, list)
                                      and all(isinstance(v, str) for v in value)):
            raise ResultsError(f"{name}: {key} is a {type(value).__name__}, not a list of "
                               f"expressions; the run cannot be judged from it")
    for key, types in _META_TYPES.items():
        value = meta.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            warnings.append(f"{name}: {key} is a {type(value).__name__}, left out")
            clean[key] = None
    speedup = clean.get("speedup")
    if speedup is not None and not (math.isfinite(speedup) and speedup > 0):
        warnings.append(f"{name}: speedup {speedup!r} is not a positive number, left out")
        clean["speedup"] = None
    stages = clean.get("stages") or []
    good = [s for s in stages if isinstance(s, dict) and all(
        measure(s.get(k)) is not None for k in ("start_s", "end_s"))]
    if len(good) != len(stages):
        warnings.append(f"{name}: {len(stages) - len(good)} stages without valid start_s and "
                        f"end_s, left out")
        clean["stages"] = good
    return clean, warnings


def check_interval(rec: dict[str, Any], line: int, damage: Damage) -> dict[str, Any] | None:
    """One intervals.jsonl line with its damaged parts left out; None when nothing is left
    (no valid `t`)."""
    t = measure(rec.get("t"))
    if t is None or t > MAX_RUN_S:
        damage.note("lines without a valid t, left out", line)
        return None
    out = dict(rec)
    if not isinstance(rec.get("source", ""), str):
        out["source"] = str(rec.get("source"))
    for key in ("users", "target"):
        if rec.get(key) is not None and measure(rec.get(key)) is None:
            damage.note(f"values of {key} that are not finite numbers >= 0, left out", line)
            out[key] = None
    for key, fields in (("arrivals", _ARRIVALS), ("health", ("cpu_pct", "loop_lag_ms",
                                                              "rss_mb")),
                        ("journeys", ("completed",))):
        out[key] = _section(rec.get(key), key, fields, line, damage)
    endpoints = rec.get("endpoints")
    if endpoints is not None and not isinstance(endpoints, dict):
        damage.note("lines whose endpoints is not a mapping, left out", line)
        endpoints = None
    out["endpoints"] = {name: ep for name, ep in ((n, _endpoint(e, line, damage))
                                                  for n, e in (endpoints or {}).items())
                        if ep is not None}
    errors = rec.get("errors")
    if errors is not None and not isinstance(errors, list):
        damage.note("lines whose errors is not a list, left out", line)
        errors = None
    out["errors"] = [e for e in (_error(e, line, damage) for e in errors or []) if e is not None]
    return out


def _section(value: Any, key: str, fields: tuple[str, ...], line: int,
             damage: Damage) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        damage.note(f"lines whose {key} is not a mapping, left out", line)
        return None
    out = dict(value)
    for field in fields:
        if value.get(field) is not None and measure(value.get(field)) is None:
            damage.note(f"{key} figures that are not finite numbers >= 0, left out", line)
            out[field] = None
    return out


def _endpoint(ep: Any, line: int, damage: Damage) -> dict[str, Any] | None:
    if not isinstance(ep, dict):
        damage.note("endpoint entries that are not mappings, left out", line)
        return None
    n, fail, size = count(ep.get("n")), count(ep.get("fail", 0)), count(ep.get("bytes", 0))
    if n is None or fail is None or fail > n or (ep.get("bytes") is not None and size is None):
        damage.note(f"endpoint entries whose counts are not whole numbers from 0 to "
                    f"{MAX_COUNT:.0e} (or fail > n), left out", line)
        return None
    out = {**ep, "n": n, "fail": fail}
    for key in _LATENCIES:
        if ep.get(key) is not None and measure(ep.get(key)) is None:
            damage.note("latencies that are not finite numbers >= 0, left out", line)
            out[key] = None
    for key in ("hist", "hist_due"):
        if ep.get(key) is not None and not isinstance(ep.get(key), str):
            damage.note("histograms that are not text, left out", line)
            out[key] = None
    return out


def _error(err: Any, line: int, damage: Damage) -> dict[str, Any] | None:
    if not isinstance(err, dict) or count(err.get("count")) is None:
        damage.note("error entries without a whole count, left out", line)
        return None
    return err
