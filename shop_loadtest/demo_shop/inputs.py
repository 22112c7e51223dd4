"""Checks on what clients send; each failure is a 400 with a message that names the field."""

from __future__ import annotations

from typing import Any

from flask import abort, request


def positive_int(
    value: Any, field: str, *, default: int | None = None, maximum: int | None = None
) -> int:
    """An int >= 1 from JSON or a query string; numeric strings count ("3" -> 3).

    >>> positive_int("3", "page")
    3
    """
    if value is None or value == "":
        if default is None:
            abort(400, description=f"{field} is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        abort(400, description=f"{field} must be a whole number")
    try:
        number = int(value)
    except ValueError:
        abort(400, description=f"{field} must be a whole number, not {value!r}")
    if number < 1 or (maximum is not None and number > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        abort(400, description=f"{field} must be at least 1{upper}, not {number}")
    return number


def text(value: Any, field: str, *, required: bool = False, max_len: int = 200) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        abort(400, description=f"{field} must be a string")
    value = value.strip()
    if required and not value:
        abort(400, description=f"{field} is required")
    if len(value) > max_len:
        abort(400, description=f"{field} is longer than {max_len} characters")
    return value


def email(value: Any, field: str = "email") -> str:
    address = text(value, field, required=True, max_len=254)
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain:
        abort(400, description=f"{field} is not an email address: {address!r}")
    return address


def json_object() -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="expected a JSON object body (Content-Type: application/json)")
    return body
