"""The user classes generated locustfiles build on: one journey per user (closed model) or a
pool that runs journeys as arrivals come (open model).

What the shop receives is what the scenario describes:
- each request is sent once (`runtime/client.py`: no hidden retries), within its timeout;
- redirects are followed here, hop by hop, each hop a request of its own named
  `step (redirect N)`, sent through the same session call as every step;
- a failure that ends a journey early still waits out the journey's remaining think times
  (or its `on_fail_pause`), so a failing shop is never hit faster than the plan;
- a journey run is one visitor (`runtime/sessions.py`): fresh cookies and captures unless the
  journey says `session: keep`;
- a request cut off by its user's stop is recorded as in flight at stop.
Templates are compiled once per load process (`runtime/process.py`), and a step without `{{`
costs no rendering at all.
"""

from __future__ import annotations

import itertools
import random
import time
from types import MappingProxyType
from typing import Any, ClassVar

import gevent
from gevent import GreenletExit
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser, LocustBadStatusCode
from locust.user.task import LOCUST_STATE_STOPPING

from shop_loadtest.journeys import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    CompiledFor,
    CompiledIf,
    CompiledRepeat,
    CompiledRequest,
    CompiledSet,
    DataExhausted,
    ExportStep,
    Hop,
    Journey,
    LoopError,
    RedirectError,
    ResponseView,
    Row,
    Settings,
    TemplateError,
    ThinkStep,
    expand,
    export_columns,
    export_row,
    hop_name,
    next_hop,
    pause_after_failure,
    target_names,
    with_scheme,
)

# user_class: locustfiles generated before it moved import it from here
from shop_loadtest.runtime.classes import ClassJourney, user_class  # noqa: F401
from shop_loadtest.runtime.client import RequestTimer, send_once
from shop_loadtest.runtime.cookies import use_lean_cookie_jar
from shop_loadtest.runtime.flow import COMPOSITE, for_items, planned
from shop_loadtest.runtime.guard import guard_session, process_guard
from shop_loadtest.runtime.lane import Prepared, lane_for, prepare_or_none, send
from shop_loadtest.runtime.process import Block, process
from shop_loadtest.runtime.sessions import Visit

_NO_CONTEXT: Any = MappingProxyType({})
# After a failure that sent no request (no data row left, a template that cannot render), the
# user pauses before trying again, instead of spinning and recording thousands of errors.
PAUSE_AFTER_UNSENT_FAILURE_S = 1.0


class InvalidRequest(Exception):
    """A request the HTTP client refused to build (its target is not a valid URL)."""


