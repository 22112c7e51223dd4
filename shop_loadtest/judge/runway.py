"""Runway: how long a resource lasts at the campaign's forecast load.

 a resource (storage) grows by a measured amount per unit of work (bytes per order,
the least-squares slope of `shop_db_size_bytes` against `shop_orders_total` over the run's
scrapes). At the forecast's orders per hour, what is left when the run started lasts

    runway = (limit - used at start) / (per order * orders per hour)

>>> runway_s(limit=2_000_000, used=86_000, per_unit=600.0, units_per_hour=1000)
11484.0
>>> format_span(11484)
'3 h 11 min'

Everything here is computed from a results folder alone (run.json's `monitor` and `forecast`,
monitor.jsonl, intervals.jsonl), so a report rebuilt later says the same. See docs/capacity.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shop_loadtest.judge.monitor_stats import resource_named, resources_of, series
from shop_loadtest.scenario.options import Forecast, Resource, Selector, forecast_of
from shop_loadtest.scenario.units import format_duration

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shop_loadtest.results import RunData, Scope

RUNWAY_CAP = 1000.0  # runway / campaign reported at most this (a resource that never fills)


# --- projection math: pure -------------------------------------------------------------------
def slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of ys against xs; None when xs do not vary.

    >>> slope([0, 10, 20], [100, 1100, 2100])
    100.0
    """
    n = len(xs)
    if n < 2 or n != len(ys):
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def runway_s(*, limit: float, used: float, per_unit: float, units_per_hour: float) -> float:
    """Seconds until `used` reaches `limit`, growing `per_unit` per unit of work at
    `units_per_hour`; infinite when it does not grow, 0 when already full."""
    growth_per_s = per_unit * units_per_hour / 3600.0
    if limit - used <= 0:
        return 0.0
    if growth_per_s <= 0:
        return math.inf
    return (limit - used) / growth_per_s


def format_span(seconds: float | None) -> str:
    """`11400` -> `3 h 10 min`; `90` -> `1 min 30 s`; inf -> `never`."""
    if seconds is None or math.isnan(seconds):
        return "unknown"
    if math.isinf(seconds):
        return "never"
    if seconds >= 86400 * 2:
        return f"{seconds / 86400:.1f} days"
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m} min" if m else f"{h} h"
    if m:
        return f"{m} min {s} s" if s else f"{m} min"
    return f"{s} s"


def units_per_hour(forecast: Forecast, work_done: float, journeys: float) -> float | None:
    """Work per hour at the forecast: given, or peak_rate x measured work per journey."""
    if forecast.orders_per_hour is not None:
        return forecast.orders_per_hour
    if forecast.peak_rate is not None and journeys > 0:
        return forecast.peak_rate * 3600.0 * work_done / journeys
    return None


# --- projecting a run ---------------------------------------------------------------------------
def _work_at(monitor: pd.DataFrame, selector: Selector, t: np.ndarray) -> np.ndarray | None:
    """The work counter (summed over its label sets) at each instant of `t`."""
    import numpy as np

    parts = list(series(monitor, selector).values())
    if not parts:
        return None
    return np.sum([np.interp(t, wt, wv) for wt, wv in parts], axis=0)


def _journeys(run: RunData, lo: float, hi: float) -> float:
    ticks = run.ticks
    if ticks.empty or "journeys" not in ticks:
        return 0.0
    inside = (ticks["t"] > lo) & (ticks["t"] <= hi)
    return float(ticks.loc[inside, "journeys"].sum())


