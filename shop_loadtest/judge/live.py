"""Budgets and abort rules judged while a run goes on, one interval at a time.

The batch judge (`budgets.evaluate`, `budgets.first_hit`) reads the whole folder: at hour 4 of
a soak that took 21 s and 1.7 GB a check. Here each rule keeps running state instead (whole-
scope totals and one histogram; a sliding window as a ring buffer of its slots plus running
sums), and each check folds in only the intervals appended since the last one: O(new
intervals), whatever the run's length. The answers are the batch judge's on the same
intervals (tests/test_judge_live.py checks they agree).

Monitor statistics (`used`, `gauge_max`, `rate`, `runway`) are not folded here: `supports`
says so, and callers judge those with the batch judge.

    judge = LiveJudge(meta, budgets, abort_rules)
    judge.feed(records)           # new lines of intervals.jsonl
    hit = judge.abort_hit()       # the first abort rule that became true, or None
    results = judge.results()     # BudgetResult per budget, on the data so far
"""

from __future__ import annotations

import fnmatch
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shop_loadtest.hdr import index_of
from shop_loadtest.judge.budgets import AbortHit, BudgetResult
from shop_loadtest.judge.recovery import SoFar, cannot_recover
from shop_loadtest.judge.stats import _kind_matcher
from shop_loadtest.results import (
    Counts,
    decode_counts,
    dense_percentile_ms,
    empty_dense,
)
from shop_loadtest.scenario.budgets import Budget

FOLDED = {"pNN", "pNN_due", "mean", "max", "min", "error_rate", "throughput", "count",
          "failures"}
# A slot is final once a record this many intervals later has arrived: the load processes
# of one interval flush a few hundred ms apart.
SETTLE_SLOTS = 2


def supports(rule: Budget) -> bool:
    """Whether `rule` can be judged interval by interval (not a monitor statistic)."""
    return rule.name in FOLDED


@dataclass
class _Slot:
    """One interval's figures for one rule's endpoints."""

    t: float
    dt: float
    n: float = 0.0
    fail: float = 0.0
    sum_ms: float = 0.0
    max_ms: float = math.nan
    min_ms: float = math.nan
    hists: list[Counts] = field(default_factory=list)


class _Totals:
    """Running sums over a set of slots; add and take away (a window) or only add (whole)."""

    def __init__(self, hist: bool) -> None:
        self.n = self.fail = self.sum_ms = self.dt = 0.0
        self.dense = empty_dense() if hist else None
        self.maxes: deque[float] = deque()  # the window's slot maxima (whole: one value)
        self.mins: deque[float] = deque()

    def add(self, s: _Slot) -> None:
        self.n += s.n
        self.fail += s.fail
        self.sum_ms += s.sum_ms
        self.dt += s.dt
        if self.dense is not None:
            for c in s.hists:
                self.dense[c.idx] += c.cnt
        self.maxes.append(s.max_ms)
        self.mins.append(s.min_ms)

    def remove(self, s: _Slot) -> None:
        self.n -= s.n
        self.fail -= s.fail
        self.sum_ms -= s.sum_ms
        self.dt -= s.dt
        if self.dense is not None:
            for c in s.hists:
                self.dense[c.idx] -= c.cnt
        self.maxes.popleft()
        self.mins.popleft()

    def value(self, budget: Budget) -> float:
        name = budget.name
        if name in ("pNN", "pNN_due"):
            assert self.dense is not None
            v = dense_percentile_ms(self.dense, float(budget.arg))
            return math.nan if v is None else v
        if name == "mean":
            return self.sum_ms / self.n if self.n > 0 else math.nan
        if name in ("error_rate",):
            return self.fail / self.n if self.n > 0 else math.nan
        if name == "throughput":
            return self.n / self.dt if self.dt > 0 else math.nan
        if name == "count":
            return self.n
        if name == "failures":
            return self.fail
        values = [v for v in (self.maxes if name == "max" else self.mins) if not math.isnan(v)]
        if not values:
            return math.nan
        return max(values) if name == "max" else min(values)


