"""Journeys as plain objects: templated request steps, captures, checks and think times.

Nothing here does I/O or imports locust, so the same code validates a scenario in the CLI
process and runs it inside Locust (the runtime only adds the HTTP call). Templates run in a
sandboxed Jinja2 environment with `faker`, `random_int`, `random_choice`, `uuid`, `env` and
the scenario's `vars`; a value that is exactly one `{{ expression }}` keeps its Python type,
so `product_id: "{{ product_id }}"` sends a number when the capture was a number.
"""

from __future__ import annotations

import difflib
import json
import os
import random
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

if TYPE_CHECKING:
    from shop_loadtest.scenario import Scenario

GLOBAL_NAMES = ("faker", "random_int", "random_choice", "random_float", "uuid", "env", "vars")
_SINGLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.S)


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
            raise AttributeError(f"environment variable {key} is not set") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


def make_environment(*, seed: int | None = None, locale: str | None = None,
                     rng: random.Random | None = None) -> SandboxedEnvironment:
    """A sandboxed Jinja2 environment with the template helpers, one per load process."""
    from faker import Faker  # slow to import; only needed when templates are rendered

    rng = rng or random.Random(seed)
    fake = Faker(locale) if locale else Faker()
    if seed is not None:
        fake.seed_instance(seed)
    env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
    env.globals.update(
        faker=fake,
        random_int=lambda low=0, high=100: rng.randint(low, high),
        random_float=lambda low=0.0, high=1.0: rng.uniform(low, high),
        random_choice=lambda seq: rng.choice(list(seq)),
        uuid=lambda: str(uuid.uuid4()),
        env=SecretEnv(),
    )
    return env


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


Renderer = Callable[[Mapping[str, Any]], Any]


def compile_value(env: SandboxedEnvironment, value: Any) -> Renderer:
    """Compile a value (str, or nested lists/dicts of them) into a function of the context.

    Constant values cost nothing at run time: they are returned as they are.
    """
    if isinstance(value, dict):
        parts = {k: compile_value(env, v) for k, v in value.items()}
        if not any(is_template(v) or isinstance(v, dict | list) for v in value.values()):
            return lambda ctx: value
        return lambda ctx: {k: r(ctx) for k, r in parts.items()}
    if isinstance(value, list):
        items = [compile_value(env, v) for v in value]
        return lambda ctx: [r(ctx) for r in items]
    if not is_template(value):
        return lambda ctx: value
    single = _SINGLE_EXPR.match(value)
    if single and "}}" not in single.group("expr") and "{%" not in value:
        expr = env.compile_expression(single.group("expr"), undefined_to_none=False)
        return lambda ctx: expr(**ctx)
    template = env.from_string(value)
    return lambda ctx: template.render(ctx)


# --- Captures and checks ----------------------------------------------------------------------

@dataclass(frozen=True)
class Capture:
    """`json:$.items[0].id`, `regex:order (\\d+)`, `header:Location`."""

    var: str
    kind: str
    expr: str
    _compiled: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, var: str, spec: str) -> Capture:
        kind, expr = spec.split(":", 1)
        expr = expr.strip()
        compiled: Any
        if kind == "json":
            from jsonpath_ng.ext import parse as jsonpath

            compiled = jsonpath(expr)
        elif kind == "regex":
            compiled = re.compile(expr)
        else:
            compiled = expr.lower()
        return cls(var, kind, expr, compiled)

    def extract(self, status: int, headers: Mapping[str, str], text: str,
                parsed_json: Callable[[], Any]) -> Any:
        """The captured value, or raise LookupError naming what was not found."""
        if self.kind == "json":
            matches = self._compiled.find(parsed_json())
            if not matches:
                raise LookupError(f"capture {self.var}: nothing at {self.expr}")
            return matches[0].value
        if self.kind == "regex":
            m = self._compiled.search(text)
            if not m:
                raise LookupError(f"capture {self.var}: regex {self.expr!r} did not match")
            return m.group(1) if m.groups() else m.group(0)
        for name, value in headers.items():
            if name.lower() == self._compiled:
                return value
        raise LookupError(f"capture {self.var}: no header {self.expr}")


@dataclass(frozen=True)
class RequestStep:
    method: str
    path: str
    name: str
    json: Any = None
    form: dict[str, Any] | None = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    capture: dict[str, str] = field(default_factory=dict)
    status: tuple[int, ...] | None = None
    follow_redirects: bool = True


@dataclass(frozen=True)
class ThinkStep:
    low: float
    high: float


@dataclass
class CompiledRequest:
    """A request step with its templates compiled once per load process."""

    step: RequestStep
    path: Renderer
    json: Renderer | None
    form: Renderer | None
    body: Renderer | None
    headers: Renderer
    captures: list[Capture]

    def expected(self, status: int) -> bool:
        if self.step.status is None:
            return 0 < status < 400
        return status in self.step.status


