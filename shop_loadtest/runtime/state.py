"""One load process's runtime: recording, flushing, arrivals, health, and master/worker talk.

Roles, as Locust gives them:
- local (one process): records requests, writes intervals.jsonl and events.jsonl itself;
- master: runs the shape, tells workers when the doors open and which share is theirs, and
  writes what workers send;
- worker: records requests and sends each interval to the master as a custom message.
Files are written only when `--slt-results DIR` is given, so plain `locust -f` runs are clean.

Who takes part is checked here too: a worker says hello with the run token, and the master
admits exactly the workers it expects (`admission.py`); with `--slt-watch-parent` every load
process ends itself when the process that started it is gone (`lifeline.py`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import IO, Any

import gevent
import psutil
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from shop_loadtest.journeys import SecretEnv, make_environment
from shop_loadtest.runtime.admission import MSG_HELLO, Admission
from shop_loadtest.runtime.arrivals import ArrivalScheduler
from shop_loadtest.runtime.exports import MSG_EXPORT, Exports
from shop_loadtest.runtime.guard import HostGuard
from shop_loadtest.runtime.lifeline import watch_lifeline
from shop_loadtest.runtime.machine import MachineSampler
from shop_loadtest.runtime.recorder import Recorder
from shop_loadtest.safety.hosts import HostNotAllowed, origin_text, scenario_allowlist

logger = logging.getLogger(__name__)

INTERVAL_S = 1.0
DOORS_OPEN_DELAY_S = 1.0
# A worker that has sent no interval for this long is lost: its one-second reports make this
# faster than Locust's own heartbeat timeout, and it also catches a worker that quit cleanly.
WORKER_SILENT_S = 3.5
MAX_PENDING_LINES = 100_000
MSG_PLAN = "slt_plan"
MSG_INTERVAL = "slt_interval"
MSG_EVENT = "slt_event"
TOKEN_ENV = "SHOP_LOADTEST_RUN_TOKEN"


class Health:
    """CPU of this process and event-loop lag, sampled from the first second; and what else
    the machine is doing (runtime/machine.py)."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._machine = MachineSampler()
        self._proc.cpu_percent(None)
        self._lag_max = 0.0
        self._greenlet = gevent.spawn(self._watch_loop)

    def _watch_loop(self) -> None:
        while True:
            before = time.perf_counter()
            gevent.sleep(0.05)
            lag = time.perf_counter() - before - 0.05
            if lag > self._lag_max:
                self._lag_max = lag

    def take(self) -> dict[str, float]:
        lag, self._lag_max = self._lag_max, 0.0
        return {
            "cpu_pct": round(self._proc.cpu_percent(None), 1),
            "loop_lag_ms": round(lag * 1000.0, 2),
            "rss_mb": round(self._proc.memory_info().rss / 1e6, 1),
            "machine": self._machine.take(),
        }

    def stop(self) -> None:
        self._greenlet.kill(block=False)


