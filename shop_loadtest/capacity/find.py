"""find-capacity: the highest arrival rate the target sustains within its budgets.

Each step is a real short run (`shop_loadtest.run.runner.run`) of the scenario's journeys held at
one arrival rate. From `start` the rate doubles until a budget breaks, then the search bisects
between the highest pass and the lowest fail until they are within `precision`. The search
strategy (`next_rate`) and the knee of the latency curve (`knee`) are pure functions of the
steps so far. See docs/capacity.md.
"""

from __future__ import annotations

import copy
import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shop_loadtest.errors import InputError
from shop_loadtest.judge.model import Summary

if TYPE_CHECKING:
    from shop_loadtest.scenario import Scenario


@dataclass(frozen=True)
class Step:
    """One real run at one arrival rate, as find-capacity saw it."""

    rate: float
    verdict: str  # pass | fail | inconclusive | error
    run_dir: str
    rps: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Search:
    """How find-capacity moves: from `start`, times `growth` until a budget breaks, then
    bisect until the highest pass and the lowest fail are within `precision` of each other."""

    start: float
    max_rate: float
    min_rate: float = 0.1
    growth: float = 2.0
    precision: float = 0.1
    max_steps: int = 10


def _nice(rate: float) -> float:
    """Three significant digits: rates people can read and type again."""
    return float(f"{rate:.3g}")


def next_rate(steps: Sequence[Step], search: Search) -> float | None:
    """The next rate to try, or None when the search is done. Pure: steps in, rate out.

    A step that is neither pass nor fail (generator saturated, run failed) ends the search:
    beyond it nothing can be measured on this machine.
    """
    if not steps:
        return _nice(search.start)
    if len(steps) >= search.max_steps or steps[-1].verdict not in ("pass", "fail"):
        return None
    passed = [s.rate for s in steps if s.verdict == "pass"]
    lo = max(passed, default=None)
    failed = [s.rate for s in steps if s.verdict == "fail" and (lo is None or s.rate > lo)]
    hi = min(failed, default=None)
    if hi is None:
        assert lo is not None
        if lo >= search.max_rate:
            return None
        rate = _nice(min(lo * search.growth, search.max_rate))
    elif lo is None:
        rate = _nice(hi / search.growth)
        if rate < search.min_rate:
            return None
    else:
        if hi <= lo * (1 + search.precision):
            return None
        rate = _nice((lo + hi) / 2)
    return None if any(s.rate == rate for s in steps) else rate


def knee(points: Sequence[tuple[float, float]]) -> float | None:
    """The rate where latency bends upward (Kneedle on a convex, rising curve).

    Rates and latencies are scaled to 0..1; the knee is the point furthest above the
    diagonal in (rate - latency), i.e. where latency starts growing faster than the rate.
    None with fewer than 3 points or a curve that does not rise by half.

    >>> knee([(10, 5), (20, 5), (30, 6), (40, 20), (50, 80)])
    40
    """
    pts = sorted((x, y) for x, y in points if y is not None and not math.isnan(y))
    if len(pts) < 3:
        return None
    (x0, y0), (x1, y1) = pts[0], pts[-1]
    if x1 <= x0 or y1 < 1.5 * max(y0, 1e-9) or y1 <= y0:
        return None
    diffs = [((x - x0) / (x1 - x0)) - ((y - y0) / (y1 - y0)) for x, y in pts]
    best = max(range(len(pts)), key=lambda i: diffs[i])
    return pts[best][0] if diffs[best] > 0.05 else None


def conclude(steps: Sequence[Step], forecast_peak: float | None) -> dict[str, Any]:
    """capacity.json of a search: the highest sustainable rate, the knee, the headroom."""
    passed = [s.rate for s in steps if s.verdict == "pass"]
    sustainable = max(passed, default=None)
    breaking = min((s.rate for s in steps if s.verdict == "fail"
                    and (sustainable is None or s.rate > sustainable)), default=None)
    headroom = (sustainable / forecast_peak if sustainable is not None and forecast_peak
                else None)
    stopped = next((s for s in steps if s.verdict not in ("pass", "fail")), None)
    text = "no rate held its budgets" if sustainable is None else (
        f"sustains {sustainable:g} journeys/s" + (f", breaks at {breaking:g}/s" if breaking
                                                  else " (no budget broke up to there)"))
    if headroom is not None:
        text += f"; {headroom:.2g}x the forecast peak of {forecast_peak:g}/s"
    if stopped is not None:
        text += f"; the search stopped at {stopped.rate:g}/s ({stopped.verdict}: " + (
            stopped.reasons[0] if stopped.reasons else "no reason given") + ")"
    return {
        "schema_version": 1, "sustainable_rate": sustainable, "breaking_rate": breaking,
        "knee_rate": knee([(s.rate, s.p95_ms) for s in steps if s.p95_ms is not None]),
        "forecast_peak": forecast_peak,
        "headroom": round(headroom, 3) if headroom is not None else None,
        "headroom_text": f"{headroom:.2g}x forecast" if headroom is not None else None,
        "stopped_by": ({"rate": stopped.rate, "verdict": stopped.verdict,
                        "reasons": list(stopped.reasons)} if stopped else None),
        "summary": text,
        "steps": [asdict(s) for s in steps],
    }