def compile_request(env: SandboxedEnvironment, step: RequestStep) -> CompiledRequest:
    return CompiledRequest(
        step=step,
        path=compile_value(env, step.path),
        json=compile_value(env, step.json) if step.json is not None else None,
        form=compile_value(env, step.form) if step.form is not None else None,
        body=compile_value(env, step.body) if step.body is not None else None,
        headers=compile_value(env, dict(step.headers)),
        captures=[Capture.parse(var, spec) for var, spec in step.capture.items()],
    )


def parse_json_lazily(text: str) -> Callable[[], Any]:
    cache: list[Any] = []

    def parsed() -> Any:
        if not cache:
            try:
                cache.append(json.loads(text))
            except ValueError:
                raise LookupError("response is not JSON") from None
        return cache[0]

    return parsed


# --- Validation -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    message: str
    loc: tuple[str | int, ...]


def _templated_fields(step: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(location inside the step, template text) for every templated string of a step."""
    if step.request:
        yield ("request",), step.request

    def walk(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
        if isinstance(value, str):
            yield loc, value
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, (*loc, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield from walk(v, (*loc, i))

    yield from walk(step.json_body, ("json",))
    yield from walk(step.form, ("form",))
    yield from walk(step.body, ("body",))
    yield from walk(step.headers, ("headers",))


def _faker_attributes(ast: nodes.Template) -> Iterator[str]:
    for node in ast.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "faker":
            yield node.attr


def check_journeys(scenario: Scenario) -> Iterator[Problem]:
    """Template problems: syntax, unknown variables, captures used too early, Faker typos."""
    env = SandboxedEnvironment()
    from faker import Faker

    fake = Faker()
    scenario_vars = set(scenario.variables)
    for j, journey in enumerate(scenario.journeys):
        captured_at: dict[str, int] = {}
        for s, step in enumerate(journey.steps):
            for var in step.capture:
                captured_at.setdefault(var, s)
        known = set(GLOBAL_NAMES) | scenario_vars
        for s, step in enumerate(journey.steps):
            base: tuple[str | int, ...] = ("journeys", j, "steps", s)
            for loc, text in _templated_fields(step):
                if not is_template(text):
                    continue
                try:
                    ast = env.parse(text)
                except TemplateSyntaxError as exc:
                    yield Problem(f"template does not parse: {exc.message}", (*base, *loc))
                    continue
                for name in sorted(meta.find_undeclared_variables(ast)):
                    if name in known:
                        continue
                    if name in captured_at:
                        yield Problem(
                            f"{name!r} is used before the step that captures it "
                            f"(step {captured_at[name] + 1})", (*base, *loc))
                    else:
                        close = difflib.get_close_matches(name, sorted(known), n=1)
                        hint = f" (did you mean {close[0]}?)" if close else ""
                        yield Problem(f"unknown variable {name!r}{hint}", (*base, *loc))
                for attr in _faker_attributes(ast):
                    if not hasattr(fake, attr):
                        close = difflib.get_close_matches(attr, [a for a in dir(fake)
                                                                 if not a.startswith("_")], n=1)
                        hint = f" (did you mean faker.{close[0]}?)" if close else ""
                        yield Problem(f"unknown Faker provider faker.{attr}{hint}",
                                      (*base, *loc))
            known |= set(step.capture)


def to_steps(journey: Any) -> list[RequestStep | ThinkStep]:
    """Scenario journey -> plain step objects, as the generator writes them out."""
    from shop_loadtest.scenario import parse_think

    out: list[RequestStep | ThinkStep] = []
    for step in journey.steps:
        if step.think is not None:
            low, high = parse_think(step.think)
            out.append(ThinkStep(low, high))
            continue
        out.append(RequestStep(
            method=step.method, path=step.path, name=step.label, json=step.json_body,
            form=step.form, body=step.body, headers=dict(step.headers),
            capture=dict(step.capture),
            status=tuple(step.expect.status) if step.expect and step.expect.status else None,
            follow_redirects=step.follow_redirects,
        ))
    return out


@dataclass(frozen=True)
class Journey:
    """A named, weighted list of steps, as generated locustfiles declare it."""

    name: str
    weight: float
    steps: list[RequestStep | ThinkStep]

    def estimated_seconds(self) -> float:
        """A first guess of one run's duration, before any has been measured."""
        think = sum((s.low + s.high) / 2 for s in self.steps if isinstance(s, ThinkStep))
        requests = sum(1 for s in self.steps if isinstance(s, RequestStep))
        return think + 0.05 * requests
