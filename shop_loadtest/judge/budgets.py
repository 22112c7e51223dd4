"""Judge a run against budgets and abort rules (parsed by `shop_loadtest.scenario.budgets`).

A budget holds when its comparison is true over its scope (every window, with `for`); an
abort rule stops the run as soon as its comparison becomes true.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shop_loadtest.judge.model import BudgetRow
from shop_loadtest.judge.stats import COMPUTE, NOTES
from shop_loadtest.results import rounded
from shop_loadtest.scenario.budgets import STATS, AbortRule, Budget

if TYPE_CHECKING:  # results imports pandas
    from shop_loadtest.results import RunData, Scope


@dataclass(frozen=True)
class BudgetResult:
    """How a budget fared. Times are run seconds; windows are (start, end) of a window."""

    expr: str
    observed: float | None
    limit: float
    unit: str
    op: Literal["<", "<=", ">", ">="]
    passed: bool
    status: Literal["pass", "fail", "no_data"]
    scope: str
    stat: str = ""
    endpoint: str | None = None
    window_s: float | None = None
    first_breach: tuple[float, float] | None = None
    worst_window: tuple[float, float] | None = None
    breaches: tuple[tuple[float, float], ...] = ()
    note: str = ""

    @property
    def first_breach_t(self) -> float | None:
        return self.first_breach[1] if self.first_breach else None

    def to_json(self) -> BudgetRow:
        return {
            "expr": self.expr, "stat": self.stat, "endpoint": self.endpoint, "op": self.op,
            "observed": rounded(self.observed, 6), "limit": round(self.limit, 6),
            "unit": self.unit,
            "passed": self.passed, "status": self.status, "scope": self.scope,
            "window_s": self.window_s, "first_breach_t": self.first_breach_t,
            "first_breach": list(self.first_breach) if self.first_breach else None,
            "worst_window": list(self.worst_window) if self.worst_window else None,
            "breaches": [list(b) for b in self.breaches], "note": self.note,
        }


@dataclass(frozen=True)
class AbortHit:
    """The abort rule that became true first, when, and what it saw."""

    expr: str
    t: float
    observed: float
    limit: float
    unit: str
    window: tuple[float, float] = (0.0, 0.0)


# --- judging --------------------------------------------------------------------------------
def evaluate(budgets: list[Budget], run: RunData) -> list[BudgetResult]:
    """Judge each budget against a run; scopes shared by several budgets are built once."""
    from shop_loadtest.results import build_scope

    scopes: dict[tuple[Any, ...], Scope] = {}
    results = []
    for budget in budgets:
        key = (budget.endpoint, budget.stage, budget.excluding_ramps)
        if key not in scopes:
            scopes[key] = build_scope(run, *key)
        results.append(_judge(budget, scopes[key]))
    return results


def _judge(budget: Budget, scope: Scope) -> BudgetResult:
    from shop_loadtest.results import windows

    stat = STATS[budget.name]
    compute = COMPUTE[budget.name]
    starts, ends = windows(scope, budget.window_s, full_only=False)
    values = (compute(scope, starts, ends, budget.arg) if len(starts)
              else np.empty(0, dtype=float))
    valid = ~np.isnan(values)
    common: dict[str, Any] = {
        "expr": budget.expr, "limit": budget.limit, "unit": budget.unit, "op": budget.op,
        "scope": scope.describe(budget.window_s), "stat": budget.stat,
        "endpoint": budget.endpoint, "window_s": budget.window_s}
    if not valid.any():
        note = scope.note or stat.no_data or "no requests in scope"
        return BudgetResult(observed=None, passed=False, status="no_data", note=note, **common)
    held = np.array([budget.holds(v) if ok else True for v, ok in zip(values, valid,
                                                                       strict=True)])
    lower_is_better = budget.op in ("<", "<=")
    pick = np.where(valid, values, -math.inf if lower_is_better else math.inf)
    worst = int(np.argmax(pick) if lower_is_better else np.argmin(pick))
    passed = bool(held.all())
    span = _spans(scope, starts, ends)
    breach_at = np.flatnonzero(~held)
    extra: dict[str, Any] = {}
    if budget.window_s is not None:
        extra["worst_window"] = span[worst]
        if len(breach_at):
            extra["first_breach"] = span[int(breach_at[0])]
            extra["breaches"] = _merge_spans([span[i] for i in breach_at])
    elif not passed:
        extra["breaches"] = (span[0],)
    said = NOTES[budget.name](scope) if budget.name in NOTES else ""
    note = "; ".join(n for n in (scope.note, said) if n)
    return BudgetResult(observed=float(values[worst]), passed=passed,
                        status="pass" if passed else "fail", note=note, **common, **extra)


def _spans(scope: Scope, starts: np.ndarray, ends: np.ndarray) -> list[tuple[float, float]]:
    t, dt = scope.t, scope.dt
    return [(round(float(t[s] - dt[s]), 3), round(float(t[e - 1]), 3))
            for s, e in zip(starts, ends, strict=True)]


def _merge_spans(spans: list[tuple[float, float]], limit: int = 50
                 ) -> tuple[tuple[float, float], ...]:
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged[:limit])


def first_hit(rule: Budget, run: RunData, scope: Scope | None = None) -> AbortHit | None:
    """When `rule` first became true: over each full window, or from the start without one."""
    from shop_loadtest.results import build_scope, windows

    scope = scope or build_scope(run, rule.endpoint, rule.stage, rule.excluding_ramps)
    starts, ends = windows(scope, rule.window_s, full_only=True)
    if not len(starts):
        return None
    values = COMPUTE[rule.name](scope, starts, ends, rule.arg)
    for i, value in enumerate(values):
        if not math.isnan(value) and rule.holds(value):
            start, end = _spans(scope, starts[i : i + 1], ends[i : i + 1])[0]
            return AbortHit(rule.expr, end, float(value), rule.limit, rule.unit, (start, end))
    return None


def check_abort(rules: list[AbortRule], run: RunData) -> AbortHit | None:
    """The abort rule that became true earliest (rules order breaks ties), or None.

    Safe on a partial folder: the runner calls it every couple of seconds during the run.
    """
    hits = [hit for rule in rules if (hit := first_hit(rule, run)) is not None]
    return min(hits, key=lambda h: h.t) if hits else None


# --- formatting -----------------------------------------------------------------------------
def format_value(value: float | None, unit: str) -> str:
    """`612.3 ms`, `1.20 s`, `1.25%`, `98.5/s`, `300` (None -> `n/a`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "ms":
        return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:.1f} ms"
    if unit == "ratio":
        return f"{value * 100:.2f}%"
    if unit == "/s":
        return f"{value:.1f}/s"
    if unit == "count":
        return f"{value:.0f}"
    return f"{value:g} {unit}"