class _RuleState:
    """One budget or abort rule: which slots and endpoints it sees, and its running state."""

    def __init__(self, budget: Budget, stages: list[dict[str, Any]]) -> None:
        self.budget = budget
        self.hist = {"pNN": "hist", "pNN_due": "hist_due"}.get(budget.name)
        self.kind_matches = (_kind_matcher(budget.arg) if budget.name == "error_rate"
                             and budget.arg is not None else None)
        self._names: dict[str, bool] = {}
        self.stages = stages
        self.whole = _Totals(self.hist is not None)
        self.window = _Totals(self.hist is not None) if budget.window_s else None
        self.ring: deque[_Slot] = deque()
        self.width: int | None = None
        self.slots = 0
        self.last_t: float | None = None
        self.seen = False  # any slot with requests
        # budgets: the worst value and the first breaching window; aborts: the first hit
        self.worst: float | None = None
        self.worst_span: tuple[float, float] | None = None
        self.first_breach: tuple[float, float] | None = None
        self.hit: AbortHit | None = None
        self.run_len = 0  # slots in the current run of consecutive slots
        self.run_start: float | None = None
        self._first_start: float | None = None

    def wants(self, endpoint: str) -> bool:
        if endpoint not in self._names:
            pattern = self.budget.endpoint
            if pattern is None:
                ok = True
            elif pattern == endpoint or not any(c in pattern for c in "*?["):
                ok = pattern == endpoint
            else:
                ok = fnmatch.fnmatchcase(endpoint, pattern)
            self._names[endpoint] = ok
        return self._names[endpoint]

    def in_time(self, t: float, dt: float) -> bool:
        budget = self.budget
        if budget.stage is None and not budget.excluding_ramps:
            return True
        middle = t - dt / 2
        chosen = self.stages
        if budget.stage is not None:
            chosen = [s for s in chosen if s.get("name") == budget.stage]
        if budget.excluding_ramps and self.stages:
            chosen = [s for s in chosen if _f(s.get("from")) == _f(s.get("to"))]
        return any(_f(s.get("start_s")) <= middle < _f(s.get("end_s")) for s in chosen)

    def fold(self, slot: _Slot) -> None:
        """Add one final slot (in time order) and judge what that changes."""
        budget = self.budget
        if self.last_t is not None and slot.t - self.last_t > slot.dt * 1.5:
            self._end_run()
        self.last_t = slot.t
        self.slots += 1
        self.seen = self.seen or slot.n > 0
        self.whole.add(slot)
        if self.run_start is None:
            self.run_start = slot.t - slot.dt
        if self._first_start is None:
            self._first_start = slot.t - slot.dt
        if self.window is None:
            # Budgets: the whole scope; abort rules: every prefix of it.
            span = (round(self.first_start, 3), round(slot.t, 3))
            self._judge(self.whole.value(budget), span, abort=True, budget_too=False)
            return
        if self.width is None:
            self.width = max(int(round(float(budget.window_s or 0) / slot.dt)), 1)
        self.ring.append(slot)
        self.window.add(slot)
        self.run_len += 1
        if len(self.ring) > self.width:
            self.window.remove(self.ring.popleft())
        if len(self.ring) == self.width:
            span = (round(self.ring[0].t - self.ring[0].dt, 3), round(slot.t, 3))
            self._judge(self.window.value(budget), span, abort=True, budget_too=True)

    @property
    def first_start(self) -> float:
        return self._first_start if self._first_start is not None else 0.0

    def _end_run(self) -> None:
        """A hole in the intervals: the batch judge cuts windows there, and judges a run
        shorter than the window whole."""
        if self.window is None:
            return
        partial = self._partial()
        if partial is not None:
            self._judge(*partial, abort=False, budget_too=True)
        while self.ring:
            self.window.remove(self.ring.popleft())
        self.run_len, self.run_start = 0, None

    def _partial(self) -> tuple[float, tuple[float, float]] | None:
        """The current run of slots as one window, while it is shorter than the window."""
        if self.window is None or not self.ring or self.run_len >= (self.width or 1):
            return None
        span = (round(self.ring[0].t - self.ring[0].dt, 3), round(self.ring[-1].t, 3))
        return self.window.value(self.budget), span

    def _judge(self, value: float, span: tuple[float, float], *, abort: bool,
               budget_too: bool) -> None:
        if math.isnan(value):
            return
        budget = self.budget
        if abort and self.hit is None and budget.holds(value):
            self.hit = AbortHit(budget.expr, span[1], float(value), budget.limit, budget.unit,
                                span)
        if not budget_too:
            return
        if self.worst is None or self._worse(value, self.worst):
            self.worst, self.worst_span = float(value), span
        if not budget.holds(value) and self.first_breach is None:
            self.first_breach = span

    def _worse(self, value: float, than: float) -> bool:
        return value > than if self.budget.op in ("<", "<=") else value < than

    def so_far(self) -> SoFar:
        """The whole scope's figures, for `recovery.cannot_recover`."""
        whole, slow = self.whole, None
        if whole.dense is not None:
            limit_us = np.array([max(self.budget.limit, 0.0) * 1000.0])
            slow = float(whole.dense[int(index_of(limit_us)[0]) + 1:].sum())
        return SoFar(t=self.last_t if self.last_t is not None else 0.0, n=whole.n,
                     fail=whole.fail, sum_ms=whole.sum_ms, dt=whole.dt, slow=slow)

    def current(self) -> float | None:
        """An abort rule's value now: its window (or the run of slots so far, while shorter
        than the window), or the whole scope."""
        if self.window is None:
            value = self.whole.value(self.budget) if self.slots else math.nan
        elif self.ring:
            value = self.window.value(self.budget)
        else:
            return None
        return None if math.isnan(value) else float(value)

    def result(self) -> BudgetResult:
        budget = self.budget
        common: dict[str, Any] = {
            "expr": budget.expr, "limit": budget.limit, "unit": budget.unit, "op": budget.op,
            "scope": "so far", "stat": budget.stat, "endpoint": budget.endpoint,
            "window_s": budget.window_s}
        extra: dict[str, Any] = {}
        if self.window is None:
            value = self.whole.value(budget) if self.slots else math.nan
            observed = None if math.isnan(value) else float(value)
            passed = observed is not None and budget.holds(observed)
        else:
            observed, span, first = self.worst, self.worst_span, self.first_breach
            partial = self._partial()
            if partial is not None and not math.isnan(partial[0]):
                if observed is None or self._worse(partial[0], observed):
                    observed, span = float(partial[0]), partial[1]
                if not budget.holds(partial[0]) and first is None:
                    first = partial[1]
            passed = first is None
            extra = {"worst_window": span, "first_breach": first}
        if observed is None or (not self.seen and budget.name not in ("count", "failures")):
            return BudgetResult(observed=None, passed=False, status="no_data",
                                note="no requests in scope yet", **common)
        return BudgetResult(observed=observed, passed=passed,
                            status="pass" if passed else "fail", **common, **extra)


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class AbortState:
    """An abort rule in the live view: `observed` its value now (None: no data yet)."""

    rule: Budget
    observed: float | None
    hit: AbortHit | None


