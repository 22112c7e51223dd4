"""Journeys as plain objects: templated request steps, captures, checks, think times and data.

Nothing here does I/O on the network or imports locust, so the same code validates a scenario
in the CLI process and runs it inside Locust (the runtime only adds the HTTP call). Templates
run in a sandboxed Jinja2 environment with `faker`, `random_int`, `random_choice`,
`random_float`, `uuid`, `env` and the scenario's `vars`; a value that is exactly one
`{{ expression }}` keeps its Python type, so `product_id: "{{ product_id }}"` sends a number
when the capture was a number. A string without `{{` is never rendered: constants are free.

    >>> env = make_environment(seed=1)
    >>> compile_value(env, {"id": "{{ pid }}", "q": 1})({"pid": 7})
    {'id': 7, 'q': 1}
    >>> view = ResponseView(200, text='<input name="csrf_token" value="t0k">')
    >>> Capture.parse("csrf", "form:csrf_token").extract(view)
    't0k'
"""

from __future__ import annotations

import csv
import difflib
import html
import json
import os
import random
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

if TYPE_CHECKING:
    from shop_loadtest.scenario import Scenario

GLOBAL_NAMES = ("faker", "random_int", "random_choice", "random_float", "uuid", "env", "vars")
CAPTURE_KINDS = ("json", "regex", "header", "cookie", "css", "form")
_SINGLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.S)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ATTR = re.compile(r"^[A-Za-z_:][-A-Za-z0-9_:.]*$")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# A start tag whose quoted attribute values may hold '>', and the attributes inside it.
_INPUT_TAG = re.compile(r"""<input\b((?:[^>"']|"[^"]*"|'[^']*')*)>""", re.I)
_TAG_ATTR = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?""")


class MissingSecret(LookupError):
    """`{{ env.NAME }}` when NAME is not set. Not an AttributeError, so that Jinja does not
    turn it into an empty string."""


class TemplateError(Exception):
    """A template failed while a request was being built (an undefined value, a missing
    environment variable); the runtime records it as the step's failure."""


class DataExhausted(Exception):
    """A `mode: unique` data source has handed out every row it holds."""


