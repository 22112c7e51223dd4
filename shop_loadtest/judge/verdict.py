"""Can the run be trusted, and did it pass? Generator health and the verdict rules.

`decide` is the one place the rules live: a pure function from a summary's evidence
(judge/evidence.py: load process, workers, delivery, target; generator health here) to
(verdict, reasons). docs/reports.md has them in one table. In short, starting from "not shown":

1. `inconclusive` when the result cannot be trusted, whatever the budgets say: no requests;
   the engine failed; the load process died, never recorded its stop or ended the shape
   early; other than the expected number of load processes took part; a worker was lost
   (unless tolerated); the generator was saturated (CPU > 90% or loop lag > 200 ms for 5 s in a
   row, or more than 1% of due arrivals dropped while users were free); the planned load
   was not delivered (below `min_delivered` in a stage) for a reason other than the shop.
2. `fail` when a budget broke, an abort rule stopped the run, arrivals could not start
   because every user was waiting on the shop (the pool at max_users, the generator healthy),
   or a request was refused because its host is not allowed (the always-on allowed-hosts
   rule, `refused_requests`).
3. `inconclusive` when the run is incomplete and nothing broke: interrupted, never finished,
   or a budget had no data.
4. `pass` otherwise: all budgets held (the implied `error_rate < 1%` when the scenario names
   none) and the planned load was delivered.
5. Over all of these, the stall rule (`blame_stall`): a shop that stalled (requests timed
   out, or were still waiting at stop after half their timeout: `stall` in the summary) is the
   shop's failure, not the generator's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from shop_loadtest.judge.budgets import format_value
from shop_loadtest.judge.delivery import describe as describe_delivery
from shop_loadtest.judge.model import (
    Aborted,
    Arrivals,
    GeneratorHealth,
    Refusal,
    Refused,
    Stall,
    Summary,
    Verdict,
    WorkerLost,
)
from shop_loadtest.results import RunData


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}

PLAYED_SLACK_S = 1.5  # the last interval and the stop take about a second
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


def generator_health(run: RunData) -> GeneratorHealth:
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
    full = _total(ticks, "dropped_full") if "dropped_full" in ticks else 0.0
    arrivals: Arrivals | None = None
    if ticks["due"].notna().any():
        late = _total(ticks, "late")
        arrivals = {
            "due": int(due), "started": int(_total(ticks, "started")), "dropped": int(dropped),
            "dropped_full": int(full),
            "late": int(late), "late_max_ms": _max(ticks, "late_max_ms"),
            "dropped_pct": round(100 * dropped / due, 3) if due else 0.0,
            "late_pct": round(100 * late / due, 3) if due else 0.0,
        }
        # Dropped while every user of a full pool waited on the shop: the shop's doing,
        # judged by the delivery rule. The others found users free and still did not start.
        own = dropped - full
        if due and own / due > DROPPED_MAX:
            problems.append(f"load generator could not keep up: {int(own)} of {int(due)} "
                            f"due arrivals dropped with the user pool below max_users "
                            f"({100 * own / due:.1f}% > {100 * DROPPED_MAX:g}%)")
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


def workers_lost(run: RunData) -> list[WorkerLost]:
    """`worker_lost` events as {t, worker, users}."""
    lost: list[WorkerLost] = []
    for event in run.events:
        if event.get("kind") == "worker_lost":
            detail = _obj(event.get("detail"))
            users = detail.get("users")
            lost.append({"t": _round(event.get("t")), "worker": str(detail.get("worker", "?")),
                         "users": int(users) if isinstance(users, int | float) else None})
    return lost


def aborted(run: RunData) -> Aborted | None:
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


def stall_evidence(meta: dict[str, Any]) -> Stall:
    """The stall finding a summary carries for `decide`: {"reason": str | None, "hanging"}."""
    found = stalled(meta)
    return {"reason": found[0] if found else None, "hanging": bool(found and found[1])}


def blame_stall(verdict: Verdict, reasons: list[str], summary: Summary
                ) -> tuple[Verdict, list[str]]:
    """A stalled shop is the shop's failure: a run left inconclusive for what a stall causes
    (dropped arrivals, nothing recorded) fails instead, unless the generator itself was
    saturated; a pass with requests left hanging fails too. Timeouts are failed requests,
    judged by the error budgets like any other failure."""
    stall = _obj(summary.get("stall"))
    reason, hanging = stall.get("reason"), bool(stall.get("hanging"))
    if not reason:
        return verdict, reasons
    saturated = any(p.startswith("load generator saturated")
                    for p in summary["generator"]["problems"])
    if (verdict == "inconclusive" and not saturated) or (verdict == "pass" and hanging):
        return "fail", [reason, *reasons]
    return verdict, [*reasons, reason]


def target_line(summary: Summary) -> str:
    """The first line of every output: what was tested. The demo shop says so loudly."""
    target = summary.get("target") or {}
    if target.get("kind") == "demo":
        return ("target: the bundled DEMO SHOP (no host was named), not your shop; "
                "name yours with --host or target.host")
    return f"target: {target.get('host') or summary.get('host') or 'unknown'}"


def _died(summary: Summary) -> str | None:
    """Why the load process cannot have played the whole shape, or None."""
    lp = summary.get("load_process") or {}
    played, planned = lp.get("played_s"), lp.get("planned_s")
    after = (f" after {played:.0f} s of {planned:.0f} s" if played is not None and planned
             else "")
    code = lp.get("exit_code")
    if lp.get("signal"):
        return f"the load process died (signal {lp['signal']}){after}"
    if code is not None and code not in (0, 1):
        return f"the load process failed (exit code {code}){after}; see locust.log"
    reason = summary.get("exit_reason")
    if reason == "timeout":
        return (f"the load process did not stop by itself at the end of the shape{after}; "
                "it was stopped")
    if reason in (None, "engine_error", "interrupted", "aborted"):
        return None  # said by their own reasons
    if not lp.get("stop_event"):
        return f"the load process never recorded its stop{after}: it did not end normally"
    if played is not None and planned and played < planned - PLAYED_SLACK_S:
        return f"the shape ended early: {played:.0f} s of {planned:.0f} s played"
    return None


def _n(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _pct(ratio: float) -> str:
    return f"{100 * ratio:.1f}%" if ratio < 0.9995 else f"{100 * ratio:.0f}%"


def _delivery_reasons(summary: Summary) -> tuple[list[str], list[str]]:
    """(untrusted, broken) reasons from the delivery check: under-delivery the shop caused is
    the shop's failure; any other is the tool's or the generator's, and cannot be trusted."""
    d = summary.get("delivery") or {}
    untrusted: list[str] = []
    broken: list[str] = []
    if not d.get("judged"):
        untrusted.append(f"the planned load cannot be shown delivered: too little planned or "
                         f"recorded to judge (planned {d.get('planned', 0):g} {d.get('unit')})")
        return untrusted, broken
    healthy = bool((summary.get("generator") or {}).get("healthy", True))
    # The stall finding, not any request in flight: a healthy run stopped at 40/s always
    # leaves a few requests on the wire, and that is not the shop refusing its arrivals.
    stalled = bool((summary.get("stall") or {}).get("reason"))
    max_users = d.get("max_users")
    unit = d.get("unit")
    floor = f"{100 * float(d.get('min_delivered') or 0.95):g}%"
    for stage in d.get("stages") or []:
        if not stage.get("judged") or stage.get("held"):
            continue
        name = stage.get("name") or "?"
        ratio = stage.get("ratio") or 0.0
        got = (f"stage {name} delivered {_pct(ratio)} of its planned {unit} "
               f"({_n(stage.get('achieved') or 0)} of {_n(stage['planned'])}; min {floor})")
        if unit == "arrivals":
            shortfall = max(stage["planned"] - (stage["achieved"] or 0.0), 0.0)
            full = stage.get("dropped_full") or 0.0
            if healthy and (full >= 0.5 * shortfall or stalled):
                who = (f"all {max_users} users were waiting on the shop" if full
                       else "the shop stalled")
                broken.append(f"{full:.0f} arrivals could not start: {who}; {got}")
            else:
                untrusted.append(f"{got}: the load generator did not deliver the planned load")
        elif d.get("capped"):
            untrusted.append(f"{got}: the shape asks for more users than max_users "
                             f"({max_users}) allows")
        else:
            untrusted.append(f"{got}: the load generator did not start the planned users")
    if not d.get("held") and not (untrusted or broken):
        untrusted.append(f"{describe_delivery(d)}: the load generator did not deliver the "
                         "planned load")
    if not broken and d.get("held") and d.get("dropped_full") and healthy:
        arrivals = summary.get("arrivals")
        due = arrivals["due"] if arrivals else 0
        if due and d["dropped_full"] / due > DROPPED_MAX:
            broken.append(f"{d['dropped_full']:.0f} arrivals could not start: all {max_users} "
                          "users were waiting on the shop")
    return untrusted, broken
