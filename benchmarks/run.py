"""`make bench`: how fast, how faithful and how exact the load engine is, on this machine.

(a) generator efficiency: requests per CPU-second of a generated locustfile (one GET journey,
    recording on) against a hand-written FastHttpUser locustfile (plain_locustfile.py) doing
    the same request, same fast target, measured over the same steady window; a third side
    (plain_lean_locustfile.py) is the hand-written file with the runtime's cookie jar;
(b) rate fidelity: an open-model run at 100, 1000 and 3000 journeys/s, counted by the server
    per stage and per second;
(c) percentile accuracy: p50/p95/p99 of a run against a server that answers after a uniform
    10..50 ms delay, compared with the delays the server actually served.

Load goes only to 127.0.0.1; every run is bounded in time. Not part of the test suite.
Run: `make bench` (or `.venv/bin/python benchmarks/run.py [--only a|b|c|d] [--json FILE]`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
PATH = "/api/products"
NAME = "GET /api/products"


# --- the machine and the target --------------------------------------------------------------

def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "locust": version("locust"), "os": platform.platform()}


@dataclass
class Target:
    url: str
    proc: subprocess.Popen[str]

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as resp:
            return bytes(resp.read())

    def count(self) -> int:
        return int(self.get("/__count"))

    def stats(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/__stats")))

    def reset(self) -> None:
        self.get("/__reset")

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)


@contextmanager
def target(*args: str) -> Iterator[Target]:
    """benchmarks/server.py in its own process on a free loopback port."""
    proc = subprocess.Popen([PY, "-u", str(HERE / "server.py"), "--port", "0", *args],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if not found:
            raise RuntimeError(f"benchmark server did not start: {line!r}")
        yield Target(found.group(0), proc)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scenario(folder: Path, name: str, host: str, *, model: str,
             stages: list[tuple[str, float, float]], **load: Any) -> Path:
    """A one-request journey scenario; stages are (name, seconds, target)."""
    data = {
        "name": name,
        "target": {"host": host, "health_path": "/__health"},
        "load": {"model": model, **load,
                 "stages": [{"name": n, "duration": d, "target": t} for n, d, t in stages]},
        "journeys": [{"name": "get", "steps": [{"request": f"GET {PATH}", "name": NAME}]}],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tree_cpu_seconds(proc: psutil.Process) -> float:
    """user + system CPU seconds of a process and its live children."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def shop_loadtest_run(path: Path, host: str, out: Path, *extra: str,
                      timeout: float = 120.0) -> tuple[int, dict[str, Any]]:
    result = subprocess.run([PY, "-m", "shop_loadtest", "run", str(path), "--host", host,
                             "--out", str(out), *extra], cwd=ROOT, capture_output=True,
                            text=True, timeout=timeout)
    summary_path = out / "summary.json"
    if not summary_path.exists():
        raise RuntimeError(f"run failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.returncode, json.loads(summary_path.read_text())


def doors_open(run_dir: Path) -> float:
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["kind"] == "start":
            return float(event["ts"])
    raise RuntimeError("no start event")


# --- (a) generator efficiency ----------------------------------------------------------------

EFF_USERS = 20
EFF_WARMUP_S = 4.0
EFF_WINDOW_S = 15.0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _pin(locusts: list[psutil.Process], servers: list[psutil.Process]) -> bool:
    """The Locust processes share core 0 and the servers core 1 (when there are two cores
    and the platform allows it), so all sides see the same machine."""
    try:
        if len(os.sched_getaffinity(0)) < 2:
            return False
        first, second, *_ = sorted(os.sched_getaffinity(0))
        for proc in locusts:
            proc.cpu_affinity([first])
        for proc in servers:
            proc.cpu_affinity([second])
    except (AttributeError, OSError, psutil.Error):
        return False
    return True


def bench_efficiency(work: Path) -> dict[str, Any]:
    """Requests each server counted per CPU-second of its Locust process tree, over the same
    steady window (after warm-up, so imports and spawning are not counted).

    The locustfiles run at the same time, each against its own server, the Locust processes
    pinned to one core: whatever else the machine does during the window weighs on all
    alike (run one after the other, background load made the ratio swing by +-15%).
    """
    duration = EFF_WARMUP_S + EFF_WINDOW_S + 10.0
    with target() as gen_target, target() as plain_target, target() as lean_target:
        path = scenario(work, "efficiency", gen_target.url, model="users",
                        stages=[("hold", 0, EFF_USERS), ("hold", duration, EFF_USERS)])
        generated = work / "efficiency_locustfile.py"
        subprocess.run([PY, "-m", "shop_loadtest", "generate", str(path), "-o", str(generated)],
                       cwd=ROOT, check=True, capture_output=True)
        common = ["--headless", "--only-summary"]
        runs = {
            "generated": ([PY, "-m", "locust", "-f", str(generated), *common,
                           "--host", gen_target.url, "--slt-results", str(work / "eff")],
                          gen_target),
            "plain": ([PY, "-m", "locust", "-f", str(HERE / "plain_locustfile.py"), *common,
                       "--host", plain_target.url, "-u", str(EFF_USERS),
                       "-r", str(EFF_USERS * 10), "-t", f"{duration:.0f}s"], plain_target),
            "plain-lean": ([PY, "-m", "locust", "-f", str(HERE / "plain_lean_locustfile.py"),
                            *common, "--host", lean_target.url, "-u", str(EFF_USERS),
                            "-r", str(EFF_USERS * 10), "-t", f"{duration:.0f}s"], lean_target),
        }
        procs: dict[str, subprocess.Popen[bytes]] = {}
        logs = []
        try:
            for name, (cmd, _) in runs.items():
                log = (work / f"locust-{name}.log").open("w")
                logs.append(log)
                procs[name] = subprocess.Popen(cmd, cwd=work, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True)
            ps = {name: psutil.Process(p.pid) for name, p in procs.items()}
            pinned = _pin([*ps.values()], [psutil.Process(t.proc.pid) for _, t in runs.values()])
            time.sleep(EFF_WARMUP_S)

            def sample() -> dict[str, tuple[float, int, float]]:
                return {name: (tree_cpu_seconds(ps[name]), tgt.count(), tgt.cpu_seconds())
                        for name, (_, tgt) in runs.items()}

            w0, before = time.time(), sample()
            time.sleep(EFF_WINDOW_S)
            w1, after = time.time(), sample()
        finally:
            for proc in procs.values():
                _stop(proc)
            for log in logs:
                log.close()
    wall = w1 - w0
    out: dict[str, Any] = {"window_s": round(wall, 3), "users": EFF_USERS, "pinned": pinned}
    for name in runs:
        cpu = after[name][0] - before[name][0]
        n = after[name][1] - before[name][1]
        out[name] = {"requests": n, "cpu_s": round(cpu, 3), "rps": round(n / wall, 1),
                     "locust_cpu_pct": round(100 * cpu / wall, 1),
                     "server_cpu_pct": round(100 * (after[name][2] - before[name][2]) / wall, 1),
                     "requests_per_cpu_s": round(n / cpu, 1)}
    out["ratio"] = round(out["generated"]["requests_per_cpu_s"]
                         / out["plain"]["requests_per_cpu_s"], 3)
    out["ratio_lean"] = round(out["generated"]["requests_per_cpu_s"]
                              / out["plain-lean"]["requests_per_cpu_s"], 3)
    return out


# --- (b) rate fidelity -----------------------------------------------------------------------

RATES = (100, 1000, 3000)
RATE_HOLD_S = 10.0


def _server_counts(stats: dict[str, Any], start: float, end: float) -> int:
    lo, hi = math.ceil(start * 1000.0), math.ceil(end * 1000.0)
    return sum(n for ms, n in stats["per_ms"].items() if lo <= int(ms) < hi)


def bench_fidelity(work: Path, workers: int = 1) -> dict[str, Any]:
    stages: list[tuple[str, float, float]] = []
    for rate in RATES:
        stages += [(f"{rate}/s", 0, rate), (f"{rate}/s", RATE_HOLD_S, rate)]
    with target() as tgt:
        path = scenario(work, f"fidelity-{workers}", tgt.url, model="arrival_rate",
                        stages=stages)
        out_dir = work / f"fidelity-{workers}"
        code, summary = shop_loadtest_run(path, tgt.url, out_dir, "--workers", str(workers))
        stats = tgt.stats()
    t0 = doors_open(out_dir)
    # Requests reach the server a fraction of a millisecond after they are due; a small shift
    # keeps an arrival due at a second's boundary in that second.
    shift = 0.0005
    per_stage = []
    for i, rate in enumerate(RATES):
        start = i * RATE_HOLD_S
        got = _server_counts(stats, t0 + start + shift, t0 + start + RATE_HOLD_S + shift)
        seconds = [_server_counts(stats, t0 + start + k + shift, t0 + start + k + 1 + shift)
                   for k in range(int(RATE_HOLD_S))]
        per_stage.append({
            "rate": rate, "target": rate * RATE_HOLD_S, "server": got,
            "error_pct": round(100 * (got - rate * RATE_HOLD_S) / (rate * RATE_HOLD_S), 3),
            "per_second_min": min(seconds), "per_second_max": max(seconds),
            "per_second_dev_pct": [round(100 * (min(seconds) - rate) / rate, 2),
                                   round(100 * (max(seconds) - rate) / rate, 2)],
        })
    return {"workers": workers, "exit_code": code, "verdict": summary["verdict"],
            "reasons": summary["reasons"], "stages": per_stage,
            "total_target": sum(r * RATE_HOLD_S for r in RATES), "total_server": stats["count"],
            "recorded": summary["requests"], "arrivals": summary["arrivals"],
            "generator": {k: summary["generator"][k]
                          for k in ("cpu_max_pct", "cpu_mean_pct", "loop_lag_max_ms")}}


# --- (d) scaling: 1 vs 2 load processes ----------------------------------------------------

SCALE_USERS, SCALE_HOLD_S = 40, 8.0


def bench_scaling(work: Path) -> dict[str, Any]:
    """Closed model, no think time: as many requests as the processes can make. Efficiency is
    rps(2 processes) / (2 x rps(1 process)); on a 2-core machine the target shares the cores."""
    out: dict[str, Any] = {}
    with target() as tgt:
        path = scenario(work, "scaling", tgt.url, model="users",
                        stages=[("hold", 0, SCALE_USERS), ("hold", SCALE_HOLD_S, SCALE_USERS)])
        for workers in (1, 2):
            code, summary = shop_loadtest_run(path, tgt.url, work / f"scaling-{workers}",
                                              "--workers", str(workers))
            out[str(workers)] = {"rps": summary["rps"], "requests": summary["requests"],
                                 "verdict": summary["verdict"], "exit_code": code}
    out["efficiency"] = round(out["2"]["rps"] / (2 * out["1"]["rps"]), 3)
    return out


# --- (c) percentile accuracy -----------------------------------------------------------------

DELAY_MS = (10.0, 50.0)
PCT_RATE, PCT_HOLD_S = 300, 10.0


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100.0 * len(ordered)) - 1, 0)]