class _JourneyMixin:
    settings: ClassVar[Settings] = Settings()

    environment: Any
    client: Any
    host: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.max_redirects = 0  # redirects are followed in `_send`, one recorded hop at a time
        super().__init__(*args, **kwargs)
        use_lean_cookie_jar(self.client)
        send_once(self.client)
        # `_agent.slt_where` names the step being sent, for the refusal message.
        self._guard = process_guard(self.environment, self.host)
        self._agent = guard_session(self.client, self._guard)
        # id(CompiledRequest) -> the bytes of its fixed request (runtime/lane.py)
        self._lanes: dict[int, Prepared | None] = {}
        self._timer = RequestTimer()
        # (try, of tries, passed) while a retry step runs: `_judge` tests its until
        self._try: tuple[int, int, bool] | None = None

    def _setup_session(self) -> None:
        proc = self._proc = process(self.environment, self.settings)
        self._rng = random.Random()
        self._late_ms: float | None = None
        self._rows: dict[str, Row] = {}  # per-user data rows
        self._visits: dict[str, Visit] = {}  # journey name -> this user's session for it
        target = target_names(getattr(self, "host", None))
        values: dict[str, Any] = {}
        for name, render in proc.variables.items():
            try:
                values[name] = render({**target, **values})
            except Exception as exc:  # e.g. a missing environment variable
                self._record_error("SETUP", f"variable {name}", TemplateError(
                    proc.secrets.scrub(f"variable {name}: {type(exc).__name__}: {exc}")))
        # Every visit starts from these; captures land in the visit's own copy.
        self._base_vars: dict[str, Any] = {"vars": values, **values, **target}

    def _use_jar(self, visit: Visit) -> None:
        client = self.client
        if client.cookiejar is not visit.jar:  # the session and its user agent share one jar
            client.cookiejar = client.client.cookiejar = visit.jar

    def _start_journey(self, journey: Journey) -> Visit | None:
        """This user's session for a run of `journey`, reset when it is fresh; its on_start
        runs first, once per user. None when on_start failed (it is tried again next time;
        only a journey that started gets its on_stop at the end)."""
        self._journey_name = journey.name  # what export rows name
        visit = self._visits.get(journey.name)
        if visit is None:
            visit = self._visits[journey.name] = Visit(
                self._base_vars, fresh=journey.session != "keep", captures=journey.assigns())
        self._use_jar(visit)
        if not visit.started:
            compiled = self._proc.compiled(journey)
            block = compiled.on_start
            if block.items:
                items = self._items(block)
                failed_at = self._run_block(block, visit.vars, items)
                if failed_at is not None:
                    visit.on_start_failed(self._base_vars)
                    # the journey it was for is skipped: wait as long as it would have taken
                    self._pause(items, failed_at, journey, then=self._items(compiled.steps))
                    return None
            visit.on_start_done()
        visit.begin()
        return visit

    def run_journey(self, journey: Journey) -> None:
        started = time.perf_counter()
        visit = self._start_journey(journey)
        if visit is None:
            return
        block = self._proc.compiled(journey).steps
        items = self._items(block)
        failed_at = self._run_block(block, visit.vars, items)
        if failed_at is not None:
            self._pause(items, failed_at, journey)
        state = getattr(self.environment, "shop_loadtest", None)
        if state is not None:  # pauses included: the pool is sized from how long users are busy
            state.recorder.journey_done(time.perf_counter() - started)

    def _items(self, block: Block) -> list[Any]:
        """The steps of one run of `block`: repeat blocks written out as often as drawn (a
        copy, which a run's for and if blocks are spliced into as they are reached)."""
        return list(expand(block.items, self._rng)) if block.repeats else block.items

    def _pause(self, ran: list[Any], failed_at: int, journey: Journey,
               then: list[Any] | None = None) -> None:
        """After a failure ended the steps `ran` at `failed_at`: wait out the think times the
        user did not reach (and those of `then`, skipped too), or the journey's on_fail_pause
        when it is longer, so that failing never runs faster than the plan."""
        items = ran + then if then is not None else ran
        if any(type(i) in COMPOSITE for i in items):
            items = items[:failed_at + 1] + planned(items[failed_at + 1:], self._rng)
        seconds = pause_after_failure(items, failed_at, self._rng, journey.on_fail_pause)
        if seconds > 0:
            gevent.sleep(seconds)

    def _stop_journeys(self, journeys: list[Journey]) -> None:
        if not hasattr(self, "_proc"):
            return  # stopped before it started
        for journey in journeys:
            visit = self._visits.get(journey.name)
            if visit is not None and visit.started and journey.on_stop:
                self._journey_name = journey.name
                self._use_jar(visit)  # the session of its last run
                block = self._proc.compiled(journey).on_stop
                self._run_block(block, visit.vars, self._items(block))

    def _run_block(self, block: Block, ctx: dict[str, Any], items: list[Any]) -> int | None:
        """Run `items` (this run's steps of `block`) in order; the index of the step whose
        failure ended them (-1: no data row to start with), or None when they all ran."""
        if block.data and not self._draw(block.data, ctx):
            return -1
        index = -1
        while index + 1 < len(items):  # for and if blocks are spliced in as they are reached
            index += 1
            step = items[index]
            if type(step) is CompiledIf:
                try:
                    go = step.test(ctx)
                except Exception as exc:  # an undefined name: a failure, never a silent skip
                    self._unsent_failure("IF", f"if {step.step.test}", exc)
                    return index
                if not go:
                    continue
                if isinstance(step.then, list):
                    items[index + 1:index + 1] = step.then
                    continue
                step = step.then
            elif type(step) is CompiledFor:
                try:
                    items[index + 1:index + 1] = for_items(step, ctx)
                except Exception as exc:  # not a list, too long, or an undefined name
                    self._unsent_failure("FOR", f"for {step.step.var} in {step.step.source}",
                                         exc)
                    return index
                continue
            elif type(step) is CompiledRepeat:  # inside an if block: drawn when reached
                items[index + 1:index + 1] = expand([step], self._rng)
                continue
            if type(step) is CompiledRequest:  # first: requests are most steps
                self._agent.slt_where = block.where(index)
                if not (self._retry(step, ctx) if step.step.retry else self._send(step, ctx)):
                    return index
            elif type(step) is ThinkStep:
                gevent.sleep(step.draw(self._rng))
            elif type(step) is ExportStep:
                self._export(step, ctx)
            elif not self._assign(step, ctx):
                return index
        return None

    def _export(self, step: ExportStep, ctx: dict[str, Any]) -> None:
        state = getattr(self.environment, "shop_loadtest", None)
        if state is not None:  # masked here, where the secrets were handed out
            state.exports.add(step.file, export_columns(step), export_row(
                self._journey_name, step, ctx, self._proc.secrets.scrub))

    def _unsent_failure(self, kind: str, name: str, exc: Exception) -> None:
        """A control step that could not be decided (if, for), recorded as a failure named
        after it; the user pauses, as after any failure that sent nothing."""
        detail = str(exc) if isinstance(exc, LoopError) else f"{name}: {type(exc).__name__}: {exc}"
        self._record_error(kind, name, TemplateError(self._proc.secrets.scrub(detail)))
        gevent.sleep(PAUSE_AFTER_UNSENT_FAILURE_S)

    def _retry(self, req: CompiledRequest, ctx: dict[str, Any]) -> bool:
        """A request step with `retry:`: tries (each a request of its own in the results)
        until one passes and its `until` holds, at most `times`, pausing between them. Only
        the last try's failure counts for the journey; the earlier ones are recorded."""
        retry = req.step.retry
        assert retry is not None
        try:
            for attempt in range(1, retry.times + 1):
                self._try = (attempt, retry.times, False)
                ctx["attempt"] = attempt
                go_on = self._send(req, ctx)
                if self._try[2] or attempt == retry.times:
                    return go_on
                gevent.sleep(retry.pause(self._rng))
            return True  # not reached: the last try returns above
        finally:
            self._try = None

    def _assign(self, step: CompiledSet, ctx: dict[str, Any]) -> bool:
        """A `set:` step; a value that cannot be made is recorded as a failure (SET, named
        after the variable) that ends the journey, as a request's template would."""
        for name, render in step.renderers:
            try:
                ctx[name] = render(ctx)
            except Exception as exc:
                message = self._proc.secrets.scrub(f"set {name}: {type(exc).__name__}: {exc}")
                self._record_error("SET", f"set {name}", TemplateError(message))
                gevent.sleep(PAUSE_AFTER_UNSENT_FAILURE_S)
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
        """One step: its request, and each redirect hop as a request of its own. False ends
        the block (a failure whose on_fail is end_journey)."""
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
        url = with_scheme(url, self.client.base_url)
        lane = self._lane(req, url, headers) if req.fixed else None
        method, name, hop = step.method, step.name, 0
        chain: list[int] = []  # each hop's status, for a redirect_chain check
        while True:
            # The last hop allowed goes through catch_response, so one more redirect can fail.
            judged = req.judged or hop == MAX_REDIRECTS
            try:
                resp = self._request(method, url, name, headers, kwargs, req.timeout, judged,
                                     lane if hop == 0 else None)
            except ValueError as exc:  # the client would not build it: nothing was sent
                message = self._proc.secrets.scrub(f"invalid request URL: {exc}")
                self._record_error(method, name, InvalidRequest(message))
                gevent.sleep(PAUSE_AFTER_UNSENT_FAILURE_S)
                return step.on_fail == "continue"
            timed_out = self._timer.fired
            if timed_out:
                self._timer.fired = False
            if not judged:
                # Nothing to read from the response: no catch_response context manager (the
                # hot path of most steps). Locust records a status >= 400 as a failure itself.
                status = 0 if timed_out else (resp.status_code or 0)
                if step.follow_redirects and status in REDIRECT_STATUSES:
                    following = self._hop(method, url, resp)
                    if following is not None:
                        method, url, headers, kwargs = self._follow(following, headers, kwargs)
                        hop += 1
                        name = hop_name(step.name, hop)
                        continue
                if 0 < status < 400:
                    return True
                return (step.on_fail if status == 0 else req.status_on_fail) == "continue"
            with resp:
                status = 0 if timed_out else (resp.status_code or 0)
                chain.append(status)
                following = None
                if step.follow_redirects and status in REDIRECT_STATUSES:
                    try:
                        following = self._hop(method, url, resp, strict=True)
                    except RedirectError as exc:
                        resp.failure(exc)
                        return step.on_fail == "continue"
                if following is None:
                    try:
                        return self._judge(req, resp, ctx, timed_out, url, tuple(chain))
                    except Exception as exc:  # anything else must still be recorded, as a failure
                        resp.failure(self._proc.secrets.scrub(f"{type(exc).__name__}: {exc}"))
                        return False
                if hop == MAX_REDIRECTS:
                    resp.failure(RedirectError(f"more than {MAX_REDIRECTS} redirects"))
                    return step.on_fail == "continue"
                resp.success()
            method, url, headers, kwargs = self._follow(following, headers, kwargs)
            hop += 1
            name = hop_name(step.name, hop)

    def _lane(self, req: CompiledRequest, url: str, headers: dict[str, Any]) -> Prepared | None:
        key = id(req)  # compiled steps live as long as the process
        lane = self._lanes.get(key)
        if lane is None:
            lane = lane_for(self.client, req.step.method, url, headers, self._guard)
            if lane is not None:  # else tried again next time (built with cookies: not kept)
                self._lanes[key] = lane
        return lane

    def _request(self, method: str, url: str, name: str, headers: dict[str, Any],
                 kwargs: dict[str, Any], timeout: float, catch: bool,
                 lane: Prepared | None = None) -> Any:
        """One request (a step's, or a redirect hop's) through the lean lane
        (`runtime/lane.py`: the session's own bytes and recording, fewer layers), or through
        the user's session when the lane cannot send it exactly; within `timeout`
        (`self._timer.fired` tells whether it ran out). `lane` holds a fixed step's bytes,
        built once. A request its user is stopped in the middle of is recorded as in flight
        at stop."""
        timer = self._timer
        began = time.perf_counter()
        timer.start(timeout)
        try:
            if lane is not None and lane.usable(self._guard):
                resp = send(self.client, lane, name, catch, self._context())
            else:
                # built now, with this request's cookies; a refused host yields None
                prep = prepare_or_none(self.client, method, url, headers, kwargs, self._guard)
                if prep is not None:
                    resp = send(self.client, prep, name, catch, self._context())
                else:
                    resp = self.client.request(method, url, name=name, headers=headers,
                                               catch_response=catch, context=self._context(),
                                               **kwargs)
        except GreenletExit:
            state = getattr(self.environment, "shop_loadtest", None)
            if state is not None:
                state.recorder.in_flight_at_stop(method, name,
                                                 (time.perf_counter() - began) * 1000.0)
            raise
        finally:
            timer.cancel()
        return resp

    def _hop(self, method: str, url: str, resp: Any, strict: bool = False) -> Hop | None:
        """Where the redirect `resp` leads, or None. A Location that is not http(s) raises
        RedirectError when `strict` (the response can still be failed); otherwise the
        redirect is the step's answer, as with follow_redirects: false."""
        location = resp.headers.get("location") if resp.headers is not None else None
        if not isinstance(location, str):
            return None
        base = url if "://" in url else f"{self.client.base_url}{url}"
        try:
            return next_hop(method, resp.status_code, base, location)
        except RedirectError:
            if strict:
                raise
            return None

    @staticmethod
    def _follow(hop: Hop, headers: dict[str, Any], kwargs: dict[str, Any],
                ) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
        """The next hop's method, URL, headers and body, as a browser sends them."""
        if not hop.keep_body:
            kwargs = {}
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        if not hop.same_origin:
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        return hop.method, hop.url, headers, kwargs

    def _judge(self, req: CompiledRequest, resp: Any, ctx: dict[str, Any],
               timed_out: bool = False, url: str = "", chain: tuple[int, ...] = ()) -> bool:
        step = req.step
        status = resp.status_code or 0
        error = resp.request_meta.get("exception")
        if timed_out or status == 0 or (error is not None and
                                        not isinstance(error, LocustBadStatusCode)):
            # no answer, or one that broke off (a timeout or a reset while reading the body)
            error = error or getattr(resp, "error", None)
            resp.failure(error if isinstance(error, Exception) else ConnectionError("no response"))
            return step.on_fail == "continue"
        if not req.expected(status):
            resp.failure(f"HTTP {status}")
            return req.status_on_fail == "continue"
        if not req.captures and not req.checks and self._try is None:
            resp.success()
            return True
        if url and "://" not in url:
            url = f"{self.client.base_url}{url}"
        view = ResponseView(status, resp.headers, lambda: resp.text or "", self._cookies,
                            url=url, chain=chain)
        failure: str | None = None
        go_on = True
        for cap in req.captures:
            try:
                ctx[cap.var] = cap.extract(view, self._rng)
            except LookupError as exc:  # where it looked: the step and the URL (no query)
                failure = failure or f"{exc} (step {step.name}, {url.split('?', 1)[0][:200]})"
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
        if failure is None and self._try is not None:
            attempt, tries, _ = self._try
            if req.until is None or req.until({**ctx, "response": view}):
                self._try = (attempt, tries, True)
            elif attempt == tries:
                failure = (f"retry until {step.retry.until if step.retry else ''}: still false "
                           f"after {tries} tries")
                go_on = step.on_fail == "continue"
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
    # No socket timeouts: each request has its own timer (`_JourneyMixin._request`) that
    # bounds all of it. A socket timeout bounds each wait alone, and gevent sets up a Timeout
    # for every wait on a socket that has one (about 2% of a request's CPU on loopback).
    network_timeout = connection_timeout = None  # type: ignore[assignment]
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
    # No socket timeouts: each request has its own timer (`_JourneyMixin._request`) that
    # bounds all of it. A socket timeout bounds each wait alone, and gevent sets up a Timeout
    # for every wait on a socket that has one (about 2% of a request's CPU on loopback).
    network_timeout = connection_timeout = None  # type: ignore[assignment]
    journeys: ClassVar[list[Journey | ClassJourney]] = []
    wait_time = constant(0)

    def on_start(self) -> None:
        self._setup_session()
        self._cum_weights = list(itertools.accumulate(j.weight for j in self.journeys))

    def _pick(self) -> Journey | ClassJourney:
        journeys = self.journeys
        if len(journeys) == 1:
            return journeys[0]
        return self._rng.choices(journeys, cum_weights=self._cum_weights)[0]

    @task
    def arrive(self) -> None:
        scheduler = self.environment.shop_loadtest.scheduler
        if scheduler is None:  # doors not open yet (a worker waiting for the master's plan)
            gevent.sleep(0.05)
            return
        # One task for many arrivals: Locust's task loop (pick a task, queue it, sleep 0)
        # would run between every two journeys otherwise. A stop is still seen between
        # journeys, as Locust sees it between tasks.
        while self._state != LOCUST_STATE_STOPPING:
            # No timeout: a waiting user costs nothing until a ticket comes; the
            # scheduler's stop wakes the ones still waiting.
            lateness = scheduler.take(timeout=None)
            if lateness is None:
                return
            journey = self._pick()
            self._late_ms = lateness * 1000.0
            scheduler.journey_started()
            try:
                if isinstance(journey, ClassJourney):
                    journey.run(self)
                else:
                    self.run_journey(journey)
            finally:
                scheduler.journey_ended()

    def on_stop(self) -> None:
        self._stop_journeys([j for j in self.journeys if isinstance(j, Journey)])
        for journey in self.journeys:
            if isinstance(journey, ClassJourney):
                journey.stop(self)
