"""Was the planned load delivered? The always-on check behind every verdict.

Open model: the arrivals that started in each stage against the arrivals its rate plans
(the integral of the rate over the stage). Closed model: the users running in each stage
after its ramp (the median of the one-second samples, past a grace period) against its target.
A stage with too little planned to judge a ratio on is reported, not judged.

Pure: from the run's stages and its one-second samples (`Sample`), no clock, no files.

>>> stages = [{"name": "s", "start_s": 0.0, "end_s": 10.0, "from": 10.0, "to": 10.0}]
>>> samples = [Sample(t=float(t), dt=1.0, started=10) for t in range(1, 11)]
>>> delivery("arrival_rate", stages, samples)["ratio"]
1.0
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Literal

from shop_loadtest.judge.model import Delivery, DeliveryStage

DEFAULT_MIN_DELIVERED = 0.95
MIN_ARRIVALS_JUDGED = 10.0  # fewer planned arrivals than this: a ratio says nothing
BOUNDARY_ARRIVALS, BOUNDARY_S = 2.0, 0.05
# Closed model: the shape applies a target within a second (one tick) and spawns it within
# half a second, so users are at a stage's target this long after it began.
RAMP_GRACE_S = 1.5


@dataclass(frozen=True)
class Sample:
    """One interval [t - dt, t] of the whole run (all load processes added up)."""

    t: float
    dt: float = 1.0
    users: float | None = None
    started: float = 0.0
    due: float = 0.0
    dropped: float = 0.0
    dropped_full: float = 0.0


def _area(stage: dict[str, Any], a: float, b: float) -> float:
    """Integral of a stage's linear target over [a, b] (clamped to the stage)."""
    start, end = float(stage["start_s"]), float(stage["end_s"])
    lo, hi = max(a, start), min(b, end)
    if hi <= lo or end <= start:
        return 0.0
    v0, v1 = float(stage["from"]), float(stage["to"])

    def value(t: float) -> float:
        return v0 + (v1 - v0) * (t - start) / (end - start)

    return (value(lo) + value(hi)) / 2.0 * (hi - lo)


def _open(stages: list[dict[str, Any]], samples: list[Sample], min_delivered: float
          ) -> list[DeliveryStage]:
    keys = ("started", "due", "dropped", "dropped_full")
    totals = [dict.fromkeys(keys, 0.0) for _ in stages]
    planned = [_area(s, float(s["start_s"]), float(s["end_s"])) for s in stages]
    busy = [i for i, p in enumerate(planned) if p > 0]
    for sample in samples:
        a, b = sample.t - sample.dt, sample.t
        shares = [_area(s, a, b) for s in stages]
        whole = sum(shares)
        if whole <= 0:
            # Arrivals that started after their stage ended (a queue draining at the end,
            # the last flush): they belong to the nearest stage that planned any.
            if not busy:
                continue
            before = [i for i in busy if float(stages[i]["start_s"]) < b]
            shares = [0.0] * len(stages)
            shares[before[-1] if before else busy[0]] = 1.0
            whole = 1.0
        for i, share in enumerate(shares):
            if share:
                for key in keys:
                    totals[i][key] += getattr(sample, key) * share / whole
    out: list[DeliveryStage] = []
    for stage, plan, got in zip(stages, planned, totals, strict=True):
        judged = plan >= MIN_ARRIVALS_JUDGED
        ratio = got["started"] / plan if plan > 0 else None
        # An arrival due right at a stage's edge can start in the interval after it: that
        # many are the measurement's, not missing.
        edge = BOUNDARY_ARRIVALS + BOUNDARY_S * (float(stage["from"]) + float(stage["to"]))
        out.append({
            "name": stage.get("name"), "kind": _kind(stage), "planned": round(plan, 1),
            "achieved": round(got["started"], 1),
            "ratio": round(ratio, 4) if ratio is not None else None,
            "due": round(got["due"], 1), "dropped": round(got["dropped"], 1),
            "dropped_full": round(got["dropped_full"], 1), "judged": judged,
            "held": (not judged) or (ratio is not None and (
                ratio >= min_delivered or got["started"] >= min_delivered * plan - edge)),
        })
    return out


def _kind(stage: dict[str, Any]) -> Literal["hold", "ramp", "jump"]:
    if float(stage["end_s"]) <= float(stage["start_s"]):
        return "jump"
    return "hold" if float(stage["from"]) == float(stage["to"]) else "ramp"


