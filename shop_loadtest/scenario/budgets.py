"""The budget language: parse `p95 of POST /api/checkout < 800ms for 30s` into a `Budget`.

Grammar (docs/budgets.md)::

    <stat> [of <endpoint-glob>] <op> <limit> [for <window>] [during <stage>] [excluding ramps]

A budget holds when its comparison is true over its scope (every window, with `for`); an
abort rule stops the run as soon as its comparison becomes true. Parsing is part of loading a
scenario (a typo is bad input, exit 2); judging a run is in `shop_loadtest.judge.budgets`, and
how each statistic is computed in `shop_loadtest.judge.stats`.

>>> b = parse_budget("p95 of GET /api/* < 300ms for 30s")
>>> (b.stat, b.endpoint, b.op, b.limit, b.unit, b.window_s)
('p95', 'GET /api/*', '<', 300.0, 'ms', 30.0)
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shop_loadtest.errors import BudgetSyntaxError
from shop_loadtest.scenario.options import Selector
from shop_loadtest.scenario.units import parse_duration

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


# --- the statistics a budget can name --------------------------------------------------------
@dataclass(frozen=True)
class Stat:
    """A statistic budgets can name, as the grammar sees it.

    `kind` decides how the limit is written (latency: 500ms; ratio: 1%; rate: 100/s; count);
    `parse_arg` accepts `stat(arg)`; `no_data` explains a scope without values. How each one
    is computed over a run is `shop_loadtest.judge.stats.COMPUTE[name]`.
    """

    kind: str
    help: str
    parse_arg: Callable[[str], Any] | None = None
    no_data: str = ""


def _status_class(raw: str) -> str:
    text = raw.strip().lower()
    if not re.fullmatch(r"[1-5](?:xx|\d\d)", text):
        raise ValueError(f"error_rate(...) takes a status class such as 5xx or 4xx, or a "
                         f"status code such as 503; got {raw!r}")
    return text


def parse_resource(raw: str) -> str:
    if not re.fullmatch(r"[a-z0-9_.-]+", raw or ""):
        raise ValueError(f"expected a resource name such as storage, got {raw!r}")
    return raw


def parse_selector(raw: str) -> Selector:
    if not raw:
        raise ValueError("name the metric, e.g. gauge_max(shop_open_connections)")
    return Selector.parse(raw)


NO_SAMPLES = ("no target metrics for it: does it name a metric (gauge_max(name)), is the "
              "monitor on (a monitor: section, or the auto-started demo shop), and does the "
              "target export the metric? (docs/monitoring.md)")


RUNWAY_NO_DATA = ("runway needs a forecast: section (duration, and orders_per_hour or "
                  "peak_rate), a resource with a limit, and work done during the run "
                  "(docs/capacity.md)")



# The one table of statistics (docs/budgets.md); judge/stats.py computes each entry. `pNN`
# stands for any percentile (p50, p95, p99.9): the parser maps `p95` to ("pNN", 95.0).
STATS: dict[str, Stat] = {
    "pNN": Stat("latency", "response time percentile, from merged histograms"),
    "pNN_due": Stat(
        "latency", "percentile of latency counted from when the request was due (open model)",
        no_data="no due-time latencies recorded: pNN_due needs the open model "
                "(load.model: arrival_rate)"),
    "mean": Stat("latency", "mean response time"),
    "max": Stat("latency", "slowest response"),
    "min": Stat("latency", "fastest response"),
    "error_rate": Stat("ratio",
                       "failed / all requests; error_rate(5xx) counts only HTTP 5xx failures",
                       parse_arg=_status_class),
    "throughput": Stat("rate", "requests per second over the scope"),
    "count": Stat("count", "number of requests"),
    "failures": Stat("count", "number of failed requests"),
    # Target metrics scraped by the monitor (docs/monitoring.md, docs/capacity.md).
    "used": Stat("ratio", "highest used/limit of a resource: used(storage)",
                 parse_arg=parse_resource, no_data=NO_SAMPLES),
    "gauge_max": Stat("count", "highest value of a gauge: gauge_max(shop_open_connections)",
                      parse_arg=parse_selector, no_data=NO_SAMPLES),
    "rate": Stat("rate", "increase per second of a counter: rate(shop_orders_total)",
                 parse_arg=parse_selector, no_data=NO_SAMPLES),
    "runway": Stat("ratio", "time until a resource is full at the forecast, as a share of the "
                   "campaign: runway(storage) > 100%", parse_arg=parse_resource,
                   no_data=RUNWAY_NO_DATA),
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