class SecretEnv(Mapping[str, str]):
    """`env.NAME` in templates: reads the environment, and remembers what it handed out so
    that reports and logs can redact those values."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ if environ is not None else os.environ
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> str:
        value = self._environ[key]
        self.used.add(value)
        return value

    def __getattr__(self, key: str) -> str:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise MissingSecret(f"environment variable {key} is not set") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)

    def scrub(self, text: str) -> str:
        """`text` with every value handed out so far replaced by `***`."""
        for secret in self.used:
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text


def make_environment(*, seed: int | None = None, locale: str | list[str] | None = None,
                     rng: random.Random | None = None,
                     secrets: SecretEnv | None = None) -> SandboxedEnvironment:
    """A sandboxed Jinja2 environment with the template helpers, one per load process.

    Undefined values raise (StrictUndefined): a request is never sent with an empty id.
    """
    from faker import Faker  # slow to import; only needed when templates are rendered

    rng = rng or random.Random(seed)
    fake = Faker(locale) if locale else Faker()
    if seed is not None:
        fake.seed_instance(seed)

    def make_uuid() -> str:
        if seed is None:
            return str(uuid.uuid4())
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True,
                               undefined=StrictUndefined)
    env.globals.update(
        faker=fake,
        random_int=lambda low=0, high=100: rng.randint(low, high),
        random_float=lambda low=0.0, high=1.0: rng.uniform(low, high),
        random_choice=lambda seq: rng.choice(list(seq)),
        uuid=make_uuid,
        env=secrets if secrets is not None else SecretEnv(),
    )
    return env


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _is_constant(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_is_constant(v) for v in value.values())
    if isinstance(value, list):
        return all(_is_constant(v) for v in value)
    return not is_template(value)


Renderer = Callable[[Mapping[str, Any]], Any]


def constant(value: Any) -> Renderer:
    return lambda ctx: value


def compile_value(env: SandboxedEnvironment, value: Any) -> Renderer:
    """Compile a value (str, or nested lists/dicts of them) into a function of the context.

    Constant values cost nothing at run time: they are returned as they are (do not mutate).
    """
    if _is_constant(value):
        return constant(value)
    if isinstance(value, dict):
        parts = [(k, compile_value(env, v)) for k, v in value.items()]
        return lambda ctx: {k: r(ctx) for k, r in parts}
    if isinstance(value, list):
        items = [compile_value(env, v) for v in value]
        return lambda ctx: [r(ctx) for r in items]
    single = _SINGLE_EXPR.match(value)
    if single and "}}" not in single.group("expr") and "{%" not in value:
        expr = env.compile_expression(single.group("expr"), undefined_to_none=False)

        def evaluate(ctx: Mapping[str, Any]) -> Any:
            result = expr(ctx)
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            return result

        return evaluate
    template = env.from_string(value)
    return lambda ctx: template.render(ctx)


# --- Responses, captures and checks -----------------------------------------------------------

class ResponseView:
    """What captures and checks read from one response; each part is computed at most once.

    `text` may be a string or a function returning it (decoded only when needed);
    `session_cookies` gives the user's cookie jar as a mapping, for `cookie:` captures of a
    cookie set by an earlier response.
    """

    __slots__ = ("status", "headers", "_text", "_json", "_soup", "_session_cookies")

    def __init__(self, status: int, headers: Any = None, text: str | Callable[[], str] = "",
                 session_cookies: Callable[[], Mapping[str, str]] | None = None) -> None:
        self.status = status
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


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
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

    def failure(self, response: ResponseView, ctx: Mapping[str, Any]) -> str | None:
        if self.kind == "body":
            assert self.contains is not None
            needle = str(self.contains(ctx))
            if needle in response.text:
                return None
            return f"check body contains {_short(needle)}: not found"
        matches = self.jsonpath.find(response.json())
        if self.exists is not None:
            if bool(matches) == self.exists:
                return None
            if self.exists:
                return f"check {self.path} exists: nothing there"
            return f"check {self.path} is absent: found {_short(matches[0].value)}"
        assert self.equals is not None
        expected = self.equals(ctx)
        if not matches:
            return f"check {self.path} == {_short(expected)}: nothing there"
        actual = matches[0].value
        if actual == expected:
            return None
        return f"check {self.path} == {_short(expected)}: got {_short(actual)}"


# --- Steps ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestStep:
    method: str
    path: str
    name: str
    query: dict[str, Any] | None = None
    json: Any = None
    form: dict[str, Any] | None = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    capture: dict[str, Any] = field(default_factory=dict)
    check: list[dict[str, Any]] = field(default_factory=list)
    status: tuple[int, ...] | None = None
    follow_redirects: bool = True
    on_fail: str = "end_journey"


@dataclass(frozen=True)
class ThinkStep:
    """A pause: `low..high` uniform (fixed when equal), or `dist` exponential / normal with
    `mean` (and `sd`), kept within `low` and `high` (None: no upper bound)."""

    low: float
    high: float | None
    dist: str = "uniform"
    mean: float = 0.0
    sd: float = 0.0

    def draw(self, rng: random.Random) -> float:
        if self.dist == "uniform":
            assert self.high is not None
            return self.low if self.low == self.high else rng.uniform(self.low, self.high)
        if self.dist == "exponential":
            value = rng.expovariate(1.0 / self.mean) if self.mean > 0 else 0.0
        else:
            value = rng.gauss(self.mean, self.sd)
        value = max(value, self.low)
        return value if self.high is None else min(value, self.high)

    def expected(self) -> float:
        if self.dist == "uniform":
            return (self.low + (self.high if self.high is not None else self.low)) / 2
        return self.mean


@dataclass
class CompiledRequest:
    """A request step with its templates compiled once per load process."""

    step: RequestStep
    url: Renderer
    headers: Renderer
    payload: Renderer | None  # JSON data for `json`, a str for `form` and `body`
    is_json: bool
    captures: list[Capture]
    checks: list[CompiledCheck]
    statuses: frozenset[int] | None
    status_on_fail: str

    def expected(self, status: int) -> bool:
        if self.statuses is None:
            return 0 < status < 400
        return status in self.statuses


def _with_query(path: str, query: Mapping[str, Any]) -> str:
    pairs = [(k, v) for k, v in query.items() if v is not None]
    if not pairs:
        return path
    return f"{path}{'&' if '?' in path else '?'}{urlencode(pairs, doseq=True)}"


def _merge_headers(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers win, whatever the case of the header names."""
    merged: dict[str, tuple[str, Any]] = {}
    for layer in layers:
        for name, value in layer.items():
            merged[name.lower()] = (name, value)
    return dict(merged.values())


