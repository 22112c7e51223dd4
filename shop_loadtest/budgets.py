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

from shop_loadtest import monitor, runway
from shop_loadtest.errors import BudgetSyntaxError
from shop_loadtest.units import parse_duration

if TYPE_CHECKING:  # results imports pandas: parsing (scenario validation) does not need it
    from shop_loadtest.results import Counts, RunData, Scope

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


# --- statistics -----------------------------------------------------------------------------
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
    "pNN": Stat("latency", lambda sc, s, e, q: sliding_percentile(sc.counts("hist"), s, e, q),
                "response time percentile, from merged histograms"),
    "pNN_due": Stat(
        "latency", lambda sc, s, e, q: sliding_percentile(sc.counts("hist_due"), s, e, q),
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
    "used": Stat("ratio", monitor.stat_used, "highest used/limit of a resource: used(storage)",
                 parse_arg=monitor.parse_resource, no_data=monitor.NO_SAMPLES),
    "gauge_max": Stat("count", monitor.stat_gauge_max, "highest value of a gauge: "
                      "gauge_max(shop_open_connections)", parse_arg=monitor.parse_selector,
                      no_data=monitor.NO_SAMPLES),
    "rate": Stat("rate", monitor.stat_rate, "increase per second of a counter: "
                 "rate(shop_orders_total)", parse_arg=monitor.parse_selector,
                 no_data=monitor.NO_SAMPLES),
    "runway": Stat("ratio", runway.stat_runway, "time until a resource is full at the "
                   "forecast, as a share of the campaign: runway(storage) > 100%",
                   parse_arg=monitor.parse_resource, no_data=runway.RUNWAY_NO_DATA),
}


def stat_names() -> list[str]:
    """The statistics as users write them (for messages and suggestions)."""
    examples = {"pNN": ["p50", "p90", "p95", "p99", "p99.9"], "pNN_due": ["p95_due", "p99_due"]}
    return [name for key in STATS for name in examples.get(key, [key])]


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
    return BudgetResult(observed=float(values[worst]), passed=passed,
                        status="pass" if passed else "fail", note=scope.note, **common, **extra)


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