# --- the always-on allowed-hosts rule (docs/safety.md) -------------------------------------
MAX_REFUSAL_REASONS = 5
ALLOWED_HOSTS_RULE = "requests only to allowed hosts"


def refused_requests(run: RunData) -> Refused:
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
    refusals: list[Refusal] = [{"host": host, "where": where, "count": count}
                for (host, where), count in sorted(tally.items(), key=lambda kv: -kv[1])]
    total = sum(tally.values())
    return {"count": total, "passed": total == 0, "refusals": refusals}


def refusal_reasons(refused: Refused, limit: int | None = MAX_REFUSAL_REASONS
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


def decide(summary: Summary, *, tolerate_worker_loss: bool) -> tuple[Verdict, list[str]]:
    """The verdict and the reasons for it, from a summary's evidence (rules in docs/reports.md).

    Starts from "not shown": `pass` only when the load process lived to the end of the
    shape, exactly the expected workers took part, the planned load was delivered, the run
    is complete, every budget held and the shop did not stall.
    """
    return blame_stall(*_rules(summary, tolerate_worker_loss), summary)


def _rules(summary: Summary, tolerate_worker_loss: bool) -> tuple[Verdict, list[str]]:
    untrusted: list[str] = []
    incomplete: list[str] = []
    broken: list[str] = []
    notes: list[str] = []
    exit_reason = summary.get("exit_reason")
    if summary.get("budgets_implied"):
        notes.append("no budgets in the scenario: judged on the implied budget error_rate < 1%")
    if (summary.get("target") or {}).get("kind") == "demo":
        notes.append("target: the bundled demo shop (no host was named)")
    if not summary["requests"]:
        untrusted.append("no requests were recorded")
    if exit_reason == "engine_error":
        untrusted.append("the load engine failed (exit_reason engine_error); see locust.log")
    died = _died(summary)
    if died:
        untrusted.append(died)
    workers = summary.get("workers") or {}
    if workers.get("joined") is not None and workers["joined"] != workers.get("expected"):
        untrusted.append(f"{workers['joined']} load processes took part, "
                         f"{workers.get('expected')} expected")
    if workers.get("refused"):
        why = ", ".join(workers.get("refused_reasons") or [])
        notes.append(f"{workers['refused']} worker(s) that were not part of this run were "
                     f"refused ({why})")
    for lost in summary["workers_lost"]:
        text = f"worker {lost['worker']} was lost at t={lost['t']} s"
        if tolerate_worker_loss:
            notes.append(f"{text} (tolerated)")
        else:
            untrusted.append(f"{text}; rerun, or pass --tolerate-worker-loss to accept it")
    untrusted.extend(summary["generator"]["problems"])
    # A run cut short by Ctrl-C or an abort rule cannot have delivered its whole plan: the
    # shortfall is the stop's, said by its own reason, never the shop's or the generator's.
    if summary["requests"] and not died and exit_reason not in ("interrupted", "aborted"):
        not_delivered, shop_failed = _delivery_reasons(summary)
        untrusted.extend(not_delivered)
        broken.extend(shop_failed)
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
    shown = [f"all {held} budgets held" if held else "no budgets to check"]
    if summary.get("delivery"):
        shown.append(describe_delivery(summary["delivery"]))
    return "pass", shown + notes
