"""Control flow beyond `repeat:` and `if:` on one step: `for:` over a captured list, and
`retry:` of a request step. Both are bounded, so a typo or a long list cannot turn a journey
into a flood, and both only reorder what the scenario says: each try of a retry is a request
of its own in the results, and a for block's requests are the block's, once per item.

    >>> loop = ForStep("url", "urls", steps=["GET {{ url }}"])
    >>> loop.values(["/a", "/b"])
    ['/a', '/b']
    >>> Retry(times=3, until="response.status == 201", think=(0.5, 0.5)).pause(random.Random())
    0.5
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# A `for:` walks at most this many items: a product listing of 5 000 ids is data, not a plan
# (slice it, `for: id in ids[:10]`). A longer list is a recorded failure, never a silent cut.
MAX_FOR_ITEMS = 100
# A `retry:` sends its request at most this many times in all (the first try included).
MAX_RETRY = 10
# Between two tries, when neither the retry nor a think step right after the request says.
DEFAULT_RETRY_THINK_S = 1.0


class LoopError(ValueError):
    """A for: whose list cannot be walked: not a list, or longer than MAX_FOR_ITEMS."""


@dataclass(frozen=True)
class ForStep:
    """`for: var in source` over `steps`: `source` is a template expression (without braces)
    that must give a list; `var` holds each item in turn."""

    var: str
    source: str
    steps: list[Any] = field(default_factory=list)

    def values(self, value: Any) -> list[Any]:
        """The items to walk, or LoopError saying why the value cannot be walked."""
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
            raise LoopError(f"for {self.var} in {self.source}: expected a list, got "
                            f"{type(value).__name__}")
        if len(value) > MAX_FOR_ITEMS:
            raise LoopError(f"for {self.var} in {self.source}: {len(value)} items, more than "
                            f"the {MAX_FOR_ITEMS} a for: walks (slice the list: "
                            f"{self.source}[:{MAX_FOR_ITEMS}])")
        return list(value)


@dataclass
class CompiledFor:
    step: ForStep
    source: Callable[[Mapping[str, Any]], Any]
    items: list[Any]  # the compiled steps of one round


@dataclass(frozen=True)
class Retry:
    """`retry: {times: N, until: expr, think: 1s}`: send the request again (at most `times`
    tries in all) while a try fails or `until` (a template expression over the captures and
    `response`) is false, waiting a pause drawn from `think` (low, high) between tries."""

    times: int
    until: str | None = None
    think: tuple[float, float] = (DEFAULT_RETRY_THINK_S, DEFAULT_RETRY_THINK_S)

    def pause(self, rng: random.Random) -> float:
        low, high = self.think
        return low if low == high else rng.uniform(low, high)
