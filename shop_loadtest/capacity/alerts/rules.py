"""Alert rules from measured evidence: runway, usage, traffic above tested capacity (the SLO
burn-rate rules are in `slo`), and the PromQL pieces they share.

Pure: `Evidence` and `Settings` in, rules out (plus notes on what could not become a rule and
why). The PromQL uses the scenario's own metric names (monitor.resources,
monitor.traffic), so the rules watch in production what the load test watched.

Runway rules predict `horizon + for + one evaluation interval` ahead: a resource growing
steadily then pages with at least the whole horizon left, after the `for` delay and the
coarseness of evaluation (tested with promtool, see `unittests`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from shop_loadtest.capacity.alerts.evidence import (
    ROLLING_S,
    Evidence,
    ResourceEvidence,
)
from shop_loadtest.capacity.alerts.model import (
    AlertingRule,
    Rule,
    RuleFile,
    prom_duration,
)
from shop_loadtest.errors import InputError
from shop_loadtest.scenario.options import Selector

MATCH_ON = "on(job, instance) group_left()"  # a gauge and its limit come from one target


@dataclass(frozen=True)
class Settings:
    """How the rules are tuned; durations in seconds. `checked()` validates and rounds."""

    horizon_s: float = 4 * 3600.0
    lookback_s: float = 3600.0
    for_s: float = 300.0
    rate_window_s: float = 300.0
    interval_s: float = 60.0
    traffic_share: float = 0.8
    used_share: float = 0.8
    runbook_url: str = "RUNBOOK.md"

    def checked(self) -> Settings:
        """Round horizon and `for` up to whole evaluation intervals; reject nonsense."""
        i = self.interval_s
        if not (math.isfinite(i) and i > 0):
            raise InputError(f"--interval must be > 0, got {i}")
        for name, value in (("--horizon", self.horizon_s), ("--for", self.for_s),
                            ("--lookback", self.lookback_s),
                            ("--rate-window", self.rate_window_s)):
            if not math.isfinite(value) or value < 0:
                raise InputError(f"{name} must be a duration >= 0, got {value}")
        if self.horizon_s <= 0:
            raise InputError("--horizon must be > 0")
        for name, value in (("--lookback", self.lookback_s), ("--rate-window",
                                                               self.rate_window_s)):
            if value < 2 * i:
                raise InputError(f"{name} {prom_duration(value)} must span at least two "
                                 f"evaluation intervals (--interval {prom_duration(i)})")
        for name, share in (("--share", self.traffic_share), ("--used-share", self.used_share)):
            if not 0 < share <= 1:
                raise InputError(f"{name} must be in (0%, 100%], got {share:.0%}")
        return replace(self, horizon_s=_round_up(self.horizon_s, i),
                       for_s=_round_up(self.for_s, i))


def _round_up(value: float, step: float) -> float:
    return math.ceil(value / step - 1e-9) * step


@dataclass
class Built:
    rules: RuleFile
    notes: list[str] = field(default_factory=list)


# --- PromQL pieces ---------------------------------------------------------------------------
def camel(name: str) -> str:
    """`disk_space` -> `DiskSpace`: resource names in alert names."""
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", name) if p)


def anchor(alert: str) -> str:
    """The runbook heading's anchor (GitHub and most Markdown renderers)."""
    return alert.lower()


def with_matchers(metric: str, *matchers: str) -> str:
    """`shop_http_requests_total` + `status=~"5.."` -> `shop_http_requests_total{status=~"5.."}`."""
    name, _, inner = metric.strip().partition("{")
    parts = [p for p in (inner.rstrip("}").strip(), *matchers) if p and p.strip()]
    return f"{name}{{{','.join(p.strip() for p in parts)}}}" if parts else name


def number(value: float) -> str:
    """A PromQL number literal: short and exact enough (`196608`, `0.144`, `1.2e+10`)."""
    return f"{value:.6g}" if abs(value) < 1e15 else repr(float(value))


def le_matcher(limit_s: float) -> str:
    """The bucket of a latency limit; matches both `1` (Go clients) and `1.0` (Python)."""
    text = f"{limit_s:.6g}"
    if "e" not in text and float(text).is_integer():
        return f'le=~"{int(float(text))}(\\\\.0)?"'
    return f'le="{text}"'


def _fmt(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value:,.0f} bytes"
    return f"{value:,.6g} {unit}".rstrip()


def _work(selector: str) -> str:
    name = Selector.parse(selector).name
    for suffix in ("_total", "_count"):
        name = name.removesuffix(suffix)
    return name.removeprefix("shop_").rstrip("s") or name


# --- the rules -------------------------------------------------------------------------------
def _evidence(evidence: Evidence, **extra: str) -> dict[str, str]:
    return {**extra, "run_id": evidence.run_id, "measured_at": evidence.date}


def runway_name(res: ResourceEvidence) -> str:
    return f"Shop{camel(res.resource.name)}FullSoon"


def used_name(res: ResourceEvidence) -> str:
    return f"Shop{camel(res.resource.name)}AlmostFull"