def compile_request(env: SandboxedEnvironment, step: RequestStep,
                    default_headers: Mapping[str, str] | None = None) -> CompiledRequest:
    path = compile_value(env, step.path)
    if step.query:
        query = compile_value(env, step.query)
        if _is_constant(step.path) and _is_constant(step.query):
            url: Renderer = constant(_with_query(step.path, step.query))
        else:
            url = lambda ctx: _with_query(str(path(ctx)), query(ctx))  # noqa: E731
    else:
        url = path if _is_constant(step.path) else (lambda ctx: str(path(ctx)))
    extra: dict[str, str] = {}
    payload: Renderer | None = None
    if step.json is not None:
        payload = compile_value(env, step.json)
    elif step.form is not None:
        extra = {"Content-Type": FORM_CONTENT_TYPE}
        form = compile_value(env, step.form)
        payload = (constant(urlencode(step.form, doseq=True)) if _is_constant(step.form) else
                   lambda ctx: urlencode(form(ctx), doseq=True))
    elif step.body is not None:
        body = compile_value(env, step.body)
        payload = body if _is_constant(step.body) else (lambda ctx: str(body(ctx)))
    merged = _merge_headers(default_headers or {}, extra, step.headers)
    headers = compile_value(env, merged)
    if not _is_constant(merged):
        render_headers = headers
        headers = lambda ctx: {k: str(v) for k, v in render_headers(ctx).items()}  # noqa: E731
    statuses = set(step.status) if step.status else set()
    status_on_fail = step.on_fail
    checks: list[CompiledCheck] = []
    for spec in step.check:
        on_fail = spec.get("on_fail") or step.on_fail
        if spec.get("status") is not None:
            codes = spec["status"]
            statuses.update([codes] if isinstance(codes, int) else codes)
            status_on_fail = on_fail
        elif spec.get("json") is not None:
            from jsonpath_ng.ext import parse as jsonpath

            checks.append(CompiledCheck(
                "json", on_fail, path=spec["json"], jsonpath=jsonpath(spec["json"]),
                equals=compile_value(env, spec["equals"]) if "equals" in spec else None,
                exists=spec.get("exists")))
        else:
            checks.append(CompiledCheck("body", on_fail,
                                        contains=compile_value(env, spec["body_contains"])))
    return CompiledRequest(
        step=step, url=url, headers=headers, payload=payload,
        is_json=step.json is not None,
        captures=[Capture.parse(var, spec) for var, spec in step.capture.items()],
        checks=checks, statuses=frozenset(statuses) or None, status_on_fail=status_on_fail,
    )


# --- Data -------------------------------------------------------------------------------------

class Row:
    """One CSV row in templates: `{{ coupons.code }}` or `{{ coupons["discount code"] }}`."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getattr__(self, name: str) -> str:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Row) and other._values == self._values

    def __hash__(self) -> int:
        return hash(tuple(self._values.items()))

    def __repr__(self) -> str:
        return f"Row({self._values!r})"


def read_csv(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of a CSV file with a header row; ValueError when it has neither."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        if not columns:
            raise ValueError(f"{path}: empty CSV (the first line names the columns)")
        rows = [{c: (v or "").strip() for c, v in zip(columns, r.values(), strict=False)}
                for r in reader]
    if not rows:
        raise ValueError(f"{path}: no rows under the header")
    return columns, rows


@dataclass(frozen=True)
class DataSource:
    """A `data:` entry as generated locustfiles declare it (`file` resolved by them)."""

    name: str
    file: str | Path
    mode: str = "random"
    per: str = "journey"


class DataPool:
    """The rows of one data source in one load process.

    `random` draws any row, `sequential` goes round the rows in file order, `unique` hands each
    row out once and then raises DataExhausted. `share(index, count)` keeps the rows
    `index::count`, so that worker processes split a unique pool without overlap.
    """

    def __init__(self, source: DataSource, rows: list[Row], rng: random.Random | None = None):
        self.source = source
        self._all = rows
        self._rng = rng or random.Random()
        self._order = list(range(len(rows)))
        self._cursor = 0
        self._handed: set[int] = set()

    @classmethod
    def load(cls, source: DataSource, rng: random.Random | None = None) -> DataPool:
        _, rows = read_csv(source.file)
        return cls(source, [Row(r) for r in rows], rng)

    def share(self, index: int, count: int) -> None:
        """Keep only rows `index::count` (rows already handed out stay used)."""
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"share index {index} of {count} is out of range")
        self._order = [i for i in range(len(self._all))
                       if i % count == index and i not in self._handed]
        self._cursor = 0

    def __len__(self) -> int:
        return len(self._order)

    def remaining(self) -> int:
        return len(self._order) - self._cursor if self.source.mode == "unique" else len(self)

    def draw(self) -> Row:
        order = self._order
        if not order:
            raise DataExhausted(f"data {self.source.name!r} has no rows in this process")
        mode = self.source.mode
        if mode == "random":
            return self._all[order[self._rng.randrange(len(order))]]
        if mode == "sequential":
            i = order[self._cursor % len(order)]
            self._cursor += 1
            return self._all[i]
        if self._cursor >= len(order):
            raise DataExhausted(
                f"data {self.source.name!r} is exhausted: all {len(order)} unique rows are used")
        i = order[self._cursor]
        self._cursor += 1
        self._handed.add(i)
        return self._all[i]


# --- Journeys as generated locustfiles declare them -------------------------------------------

Block = list[RequestStep | ThinkStep]


@dataclass(frozen=True)
class Journey:
    """A named, weighted list of steps, with steps run once per user before and after."""

    name: str
    weight: float
    steps: Block
    on_start: Block = field(default_factory=list)
    on_stop: Block = field(default_factory=list)

    def estimated_seconds(self) -> float:
        """A first guess of one run's duration, before any has been measured."""
        think = sum(s.expected() for s in self.steps if isinstance(s, ThinkStep))
        requests = sum(1 for s in self.steps if isinstance(s, RequestStep))
        return think + 0.05 * requests


