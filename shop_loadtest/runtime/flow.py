"""How a run goes through for, if and repeat blocks: written into the run's own list of steps
as they are reached (`runtime/users.py` walks that list), so a failure's index, the pause
after it and the step names stay those of one flat list."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from shop_loadtest.journeys import (
    CompiledFor,
    CompiledIf,
    CompiledRepeat,
    CompiledSet,
    SetStep,
    expand,
)
from shop_loadtest.journeys import constant as fixed_value  # locust's constant is a wait time

_BIND = SetStep({})  # what a for block's item binding runs as (no template: nothing to render)
COMPOSITE = (CompiledIf, CompiledFor, CompiledRepeat)


def for_items(step: CompiledFor, ctx: Mapping[str, Any]) -> list[Any]:
    """One run of a for block: for each item of its list, a step binding the item, then the
    block's steps. Raises (LoopError, or the template's error) when the list cannot be made."""
    loop = step.step
    out: list[Any] = []
    for value in loop.values(step.source(ctx)):
        out.append(CompiledSet(_BIND, [(loop.var, fixed_value(value))]))
        out.extend(step.items)
    return out


def planned(items: list[Any], rng: random.Random) -> list[Any]:
    """`items` with the blocks not reached written out as if they ran (an if block as true,
    a for block once, a repeat as drawn): the think times a failure must still wait."""
    out: list[Any] = []
    for item in items:
        if type(item) is CompiledIf and isinstance(item.then, list):
            out.extend(planned(item.then, rng))
        elif type(item) is CompiledFor:
            out.extend(planned(item.items, rng))
        elif type(item) is CompiledRepeat:
            out.extend(planned(expand([item], rng), rng))
        else:
            out.append(item)
    return out
