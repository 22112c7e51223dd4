"""The user classes generated locustfiles build on: one journey per user (closed model) or a
pool that runs journeys as arrivals come (open model).

Each user has its own HTTP session (FastHttpUser: one cookie jar per user) and its own
variables: captures persist across the steps of a journey and across the user's journeys.
Templates are compiled once per load process (`_Process`), and a step without `{{` costs no
rendering at all.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import gevent
from locust import HttpUser, User, constant, task
from locust.contrib.fasthttp import FastHttpUser

from shop_loadtest.journeys import (
    CompiledRequest,
    DataExhausted,
    DataPool,
    Journey,
    RequestStep,
    ResponseView,
    Row,
    SecretEnv,
    Settings,
    TemplateError,
    ThinkStep,
    compile_request,
    compile_value,
    make_environment,
    names_used,
    step_template_texts,
)
from shop_loadtest.runtime.cookies import use_lean_cookie_jar
from shop_loadtest.runtime.guard import guard_session, guarded_client, process_guard

_NO_CONTEXT: Any = MappingProxyType({})
# After a failure that sent no request (no data row left, a template that cannot render), the
# user pauses before trying again, instead of spinning and recording thousands of errors.
PAUSE_AFTER_UNSENT_FAILURE_S = 1.0


@dataclass
class _Block:
    """Compiled steps, and the data sources whose rows they use (drawn when the block starts)."""

    items: list[CompiledRequest | ThinkStep]
    data: tuple[str, ...]
    wheres: list[str]  # "step 2 of journey buy", for each item: refusals name the step


@dataclass
class _CompiledJourney:
    on_start: _Block
    steps: _Block
    on_stop: _Block


class _Process:
    """One load process's journeys: the template environment, compiled steps, data pools."""

    def __init__(self, environment: Any, settings: Settings) -> None:
        state = getattr(environment, "shop_loadtest", None)
        # Share the runtime's SecretEnv: the recorder redacts every value it handed out.
        self.secrets: SecretEnv = (state.templates.globals["env"] if state is not None
                                   else SecretEnv())
        options = getattr(environment, "parsed_options", None)
        cli_seed = getattr(options, "slt_seed", None)
        seed = cli_seed if cli_seed is not None else settings.seed
        self.templates = make_environment(seed=seed, locale=settings.locale,
                                          secrets=self.secrets)
        self.settings = settings
        self.variables = {name: compile_value(self.templates, value)
                          for name, value in settings.variables.items()}
        self.pools = {source.name: DataPool.load(source, random.Random(seed))
                      for source in settings.data}
        share = getattr(environment, "slt_data_share", None)
        if share is not None:
            self.share(*share)
        self._compiled: dict[str, _CompiledJourney] = {}

    def share(self, index: int, count: int) -> None:
        for pool in self.pools.values():
            pool.share(index, count)

    def compiled(self, journey: Journey) -> _CompiledJourney:
        found = self._compiled.get(journey.name)
        if found is None:
            found = self._compiled[journey.name] = _CompiledJourney(
                self._block(journey.on_start, f"on_start step {{}} of journey {journey.name}"),
                self._block(journey.steps, f"step {{}} of journey {journey.name}"),
                self._block(journey.on_stop, f"on_stop step {{}} of journey {journey.name}"))
        return found

    def _block(self, steps: list[RequestStep | ThinkStep], where: str) -> _Block:
        texts = [t for s in steps if isinstance(s, RequestStep) for t in step_template_texts(s)]
        used = names_used(self.templates, texts) & set(self.pools)
        items: list[CompiledRequest | ThinkStep] = [
            s if isinstance(s, ThinkStep) else
            compile_request(self.templates, s, self.settings.headers) for s in steps
        ]
        wheres = [where.format(i) for i in range(1, len(steps) + 1)]
        return _Block(items, tuple(sorted(used)), wheres)


def _process(environment: Any, settings: Settings) -> _Process:
    proc = getattr(environment, "slt_journeys", None)
    if proc is None:
        proc = _Process(environment, settings)
        environment.slt_journeys = proc
    return proc


def set_data_share(environment: Any, index: int, count: int) -> None:
    """Give this load process the data rows `index::count` (worker `index` of `count`), so
    `mode: unique` rows are never used twice across workers. Call it before the load starts
    (at the latest: rows already handed out stay used)."""
    environment.slt_data_share = (index, count)
    proc = getattr(environment, "slt_journeys", None)
    if proc is not None:
        proc.share(index, count)


