"""Steps and journeys as generated locustfiles declare them, and requests compiled from them."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from jinja2.sandbox import SandboxedEnvironment

from shop_loadtest.journeys.captures import Capture, CompiledCheck
from shop_loadtest.journeys.checks import ResponseCheck, compile_response_check
from shop_loadtest.journeys.data import DataSource
from shop_loadtest.journeys.exports import ExportStep
from shop_loadtest.journeys.flow import ForStep, Retry
from shop_loadtest.journeys.templates import (
    Renderer,
    SecretEnv,
    compile_value,
    constant,
    is_constant,
    walk_strings,
)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
DEFAULT_TIMEOUT_S = 30.0
# The most times a `repeat:` block runs in one journey run: a typo (3000 for 3) must not turn
# a browse loop into a flood, and a journey run stays short enough to be paced.
MAX_REPEAT = 100


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
    timeout: float | None = None  # None: the scenario's (Settings.timeout)
    retry: Retry | None = None
    on_fail_pause: float | None = None  # after this step's failure ends the journey


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


@dataclass(frozen=True)
class SetStep:
    """`set: {name: template}`: variables assigned in order (a value may use the names set
    before it), for the later steps of the journey run."""

    values: dict[str, Any]


@dataclass
class CompiledSet:
    step: SetStep
    renderers: list[tuple[str, Renderer]]  # in order: each sees the names set before it


def compile_set(env: SandboxedEnvironment, step: SetStep) -> CompiledSet:
    return CompiledSet(step, [(name, compile_value(env, value))
                              for name, value in step.values.items()])


@dataclass
class CompiledRequest:
    """A request step with its templates compiled once per load process."""

    step: RequestStep
    url: Renderer
    headers: Renderer
    payload: Renderer | None  # JSON data for `json`, a str for `form` and `body`
    is_json: bool
    captures: list[Capture]
    checks: list[CompiledCheck | ResponseCheck]
    statuses: frozenset[int] | None
    status_on_fail: str
    timeout: float
    until: Renderer | None = None  # the retry's test, over the captures and `response`
    # method, URL and headers are constants and there is no body: the same bytes every time
    fixed: bool = False
    judged: bool = field(init=False)  # reads the response: sent with catch_response

    def __post_init__(self) -> None:
        self.judged = bool(self.captures or self.checks or self.statuses is not None
                           or self.step.retry is not None)

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
                    default_headers: Mapping[str, str] | None = None,
                    timeout: float = DEFAULT_TIMEOUT_S) -> CompiledRequest:
    path = compile_value(env, step.path)
    if step.query:
        query = compile_value(env, step.query)
        if is_constant(step.path) and is_constant(step.query):
            url: Renderer = constant(_with_query(step.path, step.query))
        else:
            url = lambda ctx: _with_query(str(path(ctx)), query(ctx))  # noqa: E731
    else:
        url = path if is_constant(step.path) else (lambda ctx: str(path(ctx)))
    extra: dict[str, str] = {}
    payload: Renderer | None = None
    if step.json is not None:
        payload = compile_value(env, step.json)
    elif step.form is not None:
        extra = {"Content-Type": FORM_CONTENT_TYPE}
        form = compile_value(env, step.form)
        payload = (constant(urlencode(step.form, doseq=True)) if is_constant(step.form) else
                   lambda ctx: urlencode(form(ctx), doseq=True))
    elif step.body is not None:
        body = compile_value(env, step.body)
        payload = body if is_constant(step.body) else (lambda ctx: str(body(ctx)))
    merged = _merge_headers(default_headers or {}, extra, step.headers)
    headers = compile_value(env, merged)
    if not is_constant(merged):
        render_headers = headers
        headers = lambda ctx: {k: str(v) for k, v in render_headers(ctx).items()}  # noqa: E731
    statuses = set(step.status) if step.status else set()
    status_on_fail = step.on_fail
    checks: list[CompiledCheck | ResponseCheck] = []
    secrets = env.globals.get("env") if step.check else None
    scrub = secrets.scrub if isinstance(secrets, SecretEnv) else str  # for check messages
    for spec in step.check:
        on_fail = spec.get("on_fail") or step.on_fail
        richer = compile_response_check(env, spec, on_fail, scrub)
        if richer is not None:
            checks.append(richer)
        elif spec.get("status") is not None:
            codes = spec["status"]
            statuses.update([codes] if isinstance(codes, int) else codes)
            status_on_fail = on_fail
        elif spec.get("json") is not None:
            from jsonpath_ng.ext import parse as jsonpath

            checks.append(CompiledCheck(
                "json", on_fail, path=spec["json"], jsonpath=jsonpath(spec["json"]),
                equals=compile_value(env, spec["equals"]) if "equals" in spec else None,
                exists=spec.get("exists"), scrub=scrub))
        else:
            checks.append(CompiledCheck("body", on_fail, scrub=scrub,
                                        contains=compile_value(env, spec["body_contains"])))
    return CompiledRequest(
        step=step, url=url, headers=headers, payload=payload,
        is_json=step.json is not None,
        captures=[Capture.parse(var, spec) for var, spec in step.capture.items()],
        checks=checks, statuses=frozenset(statuses) or None, status_on_fail=status_on_fail,
        timeout=step.timeout if step.timeout is not None else timeout,
        until=(compile_test(env, step.retry.until) if step.retry and step.retry.until
               else None),
        fixed=(payload is None and is_constant(step.path) and is_constant(merged)
               and (not step.query or is_constant(step.query))),
    )


@dataclass(frozen=True)
class IfStep:
    """`if:` on a request or set: step, or on a block: `step` (or the block `steps`) runs
    only when the expression `test` (Jinja, without braces, over the journey's variables and
    captures) is true."""

    test: str
    step: RequestStep | SetStep | ExportStep | None = None
    steps: list[Any] = field(default_factory=list)


@dataclass
class CompiledIf:
    step: IfStep
    test: Renderer
    then: Any  # the compiled step (CompiledRequest or CompiledSet), or a block's: a list


def compile_test(env: SandboxedEnvironment, test: str) -> Renderer:
    return compile_value(env, "{{ " + test + " }}")


@dataclass(frozen=True)
class RepeatStep:
    """`repeat: N` (or `N..M`, a count drawn uniformly per journey run) over `steps`."""

    low: int
    high: int
    steps: list[RequestStep | ThinkStep | SetStep | IfStep | ForStep | ExportStep] = field(
        default_factory=list)

    def count(self, rng: random.Random) -> int:
        return self.low if self.low == self.high else rng.randint(self.low, self.high)


@dataclass
class CompiledRepeat:
    """A repeat block with its steps compiled (CompiledRequest, CompiledSet, ThinkStep)."""

    step: RepeatStep
    items: list[Any]


def expand(items: Sequence[Any], rng: random.Random) -> list[Any]:
    """The steps one run goes through: each repeat block written out as many times as drawn
    for this run (a list without repeat blocks is returned as it is).

    >>> expand(["x", CompiledRepeat(RepeatStep(2, 2), ["a", "b"]), "y"], random.Random())
    ['x', 'a', 'b', 'a', 'b', 'y']
    """
    if not any(isinstance(item, CompiledRepeat) for item in items):
        return list(items) if not isinstance(items, list) else items
    out: list[Any] = []
    for item in items:
        if isinstance(item, CompiledRepeat):
            for _ in range(item.step.count(rng)):
                out.extend(item.items)
        else:
            out.append(item)
    return out


Block = list[RequestStep | ThinkStep | SetStep | RepeatStep | IfStep | ForStep | ExportStep]


def flat_steps(steps: Sequence[Any]) -> Iterator[Any]:
    """Every step of `steps`, those inside repeat, for and if blocks included (once); a for
    step itself too (it assigns its item)."""
    for step in steps:
        if isinstance(step, RepeatStep):
            yield from flat_steps(step.steps)
        elif isinstance(step, ForStep):
            yield step
            yield from flat_steps(step.steps)
        elif isinstance(step, IfStep):
            yield from flat_steps([step.step] if step.step is not None else step.steps)
        else:
            yield step


@dataclass(frozen=True)
class Journey:
    """A named, weighted list of steps, with steps run once per user before and after."""

    name: str
    weight: float
    steps: Block
    on_start: Block = field(default_factory=list)
    on_stop: Block = field(default_factory=list)
    session: str = "fresh"  # or "keep": cookies and captures carry on across runs
    on_fail_pause: float | None = None

    def assigns(self) -> bool:
        """Whether a run of its steps can leave variables behind (captures or set:), which a
        fresh session must then reset."""
        return any(isinstance(s, SetStep | ForStep) or (isinstance(s, RequestStep) and (
            s.capture or s.retry)) for s in flat_steps(self.steps))

    def estimated_seconds(self) -> float:
        """A first guess of one run's duration, before any has been measured."""
        seconds = 0.0
        for step in self.steps:
            times, inner = ((step.low + step.high) / 2, step.steps) if isinstance(
                step, RepeatStep) else (1.0, list(flat_steps([step])))
            seconds += times * sum(s.expected() if isinstance(s, ThinkStep) else
                                   0.05 if isinstance(s, RequestStep) else 0.0 for s in inner)
        return seconds


