"""The base of every scenario model (frozen, closed) and the field types they share.

Every section of a scenario file (including monitor:, plan: and forecast:) is a model of this
package, so the stages that act on a section import its model from here.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from shop_loadtest.scenario.units import parse_duration

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
OnFail = Literal["continue", "end_journey"]

# Friendly units are validated by our parsers; the JSON Schema says what editors should accept.
_DURATION_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0},
                              {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d)?)+$"}],
                    "description": "seconds, or a duration such as 90s, 1m30s, 400ms"}
Seconds = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]


class Model(BaseModel):
    """Unknown keys are errors (a typo must not be silently ignored); values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


__all__ = ["IDENT_RE", "METHODS", "NAME_RE", "Model", "OnFail", "Seconds"]
