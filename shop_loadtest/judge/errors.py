"""Why requests failed: errors grouped by endpoint, kind and a normalised message, with the
samples the load processes kept (status, method, path, the body's start).

>>> normalise_message("order 1234 for a@b.example: 9f1c2e6a-0d4b-4c3e-9a55-3b1f0c7d2e11")
'order {n} for {email}: {uuid}'
"""

from __future__ import annotations

import math
import re
from http import HTTPStatus
from typing import Any

from shop_loadtest.judge.model import ErrorRow
from shop_loadtest.results import RunData

MAX_ERROR_ROWS = 100
SAMPLES_PER_GROUP = 3

# Locust's own status failure, as runs before the one-format recorder wrote it.
_LEGACY_STATUS = re.compile(r"^URL \S*: code=(\d{3})$")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b")
_HEX = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I)
# Numbers vary per request (ids, sizes, times); errno and status codes name the error.
_NUMBER = re.compile(r"(?<!Errno )(?<!HTTP )(?<!\w)\d+(\.\d+)?")


def normalise_message(message: str) -> str:
    """The message with what varies per request (ids, numbers, emails, uuids) as
    placeholders, so the same failure groups into one row."""
    legacy = _LEGACY_STATUS.match(message)
    if legacy:
        status = int(legacy.group(1))
        try:
            return HTTPStatus(status).phrase
        except ValueError:
            return f"HTTP {status}"
    text = _UUID.sub("{uuid}", message)
    text = _EMAIL.sub("{email}", text)
    text = _HEX.sub("{hex}", text)
    return _NUMBER.sub("{n}", text)


def _t(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 3)


def error_table(run: RunData, limit: int = MAX_ERROR_ROWS) -> list[ErrorRow]:
    """Failures grouped by endpoint, kind and normalised message, most frequent first; each
    with one raw `example` message and up to SAMPLES_PER_GROUP `samples`."""
    errors = run.errors
    if errors.empty:
        return []
    frame = errors.assign(normalised=errors["message"].map(normalise_message))
    grouped = (frame.groupby(["endpoint", "kind", "normalised"], sort=False)
               .agg(count=("count", "sum"), first_t=("t", "min"), last_t=("t", "max"),
                    example=("message", "first"))
               .reset_index().sort_values("count", ascending=False, kind="stable"))
    rows: list[ErrorRow] = [
        {"endpoint": str(r.endpoint), "kind": str(r.kind), "message": str(r.normalised),
         "example": str(r.example), "count": int(r.count), "first_t": _t(r.first_t),
         "last_t": _t(r.last_t), "samples": []}
        for r in grouped.head(limit).itertuples(index=False)]
    _attach_samples(rows, run.error_samples)
    return rows


def _attach_samples(rows: list[ErrorRow], samples: tuple[dict[str, Any], ...]) -> None:
    """Each sample goes to the row of its endpoint, kind and message, else to the busiest row
    of its endpoint and kind."""
    exact = {(r["endpoint"], r["kind"], r["message"]): r for r in rows}
    by_kind: dict[tuple[str, str], ErrorRow] = {}
    for row in rows:
        by_kind.setdefault((row["endpoint"], row["kind"]), row)
    for sample in samples:
        key = (sample["endpoint"], sample["kind"])
        found = exact.get((*key, normalise_message(sample["message"]))) or by_kind.get(key)
        if found is not None and len(found["samples"]) < SAMPLES_PER_GROUP:
            found["samples"].append({"status": sample["status"], "method": sample["method"],
                                   "path": sample["path"], "body": sample["body"],
                                   "t": _t(sample["t"])})
