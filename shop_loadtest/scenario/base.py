"""The base of every scenario model (frozen, closed) and the field types they share.

Every section of a scenario file (including monitor:, plan: and forecast:) is a model of this
package, so the stages that act on a section import its model from here.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from shop_loadtest import limits
from shop_loadtest.errors import shown
from shop_loadtest.scenario.units import parse_duration

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
OnFail = Literal["continue", "end_journey"]
# RFC 9110 token characters: what a header name may hold (no space, no CR/LF, no colon).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# Friendly units are validated by our parsers; the JSON Schema says what editors should accept.
_DURATION_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0},
                              {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d)?)+$"}],
                    "description": "seconds, or a duration such as 90s, 1m30s, 400ms"}
Seconds = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]


class Model(BaseModel):
    """Unknown keys are errors (a typo must not be silently ignored); values never change;
    `.nan` and `.inf` are refused wherever a number is expected (docs/limits.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def control_problem(text: str, what: str) -> str | None:
    """Why `text` cannot go on an HTTP request line or header (CR/LF would split it)."""
    found = _CONTROL.search(text)
    if found:
        return (f"{what} holds the control character {found.group()!r}; CR or LF there would "
                f"inject request lines or headers")
    return None


def check_name(value: str, what: str = "a name") -> str:
    if len(value) > limits.MAX_NAME:
        raise ValueError(f"{what} is at most {limits.MAX_NAME} characters, got {len(value):,}")
    problem = control_problem(value, what)
    if problem:
        raise ValueError(problem)
    return value


def _text_name(value: str) -> str:
    return check_name(value)


Name = Annotated[str, AfterValidator(_text_name)]


def _header_name(value: str) -> str:
    if not _HEADER_NAME.match(value):
        raise ValueError(f"header name {shown(value)} holds a space, a colon or a control "
                         f"character; header names are letters, digits and !#$%&'*+.^_`|~-")
    return value


def _header_value(value: str) -> str:
    problem = control_problem(value, "a header value")
    if problem:
        raise ValueError(problem)
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[str, AfterValidator(_header_value)]
Headers = dict[HeaderName, HeaderValue]


def url_problem(url: Any) -> str | None:
    """Why `url` is not a usable target URL such as http://127.0.0.1:8800, or None."""
    if not isinstance(url, str):
        return f"expected a URL such as http://127.0.0.1:8800, got {shown(url)}"
    if control_problem(url, "") or " " in url:
        return f"a URL holds no spaces or control characters, got {shown(url)}"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port out of range or not a number
    except ValueError as exc:
        return f"not a valid URL ({exc}): {shown(url)}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected a URL such as http://127.0.0.1:8800, got {shown(url)}"
    if port == 0:
        return f"port 0 is not a port a server listens on: {shown(url)}"
    return None


def _url(value: str) -> str:
    problem = url_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Url = Annotated[str, AfterValidator(_url)]


def json_problem(value: Any, path: str = "", depth: int = 0) -> str | None:
    """Why `value` is not plain JSON data (what a body, a query or a variable may hold)."""
    where = f" at {path}" if path else ""
    if value is None or isinstance(value, bool | str | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r}{where} is not a finite number"
    if isinstance(value, list):
        for i, item in enumerate(value):
            problem = json_problem(item, f"{path}[{i}]", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {shown(key)}{where} is not a string"
            problem = json_problem(item, f"{path}.{key}" if path else key, depth + 1)
            if problem:
                return problem
        return None
    return (f"{type(value).__name__} value{where} is not JSON data (quote dates and times; "
            f"write text, numbers, true/false, null, lists or mappings)")


def _json(value: Any) -> Any:
    problem = json_problem(value)
    if problem:
        raise ValueError(problem)
    return value


JsonValue = Annotated[Any, AfterValidator(_json)]


def _status(value: int) -> int:
    low, high = limits.STATUS_RANGE
    if not low <= value <= high:
        raise ValueError(f"an HTTP status is between {low} and {high}, got {value}")
    return value


Status = Annotated[int, AfterValidator(_status)]
def _level(value: float) -> float:
    if value > limits.MAX_TARGET:
        raise ValueError(f"a target (users, or journeys per second) is at most "
                         f"{limits.MAX_TARGET:,.0f} (docs/limits.md), got {value:g}")
    return value


Level = Annotated[float, Field(ge=0), AfterValidator(_level)]

__all__ = ["IDENT_RE", "METHODS", "NAME_RE", "Headers", "JsonValue", "Level", "Model", "Name",
           "OnFail", "Seconds", "Status", "Url", "check_name",
           "control_problem", "json_problem", "url_problem"]
