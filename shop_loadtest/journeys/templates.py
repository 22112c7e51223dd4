"""Templates: the sandboxed Jinja2 environment, `env.NAME` secrets and compiled values.

A value that is exactly one `{{ expression }}` keeps its Python type; a string without `{{`
is never rendered, so constants cost nothing.

    >>> env = make_environment(seed=1)
    >>> compile_value(env, {"id": "{{ pid }}", "q": 1})({"pid": 7})
    {'id': 7, 'q': 1}
"""

from __future__ import annotations

import os
import random
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, Undefined, meta
from jinja2.sandbox import SandboxedEnvironment

from shop_loadtest.journeys.sandbox import Sandbox
from shop_loadtest.safety.mask import mask

GLOBAL_NAMES = ("faker", "random_int", "random_choice", "random_float", "uuid", "env", "vars",
                "host", "base_url")


def target_names(host: str | None) -> dict[str, str]:
    """`{{ host }}` and `{{ base_url }}`: the base URL requests go to (the user's host, so
    `--host` moves it too), without a trailing slash, so `{{ base_url }}/api/x` is a URL.

    >>> target_names("http://127.0.0.1:8000/")
    {'host': 'http://127.0.0.1:8000', 'base_url': 'http://127.0.0.1:8000'}
    """
    base = (host or "").rstrip("/")
    return {"host": base, "base_url": base}
_SINGLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.S)


class MissingSecret(LookupError):
    """`{{ env.NAME }}` when NAME is not set. Not an AttributeError, so that Jinja does not
    turn it into an empty string."""


class TemplateError(Exception):
    """A template failed while a request was being built (an undefined value, a missing
    environment variable); the runtime records it as the step's failure."""


class SecretEnv:
    """`env.NAME` (or `env.get('NAME', fallback)`) in templates: reads the environment, and
    remembers what it handed out so that reports and logs can mask those values. Not a
    mapping: it cannot be listed (`env.items()` reads a variable named `items`; validate
    refuses it first)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ if environ is not None else os.environ
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> str:
        value = self._environ[key]
        self.used.add(value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __getattr__(self, key: str) -> str:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise MissingSecret(f"environment variable {key} is not set") from None

    def scrub(self, text: str) -> str:
        """`text` with every value handed out so far masked, in every encoding
        (`shop_loadtest.safety.mask`)."""
        return mask(text, self.used)


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

    env = Sandbox(autoescape=False, keep_trailing_newline=True,
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


def is_constant(value: Any) -> bool:
    if isinstance(value, dict):
        return all(is_constant(v) for v in value.values())
    if isinstance(value, list):
        return all(is_constant(v) for v in value)
    return not is_template(value)


Renderer = Callable[[Mapping[str, Any]], Any]


def constant(value: Any) -> Renderer:
    return lambda ctx: value


def compile_value(env: SandboxedEnvironment, value: Any) -> Renderer:
    """Compile a value (str, or nested lists/dicts of them) into a function of the context.

    Constant values cost nothing at run time: they are returned as they are (do not mutate).
    """
    if is_constant(value):
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


Loc = tuple[str | int, ...]


def walk_strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """(location, text) for every string in a value made of nested lists and dicts."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from walk_strings(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk_strings(v, (*loc, i))


def names_used(env: SandboxedEnvironment, texts: Iterable[str]) -> set[str]:
    """Top-level names the templates among `texts` refer to."""
    used: set[str] = set()
    for text in texts:
        if is_template(text):
            used |= meta.find_undeclared_variables(env.parse(text))
    return used