@dataclass(frozen=True)
class Settings:
    """What every journey of a scenario shares, declared once in the generated locustfile."""

    variables: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    data: list[DataSource] = field(default_factory=list)
    locale: str | list[str] | None = None
    seed: int | None = None


def step_template_texts(step: RequestStep) -> Iterator[str]:
    """Every templated string of a runtime step (to find the data sources it uses)."""
    yield step.path
    for value in (step.query, step.json, step.form, step.body, step.headers,
                  [c.get("equals") for c in step.check],
                  [c.get("body_contains") for c in step.check]):
        for _, text in _strings(value, ()):
            yield text


def names_used(env: SandboxedEnvironment, texts: Iterable[str]) -> set[str]:
    """Top-level names the templates among `texts` refer to."""
    used: set[str] = set()
    for text in texts:
        if is_template(text):
            used |= meta.find_undeclared_variables(env.parse(text))
    return used


def to_block(steps: Iterable[Any]) -> Block:
    """Scenario steps -> plain step objects, as the generator writes them out."""
    from shop_loadtest.scenario import parse_think

    out: Block = []
    for step in steps:
        if step.think is not None:
            if isinstance(step.think, str | int | float):
                low, high = parse_think(step.think)
                out.append(ThinkStep(low, high))
            else:
                d = step.think
                dist = "exponential" if d.exponential is not None else "normal"
                mean = d.exponential if d.exponential is not None else d.normal
                out.append(ThinkStep(d.min, d.max, dist=dist, mean=mean,
                                     sd=d.sd if d.sd is not None else 0.0))
            continue
        capture = {var: spec if isinstance(spec, str) else
                   spec.model_dump(by_alias=True, exclude_unset=True)
                   for var, spec in step.capture.items()}
        out.append(RequestStep(
            method=step.method, path=step.path, name=step.label,
            query=dict(step.query) if step.query is not None else None,
            json=step.json_body, form=step.form, body=step.body, headers=dict(step.headers),
            capture=capture,
            check=[c.model_dump(by_alias=True, exclude_unset=True) for c in step.check],
            status=tuple(step.expect.status) if step.expect and step.expect.status else None,
            follow_redirects=step.follow_redirects, on_fail=step.on_fail,
        ))
    return out


# --- Validation -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    message: str
    loc: tuple[str | int, ...]


Loc = tuple[str | int, ...]


def _strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*loc, i))


def _templated_fields(step: Any) -> Iterator[tuple[Loc, str]]:
    """(location inside the step, text) for every string of a scenario step that is sent;
    check values come last (they may use the step's own captures)."""
    if step.request:
        yield ("request",), step.request
    yield from _strings(step.query, ("query",))
    yield from _strings(step.json_body, ("json",))
    yield from _strings(step.form, ("form",))
    yield from _strings(step.body, ("body",))
    yield from _strings(step.headers, ("headers",))


