"""Can the run be trusted, and did it pass? Generator health and the verdict rules.

Rules (docs/reports.md):

1. `inconclusive` when the result cannot be trusted, whatever the budgets say: no requests
   recorded; the engine failed (exit_reason engine_error); a worker was lost (unless
   tolerated); the load generator was unhealthy (CPU > 90% for 5 s in a row on any source,
   event-loop lag > 200 ms for 5 s in a row, or more than 1% of due arrivals dropped).
   A saturated generator slows its own requests and sends less load than asked, so it can
   make a run look worse or better than the target is: it must never pass or fail silently.
2. `fail` when a budget broke, an abort rule stopped the run, or a request was refused
   because its host is not allowed (the always-on allowed-hosts rule, `refused_requests`).
3. `inconclusive` when the run is incomplete and nothing broke: interrupted before the shape
   ended, never finished (no exit_reason), or a budget had no data to judge. An incomplete
   run cannot pass, but a budget broken on the data it has is still a real failure (rule 2).
4. `pass` otherwise.

Then one rule apart (`blame_stall`): a shop that stalled (requests timed out, or were still
waiting at stop after half their timeout) is the shop's failure, not the generator's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from shop_loadtest.judge.budgets import format_value
from shop_loadtest.results import RunData


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}

CPU_SATURATED_PCT = 90.0
LOOP_LAG_MS = 200.0
SUSTAINED_S = 5.0
DROPPED_MAX = 0.01


def _longest_run(t: np.ndarray, dt: np.ndarray, flag: np.ndarray) -> tuple[float, float, float]:
    """Longest stretch of consecutive flagged intervals: (seconds, start t, end t)."""
    best = (0.0, 0.0, 0.0)
    length, start, previous = 0.0, 0.0, -math.inf
    for ti, di, on in zip(t.tolist(), dt.tolist(), flag.tolist(), strict=True):
        if not on:
            length = 0.0
            continue
        if length and ti - previous <= di * 1.5:
            length += di
        else:
            length, start = di, ti - di
        previous = ti
        if length > best[0]:
            best = (length, start, ti)
    return best


def generator_health(run: RunData) -> dict[str, Any]:
    """The load generator's own figures and the problems that make a run untrustworthy."""
    ticks = run.ticks
    problems: list[str] = []
    for source, rows in ticks.groupby("source", sort=True):
        rows = rows.sort_values("t")
        t, dt = rows["t"].to_numpy(float), rows["dt"].to_numpy(float)
        for column, limit, what in (("cpu_pct", CPU_SATURATED_PCT, "CPU above {:g}%"),
                                    ("loop_lag_ms", LOOP_LAG_MS, "event-loop lag above {:g} ms")):
            values = rows[column].to_numpy(float)
            seconds, start, end = _longest_run(t, dt, np.nan_to_num(values) > limit)
            if seconds >= SUSTAINED_S:
                problems.append(f"load generator saturated: {what.format(limit)} for "
                                f"{seconds:g} s in a row on {source} (t={start:g}-{end:g} s)")
    due, dropped = _total(ticks, "due"), _total(ticks, "dropped")
    arrivals = None
    if ticks["due"].notna().any():
        late = _total(ticks, "late")
        arrivals = {
            "due": int(due), "started": int(_total(ticks, "started")), "dropped": int(dropped),
            "late": int(late), "late_max_ms": _max(ticks, "late_max_ms"),
            "dropped_pct": round(100 * dropped / due, 3) if due else 0.0,
            "late_pct": round(100 * late / due, 3) if due else 0.0,
        }
        if due and dropped / due > DROPPED_MAX:
            problems.append(f"load generator could not keep up: {int(dropped)} of {int(due)} "
                            f"due arrivals dropped ({100 * dropped / due:.1f}% > "
                            f"{100 * DROPPED_MAX:g}%)")
    return {
        "sources": sorted(str(s) for s in ticks["source"].dropna().unique()),
        "cpu_max_pct": _max(ticks, "cpu_pct"),
        "cpu_mean_pct": _round(ticks["cpu_pct"].mean()),
        "loop_lag_max_ms": _max(ticks, "loop_lag_ms"),
        "rss_max_mb": _max(ticks, "rss_mb"),
        "healthy": not problems,
        "problems": problems,
        "arrivals": arrivals,
    }


