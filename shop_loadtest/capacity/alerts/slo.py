"""The scenario's latency and error budgets as multiwindow, multi-burn-rate SLO alerts (the SRE
workbook's method), over the shop's own counter and histogram named in monitor.traffic.

Pure: `Evidence` and `Settings` in, recording and alerting rules out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shop_loadtest.capacity.alerts.evidence import BudgetEvidence, Evidence
from shop_loadtest.capacity.alerts.model import AlertingRule, RecordingRule, Rule, prom_duration
from shop_loadtest.capacity.alerts.rules import (
    Settings,
    _evidence,
    anchor,
    le_matcher,
    number,
    with_matchers,
)

# The SRE workbook's multiwindow, multi-burn-rate alerts for a 30-day error budget:
# (burn rate, long window, short window, severity). 14.4x burns 2% of it in 1 h.
BURN_TIERS = ((14.4, 3600.0, 300.0, "page"), (6.0, 21600.0, 1800.0, "page"),
              (3.0, 86400.0, 7200.0, "ticket"), (1.0, 259200.0, 21600.0, "ticket"))
SLO_WINDOWS = sorted({w for tier in BURN_TIERS for w in tier[1:3]})

# --- SLOs: multiwindow, multi-burn-rate --------------------------------------------------------
@dataclass(frozen=True)
class Slo:
    """One budget as an SLO: `budget` is the allowed share of bad requests (1% errors, 5%
    slower than the p95 limit)."""

    kind: str  # errors | latency
    expr: str  # the budget it comes from
    budget: float
    record: str  # recording rule name prefix (without the window)
    bad_ratio: str  # PromQL template with {w} for the window
    alert: str
    select: str  # the label matchers of the requests it is about
    le: float | None = None  # latency limit in seconds


def endpoint_matchers(endpoint: str, mapping: dict[str, str]) -> str | None:
    """The PromQL matchers monitor.traffic.endpoints gives a budget's endpoint (any case)."""
    found = {k.lower(): v for k, v in mapping.items()}.get(endpoint.lower())
    return found.strip() if found else None


def slos_of(evidence: Evidence, notes: list[str]) -> list[Slo]:
    traffic = evidence.monitor.traffic if evidence.monitor else None
    out = []
    for b in evidence.budgets:
        kind = _slo_kind(b)
        if kind is None:
            continue
        if traffic is None or traffic.requests is None:
            notes.append(f"budget {b.expr!r}: monitor.traffic.requests is not set: no SLO")
            continue
        select = traffic.select
        if b.endpoint is not None:
            extra = endpoint_matchers(b.endpoint, traffic.endpoints)
            if extra is None:
                notes.append(f"budget {b.expr!r}: the shop's metrics name routes, not the "
                             f"scenario's endpoints; map {b.endpoint!r} to label matchers in "
                             "monitor.traffic.endpoints for an SLO alert")
                continue
            select = ",".join(p for p in (select, extra) if p)
        total = _rate_sum(with_matchers(traffic.requests, select))
        if kind == "errors":
            bad = _rate_sum(with_matchers(traffic.requests, select, traffic.errors))
            out.append(Slo("errors", b.expr, b.limit, "shop_loadtest:slo_errors_per_request",
                           f"{bad} / {total}", "ShopErrorBudgetBurn", select))
            continue
        if traffic.latency is None:
            notes.append(f"budget {b.expr!r}: monitor.traffic.latency is not set: no SLO")
            continue
        q, limit_s = float(b.arg), b.limit / 1000.0
        fast = _rate_sum(with_matchers(traffic.latency + "_bucket", select,
                                       le_matcher(limit_s)))
        count = _rate_sum(with_matchers(traffic.latency + "_count", select))
        out.append(Slo("latency", b.expr, round(1 - q / 100.0, 9),
                       "shop_loadtest:slo_requests_slower_than_limit",
                       f"1 - ({fast} / {count})", "ShopLatencyBudgetBurn", select, le=limit_s))
    return out


def _rate_sum(selector: str) -> str:
    """`sum by (job) (rate(x[{w}]))`, the window left as `{w}` for each recording rule."""
    return f"sum by (job) (rate({selector}[{{w}}]))"


def _slo_kind(b: BudgetEvidence) -> str | None:
    if b.op not in ("<", "<="):
        return None
    if b.stat == "error_rate":
        return "errors"
    if re.fullmatch(r"p\d+(\.\d+)?", b.stat) and b.unit == "ms":
        return "latency"
    return None


def slo_labels(slo: Slo, base: dict[str, str]) -> dict[str, str]:
    return {**base, "slo": slo.expr}


def tiers(slo: Slo) -> list[tuple[float, float, float, str]]:
    """The burn tiers that can fire: burn x budget must stay below 100% bad."""
    return [t for t in BURN_TIERS if t[0] * slo.budget < 1.0]


def slo_rules(evidence: Evidence, s: Settings, base: dict[str, str], notes: list[str]
              ) -> list[Rule]:
    rules: list[Rule] = []
    for slo in slos_of(evidence, notes):
        kept = tiers(slo)
        if not kept:
            notes.append(f"budget {slo.expr!r}: allows {slo.budget:.0%} bad requests; no "
                         "burn rate can exceed it: no SLO alert")
            continue
        labels = slo_labels(slo, base)
        rules += [RecordingRule(record=f"{slo.record}:ratio_rate{prom_duration(w)}",
                                expr=slo.bad_ratio.replace("{w}", prom_duration(w)), labels=labels)
                  for w in SLO_WINDOWS]
        observed = next((b.observed for b in evidence.budgets if b.expr == slo.expr), None)
        for severity in ("page", "ticket"):
            mine = [t for t in kept if t[3] == severity]
            if not mine:
                continue
            sel = f'{{slo="{_escape(slo.expr)}"}}'
            expr = "\nor\n".join(f"(\n{_burn(slo, sel, b, lw, sw)}\n)" for b, lw, sw, _ in mine)
            what = ("errors" if slo.kind == "errors"
                    else f"requests slower than {slo.le:g} s")
            rules.append(AlertingRule(
                alert=slo.alert, expr=expr, labels={**labels, "severity": severity},
                annotations={
                    "summary": (f"{slo.expr}: the error budget burns "
                                f"{'fast' if severity == 'page' else 'steadily'}"),
                    "description": (
                        f"The share of {what} is above "
                        + " / ".join(f"{b:g}x the budget over {prom_duration(lw)} and "
                                     f"{prom_duration(sw)}" for b, lw, sw, _ in mine)
                        + f" (budget {slo.budget:.4g} of requests, from the load test's "
                        f"budget {slo.expr}; 30-day error budget)."),
                    "runbook": f"{s.runbook_url}#{anchor(slo.alert)}",
                    **_evidence(evidence, budget=slo.expr,
                                measured_limit=f"{slo.expr} (observed in the run: "
                                               f"{_observed(slo, observed)})")}))
    return rules


def _burn(slo: Slo, sel: str, burn: float, long: float, short: float) -> str:
    """Both windows above burn x budget: the long one proves it matters, the short one that
    it is still going on (so the alert resets soon after the burn stops)."""
    limit = f"({number(burn)} * {number(slo.budget)})"
    return (f"{slo.record}:ratio_rate{prom_duration(long)}{sel} > {limit}\nand\n"
            f"{slo.record}:ratio_rate{prom_duration(short)}{sel} > {limit}")


def _observed(slo: Slo, value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:.2%}" if slo.kind == "errors" else f"{value:g} ms"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
