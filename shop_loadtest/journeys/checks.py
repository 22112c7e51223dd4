"""Checks of a response beyond its status, a JSON value and a text in the body: a header,
the final URL and the statuses of a step's redirect hops, a text the body must not hold, the
JSON type of a value, a variable (what a capture took). Each `failure()` is None when the
check holds, else what was found.

    >>> check = compile_response_check(None, {"header": "Content-Type",
    ...                                       "contains": "json"}, "end_journey")
    >>> check.failure(ResponseView(200, {"content-type": "text/html"}), {})
    "check header Content-Type contains 'json': got 'text/html'"
    >>> chain = compile_response_check(None, {"redirect_chain": [303, 200]}, "continue")
    >>> chain.failure(ResponseView(200, chain=(303, 200)), {}) is None
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jinja2.sandbox import SandboxedEnvironment

from shop_loadtest.journeys.captures import ResponseView, _short
from shop_loadtest.journeys.templates import Renderer, compile_value, constant

# JSON Schema's names for JSON values, as `type:` takes them.
JSON_TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")


def json_type(value: Any) -> str:
    """The JSON type name of a decoded JSON value (an integer is also a number)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _is_type(value: Any, wanted: str) -> bool:
    found = json_type(value)
    return found == wanted or (wanted == "number" and found == "integer") or (
        wanted == "integer" and isinstance(value, float) and value.is_integer())


def same_url(actual: str, expected: str) -> bool:
    """Whether the absolute URL `actual` is `expected`: a whole URL, or a path (with its
    query when `expected` has one) when `expected` starts with '/'."""
    if not expected.startswith("/"):
        return actual.rstrip("/") == expected.rstrip("/") if "?" not in expected else (
            actual == expected)
    parts = urlsplit(actual)
    path = parts.path or "/"
    if "?" in expected:
        return f"{path}?{parts.query}" == expected
    return path == expected


@dataclass
class ResponseCheck:
    kind: str  # header, json_type, body_absent, final_url, redirect_chain, var
    on_fail: str
    path: str = ""  # what is checked, for messages: "header Location", "$.id", "final URL"
    header: str = ""
    jsonpath: Any = None
    types: tuple[str, ...] = ()
    statuses: tuple[int, ...] = ()
    exists: bool | None = None
    text: Renderer | None = None  # equals / contains / the URL / the absent text
    contains: bool = False
    scrub: Callable[[str], str] = str

    def failure(self, response: ResponseView, ctx: Mapping[str, Any]) -> str | None:
        scrub = self.scrub
        if self.kind == "redirect_chain":
            if tuple(response.chain) == self.statuses:
                return None
            return (f"check redirect_chain {list(self.statuses)}: got "
                    f"{list(response.chain)}")
        if self.kind == "json_type":
            matches = self.jsonpath.find(response.json())
            if not matches:
                return f"check {self.path} is {' or '.join(self.types)}: nothing there"
            value = matches[0].value
            if any(_is_type(value, t) for t in self.types):
                return None
            return (f"check {self.path} is {' or '.join(self.types)}: got {json_type(value)} "
                    f"{_short(value, scrub)}")
        if self.kind == "var":
            return self._variable(ctx)
        assert self.text is not None
        wanted = str(self.text(ctx))
        if self.kind == "body_absent":
            if wanted not in response.text:
                return None
            return f"check body does not contain {_short(wanted, scrub)}: found"
        if self.kind == "final_url":
            if same_url(response.url, wanted):
                return None
            return f"check final_url {_short(wanted, scrub)}: got {_short(response.url, scrub)}"
        values = response.header_values(self.header)
        if self.exists is not None:
            if bool(values) == self.exists:
                return None
            return (f"check {self.path} exists: not there" if self.exists else
                    f"check {self.path} is absent: found {_short(values[0], scrub)}")
        if values and (wanted in values[0] if self.contains else values[0] == wanted):
            return None
        verb = "contains" if self.contains else "=="
        got = _short(values[0], scrub) if values else "not there"
        return f"check {self.path} {verb} {_short(wanted, scrub)}: got {got}"


    def _variable(self, ctx: Mapping[str, Any]) -> str | None:
        name, scrub = self.header, self.scrub
        if self.exists is not None:
            if (name in ctx) == self.exists:
                return None
            return (f"check {name} exists: not set" if self.exists else
                    f"check {name} is not set: it is {_short(ctx[name], scrub)}")
        if name not in ctx:
            return f"check {name}: not set"
        value = ctx[name]
        if self.types:
            if any(_is_type(value, t) for t in self.types):
                return None
            return (f"check {name} is {' or '.join(self.types)}: got {json_type(value)} "
                    f"{_short(value, scrub)}")
        assert self.text is not None
        expected = self.text(ctx)
        if value == expected:
            return None
        return f"check {name} == {_short(expected, scrub)}: got {_short(value, scrub)}"


def compile_response_check(env: SandboxedEnvironment | None, spec: Mapping[str, Any],
                           on_fail: str, scrub: Callable[[str], str] = str,
                           ) -> ResponseCheck | None:
    """The check `spec` (a `check:` entry) when it is one of this module's kinds, else None.
    `env` may be None for checks whose values have no template (tests, doctests)."""
    def text(value: Any) -> Renderer:
        return constant(value) if env is None else compile_value(env, value)

    if spec.get("redirect_chain") is not None:
        codes = spec["redirect_chain"]
        return ResponseCheck("redirect_chain", on_fail, "redirect_chain",
                             statuses=tuple([codes] if isinstance(codes, int) else codes),
                             scrub=scrub)
    if spec.get("json") is not None and spec.get("type") is not None:
        from jsonpath_ng.ext import parse as jsonpath

        kinds = spec["type"]
        return ResponseCheck("json_type", on_fail, spec["json"], jsonpath=jsonpath(spec["json"]),
                             types=tuple([kinds] if isinstance(kinds, str) else kinds),
                             scrub=scrub)
    if spec.get("var") is not None:
        kinds = spec.get("type")
        return ResponseCheck("var", on_fail, str(spec["var"]), header=str(spec["var"]),
                             exists=spec.get("exists"),
                             types=tuple([kinds] if isinstance(kinds, str) else kinds or ()),
                             text=text(spec.get("equals")), scrub=scrub)
    if spec.get("body_not_contains") is not None:
        return ResponseCheck("body_absent", on_fail, "body", text=text(spec["body_not_contains"]),
                             scrub=scrub)
    if spec.get("final_url") is not None:
        return ResponseCheck("final_url", on_fail, "final URL", text=text(spec["final_url"]),
                             scrub=scrub)
    if spec.get("header") is not None:
        name = str(spec["header"])
        wanted = spec.get("contains", spec.get("equals", ""))
        return ResponseCheck("header", on_fail, f"header {name}", header=name,
                             exists=spec.get("exists"), text=text(wanted),
                             contains="contains" in spec, scrub=scrub)
    return None
