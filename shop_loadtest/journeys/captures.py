"""Responses, captures and checks: what a step reads from the response it got.

    >>> view = ResponseView(200, text='<input name="csrf_token" value="t0k">')
    >>> Capture.parse("csrf", "form:csrf_token").extract(view)
    't0k'
"""

from __future__ import annotations

import difflib
import html
import json
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any

from shop_loadtest.journeys.templates import Renderer

CAPTURE_KINDS = ("json", "regex", "header", "cookie", "css", "form")
_ATTR = re.compile(r"^[A-Za-z_:][-A-Za-z0-9_:.]*$")
# A start tag whose quoted attribute values may hold '>', and the attributes inside it.
_INPUT_TAG = re.compile(r"""<input\b((?:[^>"']|"[^"]*"|'[^']*')*)>""", re.I)
_TAG_ATTR = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?""")


class ResponseView:
    """What captures and checks read from one response; each part is computed at most once.

    `text` may be a string or a function returning it (decoded only when needed);
    `session_cookies` gives the user's cookie jar as a mapping, for `cookie:` captures of a
    cookie set by an earlier response. `url` is the URL this response answered (the last hop
    of a step that followed redirects) and `chain` the statuses of the step's hops in order.
    """

    __slots__ = ("status", "headers", "_text", "_json", "_soup", "_session_cookies", "url",
                 "chain")

    def __init__(self, status: int, headers: Any = None, text: str | Callable[[], str] = "",
                 session_cookies: Callable[[], Mapping[str, str]] | None = None,
                 url: str = "", chain: tuple[int, ...] = ()) -> None:
        self.status = status
        self.url = url
        self.chain = chain or (status,)
        self.headers = headers if headers is not None else {}
        self._text = text
        self._json: list[Any] = []
        self._soup: Any = None
        self._session_cookies = session_cookies

    @property
    def text(self) -> str:
        if not isinstance(self._text, str):
            self._text = self._text() or ""
        return self._text

    def json(self) -> Any:
        if not self._json:
            try:
                self._json.append(json.loads(self.text))
            except ValueError:
                raise LookupError("the response is not JSON") from None
        return self._json[0]

    def soup(self) -> Any:
        if self._soup is None:
            from bs4 import BeautifulSoup

            self._soup = BeautifulSoup(self.text, "html.parser")
        return self._soup

    def header_values(self, name: str) -> list[str]:
        getlist = getattr(self.headers, "getlist", None)
        if getlist is not None:  # geventhttpclient's Headers: case-insensitive already
            return list(getlist(name))
        lower = name.lower()
        pairs = self.headers.items() if hasattr(self.headers, "items") else self.headers
        return [v for k, v in pairs if k.lower() == lower]

    def header(self, name: str) -> str | None:
        """The first value of the header `name` (any case), or None: for `until:` tests."""
        values = self.header_values(name)
        return values[0] if values else None

    def cookie(self, name: str) -> str | None:
        """The cookie set by this response, else the one in the user's jar."""
        for line in self.header_values("Set-Cookie"):
            try:
                jar: SimpleCookie = SimpleCookie(line)
            except CookieError:
                continue
            if name in jar:
                return jar[name].value
        if self._session_cookies is not None:
            return self._session_cookies().get(name)
        return None


_NOTHING = object()


def _split_capture(spec: str) -> tuple[str, str]:
    kind, sep, expr = spec.partition(":")
    kind = kind.strip()
    if not sep or kind not in CAPTURE_KINDS:
        close = difflib.get_close_matches(kind, CAPTURE_KINDS, n=1)
        hint = f" (did you mean {close[0]}:?)" if close and sep else ""
        raise ValueError(f"expected one of {', '.join(k + ':' for k in CAPTURE_KINDS)} "
                         f"followed by the expression, got {spec!r}{hint}")
    return kind, expr.strip()


def _css_parts(expr: str) -> tuple[str, str | None]:
    """`a.product@href` -> ('a.product', 'href'); `h1.title` -> ('h1.title', None)."""
    selector, at, attr = expr.rpartition("@")
    if at and selector.strip() and _ATTR.match(attr):
        return selector.strip(), attr
    return expr, None