@dataclass(frozen=True)
class Settings:
    """What every journey of a scenario shares, declared once in the generated locustfile."""

    variables: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    data: list[DataSource] = field(default_factory=list)
    locale: str | list[str] | None = None
    seed: int | None = None
    timeout: float = DEFAULT_TIMEOUT_S


def step_template_texts(step: RequestStep | SetStep | RepeatStep | IfStep | ForStep
                        | ExportStep,
                        ) -> Iterator[str]:
    """Every templated string of a runtime step (to find the data sources it uses)."""
    if isinstance(step, ExportStep):
        return
    if isinstance(step, IfStep):
        yield "{{ " + step.test + " }}"
        for inner in [step.step] if step.step is not None else step.steps:
            if not isinstance(inner, ThinkStep):
                yield from step_template_texts(inner)
        return
    if isinstance(step, ForStep):
        yield "{{ " + step.source + " }}"
    if isinstance(step, RepeatStep | ForStep):
        for inner in step.steps:
            if not isinstance(inner, ThinkStep | ExportStep):
                yield from step_template_texts(inner)
        return
    if isinstance(step, SetStep):
        for _, text in walk_strings(step.values, ()):
            yield text
        return
    yield step.path
    if step.retry is not None and step.retry.until:
        yield "{{ " + step.retry.until + " }}"
    for value in (step.query, step.json, step.form, step.body, step.headers,
                  [c.get(k) for c in step.check for k in ("equals", "contains", "body_contains",
                                                          "body_not_contains", "final_url")]):
        for _, text in walk_strings(value, ()):
            yield text


def pause_after_failure(steps: Sequence[object], failed_at: int, rng: random.Random,
                        on_fail_pause: float | None = None) -> float:
    """Seconds a user waits after a failure ended its steps at index `failed_at`: the think
    times it did not reach (drawn as they would have been), or the journey's `on_fail_pause`,
    or the failed request's own, whichever is longest. So a failing journey never runs faster
    than the plan.

    >>> pause_after_failure([ThinkStep(1, 1), "GET /", ThinkStep(2, 2)], 1, random.Random())
    2
    >>> failed = RequestStep("POST", "/api/checkout", "checkout", on_fail_pause=5.0)
    >>> pause_after_failure([failed, ThinkStep(2, 2)], 0, random.Random(), 3.0)
    5.0
    """
    rest = sum(s.draw(rng) for s in steps[failed_at + 1:] if isinstance(s, ThinkStep))
    failed = steps[failed_at] if 0 <= failed_at < len(steps) else None
    failed = getattr(failed, "step", failed)  # a compiled request keeps its step
    own = failed.on_fail_pause if isinstance(failed, RequestStep) else None
    return max(rest, on_fail_pause or 0.0, own or 0.0)
