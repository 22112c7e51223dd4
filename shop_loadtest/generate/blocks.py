"""Scenario steps -> the plain step objects of journeys/, as the locustfile spells them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shop_loadtest.journeys import (
    DEFAULT_RETRY_THINK_S,
    Block,
    ExportStep,
    ForStep,
    IfStep,
    RepeatStep,
    RequestStep,
    Retry,
    SetStep,
    ThinkStep,
)
from shop_loadtest.scenario import if_expression, parse_for, parse_repeat, parse_think


def to_block(steps: Iterable[Any]) -> Block:
    """Scenario steps -> plain step objects, as the generator writes them out (a step with
    `if:` wrapped in an IfStep)."""
    out: Block = []
    steps = list(steps)
    for index, step in enumerate(steps):
        if step.if_ is not None and step.steps is not None:
            out.append(IfStep(if_expression(step.if_), steps=to_block(step.steps)))
            continue
        if step.for_ is not None:
            var, source = parse_for(step.for_)
            out.append(ForStep(var, source, steps=to_block(step.steps or [])))
            continue
        if step.if_ is not None:
            after = steps[index + 1:index + 2]
            then = to_block([step.model_copy(update={"if_": None}), *after])[0]
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
            retry=_retry(step.retry, steps[index + 1:index + 2]),
            on_fail_pause=step.on_fail_pause,
        ))
    return out


def _retry(spec: Any, after: list[Any]) -> Retry | None:
    """The runtime retry, its pause between tries written out: its own think, else that of
    a think step right after the request (a fixed or uniform one; a distribution's mean),
    else DEFAULT_RETRY_THINK_S."""
    if spec is None:
        return None
    if spec.think is not None:
        think = parse_think(spec.think)
    elif after and after[0].think is not None:
        pause = to_block(after)[0]
        assert isinstance(pause, ThinkStep)
        think = ((pause.low, pause.high) if pause.dist == "uniform" and pause.high is not None
                 else (pause.mean, pause.mean))
    else:
        think = (DEFAULT_RETRY_THINK_S, DEFAULT_RETRY_THINK_S)
    return Retry(spec.times, if_expression(spec.until) if spec.until else None, think)
