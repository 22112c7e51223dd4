"""How `shop-loadtest report` scales with a run's length: time, peak memory, report.html size.

Synthesises results folders in the real format (docs/results-format.md) for runs of 10 min,
1 h and 4 h with 30 endpoints at 250 requests/s each (7,500 requests/s in all, as the soak
that took 6 GB), then runs `shop-loadtest report` on each in a fresh process and prints its
wall time, its peak RSS (the child's ru_maxrss) and the size of report.html. It also times
the live checks (budgets and abort rules, as the runner and live view make them) at the end
of each folder, the point where they cost most.

Histograms are real hdrh encodings, drawn from a pool per endpoint and regime (normal or
slow) so that building a 4-hour folder takes a minute, not an hour. Errors, samples, arrivals,
health, stages, events and monitor scrapes are all present.

Not part of the test suite. Run:
    .venv/bin/python benchmarks/report_scale.py [--minutes 10 60 240] [--endpoints 30]
        [--dir /tmp/slt-scale] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

ROOT = Path(__file__).resolve().parent.parent
START_TS = 1_764_189_000.0
POOL = 40  # distinct histograms per endpoint and regime
BUDGETS = ["p95 < 500ms", "p99 < 1s", "error_rate < 1%", "throughput > 100/s",
           "p95 of POST /api/checkout < 800ms for 30s", "p99 of GET /api/* < 300ms during peak",
           "p95_due < 1s", "error_rate(5xx) < 2% excluding ramps",
           "used(storage) < 80%"]
ABORT = ["error_rate > 50% for 20s", "p99 > 10s for 30s"]


def _pool(rng: np.random.Generator, n: int, median_ms: float) -> list[dict[str, Any]]:
    """POOL intervals of n requests: encoded histograms and their exact figures."""
    out = []
    for _ in range(POOL):
        ms = rng.lognormal(np.log(median_ms), 0.5, n)
        hist = HdrHistogram(1, 3_600_000_000, 3)
        for us in np.clip((ms * 1000).astype(np.int64), 1, 3_600_000_000):
            hist.record_value(int(us))
        due = HdrHistogram(1, 3_600_000_000, 3)
        for us in np.clip(((ms + rng.exponential(5, n)) * 1000).astype(np.int64), 1,
                          3_600_000_000):
            due.record_value(int(us))
        out.append({"n": n, "sum_ms": round(float(ms.sum()), 3), "min_ms": float(ms.min()),
                    "max_ms": float(ms.max()),
                    "p50_ms": hist.get_value_at_percentile(50) / 1000,
                    "p95_ms": hist.get_value_at_percentile(95) / 1000,
                    "p99_ms": hist.get_value_at_percentile(99) / 1000,
                    "hist": hist.encode().decode("ascii"),
                    "hist_due": due.encode().decode("ascii")})
    return out


def build_folder(path: Path, *, duration_s: int, endpoints: int, rps: int, seed: int = 1
                 ) -> Path:
    """A results folder of `duration_s` one-second intervals, written as the runtime does."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    names = [f"GET /api/endpoint-{i}" for i in range(endpoints - 1)] + ["POST /api/checkout"]
    third = duration_s / 3
    stages = [{"name": "ramp", "start_s": 0.0, "end_s": third, "from": 0, "to": 40},
              {"name": "peak", "start_s": third, "end_s": 2 * third, "from": 40, "to": 40},
              {"name": "decay", "start_s": 2 * third, "end_s": float(duration_s), "from": 40,
               "to": 10}]
    meta = {"schema_version": 1, "scenario": "soak", "scenario_file": "scenarios/soak.yaml",
            "started_at": "2026-11-26T20:30:00Z", "ended_at": "2026-11-27T00:30:00Z",
            "host": "http://127.0.0.1:8800", "model": "arrival_rate", "speedup": 1.0,
            "command": ["shop-loadtest", "run", "scenarios/soak.yaml"], "processes": 1,
            "versions": {}, "stages": stages, "budgets": BUDGETS, "abort": ABORT,
            "monitor": {"endpoints": ["http://127.0.0.1:8800/metrics"], "interval_s": 2.0},
            "forecast": None, "exit_reason": "completed", "abort_reason": None,
            "locust_exit_code": 0}
    (path / "run.json").write_text(json.dumps(meta, indent=2))
    (path / "scenario.yaml").write_text("name: soak\n")
    (path / "locustfile.py").write_text("# generated\n")
    pools = {(name, slow): _pool(rng, rps, 50.0 * (5.0 if slow else 1.0))
             for name in names for slow in (False, True)}
    body = '{"error": "service unavailable, try again"}\\n'
    with (path / "intervals.jsonl").open("w") as out:
        for t in range(1, duration_s + 1):
            slow = 0.55 * duration_s < t < 0.6 * duration_s
            block = {}
            for name in names:
                figures = pools[(name, slow)][int(rng.integers(POOL))]
                block[name] = {"method": name.split(" ", 1)[0], **figures, "fail": 0,
                               "bytes": 1200 * rps}
            failed = int(rng.binomial(rps, 0.005))
            block[names[-1]]["fail"] = failed
            line: dict[str, Any] = {
                "t": float(t), "ts": START_TS + t, "dt": 1.0, "source": "local",
                "users": 200, "target": 40.0, "endpoints": block,
                "errors": ([{"endpoint": names[-1], "kind": "HTTP 503",
                             "message": "service unavailable, try again", "count": failed}]
                           if failed else []),
                "arrivals": {"due": 40, "started": 40, "dropped": 0, "late": 1,
                             "late_max_ms": 120.0},
                "health": {"cpu_pct": float(rng.uniform(20, 60)), "loop_lag_ms": 1.5,
                           "rss_mb": 90.0},
                "journeys": {"completed": 40, "mean_s": 1.0}}
            if t < 4 and failed:
                line["error_samples"] = [{"endpoint": names[-1], "kind": "HTTP 503",
                                          "message": "service unavailable, try again",
                                          "status": 503, "method": "POST",
                                          "path": "/api/checkout", "body": body}]
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    with (path / "monitor.jsonl").open("w") as out:
        for t in range(2, duration_s + 1, 2):
            used = 1e6 + 50.0 * t
            samples = [{"name": "shop_db_size_bytes", "labels": {}, "value": used},
                       {"name": "shop_db_storage_limit_bytes", "labels": {}, "value": 4e6},
                       {"name": "shop_orders_total", "labels": {}, "value": 3.0 * t},
                       {"name": "shop_open_connections", "labels": {}, "value": 20.0}]
            out.write(json.dumps({"t": float(t), "ts": START_TS + t,
                                  "endpoint": "http://127.0.0.1:8800/metrics", "ok": True,
                                  "error": None, "samples": samples}) + "\n")
    with (path / "events.jsonl").open("w") as out:
        out.write(json.dumps({"t": 0.0, "ts": START_TS, "kind": "start", "detail": {}}) + "\n")
        for s in stages[1:]:
            out.write(json.dumps({"t": s["start_s"], "ts": START_TS + s["start_s"],
                                  "kind": "stage", "detail": {"name": s["name"]}}) + "\n")
        out.write(json.dumps({"t": float(duration_s), "ts": START_TS + duration_s,
                              "kind": "stop", "detail": {"reason": "completed"}}) + "\n")
    return path


