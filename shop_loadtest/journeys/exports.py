"""`export:` steps: a row of a journey's values for a CSV file of the run folder.

A load test on a real shop creates orders, customers and carts someone must clean up; the
export file is how they find them. A row is the journey, the time (UTC) and the values, each
as text and masked (`safety/mask.py`): a secret the templates read is never exported.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# A file name, never a path: a worker's row (or a typo) must not write outside exports/.
EXPORT_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.csv$")
MAX_EXPORT_VALUES = 50
EXPORTS_FOLDER = "exports"
FIRST_COLUMNS = ("journey", "time")


@dataclass(frozen=True)
class ExportStep:
    """`export: {file, values}`: one row of `file` each time the step runs."""

    file: str
    values: tuple[str, ...]


def export_text(value: object) -> str:
    """A value as a CSV cell: text as it is, a missing value empty, anything else as JSON.

    >>> [export_text(v) for v in ("a", 7, None, True, [1, 2])]
    ['a', '7', '', 'true', '[1, 2]']
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return json.dumps(value, default=str)
    return str(value)


def utc_time(ts: float) -> str:
    """`2026-12-02T03:17:32.123Z`

    >>> utc_time(0.5)
    '1970-01-01T00:00:00.500Z'
    """
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def export_row(journey: str, step: ExportStep, ctx: Mapping[str, object],
               mask: Callable[[str], str], ts: float | None = None) -> list[str]:
    """The row `step` writes now: journey, time, then each value (a name not set: empty),
    every cell masked."""
    cells = [journey, utc_time(time.time() if ts is None else ts),
             *(export_text(ctx.get(name)) for name in step.values)]
    return [mask(cell) for cell in cells]


def export_columns(step: ExportStep) -> Sequence[str]:
    return (*FIRST_COLUMNS, *step.values)
