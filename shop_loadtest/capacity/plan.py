"""Plan a test from the funnel: visitors and conversion ratios -> journey weights, arrival
rates, concurrent users (Little's law) and the load workers needed.

>>> p = funnel_plan(visitors_per_s=10.0, steps=[("browse", 1.0, 20.0, 4),
...                                               ("cart", 0.3, 30.0, 6), ("buy", 0.1, 45.0, 8)])
>>> [(j.journey, j.weight, j.rate, j.users) for j in p.journeys]
[('browse', 0.7, 7.0, 140.0), ('cart', 0.2, 2.0, 60.0), ('buy', 0.1, 1.0, 45.0)]

Each visitor goes as deep into the funnel as their step's `reach` says: with reach browse 100%,
cart 30%, buy 10%, 70% only browse, 20% stop at the cart, 10% buy. Journey j then starts at
`rate_j = visitors/s x weight_j`, and by Little's law `users_j = rate_j x session_j`, where the
session is the journey's think time plus its requests at the assumed response time.
See docs/capacity.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shop_loadtest.errors import InputError

if TYPE_CHECKING:
    from shop_loadtest.scenario import Journey, Scenario

# One load process (FastHttpUser, our recorder, an arrival scheduler) comfortably sends this
# many requests a second on one core, leaving room for its heartbeats; Locust itself reaches
# ~7,000/s against a trivial server (LOCUST_NOTES). Override with --rps-per-worker or
# plan.rps_per_worker once docs/performance.md has a figure measured for your machines.
RPS_PER_WORKER = 1000.0
RPS_PER_WORKER_SOURCE = "assumed 1,000 requests/s per load process; see docs/capacity.md"


@dataclass(frozen=True)
class JourneyPlan:
    journey: str
    reach: float
    weight: float  # share of visitors whose visit is this journey
    rate: float  # journeys started per second
    session_s: float
    users: float  # Little's law: rate x session
    requests: int
    requests_per_s: float


@dataclass(frozen=True)
class Plan:
    visitors_per_s: float
    journeys: list[JourneyPlan]
    rps_per_worker: float = RPS_PER_WORKER
    rps_source: str = RPS_PER_WORKER_SOURCE
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return sum(j.rate for j in self.journeys)

    @property
    def users(self) -> float:
        return sum(j.users for j in self.journeys)

    @property
    def requests_per_s(self) -> float:
        return sum(j.requests_per_s for j in self.journeys)

    @property
    def workers(self) -> int:
        return max(1, math.ceil(self.requests_per_s / self.rps_per_worker))

    @property
    def orders_per_hour(self) -> float:
        """Visits that reach the funnel's last step, per hour (checkouts)."""
        return self.journeys[-1].rate * 3600.0 if self.journeys else 0.0


def funnel_plan(*, visitors_per_s: float, steps: Sequence[tuple[str, float, float, int]],
                rps_per_worker: float = RPS_PER_WORKER,
                rps_source: str = RPS_PER_WORKER_SOURCE) -> Plan:
    """Pure: (journey, reach, session seconds, requests) in funnel order -> a Plan."""
    out = []
    for i, (name, reach, session_s, requests) in enumerate(steps):
        deeper = steps[i + 1][1] if i + 1 < len(steps) else 0.0
        weight = round(reach - deeper, 12)
        rate = visitors_per_s * weight
        out.append(JourneyPlan(name, reach, weight, round(rate, 9), session_s,
                               round(rate * session_s, 9), requests,
                               round(rate * requests, 9)))
    return Plan(visitors_per_s, out, rps_per_worker, rps_source)


def _think_mean(value: Any) -> float:
    """Mean of a think step: `2s`, `1s..3s`, `{exponential: 2s}`, `{normal: 2s, sd: ...}`."""
    from shop_loadtest.scenario import parse_think

    if isinstance(value, str | int | float):
        low, high = parse_think(value)
        return (low + high) / 2
    mean = getattr(value, "exponential", None) or getattr(value, "normal", None) or 0.0
    return float(mean)