CHILD = """
import json, resource, sys, time
from pathlib import Path
began = time.perf_counter()
{body}
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": time.perf_counter() - began,
                  "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
REPORT = """
from shop_loadtest.report import build_reports
build_reports(Path(sys.argv[1]))
"""
LIVE = """
import shutil, tempfile
from shop_loadtest.run.live import FolderWatch
from shop_loadtest.run.runner import abort_checker
src = Path(sys.argv[1])
# The folder as it is 5 s before the end of the run, then the last 5 s appended: the live
# view and the abort check at that point of a run, as the runner makes them.
run_dir = Path(tempfile.mkdtemp(prefix="slt-live-"))
for name in ("run.json", "scenario.yaml", "events.jsonl", "monitor.jsonl"):
    shutil.copy(src / name, run_dir / name)
with (src / "intervals.jsonl").open("rb") as f:
    total = sum(1 for _ in f)
tail = []
with (src / "intervals.jsonl").open("rb") as f, (run_dir / "intervals.jsonl").open("wb") as out:
    for i, line in enumerate(f):
        (out.write(line) if i < total - 5 else tail.append(line))
began = time.perf_counter()
watch = FolderWatch(run_dir)
check = abort_checker(run_dir)
watch.snapshot(1.0, 2.0)
check()
first = time.perf_counter() - began
with (run_dir / "intervals.jsonl").open("ab") as out:
    out.writelines(tail)
