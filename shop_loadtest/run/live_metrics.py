"""Prometheus metrics of the load test itself, served on 127.0.0.1 while a run goes on.

`run --metrics-port N` starts this in the runner's process (never a Locust process, and it
never imports locust): a thread reads the run folder's newly flushed intervals.jsonl lines
every second and a prometheus-client HTTP server exposes what they add up to, so the
Prometheus and Grafana that watch the shop show the test beside it:

`shop_loadtest_info`, `_running`, `_elapsed_seconds`; `_arrival_rate_planned` and
`_achieved` (open model), `_users` and `_users_planned`; counters `_arrivals_total{state}`,
`_requests_total`, `_request_failures_total` (by endpoint and method),
`_request_errors_total{endpoint,kind}`; the histogram `_request_duration_seconds{endpoint}`;
`_budget_state{budget,state}` (1 for the current state); and generator health by source
(`_generator_cpu_percent`, `_generator_loop_lag_seconds`, `_generator_rss_bytes`). The table
is in docs/alerting.md.

Latency buckets are the demo shop's (1 ms to 10 s), filled from the HDR histograms by each
HDR bucket's highest value: a request within HDR's 0.1% of a bound is counted above it, never
below, so the load test never reports a request faster than it was.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.registry import Collector

from shop_loadtest.errors import InputError

BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
READ_EVERY_S = 1.0
BUDGETS_EVERY_S = 5.0  # at most this often...
BUDGETS_CPU_SHARE = 0.05  # ...and at most ~5% of the time: the load generator needs the CPU
BUDGET_STATES = ("pass", "fail", "no_data")


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass
class _Endpoint:
    method: str
    requests: int = 0
    failures: int = 0
    sum_s: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))


@dataclass
class _Source:
    t: float = 0.0
    users: float = 0.0
    target: float = 0.0
    started_per_s: float | None = None
    cpu_pct: float | None = None
    loop_lag_ms: float | None = None
    rss_mb: float | None = None


def bucket_counts(encoded: str | None) -> list[int]:
    """An interval's HDR histogram (microseconds) as counts per BUCKETS_S bucket (+Inf last)."""
    import numpy as np

    from shop_loadtest.hdr import bucket_values_us
    from shop_loadtest.results import decode_counts

    out = [0] * (len(BUCKETS_S) + 1)
    counts = decode_counts(encoded)
    if counts is None:
        return out
    _, highest = bucket_values_us(counts.idx)
    slots = np.searchsorted(np.asarray(BUCKETS_S) * 1e6, highest, side="left")
    for slot, n in zip(slots.tolist(), counts.cnt.tolist(), strict=True):
        out[slot] += int(n)
    return out


class RunState:
    """What the run folder's intervals add up to so far; `add` one record at a time."""

    def __init__(self) -> None:
        self.endpoints: dict[str, _Endpoint] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.sources: dict[str, _Source] = {}
        self.arrivals = {"due": 0.0, "started": 0.0, "dropped": 0.0, "late": 0.0}
        self.latest_t: float | None = None
        self.budgets: dict[str, str] = {}

    def add(self, record: dict[str, Any]) -> None:
        t, dt = _num(record.get("t")), _num(record.get("dt")) or 1.0
        if t is None:
            return
        self.latest_t = t if self.latest_t is None else max(self.latest_t, t)
        source = self.sources.setdefault(str(record.get("source")), _Source())
        source.t = t
        source.users = _num(record.get("users")) or 0.0
        source.target = _num(record.get("target")) or 0.0
        arrivals = record.get("arrivals")
        if isinstance(arrivals, dict):
            for key in self.arrivals:
                self.arrivals[key] += _num(arrivals.get(key)) or 0.0
            source.started_per_s = (_num(arrivals.get("started")) or 0.0) / dt
        health = record.get("health")
        if isinstance(health, dict):
            source.cpu_pct = _num(health.get("cpu_pct"))
            source.loop_lag_ms = _num(health.get("loop_lag_ms"))
            source.rss_mb = _num(health.get("rss_mb"))
        endpoints = record.get("endpoints")
        for name, ep in (endpoints.items() if isinstance(endpoints, dict) else ()):
            if not isinstance(ep, dict):
                continue
            mine = self.endpoints.setdefault(str(name), _Endpoint(str(ep.get("method") or "")))
            mine.requests += int(_num(ep.get("n")) or 0)
            mine.failures += int(_num(ep.get("fail")) or 0)
            mine.sum_s += (_num(ep.get("sum_ms")) or 0.0) / 1000.0
            for i, n in enumerate(bucket_counts(ep.get("hist"))):
                mine.buckets[i] += n
        errors = record.get("errors")
        for error in errors if isinstance(errors, list) else ():
            if isinstance(error, dict):
                pair = (str(error.get("endpoint")), str(error.get("kind")))
                self.errors[pair] = self.errors.get(pair, 0) + int(_num(error.get("count")) or 0)


