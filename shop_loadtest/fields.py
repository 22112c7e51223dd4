"""What every section of a scenario file is built from: a closed, frozen pydantic model and the
field type that reads friendly durations.

Its own module because the sections live in different stages (scenario, monitor, plan,
runway) and scenario/ imports the others: the base cannot live in scenario/ without a cycle.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from shop_loadtest.units import parse_duration

# Friendly units are validated by our parsers; the JSON Schema says what editors should accept.
_DURATION_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0},
                              {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d)?)+$"}],
                    "description": "seconds, or a duration such as 90s, 1m30s, 400ms"}
Seconds = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]


class Model(BaseModel):
    """Unknown keys are errors (a typo must not be silently ignored); values never change;
    `.nan` and `.inf` are refused wherever a number is expected (docs/limits.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