watch.clock = lambda: 1e9  # 2 s later, as far as the view's throttle knows
t0, c0 = time.perf_counter(), time.process_time()
hit = check()
abort_s, abort_cpu = time.perf_counter() - t0, time.process_time() - c0
watch.next_budgets, watch.next_batch = 0.0, 2e9  # folded budgets only
t0, c0 = time.perf_counter(), time.process_time()
watch.snapshot(1.5, 2.0)
view_s, view_cpu = time.perf_counter() - t0, time.process_time() - c0
watch.next_budgets = watch.next_batch = 0.0  # and the monitor budgets (whole folder)
t0 = time.perf_counter()
watch.snapshot(1.6, 2.0)
batch_s = time.perf_counter() - t0
print(json.dumps({"first_s": first, "next_s": abort_s, "next_cpu_s": abort_cpu,
                  "view_next_s": view_s, "view_next_cpu_s": view_cpu,
                  "view_batch_s": batch_s, "abort": hit}))
shutil.rmtree(run_dir)
"""


def measure(body: str, folder: Path) -> dict[str, Any]:
    code = CHILD.format(body=body)
    proc = subprocess.run([sys.executable, "-c", code, str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    out: dict[str, Any] = {}
    for line in proc.stdout.strip().splitlines():
        out.update(json.loads(line))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[10, 60, 240])
    parser.add_argument("--endpoints", type=int, default=30)
    parser.add_argument("--rps", type=int, default=250, help="requests/s per endpoint")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to build (and keep) the folders; default a temp dir")
    parser.add_argument("--only", choices=["report", "live"], default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="slt-scale-"))
    results = []
    for minutes in args.minutes:
        folder = base / f"soak-{minutes}m-{args.endpoints}ep"
        if not (folder / "intervals.jsonl").exists():
            began = time.perf_counter()
            build_folder(folder, duration_s=minutes * 60, endpoints=args.endpoints, rps=args.rps)
            print(f"built {folder} in {time.perf_counter() - began:.0f} s", file=sys.stderr)
        size = (folder / "intervals.jsonl").stat().st_size / 1e6
        row: dict[str, Any] = {"minutes": minutes, "endpoints": args.endpoints,
                               "intervals_mb": round(size, 1)}
        if args.only in (None, "report"):
            report = measure(REPORT, folder)
            row["report"] = report
            html = folder / "report.html"
            row["report_html_mb"] = round(html.stat().st_size / 1e6, 2) if html.exists() else None
        if args.only in (None, "live"):
            row["live"] = measure(LIVE, folder)
        results.append(row)
        print(json.dumps(row), flush=True)
    nan = float("nan")
    print(f"\n{'run':>8} {'intervals':>10} {'report s':>9} {'cpu s':>7} {'peak RSS':>9} "
          f"{'html':>8} {'live first':>10} {'abort next':>10} {'view next':>10}")
    for r in results:
        rep, live = r.get("report") or {}, r.get("live") or {}
        print(f"{r['minutes']:>6}m {r['intervals_mb']:>8.0f}MB {rep.get('seconds', nan):>9.1f} "
              f"{rep.get('cpu_s', nan):>7.1f} {rep.get('peak_rss_mb', nan):>7.0f}MB "
              f"{r.get('report_html_mb') or nan:>6.1f}MB {live.get('first_s', nan):>9.2f}s "
              f"{live.get('next_s', nan):>9.3f}s {live.get('view_next_s', nan):>9.3f}s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
