"""Numbers in a run folder's JSON: read leniently, written tidily.

>>> number("12.5"), number("n/a"), number(None, None), rounded(2 / 3), rounded(float("nan"))
(12.5, nan, None, 0.667, None)
"""

from __future__ import annotations

import math
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
def number(value: Any) -> float: ...
@overload
def number(value: Any, missing: T) -> float | T: ...
def number(value: Any, missing: Any = math.nan) -> Any:
    """`value` as a float; `missing` (NaN unless given) when it is not a number or is NaN.

    A partial or hand-edited folder may hold null, strings or nothing where a number belongs:
    the reader keeps going and the judge sees no data, never an exception.
    """
    try:
        result = float(value)
    except (TypeError, ValueError):
        return missing
    return missing if math.isnan(result) else result


def rounded(value: Any, digits: int = 3) -> float | None:
    """A number as written to summary.json and friends: rounded, None for no value (or NaN)."""
    result = number(value, None)
    return None if result is None else round(result, digits)