class RuntimeState:
    def __init__(self, environment: Any, scenario: str, budgets: list[str] | None = None,
                 abort: list[str] | None = None, host: str | None = None,
                 allowed_hosts: list[str] | None = None,
                 secret_env: list[str] | None = None) -> None:
        options = environment.parsed_options
        self.environment = environment
        self.scenario = scenario
        self.budgets = list(budgets or [])
        self.abort = list(abort or [])
        self.speedup = float(getattr(options, "slt_speedup", 1.0) or 1.0)
        results = getattr(options, "slt_results", None)
        self.results_dir = Path(results) if results else None
        seed = getattr(options, "slt_seed", None)
        self.templates = make_environment(seed=seed)
        secrets: SecretEnv = self.templates.globals["env"]  # type: ignore[assignment]
        # Masked from the start, whoever reads them (a hand-written class reads os.environ).
        secrets.used.update(v for v in (os.environ.get(n) for n in secret_env or []) if v)
        self.recorder = Recorder(mask=secrets.scrub)
        self.exports = Exports(self.results_dir, secrets.scrub)
        # Locust's --host is the command line's word, like --allow-host (`shop-loadtest run`
        # checked it against the scenario before starting Locust).
        self.allowlist = scenario_allowlist(
            host, allowed_hosts or [],
            [environment.host, *(getattr(options, "slt_allow_host", None) or [])])
        self._refused: dict[tuple[str, str], int] = {}
        self.guard = HostGuard(self.allowlist, on_refused=self._on_refused)
        self.scheduler: ArrivalScheduler | None = None
        self.target_now: float | None = None
        self.doors_open: float | None = None
        self._journey_s: float | None = None
        self._files: dict[str, IO[str]] = {}
        self._pending: dict[str, list[str]] = {}
        self._write_failed = False
        self._own_meta = False
        self._workers: dict[str, dict[str, Any]] = {}  # master: client id -> last report
        self._plan_count = 0
        self._index = 0
        self._flusher: gevent.Greenlet | None = None
        self._health: Health | None = None
        # From the environment only, never a Locust option: the master sends its options to
        # every worker that connects, so a token there would be handed to any stranger.
        self.token = os.environ.get(TOKEN_ENV) or None
        self.admission: Admission | None = None
        shape = environment.shape_class
        self.shape = shape
        self.profile = shape.profile(self.speedup) if shape is not None else None

    # --- roles ---------------------------------------------------------------------------
    @property
    def role(self) -> str:
        runner = self.environment.runner
        if isinstance(runner, MasterRunner):
            return "master"
        if isinstance(runner, WorkerRunner):
            return "worker"
        return "local"

    def attach(self) -> None:
        events = self.environment.events
        runner = self.environment.runner
        events.test_start.add_listener(self._on_test_start)
        events.test_stop.add_listener(self._on_test_stop)
        events.test_stopping.add_listener(self._on_test_stopping)
        if self.role != "master":
            events.request.add_listener(self.recorder.on_request)
        if self.role == "master":
            runner.register_message(MSG_INTERVAL, self._on_worker_interval)
            runner.register_message(MSG_EVENT, self._on_worker_event)
            runner.register_message(MSG_EXPORT, self._on_worker_export)
            options = self.environment.parsed_options
            self.admission = Admission(runner, expected=int(getattr(options, "expect_workers", 1)
                                                            or 1), token=self.token,
                                       on_refused=lambda d: self.event("worker_refused", d))
            runner.register_message(MSG_HELLO, self.admission.on_hello)
            events.worker_connect.add_listener(self.admission.on_connect)
            self.admission.start()
        if self.role == "worker":
            runner.register_message(MSG_PLAN, self._on_plan)
            self.exports.send = lambda row: runner.send_message(MSG_EXPORT, row)
            runner.send_message(MSG_HELLO, {"token": self.token})
        watch_parent = bool(getattr(self.environment.parsed_options, "slt_watch_parent", False))
        if watch_parent or self.role == "worker":
            watch_lifeline(runner if self.role == "worker" else None, parent=watch_parent)

    # --- recording -----------------------------------------------------------------------
    def journey_seconds(self) -> float:
        """Mean journey duration: measured when known, else estimated from the steps."""
        if self._journey_s is not None:
            return self._journey_s
        journeys = getattr(self.shape, "user_classes", [])
        estimates = [j.estimated_seconds() for cls in journeys
                     for j in getattr(cls, "journeys", [])]
        return max(estimates, default=0.1)

    def _observe_journeys(self, block: dict[str, Any] | None) -> None:
        if block and block.get("mean_s") is not None and block.get("completed"):
            mean = float(block["mean_s"])
            self._journey_s = mean if self._journey_s is None else (
                0.7 * self._journey_s + 0.3 * mean)

    def _on_refused(self, exc: HostNotAllowed) -> None:
        key = (exc.host, exc.where or "")
        self._refused[key] = self._refused.get(key, 0) + 1

    def _flush_refused(self) -> None:
        """One `refused` event per host and step with the interval's count: the guard's own
        tally, whatever the user's code did with the failed response."""
        refused, self._refused = self._refused, {}
        for (host, where), count in refused.items():
            self.event("refused", {"host": host, "where": where, "count": count})

    # --- files ---------------------------------------------------------------------------
    def _write(self, name: str, record: dict[str, Any]) -> None:
        """Append one line; on a full disk, keep lines in memory and retry every second, so
        the run goes on and nothing recorded is lost once space comes back."""
        if self.results_dir is None:
            return
        pending = self._pending.setdefault(name, [])
        pending.append(json.dumps(record, separators=(",", ":")) + "\n")
        try:
            handle = self._files.get(name)
            if handle is None:
                self.results_dir.mkdir(parents=True, exist_ok=True)
                handle = self._files[name] = (self.results_dir / name).open("a", encoding="utf-8")
            handle.write("".join(pending))
            handle.flush()
            pending.clear()
        except OSError as exc:
            if not self._write_failed:
                logger.error("shop-loadtest: cannot write %s (%s); keeping results in memory",
                             self.results_dir / name, exc.strerror or exc)
            self._write_failed = True
            self._files.pop(name, None)
            del pending[:-MAX_PENDING_LINES]

    def campaign_time(self) -> float:
        """Seconds since the doors opened (negative before)."""
        return time.time() - (self.doors_open if self.doors_open is not None else time.time())

    def event(self, kind: str, detail: dict[str, Any] | None = None,
              ts: float | None = None) -> None:
        now = ts if ts is not None else time.time()
        record = {"t": round(now - (self.doors_open or now), 3), "ts": now, "kind": kind,
                  "detail": detail or {}}
        if self.role == "worker":
            self.environment.runner.send_message(MSG_EVENT, record)
        else:
            self._write("events.jsonl", record)

    def _on_worker_interval(self, environment: Any, msg: Any, **_: Any) -> None:
        self._observe_journeys(msg.data.get("journeys"))
        if self.admission is not None and not self.admission.admitted(msg.node_id):
            return  # a refused worker's last words are not part of this run
        worker = self._workers.setdefault(msg.node_id, {"source": msg.data.get("source")})
        if not worker.get("lost"):
            worker.update(seen=time.time(), users=msg.data.get("users"),
                          in_flight=msg.data.get("in_flight"))
        self._write("intervals.jsonl", msg.data)

    def in_flight(self) -> int:
        """Journeys running now, in this process or (master) in all its workers."""
        if self.scheduler is not None:
            return self.scheduler.in_flight
        return sum(int(w.get("in_flight") or 0) for w in self._workers.values()
                   if not w.get("lost"))

    def _check_workers(self) -> None:
        """Record each worker that went silent or left, once, with the load it carried."""
        runner = self.environment.runner
        now = time.time()
        for client_id, worker in self._workers.items():
            if worker.get("lost"):
                continue
            node = runner.clients.get(client_id)
            gone = node is None or node.state == STATE_MISSING
            if gone or now - worker["seen"] > WORKER_SILENT_S:
                worker["lost"] = True
                self.event("worker_lost", {
                    "worker": worker["source"], "client_id": client_id,
                    "users": worker.get("users"),
                    "last_seen_t": round(worker["seen"] - (self.doors_open or now), 3),
                    "share": 1.0 / max(self._plan_count, 1),
                })

    def _on_worker_event(self, environment: Any, msg: Any, **_: Any) -> None:
        if self.admission is not None and not self.admission.admitted(msg.node_id):
            return
        self._write("events.jsonl", msg.data)

    def _on_worker_export(self, environment: Any, msg: Any, **_: Any) -> None:
        if self.admission is not None and not self.admission.admitted(msg.node_id):
            return
        self.exports.on_message(msg.data)

    # --- lifecycle -----------------------------------------------------------------------
    def _on_test_start(self, environment: Any, **_: Any) -> None:
        if self.role == "worker":
            return  # the worker starts when the master's plan arrives (_on_plan)
        now = time.time()
        if self.role == "master":
            runner = environment.runner
            assert self.admission is not None
            workers = self.admission.settle()
            self.doors_open = time.time() + DOORS_OPEN_DELAY_S
            self._plan_count = len(workers)
            for index, client_id in enumerate(workers):
                self._workers[client_id] = {"source": f"worker-{index}", "seen": self.doors_open}
                # Speedup and seed travel with the plan: a remote worker's own options are
                # defaults, and the master's reach it only with the first spawn message.
                runner.send_message(MSG_PLAN, {
                    "doors_open": self.doors_open, "index": index, "count": len(workers),
                    "speedup": self.speedup,
                    "seed": getattr(environment.parsed_options, "slt_seed", None),
                    # A remote worker has no --host of its own: the master's hosts count.
                    "allow": sorted(origin_text(o) for o in self.allowlist.origins),
                }, client_id=client_id)
            self._write_run_meta()
            self.event("start", {"workers": len(workers), "role": "master",
                                 "expected": self.admission.expected,
                                 "refused": len(self.admission.refused)}, ts=self.doors_open)
            self._flusher = gevent.spawn(self._flush_loop)
            return
        self.doors_open = now
        self._write_run_meta()
        self.event("start", {"workers": 1, "role": "local", "expected": 1, "refused": 0})
        self._start_process(index=0, count=1)

    def _write_run_meta(self, **update: Any) -> None:
        """A plain `locust --slt-results DIR` run gets the run.json that `shop-loadtest run`
        would have written, so `shop-loadtest report DIR` can judge it. Left alone when the
        runner wrote one."""
        if self.results_dir is None:
            return
        path = self.results_dir / "run.json"
        if not update and path.exists():
            return
        if update and not self._own_meta:
            return
        try:
            meta = json.loads(path.read_text()) if update else {
                "schema_version": 1, "scenario": self.scenario,
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "ended_at": None, "host": self.environment.host,
                "model": getattr(self.shape, "model", None), "speedup": self.speedup,
                "command": ["locust"], "processes": max(self._plan_count, 1),
                "stages": self.profile.stages() if self.profile else [],
                "budgets": self.budgets, "abort": self.abort, "exit_reason": None,
                "abort_reason": None, "locust_exit_code": None, "written_by": "runtime",
            }
            meta.update(update)
            self.results_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(meta, indent=2) + "\n")
            self._own_meta = True
        except OSError as exc:
            logger.error("shop-loadtest: cannot write %s (%s)", path, exc.strerror or exc)

    def _on_plan(self, environment: Any, msg: Any, **_: Any) -> None:
        self.doors_open = float(msg.data["doors_open"])
        self.speedup = float(msg.data.get("speedup") or 1.0)
        options = environment.parsed_options
        if options is not None:
            options.slt_speedup = self.speedup
            if msg.data.get("seed") is not None:
                options.slt_seed = msg.data["seed"]
        if self.shape is not None:
            self.profile = self.shape.profile(self.speedup)
        if msg.data.get("allow"):
            self.guard.extend([str(url) for url in msg.data["allow"]])
        self._start_process(index=int(msg.data["index"]), count=int(msg.data["count"]))

    def _start_process(self, *, index: int, count: int) -> None:
        from shop_loadtest.runtime.process import set_data_share

        self._index = index
        set_data_share(self.environment, index, count)
        self._health = Health()
        shape = self.shape
        if shape is not None and shape.model == "arrival_rate" and self.profile is not None:
            assert self.doors_open is not None
            runner = self.environment.runner
            # This process's share of max_users, all of it busy: the pool can grow no more.
            share = max(shape.max_users // max(count, 1) - 1, 1)

            def pool_full(busy: int) -> bool:
                return runner.user_count >= share and busy >= runner.user_count

            self.scheduler = ArrivalScheduler(
                self.profile, index=index, count=count, mode=shape.arrivals,
                max_lateness=shape.max_lateness, doors_open=self.doors_open,
                pool_full=pool_full,
            )
            delay = max(self.doors_open - time.time(), 0.0)
            gevent.spawn_later(delay, self.scheduler.start)
        self._flusher = gevent.spawn(self._flush_loop)

    def _flush_loop(self) -> None:
        assert self.doors_open is not None
        last = max(time.time(), self.doors_open)
        k = max(math.ceil((last - self.doors_open) / INTERVAL_S), 1)
        while True:
            gevent.sleep(max(self.doors_open + k * INTERVAL_S - time.time(), 0.0))
            self.flush()
            k += 1

    def flush(self, *, final: bool = False) -> None:
        """Write (or send) the interval that ends now. The `final` one, at stop, carries no
        user count: the users are gone by then, and a 0 would read as a run that had none."""
        now = time.time()
        assert self.doors_open is not None
        source = self._source()
        record: dict[str, Any] = {
            "t": round(now - self.doors_open, 3), "ts": now, "dt": INTERVAL_S, "source": source,
            "users": None, "target": None, "endpoints": {}, "errors": [], "arrivals": None,
            "health": None, "journeys": None,
        }
        if self.role != "master":
            taken = self.recorder.take()
            self._observe_journeys(taken["journeys"])
            record.update(taken)
            record["users"] = None if final else self.environment.runner.user_count
            record["arrivals"] = self.scheduler.counts.take() if self.scheduler else None
            record["in_flight"] = self.scheduler.in_flight if self.scheduler else None
            record["health"] = self._health.take() if self._health else None
        if self.role != "worker":
            record["target"] = self.target_now
        if self.role == "master":
            self._check_workers()
        if self.role == "worker":
            self.environment.runner.send_message(MSG_INTERVAL, record)
        else:
            self._write("intervals.jsonl", record)
        self._flush_refused()

    def _source(self) -> str:
        if self.role == "worker":
            return f"worker-{self._index}"
        return self.role

    def _on_test_stopping(self, environment: Any, **_: Any) -> None:
        # Before the users stop: the arrivals still queued are judged against the pool as
        # it was (all busy or not), not the empty pool after the users are gone.
        if self.scheduler is not None:
            self.scheduler.stop()

    def _on_test_stop(self, environment: Any, **_: Any) -> None:
        if self._flusher is not None:
            self._flusher.kill(block=False)
            self._flusher = None
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.doors_open is not None:
            self.flush(final=True)
            if self.role != "worker":
                self.event("stop", {"reason": "completed"})
                played = self.profile is not None and (
                    self.campaign_time() >= self.profile.duration - INTERVAL_S)
                self._write_run_meta(
                    ended_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    exit_reason="completed" if played else "interrupted")
        if self._health is not None:
            self._health.stop()
        for handle in self._files.values():
            handle.flush()
        self.exports.close()


def install(events: Any, *, scenario: str, budgets: list[str] | None = None,
            abort: list[str] | None = None, host: str | None = None,
            allowed_hosts: list[str] | None = None, secret_env: list[str] | None = None) -> None:
    """Hook the runtime into Locust: options, and a RuntimeState per process at init.

    Requests go only to `host`, `allowed_hosts`, Locust's --host and --slt-allow-host."""

    @events.init_command_line_parser.add_listener
    def _options(parser: Any, **_: Any) -> None:
        parser.add_argument("--slt-results", default=None,
                            help="shop-loadtest: record results into this folder")
        parser.add_argument("--slt-speedup", type=float, default=1.0,
                            help="shop-loadtest: play the shape this many times faster")
        parser.add_argument("--slt-seed", type=int, default=None,
                            help="shop-loadtest: seed for template randomness")
        parser.add_argument("--slt-watch-parent", action="store_true", default=False,
                            help="shop-loadtest: stop when the parent process is gone")
        parser.add_argument("--slt-allow-host", action="append", default=[],
                            help="shop-loadtest: also allow requests to this host URL")

    @events.init.add_listener
    def _init(environment: Any, **_: Any) -> None:
        state = RuntimeState(environment, scenario, budgets, abort, host, allowed_hosts,
                             secret_env)
        environment.shop_loadtest = state
        state.attach()