def resource_rules(res: ResourceEvidence, evidence: Evidence, s: Settings,
                   base: dict[str, str]) -> list[Rule]:
    resource = res.resource
    used = str(Selector.parse(resource.used))
    if isinstance(resource.limit, str):
        limit_expr = f"{MATCH_ON} ({Selector.parse(resource.limit)} > 0)"
        limit_text = f"{_fmt(res.limit, resource.unit)} ({resource.limit}, as measured)"
    else:
        limit_expr = number(res.limit)
        limit_text = f"{_fmt(res.limit, resource.unit)} (fixed in the scenario)"
    ahead = s.horizon_s + s.for_s + s.interval_s
    growth = ("not measured (no work counted during the run)" if res.per_unit is None else
              f"{_fmt(res.per_unit, resource.unit)} per {_work(resource.per)} "
              f"(slope of {used} against {resource.per})")
    evidence_ann = _evidence(evidence, measured_limit=limit_text, growth_per_order=growth,
                             runway_at_forecast=_runway_text(res, evidence))
    horizon = prom_duration(s.horizon_s)
    name, full_name = used_name(res), runway_name(res)
    runway = AlertingRule(
        alert=full_name,
        expr=f"predict_linear({used}[{prom_duration(s.lookback_s)}], {number(ahead)}) >= "
             f"{limit_expr}",
        for_s=s.for_s,
        labels={**base, "severity": "page", "resource": resource.name, "horizon": horizon},
        annotations={
            "summary": f"{resource.name} will be full within {horizon} at the current growth",
            "description": (f"{used} grew over the last {prom_duration(s.lookback_s)} at a "
                            f"pace that reaches its limit within {horizon}. The load test "
                            f"measured {growth}; limit {limit_text}."),
            "runbook": f"{s.runbook_url}#{anchor(full_name)}", **evidence_ann})
    share = number(s.used_share)
    used_rule = AlertingRule(
        alert=name,
        expr=f"{used} / {limit_expr} >= {share}",
        for_s=s.for_s,
        labels={**base, "severity": "ticket", "resource": resource.name},
        annotations={
            "summary": f"{resource.name} is more than {s.used_share:.0%} used",
            "description": (f"{used} is above {s.used_share:.0%} of its limit, {limit_text}. "
                            f"In the load test the {resource.name} went from "
                            f"{_fmt(res.used_start, resource.unit)} to "
                            f"{_fmt(res.used_max, resource.unit)}."),
            "runbook": f"{s.runbook_url}#{anchor(name)}", **evidence_ann})
    return [runway, used_rule]


def _runway_text(res: ResourceEvidence, evidence: Evidence) -> str:
    if res.runway is None or res.units_per_hour is None:
        return "no forecast in the scenario"
    campaign = (f"; the campaign lasts {prom_duration(evidence.forecast_duration_s)}"
                if evidence.forecast_duration_s else "")
    return (f"{res.runway} from the run's start at {res.units_per_hour:,.0f} "
            f"{_work(res.resource.per)}s/h{campaign}")


TRAFFIC_ALERT = "ShopTrafficAboveTestedCapacity"


def traffic_expr(evidence: Evidence, s: Settings) -> tuple[str, float] | None:
    traffic = evidence.monitor.traffic if evidence.monitor else None
    if traffic is None or traffic.requests is None or evidence.capacity is None:
        return None
    threshold = round(s.traffic_share * evidence.capacity.rps, 3)
    selected = with_matchers(traffic.requests, traffic.select)
    return (f"sum by (job) (rate({selected}[{prom_duration(s.rate_window_s)}])) > "
            f"{number(threshold)}", threshold)


def traffic_rule(evidence: Evidence, s: Settings, base: dict[str, str], notes: list[str]
                 ) -> AlertingRule | None:
    built = traffic_expr(evidence, s)
    if built is None:
        if evidence.monitor is not None and (evidence.monitor.traffic is None
                                             or evidence.monitor.traffic.requests is None):
            notes.append("monitor.traffic.requests is not set: no traffic rule")
        return None
    expr, threshold = built
    cap = evidence.capacity
    assert cap is not None
    if cap.source == "find-capacity":
        tested = (f"{cap.rps:,.1f} requests/s at {cap.journeys_rate:g} journeys/s, the highest "
                  f"sustainable rate find-capacity measured ({cap.folder})")
    else:
        tested = (f"{cap.rps:,.1f} requests/s, the highest {prom_duration(ROLLING_S)} rate the run "
                  "held before any budget broke (a lower bound: run find-capacity for the "
                  "real limit)")
    return AlertingRule(
        alert=TRAFFIC_ALERT, expr=expr, for_s=s.for_s,
        labels={**base, "severity": "page"},
        annotations={
            "summary": (f"traffic above {s.traffic_share:.0%} of the tested capacity "
                        f"({threshold:,.1f} requests/s)"),
            "description": (f"The shop answers more than {threshold:,.1f} requests/s over "
                            f"{prom_duration(s.rate_window_s)}: {s.traffic_share:.0%} of "
                            f"{tested}. Beyond it, nobody knows how the shop behaves."),
            "runbook": f"{s.runbook_url}#{anchor(TRAFFIC_ALERT)}",
            **_evidence(evidence, tested_capacity=tested,
                        measured_limit=f"{cap.rps:,.1f} requests/s")})