class RunCollector(Collector):
    """A prometheus-client collector over a RunState (read under its lock)."""

    def __init__(self, state: RunState, lock: threading.Lock, meta: Callable[[], dict[str, Any]],
                 running: Callable[[], bool]) -> None:
        self.state, self.lock, self.meta, self.running = state, lock, meta, running

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        meta = self.meta()
        with self.lock:
            s = self.state
            info = GaugeMetricFamily("shop_loadtest_info", "The run being exported.",
                                     labels=["scenario", "run", "model"])
            info.add_metric([str(meta.get("scenario") or ""), str(meta.get("run") or ""),
                             str(meta.get("model") or "")], 1)
            yield info
            yield GaugeMetricFamily("shop_loadtest_running", "1 while the load runs.",
                                    value=1 if self.running() else 0)
            if s.latest_t is not None:
                yield GaugeMetricFamily("shop_loadtest_elapsed_seconds",
                                        "Latest recorded second of the load.", value=s.latest_t)
            sources = list(s.sources.values())
            if sources:
                open_model = meta.get("model") == "arrival_rate"
                planned = sum(x.target for x in sources)
                if open_model:
                    yield GaugeMetricFamily("shop_loadtest_arrival_rate_planned",
                                            "Journeys/s the shape asks for now.", value=planned)
                    yield GaugeMetricFamily(
                        "shop_loadtest_arrival_rate_achieved", "Journeys/s started in the "
                        "latest second.", value=sum(x.started_per_s or 0.0 for x in sources))
                else:
                    yield GaugeMetricFamily("shop_loadtest_users_planned",
                                            "Users the shape asks for now.", value=planned)
                yield GaugeMetricFamily("shop_loadtest_users", "Users running now.",
                                        value=sum(x.users for x in sources))
            arrivals = CounterMetricFamily("shop_loadtest_arrivals", "Arrivals (open model) by "
                                           "state: due, started, dropped, late.",
                                           labels=["state"])
            for key, value in s.arrivals.items():
                arrivals.add_metric([key], value)
            yield arrivals
            requests = CounterMetricFamily("shop_loadtest_requests", "Requests sent.",
                                           labels=["endpoint", "method"])
            failures = CounterMetricFamily("shop_loadtest_request_failures", "Failed requests.",
                                           labels=["endpoint", "method"])
            latency = HistogramMetricFamily("shop_loadtest_request_duration_seconds",
                                            "Response times.", labels=["endpoint"])
            for name, ep in sorted(s.endpoints.items()):
                requests.add_metric([name, ep.method], ep.requests)
                failures.add_metric([name, ep.method], ep.failures)
                cumulative, total = [], 0
                for bound, n in zip((*BUCKETS_S, math.inf), ep.buckets, strict=True):
                    total += n
                    cumulative.append(("+Inf" if math.isinf(bound) else repr(bound), total))
                latency.add_metric([name], cumulative, sum_value=ep.sum_s)
            yield requests
            yield failures
            yield latency
            errors = CounterMetricFamily("shop_loadtest_request_errors", "Failed requests by "
                                         "kind.", labels=["endpoint", "kind"])
            for (endpoint, kind), n in sorted(s.errors.items()):
                errors.add_metric([endpoint, kind], n)
            yield errors
            budgets = GaugeMetricFamily("shop_loadtest_budget_state", "1 for each budget's "
                                        "state so far.", labels=["budget", "state"])
            for expr, state in s.budgets.items():
                for name in BUDGET_STATES:
                    budgets.add_metric([expr, name], 1 if state == name else 0)
            yield budgets
            for metric, help_text, attr, scale in (
                    ("shop_loadtest_generator_cpu_percent", "Load process CPU, % of a core.",
                     "cpu_pct", 1.0),
                    ("shop_loadtest_generator_loop_lag_seconds", "Load process event-loop lag.",
                     "loop_lag_ms", 0.001),
                    ("shop_loadtest_generator_rss_bytes", "Load process memory.", "rss_mb",
                     1e6)):
                family = GaugeMetricFamily(metric, help_text, labels=["source"])
                for source, x in sorted(s.sources.items()):
                    value = getattr(x, attr)
                    if value is not None:
                        family.add_metric([source], value * scale)
                yield family