def session(journey: Journey, *, think: float | None, response_time: float) -> tuple[float, int]:
    """(seconds a visit lasts, requests it makes) for one journey."""
    requests = sum(1 for s in journey.steps if s.request is not None)
    if think is not None:
        pauses = think * max(requests - 1, 0)
    else:
        pauses = sum(_think_mean(s.think) for s in journey.steps if s.think is not None)
    return pauses + requests * response_time, requests


def plan_scenario(scenario: Scenario, base: Path = Path("."),
                  rps_per_worker: float | None = None) -> Plan:
    """The plan of a scenario's `plan:` section, against its journeys and load shape."""
    config = scenario.plan
    if config is None:
        raise InputError(f"scenario {scenario.name!r} has no plan: section "
                         "(see docs/capacity.md)")
    journeys = {j.name: j for j in scenario.journeys}
    notes = []
    steps = []
    for i, step in enumerate(config.funnel):
        journey = journeys.get(step.journey)
        if journey is None:
            raise InputError(f"plan.funnel.{i}.journey: no journey named {step.journey!r} "
                             f"(journeys: {', '.join(journeys)})")
        seconds, requests = session(journey, think=config.think,
                                    response_time=config.response_time)
        steps.append((step.journey, step.reach, seconds, requests))
    if config.visitors_per_minute is not None:
        visitors = config.visitors_per_minute / 60.0
    elif scenario.load.model == "arrival_rate":
        visitors = scenario.profile(base).peak()
        notes.append(f"visitors: the load shape's peak, {visitors:g} journeys/s")
    else:
        raise InputError("plan.visitors_per_minute is needed when the load is in users "
                         "(model: users); or use model: arrival_rate")
    if config.funnel[0].reach < 1:
        notes.append(f"{1 - config.funnel[0].reach:.0%} of visitors bounce (no journey)")
    left = [name for name in journeys if name not in {s.journey for s in config.funnel}]
    if left:
        notes.append(f"journeys outside the funnel (weight 0 in the plan): {', '.join(left)}")
    figure = rps_per_worker or config.rps_per_worker
    plan = funnel_plan(visitors_per_s=visitors, steps=steps,
                       rps_per_worker=figure or RPS_PER_WORKER,
                       rps_source="given" if figure else RPS_PER_WORKER_SOURCE)
    plan.notes.extend(notes)
    return plan


def render(plan: Plan) -> str:
    """The plan as text: a table, the totals, and YAML to paste into the scenario."""
    rows = [("journey", "reach", "weight", "journeys/s", "session", "users", "req/s")]
    for j in plan.journeys:
        rows.append((j.journey, f"{j.reach:.0%}", f"{j.weight:.1%}", f"{j.rate:.3g}",
                     f"{j.session_s:.1f} s", f"{j.users:.1f}", f"{j.requests_per_s:.3g}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [
        "",
        f"visitors:          {plan.visitors_per_s:.3g}/s ({plan.visitors_per_s * 60:,.0f}/min)",
        f"arrival rate:      {plan.rate:.3g} journeys/s",
        f"requests:          {plan.requests_per_s:.3g}/s",
        f"concurrent users:  {plan.users:,.0f} (Little's law: journeys/s x session length)",
        f"orders:            {plan.orders_per_hour:,.0f}/h (forecast.orders_per_hour)",
        f"load workers:      {plan.workers} ({plan.rps_source})",
        "",
        "# journey weights and load for the scenario:",
        *[f"#   {j.journey}: weight {round(j.weight * 100, 2):g}" for j in plan.journeys],
        "load:",
        "  model: arrival_rate",
        f"  max_users: {max(10, math.ceil(plan.users * 1.5))}",
        f"  stages: [{{duration: 1m, target: {plan.rate:.3g}}}, "
        f"{{duration: 10m, target: {plan.rate:.3g}}}]",
    ]
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)


def as_json(plan: Plan) -> dict[str, Any]:
    return {"visitors_per_s": plan.visitors_per_s, "rate": plan.rate,
            "requests_per_s": plan.requests_per_s, "users": plan.users,
            "workers": plan.workers, "rps_per_worker": plan.rps_per_worker,
            "orders_per_hour": plan.orders_per_hour, "notes": plan.notes,
            "journeys": [j.__dict__ for j in plan.journeys]}
