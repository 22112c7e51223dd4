"""`promtool test rules` cases for the generated rules, from the run's own figures.

Each case feeds synthetic series and says when an alert must fire and when it must not:

- runway: the resource grows at the measured growth per unit of work times the forecast's
  work per hour (or the run's own); the page is firing at least the horizon before the
  resource is full, and silent before that;
- usage: 85% used fires, 70% does not (with the default 80% share);
- traffic: requests at 90% of the tested capacity fire, at 70% they do not;
- SLO: bad requests above the fast burn rate page, between the slow and fast rates open a
  ticket only, at half the budget nothing fires.
"""

from __future__ import annotations

import math
import re

from shop_loadtest.capacity.alerts.evidence import Evidence, ResourceEvidence
from shop_loadtest.capacity.alerts.model import (
    AlertingRule,
    AlertTest,
    ExpectedAlert,
    RuleFile,
    Series,
    TestCase,
    TestFile,
    prom_duration,
)
from shop_loadtest.capacity.alerts.rules import (
    TRAFFIC_ALERT,
    Settings,
    runway_name,
    traffic_expr,
    used_name,
)
from shop_loadtest.capacity.alerts.slo import Slo, slo_labels, slos_of, tiers
from shop_loadtest.scenario.options import Selector, Traffic

TARGET = {"job": "shop", "instance": "shop:8800"}
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"\s*,?')
_CANDIDATES = ("500", "503", "507", "599", "200", "201", "404", "GET", "POST", "/api/checkout",
               "/api/products", "shop", "x")


def _labels(text: str) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in text_labels(text).items()) + "}"


def text_labels(text: str) -> dict[str, str]:
    return dict(sorted(((k, v) for k, v in _parse(text))))


def _parse(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(3)) for m in _MATCHER.finditer(text)]


def satisfying(matchers: str, *, not_matching: str = "") -> dict[str, str] | None:
    """Label values that satisfy PromQL `matchers` (and fail `not_matching`); None if we
    cannot find any (a regex our candidates do not meet)."""
    out: dict[str, str] = {}
    wanted = [(m.group(1), m.group(2), m.group(3)) for m in _MATCHER.finditer(matchers)]
    negated = [(m.group(1), m.group(2), m.group(3)) for m in _MATCHER.finditer(not_matching)]
    names = {n for n, _, _ in wanted + negated}
    for name in sorted(names):
        mine = [(op, v) for n, op, v in wanted if n == name]
        theirs = [(op, v) for n, op, v in negated if n == name]
        literal = [v for op, v in mine if op == "="]
        pool = literal or [*_alternatives(mine), *_CANDIDATES]
        value = next((c for c in pool if all(_ok(op, v, c) for op, v in mine)
                      and not (theirs and all(_ok(op, v, c) for op, v in theirs))), None)
        if value is None:
            return None
        out[name] = value
    return out


def _alternatives(matchers: list[tuple[str, str]]) -> list[str]:
    return [re.sub(r"[\\^$().*+?\[\]]", "", alt) for op, v in matchers if op == "=~"
            for alt in v.split("|")]


def _ok(op: str, pattern: str, value: str) -> bool:
    if op == "=":
        return value == pattern
    if op == "!=":
        return value != pattern
    try:
        found = re.fullmatch(pattern, value) is not None
    except re.error:
        return False
    return found if op == "=~" else not found


