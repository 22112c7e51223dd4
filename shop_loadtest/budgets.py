"""Capacity budgets and abort rules: parse `p95 of POST /api/checkout < 800ms for 30s`, judge a run.

Grammar (docs/budgets.md)::

    <stat> [of <endpoint-glob>] <op> <limit> [for <window>] [during <stage>] [excluding ramps]

A budget holds when its comparison is true over its scope (every window, with `for`); an
abort rule stops the run as soon as its comparison becomes true.

>>> b = parse_budget("p95 of GET /api/* < 300ms for 30s")
>>> (b.stat, b.endpoint, b.op, b.limit, b.unit, b.window_s)
('p95', 'GET /api/*', '<', 300.0, 'ms', 30.0)
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shop_loadtest.errors import BudgetSyntaxError
from shop_loadtest.stats import STATS, Stat, stat_names
from shop_loadtest.units import parse_duration

if TYPE_CHECKING:  # results imports pandas: parsing (scenario validation) does not need it
    from shop_loadtest.results import RunData, Scope

OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_OP_RE = re.compile(r"<=|>=|==|!=|=<|=>|<|>|=")
_NUMBER_AHEAD = re.compile(r"\s*-?\.?\d")
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)(_due)?")
_CALL = re.compile(r"([a-z_][a-z0-9_]*)\((.*)\)")
# A unit glued to the number may be anything (to name typos); after a space, only a real unit.
_LIMIT = re.compile(r"(-?\d+(?:\.\d+)?|-?\.\d+)(?:(%|/[a-z]+|[a-z]+)"
                    r"|\s+(%|ms|s|m|h|min|rps|/s|/m|/min|/h)(?![a-z/]))?(?=\s|$)",
                    re.IGNORECASE)
_LATENCY_UNITS = {"": 1.0, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_RATE_UNITS = {"": 1.0, "/s": 1.0, "rps": 1.0, "/m": 1 / 60, "/min": 1 / 60, "/h": 1 / 3600}
_UNIT_OF_KIND = {"latency": "ms", "ratio": "ratio", "rate": "/s", "count": "count"}


@dataclass(frozen=True)
class Budget:
    """A parsed budget; `limit` is in `unit` (ms, a ratio 0..1, per second, or a count)."""

    expr: str
    stat: str
    name: str
    arg: Any
    endpoint: str | None
    op: str
    limit: float
    unit: str
    window_s: float | None = None
    stage: str | None = None
    excluding_ramps: bool = False

    def holds(self, value: float) -> bool:
        return bool(OPS[self.op](value, self.limit))


@dataclass(frozen=True)
class AbortRule(Budget):
    """Same grammar as a budget; the run stops when the comparison becomes true."""


@dataclass(frozen=True)
class BudgetResult:
    """How a budget fared. Times are run seconds; windows are (start, end) of a window."""

    expr: str
    observed: float | None
    limit: float
    unit: str
    op: str
    passed: bool
    status: str  # pass | fail | no_data
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

    def to_json(self) -> dict[str, Any]:
        return {
            "expr": self.expr, "stat": self.stat, "endpoint": self.endpoint, "op": self.op,
            "observed": _round(self.observed), "limit": _round(self.limit), "unit": self.unit,
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


# --- parsing --------------------------------------------------------------------------------
def parse_budget(expr: str) -> Budget:
    """Parse one budget expression; raises BudgetSyntaxError with a one-line hint."""
    return Budget(**_parse(expr))


def parse_abort(expr: str) -> AbortRule:
    """Parse one abort rule (same grammar as budgets: `error_rate > 50% for 20s`)."""
    return AbortRule(**_parse(expr))


def _fail(expr: str, message: str) -> BudgetSyntaxError:
    return BudgetSyntaxError(f"budget {expr!r}: {message}")


def _parse(expr: str) -> dict[str, Any]:
    if not isinstance(expr, str) or not expr.strip():
        raise _fail(str(expr), "empty; write it as `<stat> < <limit>`, e.g. `p95 < 500ms`")
    text = " ".join(expr.split())
    found = list(_OP_RE.finditer(text))
    candidates = [m for m in found if _NUMBER_AHEAD.match(text, m.end())]
    if not candidates:
        if found:
            raise _fail(expr, f"expected a number after {found[-1].group()!r}, e.g. `p95 < 500ms`")
        raise _fail(expr, "no comparison; write it as `<stat> < <limit>`, e.g. `p95 < 500ms`")
    match = candidates[-1]
    op = {"=<": "<=", "=>": ">="}.get(match.group(), match.group())
    if op not in OPS:
        raise _fail(expr, f"{op!r} is not a budget comparison; use <, <=, > or >=")
    head, tail = text[: match.start()].strip(), text[match.end():].strip()
    stat_text, endpoint = _head(expr, head)
    name, arg, stat = _stat(expr, stat_text)
    limit, rest = _limit(expr, stat_text, stat, tail)
    clauses = _clauses(expr, rest)
    return {"expr": expr, "stat": stat_text, "name": name, "arg": arg, "endpoint": endpoint,
            "op": op, "limit": limit, "unit": _UNIT_OF_KIND.get(stat.kind, stat.kind),
            **clauses}


def _head(expr: str, head: str) -> tuple[str, str | None]:
    if not head:
        raise _fail(expr, "missing the statistic before the comparison, e.g. `p95 < 500ms`")
    head = re.sub(r"^(\S+?)\s*\(\s*([^()]*?)\s*\)", r"\1(\2)", head)  # error_rate (5xx)
    first, _, rest = head.partition(" ")
    if not rest:
        return first.lower(), None
    word, _, endpoint = rest.partition(" ")
    if word.lower() != "of":
        hint = " (did you mean `of`?)" if difflib.get_close_matches(word.lower(), ["of"]) else ""
        raise _fail(expr, f"expected `of <endpoint>` after {first!r}, got {rest!r}{hint}")
    if not endpoint.strip():
        raise _fail(expr, "missing the endpoint after `of`, e.g. `p95 of GET /api/cart < 300ms`")
    return first.lower(), endpoint.strip()


def _stat(expr: str, token: str) -> tuple[str, Any, Stat]:
    m = _PERCENTILE.fullmatch(token)
    if m:
        q = float(m.group(1))
        if not 0 < q < 100:
            raise _fail(expr, f"percentile {token!r} must be above p0 and below p100 "
                              "(use min or max)")
        name = "pNN_due" if m.group(2) else "pNN"
        return name, q, STATS[name]
    if token.count("(") != token.count(")"):
        raise _fail(expr, f"unbalanced parentheses in {token!r}, e.g. `error_rate(5xx)`")
    call = _CALL.fullmatch(token)
    name, raw = (call.group(1), call.group(2).strip()) if call else (token, None)
    stat = STATS.get(name) if name not in ("pNN", "pNN_due") else None
    if stat is None:
        close = difflib.get_close_matches(name, stat_names(), n=1, cutoff=0.6)
        hint = (f"did you mean {close[0]}?" if close
                else f"expected one of {', '.join(stat_names())}")
        raise _fail(expr, f"unknown statistic {token!r}; {hint}")
    if raw is None:
        return name, None, stat
    if stat.parse_arg is None:
        raise _fail(expr, f"{name} takes no argument; write `{name}`")
    try:
        return name, stat.parse_arg(raw), stat
    except ValueError as exc:
        raise _fail(expr, str(exc)) from None


def _limit(expr: str, stat_text: str, stat: Stat, tail: str) -> tuple[float, str]:
    m = _LIMIT.match(tail)
    if not m:
        raise _fail(expr, f"cannot read the limit {tail.split(' ')[0]!r}; "
                          "expected a number such as 500ms, 1%, 100/s")
    number, unit = float(m.group(1)), (m.group(2) or m.group(3) or "").lower()
    if number < 0:
        raise _fail(expr, "a limit cannot be negative")
    kind, shown = stat.kind, f"{m.group(1)}{unit}"
    if kind == "latency":
        if unit not in _LATENCY_UNITS:
            raise _fail(expr, f"{stat_text} is a latency: write the limit as a duration such "
                              f"as 500ms or 1.5s, not {shown!r}{_unit_hint(unit, _LATENCY_UNITS)}")
        value = number * _LATENCY_UNITS[unit]
    elif kind == "ratio":
        if unit == "%":
            value = number / 100.0
        elif unit == "" and number <= 1:
            value = number
        else:
            raise _fail(expr, f"{stat_text} is a ratio: write the limit as a percentage such as "
                              f"1% or 0.5% (or a fraction such as 0.01), not {shown!r}")
    elif kind == "rate":
        if unit not in _RATE_UNITS:
            raise _fail(expr, f"{stat_text} is a rate: write the limit as 100/s, 100rps or "
                              f"6000/m, not {shown!r}{_unit_hint(unit, _RATE_UNITS)}")
        value = number * _RATE_UNITS[unit]
    elif unit:
        raise _fail(expr, f"{stat_text} is a count: write the limit as a plain number, "
                          f"not {shown!r}")
    else:
        value = number
    return value, tail[m.end():].strip()


def _unit_hint(unit: str, units: dict[str, float]) -> str:
    close = difflib.get_close_matches(unit, [u for u in units if u], n=1, cutoff=0.5)
    return f" (did you mean {close[0]}?)" if close and unit else ""


def _clauses(expr: str, rest: str) -> dict[str, Any]:
    out: dict[str, Any] = {"window_s": None, "stage": None, "excluding_ramps": False}
    while rest:
        word, _, after = rest.partition(" ")
        key = word.lower()
        if key == "for":
            window, _, rest = after.partition(" ")
            try:
                seconds = parse_duration(window)
            except ValueError:
                seconds = 0.0
            if seconds <= 0:
                raise _fail(expr, f"`for` needs a window such as 30s or 1m, got {window!r}")
            _once(expr, out, "window_s", "for")
            out["window_s"] = seconds
        elif key == "during":
            m = re.match(r"(.+?)(?=\s+(?:for|excluding)\b|$)", after, flags=re.IGNORECASE)
            if not m:
                raise _fail(expr, "`during` needs a stage name, e.g. `during peak`")
            _once(expr, out, "stage", "during")
            out["stage"], rest = m.group(1), after[m.end():].strip()
        elif key == "excluding":
            nxt, _, rest = after.partition(" ")
            if nxt.lower() not in ("ramps", "ramp"):
                raise _fail(expr, f"expected `excluding ramps`, got `excluding {nxt}`")
            out["excluding_ramps"] = True
        else:
            close = difflib.get_close_matches(key, ["for", "during", "excluding"], n=1)
            hint = f"did you mean `{close[0]}`? " if close else ""
            raise _fail(expr, f"unexpected {word!r} after the limit; {hint}expected "
                              "`for <window>`, `during <stage>` or `excluding ramps`")
        rest = rest.strip()
    return out


def _once(expr: str, out: dict[str, Any], key: str, word: str) -> None:
    if out[key] is not None:
        raise _fail(expr, f"`{word}` given twice")


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
    starts, ends = windows(scope, budget.window_s, full_only=False)
    values = (stat.compute(scope, starts, ends, budget.arg) if len(starts)
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
    note = "; ".join(n for n in (scope.note, stat.note(scope) if stat.note else "") if n)
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
    values = STATS[rule.name].compute(scope, starts, ends, rule.arg)
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


def _round(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(float(value), 6)
