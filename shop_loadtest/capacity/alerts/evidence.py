"""What a run (and optionally a find-capacity search) measured, as the alert rules need it.

Everything comes from the folders alone: the run's run.json, monitor.jsonl and intervals
(through `results.load_run`, the runway projection and the budget judge), and a find-capacity
folder's capacity.json. Nothing is assumed that the run did not measure.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shop_loadtest.errors import InputError, ResultsError
from shop_loadtest.scenario.options import MonitorConfig, Resource, config_of

ROLLING_S = 5.0  # "the highest rate the run held within budgets": over windows this long


@dataclass(frozen=True)
class ResourceEvidence:
    """One resource with a limit, as the run measured it (see runway.project)."""

    resource: Resource
    limit: float
    used_start: float
    used_max: float
    full_at_t: float | None
    per_unit: float | None  # growth per unit of `per` (bytes per order)
    units_per_hour: float | None  # the forecast's (or measured) work per hour
    runway_s: float | None  # at the forecast, from the run's start
    runway: str | None
    lasts_campaign: bool | None


@dataclass(frozen=True)
class BudgetEvidence:
    expr: str
    stat: str
    arg: Any
    endpoint: str | None
    limit: float
    unit: str
    op: str
    status: str
    observed: float | None
    first_breach_t: float | None
    qualified: bool  # has `for`, `during` or `excluding ramps`


@dataclass(frozen=True)
class CapacityEvidence:
    """The request rate the shop was measured to take within its budgets."""

    rps: float
    journeys_rate: float | None
    source: str  # "find-capacity" | "run"
    folder: str
    knee_rate: float | None = None
    breaking_rate: float | None = None
    headroom_text: str | None = None
    summary: str | None = None


@dataclass(frozen=True)
class FirstFailure:
    t: float
    endpoint: str
    kind: str
    message: str


@dataclass(frozen=True)
class Evidence:
    run_id: str
    run_dir: Path
    scenario: str
    started_at: str
    speedup: float
    verdict: str | None
    forecast_duration_s: float | None
    forecast_peak: float | None
    monitor: MonitorConfig | None
    resources: list[ResourceEvidence]
    budgets: list[BudgetEvidence]
    capacity: CapacityEvidence | None
    first_failure: FirstFailure | None
    orders_per_hour_measured: float | None
    notes: list[str]

    @property
    def date(self) -> str:
        return self.started_at[:10] if self.started_at else "unknown date"

    def campaign_time(self, t: float) -> float:
        return t * self.speedup


def gather(run_dir: Path, capacity_dir: Path | None = None) -> Evidence:
    """Read the evidence of one run folder (and a find-capacity folder)."""
    from shop_loadtest.judge.budgets import evaluate
    from shop_loadtest.judge.runway import capacity_summary
    from shop_loadtest.results import load_run
    from shop_loadtest.scenario.budgets import parse_budget
    from shop_loadtest.scenario.options import forecast_of

    try:
        run = load_run(run_dir)
    except ResultsError as exc:
        raise InputError(f"RUN_DIR: {exc}") from None
    meta = run.meta
    notes: list[str] = []
    config = config_of(meta)
    if config is None:
        notes.append("the run was not monitored: no runway, traffic or SLO rules from the "
                     "shop's metrics (add a monitor: section)")
    resources = _resources(capacity_summary(run), config, notes)
    parsed = [parse_budget(str(e)) for e in meta.get("budgets") or []]
    results = evaluate(parsed, run) if parsed else []
    budgets = [BudgetEvidence(expr=b.expr, stat=b.stat, arg=b.arg, endpoint=b.endpoint,
                              limit=b.limit, unit=b.unit, op=b.op, status=r.status,
                              observed=r.observed,
                              first_breach_t=_first_breach(b, r, run, evaluate),
                              qualified=bool(b.window_s or b.stage or b.excluding_ramps))
               for b, r in zip(parsed, results, strict=True)]
    forecast = forecast_of(meta)
    capacity = (_from_find_capacity(capacity_dir) if capacity_dir is not None
                else _held_by_run(run, budgets, run_dir))
    if capacity is None:
        notes.append("no request rate was measured within the budgets: no traffic rule")
    summary = _read_json(run_dir / "summary.json")
    return Evidence(
        run_id=run_dir.name, run_dir=run_dir, scenario=str(meta.get("scenario") or run_dir.name),
        started_at=str(meta.get("started_at") or ""), speedup=float(meta.get("speedup") or 1.0),
        verdict=str(summary["verdict"]) if summary and "verdict" in summary else None,
        forecast_duration_s=forecast.duration if forecast else None,
        forecast_peak=forecast.peak_rate if forecast else None,
        monitor=config, resources=resources, budgets=budgets, capacity=capacity,
        first_failure=_first_failure(run), orders_per_hour_measured=_orders_per_hour(run),
        notes=notes)


def _first_breach(budget: Any, result: Any, run: Any, evaluate: Any) -> float | None:
    """When a broken budget first broke; a whole-run budget is judged again over windows of
    ROLLING_S to find out."""
    from dataclasses import replace

    if result.status != "fail" or result.first_breach_t is not None or budget.window_s:
        return result.first_breach_t
    (windowed,) = evaluate([replace(budget, window_s=ROLLING_S)], run)
    return windowed.first_breach_t if windowed.status == "fail" else None


def _resources(summary: dict[str, Any], config: MonitorConfig | None, notes: list[str]
               ) -> list[ResourceEvidence]:
    if config is None:
        return []
    rows = summary.get("resources") or []
    out = []
    for resource in config.resources:
        if resource.limit is None:
            continue
        mine = [r for r in rows if r["resource"] == resource.name and r.get("limit")]
        if not mine:
            notes.append(f"resource {resource.name}: its limit was never measured above 0 "
                         "(uncapped, or not exported): no runway rule")
            continue
        row = min(mine, key=lambda r: r["runway_s"] if r["runway_s"] is not None else math.inf)
        out.append(ResourceEvidence(
            resource=resource, limit=float(row["limit"]), used_start=float(row["used_start"]),
            used_max=float(row["used_max"]), full_at_t=row["full_at_t"],
            per_unit=row["per_unit"], units_per_hour=row["units_per_hour"],
            runway_s=row["runway_s"], runway=row["runway"],
            lasts_campaign=row["lasts_campaign"]))
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _from_find_capacity(folder: Path) -> CapacityEvidence | None:
    path = folder / "capacity.json"
    data = _read_json(path)
    if data is None or "steps" not in data:
        raise InputError(f"--capacity {folder}: no find-capacity capacity.json there "
                         "(run `shop-loadtest find-capacity FILE --out DIR` first)")
    sustainable = data.get("sustainable_rate")
    step = next((s for s in data.get("steps") or [] if isinstance(s, dict)
                 and s.get("rate") == sustainable and s.get("verdict") == "pass"), None)
    if sustainable is None or step is None or not step.get("rps"):
        return None
    return CapacityEvidence(
        rps=float(step["rps"]), journeys_rate=float(sustainable), source="find-capacity",
        folder=str(folder), knee_rate=data.get("knee_rate"),
        breaking_rate=data.get("breaking_rate"), headroom_text=data.get("headroom_text"),
        summary=data.get("summary"))


def _per_second(run: Any, column: str) -> tuple[Any, Any]:
    """(t, value/dt) of an intervals column summed over endpoints and load processes."""
    iv = run.intervals
    if iv.empty:
        return [], []
    grouped = iv.groupby("t").agg(n=(column, "sum"), dt=("dt", "max")).sort_index()
    return grouped.index.to_numpy(float), (grouped["n"] / grouped["dt"]).to_numpy(float)


def _held_by_run(run: Any, budgets: list[BudgetEvidence], run_dir: Path
                 ) -> CapacityEvidence | None:
    """The highest request rate (over ROLLING_S) the run held before any budget broke."""
    import numpy as np

    t, rps = _per_second(run, "n")
    if not len(t):
        return None
    # runway() is a projection to the campaign, not a state of any second of the run
    breaches = [b.first_breach_t for b in budgets
                if b.status == "fail" and not b.stat.startswith("runway")]
    known = [x for x in breaches if x is not None]
    if breaches and not known:
        return None  # a budget broke over the whole run: no second is known to be within it
    until = min(known) if known else math.inf
    width = max(int(round(ROLLING_S / (run.interval_s or 1.0))), 1)
    if len(rps) < width:
        return None
    means = np.convolve(rps, np.ones(width) / width, mode="valid")
    ends = t[width - 1:]
    inside = means[ends < until] if known else means  # windows before the first breach held
    if not len(inside):
        return None
    return CapacityEvidence(rps=round(float(inside.max()), 3), journeys_rate=None,
                            source="run", folder=str(run_dir))


def _first_failure(run: Any) -> FirstFailure | None:
    errors = run.errors
    if errors.empty:
        return None
    row = errors.sort_values("t", kind="stable").iloc[0]
    return FirstFailure(t=float(row["t"]), endpoint=str(row["endpoint"]), kind=str(row["kind"]),
                        message=str(row["message"]))


def _orders_per_hour(run: Any) -> float | None:
    """Orders the run's shop took per hour of the load, from its `per` counter scrapes."""
    from shop_loadtest.judge.monitor_stats import series
    from shop_loadtest.scenario.options import Selector

    config = config_of(run.meta)
    if config is None or not config.resources or run.monitor.empty:
        return None
    parts = series(run.monitor, Selector.parse(config.resources[0].per))
    total = span = 0.0
    for t, v in parts.values():
        if len(t) >= 2 and t[-1] > t[0]:
            total += float(v[-1] - v[0])
            span = max(span, float(t[-1] - t[0]))
    return total / span * 3600.0 if span and total > 0 else None