def _total(frame: pd.DataFrame, column: str) -> float:
    return float(frame[column].sum(min_count=1)) if column in frame and len(frame) and \
        frame[column].notna().any() else 0.0


def _max(frame: pd.DataFrame, column: str) -> float | None:
    return _round(frame[column].max()) if len(frame) else None


def _round(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return round(float(value), 3)


def workers_lost(run: RunData) -> list[dict[str, Any]]:
    """`worker_lost` events as {t, worker, users}."""
    lost = []
    for event in run.events:
        if event.get("kind") == "worker_lost":
            detail = _obj(event.get("detail"))
            users = detail.get("users")
            lost.append({"t": _round(event.get("t")), "worker": str(detail.get("worker", "?")),
                         "users": int(users) if isinstance(users, int | float) else None})
    return lost


def aborted(run: RunData) -> dict[str, Any] | None:
    """The abort rule that stopped the run, from run.json or the abort event."""
    detail = run.meta.get("abort_reason")
    events = [e for e in run.events if e.get("kind") == "abort"]
    if not isinstance(detail, dict):
        if events:
            detail = {"t": events[-1].get("t"), **_obj(events[-1].get("detail"))}
        elif run.meta.get("exit_reason") == "aborted":
            detail = {}
        else:
            return None
    return {"rule": detail.get("rule"), "t": _round(detail.get("t")),
            "observed": _round(detail.get("observed"))}


# A request still waiting at stop after this share of its timeout counts as a stall.
STALLED_SHARE_OF_TIMEOUT = 0.5


def stalled(meta: dict[str, Any]) -> tuple[str, bool] | None:
    """The shop stalled, from run.json's `requests` evidence: (reason, whether requests were
    left hanging), or None. Requests that timed out, or that were still waiting at stop
    after half their timeout, were the shop's to answer.

    >>> stalled({"requests": {"timeout_s": 30, "timeouts": 0, "in_flight_at_stop": 3,
    ...                       "in_flight_longest_ms": 16000}})[0]
    'the shop stalled: 3 requests were still waiting for an answer at stop (the longest 16 s)'
    """
    evidence = _obj(meta.get("requests"))
    timeout_s = float(evidence.get("timeout_s") or 30.0)
    timeouts = int(evidence.get("timeouts") or 0)
    waiting = int(evidence.get("in_flight_at_stop") or 0)
    longest_s = float(evidence.get("in_flight_longest_ms") or 0.0) / 1000.0
    hanging = waiting > 0 and longest_s >= STALLED_SHARE_OF_TIMEOUT * timeout_s
    parts = []
    if timeouts:
        parts.append(f"{timeouts} requests timed out (timeout {timeout_s:g} s)")
    if hanging:
        parts.append(f"{waiting} requests were still waiting for an answer at stop "
                     f"(the longest {longest_s:.3g} s)")
    if not parts:
        return None
    return "the shop stalled: " + "; ".join(parts), hanging


def blame_stall(verdict: str, reasons: list[str], summary: dict[str, Any],
                meta: dict[str, Any]) -> tuple[str, list[str]]:
    """A stalled shop is the shop's failure: a run left inconclusive for what a stall causes
    (dropped arrivals, nothing recorded) fails instead, unless the generator itself was
    saturated; a pass with requests left hanging fails too. Timeouts are failed requests,
    judged by the error budgets like any other failure."""
    found = stalled(meta)
    if found is None:
        return verdict, reasons
    reason, hanging = found
    saturated = any(p.startswith("load generator saturated")
                    for p in summary["generator"]["problems"])
    if (verdict == "inconclusive" and not saturated) or (verdict == "pass" and hanging):
        return "fail", [reason, *reasons]
    return verdict, [*reasons, reason]


# --- the always-on allowed-hosts rule (docs/safety.md) -------------------------------------
MAX_REFUSAL_REASONS = 5
ALLOWED_HOSTS_RULE = "requests only to allowed hosts"


def refused_requests(run: RunData) -> dict[str, Any]:
    """Requests the guard refused (host not allowed), from the `refused` events of the load
    processes and of the runner (health check, monitor): {count, passed, refusals}, one
    refusal per host and step, most frequent first."""
    tally: dict[tuple[str, str], int] = {}
    for event in run.events:
        if event.get("kind") != "refused":
            continue
        detail = _obj(event.get("detail"))
        count = detail.get("count")
        key = (str(detail.get("host") or "?"), str(detail.get("where") or ""))
        tally[key] = tally.get(key, 0) + (int(count) if isinstance(count, int | float) else 1)
    refusals = [{"host": host, "where": where, "count": count}
                for (host, where), count in sorted(tally.items(), key=lambda kv: -kv[1])]
    total = sum(tally.values())
    return {"count": total, "passed": total == 0, "refusals": refusals}


def refusal_reasons(refused: dict[str, Any], limit: int | None = MAX_REFUSAL_REASONS
                    ) -> list[str]:
    """`3 requests refused: http://h:1 is not an allowed host (step 2 of journey buy); add it
    to target.allowed_hosts if it is yours`, one line per host and step (the first `limit`)."""
    out = []
    for r in refused["refusals"][:limit]:
        n = r["count"]
        where = f" ({r['where']})" if r["where"] else ""
        out.append(f"{n} request{'s' if n != 1 else ''} refused: {r['host']} is not an "
                   f"allowed host{where}; add it to target.allowed_hosts if it is yours")
    more = refused["refusals"][limit:] if limit is not None else []
    if more:
        out.append(f"{sum(r['count'] for r in more)} more requests refused at "
                   f"{len(more)} other hosts or steps (see summary.json `refused`)")
    return out


def decide(summary: dict[str, Any], *, tolerate_worker_loss: bool) -> tuple[str, list[str]]:
    """The verdict and the reasons for it, from a summary's figures (rules in the docstring)."""
    untrusted: list[str] = []
    incomplete: list[str] = []
    broken: list[str] = []
    exit_reason = summary.get("exit_reason")
    if not summary["requests"]:
        untrusted.append("no requests were recorded")
    if exit_reason == "engine_error":
        untrusted.append("the load engine failed (exit_reason engine_error); see locust.log")
    notes: list[str] = []
    for lost in summary["workers_lost"]:
        text = f"worker {lost['worker']} was lost at t={lost['t']} s"
        if tolerate_worker_loss:
            notes.append(f"{text} (tolerated)")
        else:
            untrusted.append(f"{text}; rerun, or pass --tolerate-worker-loss to accept it")
    untrusted.extend(summary["generator"]["problems"])
    if exit_reason == "interrupted":
        incomplete.append(f"the run was interrupted after {summary['duration_s']:g} s, before "
                          "the shape ended; budgets were judged on partial data")
    elif exit_reason is None:
        incomplete.append("run.json has no exit_reason: the run did not finish (crashed?)")
    for budget in summary["budgets"]:
        if budget["status"] == "no_data":
            if not summary["requests"]:
                continue  # "no requests were recorded" says it for every budget
            incomplete.append(f"budget {budget['expr']!r} has no data: {budget['note']}")
        elif not budget["passed"]:
            when = (f", first at t={budget['first_breach_t']:g} s"
                    if budget.get("first_breach_t") is not None else "")
            broken.append(f"budget broke: {budget['expr']} (observed "
                          f"{format_value(budget['observed'], budget['unit'])} vs limit "
                          f"{format_value(budget['limit'], budget['unit'])}{when})")
    refused = summary.get("refused")
    if refused is not None and not refused["passed"]:
        broken[:0] = refusal_reasons(refused)
    stop = summary.get("aborted")
    if stop is not None:
        at = f" at t={stop['t']:g} s" if stop.get("t") is not None else ""
        broken.insert(0, f"aborted by rule {stop.get('rule')!r}{at}")
    if untrusted:
        also = [f"(not trusted) {reason}" for reason in broken]
        return "inconclusive", untrusted + incomplete + also + notes
    if broken:
        return "fail", broken + incomplete + notes
    if incomplete:
        return "inconclusive", incomplete + notes
    held = len(summary["budgets"])
    return "pass", [f"all {held} budgets held" if held else "no budgets to check"] + notes