class LiveJudge:
    """Budgets and abort rules folded interval by interval (see the module's docstring)."""

    def __init__(self, meta: dict[str, Any], budgets: Iterable[Budget] = (),
                 abort_rules: Iterable[Budget] = ()) -> None:
        stages = [s for s in meta.get("stages") or [] if isinstance(s, dict)]
        self.budgets = [_RuleState(b, stages) for b in budgets if supports(b)]
        self.aborts = [_RuleState(r, stages) for r in abort_rules if supports(r)]
        self._rules = self.budgets + self.aborts
        self._pending: dict[float, list[dict[str, Any]]] = {}
        self._latest: float | None = None
        self._done: float = -math.inf  # slots at or before this are folded
        self._sources: set[str] = set()
        self._dt = 1.0
        processes = meta.get("processes")
        self._processes = processes if isinstance(processes, int) and processes > 0 else 1

    def feed(self, records: Iterable[dict[str, Any]]) -> None:
        """New lines of intervals.jsonl, in the order they were written. An interval is
        folded once every load process seen so far has reported it, or SETTLE_SLOTS later."""
        for rec in records:
            t_raw, dt = _f(rec.get("t")), _f(rec.get("dt"))
            if math.isnan(t_raw):
                continue
            dt = dt if dt > 0 else 1.0
            t = round(max(round(t_raw / dt), 1) * dt, 6)  # as results/folder.py puts it
            self._sources.add(str(rec.get("source")))
            self._dt = dt
            if t <= self._done:
                continue  # too late for its slot: already judged
            self._pending.setdefault(t, []).append(rec)
            self._latest = t if self._latest is None else max(self._latest, t)
        for t in sorted(self._pending):
            settled = self._latest is not None and t <= self._latest - SETTLE_SLOTS * self._dt
            reported = {str(r.get("source")) for r in self._pending[t]}
            everyone = reported >= self._sources and len(reported) >= self._processes
            if not (settled or everyone):
                break
            self._fold(t, self._pending.pop(t))
            self._done = t

    def finish(self) -> None:
        """Fold every pending slot (the run has ended)."""
        for t in sorted(self._pending):
            self._fold(t, self._pending.pop(t))
            self._done = t

    def _fold(self, t: float, records: list[dict[str, Any]]) -> None:
        dt = max((_f(r.get("dt")) for r in records), default=1.0)
        dt = dt if dt > 0 else 1.0
        decoded: dict[tuple[int, str, str], Counts | None] = {}
        for rule in self._rules:
            if not rule.in_time(t, dt):
                continue
            slot = _Slot(t, dt)
            for i, rec in enumerate(records):
                endpoints = rec.get("endpoints")
                for name, ep in endpoints.items() if isinstance(endpoints, dict) else ():
                    if not isinstance(ep, dict) or not rule.wants(str(name)):
                        continue
                    slot.n += _f(ep.get("n")) if not math.isnan(_f(ep.get("n"))) else 0.0
                    if rule.kind_matches is None:
                        fail = _f(ep.get("fail"))
                        slot.fail += 0.0 if math.isnan(fail) else fail
                    slot.sum_ms += _nz(ep.get("sum_ms"))
                    slot.max_ms = float(np.fmax(slot.max_ms, _f(ep.get("max_ms"))))
                    slot.min_ms = float(np.fmin(slot.min_ms, _f(ep.get("min_ms"))))
                    if rule.hist is not None:
                        key = (i, str(name), rule.hist)
                        if key not in decoded:
                            decoded[key] = decode_counts(ep.get(rule.hist))
                        if decoded[key] is not None:
                            slot.hists.append(decoded[key])  # type: ignore[arg-type]
                if rule.kind_matches is not None:
                    for err in rec.get("errors") or []:
                        if (isinstance(err, dict) and rule.wants(str(err.get("endpoint")))
                                and rule.kind_matches(str(err.get("kind")))):
                            slot.fail += _nz(err.get("count"))
            rule.fold(slot)

    def abort_hit(self) -> AbortHit | None:
        """The abort rule that became true earliest (rules order breaks ties), or None."""
        hits = [r.hit for r in self.aborts if r.hit is not None]
        return min(hits, key=lambda h: h.t) if hits else None

    def results(self) -> list[BudgetResult]:
        """Each folded budget on the data so far, in the order given."""
        return [r.result() for r in self.budgets]

    def hopeless(self) -> list[bool]:
        """Per folded budget: it would fail at the end whatever the planned rest of the run
        brings (`recovery.cannot_recover`; False for a windowed budget or when in doubt)."""
        return [r.budget.window_s is None and r.slots > 0
                and cannot_recover(r.budget, r.so_far(), r.stages) for r in self.budgets]

    def abort_states(self) -> list[AbortState]:
        """Each folded abort rule as it stands: its value now, and its hit once it fired."""
        return [AbortState(r.budget, r.current(), r.hit) for r in self.aborts]

    @property
    def latest_t(self) -> float | None:
        return None if self._done == -math.inf else self._done


def _nz(value: Any) -> float:
    v = _f(value)
    return 0.0 if math.isnan(v) else v