def _form_parts(expr: str) -> tuple[str | None, str]:
    """`csrf_token` -> (None, 'csrf_token'); `form#login csrf_token` -> ('form#login', ...)."""
    scope, _, name = expr.rpartition(" ")
    return (scope.strip() or None), name


@dataclass(frozen=True)
class Capture:
    """A value taken from a response into a variable.

    `json:$.items[0].id`, `regex:order (\\d+)`, `header:Location`, `cookie:session`,
    `css:a.product@href` (an attribute; without `@attr`, the element's text),
    `form:csrf_token` (the value of the form field named csrf_token; `form:SELECTOR NAME`
    looks only inside the form matching SELECTOR). `pick` is first, random or all (a list).
    """

    var: str
    kind: str
    expr: str
    pick: str = "first"
    default: Any = _NOTHING
    on_fail: str | None = None
    _compiled: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, var: str, spec: str | Mapping[str, Any]) -> Capture:
        """From `"kind:expr"` or `{from: "kind:expr", pick: ..., default: ..., on_fail: ...}`;
        raise ValueError saying what is wrong with the expression."""
        options: Mapping[str, Any] = {}
        if not isinstance(spec, str):
            options = spec
            spec = str(spec.get("from", spec.get("from_", "")))
        kind, expr = _split_capture(spec)
        if not expr:
            raise ValueError(f"{kind}: needs an expression after the colon")
        compiled: Any
        if kind == "json":
            from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
            from jsonpath_ng.ext import parse as jsonpath

            try:
                compiled = jsonpath(expr)
            except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
                raise ValueError(f"JSON path {expr!r} does not parse: {exc}") from None
        elif kind == "regex":
            try:
                compiled = re.compile(expr)
            except re.error as exc:
                raise ValueError(f"regex {expr!r} does not compile: {exc}") from None
        elif kind == "css":
            import soupsieve

            selector, attr = _css_parts(expr)
            try:
                compiled = (soupsieve.compile(selector), attr)
            except soupsieve.SelectorSyntaxError as exc:
                message = str(exc).splitlines()[0]
                raise ValueError(f"CSS selector {selector!r} does not parse: {message}") from None
        elif kind == "form":
            import soupsieve

            scope, name = _form_parts(expr)
            try:
                compiled = (soupsieve.compile(scope) if scope else None, name)
            except soupsieve.SelectorSyntaxError as exc:
                message = str(exc).splitlines()[0]
                raise ValueError(f"form selector {scope!r} does not parse: {message}") from None
        else:
            compiled = expr
        return cls(var, kind, expr, pick=str(options.get("pick", "first")),
                   default=options["default"] if "default" in options else _NOTHING,
                   on_fail=options.get("on_fail"), _compiled=compiled)

    @property
    def source(self) -> str:
        return f"{self.kind}:{self.expr}"

    def extract(self, response: ResponseView, rng: random.Random | None = None) -> Any:
        """The captured value, or raise LookupError naming what was not found."""
        try:
            matches = self.matches(response, first_only=self.pick == "first")
        except LookupError as exc:  # e.g. the response is not JSON
            if self.default is not _NOTHING:
                return self.default
            raise LookupError(f"capture {self.var}: {exc}") from None
        if not matches:
            if self.default is not _NOTHING:
                return self.default
            raise LookupError(f"capture {self.var}: nothing matched {self.source}")
        if self.pick == "all":
            return matches
        if self.pick == "random" and len(matches) > 1:
            return (rng or random).choice(matches)
        return matches[0]

    def matches(self, response: ResponseView, first_only: bool = False) -> list[Any]:
        kind, compiled = self.kind, self._compiled
        if kind == "json":
            return [m.value for m in compiled.find(response.json())]
        if kind == "regex":
            if first_only:
                m = compiled.search(response.text)
                return [] if m is None else [m.group(1) if m.re.groups else m.group(0)]
            return [m.group(1) if m.re.groups else m.group(0)
                    for m in compiled.finditer(response.text)]
        if kind == "header":
            return response.header_values(compiled)
        if kind == "cookie":
            value = response.cookie(compiled)
            return [] if value is None else [value]
        if kind == "css":
            selector, attr = compiled
            soup = response.soup()
            elements = ([e for e in [selector.select_one(soup)] if e is not None] if
                        first_only and attr is None else selector.select(soup))
            return _element_values(elements, attr, first_only)
        scope, name = compiled
        if scope is None and name in response.text:
            # Most form captures read a hidden <input> (a CSRF token): scanning the tags is
            # a hundred times cheaper than parsing the page. Other fields take the parser.
            found = _input_values(response.text, name, first_only)
            if found:
                return found
        if name not in response.text:
            return []
        return _form_values(response.soup(), scope, name, first_only)


