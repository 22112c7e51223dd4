"""How each statistic a budget can name is computed over a run.

The names, their kinds and arguments are the grammar's (`shop_loadtest.scenario.budgets.STATS`);
`COMPUTE` maps each name to a function that returns one value per window `[starts[i], ends[i])`
of a scope's slots, NaN where there is no data. Add a statistic in both tables (docs/budgets.md;
tests/test_budgets.py checks that they name the same statistics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from shop_loadtest.judge import monitor_stats, runway

if TYPE_CHECKING:  # results imports pandas: importing this module does not need it
    from shop_loadtest.results import Counts, Scope

Compute = Callable[["Scope", np.ndarray, np.ndarray, Any], np.ndarray]


def _wsum(x: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    cumulative = np.concatenate([[0.0], np.cumsum(x, dtype=float)])
    return cumulative[ends] - cumulative[starts]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(len(num), np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def _wreduce(x: np.ndarray, starts: np.ndarray, ends: np.ndarray,
             reduce: Callable[[np.ndarray], Any]) -> np.ndarray:
    out = np.full(len(starts), np.nan)
    for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        part = x[s:e][~np.isnan(x[s:e])]
        if len(part):
            out[i] = reduce(part)
    return out


def sliding_percentile(slots: list[list[Counts]], starts: np.ndarray, ends: np.ndarray,
                       q: float) -> np.ndarray:
    """Percentile q over each window of per-slot histograms, merged exactly.

    Windows that move forward reuse a running histogram: add the slots that enter, take
    away those that leave.
    """
    from shop_loadtest.results import dense_percentile_ms, empty_dense

    dense = empty_dense()
    lo = hi = 0
    out = np.full(len(starts), np.nan)
    for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        if s < lo or s > hi or e < hi:
            dense[:] = 0
            lo = hi = s
        for k in range(hi, e):
            for c in slots[k]:
                dense[c.idx] += c.cnt
        for k in range(lo, s):
            for c in slots[k]:
                dense[c.idx] -= c.cnt
        lo, hi = s, e
        value = dense_percentile_ms(dense, q)
        out[i] = np.nan if value is None else value
    return out


def _kind_matcher(status: str) -> Callable[[str], bool]:
    def matches(kind: str) -> bool:
        code = kind[5:] if kind.startswith("HTTP ") else ""
        if len(code) != 3 or not code.isdigit():
            return False
        return code == status or (status.endswith("xx") and code[0] == status[0])
    return matches


def _error_rate(scope: Scope, s: np.ndarray, e: np.ndarray, arg: Any) -> np.ndarray:
    failed = scope.total("fail") if arg is None else scope.failures_where(_kind_matcher(arg))
    return _ratio(_wsum(failed, s, e), _wsum(scope.total("n"), s, e))


def _counted(column: str) -> Compute:
    def compute(scope: Scope, s: np.ndarray, e: np.ndarray, arg: Any) -> np.ndarray:
        return _wsum(scope.total(column), s, e)
    return compute


# One entry per statistic of the grammar's STATS; `pNN` is any percentile (arg: 95.0).
COMPUTE: dict[str, Compute] = {
    "pNN": lambda sc, s, e, q: sliding_percentile(sc.counts("hist"), s, e, q),
    "pNN_due": lambda sc, s, e, q: sliding_percentile(sc.counts("hist_due"), s, e, q),
    "mean": lambda sc, s, e, _: _ratio(_wsum(sc.total("sum_ms"), s, e), _wsum(sc.total("n"), s, e)),
    "max": lambda sc, s, e, _: _wreduce(sc.extreme("max_ms", np.fmax), s, e, np.max),
    "min": lambda sc, s, e, _: _wreduce(sc.extreme("min_ms", np.fmin), s, e, np.min),
    "error_rate": _error_rate,
    "throughput": lambda sc, s, e, _: _ratio(_wsum(sc.total("n"), s, e), _wsum(sc.dt, s, e)),
    "count": _counted("n"),
    "failures": _counted("fail"),
    # Target metrics scraped by the monitor (docs/monitoring.md, docs/capacity.md).
    "used": monitor_stats.stat_used,
    "gauge_max": monitor_stats.stat_gauge_max,
    "rate": monitor_stats.stat_rate,
    "runway": runway.stat_runway,
}