def project(run: RunData, resource: Resource, forecast: Forecast | None,
            lo: float = -math.inf, hi: float = math.inf) -> list[dict[str, Any]]:
    """One projection per label set of the resource's `used` metric, from scrapes in (lo, hi]."""
    import numpy as np

    monitor = run.monitor
    if not monitor.empty:
        monitor = monitor[(monitor["t"] > lo) & (monitor["t"] <= hi)]
    used = series(monitor, Selector.parse(resource.used))
    limits: dict[Any, tuple[np.ndarray, np.ndarray]] = {}
    if isinstance(resource.limit, str):
        limits = series(monitor, Selector.parse(resource.limit))
    out = []
    for key, (t, v) in used.items():
        work = _work_at(monitor, Selector.parse(resource.per), t)
        row: dict[str, Any] = {
            "resource": resource.name, "metric": resource.used, "labels": dict(key),
            "unit": resource.unit, "per": resource.per, "samples": int(len(t)),
            "t_first": float(t[0]), "t_last": float(t[-1]),
            "used_start": float(v[0]), "used_end": float(v[-1]), "used_max": float(v.max()),
            "limit": None, "used_max_ratio": None, "full_at_t": None, "work_done": None,
            "per_unit": None, "units_per_hour": None, "runway_s": None, "runway": None,
            "campaign_s": None, "runway_vs_campaign": None, "lasts_campaign": None,
            "at_campaign_end": None,
        }
        if isinstance(resource.limit, int | float):
            row["limit"] = float(resource.limit)
        elif limits:
            lt, lv = limits.get(key) or next(iter(limits.values()))
            row["limit"] = float(lv[0]) if lv[0] > 0 else None  # 0: uncapped
        if row["limit"]:
            ratio = v / row["limit"]
            row["used_max_ratio"] = round(float(ratio.max()), 6)
            full = np.flatnonzero(ratio >= 0.999)
            row["full_at_t"] = float(t[full[0]]) if len(full) else None
        if work is not None:
            row["work_done"] = float(work[-1] - work[0])
            row["per_unit"] = slope(work.tolist(), v.tolist())
        if forecast is not None and row["per_unit"] is not None:
            row["campaign_s"] = forecast.duration
            rate = units_per_hour(forecast, row["work_done"] or 0.0, _journeys(run, lo, hi))
            row["units_per_hour"] = rate
            if rate is not None:
                row["at_campaign_end"] = (row["used_start"]
                                          + row["per_unit"] * rate * forecast.duration / 3600)
                if row["limit"]:
                    span = runway_s(limit=row["limit"], used=row["used_start"],
                                    per_unit=row["per_unit"], units_per_hour=rate)
                    row["runway_s"] = None if math.isinf(span) else round(span, 1)
                    row["runway"] = format_span(span)
                    row["runway_vs_campaign"] = round(min(span / forecast.duration,
                                                          RUNWAY_CAP), 6)
                    row["lasts_campaign"] = span >= forecast.duration
        out.append(row)
    return out


def headline(row: dict[str, Any]) -> str | None:
    """`storage full after 3 h 10 min at forecast load (1,200 orders/h); the campaign lasts 4 h`."""
    if row.get("runway") is None:
        return None
    labels = ",".join(f"{k}={v}" for k, v in row["labels"].items())
    name = row["resource"] + (f"{{{labels}}}" if labels else "")
    load = f"{row['units_per_hour']:,.0f} {_work_noun(row['per'])}/h"
    campaign = format_duration(row["campaign_s"])
    if row["runway"] == "never":
        return f"{name} does not grow with {_work_noun(row['per'])}: it lasts the campaign"
    verdict = "lasts the campaign" if row["lasts_campaign"] else "runs out during the campaign"
    return (f"{name} full after {row['runway']} at forecast load ({load}); "
            f"the campaign lasts {campaign}: it {verdict}")


def _work_noun(selector: str) -> str:
    name = Selector.parse(selector).name
    for suffix in ("_total", "_count"):
        name = name.removesuffix(suffix)
    return name.removeprefix("shop_")


def capacity_summary(run: RunData) -> dict[str, Any]:
    """capacity.json: every resource projected to the forecast, plus scrape health."""
    from shop_loadtest.judge.scrapes import scrape_totals

    forecast = forecast_of(run.meta)
    rows = [row for resource in resources_of(run.meta)
            for row in project(run, resource, forecast)]
    return {
        "schema_version": 1,
        "monitored": isinstance(run.meta.get("monitor"), dict),
        "forecast": forecast.model_dump(mode="json") if forecast else None,
        "scrapes": scrape_totals(run),
        "resources": rows,
        "headlines": [h for h in (headline(r) for r in rows) if h],
    }


def stat_runway(scope: Scope, starts: np.ndarray, ends: np.ndarray, arg: Any) -> np.ndarray:
    """`runway(storage) > 100%`: runway at the forecast as a share of the campaign."""
    import numpy as np

    from shop_loadtest.judge.monitor_stats import window_ranges

    out = np.full(len(starts), np.nan)
    resource = resource_named(scope.run.meta, arg)
    forecast = forecast_of(scope.run.meta)
    if resource is None or forecast is None:
        return out
    lo, hi = window_ranges(scope, starts, ends)
    for i in range(len(starts)):
        shares = [r["runway_vs_campaign"] for r in project(scope.run, resource, forecast,
                                                            float(lo[i]), float(hi[i]))
                  if r["runway_vs_campaign"] is not None]
        if shares:
            out[i] = min(shares)
    return out


def write_capacity(run_dir: Path, run: RunData | None = None) -> dict[str, Any] | None:
    """Write capacity.json into a run folder that was monitored or has a forecast."""
    from shop_loadtest.results import load_run, write_atomic

    run = run if run is not None else load_run(run_dir)
    if run.meta.get("monitor") is None and run.meta.get("forecast") is None:
        return None
    data = _finite(capacity_summary(run))
    write_atomic(run_dir / "capacity.json", json.dumps(data, indent=2, allow_nan=False) + "\n")
    return data


def _finite(value: Any) -> Any:
    """NaN and infinities become null: capacity.json is strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
