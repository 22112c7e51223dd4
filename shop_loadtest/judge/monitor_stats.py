"""Statistics over the target metrics a run recorded in monitor.jsonl, for budgets and the
capacity report: `used(storage) < 80%`, `gauge_max(...)`, `rate(...)`.

These read a finished run's monitor dataframe (see `shop_loadtest.run.monitor` for how it is
recorded); stats.py registers them as budget statistics. numpy is imported inside each
function, so loading a scenario never pulls it in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shop_loadtest.scenario.options import DEFAULT_RESOURCES, Resource, Selector, config_of

if TYPE_CHECKING:  # pandas and numpy are for judging a finished run, not for loading a scenario
    import numpy as np
    import pandas as pd

    from shop_loadtest.results import Scope

    SeriesMap = dict[tuple[tuple[str, str], ...], tuple[np.ndarray, np.ndarray]]


def series(monitor: pd.DataFrame, selector: Selector) -> SeriesMap:
    """Matching samples of successful scrapes, per label set: (t, value), sorted by t."""
    import numpy as np

    out: SeriesMap = {}
    if monitor.empty:
        return out
    rows = monitor[(monitor["name"].astype(str).str.lower() == selector.name.lower())
                   & monitor["value"].notna() & monitor["t"].notna()]
    groups: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for t, labels, value in zip(rows["t"], rows["labels"], rows["value"], strict=True):
        labels = labels if isinstance(labels, dict) else {}
        if selector.matches(selector.name, labels):
            key = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
            groups.setdefault(key, []).append((float(t), float(value)))
    for key, points in groups.items():
        points.sort()
        out[key] = (np.array([p[0] for p in points]), np.array([p[1] for p in points]))
    return out


def resources_of(meta: dict[str, Any]) -> list[Resource]:
    config = config_of(meta)
    return list(config.resources) if config else list(DEFAULT_RESOURCES)


def resource_named(meta: dict[str, Any], name: str | None) -> Resource | None:
    wanted = (name or "storage").lower()
    return next((r for r in resources_of(meta) if r.name.lower() == wanted), None)


def used_ratio(monitor: pd.DataFrame, resource: Resource
               ) -> tuple[np.ndarray, np.ndarray]:
    """(t, used / limit) of a resource across its label sets; empty without a known limit."""
    import numpy as np

    used = series(monitor, Selector.parse(resource.used))
    limits: SeriesMap
    if isinstance(resource.limit, int | float):
        limits = {(): (np.array([-math.inf]), np.array([float(resource.limit)]))}
    elif resource.limit is not None:
        limits = series(monitor, Selector.parse(resource.limit))
    else:
        limits = {}
    ts, ratios = [], []
    for key, (t, v) in used.items():
        limit = limits.get(key) or (next(iter(limits.values())) if len(limits) == 1 else None)
        if limit is None:
            continue
        lt, lv = limit
        at = np.clip(np.searchsorted(lt, t, side="right") - 1, 0, len(lt) - 1)
        cap = lv[at]
        ok = cap > 0  # 0 means "no limit" (the demo shop without --storage-limit-mb)
        ts.append(t[ok])
        ratios.append(v[ok] / cap[ok])
    if not ts:
        return np.empty(0), np.empty(0)
    t_all, r_all = np.concatenate(ts), np.concatenate(ratios)
    order = np.argsort(t_all, kind="stable")
    return t_all[order], r_all[order]


def window_ranges(scope: Scope, starts: np.ndarray, ends: np.ndarray, *, stretch: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Each window of a budget's scope as a time range (lo, hi] of monitor `t`.

    With `stretch`, a scope covering the whole run stretches its first and last windows to
    the scrapes taken before the load started and after it stopped (the state before and
    after matters for a level; not for a rate).
    """
    import numpy as np

    t, dt = scope.t, scope.dt
    lo, hi = t[starts] - dt[starts], t[ends - 1].astype(float)
    if stretch and len(t) == len(scope.run.grid):
        lo = np.where(starts == 0, -math.inf, lo)
        hi = np.where(ends == len(t), math.inf, hi)
    return lo, hi


