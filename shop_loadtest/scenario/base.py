"""The base of every scenario model (frozen, closed) and the field types they share."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from shop_loadtest.units import parse_duration

# Friendly units are validated by our parsers; the JSON Schema says what editors should accept.
_DURATION_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0},
                              {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d)?)+$"}],
                    "description": "seconds, or a duration such as 90s, 1m30s, 400ms"}
Seconds = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
OnFail = Literal["continue", "end_journey"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
