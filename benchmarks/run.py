"""`make bench`: how fast, how faithful and how exact the load engine is, on this machine.

(a) generator efficiency: requests per CPU-second of a generated locustfile (one GET journey,
    recording on) against a hand-written FastHttpUser locustfile (plain_locustfile.py) doing
    the same request, same fast target, measured over the same steady window; a third side
    (plain_lean_locustfile.py) is the hand-written file with the runtime's cookie jar;
(b) rate fidelity: an open-model run at 100, 1000 and 3000 journeys/s, counted by the server
    per stage and per second;
(c) percentile accuracy: p50/p95/p99 of a run against a server that answers after a uniform
    10..50 ms delay, compared with the delays the server actually served;
(d) scaling: 1 vs 2 load processes;
(e) the open model: CPU-us per request of a generated open-model locustfile at 800 arrivals/s
    against a hand-written FastHttpUser paced to the same rate, in the same window;
(p) where the CPU goes: a py-spy breakdown of the generated closed- and open-model processes
    during the first window of (a) and (e) (benchmarks/cpu_profile.py).

(a) and (e) run every side at the same time, pinned to one core, `--repeat` times (median;
default 3). `--before REF` adds a side running the code of git ref REF (an A/B of a change).

Load goes only to 127.0.0.1; every run is bounded in time. Not part of the test suite.
Run: `make bench` (or `.venv/bin/python benchmarks/run.py [--only a|b|c|d|e] [--repeat N]
[--before REF] [--json FILE]`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml
from cpu_profile import Breakdown, profile_pid, render
from sides import HERE, PY, ROOT, Side, measure_sides, median_ratio, target

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
    # Other engineers' work on the same cores: the figures per CPU-second move with it; the
    # ratios of sides measured in the same window much less.
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "locust": version("locust"), "os": platform.platform(),
            "load1_at_start": round(os.getloadavg()[0], 2)}


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


# --- (a) generator efficiency and (e) the open model -----------------------------------------

EFF_USERS = 20
EFF_WARMUP_S = 4.0
EFF_WINDOW_S = 15.0
OPEN_RATE = 800.0
PACE_PER_USER = 20.0  # the plain paced side: OPEN_RATE / PACE_PER_USER users
PROFILE_S = 8


@dataclass
class Code:
    """Which shop_loadtest the generated sides run: this checkout (`before` None), or the
    code of a git ref unpacked in `before` (an A/B of a change, in the same window)."""

    before: Path | None = None

    def python(self) -> list[str]:
        # -S: no site-packages .pth, so the editable install of this checkout is not on the
        # path; PYTHONPATH (env) puts the ref's code first and the venv's packages after it.
        return [PY, "-S"] if self.before else [PY]

    def env(self) -> dict[str, str] | None:
        if self.before is None:
            return None
        import sysconfig
        return {"PYTHONPATH": f"{self.before}{os.pathsep}{sysconfig.get_paths()['purelib']}"}


def unpack(ref: str, work: Path) -> Path:
    """The tree of git ref `ref`, as files (no worktree, no change to the repository)."""
    folder = work / "before"
    folder.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def generated_side(work: Path, name: str, code: Code, *, model: str, level: float,
                   duration: float) -> Side:
    def cmd(host: str) -> list[str]:
        path = scenario(work, name, host, model=model,
                        stages=[("hold", 0, level), ("hold", duration, level)])
        out = work / f"{name}_locustfile.py"
        subprocess.run([*code.python(), "-m", "shop_loadtest", "generate", str(path), "-o",
                        str(out)], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, **(code.env() or {})})
        return [*code.python(), "-m", "locust", "-f", str(out), "--headless", "--only-summary",
                "--host", host, "--slt-results", str(work / f"results-{name}")]
    return Side(name, cmd, env=code.env())


def plain_side(name: str, locustfile: str, users: int, duration: float,
               env: dict[str, str] | None = None) -> Side:
    return Side(name, lambda host: [PY, "-m", "locust", "-f", str(HERE / locustfile),
                                    "--headless", "--only-summary", "--host", host, "-u",
                                    str(users), "-r", str(users * 10), "-t",
                                    f"{duration:.0f}s"], env=env)


def _profiler(profiles: dict[str, Breakdown], names: tuple[str, ...]) -> Any:
    """Profile the named sides during the first window, one after the other in threads."""
    import threading

    def during(pids: dict[str, int]) -> None:
        def run() -> None:
            for name in names:
                if name in pids:
                    profiles[name] = profile_pid(pids[name], PROFILE_S / len(names))
        threading.Thread(target=run, daemon=True).start()
    return during


def bench_efficiency(work: Path, repeat: int, before: Path | None,
                     profiles: dict[str, Breakdown]) -> dict[str, Any]:
    """Requests each server counted per CPU-second of its Locust process tree, over the same
    steady window (after warm-up, so imports and spawning are not counted): closed model, 20
    users, no think time. The generated side is profiled during the first window."""
    duration = EFF_WARMUP_S + EFF_WINDOW_S + 10.0
    sides = [
        generated_side(work, "generated", Code(), model="users", level=EFF_USERS,
                       duration=duration),
        plain_side("plain", "plain_locustfile.py", EFF_USERS, duration),
        plain_side("plain-lean", "plain_lean_locustfile.py", EFF_USERS, duration),
    ]
    if before is not None:
        sides.append(generated_side(work, "before", Code(before), model="users",
                                    level=EFF_USERS, duration=duration))
    out = measure_sides(work, sides, warmup_s=EFF_WARMUP_S, window_s=EFF_WINDOW_S,
                        repeat=repeat, during=_profiler(profiles, ("generated",)))
    out["users"] = EFF_USERS
    out["ratio"] = median_ratio(out, "generated", "plain")
    out["ratio_lean"] = median_ratio(out, "generated", "plain-lean")
    if before is not None:
        out["ratio_before"] = median_ratio(out, "generated", "before")
        out["ratio_before_plain"] = median_ratio(out, "before", "plain")
    return out


def bench_open(work: Path, repeat: int, before: Path | None,
               profiles: dict[str, Breakdown]) -> dict[str, Any]:
    """The open model at OPEN_RATE arrivals/s (one request a journey) against a plain
    FastHttpUser paced to the same rate: CPU-us per request, the same window."""
    duration = EFF_WARMUP_S + EFF_WINDOW_S + 10.0
    users = round(OPEN_RATE / PACE_PER_USER)
    sides = [
        generated_side(work, "generated-open", Code(), model="arrival_rate", level=OPEN_RATE,
                       duration=duration),
        plain_side("plain-paced", "plain_paced_locustfile.py", users, duration,
                   env={"SLT_BENCH_PACE": f"{PACE_PER_USER:g}"}),
    ]
    if before is not None:
        sides.append(generated_side(work, "before-open", Code(before), model="arrival_rate",
                                    level=OPEN_RATE, duration=duration))
    out = measure_sides(work, sides, warmup_s=EFF_WARMUP_S, window_s=EFF_WINDOW_S,
                        repeat=repeat, during=_profiler(profiles, ("generated-open",)))
    out["rate"] = OPEN_RATE
    # CPU per request: generated over plain, so 1.0 is parity and lower is better
    out["cost_ratio"] = median_ratio(out, "generated-open", "plain-paced",
                                     key="cpu_us_per_request")
    if before is not None:
        out["cost_ratio_before"] = median_ratio(out, "before-open", "plain-paced",
                                                key="cpu_us_per_request")
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
          f"Locust {m['locust']}, {m['os']}, load average {m['load1_at_start']:g} at the start"
          f"{' (a busy machine)' if m['load1_at_start'] > 0.5 * (m['cores'] or 1) else ''}")
    if "efficiency" in results:
        e = results["efficiency"]
        print(f"\n(a) generator efficiency, closed model {e['users']} users: requests per "
              f"CPU-second of the Locust process (median of {e['repeat']}; load average "
              f"{e['load1'][0]:g} -> {e['load1'][1]:g}{'' if e['pinned'] else '; NOT pinned'})")
        for name in ("plain", "plain-lean", "generated", "before"):
            if name in e:
                _side_line(name, e[name])
        print(f"  ratio generated/plain: {e['ratio']:.3f}  (>= 1.0 always; goal >= 1.3)")
        print(f"  ratio generated/plain-lean: {e['ratio_lean']:.3f}  (the same cookie jar on "
              "both sides: what the journey layer and the recording cost)")
        if "ratio_before" in e:
            print(f"  ratio generated/before: {e['ratio_before']:.3f}  (before/plain "
                  f"{e['ratio_before_plain']:.3f})")
    if "open" in results:
        o = results["open"]
        print(f"\n(e) the open model at {o['rate']:g} arrivals/s: CPU-us per request (median of "
              f"{o['repeat']}; load average {o['load1'][0]:g} -> {o['load1'][1]:g})")
        for name in ("plain-paced", "generated-open", "before-open"):
            if name in o:
                _side_line(name, o[name])
        print(f"  CPU per request generated/plain paced: {o['cost_ratio']:.3f}  (1.0 is parity;"
              " target <= 1.05)")
        if "cost_ratio_before" in o:
            print(f"  before/plain paced: {o['cost_ratio_before']:.3f}")
    profiles = results.get("profiles") or {}
    if profiles:
        print("\n(p) where a request's CPU goes (py-spy, first window of (a) and (e))")
        for lines in profiles.values():
            print("\n".join(lines))
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


def _side_line(name: str, r: dict[str, Any]) -> None:
    print(f"  {name:14} {r['requests_per_cpu_s']:7.0f} req/CPU-s  {r['cpu_us_per_request']:6.1f} "
          f"CPU-us/req  ({r['rps']:.0f} req/s, Locust CPU {r['locust_cpu_pct']:.0f}%)")


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
    parser.add_argument("--only", choices=["a", "b", "c", "d", "e"], action="append")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a) and (e); medians")
    parser.add_argument("--before", default=None,
                        help="git ref: add a side running that code to (a) and (e)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()
    only = set(args.only or ["a", "b", "c", "d", "e"])
    results: dict[str, Any] = {"machine": machine()}
    began = time.monotonic()
    profiles: dict[str, Breakdown] = {}
    with tempfile.TemporaryDirectory(prefix="slt-bench-") as tmp:
        work = Path(tmp)
        before = unpack(args.before, work) if args.before else None
        if "a" in only:
            results["efficiency"] = bench_efficiency(work, args.repeat, before, profiles)
        if "e" in only:
            results["open"] = bench_open(work, args.repeat, before, profiles)
        if "b" in only:
            results["fidelity"] = bench_fidelity(work, workers=1)
            results["fidelity_2"] = bench_fidelity(work, workers=2)
        if "c" in only:
            results["percentiles"] = bench_percentiles(work)
        if "d" in only:
            results["scaling"] = bench_scaling(work)
    results["elapsed_s"] = round(time.monotonic() - began, 1)
    results["profiles"] = {name: render(name, b) for name, b in profiles.items()}
    results["profile_data"] = {name: b.to_json() for name, b in profiles.items()}
    show(results)
    show_scaling(results)
    print(f"\n({results['elapsed_s']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
