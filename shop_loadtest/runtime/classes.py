"""Hand-written Locust user classes (`class:` journeys), in both load models.

Closed model: the class runs as a Locust user of its own, with the journey's weight
(`user_class`). Open model: the arrival pool runs it (`ClassJourney`): each pool user keeps
one instance of the class, runs its `on_start` once before its first arrival of that journey,
then calls the journey's method once per arrival; the instance's `on_stop` runs when the pool
user stops. Either way its `client` passes the allowed-hosts guard, its requests are recorded
like the generated ones, and in the open model they also carry the arrival's lateness, so the
latency from when the journey was due is recorded for them too.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gevent import GreenletExit
from locust import HttpUser, User
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import InterruptTaskSet, RescheduleTask, StopUser

from shop_loadtest.runtime.client import send_once
from shop_loadtest.runtime.guard import guarded_client

# The method an open-model class journey calls when the scenario names none and the class
# has no single @task to fall back on.
DEFAULT_METHOD = "journey"
# A guess of one call's duration before any has been measured (sizes the first pool).
ESTIMATED_CALL_S = 1.0


def _import(path: Path) -> Any:
    module_name = f"shop_loadtest_user_{path.stem}_{abs(hash(str(path))):x}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return module


def user_class(path: str | Path, name: str, *, alias: str, weight: float,
               host: str | None = None, journey: str | None = None,
               method: str | None = None) -> type[User]:
    """The hand-written Locust user class `name` from the file at `path`, as a subclass named
    `alias` that carries the journey's weight (the file is imported once per process). A
    FastHttpUser's client sends each request once, as the generated users' do. `method`:
    the one task it runs (default: its own tasks)."""
    path = Path(path).resolve()
    cls = getattr(_import(path), name, None)
    if not (isinstance(cls, type) and issubclass(cls, User)):
        raise TypeError(f"{path}:{name} is not a Locust User class")
    if not issubclass(cls, FastHttpUser | HttpUser):
        # Only these clients pass the allowed-hosts guard; another User could send anywhere.
        raise TypeError(f"{path}:{name} must subclass FastHttpUser or HttpUser, whose client "
                        "is checked against the allowed hosts")
    attrs: dict[str, Any] = {"weight": weight, "abstract": False, "__module__": cls.__module__}
    if host and not getattr(cls, "host", None):
        attrs["host"] = host
    if method is not None:
        found = getattr(cls, method, None)
        if not callable(found):
            raise TypeError(f"{path}:{name} has no method {method}")
        attrs["tasks"] = [found]
    if issubclass(cls, FastHttpUser):
        base = cls

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            base.__init__(self, *args, **kwargs)
            send_once(self.client)

        attrs["__init__"] = __init__

    def context(self: Any) -> dict[str, Any]:
        # An arrival's lateness rides on every request of the call, as for generated steps.
        late_ms = self.__dict__.get("_slt_late_ms")
        own = base_context(self)
        return {**own, "late_ms": late_ms} if late_ms is not None else own

    base_context = cls.context
    attrs["context"] = context
    # Its `client` is guarded as it is assigned (by Locust, or by the class's own code).
    attrs["client"] = guarded_client(f"journey {journey or alias}, class {name}")
    return type(alias, (cls,), attrs)


def call_method(cls: type, method: str | None) -> str:
    """The method an arrival calls: `method`, else the class's one @task, else `journey`.
    Raises TypeError saying why there is none."""
    if method is not None:
        if not callable(getattr(cls, method, None)):
            raise TypeError(f"has no method {method!r} (method: names a method of the class)")
        return method
    tasks = {getattr(t, "__name__", None) for t in getattr(cls, "tasks", []) or []}
    tasks.discard(None)
    if len(tasks) == 1 and callable(getattr(cls, next(iter(tasks)) or "", None)):
        return str(next(iter(tasks)))
    if callable(getattr(cls, DEFAULT_METHOD, None)):
        return DEFAULT_METHOD
    found = f"its tasks are {', '.join(sorted(str(t) for t in tasks))}" if tasks else (
        "it has no @task")
    raise TypeError(f"in the open model an arrival calls one method: name it with method: "
                    f"({found}), or define journey(self)")


class _Pool(Protocol):
    environment: Any
    _late_ms: float | None

    def _record_error(self, method: str, name: str, exc: Exception) -> None: ...


@dataclass
class ClassJourney:
    """An open-model journey that is a method of a hand-written user class."""

    name: str
    weight: float
    cls: type[User]
    method: str

    def estimated_seconds(self) -> float:
        return ESTIMATED_CALL_S

    def _instance(self, pool: _Pool) -> Any:
        instances: dict[str, Any] = pool.__dict__.setdefault("_slt_class_users", {})
        user: Any = instances.get(self.name)
        if user is None:
            # As Locust does for the user classes it spawns: --host wins, then the class's.
            host = pool.environment.host or getattr(pool, "host", None)
            if pool.environment.host or not self.cls.host:
                self.cls.host = host
            user = self.cls(pool.environment)
            user._slt_late_ms = pool._late_ms  # its on_start's requests are this arrival's
            user.on_start()  # if it raises, the next arrival tries again with a new one
            instances[self.name] = user
        return user

    def run(self, pool: _Pool) -> None:
        """One arrival: one call of the method (on_start first, on this pool user's first)."""
        started = time.perf_counter()
        where = "on_start"
        try:
            user = self._instance(pool)
            user._slt_late_ms = pool._late_ms
            where = self.method
            getattr(user, where)()
        except GreenletExit:
            raise
        except StopUser:  # the class is done with this visitor: the next arrival starts anew
            self.stop(pool)
        except (RescheduleTask, InterruptTaskSet):
            pass
        except Exception as exc:  # recorded like a step that could not run, and masked
            self._failed(pool, where, exc)
        state = getattr(pool.environment, "shop_loadtest", None)
        if state is not None:
            state.recorder.journey_done(time.perf_counter() - started)

    def stop(self, pool: _Pool) -> None:
        user = pool.__dict__.get("_slt_class_users", {}).pop(self.name, None)
        if user is None:
            return
        try:
            user.on_stop()
        except GreenletExit:
            raise
        except Exception as exc:
            self._failed(pool, "on_stop", exc)

    def _failed(self, pool: _Pool, where: str, exc: Exception) -> None:
        state = getattr(pool.environment, "shop_loadtest", None)
        text = f"{where}: {type(exc).__name__}: {exc}"
        if state is not None:
            text = state.templates.globals["env"].scrub(text)
        pool._record_error("CLASS", f"class {self.name}", RuntimeError(text))


def class_journey(path: str | Path, name: str, *, journey: str, weight: float,
                  host: str | None = None, method: str | None = None) -> ClassJourney:
    """The hand-written class `name` of the file at `path` as an open-model journey."""
    cls = user_class(path, name, alias=f"{name}_{journey}".replace("-", "_").replace(".", "_"),
                     weight=weight, host=host, journey=journey, method=method)
    return ClassJourney(journey, weight, cls, call_method(cls, method))