def user_class(path: str | Path, name: str, *, alias: str, weight: float,
               host: str | None = None, journey: str | None = None) -> type[User]:
    """The hand-written Locust user class `name` from the file at `path`, as a subclass named
    `alias` that carries the journey's weight (the file is imported once per process)."""
    path = Path(path).resolve()
    module_name = f"shop_loadtest_user_{path.stem}_{abs(hash(str(path))):x}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, User)):
        raise TypeError(f"{path}:{name} is not a Locust User class")
    if not issubclass(cls, FastHttpUser | HttpUser):
        # Only these clients pass the allowed-hosts guard; another User could send anywhere.
        raise TypeError(f"{path}:{name} must subclass FastHttpUser or HttpUser, whose client "
                        "is checked against the allowed hosts")
    attrs: dict[str, Any] = {"weight": weight, "abstract": False, "__module__": cls.__module__}
    if host and not getattr(cls, "host", None):
        attrs["host"] = host
    # Its `client` is guarded as it is assigned (by Locust, or by the class's own code).
    attrs["client"] = guarded_client(f"journey {journey or alias}, class {name}")
    return type(alias, (cls,), attrs)


class _JourneyMixin:
    settings: ClassVar[Settings] = Settings()

    environment: Any
    client: Any
    host: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        use_lean_cookie_jar(self.client)
        # `_agent.slt_where` names the step being sent, for the refusal message.
        self._agent = guard_session(self.client, process_guard(self.environment, self.host))

    def _setup_session(self) -> None:
        proc = self._proc = _process(self.environment, self.settings)
        self._rng = random.Random()
        self._late_ms: float | None = None
        self._rows: dict[str, Row] = {}  # per-user data rows
        self._started: set[str] = set()  # journeys whose on_start completed (or had none)
        values: dict[str, Any] = {}
        for name, render in proc.variables.items():
            try:
                values[name] = render(values)
            except Exception as exc:  # e.g. a missing environment variable
                self._record_error("SETUP", f"variable {name}", TemplateError(
                    proc.secrets.scrub(f"variable {name}: {type(exc).__name__}: {exc}")))
        # Captures land in this per-user dict, so they persist across the user's journeys.
        self.session_vars: dict[str, Any] = {"vars": values, **values}

    def _start_journey(self, journey: Journey) -> bool:
        """Run the journey's on_start once per user; False when it failed (retried later).
        Only a journey that started gets its on_stop at the end."""
        if journey.name in self._started:
            return True
        block = self._proc.compiled(journey).on_start
        if block.items and not self._run_block(block, self.session_vars):
            return False
        self._started.add(journey.name)
        return True

    def run_journey(self, journey: Journey) -> None:
        if not self._start_journey(journey):
            return
        started = time.perf_counter()
        self._run_block(self._proc.compiled(journey).steps, self.session_vars)
        state = getattr(self.environment, "shop_loadtest", None)
        if state is not None:
            state.recorder.journey_done(time.perf_counter() - started)

    def _stop_journeys(self, journeys: list[Journey]) -> None:
        if not hasattr(self, "_proc"):
            return  # stopped before it started
        for journey in journeys:
            if journey.name in self._started and journey.on_stop:
                self._run_block(self._proc.compiled(journey).on_stop, self.session_vars)

    def _run_block(self, block: _Block, ctx: dict[str, Any]) -> bool:
        """Run steps in order; False when a failure ended them."""
        if block.data and not self._draw(block.data, ctx):
            return False
        for step, where in zip(block.items, block.wheres, strict=True):
            if isinstance(step, ThinkStep):
                gevent.sleep(step.draw(self._rng))
            else:
                self._agent.slt_where = where
                if not self._send(step, ctx):
                    return False
        return True

    def _draw(self, names: tuple[str, ...], ctx: dict[str, Any]) -> bool:
        for name in names:
            pool = self._proc.pools[name]
            per_user = pool.source.per == "user"
            if per_user and name in self._rows:
                ctx[name] = self._rows[name]
                continue
            try:
                row = pool.draw()
            except DataExhausted as exc:
                self._record_error("DATA", f"data {name}", exc)
                gevent.sleep(PAUSE_AFTER_UNSENT_FAILURE_S)
                return False
            ctx[name] = row
            if per_user:
                self._rows[name] = row
        return True

    def _record_error(self, method: str, name: str, exc: Exception) -> None:
        """A failure that happened before any request could be sent, recorded as one."""
        self.environment.events.request.fire(
            request_type=method, name=name, response_time=0.0, response_length=0,
            response=None, context=self._context(), exception=exc, start_time=time.time(),
            url=None)

    def _context(self) -> Any:
        return {"late_ms": self._late_ms} if self._late_ms is not None else _NO_CONTEXT

    def _send(self, req: CompiledRequest, ctx: dict[str, Any]) -> bool:
        """One request; False ends the block (a failure whose on_fail is end_journey)."""
        step = req.step
        try:
            url = req.url(ctx)
            headers = req.headers(ctx)
            payload = req.payload(ctx) if req.payload is not None else None
        except Exception as exc:
            message = self._proc.secrets.scrub(f"{type(exc).__name__}: {exc}")
            self._record_error(step.method, step.name, TemplateError(message))
            if step.on_fail == "continue":
                return True
            gevent.sleep(PAUSE_AFTER_UNSENT_FAILURE_S)
            return False
        if payload is None:
            kwargs: dict[str, Any] = {}
        else:
            kwargs = {"json": payload} if req.is_json else {"data": payload}
        if not req.captures and not req.checks and req.statuses is None:
            # Nothing to read from the response: skip catch_response's context manager (the
            # hot path of most steps). Locust records a status >= 400 as a failure itself.
            resp = self.client.request(step.method, url, name=step.name, headers=headers,
                                       allow_redirects=step.follow_redirects,
                                       context=self._context(), **kwargs)
            status = resp.status_code or 0
            if 0 < status < 400:
                return True
            return (step.on_fail if status == 0 else req.status_on_fail) == "continue"
        with self.client.request(step.method, url, name=step.name, headers=headers,
                                 catch_response=True, allow_redirects=step.follow_redirects,
                                 context=self._context(), **kwargs) as resp:
            try:
                return self._judge(req, resp, ctx)
            except Exception as exc:  # anything else must still be recorded, as a failure
                resp.failure(self._proc.secrets.scrub(f"{type(exc).__name__}: {exc}"))
                return False

    def _judge(self, req: CompiledRequest, resp: Any, ctx: dict[str, Any]) -> bool:
        step = req.step
        status = resp.status_code or 0
        if status == 0:
            error = getattr(resp, "error", None)
            resp.failure(error if isinstance(error, Exception) else ConnectionError("no response"))
            return step.on_fail == "continue"
        if not req.expected(status):
            resp.failure(f"HTTP {status}")
            return req.status_on_fail == "continue"
        if not req.captures and not req.checks:
            resp.success()
            return True
        view = ResponseView(status, resp.headers, lambda: resp.text or "", self._cookies)
        failure: str | None = None
        go_on = True
        for cap in req.captures:
            try:
                ctx[cap.var] = cap.extract(view, self._rng)
            except LookupError as exc:
                failure = failure or str(exc)
                if (cap.on_fail or step.on_fail) != "continue":
                    go_on = False
                    break
        if go_on:
            for check in req.checks:
                try:
                    problem = check.failure(view, ctx)
                except LookupError as exc:
                    problem = f"check {check.path or 'body'}: {exc}"
                if problem is not None:
                    failure = failure or problem
                    if check.on_fail != "continue":
                        go_on = False
                        break
        if failure is None:
            resp.success()
        else:
            resp.failure(self._proc.secrets.scrub(failure))
        return go_on

    def _cookies(self) -> dict[str, str]:
        return {cookie.name: cookie.value or "" for cookie in self.client.cookiejar}


