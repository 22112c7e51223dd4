"""Write realistic results folders (docs/results-format.md) for tests: real hdrh histograms,
real files, no mocks.

>>> run = RunFolder(tmp_path, budgets=["p95 < 500ms"])           # doctest: +SKIP
>>> run.interval(1, {"GET /a": [10, 20, 30]}, errors={"GET /a": [("HTTP 503", "busy", 1)]})
>>> run.finish()

`known_run()` writes the 10-second folder whose answers the budget and report tests assert.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

START_TS = 1_764_189_000.0
SCENARIO_YAML = """name: {name}
load:
  model: {model}
  stages:
    - {{name: ramp-up, duration: 2s, target: 10}}
journeys:
  - name: browse
    steps:
      - request: GET /api/products
"""


def _us(latencies_ms: Sequence[float]) -> list[int]:
    """Microseconds, as shop_loadtest.runtime.recorder records them."""
    return [min(max(int(ms * 1000.0), 1), 3_600_000_000) for ms in latencies_ms]


def _histogram(latencies_ms: Sequence[float]) -> HdrHistogram:
    hist = HdrHistogram(1, 3_600_000_000, 3)
    for us in _us(latencies_ms):
        hist.record_value(us)
    return hist


def _pct(hist: HdrHistogram, ordered_us: list[int], q: float) -> float:
    """HdrHistogram.get_value_at_percentile, without its 1 ms walk over every bucket: the
    bucket of the target-th smallest value, reported by its highest equivalent value."""
    if not ordered_us:
        return 0.0
    target = max(int(q * len(ordered_us) / 100.0 + 0.5), 1)
    return hist.get_highest_equivalent_value(ordered_us[target - 1]) / 1000.0


class RunFolder:
    """A results folder written the way the runner and runtime write one."""

    def __init__(self, path: Path, *, scenario: str = "demo", model: str = "users",
                 stages: list[dict[str, Any]] | None = None, budgets: Sequence[str] = (),
                 abort: Sequence[str] = (), scenario_yaml: str | None = None,
                 max_users: int | None = None, workers_expected: int = 1) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        if stages is None:  # a 10 s hold that the default samples (10 users, 100/s) deliver
            level = 100 if model == "arrival_rate" else 10
            stages = [{"name": "steady", "start_s": 0.0, "end_s": 10.0, "from": level,
                       "to": level}]
        self.meta: dict[str, Any] = {
            "schema_version": 1, "scenario": scenario,
            "scenario_file": f"scenarios/{scenario}.yaml",
            "started_at": "2025-11-26T20:30:00Z", "ended_at": None,
            "host": "http://127.0.0.1:8800", "model": model, "speedup": 1.0,
            "command": ["shop-loadtest", "run", f"scenarios/{scenario}.yaml"], "processes": 1,
            "versions": {"shop_loadtest": "0.1.0", "locust": "2.47.0", "python": "3.11.7"},
            "stages": stages, "budgets": list(budgets), "abort": list(abort),
            "exit_reason": None, "abort_reason": None, "locust_exit_code": None,
            "target": {"kind": "named", "host": "http://127.0.0.1:8800"},
            "workers": {"expected": workers_expected}, "max_users": max_users,
        }
        self._write_meta()
        (self.path / "scenario.yaml").write_text(
            scenario_yaml if scenario_yaml is not None
            else SCENARIO_YAML.format(name=scenario, model=model))
        (self.path / "locustfile.py").write_text("# generated\n")
        self.event(0.0, "start", workers=1, role="local")

    def _write_meta(self) -> None:
        (self.path / "run.json").write_text(json.dumps(self.meta, indent=2))

    def _append(self, name: str, record: dict[str, Any]) -> None:
        with (self.path / name).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")

    def interval(self, t: float, endpoints: Mapping[str, Sequence[float]], *,
                 errors: Mapping[str, Sequence[tuple[str, str, int]]] | None = None,
                 due: Mapping[str, Sequence[float]] | None = None, source: str = "local",
                 users: int | None = 10, target: float | None = 10.0,
                 arrivals: Mapping[str, float] | None = None, cpu: float | None = 30.0,
                 loop_lag_ms: float = 1.0, rss_mb: float = 80.0, dt: float = 1.0,
                 error_samples: Sequence[Mapping[str, Any]] = (),
                 machine: Mapping[str, float | int | None] | None = None,
                 lateness_ms: Sequence[float] | None = None) -> None:
        """One line of intervals.jsonl: `endpoints` maps a name to its latencies (ms) this
        interval; `errors` to (kind, message, count) of failed ones (counted in `fail`);
        `machine` is the health.machine sample (runtime/machine.py), absent when None;
        `lateness_ms`, how late each started arrival was, becomes `arrivals.late_hist`."""
        errors = errors or {}
        block = {}
        for name, latencies in endpoints.items():
            hist, ordered = _histogram(latencies), sorted(_us(latencies))
            failed = sum(count for _, _, count in errors.get(name, ()))
            due_hist = _histogram(due[name]) if due and name in due else None
            block[name] = {
                "method": name.split(" ", 1)[0], "n": len(latencies), "fail": failed,
                "sum_ms": round(float(sum(latencies)), 3),
                "min_ms": float(min(latencies)) if latencies else None,
                "max_ms": float(max(latencies)) if latencies else 0.0,
                "bytes": 1000 * len(latencies),
                "p50_ms": _pct(hist, ordered, 50), "p95_ms": _pct(hist, ordered, 95),
                "p99_ms": _pct(hist, ordered, 99),
                "hist": hist.encode().decode("ascii"),
                "hist_due": due_hist.encode().decode("ascii") if due_hist else None,
            }
        extra = {"error_samples": [dict(x) for x in error_samples]} if error_samples else {}
        self._append("intervals.jsonl", {
            **extra,
            "t": t, "ts": START_TS + t, "dt": dt, "source": source, "users": users,
            "target": target, "endpoints": block,
            "errors": [{"endpoint": name, "kind": kind, "message": message, "count": count}
                       for name, items in errors.items() for kind, message, count in items],
            "arrivals": ({**arrivals, **({"late_hist": _histogram(lateness_ms).encode()
                                          .decode("ascii")} if lateness_ms else {})}
                         if arrivals is not None else None),
            "health": ({"cpu_pct": cpu, "loop_lag_ms": loop_lag_ms, "rss_mb": rss_mb,
                        **({"machine": dict(machine)} if machine is not None else {})}
                       if cpu is not None else None),
            "journeys": {"completed": len(next(iter(endpoints.values()), [])), "mean_s": 1.0},
        })

    def event(self, t: float, kind: str, /, **detail: Any) -> None:
        self._append("events.jsonl", {"t": t, "ts": START_TS + t, "kind": kind, "detail": detail})

    def monitor(self, t: float, samples: Sequence[tuple[str, dict[str, str], float]], *,
                ok: bool = True, error: str | None = None) -> None:
        self._append("monitor.jsonl", {
            "t": t, "ts": START_TS + t, "endpoint": "http://127.0.0.1:8800/metrics", "ok": ok,
            "error": error,
            "samples": [{"name": n, "labels": labels, "value": v} for n, labels, v in samples]})

    def finish(self, exit_reason: str = "completed", *, t: float | None = None,
               abort_reason: dict[str, Any] | None = None, locust_exit_code: int = 0) -> Path:
        """Write the stop event and the final run.json, as the runner does after the load."""
        if t is not None:
            self.event(t, "stop", reason=exit_reason)
        self.meta.update(ended_at="2025-11-26T20:31:00Z", exit_reason=exit_reason,
                         abort_reason=abort_reason, locust_exit_code=locust_exit_code)
        self._write_meta()
        return self.path

    def truncate_last_line(self, name: str = "intervals.jsonl", keep: int = 25) -> None:
        """Cut the file inside its last line, as a crash mid-write leaves it."""
        path = self.path / name
        data = path.read_bytes()
        start = data.rstrip(b"\n").rfind(b"\n") + 1
        path.write_bytes(data[: start + keep])


# --- the known-answer run -----------------------------------------------------------------
PRODUCTS, PRODUCT, CHECKOUT = "GET /api/products", "GET /api/products/{id}", "POST /api/checkout"
KNOWN_STAGES = [
    {"name": "ramp-up", "start_s": 0.0, "end_s": 2.0, "from": 0, "to": 10},
    {"name": "steady", "start_s": 2.0, "end_s": 8.0, "from": 10, "to": 10},
    {"name": "ramp-down", "start_s": 8.0, "end_s": 10.0, "from": 10, "to": 0},
]


def known_second(t: int) -> tuple[dict[str, list[float]], dict[str, list[tuple[str, str, int]]]]:
    """Second t (1..10) of the known run: latencies and errors.

    - GET /api/products: 10 requests a second at exactly 10, 20, ... 100 ms; 2 fail with
      HTTP 404 at t=9.
    - GET /api/products/{id}: 10 requests a second at 5 ms.
    - POST /api/checkout: 10 requests a second at 200 ms, but 1000 ms at t=6 and t=7, when 5
      of them fail with HTTP 503.
    """
    slow = t in (6, 7)
    endpoints = {PRODUCTS: [float(ms) for ms in range(10, 101, 10)], PRODUCT: [5.0] * 10,
                 CHECKOUT: [1000.0 if slow else 200.0] * 10}
    errors: dict[str, list[tuple[str, str, int]]] = {}
    if slow:
        errors[CHECKOUT] = [("HTTP 503", "Service Unavailable", 5)]
    if t == 9:
        errors[PRODUCTS] = [("HTTP 404", "Not Found", 2)]
    return endpoints, errors


def known_run(path: Path, *, seconds: int = 10, budgets: Sequence[str] = (),
              abort: Sequence[str] = (), finish: bool = True, cpu: Sequence[float] = (),
              **kwargs: Any) -> RunFolder:
    """The 10-second, three-endpoint run with stages ramp-up (0-2 s), steady (2-8 s, a hold)
    and ramp-down (8-10 s). `cpu[i]` overrides the CPU of second i+1."""
    run = RunFolder(path, stages=KNOWN_STAGES, budgets=budgets, abort=abort, **kwargs)
    for t in range(1, seconds + 1):
        endpoints, errors = known_second(t)
        target = 5.0 * t if t <= 2 else (10.0 if t <= 8 else 10.0 - 5.0 * (t - 8))
        run.interval(float(t), endpoints, errors=errors, target=target,
                     cpu=cpu[t - 1] if t - 1 < len(cpu) else 30.0)
    if finish:
        run.finish(t=float(seconds))
    return run


# --- a big synthetic run (benchmarks) --------------------------------------------------------
def synthetic_run(path: Path, *, duration_s: int = 1800, endpoints: int = 10,
                  rps_per_endpoint: int = 20, seed: int = 1, model: str = "arrival_rate"
                  ) -> RunFolder:
    """A long open-model run: latencies lognormal around 50 ms, 1% failures, a slow spell."""
    rng = np.random.default_rng(seed)
    names = [f"GET /api/endpoint-{i}" for i in range(endpoints - 1)] + ["POST /api/checkout"]
    third = duration_s / 3
    stages = [{"name": "ramp", "start_s": 0.0, "end_s": third, "from": 0, "to": 40},
              {"name": "peak", "start_s": third, "end_s": 2 * third, "from": 40, "to": 40},
              {"name": "decay", "start_s": 2 * third, "end_s": duration_s, "from": 40, "to": 10}]
    run = RunFolder(path, scenario="soak", model=model, stages=stages,
                    budgets=["p95 < 500ms", "p99 < 1s", "error_rate < 1%",
                             "throughput > 100/s", "p95 of POST /api/checkout < 800ms for 30s",
                             "p99 of GET /api/* < 300ms during peak", "p95_due < 1s",
                             "error_rate(5xx) < 2% excluding ramps"],
                    abort=["error_rate > 50% for 20s"])
    for t in range(1, duration_s + 1):
        slow = 1.0 + 4.0 * (0.55 * duration_s < t < 0.6 * duration_s)
        lat = {n: list(rng.lognormal(np.log(50 * slow), 0.5, rps_per_endpoint)) for n in names}
        due = {n: [v + float(rng.exponential(5)) for v in vals] for n, vals in lat.items()}
        failed = int(rng.binomial(rps_per_endpoint * endpoints, 0.01))
        errors = {names[-1]: [("HTTP 503", "Service Unavailable", failed)]} if failed else {}
        run.interval(float(t), lat, errors=errors, due=due, target=40.0, users=80,
                     arrivals={"due": 40, "started": 40, "dropped": 0, "late": 1,
                               "late_max_ms": 120.0},
                     cpu=float(rng.uniform(20, 60)))
    run.finish(t=float(duration_s))
    return run
