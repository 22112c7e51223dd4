"""Judge a run against a baseline run: did any figure of any endpoint get significantly worse?

For each endpoint (and all endpoints together) five figures are compared: p50, p95 and p99
from the merged histograms, the error rate and the throughput. A figure has **regressed** when
both hold:

1. it moved the wrong way by more than `max_regression` (relative: p95 10 ms -> 11.5 ms is
   +15%; the error rate must also rise by at least 0.1 percentage point), and
2. a one-sided Mann-Whitney U test on the runs' per-second values of that figure (the p95 of
   each second, the error rate of each second...) says the shift is real: p <= `alpha`.

The test is what keeps noise from failing a build: one slow second moves a run's p99 a lot,
but not the distribution of its seconds. Seconds, not single requests, are the samples,
because requests within a second share their fate (a GC pause, a cold cache).

    comparison = compare_runs(load_run(base_dir), load_run(new_dir))
    comparison.verdict      # ok | regression | inconclusive
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shop_loadtest.judge.budgets import format_value
from shop_loadtest.results import RunData, counts_percentiles_ms, merge_counts

ALL = "all endpoints"  # every endpoint both runs have
METRICS = {  # name -> (unit, worse when the value is "higher" or "lower")
    "p50": ("ms", "higher"), "p95": ("ms", "higher"), "p99": ("ms", "higher"),
    "error_rate": ("ratio", "higher"), "throughput": ("/s", "lower")}
QUANTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}
ERROR_RATE_FLOOR = 0.001  # an error rate must rise by 0.1 percentage point to count
EXACT_LIMIT = 9999  # below this many orderings, the test enumerates them all (exact p)
GATING = ("regression",)


@dataclass(frozen=True)
class Series:
    """One endpoint (or all) in one run: per-second samples and whole-run figures."""

    t: np.ndarray  # end times of the seconds with requests (latency, error rate samples)
    grid: np.ndarray  # end times of every second of the run (throughput samples)
    samples: dict[str, np.ndarray]  # metric -> per-second values (throughput: every second)
    overall: dict[str, float | None]  # metric -> whole-run value
    requests: int
    counts: Any = None  # merged histogram counts (for the distribution chart)


@dataclass(frozen=True)
class Delta:
    """One figure of one endpoint, base vs new, and the verdict on it."""

    endpoint: str
    metric: str
    unit: str
    base: float | None
    new: float | None
    change: float | None  # relative, (new - base) / base; None when base is 0
    p_value: float | None  # one-sided: the probability of a shift at least this bad by chance
    status: str  # regression | noise | too_short | better | ok | no_data
    n_base: int = 0
    n_new: int = 0

    def describe(self, *, endpoint: bool = True) -> str:
        where = f"{self.endpoint}: " if endpoint else ""
        return (f"{where}{self.metric} {format_value(self.base, self.unit)} -> "
                f"{format_value(self.new, self.unit)} ({format_change(self)}, "
                f"p{'' if self.p_value is not None and self.p_value < 0.001 else '='}"
                f"{format_p(self.p_value)})")


@dataclass(frozen=True)
class Comparison:
    base_name: str
    new_name: str
    max_regression: float
    alpha: float
    verdict: str  # ok | regression | inconclusive
    reasons: tuple[str, ...]
    deltas: tuple[Delta, ...]
    warnings: tuple[str, ...] = ()
    series: dict[tuple[str, str], Series] = field(default_factory=dict, repr=False)

    @property
    def regressions(self) -> list[Delta]:
        return [d for d in self.deltas if d.status in GATING]


def format_change(d: Delta) -> str:
    if d.base is None or d.new is None:
        return "n/a"
    if d.unit == "ratio":
        return f"{(d.new - d.base) * 100:+.2f} pp"
    return "new" if d.change is None else f"{d.change * 100:+.1f}%"


def format_pct(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def format_p(p: float | None) -> str:
    return "n/a" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


# --- samples --------------------------------------------------------------------------------
def endpoint_series(run: RunData, endpoints: list[str]) -> Series:
    """Per-second samples of some endpoints, merged, from the run's intervals."""
    iv = run.intervals
    rows = iv[iv["endpoint"].isin(endpoints)]
    grid = run.grid
    dts = run.ticks.groupby("t")["dt"].max() if len(run.ticks) else pd.Series(dtype=float)
    dt = dts.reindex(grid).fillna(run.interval_s).to_numpy(float)
    per_t = rows.groupby("t")[["n", "fail"]].sum().reindex(grid, fill_value=0)
    n, fail = per_t["n"].to_numpy(float), per_t["fail"].to_numpy(float)
    busy = n > 0
    positions = rows.groupby("t").indices
    index = rows.index.to_numpy()  # RunData.intervals has a RangeIndex: labels are positions
    per_second = [merge_counts(run.hists.rows("hist", index[positions[t]])) for t in grid[busy]]
    values = np.array([counts_percentiles_ms(c, list(QUANTILES.values())) for c in per_second],
                      dtype=float).reshape(len(per_second), len(QUANTILES))
    merged = merge_counts(per_second)
    whole = counts_percentiles_ms(merged, list(QUANTILES.values()))
    total, failed, duration = float(n.sum()), float(fail.sum()), run.duration_s
    samples = {q: values[:, i][~np.isnan(values[:, i])] for i, q in enumerate(QUANTILES)}
    samples["error_rate"] = fail[busy] / n[busy]
    samples["throughput"] = n / dt
    overall: dict[str, float | None] = dict(zip(QUANTILES, whole, strict=True))
    overall["error_rate"] = failed / total if total else None
    overall["throughput"] = total / duration if duration and total else None
    return Series(grid[busy], grid, samples, overall, int(total), merged)