class MetricsServer:
    """Serves a run folder's metrics on host:port while `running`; `stop()` ends it."""

    def __init__(self, run_dir: Path, port: int, *, host: str = "127.0.0.1",
                 every_s: float = READ_EVERY_S) -> None:
        from shop_loadtest.run.live import JsonlTail

        self.run_dir, self.port, self.host, self.every_s = Path(run_dir), port, host, every_s
        self.state, self.lock = RunState(), threading.Lock()
        # one reader at a time: the tails keep an offset, so two threads reading at once
        # (the loop and a caller's read_once) would both fold in the same lines
        self._reading = threading.Lock()
        self.tail = JsonlTail(self.run_dir / "intervals.jsonl")
        self.events = JsonlTail(self.run_dir / "events.jsonl")
        self.monitor_tail = JsonlTail(self.run_dir / "monitor.jsonl")
        self._judges: _Judges | None = None
        self._stop, self._done = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._meta: dict[str, Any] = {}
        self._next_budgets = 0.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry(auto_describe=False)
        registry.register(RunCollector(self.state, self.lock, lambda: self._meta,
                                       lambda: not self._done.is_set()))
        try:
            self._server, _ = start_http_server(self.port, addr=self.host, registry=registry)
        except OSError as exc:
            raise InputError(f"--metrics-port {self.port}: cannot listen on {self.host} "
                             f"({exc.strerror or exc})") from None
        self.port = int(self._server.server_port)
        self._thread = threading.Thread(target=self._loop, name="shop-loadtest-metrics",
                                        daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.read_once()
            self._stop.wait(self.every_s)

    def read_once(self) -> None:
        """Fold the newly flushed lines in; judge the budgets when it is cheap enough."""
        with self._reading:
            self._read_once()

    def _read_once(self) -> None:
        try:
            if not self._meta:
                meta = json.loads((self.run_dir / "run.json").read_text(encoding="utf-8"))
                self._meta = {"scenario": meta.get("scenario"), "model": meta.get("model"),
                              "run": self.run_dir.name, "budgets": meta.get("budgets") or []}
                self._judges = _Judges(meta)
            records = self.tail.read()
            if self._judges is not None:
                self._judges.feed(records, self.monitor_tail)
            if any(e.get("kind") == "stop" for e in self.events.read()):
                self._done.set()  # the load stopped: shop_loadtest_running drops to 0
            with self.lock:
                for record in records:
                    self.state.add(record)
            self._judge()
        except Exception:  # a folder mid-write: the next read catches up
            pass

    def _judge(self) -> None:
        exprs = self._meta.get("budgets") or []
        now = time.monotonic()
        if (not exprs or now < self._next_budgets or self.state.latest_t is None
                or self._judges is None):
            return
        began = time.perf_counter()
        results = self._judges.results(final=self._done.is_set())
        with self.lock:
            self.state.budgets = {r.expr: r.status for r in results}
        cost = time.perf_counter() - began
        self._next_budgets = now + max(BUDGETS_EVERY_S, cost / BUDGETS_CPU_SHARE)

    def stop(self) -> None:
        """A last read (the final interval), then close the port."""
        self._done.set()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._next_budgets = 0.0
        self.read_once()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Judges:
    """The run's budgets judged as the live view judges them: folded interval by interval
    (judge/live.py), those on the shop's metrics on the lines read so far (results/light.py).
    The folder is never read again, so a check costs the same at hour 4 as at second 4."""

    def __init__(self, meta: dict[str, Any]) -> None:
        from shop_loadtest.judge.live import LiveJudge, supports
        from shop_loadtest.results.light import MonitorEvidence
        from shop_loadtest.scenario.budgets import parse_budget

        self.meta = meta
        self.budgets = [parse_budget(str(e)) for e in meta.get("budgets") or []]
        self.folded = [supports(b) for b in self.budgets]
        self.judge = LiveJudge(meta, [b for b, f in zip(self.budgets, self.folded,
                                                        strict=True) if f])
        self.evidence = MonitorEvidence() if not all(self.folded) else None

    def feed(self, records: list[dict[str, Any]], monitor: Any) -> None:
        self.judge.feed(records)
        if self.evidence is not None:
            self.evidence.add_intervals(records)
            self.evidence.add_monitor(monitor.read())

    def results(self, *, final: bool) -> list[Any]:
        from shop_loadtest.judge.budgets import evaluate

        if final:
            self.judge.finish()  # the load stopped: its last intervals will not be joined
        folded = iter(self.judge.results())
        batch = iter(evaluate([b for b, f in zip(self.budgets, self.folded, strict=True)
                               if not f], self.evidence.run(self.meta))
                     if self.evidence is not None else ())
        return [next(folded) if f else next(batch) for f in self.folded]