class JourneyUser(_JourneyMixin, FastHttpUser):
    """Closed model: each user runs its journey again and again."""

    abstract = True
    journey: ClassVar[Journey]
    wait_time = constant(0)

    def on_start(self) -> None:
        self._setup_session()
        self._start_journey(self.journey)

    @task
    def journey_task(self) -> None:
        self.run_journey(self.journey)

    def on_stop(self) -> None:
        self._stop_journeys([self.journey])


class ArrivalUser(_JourneyMixin, FastHttpUser):
    """Open model: a pool member that waits for an arrival, then runs a journey by weight
    (a journey's on_start runs before this user's first run of it)."""

    abstract = True
    journeys: ClassVar[list[Journey]] = []
    wait_time = constant(0)

    def on_start(self) -> None:
        self._setup_session()
        self._weights = [j.weight for j in self.journeys]

    @task
    def arrive(self) -> None:
        scheduler = self.environment.shop_loadtest.scheduler
        if scheduler is None:  # doors not open yet (a worker waiting for the master's plan)
            gevent.sleep(0.05)
            return
        lateness = scheduler.take(timeout=0.5)
        if lateness is None:
            return
        journey = self._rng.choices(self.journeys, weights=self._weights)[0]
        self._late_ms = lateness * 1000.0
        self.run_journey(journey)

    def on_stop(self) -> None:
        self._stop_journeys(self.journeys)
