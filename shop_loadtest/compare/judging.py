"""Judge a run against a baseline run: did any figure of any endpoint get clearly worse?

For each endpoint (and all endpoints together) five whole-run figures are compared: p50, p95
and p99 of the merged HDR histograms, the error rate and the throughput. A figure has
**regressed** when the change is larger than the user's floor *with confidence*: the one-sided
(1 - alpha) lower bound of the change, from a block bootstrap over intervals
(compare/bootstrap.py), is above the floor. The floor of a latency is the larger of
`floors.latency_ms` and `floors.relative` of the base (defaults: +5 ms, +10%); of the error
rate `floors.error_rate` (0.5 percentage points); of the throughput `floors.relative` of the base
(a drop of 10%).

So a tiny shift never fails a build however sure it is (the floor), and a big shift in one noisy
run never does either (the bound). A comparison with an untrustworthy side (busy machine,
saturated generator, load not delivered, no requests) is `inconclusive`: those make a release
look slower or faster than it is.

    comparison = compare_runs(load_run(base_dir), load_run(new_dir))
    comparison.verdict      # ok | regression | inconclusive
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from shop_loadtest.compare.bootstrap import QUANTILES, RESAMPLES, Resampling, Sample, seed_for
from shop_loadtest.compare.sides import Side
from shop_loadtest.judge.budgets import format_value
from shop_loadtest.results import Counts, RunData, merge_counts

ALL = "all endpoints"  # every endpoint both runs have
METRICS = {  # name -> (unit, worse when the value is "higher" or "lower")
    "p50": ("ms", "higher"), "p95": ("ms", "higher"), "p99": ("ms", "higher"),
    "error_rate": ("ratio", "higher"), "throughput": ("/s", "lower")}
MIN_SLOTS = 5  # fewer seconds with requests than this: too short to resample
GATING = ("regression",)


@dataclass(frozen=True)
class Floors:
    """The smallest change that matters: a regression must be larger than this."""

    relative: float = 0.10  # latency and throughput, of the base value
    latency_ms: float = 5.0  # latency, absolute: also at least this much
    error_rate: float = 0.005  # error rate, absolute (0.5 percentage points)

    def of(self, metric: str, base: float) -> float:
        """The floor of one figure, in its own unit, as an amount in the worse direction."""
        if metric in QUANTILES:
            return max(self.latency_ms, self.relative * abs(base))
        if metric == "error_rate":
            return self.error_rate
        return self.relative * abs(base)

    def describe(self) -> str:
        return (f"latency +{self.latency_ms:g} ms and +{self.relative * 100:g}%, error rate "
                f"+{self.error_rate * 100:g} pp, throughput -{self.relative * 100:g}%")


@dataclass(frozen=True)
class Delta:
    """One figure of one endpoint, base vs new, and the verdict on it.

    `change`, `low`, `high` and `floor` are in the figure's unit, signed as new - base;
    [low, high] is the bootstrap interval of the change at 1 - 2 alpha (each end one-sided
    1 - alpha)."""

    endpoint: str
    metric: str
    unit: str
    base: float | None
    new: float | None
    change: float | None
    low: float | None
    high: float | None
    floor: float | None  # the change that must be exceeded, signed in the worse direction
    p_value: float | None  # bootstrap: the share of replicates no worse than the floor
    status: str  # regression | noise | too_short | better | ok | no_data
    n_base: int = 0  # seconds with requests
    n_new: int = 0

    @property
    def relative(self) -> float | None:
        if self.base is None or self.change is None or not self.base:
            return None
        return self.change / abs(self.base)

    def describe(self, *, endpoint: bool = True) -> str:
        where = f"{self.endpoint}: " if endpoint else ""
        return (f"{where}{self.metric} {format_value(self.base, self.unit)} -> "
                f"{format_value(self.new, self.unit)} ({format_change(self)}; "
                f"interval {format_interval(self)}; floor {format_amount(self.floor, self.unit)})")


@dataclass(frozen=True)
class Comparison:
    base_name: str
    new_name: str
    floors: Floors
    alpha: float
    verdict: str  # ok | regression | inconclusive
    reasons: tuple[str, ...]
    deltas: tuple[Delta, ...]
    warnings: tuple[str, ...] = ()
    sides: tuple[Side, ...] = ()
    seed: int = 0
    resamples: int = RESAMPLES
    distributions: dict[tuple[str, str], Counts | None] = field(default_factory=dict, repr=False)

    @property
    def regressions(self) -> list[Delta]:
        return [d for d in self.deltas if d.status in GATING]

    @property
    def improvements(self) -> list[Delta]:
        return [d for d in self.deltas if d.status == "better"]


def format_amount(value: float | None, unit: str, *, sign: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "ratio":
        return f"{value * 100:+.2f} pp" if sign else f"{value * 100:.2f} pp"
    if unit == "ms":
        text = f"{value:+.1f} ms" if abs(value) < 100 else f"{value:+.0f} ms"
    else:
        text = f"{value:+.1f}{unit}"
    return text if sign else text.lstrip("+")


def format_change(d: Delta) -> str:
    if d.base is None or d.new is None or d.change is None:
        return "n/a"
    text = format_amount(d.change, d.unit)
    relative = d.relative
    if d.unit != "ratio" and relative is not None:
        text += f", {relative * 100:+.1f}%"
    return text


def format_interval(d: Delta) -> str:
    if d.low is None or d.high is None:
        return "n/a"
    return f"{format_amount(d.low, d.unit)} .. {format_amount(d.high, d.unit)}"


def format_pct(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def format_p(p: float | None) -> str:
    return "n/a" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _value(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def judge(endpoint: str, metric: str, base: np.ndarray, new: np.ndarray, *, floors: Floors,
          alpha: float, n_base: int, n_new: int) -> Delta:
    """One figure from its bootstrap arrays (index 0: the real run; the rest: replicates)."""
    unit, worse = METRICS[metric]
    b, n = _value(base[0]), _value(new[0])
    common: dict[str, Any] = {"endpoint": endpoint, "metric": metric, "unit": unit, "base": b,
                              "new": n, "n_base": n_base, "n_new": n_new}
    if b is None or n is None:
        return Delta(change=None, low=None, high=None, floor=None, p_value=None,
                     status="no_data", **common)
    sign = 1.0 if worse == "higher" else -1.0
    floor = floors.of(metric, b)
    diff = new[1:] - base[1:]
    diff = diff[~np.isnan(diff)]
    change = n - b
    low = high = None
    if len(diff):
        low, high = (float(v) for v in np.quantile(diff, [alpha, 1.0 - alpha]))
    worse_by = sign * change
    worse_low = sign * (low if sign > 0 else high) if low is not None and high is not None \
        else None
    better_high = sign * (high if sign > 0 else low) if low is not None and high is not None \
        else None
    p_value = (float((1 + np.sum(sign * diff <= floor)) / (len(diff) + 1))
               if len(diff) else None)
    short = min(n_base, n_new) < MIN_SLOTS
    if worse_by > floor:
        if short or worse_low is None:
            status = "too_short"
        else:
            status = "regression" if worse_low > floor else "noise"
    elif -worse_by > floor and not short and better_high is not None and better_high < -floor:
        status = "better"
    else:
        status = "ok"
    return Delta(change=change, low=low, high=high, floor=sign * floor, p_value=p_value,
                 status=status, **common)


def _comparable(base: RunData, new: RunData, sides: tuple[Side, Side]) -> list[str]:
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
    for side in sides:
        if not side.machine.sampled:
            out.append(f"the {side.label} run has no machine samples (recorded by an older "
                       "version): a busy machine cannot be ruled out")
    return out


def compare_runs(base: RunData, new: RunData, *, floors: Floors | None = None,
                 alpha: float = 0.05, seed: int = 0, resamples: int = RESAMPLES,
                 tolerate_busy_machine: bool = False) -> Comparison:
    """Judge every endpoint's figures of `new` against `base`."""
    floors = floors or Floors()
    names = list(dict.fromkeys([*base.endpoints, *new.endpoints]))
    common = [n for n in names if n in base.endpoints and n in new.endpoints]
    sides = (Side.of(base, "base", tolerate_busy_machine=tolerate_busy_machine),
             Side.of(new, "new", tolerate_busy_machine=tolerate_busy_machine))
    warnings = _comparable(base, new, sides)
    warnings += [f"{s.label} run: {s.machine.problem} (tolerated)" for s in sides
                 if tolerate_busy_machine and s.machine.problem]
    warnings += [f"{n} is only in the {'base' if n in base.endpoints else 'new'} run, left out"
                 for n in names if n not in common]
    deltas: list[Delta] = []
    distributions: dict[tuple[str, str], Counts | None] = {}
    if common:
        samples = {label: {name: Sample.of(run, common if name == ALL else [name])
                           for name in [ALL, *common]}
                   for label, run in (("base", base), ("new", new))}
        figures: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for label in ("base", "new"):
            # One resampling per run, shared by its endpoints: the same pretend runs for all.
            plan = Resampling.plan(samples[label][ALL], seed=seed_for(seed, label),
                                   resamples=resamples)
            figures[label] = {name: plan.figures(s) for name, s in samples[label].items()}
        for name in [ALL, *common]:
            sb, sn = samples["base"][name], samples["new"][name]
            deltas += [judge(name, m, figures["base"][name][m], figures["new"][name][m],
                             floors=floors, alpha=alpha, n_base=sb.busy_slots,
                             n_new=sn.busy_slots) for m in METRICS]
        for label, run in (("base", base), ("new", new)):
            for name in [ALL, *common]:
                chosen = common if name == ALL else [name]
                rows = np.flatnonzero(run.intervals["endpoint"].isin(chosen).to_numpy())
                distributions[(label, name)] = merge_counts(run.hists.rows("hist", rows))
    untrusted = [p for side in sides for p in side.problems]
    kinds = {sides[0].target_kind, sides[1].target_kind}
    if len(kinds) > 1 and "unknown" not in kinds:
        untrusted.append(f"the runs hit different kinds of target: {sides[0].target_kind} in "
                         f"the base run, {sides[1].target_kind} in the new one")
    elif sides[0].host != sides[1].host and "demo" not in kinds and not all(
            _loopback(side.host) for side in sides):
        warnings.append(f"different hosts: {sides[0].host} in the base run, {sides[1].host} "
                        "in the new one")
    if not common:
        untrusted.append("the two runs have no endpoint in common")
    regressions = [d for d in deltas if d.status in GATING]
    too_short = [d for d in deltas if d.status == "too_short"]
    if untrusted:
        verdict = "inconclusive"
        reasons = untrusted + _by_endpoint("(not trusted) regression in ", regressions)
    elif regressions:
        verdict, reasons = "regression", _by_endpoint("regression in ", regressions)
    elif too_short:
        verdict = "inconclusive"
        reasons = [f"beyond the floor but the runs are too short to resample ({d.n_base} and "
                   f"{d.n_new} seconds with requests; at least {MIN_SLOTS} needed): "
                   f"{d.describe()}" for d in too_short]
    else:
        verdict = "ok"
        reasons = [f"no figure worse than its floor ({floors.describe()}) with "
                   f"{(1 - alpha) * 100:g}% confidence"]
    return Comparison(base_name=sides[0].name, new_name=sides[1].name, floors=floors,
                      alpha=alpha, verdict=verdict, reasons=tuple(reasons),
                      deltas=tuple(deltas), warnings=tuple(warnings), sides=sides, seed=seed,
                      resamples=resamples, distributions=distributions)


def _loopback(host: str | None) -> bool:
    """A loopback target (a test server on a fresh port each run is still the same one)."""
    name = urlsplit(host or "").hostname or ""
    return name == "localhost" or name.startswith("127.") or name == "::1"


def _by_endpoint(prefix: str, deltas: list[Delta]) -> list[str]:
    """One reason per endpoint: `regression in GET /x: p95 12.0 ms -> 34.2 ms (...)`."""
    grouped: dict[str, list[Delta]] = {}
    for d in deltas:
        grouped.setdefault(d.endpoint, []).append(d)
    return [prefix + f"{name}: " + "; ".join(d.describe(endpoint=False) for d in items)
            for name, items in grouped.items()]
