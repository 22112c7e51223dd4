"""The table of statistics budgets and abort rules can name, and how each is computed.

`STATS` maps a name to a `Stat`: its kind (which decides how a limit is written) and a function
that returns one value per window of a scope. Add an entry to add a statistic; the parser in
`shop_loadtest.budgets`, the windows, the report and the messages follow (docs/budgets.md).

>>> STATS["error_rate"].kind
'ratio'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shop_loadtest import monitor_stats, runway

if TYPE_CHECKING:  # results imports pandas: parsing (scenario validation) does not need it
    from shop_loadtest.results import Counts, Scope

Compute = Callable[["Scope", np.ndarray, np.ndarray, Any], np.ndarray]


@dataclass(frozen=True)
class Stat:
    """A statistic budgets can name.

    `kind` decides how the limit is written (latency: 500ms; ratio: 1%; rate: 100/s; count).
    `compute(scope, starts, ends, arg)` returns one value per window `[starts[i], ends[i])` of
    the scope's slots, NaN where there is no data. `parse_arg` accepts `stat(arg)`.
    """

    kind: str
    compute: Compute
    help: str
    parse_arg: Callable[[str], Any] | None = None
    no_data: str = ""
    note: Callable[[Scope], str] | None = None  # said beside the result (how it was judged)


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


def sliding_percentile(slots: Sequence[list[Counts]], starts: np.ndarray, ends: np.ndarray,
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


def _percentile(scope: Scope, column: str, starts: np.ndarray, ends: np.ndarray, q: float
                ) -> np.ndarray:
    """Percentile q of each window; the whole scope straight from its merged histogram."""
    if len(starts) == 1 and starts[0] == 0 and ends[0] == len(scope.t):
        from shop_loadtest.results import counts_percentile_ms

        value = counts_percentile_ms(scope.merged(column), q)
        return np.array([np.nan if value is None else value])
    return sliding_percentile(scope.counts(column), starts, ends, q)


def _status_class(raw: str) -> str:
    text = raw.strip().lower()
    if not re.fullmatch(r"[1-5](?:xx|\d\d)", text):
        raise ValueError(f"error_rate(...) takes a status class such as 5xx or 4xx, or a "
                         f"status code such as 503; got {raw!r}")
    return text


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


# The one table of statistics. `pNN` stands for any percentile (p50, p95, p99.9): the parser
# maps `p95` to ("pNN", 95.0). Add an entry here to add a statistic (e.g. monitor metrics).
STATS: dict[str, Stat] = {
    "pNN": Stat("latency", lambda sc, s, e, q: _percentile(sc, "hist", s, e, q),
                "response time percentile, from merged histograms"),
    "pNN_due": Stat(
        "latency", lambda sc, s, e, q: _percentile(sc, "hist_due", s, e, q),
        "percentile of latency counted from when the request was due (open model)",
        no_data="no due-time latencies recorded: pNN_due needs the open model "
                "(load.model: arrival_rate)"),
    "mean": Stat("latency", lambda sc, s, e, _: _ratio(_wsum(sc.total("sum_ms"), s, e),
                                                       _wsum(sc.total("n"), s, e)),
                 "mean response time"),
    "max": Stat("latency", lambda sc, s, e, _: _wreduce(sc.extreme("max_ms", np.fmax), s, e,
                                                        np.max), "slowest response"),
    "min": Stat("latency", lambda sc, s, e, _: _wreduce(sc.extreme("min_ms", np.fmin), s, e,
                                                        np.min), "fastest response"),
    "error_rate": Stat("ratio", _error_rate,
                       "failed / all requests; error_rate(5xx) counts only HTTP 5xx failures",
                       parse_arg=_status_class),
    "throughput": Stat("rate", lambda sc, s, e, _: _ratio(_wsum(sc.total("n"), s, e),
                                                          _wsum(sc.dt, s, e)),
                       "requests per second over the scope"),
    "count": Stat("count", _counted("n"), "number of requests"),
    "failures": Stat("count", _counted("fail"), "number of failed requests"),
    # Target metrics scraped by the monitor (docs/monitoring.md, docs/capacity.md).
    "used": Stat("ratio", monitor_stats.stat_used,
                 "highest used/limit of a resource: used(storage)",
                 parse_arg=monitor_stats.parse_resource, no_data=monitor_stats.NO_SAMPLES,
                 note=monitor_stats.used_note),
    "gauge_max": Stat("count", monitor_stats.stat_gauge_max, "highest value of a gauge: "
                      "gauge_max(shop_open_connections)",
                      parse_arg=monitor_stats.parse_selector, no_data=monitor_stats.NO_SAMPLES),
    "rate": Stat("rate", monitor_stats.stat_rate, "increase per second of a counter: "
                 "rate(shop_orders_total)", parse_arg=monitor_stats.parse_selector,
                 no_data=monitor_stats.NO_SAMPLES),
    "runway": Stat("ratio", runway.stat_runway, "time until a resource is full at the "
                   "forecast, as a share of the campaign: runway(storage) > 100%",
                   parse_arg=monitor_stats.parse_resource, no_data=runway.RUNWAY_NO_DATA),
}


def stat_names() -> list[str]:
    """The statistics as users write them (for messages and suggestions)."""
    examples = {"pNN": ["p50", "p90", "p95", "p99", "p99.9"], "pNN_due": ["p95_due", "p99_due"]}
    return [name for key in STATS for name in examples.get(key, [key])]