def _closed(stages: list[dict[str, Any]], samples: list[Sample], min_delivered: float
            ) -> list[DeliveryStage]:
    out: list[DeliveryStage] = []
    for stage in stages:
        start, end = float(stage["start_s"]), float(stage["end_s"])
        kind = _kind(stage)
        target = max(float(stage["from"]), float(stage["to"]))
        # `users` is the level when the sample was taken, at `t`.
        if kind == "hold":
            window = [s.users for s in samples if s.users is not None
                      and start + RAMP_GRACE_S - 1e-6 <= s.t <= end + 0.5]
            achieved = statistics.median(window) if window else None
        elif kind == "ramp":
            window = [s.users for s in samples if s.users is not None
                      and start < s.t <= end + RAMP_GRACE_S]
            achieved = max(window) if window else None
        else:
            window, achieved = [], None
        judged = bool(window) and target > 0 and kind == "hold"
        ratio = achieved / target if achieved is not None and target > 0 else None
        out.append({
            "name": stage.get("name"), "kind": kind, "planned": round(target, 1),
            "achieved": round(achieved, 1) if achieved is not None else None,
            "ratio": round(ratio, 4) if ratio is not None else None, "judged": judged,
            "held": (not judged) or (ratio is not None and ratio >= min_delivered),
        })
    if not any(s["judged"] for s in out):
        # No hold long enough to judge after its ramp: judge every stage by the most users
        # it reached.
        for row, spec in zip(out, stages, strict=True):
            start, end = float(spec["start_s"]), float(spec["end_s"])
            seen = [s.users for s in samples if s.users is not None
                    and start < s.t <= end + RAMP_GRACE_S]
            if row["kind"] != "jump" and seen and row["planned"] > 0:
                row["achieved"] = round(max(seen), 1)
                ratio = round(max(seen) / row["planned"], 4)
                row["ratio"] = ratio
                row["judged"] = True
                row["held"] = ratio >= min_delivered
    return out


def delivery(model: str | None, stages: list[dict[str, Any]], samples: list[Sample], *,
             min_delivered: float = DEFAULT_MIN_DELIVERED, max_users: int | None = None
             ) -> Delivery:
    """Planned against achieved, per stage and for the run, with the tolerance applied.

    `held` is True when every judged stage delivered at least `min_delivered` and something
    was judged; `judged` False means the run gave nothing to judge delivery on.
    """
    stages = [s for s in stages if isinstance(s, dict) and "start_s" in s and "end_s" in s]
    open_model = model == "arrival_rate"
    per_stage = (_open if open_model else _closed)(stages, samples, min_delivered)
    judged = [s for s in per_stage if s["judged"]]
    held = [s["held"] for s in judged]
    if open_model:
        planned = sum(s["planned"] for s in per_stage)
        achieved = sum(s["achieved"] or 0.0 for s in per_stage)
        if not judged and planned >= 1:
            # Every stage too small to judge alone: judge the run's arrivals as one.
            held = [achieved / planned >= min_delivered]
    else:
        planned = sum(s["planned"] for s in judged)
        achieved = sum(s["achieved"] or 0.0 for s in judged)
    ratio = achieved / planned if planned > 0 else None
    peak = max((max(float(s["from"]), float(s["to"])) for s in stages), default=0.0)
    return {
        "model": model, "unit": "arrivals" if open_model else "users",
        "min_delivered": min_delivered, "max_users": max_users,
        "planned": round(planned, 1), "achieved": round(achieved, 1),
        "ratio": round(ratio, 4) if ratio is not None else None,
        "judged": bool(held), "held": bool(held) and all(held),
        "capped": (not open_model and max_users is not None and peak > max_users),
        "dropped_full": round(sum(s.get("dropped_full", 0.0) for s in per_stage), 1),
        "stages": per_stage,
    }


def describe(result: Delivery) -> str:
    """'delivered 99.6% of planned arrivals (min 95% per stage)', like a budget line."""
    ratio = result.get("ratio")
    if ratio is None:
        return f"delivery: nothing planned to judge ({result.get('unit')})"
    pct = 100.0 * ratio
    shown = f"{math.floor(pct * 10) / 10:g}" if pct < 100 else f"{pct:.0f}"
    return (f"delivered {shown}% of planned {result['unit']} "
            f"(min {100 * float(result['min_delivered']):g}% per stage)")