def _series(name: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _line(start: float, step: float, points: int) -> str:
    """promtool's expanding notation: start, start+step, ... (points values)."""
    sign = "+" if step >= 0 else "-"
    return f"{start!r}{sign}{abs(step)!r}x{points - 1}"


def _expected(rule: AlertingRule, labels: dict[str, str]) -> ExpectedAlert:
    return ExpectedAlert({**labels, **rule.labels}, dict(rule.annotations))


def build_tests(rules: RuleFile, evidence: Evidence, s: Settings, rule_file: str
                ) -> tuple[TestFile, list[str]]:
    """The test file for `rule_file` (a path relative to the test file) and notes."""
    s = s.checked()
    by_name = {(r.alert, r.labels.get("resource", "")): r for r in rules.alerts}
    notes: list[str] = []
    cases: list[TestCase] = []
    for res in evidence.resources:
        runway = by_name.get((runway_name(res), res.resource.name))
        used = by_name.get((used_name(res), res.resource.name))
        if runway is not None:
            case = runway_case(runway, res, evidence, s)
            if case is None:
                notes.append(f"{runway.alert}: no growth per order measured; its test is left "
                             "out")
            else:
                cases.append(case)
        if used is not None:
            cases += used_cases(used, res, s)
    traffic = next((r for r in rules.alerts if r.alert == TRAFFIC_ALERT), None)
    if traffic is not None:
        found = traffic_cases(traffic, evidence, s)
        if found is None:
            notes.append(f"{TRAFFIC_ALERT}: no label values satisfy monitor.traffic.select; "
                         "its test is left out")
        cases += found or []
    for slo in slos_of(evidence, []):
        alerts = {r.labels["severity"]: r for r in rules.alerts
                  if r.alert == slo.alert and r.labels.get("slo") == slo.expr}
        if alerts:
            found = slo_cases(slo, alerts, evidence, s)
            if found is None:
                notes.append(f"{slo.alert} ({slo.expr}): no label values satisfy "
                             f"{slo.select} / {traffic_errors(evidence)}; its test is left "
                             "out")
            cases += found or []
    return TestFile([rule_file], s.interval_s, cases), notes


def traffic_errors(evidence: Evidence) -> str:
    traffic = evidence.monitor.traffic if evidence.monitor else None
    return traffic.errors if traffic else ""


def growth_per_s(res: ResourceEvidence, evidence: Evidence) -> float | None:
    """Measured growth per unit of work x the forecast's (else the run's) work per hour."""
    per_hour = res.units_per_hour or evidence.orders_per_hour_measured
    if res.per_unit is None or res.per_unit <= 0 or not per_hour:
        return None
    return res.per_unit * per_hour / 3600.0


def _resource_series(res: ResourceEvidence, values_used: str, points: int) -> list[Series]:
    used = Selector.parse(res.resource.used)
    out = [Series(_series(used.name, {**dict(used.labels), **TARGET}), values_used)]
    if isinstance(res.resource.limit, str):
        limit = Selector.parse(res.resource.limit)
        out.append(Series(_series(limit.name, {**dict(limit.labels), **TARGET}),
                          _line(res.limit, 0.0, points)))
    return out


def _target_labels(res: ResourceEvidence) -> dict[str, str]:
    return {**dict(Selector.parse(res.resource.used).labels), **TARGET}


def runway_case(rule: AlertingRule, res: ResourceEvidence, evidence: Evidence, s: Settings
                ) -> TestCase | None:
    growth = growth_per_s(res, evidence)
    if growth is None:
        return None
    i = s.interval_s
    # Fire-time g on the grid, with room before it for the lookback, `for` and a silent
    # check; the resource is full half an interval after g + horizon, so no check sits on a
    # float boundary.
    g = math.ceil((s.lookback_s + s.for_s + 3 * i) / i) * i
    full_at = g + s.horizon_s + i / 2
    start = res.limit - growth * full_at
    points = int(g / i) + 1
    silent_at = g - s.for_s - 2 * i
    return TestCase(
        name=(f"{rule.alert}: {res.resource.name} growing {growth:,.6g} {res.resource.unit}/s "
              f"(measured {res.per_unit:,.6g} per {res.resource.per} x "
              f"{(res.units_per_hour or evidence.orders_per_hour_measured or 0):,.0f}/h) pages "
              f"at least {rule.labels['horizon']} before full, not earlier"),
        interval_s=i, series=_resource_series(res, _line(start, growth * i, points), points),
        alert_tests=[AlertTest(rule.alert, silent_at),
                     AlertTest(rule.alert, g, [_expected(rule, _target_labels(res))])])


def used_cases(rule: AlertingRule, res: ResourceEvidence, s: Settings) -> list[TestCase]:
    i = s.interval_s
    at = s.for_s + 2 * i
    points = int(at / i) + 1
    above = min(s.used_share + 0.05, 1.0)
    below = max(s.used_share - 0.1, 0.0)
    return [
        TestCase(name=f"{rule.alert}: {above:.0%} used fires", interval_s=i,
                 series=_resource_series(res, _line(res.limit * above, 0.0, points), points),
                 alert_tests=[AlertTest(rule.alert, at,
                                        [_expected(rule, _target_labels(res))])]),
        TestCase(name=f"{rule.alert}: {below:.0%} used is silent", interval_s=i,
                 series=_resource_series(res, _line(res.limit * below, 0.0, points), points),
                 alert_tests=[AlertTest(rule.alert, at)]),
    ]


def traffic_cases(rule: AlertingRule, evidence: Evidence, s: Settings) -> list[TestCase] | None:
    assert evidence.monitor is not None and evidence.monitor.traffic is not None
    assert evidence.capacity is not None
    traffic = evidence.monitor.traffic
    labels = satisfying(traffic.select)
    built = traffic_expr(evidence, s)
    if labels is None or built is None or traffic.requests is None:
        return None
    counter = Selector.parse(traffic.requests.split("{")[0])
    name = counter.name
    extra = text_labels(traffic.requests.partition("{")[2].rstrip("}"))
    series_labels = {**extra, **labels, **TARGET}
    i = s.interval_s
    at = s.rate_window_s + s.for_s + 2 * i
    points = int(at / i) + 1
    cases = []
    for share, fires in ((0.9, True), (0.7, False)):
        rps = share * evidence.capacity.rps
        cases.append(TestCase(
            name=f"{rule.alert}: requests at {share:.0%} of the tested capacity "
                 f"({rps:,.1f}/s) {'fire' if fires else 'are silent'}",
            interval_s=i, series=[Series(_series(name, series_labels),
                                         _line(0.0, rps * i, points))],
            alert_tests=[AlertTest(rule.alert, at,
                                   [_expected(rule, {"job": TARGET["job"]})] if fires else [])]))
    return cases


def slo_cases(slo: Slo, alerts: dict[str, AlertingRule], evidence: Evidence, s: Settings
              ) -> list[TestCase] | None:
    assert evidence.monitor is not None and evidence.monitor.traffic is not None
    traffic = evidence.monitor.traffic
    good = satisfying(slo.select, not_matching=traffic.errors if slo.kind == "errors"
                      else "")
    bad = satisfying(",".join(p for p in (slo.select, traffic.errors) if p))
    if good is None or bad is None or traffic.requests is None:
        return None
    kept = tiers(slo)
    page = [t[0] * slo.budget for t in kept if t[3] == "page"]
    ticket = [t[0] * slo.budget for t in kept if t[3] == "ticket"]
    i = s.interval_s
    # Ten evaluations: every window holds the same steady share of bad requests by then.
    at = max(10 * i, 60.0)
    points = int(at / i) + 1
    labels = {"job": TARGET["job"], **slo_labels(slo, {})}
    rps = 10.0
    shares: list[tuple[str, float, set[str]]] = []
    if page:  # a fast burn also passes the slow tiers: both fire
        shares.append(("pages (and opens a ticket)",
                       min((max(page) + 1.0) / 2, 1.25 * max(page)), set(alerts)))
    if ticket:
        top = min(page) if page else 1.0
        if max(ticket) < top:
            shares.append(("opens a ticket only", (max(ticket) + top) / 2, {"ticket"}))
    shares.append(("is silent", slo.budget / 2, set()))
    cases = []
    for what, bad_share, firing in shares:
        series = _slo_series(slo, traffic, good, bad, [(points - 1, bad_share)], rps, i)
        tests = [AlertTest(slo.alert, at, [_expected(alerts[sev], labels)
                                           for sev in sorted(firing & set(alerts))])]
        cases.append(TestCase(
            name=f"{slo.alert} ({slo.expr}): {bad_share:.2%} bad requests {what}",
            interval_s=i, series=series, alert_tests=tests))
    burst = _fast_burn_case(slo, alerts, traffic, good, bad, labels, s)
    return cases + ([burst] if burst is not None else [])


def _fast_burn_case(slo: Slo, alerts: dict[str, AlertingRule], traffic: Traffic,
                    good: dict[str, str], bad: dict[str, str], labels: dict[str, str],
                    s: Settings) -> TestCase | None:
    """Every request bad for d minutes after a clean history as long as the slow page tier's
    window: only the fast tier (14.4x over 1 h and 5 m) can see it. None when no such d
    exists, the evaluation is too fine for hours of history, or a ticket would be a coin toss.
    """
    page = [t for t in tiers(slo) if t[3] == "page"]
    i = s.interval_s
    if len(page) < 2 or i < 30:
        return None
    (fast_burn, fast_long, fast_short, _), (slow_burn, slow_long, _, _) = page[0], page[1]
    lo, hi = fast_burn * slo.budget * fast_long, slow_burn * slo.budget * slow_long
    lo = max(lo, fast_short)
    if hi - lo < 4 * i:
        return None
    burst = math.floor((lo + hi) / 2 / i) * i
    history = slow_long
    total = history + burst

    def ratio(window: float) -> float:
        return min(burst, window) / min(window, total)

    firing = {"page"}
    for burn, long, short, severity in tiers(slo):
        if severity != "ticket" or "ticket" not in alerts:
            continue
        limit = burn * slo.budget
        margins = [ratio(long) / limit, ratio(short) / limit]
        if any(0.8 < m < 1.25 for m in margins):
            return None  # too close to call: leave the case out
        if all(m > 1 for m in margins):
            firing.add("ticket")
    segments = [(int(history / i), 0.0), (int(burst / i), 1.0)]
    series = _slo_series(slo, traffic, good, bad, segments, 10.0, i)
    return TestCase(
        name=(f"{slo.alert} ({slo.expr}): {prom_duration(burst)} of bad requests after "
              f"{prom_duration(history)} of good ones page through the fast tier alone"),
        interval_s=i, series=series,
        alert_tests=[AlertTest(slo.alert, total, [_expected(alerts[sev], labels)
                                                  for sev in sorted(firing & set(alerts))])])


def _counter(steps: list[tuple[int, float]]) -> str:
    """A counter from 0 that grows `inc` a point for `n` points, segment after segment."""
    parts, value = ["0"], 0.0
    for n, inc in steps:
        if n > 0:
            parts.append(f"{value + inc!r}+{inc!r}x{n - 1}")
            value += n * inc
    return " ".join(parts)


def _slo_series(slo: Slo, traffic: Traffic, good: dict[str, str], bad: dict[str, str],
                segments: list[tuple[int, float]], rps: float, i: float) -> list[Series]:
    """Requests at `rps`, a `share` of them bad, for each (points, share) segment."""
    per_point = rps * i
    fine = _counter([(n, (1 - share) * per_point) for n, share in segments])
    if slo.kind == "errors":
        requests = str(traffic.requests)
        name = requests.split("{")[0]
        extra = text_labels(requests.partition("{")[2].rstrip("}"))
        return [Series(_series(name, {**extra, **good, **TARGET}), fine),
                Series(_series(name, {**extra, **bad, **TARGET}),
                       _counter([(n, share * per_point) for n, share in segments]))]
    hist = str(traffic.latency)
    assert slo.le is not None
    le = repr(float(f"{slo.le:.6g}"))
    return [Series(_series(hist + "_bucket", {**good, **TARGET, "le": le}), fine),
            Series(_series(hist + "_count", {**good, **TARGET}),
                   _counter([(n, per_point) for n, _ in segments]))]
