"""Each side of a comparison: can its run be trusted, and what did it run against?

A comparison is only as good as its worse side. For each run it reads: the load generator's
health (judge/verdict.generator_health), the machine's (judge/machine.py), the delivery of the
planned load (`delivery` in run.json, when the run recorded it) and the kind of target. A side
with a problem makes the comparison `inconclusive`: a busy machine or a saturated generator
looks exactly like a slower release.

    side = Side.of(run, "new")
    side.problems   # ["new run: busy machine: other processes left ..."]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shop_loadtest.judge.machine import MachineHealth, machine_health
from shop_loadtest.results import RunData


@dataclass(frozen=True)
class Side:
    label: str  # base | new
    name: str
    requests: int
    generator_healthy: bool
    generator: str  # one line: CPU, loop lag
    machine: MachineHealth
    delivery: str  # one line, or "not recorded"
    delivery_ok: bool | None  # None: not recorded
    target_kind: str  # demo | named | unknown (run.json's target.kind)
    host: str | None
    problems: tuple[str, ...]

    @classmethod
    def of(cls, run: RunData, label: str, *, tolerate_busy_machine: bool = False) -> Side:
        """The side of `run`; a busy machine is not a problem when `tolerate_busy_machine`
        (a runner that is always shared: the floors alone then guard against its noise)."""
        from shop_loadtest.judge.verdict import generator_health

        gen = generator_health(run)
        machine = machine_health(run.ticks)
        delivery, delivered = describe_delivery(run.meta.get("delivery"))
        requests = int(run.intervals["n"].sum()) if len(run.intervals) else 0
        problems = [] if requests else ["recorded no requests"]
        problems += list(gen["problems"])
        if machine.problem and not tolerate_busy_machine:
            problems.append(machine.problem)
        if delivered is False:
            problems.append(f"the planned load was not delivered ({delivery})")
        cpu, lag = gen["cpu_max_pct"], gen["loop_lag_max_ms"]
        generator = ("healthy" if gen["healthy"] else "UNHEALTHY") + (
            f", CPU up to {cpu:g}%" if cpu is not None else "") + (
            f", loop lag up to {lag:g} ms" if lag is not None else "")
        host = run.meta.get("host")
        return cls(label=label, name=run.run_dir.name if run.run_dir else str(
            run.meta.get("scenario", "?")), requests=requests,
            generator_healthy=bool(gen["healthy"]), generator=generator, machine=machine,
            delivery=delivery, delivery_ok=delivered, target_kind=target_kind(run),
            host=str(host) if host else None,
            problems=tuple(f"{label} run: {p}" for p in problems))


def target_kind(run: RunData) -> str:
    """run.json's `target.kind` (`demo` or `named`) when the run recorded it; else `demo` when
    the runner started the bundled shop (demo-shop.log is in the folder), `named` with a host,
    `unknown` without."""
    target = run.meta.get("target")
    if isinstance(target, dict) and target.get("kind"):
        return str(target["kind"])
    if run.run_dir is not None and (run.run_dir / "demo-shop.log").exists():
        return "demo"
    return "named" if run.meta.get("host") else "unknown"


def describe_delivery(delivery: Any) -> tuple[str, bool | None]:
    """(one line, delivered?) from run.json's `delivery` (judge/delivery.py: `held`, `ratio`,
    `planned`/`achieved`, `stages`), tolerant of its shape. Under-delivery the shop caused
    (`cause: shop`, or arrivals that could not start because every user was waiting on the
    shop, `dropped_full`) is the shop's failure, a real result: it does not make the side
    untrustworthy. A delivery too small to judge (`judged: false`) is shown, not held against
    the side: its own verdict already says so."""
    if delivery is None:
        return "not recorded", None
    if not isinstance(delivery, dict):
        return f"unreadable ({type(delivery).__name__})", None
    if delivery.get("judged") is False:
        return "too little planned to judge", None
    ratio = _ratio(delivery)
    stages = delivery.get("stages")
    parts = []
    if ratio is not None:
        parts.append(f"{ratio * 100:.1f}% of planned")
    if isinstance(stages, list):
        ratios = [r for r in (_ratio(s) for s in stages if isinstance(s, dict)) if r is not None]
        if ratios:
            parts.append(f"lowest stage {min(ratios) * 100:.1f}%")
    verdict = _verdict(delivery)
    if verdict is None and isinstance(stages, list):
        verdicts = [_verdict(s) for s in stages if isinstance(s, dict)]
        verdict = False if False in verdicts else (True if verdicts and all(verdicts) else None)
    cause = str(delivery.get("cause") or delivery.get("blame") or "").lower()
    planned, achieved, full = (_float(delivery.get(k))
                               for k in ("planned", "achieved", "dropped_full"))
    if planned is not None and achieved is not None and full and (
            full >= 0.5 * (planned - achieved)):
        cause = "shop"
    if verdict is False and cause in ("shop", "target"):
        parts.append("short because the shop was slow")
        verdict = True
    text = ", ".join(parts) or "recorded"
    return (text if verdict is not False else f"{text}: short"), verdict


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _ratio(block: dict[str, Any]) -> float | None:
    for key in ("ratio", "delivered"):
        value = block.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    for key in ("delivered_pct", "achieved_pct", "pct"):
        value = block.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) / 100.0
    planned, achieved = block.get("planned"), block.get("achieved")
    if isinstance(planned, int | float) and isinstance(achieved, int | float) and planned:
        return float(achieved) / float(planned)
    return None


def _verdict(block: dict[str, Any]) -> bool | None:
    for key in ("ok", "passed", "held"):
        if isinstance(block.get(key), bool):
            return bool(block[key])
    status = block.get("status")
    if isinstance(status, str):
        return status.lower() in ("ok", "pass", "passed", "held", "delivered")
    return None
