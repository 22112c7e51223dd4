"""Checks that need the whole scenario, each problem located in the file: budgets parse and
name stages and endpoints that exist, the shape stays within docs/limits.md, and the journeys
pass `journey_checks.check_journeys` (templates, captures, data files, user classes)."""

from __future__ import annotations

import csv
import fnmatch
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shop_loadtest import limits
from shop_loadtest.errors import BudgetSyntaxError, ScenarioError, did_you_mean, dotted, shown
from shop_loadtest.scenario.reading import Loc, Marks, locate
from shop_loadtest.scenario.units import format_duration

if TYPE_CHECKING:
    from shop_loadtest.scenario.models import Scenario


def endpoint_names(scenario: Scenario) -> list[str]:
    """The stats names the journeys' steps produce, in file order."""
    names: dict[str, None] = {}

    def walk(steps: Any) -> None:
        for step in steps:
            if step.request is not None:
                names.setdefault(step.label)
            elif step.steps is not None:  # repeat, for and if blocks
                walk(step.steps)

    for journey in scenario.journeys:
        walk((*journey.on_start, *journey.steps, *journey.on_stop))
    return list(names)


def _matches(pattern: str, names: list[str]) -> bool:
    if not any(c in pattern for c in "*?["):
        return pattern in names
    return any(fnmatch.fnmatchcase(n, pattern) for n in names)


def shape_problems(stages: list[tuple[str, float, float]], time_scale: float) -> list[str]:
    """Why an expanded shape cannot run (docs/limits.md); empty when it can."""
    if len(stages) > limits.MAX_STAGES:
        return [f"the shape has {len(stages):,} stages, more than {limits.MAX_STAGES:,}"]
    problems = []
    for name, duration, target in stages:
        if not (math.isfinite(target) and 0 <= target <= limits.MAX_TARGET):
            problems.append(f"stage {shown(name)} has target {target!r}: a target is a finite "
                            f"number from 0 to {limits.MAX_TARGET:,.0f}")
            break
        if not (math.isfinite(duration) and duration >= 0):
            problems.append(f"stage {shown(name)} lasts {duration!r}s")
            break
    total = sum(d for _, d, _ in stages)
    if not problems and total < limits.MIN_STAGE_S:
        problems.append("the shape lasts 0s: give a stage a duration")
    elif not problems and max((t for _, d, t in stages if d > 0), default=0.0) <= 0:
        problems.append("every target of the shape is 0: it would start no user or journey")
    elif total > limits.MAX_SHAPE_S:
        problems.append(f"the shape lasts {format_duration(total)}, more than "
                        f"{format_duration(limits.MAX_SHAPE_S)} (docs/limits.md)")
    elif total / time_scale > limits.MAX_SHAPE_S:
        problems.append(f"at time_scale {time_scale:g} the shape lasts "
                        f"{format_duration(total / time_scale)} of wall time, more than "
                        f"{format_duration(limits.MAX_SHAPE_S)} (docs/limits.md)")
    return problems


def check_scenario(scenario: Scenario, file: str, marks: Marks, base: Path) -> list[ScenarioError]:
    """Every problem of a scenario the models cannot see on their own."""
    # Deferred: checks brings jinja2 with it, and plain model use needs neither.
    from shop_loadtest.scenario import budgets, journey_checks

    found: list[ScenarioError] = []

    def fail(msg: str, loc: Loc) -> None:
        line, col = locate(marks, loc, key=False) or (None, None)
        found.append(ScenarioError(msg, file=file, line=line, col=col, path=dotted(loc)))

    parsed: list[tuple[Loc, Any]] = []
    for section, parse in (("budgets", budgets.parse_budget), ("abort", budgets.parse_abort)):
        for i, expr in enumerate(getattr(scenario, section)):
            try:
                parsed.append(((section, i), parse(expr)))
            except BudgetSyntaxError as exc:
                fail(str(exc), (section, i))
    shape_loc: Loc = ("load", "stages") if scenario.load.stages is not None else (
        "load", "template")
    stage_names: list[str] | None = None
    try:
        specs = scenario.stage_specs(base)
    except OSError as exc:
        fail(f"cannot read {shown(str(exc.filename))}: {exc.strerror or exc}", shape_loc)
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        fail(str(exc), shape_loc)
    else:
        stage_names = sorted({name for name, _, _ in specs})
        for text in shape_problems(specs, scenario.load.time_scale):
            fail(text, shape_loc)
    # A budget on a stage or an endpoint that does not exist would only show at report time,
    # as no data, after the whole campaign ran.
    names = endpoint_names(scenario)
    has_classes = any(j.class_ is not None for j in scenario.journeys)
    for loc, rule in parsed:
        stage = getattr(rule, "stage", None)
        if stage is not None and stage_names is not None and stage not in stage_names:
            fail(f"no stage named {stage!r}{did_you_mean(stage, stage_names)}; stages: "
                 f"{', '.join(stage_names)}", loc)
        endpoint = getattr(rule, "endpoint", None)
        if endpoint is not None and not has_classes and not _matches(endpoint, names):
            fail(f"no step produces an endpoint matching {endpoint!r}"
                 f"{did_you_mean(endpoint, names)}; endpoints: {', '.join(names)}", loc)
    for problem in journey_checks.check_journeys(scenario, base):
        fail(problem.message, problem.loc)
    return found
