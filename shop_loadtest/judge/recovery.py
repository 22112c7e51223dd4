"""Can a whole-run budget that fails so far still hold when the run ends?

The live view calls a failing whole-run budget BROKEN only once it cannot recover, whatever
the rest of the run brings; until then it is "failing so far" (the first seconds of a ramp must
not read BROKEN). The rest of the run is what is planned: the stages' target integrated over
the time left in the budget's scope (journeys for the arrival-rate model, user-seconds for the
users model). Requests per planned unit are what the run has sent so far, times HEADROOM, and
the best case is that every one of those requests succeeds, instantly:

- `error_rate < L`: failures / (requests + the rest) still >= L;
- `pNN < L`: more requests already slower than L than (100 - NN)% of requests + the rest;
- `mean < L`: the sum of latencies / (requests + the rest) still >= L;
- `count > L`, `throughput > L`: even the rest cannot bring the figure over L;
- the scope is over (its stage ended, or the shape): nothing more can come in.

Statistics that only get worse (`max <`, `failures <`, `used <`, ...) are decided where they
are judged; any other statistic is "so far" until the end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shop_loadtest.judge.budgets import BudgetResult
from shop_loadtest.judge.delivery import _area
from shop_loadtest.scenario.budgets import Budget

# The best case for the rest of the run sends this many times the requests per planned journey
# (or user-second) seen so far: a shop that is slow now may answer faster later (more requests
# per user), and failed journeys may have stopped early (fewer requests per journey).
HEADROOM = 2.0


@dataclass(frozen=True)
class SoFar:
    """A whole-run budget's figures on the intervals judged so far (its scope only)."""

    t: float  # the end of the last interval judged
    n: float
    fail: float
    sum_ms: float
    dt: float
    slow: float | None = None  # requests slower than a latency budget's limit


def scope_stages(budget: Budget, stages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stages a budget judges (`during <stage>`, `excluding ramps`)."""
    chosen = [s for s in stages if _valid(s)]
    if budget.stage is not None:
        chosen = [s for s in chosen if s.get("name") == budget.stage]
    if budget.excluding_ramps:
        chosen = [s for s in chosen if float(s["from"]) == float(s["to"])]
    return chosen


def _valid(stage: dict[str, Any]) -> bool:
    try:
        return all(math.isfinite(float(stage[k])) for k in ("start_s", "end_s", "from", "to"))
    except (KeyError, TypeError, ValueError):
        return False


def _seconds(stages: Sequence[dict[str, Any]], a: float, b: float) -> float:
    return sum(max(min(b, float(s["end_s"])) - max(a, float(s["start_s"])), 0.0)
               for s in stages)


def cannot_recover(budget: Budget, so_far: SoFar, stages: Sequence[dict[str, Any]]) -> bool:
    """True when a whole-run budget fails now and would fail at the end of its scope even in
    the best case (see the module's docstring). False when in doubt."""
    if budget.window_s is not None or not stages:
        return False
    chosen = scope_stages(budget, stages)
    if not chosen:
        return False
    t = so_far.t
    left = sum(_area(s, t, math.inf) for s in chosen)
    if _seconds(chosen, t, math.inf) <= 0:
        return True  # its scope is over
    done = sum(_area(s, -math.inf, t) for s in chosen)
    if done <= 0 or so_far.n <= 0:
        return False
    rest = HEADROOM * so_far.n / done * left
    total = so_far.n + rest
    name, below = budget.name, budget.op in ("<", "<=")
    if name == "error_rate" and below:
        return not budget.holds(so_far.fail / total)
    if name == "mean" and below:
        return not budget.holds(so_far.sum_ms / total)
    if name in ("pNN", "pNN_due") and below and so_far.slow is not None:
        share = 1.0 - float(budget.arg) / 100.0
        return so_far.slow > share * total
    if name == "count" and not below:
        return not budget.holds(total)
    if name == "throughput" and not below:
        seconds = so_far.dt + _seconds(chosen, t, math.inf)
        return seconds > 0 and not budget.holds(total / seconds)
    return False


# Whole-run statistics that only get worse once broken: the slowest response, the fastest,
# counts of requests and failures, the highest share of a resource.
CANNOT_RECOVER = {("max", "<"), ("max", "<="), ("min", ">"), ("min", ">="),
                  ("failures", "<"), ("failures", "<="), ("count", "<"), ("count", "<="),
                  ("used", "<"), ("used", "<="), ("gauge_max", "<"), ("gauge_max", "<=")}


def live_state(budget: Budget, result: BudgetResult, *, t: float | None,
               stages: list[dict[str, Any]], ended: bool, hopeless: bool = False) -> str:
    """How the live view shows a budget: `pass`, `fail`, `no_data`, or `so_far` for a
    whole-run budget that is failing on the data so far but can still recover before the
    run ends (a ramp's first seconds must not read BROKEN). `hopeless`: the planned rest of
    the run cannot bring it back (`cannot_recover`). Windowed budgets are shown as judged:
    a window that broke stays broken."""
    if result.status != "fail":
        return result.status
    if (ended or hopeless or budget.window_s is not None
            or (budget.name, budget.op) in CANNOT_RECOVER):
        return "fail"
    if budget.stage is not None:
        ends = [_end(s) for s in stages if s.get("name") == budget.stage]
        known = [e for e in ends if e is not None]
        if known and t is not None and t >= max(known):
            return "fail"  # its stage is over: nothing more can come in
    return "so_far"


def _end(stage: dict[str, Any]) -> float | None:
    try:
        end = float(stage["end_s"])
    except (KeyError, TypeError, ValueError):
        return None
    return end if math.isfinite(end) else None