def _check_fields(step: Any) -> Iterator[tuple[Loc, str]]:
    for i, check in enumerate(step.check):
        yield from _strings(check.equals, ("check", i, "equals"))
        yield from _strings(check.body_contains, ("check", i, "body_contains"))


def _faker_attributes(ast: nodes.Template) -> Iterator[str]:
    for node in ast.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "faker":
            yield node.attr


def _column_uses(ast: nodes.Template, data: Mapping[str, list[str]]) -> Iterator[tuple[str, str]]:
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if not (isinstance(target, nodes.Name) and target.name in data):
            continue
        if isinstance(node, nodes.Getattr):
            yield target.name, node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and \
                isinstance(node.arg.value, str):
            yield target.name, node.arg.value


def _hint(word: str, options: Iterable[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


class _Checker:
    """Template checks for one scenario: names, Faker providers and data columns."""

    def __init__(self, scenario: Scenario, base: Path) -> None:
        from faker import Faker

        self.env = SandboxedEnvironment()
        self.base = base
        self.problems: list[Problem] = []
        locale = scenario.faker.locale
        try:
            self.fake = Faker(locale) if locale else Faker()
        except AttributeError:
            self.fake = Faker()
        self.columns: dict[str, list[str]] = {}

    def template(self, text: str, loc: Loc, known: set[str],
                 later: Mapping[str, str]) -> None:
        """Check one string; `later` maps names captured after this point to where."""
        if not is_template(text):
            return
        try:
            ast = self.env.parse(text)
        except TemplateSyntaxError as exc:
            self.problems.append(Problem(f"template does not parse: {exc.message}", loc))
            return
        for name in sorted(meta.find_undeclared_variables(ast)):
            if name in known:
                continue
            if name in later:
                self.problems.append(Problem(f"{name!r} is used before {later[name]}", loc))
            else:
                self.problems.append(Problem(f"unknown variable {name!r}{_hint(name, known)}",
                                             loc))
        for attr in _faker_attributes(ast):
            if not hasattr(self.fake, attr):
                options = [a for a in dir(self.fake) if not a.startswith("_")]
                self.problems.append(Problem(
                    f"unknown Faker provider faker.{attr}{_hint(attr, options, 'faker.')}", loc))
        for source, column in _column_uses(ast, self.columns):
            if column not in self.columns[source]:
                columns = self.columns[source]
                self.problems.append(Problem(
                    f"data {source!r} has no column {column!r}{_hint(column, columns)} "
                    f"(columns: {', '.join(columns)})", loc))

    def captures(self, step: Any, base: Loc) -> None:
        for var, spec in step.capture.items():
            loc: Loc = (*base, "capture", var)
            if not _IDENT.match(var) or var in GLOBAL_NAMES:
                self.problems.append(Problem(
                    f"capture name {var!r} must be a plain name (letters, digits, _) other "
                    f"than {', '.join(GLOBAL_NAMES)}", loc))
                continue
            text = spec if isinstance(spec, str) else spec.from_
            try:
                Capture.parse(var, text)
            except ValueError as exc:
                where = loc if isinstance(spec, str) else (*loc, "from")
                self.problems.append(Problem(f"capture {var!r}: {exc}", where))

    def checks(self, step: Any, base: Loc) -> None:
        from jsonpath_ng.ext import parse as jsonpath

        for i, check in enumerate(step.check):
            if check.json_path is not None:
                try:
                    jsonpath(check.json_path)
                except Exception as exc:
                    self.problems.append(Problem(
                        f"JSON path {check.json_path!r} does not parse: {exc}",
                        (*base, "check", i, "json")))

    def block(self, steps: list[Any], base: Loc, known: set[str],
              later_blocks: Mapping[str, str]) -> set[str]:
        """Check a list of steps; returns the names it captures."""
        captured_at: dict[str, int] = {}
        for s, step in enumerate(steps):
            for var in step.capture:
                captured_at.setdefault(var, s)
        known = set(known)
        block_name = base[-1]
        for s, step in enumerate(steps):
            loc: Loc = (*base, s)
            later = {**later_blocks, **{
                n: f"the step that captures it ({block_name} step {i + 1})"
                if block_name != "steps" else f"the step that captures it (step {i + 1})"
                for n, i in captured_at.items() if i >= s and n not in known}}
            self.captures(step, loc)
            self.checks(step, loc)
            for field_loc, text in _templated_fields(step):
                self.template(text, (*loc, *field_loc), known, later)
            known |= set(step.capture)
            for field_loc, text in _check_fields(step):
                self.template(text, (*loc, *field_loc), known, later)
        return set(captured_at)


def _has_class(path: Path, name: str) -> bool:
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return any(isinstance(node, ast.ClassDef) and node.name == name for node in tree.body)


def check_journeys(scenario: Scenario, base: Path = Path(".")) -> Iterator[Problem]:
    """Problems the models cannot see: templates (syntax, unknown names, captures used too
    early, Faker typos, data columns), capture expressions, data files and user classes."""
    checker = _Checker(scenario, base)
    problems = checker.problems
    if scenario.faker.locale:
        from faker.config import AVAILABLE_LOCALES

        locales = ([scenario.faker.locale] if isinstance(scenario.faker.locale, str)
                   else scenario.faker.locale)
        for locale in locales:
            if locale not in AVAILABLE_LOCALES:
                yield Problem(f"unknown Faker locale {locale!r}"
                              f"{_hint(locale, AVAILABLE_LOCALES)}", ("faker", "locale"))
    reserved = set(GLOBAL_NAMES)
    for name in scenario.variables:
        if not _IDENT.match(name) or name in reserved:
            yield Problem(f"variable name {name!r} must be a plain name (letters, digits, _) "
                          f"other than {', '.join(GLOBAL_NAMES)}", ("variables", name))
    for name, source in scenario.data.items():
        if not _IDENT.match(name) or name in reserved or name in scenario.variables:
            yield Problem(f"data name {name!r} must be a plain name (letters, digits, _), "
                          f"not a variable nor one of {', '.join(GLOBAL_NAMES)}", ("data", name))
            continue
        try:
            columns, _ = read_csv(base / source.file)
        except FileNotFoundError:
            yield Problem(f"no such file {source.file!r} (paths are relative to the scenario "
                          f"file's folder, {base.as_posix() or '.'})", ("data", name, "file"))
            continue
        except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
            yield Problem(f"cannot read {source.file!r}: {exc}", ("data", name, "file"))
            continue
        checker.columns[name] = columns
    globals_known = set(GLOBAL_NAMES)
    for name, value in scenario.variables.items():
        for loc, text in _strings(value, ("variables", name)):
            checker.template(text, loc, globals_known, {})
    known = globals_known | set(scenario.variables) | set(checker.columns)
    for name, text in scenario.target.headers.items():
        checker.template(text, ("target", "headers", name), globals_known | set(
            scenario.variables), {})
    for j, journey in enumerate(scenario.journeys):
        if journey.class_ is not None:
            problem = _check_class(journey.class_, base, ("journeys", j, "class"))
            if scenario.load.model != "users":
                problem = Problem("a journey with class: runs in the closed model only "
                                  "(load.model: users): Locust user classes cannot take "
                                  "arrivals", ("journeys", j, "class"))
            if problem is not None:
                problems.append(problem)
            continue
        step_caps = {n: "the journey's steps, which run after on_start"
                     for step in journey.steps for n in step.capture}
        started = checker.block(journey.on_start, ("journeys", j, "on_start"), known, step_caps)
        stop_caps = {n: "on_stop, which runs last" for step in journey.on_stop
                     for n in step.capture}
        ran = checker.block(journey.steps, ("journeys", j, "steps"), known | started,
                            {n: w for n, w in stop_caps.items() if n not in started})
        checker.block(journey.on_stop, ("journeys", j, "on_stop"), known | started | ran, {})
    yield from problems


def _check_class(spec: str, base: Path, loc: Loc) -> Problem | None:
    file, _, name = spec.rpartition(":")
    path = base / file
    if not path.is_file():
        hint = ""
        if Path(file).is_file():
            rel = os.path.relpath(Path(file).resolve(), base.resolve())
            hint = f"; from the current folder it is {Path(rel).as_posix()}:{name}"
        return Problem(f"no such file {file!r} (relative to the scenario file's folder, "
                       f"{base.as_posix() or '.'}){hint}", loc)
    try:
        found = _has_class(path, name)
    except (SyntaxError, UnicodeDecodeError, OSError) as exc:
        return Problem(f"cannot read {file}: {exc}", loc)
    if not found:
        return Problem(f"{file} defines no class {name} at its top level", loc)
    return None