def bench_percentiles(work: Path) -> dict[str, Any]:
    with target("--delay-ms", f"{DELAY_MS[0]:g}:{DELAY_MS[1]:g}") as tgt:
        path = scenario(work, "percentiles", tgt.url, model="arrival_rate",
                        stages=[("hold", 0, PCT_RATE), ("hold", PCT_HOLD_S, PCT_RATE)])
        out_dir = work / "percentiles"
        code, summary = shop_loadtest_run(path, tgt.url, out_dir)
        served = tgt.stats()["served_ms"]
    (endpoint,) = summary["endpoints"]
    rows = {}
    for key, q in (("p50_ms", 50.0), ("p95_ms", 95.0), ("p99_ms", 99.0)):
        true = nearest_rank(served, q)
        ours = float(endpoint[key])
        rows[key] = {"server": round(true, 3), "ours": ours, "diff_ms": round(ours - true, 3),
                     "diff_pct": round(100 * (ours - true) / true, 2)}
    return {"exit_code": code, "verdict": summary["verdict"], "requests": endpoint["requests"],
            "served": len(served), "percentiles": rows}


# --- report ----------------------------------------------------------------------------------

def show(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
          f"Locust {m['locust']}, {m['os']}")
    if "efficiency" in results:
        e = results["efficiency"]
        print("\n(a) generator efficiency: requests per CPU-second of the Locust process")
        for name in ("plain", "plain-lean", "generated"):
            r = e[name]
            print(f"  {name:10} {r['requests_per_cpu_s']:7.0f} req/CPU-s  ({r['rps']:.0f} req/s, "
                  f"Locust CPU {r['locust_cpu_pct']:.0f}%, server CPU "
                  f"{r['server_cpu_pct']:.0f}%)")
        print(f"  ratio generated/plain: {e['ratio']:.3f}  (target >= 0.95)")
        print(f"  ratio generated/plain-lean: {e['ratio_lean']:.3f}  (the same cookie jar on "
              "both sides: what the journey layer and the recording cost)")
    for key in ("fidelity", "fidelity_2"):
        if key not in results:
            continue
        f = results[key]
        print(f"\n(b) rate fidelity, --workers {f['workers']}: server-counted arrivals "
              f"(verdict {f['verdict']}, exit {f['exit_code']})")
        for s in f["stages"]:
            lo, hi = s["per_second_dev_pct"]
            print(f"  {s['rate']:5}/s: {s['server']:6} of {s['target']:7.0f} "
                  f"({s['error_pct']:+.2f}%); per second {s['per_second_min']}..."
                  f"{s['per_second_max']} ({lo:+.1f}%..{hi:+.1f}%)")
        a = f["arrivals"] or {}
        g = f["generator"]
        print(f"  arrivals due {a.get('due')}, dropped {a.get('dropped')}, late "
              f"{a.get('late')} (max {a.get('late_max_ms')} ms); generator CPU max "
              f"{g['cpu_max_pct']}%, loop lag max {g['loop_lag_max_ms']} ms")
    if "percentiles" in results:
        p = results["percentiles"]
        print(f"\n(c) percentile accuracy, uniform {DELAY_MS[0]:g}..{DELAY_MS[1]:g} ms server "
              f"delay, {p['requests']} requests (server served {p['served']})")
        for key, r in p["percentiles"].items():
            print(f"  {key[:-3]:4} server {r['server']:8.3f} ms  ours {r['ours']:8.3f} ms  "
                  f"diff {r['diff_ms']:+.3f} ms ({r['diff_pct']:+.2f}%)")


def show_scaling(results: dict[str, Any]) -> None:
    if "scaling" not in results:
        return
    r = results["scaling"]
    print(f"\n(d) scaling, closed model {SCALE_USERS} users, no think time")
    for w in ("1", "2"):
        print(f"  --workers {w}: {r[w]['rps']:8.0f} req/s (verdict {r[w]['verdict']})")
    print(f"  scaling efficiency rps(2)/(2 x rps(1)): {r['efficiency']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["a", "b", "c", "d"], action="append")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()
    only = set(args.only or ["a", "b", "c", "d"])
    results: dict[str, Any] = {"machine": machine()}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="slt-bench-") as tmp:
        work = Path(tmp)
        if "a" in only:
            results["efficiency"] = bench_efficiency(work)
        if "b" in only:
            results["fidelity"] = bench_fidelity(work, workers=1)
            results["fidelity_2"] = bench_fidelity(work, workers=2)
        if "c" in only:
            results["percentiles"] = bench_percentiles(work)
        if "d" in only:
            results["scaling"] = bench_scaling(work)
    results["elapsed_s"] = round(time.monotonic() - began, 1)
    show(results)
    show_scaling(results)
    print(f"\n({results['elapsed_s']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