# --- the test -------------------------------------------------------------------------------
def significance(new: np.ndarray, base: np.ndarray, worse: str) -> tuple[float | None, float]:
    """(p, smallest p these sample sizes allow) of a one-sided Mann-Whitney U test that
    `new` is worse (`higher` or `lower`) than `base`.

    >>> slow, fast = np.array([30.0, 31, 29, 32]), np.array([10.0, 11, 10, 12])
    >>> p, floor = significance(slow, fast, "higher")
    >>> round(p, 4), round(floor, 4)
    (0.0143, 0.0143)
    """
    from scipy.stats import PermutationMethod, mannwhitneyu

    n_new, n_base = len(new), len(base)
    if not n_new or not n_base:
        return None, 1.0
    # The most extreme of the C(n_new + n_base, n_new) orderings of the samples.
    log_orderings = (math.lgamma(n_new + n_base + 1) - math.lgamma(n_new + 1)
                     - math.lgamma(n_base + 1))
    floor = math.exp(-log_orderings)
    if np.all(new == new[0]) and np.all(base == new[0]):
        return 1.0, floor
    # Small samples: enumerate every ordering (exact, even with ties); large: normal approx.
    exact = log_orderings <= math.log(EXACT_LIMIT)
    method: Any = PermutationMethod() if exact else "asymptotic"
    result = mannwhitneyu(new, base, alternative="greater" if worse == "higher" else "less",
                          method=method)
    return float(result.pvalue), floor


def judge(endpoint: str, metric: str, base: Series, new: Series, *, max_regression: float,
          alpha: float) -> Delta:
    """One figure: ok, better, or worse by more than `max_regression` - and was it real?"""
    unit, worse = METRICS[metric]
    b, n = base.overall[metric], new.overall[metric]
    xs, ys = new.samples[metric], base.samples[metric]
    common: dict[str, Any] = {"endpoint": endpoint, "metric": metric, "unit": unit, "base": b,
                              "new": n, "n_base": len(ys), "n_new": len(xs)}
    if b is None or n is None:
        return Delta(change=None, p_value=None, status="no_data", **common)
    change = (n - b) / b if b else None
    rise = n - b if worse == "higher" else b - n  # > 0: worse
    relative = math.inf if not b and rise > 0 else (rise / abs(b) if b else 0.0)
    floor_ok = metric != "error_rate" or abs(n - b) >= ERROR_RATE_FLOOR
    p_worse, min_p = significance(xs, ys, worse)
    if relative > max_regression and floor_ok:
        if p_worse is not None and p_worse <= alpha:
            status = "regression"
        else:
            status = "too_short" if min_p > alpha else "noise"
        return Delta(change=change, p_value=p_worse, status=status, **common)
    if -relative > max_regression and floor_ok:
        p_better, _ = significance(xs, ys, "lower" if worse == "higher" else "higher")
        if p_better is not None and p_better <= alpha:
            return Delta(change=change, p_value=p_better, status="better", **common)
    return Delta(change=change, p_value=p_worse, status="ok", **common)