def step_scenario(data: dict[str, Any], rate: float, hold_s: float, base: Path
                  ) -> tuple[dict[str, Any], list[str]]:
    """The scenario of one step: its journeys and budgets, held at `rate` journeys/s for
    `hold_s`. Returns it and notes (budgets left out). File paths become absolute."""
    step = copy.deepcopy(data)
    notes = []
    step["name"] = f"{data['name']}-at-{rate:g}"
    load = data.get("load") or {}
    kept = {k: load[k] for k in ("arrivals", "max_users", "max_lateness") if k in load}
    step["load"] = {"model": "arrival_rate", **kept,
                    "stages": [{"name": "jump", "duration": 0, "target": rate},
                               {"name": "hold", "duration": hold_s, "target": rate}]}
    for key in ("budgets", "abort"):
        exprs = list(step.get(key) or [])
        step[key] = [e for e in exprs if " during " not in f" {e.lower()} "]
        notes += [f"{key[:-1] if key == 'budgets' else 'abort rule'} {e!r} left out: its "
                  "stage does not exist in a step" for e in exprs if e not in step[key]]
    for source in (step.get("data") or {}).values():
        if isinstance(source, dict) and "file" in source:
            source["file"] = str((base / source["file"]).resolve())
    for journey in step.get("journeys") or []:
        if isinstance(journey, dict) and journey.get("class"):
            raise InputError(f"journey {journey.get('name')!r} uses class: (a closed-model "
                             "user class); find-capacity drives the open model")
    return step, notes


def forecast_peak_of(scenario: Scenario, base: Path) -> float | None:
    """The rate to compare capacity with: forecast.peak_rate, else the open model's peak."""
    if scenario.forecast is not None and scenario.forecast.peak_rate is not None:
        return scenario.forecast.peak_rate
    if scenario.load.model == "arrival_rate":
        return scenario.profile(base).peak() or None
    return None


StepCallback = Callable[[int, Step], None]


