"""The user classes generated locustfiles build on: one journey per user (closed model) or a
pool that runs journeys as arrivals come (open model)."""

from __future__ import annotations

import random
import time
from typing import Any, ClassVar
from urllib.parse import urlencode

import gevent
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

from shop_loadtest.journeys import (
    CompiledRequest,
    Journey,
    RequestStep,
    ThinkStep,
    compile_request,
    parse_json_lazily,
)


class _Steps:
    """A journey's steps compiled once per load process (templates parsed once)."""

    def __init__(self, state: Any, journey: Journey) -> None:
        self.items: list[CompiledRequest | ThinkStep] = [
            s if isinstance(s, ThinkStep) else compile_request(state.templates, s)
            for s in journey.steps
        ]


class _JourneyMixin:
    variables: ClassVar[dict[str, Any]] = {}
    default_headers: ClassVar[dict[str, str]] = {}

    environment: Any
    client: Any

    def _setup_session(self) -> None:
        # Captures land in this per-user dict, so they persist across the user's journeys.
        self.session_vars: dict[str, Any] = {"vars": dict(self.variables), **self.variables}
        self._late_ms: float | None = None
        self._rng = random.Random()

    def run_journey(self, journey: Journey) -> None:
        state = self.environment.shop_loadtest
        steps = state.compiled_steps(journey)
        started = time.perf_counter()
        ctx = self.session_vars
        for step in steps.items:
            if isinstance(step, ThinkStep):
                gevent.sleep(step.low if step.low == step.high
                             else self._rng.uniform(step.low, step.high))
            elif not self._send(step, ctx):
                break
        state.recorder.journey_done(time.perf_counter() - started)

    def _send(self, req: CompiledRequest, ctx: dict[str, Any]) -> bool:
        """One request; False ends the journey (a failed check or capture)."""
        step: RequestStep = req.step
        headers = dict(self.default_headers)
        headers.update(req.headers(ctx))
        kwargs: dict[str, Any] = {}
        if req.json is not None:
            kwargs["json"] = req.json(ctx)
        elif req.form is not None:
            kwargs["data"] = urlencode(req.form(ctx), doseq=True)
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif req.body is not None:
            kwargs["data"] = str(req.body(ctx))
        context = {"late_ms": self._late_ms} if self._late_ms is not None else {}
        with self.client.request(step.method, str(req.path(ctx)), name=step.name,
                                 headers=headers, catch_response=True,
                                 allow_redirects=step.follow_redirects, context=context,
                                 **kwargs) as resp:
            try:
                status = resp.status_code or 0
                if status == 0:
                    error = getattr(resp, "error", None)
                    resp.failure(error if isinstance(error, Exception) else
                                 ConnectionError("no response"))
                    return False
                if not req.expected(status):
                    resp.failure(f"HTTP {status}")
                    return False
                if req.captures:
                    text = resp.text or ""
                    parsed = parse_json_lazily(text)
                    headers_in = resp.headers or {}
                    for cap in req.captures:
                        ctx[cap.var] = cap.extract(status, headers_in, text, parsed)
                resp.success()
                return True
            except LookupError as exc:
                resp.failure(str(exc))
                return False
            except Exception as exc:  # anything else must still be recorded, as a failure
                resp.failure(f"{type(exc).__name__}: {exc}")
                return False


class JourneyUser(_JourneyMixin, FastHttpUser):
    """Closed model: each user runs its journey again and again."""

    abstract = True
    journey: ClassVar[Journey]
    wait_time = constant(0)

    def on_start(self) -> None:
        self._setup_session()

    @task
    def journey_task(self) -> None:
        self.run_journey(self.journey)


class ArrivalUser(_JourneyMixin, FastHttpUser):
    """Open model: a pool member that waits for an arrival, then runs a journey by weight."""

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
