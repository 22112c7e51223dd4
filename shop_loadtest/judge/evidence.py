"""The evidence a verdict is earned from, read out of a run folder's data.

- `load_process`: did the load process live to the end of the shape (exit code, signal, the
  `stop` event, seconds played of planned);
- `workers`: how many load processes were expected, joined, were refused, were lost;
- `target`: the bundled demo shop or a named host;
- `delivery` (delivery.py): the planned load against what was delivered, per stage.

The verdict rules (judge/verdict.py `decide`) read only these dicts.
"""

from __future__ import annotations

import math
import signal
from typing import Any, Literal

from shop_loadtest.judge.delivery import DEFAULT_MIN_DELIVERED, Sample, delivery
from shop_loadtest.judge.model import Delivery, LoadProcess, Target, Workers
from shop_loadtest.results import RunData

PLAYED_SLACK_S = 1.5  # the last interval and the stop take about a second


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _f(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def planned_seconds(run: RunData) -> float | None:
    given = _f(_obj(run.meta.get("load_process")).get("planned_s"))
    if given is not None:
        return given
    ends = [_f(s.get("end_s")) for s in run.stages]
    return max((e for e in ends if e is not None), default=None)


def load_process(run: RunData) -> LoadProcess:
    """How the load process ended, and how much of the shape it played."""
    raw = _obj(run.meta.get("load_process"))
    code = raw.get("exit_code", run.meta.get("locust_exit_code"))
    code = int(code) if isinstance(code, int | float) else None
    sig = raw.get("signal")
    sig = int(sig) if isinstance(sig, int | float) else (-code if code is not None and code < 0
                                                          else None)
    stops = [e for e in run.events if e.get("kind") == "stop"]
    times = run.grid
    played = _f(stops[-1].get("t")) if stops else None
    if played is None and len(times):
        played = float(times[-1])
    try:
        name = signal.Signals(sig).name if sig else None
    except ValueError:
        name = None
    return {"exit_code": code, "signal": sig, "signal_name": name,
            "stop_event": bool(stops), "played_s": round(played, 3) if played is not None
            else None, "planned_s": planned_seconds(run)}


def workers(run: RunData) -> Workers:
    """Expected (run.json), joined (the `start` event), refused and lost (events)."""
    starts = [_obj(e.get("detail")) for e in run.events if e.get("kind") == "start"]
    start = starts[-1] if starts else {}
    expected = _obj(run.meta.get("workers")).get("expected", start.get("expected"))
    if not isinstance(expected, int | float):
        processes = run.meta.get("processes")
        expected = processes if isinstance(processes, int) else 1
    joined = start.get("workers")
    refused = [_obj(e.get("detail")) for e in run.events if e.get("kind") == "worker_refused"]
    lost = sum(1 for e in run.events if e.get("kind") == "worker_lost")
    return {"expected": int(expected), "joined": int(joined) if isinstance(joined, int | float)
            else None, "refused": len(refused),
            "refused_reasons": sorted({str(r.get("reason")) for r in refused}), "lost": lost}


def target(run: RunData) -> Target:
    raw = _obj(run.meta.get("target"))
    kind: Literal["demo", "named", "unknown"]
    if raw.get("kind") in ("demo", "named"):
        kind = "demo" if raw["kind"] == "demo" else "named"
    else:
        # A plain `locust --slt-results` run: Locust was given its --host.
        kind = "named" if run.meta.get("host") else "unknown"
    return {"kind": kind, "host": raw.get("host", run.meta.get("host"))}


def samples(run: RunData) -> list[Sample]:
    """The run's one-second samples, all load processes added up."""
    ticks = run.ticks
    if ticks.empty:
        return []
    out = []
    for t, rows in ticks.groupby("t", sort=True):
        users = rows["users"].dropna()
        out.append(Sample(
            t=float(t), dt=float(rows["dt"].max()),
            users=float(users.sum()) if len(users) else None,
            **{k: float(rows[k].sum(min_count=1)) if rows[k].notna().any() else 0.0
               for k in ("started", "due", "dropped", "dropped_full")}))
    return out


def delivery_of(run: RunData) -> Delivery:
    tolerance = _f(run.meta.get("min_delivered"))
    max_users = run.meta.get("max_users")
    return delivery(run.meta.get("model"), run.stages, samples(run),
                    min_delivered=tolerance if tolerance else DEFAULT_MIN_DELIVERED,
                    max_users=int(max_users) if isinstance(max_users, int | float) else None)


def in_flight_at_stop(run: RunData) -> int | None:
    """Requests still waiting on the shop when the load stopped, when the runtime counted
    them (an `in flight at stop` error kind): the evidence that a stall was the shop's."""
    errors = run.errors
    if errors.empty or "kind" not in errors:
        return None
    hit = errors[errors["kind"].astype(str).str.contains("in flight", na=False)]
    return int(hit["count"].sum()) if len(hit) else None


def timeouts(run: RunData) -> int:
    errors = run.errors
    if errors.empty or "kind" not in errors:
        return 0
    kinds = errors["kind"].astype(str).str.lower()
    return int(errors[kinds.str.contains("timeout", na=False)]["count"].sum())


__all__ = ["delivery_of", "in_flight_at_stop", "load_process", "samples", "target",
           "timeouts", "workers"]