def _per_window(t: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                reduce: Callable[[slice], float]) -> np.ndarray:
    import numpy as np

    a = np.searchsorted(t, lo, side="right")
    b = np.searchsorted(t, hi, side="right")
    return np.array([reduce(slice(i, j)) if j > i else math.nan
                     for i, j in zip(a.tolist(), b.tolist(), strict=True)], dtype=float)


def stat_used(scope: Scope, starts: np.ndarray, ends: np.ndarray, arg: Any) -> np.ndarray:
    """`used(storage)`: the highest used/limit seen in each window (a ratio)."""
    import numpy as np

    resource = resource_named(scope.run.meta, arg)
    if resource is None:
        return np.full(len(starts), np.nan)
    t, ratio = used_ratio(scope.run.monitor, resource)
    ratio = project_growth(ratio, speedup_of(scope.run.meta))
    lo, hi = window_ranges(scope, starts, ends)
    return _per_window(t, lo, hi, lambda s: float(ratio[s].max()))


def speedup_of(meta: dict[str, Any]) -> float:
    try:
        speedup = float(meta.get("speedup") or 1.0)
    except (TypeError, ValueError):
        return 1.0
    return speedup if speedup > 0 and math.isfinite(speedup) else 1.0


def project_growth(ratio: Any, speedup: float) -> Any:
    """A cumulative resource's share as the real campaign would fill it.

    A resource grows with the work done (its `per` counter: orders, journeys). Under
    `--speedup N` the shape is N times shorter at the same rates, so the run does 1/N of the
    campaign's work and the resource grows 1/N as much: `used(storage) < 80%` on the run's own
    figures would judge a tenth of the writes. The growth since the first scrape is taken N
    times: exact for a fixed limit, as a storage cap is, up to the limit.
    """
    if speedup == 1.0 or not len(ratio):
        return ratio
    import numpy as np

    # A resource cannot be fuller than full: a projection past the limit reads 100% (the run
    # did not go further, so neither can its projection), unless the run itself went beyond.
    return np.minimum(ratio[0] + (ratio - ratio[0]) * speedup, np.maximum(ratio, 1.0))


def used_note(scope: Scope) -> str:
    """What the report says about a `used(...)` budget judged under a speedup."""
    speedup = speedup_of(scope.run.meta)
    if speedup == 1.0:
        return ""
    return (f"projected to the real campaign: the growth measured under --speedup {speedup:g} "
            f"taken {speedup:g} times (the run did 1/{speedup:g} of the campaign's work)")


def stat_gauge_max(scope: Scope, starts: np.ndarray, ends: np.ndarray,
                   arg: Selector) -> np.ndarray:
    """`gauge_max(shop_open_connections)`: the highest value of any matching series."""
    import numpy as np

    parts = list(series(scope.run.monitor, arg).values()) if arg is not None else []
    if not parts:
        return np.full(len(starts), np.nan)
    t = np.concatenate([p[0] for p in parts])
    v = np.concatenate([p[1] for p in parts])
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    lo, hi = window_ranges(scope, starts, ends)
    return _per_window(t, lo, hi, lambda s: float(v[s].max()))


def increase(values: np.ndarray) -> float:
    """What a counter gained over consecutive samples; a drop is a restart (from zero)."""
    import numpy as np

    deltas = np.diff(values)
    return float(np.where(deltas >= 0, deltas, values[1:]).sum())


def stat_rate(scope: Scope, starts: np.ndarray, ends: np.ndarray, arg: Selector) -> np.ndarray:
    """`rate(shop_orders_total)`: counter increase per second, summed over matching series."""
    import numpy as np

    parts = list(series(scope.run.monitor, arg).values()) if arg is not None else []
    lo, hi = window_ranges(scope, starts, ends, stretch=False)
    out = np.full(len(starts), np.nan)
    for i in range(len(starts)):
        gained, span = 0.0, 0.0
        for t, v in parts:
            keep = (t > lo[i]) & (t <= hi[i])
            if keep.sum() >= 2:
                gained += increase(v[keep])
                span = max(span, float(t[keep][-1] - t[keep][0]))
        if span > 0:
            out[i] = gained / span
    return out
