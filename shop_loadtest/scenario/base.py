"""The base of every scenario model (frozen, closed) and the field types they share."""

from __future__ import annotations

import re
from typing import Literal

from shop_loadtest.fields import Model, Seconds

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
OnFail = Literal["continue", "end_journey"]

__all__ = ["IDENT_RE", "METHODS", "NAME_RE", "Model", "OnFail", "Seconds"]
