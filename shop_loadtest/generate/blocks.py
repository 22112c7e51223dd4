"""Scenario steps -> the plain step objects of journeys/, as the locustfile spells them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shop_loadtest.journeys import (
    Block,
    ExportStep,
    IfStep,
    RepeatStep,
    RequestStep,
    SetStep,
    ThinkStep,
)
from shop_loadtest.scenario import if_expression, parse_repeat, parse_think


def to_block(steps: Iterable[Any]) -> Block:
    """Scenario steps -> plain step objects, as the generator writes them out (a step with
    `if:` wrapped in an IfStep)."""
    out: Block = []
    for step in steps:
        if step.if_ is not None:
            then = to_block([step.model_copy(update={"if_": None})])[0]
            assert isinstance(then, RequestStep | SetStep | ExportStep)  # the model allows no other
            out.append(IfStep(if_expression(step.if_), then))
            continue
        if step.repeat is not None:
            fewest, most = parse_repeat(step.repeat)
            inner = [s for s in to_block(step.steps or []) if not isinstance(s, RepeatStep)]
            out.append(RepeatStep(fewest, most, inner))
            continue
        if step.set_ is not None:
            out.append(SetStep(dict(step.set_)))
            continue
        if step.export is not None:
            out.append(ExportStep(step.export.file, tuple(step.export.values)))
            continue
        if step.think is not None:
            if isinstance(step.think, str | int | float):
                low, high = parse_think(step.think)
                out.append(ThinkStep(low, high))
            else:
                d = step.think
                dist = "exponential" if d.exponential is not None else "normal"
                mean = d.exponential if d.exponential is not None else d.normal
                out.append(ThinkStep(d.min, d.max, dist=dist, mean=mean,
                                     sd=d.sd if d.sd is not None else 0.0))
            continue
        capture = {var: spec if isinstance(spec, str) else
                   spec.model_dump(by_alias=True, exclude_unset=True)
                   for var, spec in step.capture.items()}
        out.append(RequestStep(
            method=step.method, path=step.path, name=step.label,
            query=dict(step.query) if step.query is not None else None,
            json=step.json_body, form=step.form, body=step.body, headers=dict(step.headers),
            capture=capture,
            check=[c.model_dump(by_alias=True, exclude_unset=True) for c in step.check],
            status=tuple(step.expect.status) if step.expect and step.expect.status else None,
            follow_redirects=step.follow_redirects, on_fail=step.on_fail, timeout=step.timeout,
        ))
    return out