def find_capacity(scenario_path: Path, out_dir: Path, *, hold_s: float = 30.0,
                  start: float | None = None, max_rate: float | None = None,
                  precision: float = 0.1, max_steps: int = 10, host: str | None = None,
                  allow_hosts: tuple[str, ...] = (), seed: int | None = None,
                  on_step: StepCallback | None = None) -> dict[str, Any]:
    """Search the highest sustainable arrival rate with real runs; write out_dir's report."""
    import yaml

    from shop_loadtest.errors import RunError
    from shop_loadtest.run.runner import RunOptions, run
    from shop_loadtest.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    base = scenario_path.parent
    peak = forecast_peak_of(scenario, base)
    first = start or peak or 10.0
    search = Search(start=first, max_rate=max_rate or first * 64, precision=precision,
                    max_steps=max_steps, min_rate=min(0.1, first))
    data = yaml.safe_load(scenario_path.read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    steps: list[Step] = []
    notes: list[str] = []
    while (rate := next_rate(steps, search)) is not None:
        number = len(steps) + 1
        step_data, notes = step_scenario(data, rate, hold_s, base)
        path = out_dir / "scenarios" / f"step-{number:02d}-at-{rate:g}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(step_data, sort_keys=False))
        run_dir = out_dir / "steps" / f"{number:02d}-at-{rate:g}"
        try:
            outcome = run(RunOptions(scenario_path=path, host=host, out=run_dir,
                                     allow_hosts=allow_hosts, seed=seed,
                                     command=("shop-loadtest", "find-capacity", str(path))))
        except RunError as exc:
            if not steps:
                raise
            step = Step(rate, "error", str(run_dir), reasons=(str(exc),))
        else:
            step = _step_of(rate, run_dir, outcome.summary)
        steps.append(step)
        if on_step is not None:
            on_step(number, step)
        if step.verdict != "error" and outcome.summary.get("exit_reason") == "interrupted":
            break  # Ctrl-C ends the search, not just the step it fell in
    result = conclude(steps, peak)
    result.update(scenario=scenario.name, scenario_file=str(scenario_path), hold_s=hold_s,
                  notes=notes)
    write_outputs(out_dir, result)
    return result


def _step_of(rate: float, run_dir: Path, summary: Summary) -> Step:
    latency = summary.get("latency") or {}
    return Step(rate=rate, verdict=str(summary.get("verdict")), run_dir=str(run_dir),
                rps=summary.get("rps"), p50_ms=latency.get("p50_ms"),
                p95_ms=latency.get("p95_ms"), p99_ms=latency.get("p99_ms"),
                error_rate=summary.get("error_rate"),
                reasons=tuple(str(r) for r in summary.get("reasons") or ()))


def write_outputs(out_dir: Path, result: dict[str, Any]) -> None:
    """capacity.json, capacity.md and capacity.html (the latency-vs-rate curve, offline)."""
    (out_dir / "capacity.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Capacity of {result.get('scenario', 'the scenario')}", "",
             f"**{result['summary']}**", "",
             f"- knee of the latency curve: {_opt(result['knee_rate'], '/s')}",
             f"- headroom: {result['headroom_text'] or 'no forecast peak to compare with'}",
             f"- each step held its rate for {result.get('hold_s', 0):g} s", "",
             "| step | rate/s | verdict | req/s | p50 ms | p95 ms | p99 ms | errors |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, s in enumerate(result["steps"], start=1):
        err = f"{100 * s['error_rate']:.2f}%" if s["error_rate"] is not None else "n/a"
        lines.append(f"| {i} | {s['rate']:g} | {s['verdict']} | {_opt(s['rps'])} | "
                     f"{_opt(s['p50_ms'])} | {_opt(s['p95_ms'])} | {_opt(s['p99_ms'])} | {err} |")
    lines += [""] + [f"- note: {n}" for n in result.get("notes") or []]
    (out_dir / "capacity.md").write_text("\n".join(lines).rstrip() + "\n")
    (out_dir / "capacity.html").write_text(_html(result, "\n".join(lines)))


def _opt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.4g}{unit}"


def _html(result: dict[str, Any], markdown: str) -> str:
    import plotly.graph_objects as go

    steps = sorted(result["steps"], key=lambda s: s["rate"])
    rates = [s["rate"] for s in steps]
    fig = go.Figure()
    for key, name in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        fig.add_trace(go.Scatter(x=rates, y=[s[key] for s in steps], name=name,
                                 mode="lines+markers",
                                 text=[s["verdict"] for s in steps]))
    for x, label in ((result["sustainable_rate"], "sustainable"), (result["knee_rate"], "knee"),
                     (result["forecast_peak"], "forecast peak")):
        if x is not None:
            fig.add_vline(x=x, line_dash="dot", annotation_text=label)
    fig.update_layout(title=html.escape(f"Latency vs arrival rate: {result['summary']}"),
                      xaxis_title="journeys started per second", yaxis_title="latency (ms)")
    page = fig.to_html(full_html=True, include_plotlyjs=True)
    return page.replace("<body>", f"<body><pre>{html.escape(markdown)}</pre>", 1)


def verdict(result: dict[str, Any]) -> str:
    """pass: a sustainable rate was found and it covers the forecast peak (if any);
    fail: no rate held, or capacity is below the forecast peak; inconclusive: the search
    stopped (generator saturated, a run failed) before any rate held."""
    sustainable, peak = result["sustainable_rate"], result["forecast_peak"]
    if sustainable is None:
        return "inconclusive" if result["stopped_by"] else "fail"
    if peak is not None and sustainable < peak:
        return "fail"
    return "pass"


def describe_step(number: int, step: Step) -> str:
    """One line per step for the terminal."""
    err = f"{100 * step.error_rate:.2f}%" if step.error_rate is not None else "n/a"
    why = f"  ({step.reasons[0]})" if step.verdict != "pass" and step.reasons else ""
    return (f"step {number}: {step.rate:g} journeys/s  {step.verdict.upper():12} "
            f"p95 {_opt(step.p95_ms, ' ms')}  errors {err}  {_opt(step.rps, ' req/s')}{why}")