def _element_values(elements: Iterable[Any], attr: str | None, first_only: bool) -> list[Any]:
    out: list[Any] = []
    for element in elements:
        if attr is None:
            out.append(element.get_text(" ", strip=True))
        else:
            value = element.get(attr)
            if value is None:
                continue
            out.append(" ".join(value) if isinstance(value, list) else value)
        if first_only:
            break
    return out


def _input_values(text: str, name: str, first_only: bool) -> list[str]:
    """What `_form_values` gives for <input> fields, read from the tags without a parser."""
    out: list[str] = []
    for tag in _INPUT_TAG.finditer(text):
        if name not in tag.group(1):
            continue
        attrs = {m.group(1).lower(): html.unescape(
                     next((g for g in m.group(2, 3, 4) if g is not None), ""))
                 if m.group(2, 3, 4) != (None, None, None) else None
                 for m in _TAG_ATTR.finditer(tag.group(1))}
        if attrs.get("name") != name:
            continue
        kind = (attrs.get("type") or "text").lower()
        if kind in ("checkbox", "radio"):
            if "checked" not in attrs:
                continue
            out.append(attrs.get("value") or "on")
        else:
            out.append(attrs.get("value") or "")
        if first_only:
            break
    return out


def _form_values(soup: Any, scope: Any, name: str, first_only: bool) -> list[str]:
    """Values a browser would submit for the field `name`: inputs (checked ones only for
    checkboxes and radios), the selected option of a select, a textarea's text."""
    roots = scope.select(soup) if scope is not None else [soup]
    out: list[str] = []
    for root in roots:
        for element in root.find_all(("input", "select", "textarea"), attrs={"name": name}):
            if element.name == "input":
                kind = (element.get("type") or "text").lower()
                if kind in ("checkbox", "radio") and not element.has_attr("checked"):
                    continue
                value = element.get("value")
                out.append("on" if value is None and kind in ("checkbox", "radio") else
                           value or "")
            elif element.name == "textarea":
                out.append(element.get_text())
            else:
                options = element.find_all("option")
                chosen = [o for o in options if o.has_attr("selected")] or options[:1]
                out.extend(o.get("value", o.get_text(strip=True)) for o in chosen)
            if first_only and out:
                return out[:1]
    return out


def _short(value: Any, scrub: Callable[[str], str], limit: int = 80) -> str:
    text = scrub(repr(value))  # mask first, cut after: no prefix of a secret survives
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class CompiledCheck:
    """A `check:` entry ready to run: `failure()` returns None when it holds."""

    kind: str  # "json" or "body" (status checks fold into the step's expected statuses)
    on_fail: str
    path: str = ""
    jsonpath: Any = None
    equals: Renderer | None = None
    exists: bool | None = None
    contains: Renderer | None = None
    scrub: Callable[[str], str] = str  # masks secrets in the message (SecretEnv.scrub)

    def failure(self, response: ResponseView, ctx: Mapping[str, Any]) -> str | None:
        if self.kind == "body":
            assert self.contains is not None
            needle = str(self.contains(ctx))
            if needle in response.text:
                return None
            return f"check body contains {_short(needle, self.scrub)}: not found"
        matches = self.jsonpath.find(response.json())
        if self.exists is not None:
            if bool(matches) == self.exists:
                return None
            if self.exists:
                return f"check {self.path} exists: nothing there"
            return f"check {self.path} is absent: found {_short(matches[0].value, self.scrub)}"
        assert self.equals is not None
        expected = self.equals(ctx)
        if not matches:
            return f"check {self.path} == {_short(expected, self.scrub)}: nothing there"
        actual = matches[0].value
        if actual == expected:
            return None
        return (f"check {self.path} == {_short(expected, self.scrub)}: "
                f"got {_short(actual, self.scrub)}")