def _comparable(base: RunData, new: RunData) -> list[str]:
    """Warnings when the two runs did not play the same campaign."""
    out = []
    for key in ("scenario", "model", "speedup"):
        if base.meta.get(key) != new.meta.get(key):
            out.append(f"different {key}: {base.meta.get(key)!r} in the base run, "
                       f"{new.meta.get(key)!r} in the new one")
    shape = [[(s.get("name"), s.get("start_s"), s.get("end_s"), s.get("to")) for s in r.stages]
             for r in (base, new)]
    if shape[0] != shape[1]:
        out.append("the two runs have different stages: figures may differ for that reason")
    for label, run in (("base", base), ("new", new)):
        if run.meta.get("exit_reason") != "completed":
            out.append(f"the {label} run did not complete "
                       f"(exit_reason {run.meta.get('exit_reason')!r}): it is partial")
    return out


def _untrusted(base: RunData, new: RunData) -> list[str]:
    from shop_loadtest.judge.verdict import generator_health

    out = []
    for label, run in (("base", base), ("new", new)):
        if not int(run.intervals["n"].sum()):
            out.append(f"the {label} run recorded no requests")
        out += [f"{label} run: {problem}" for problem in generator_health(run)["problems"]]
    return out


def compare_runs(base: RunData, new: RunData, *, max_regression: float = 0.10,
                 alpha: float = 0.05) -> Comparison:
    """Judge every endpoint's figures of `new` against `base`."""
    names = list(dict.fromkeys([*base.endpoints, *new.endpoints]))
    common = [n for n in names if n in base.endpoints and n in new.endpoints]
    warnings = _comparable(base, new)
    warnings += [f"{n} is only in the {'base' if n in base.endpoints else 'new'} run, left out"
                 for n in names if n not in common]
    series: dict[tuple[str, str], Series] = {}
    deltas: list[Delta] = []
    for name in [ALL, *common] if common else []:
        chosen = common if name == ALL else [name]
        sb, sn = endpoint_series(base, chosen), endpoint_series(new, chosen)
        series[("base", name)], series[("new", name)] = sb, sn
        deltas += [judge(name, m, sb, sn, max_regression=max_regression, alpha=alpha)
                   for m in METRICS]
    untrusted = _untrusted(base, new)
    regressions = [d for d in deltas if d.status in GATING]
    too_short = [d for d in deltas if d.status == "too_short"]
    if not common:
        untrusted.append("the two runs have no endpoint in common")
    if untrusted:
        verdict = "inconclusive"
        reasons = untrusted + _by_endpoint("(not trusted) regression in ", regressions)
    elif regressions:
        verdict, reasons = "regression", _by_endpoint("regression in ", regressions)
    elif too_short:
        verdict = "inconclusive"
        reasons = [f"worse by more than {format_pct(max_regression)} but the runs are too short to "
                   f"tell noise from a real change ({d.n_base} and {d.n_new} seconds): "
                   f"{d.describe()}" for d in too_short]
    else:
        verdict = "ok"
        reasons = [f"no figure worse by more than {format_pct(max_regression)} with p <= {alpha:g}"]
    return Comparison(base_name=_name(base), new_name=_name(new), max_regression=max_regression,
                      alpha=alpha, verdict=verdict, reasons=tuple(reasons),
                      deltas=tuple(deltas), warnings=tuple(warnings), series=series)


def _by_endpoint(prefix: str, deltas: list[Delta]) -> list[str]:
    """One reason per endpoint: `regression in GET /x: p95 12.0 ms -> 34.2 ms (+185%, p=0.014)`."""
    grouped: dict[str, list[Delta]] = {}
    for d in deltas:
        grouped.setdefault(d.endpoint, []).append(d)
    return [prefix + f"{name}: " + "; ".join(d.describe(endpoint=False) for d in items)
            for name, items in grouped.items()]


def _name(run: RunData) -> str:
    return run.run_dir.name if run.run_dir else str(run.meta.get("scenario", "?"))
