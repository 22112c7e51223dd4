"""Sides measured at the same time: each Locust command against its own benchmark server, the
Locust processes pinned to one core and the servers to the other, the same steady window.

Running all sides at once is what makes their ratios worth reading on a busy machine: whatever
else the machine does during the window weighs on all sides alike (run one after the other,
background load made a ratio swing by +-15%). `measure_sides(..., repeat=3)` runs the whole set
three times and keeps each figure's median.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable


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


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def pin(locusts: list[psutil.Process], servers: list[psutil.Process]) -> bool:
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


@dataclass
class Side:
    """One Locust command, made by `cmd(host)` once its server runs (so a generated
    locustfile can name its host). `env` is added to the environment (None: the benchmark's
    own)."""

    name: str
    cmd: Callable[[str], list[str]]
    env: dict[str, str] | None = None
    figures: list[dict[str, float]] = field(default_factory=list)


# Called with {side name: pid} once the window's first sample is taken (the profiler).
DuringWindow = Callable[[dict[str, int]], None]


def _once(work: Path, sides: list[Side], warmup_s: float, window_s: float,
          during: DuringWindow | None) -> dict[str, Any]:
    with ExitStack() as stack:
        targets = {s.name: stack.enter_context(target()) for s in sides}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for side in sides:
                log = stack.enter_context((work / f"locust-{side.name}.log").open("w"))
                cmd = side.cmd(targets[side.name].url)
                env = {**os.environ, **side.env} if side.env is not None else None
                procs[side.name] = subprocess.Popen(cmd, cwd=work, stdout=log, env=env,
                                                    stderr=subprocess.STDOUT,
                                                    start_new_session=True)
            ps = {name: psutil.Process(p.pid) for name, p in procs.items()}
            pinned = pin([*ps.values()], [psutil.Process(t.proc.pid) for t in targets.values()])
            time.sleep(warmup_s)

            def sample() -> dict[str, tuple[float, int]]:
                return {name: (tree_cpu_seconds(ps[name]), targets[name].count())
                        for name in ps}

            w0, before = time.time(), sample()
            if during is not None:
                during({name: p.pid for name, p in procs.items()})
            time.sleep(max(w0 + window_s - time.time(), 0.0))
            w1, after = time.time(), sample()
        finally:
            for proc in procs.values():
                stop(proc)
    wall = w1 - w0
    out: dict[str, Any] = {"window_s": round(wall, 3), "pinned": pinned}
    for side in sides:
        cpu = after[side.name][0] - before[side.name][0]
        n = after[side.name][1] - before[side.name][1]
        figures = {"requests": n, "cpu_s": round(cpu, 3), "rps": round(n / wall, 1),
                   "locust_cpu_pct": round(100 * cpu / wall, 1),
                   "requests_per_cpu_s": round(n / cpu, 1) if cpu else 0.0,
                   "cpu_us_per_request": round(1e6 * cpu / n, 1) if n else 0.0}
        side.figures.append(figures)
        out[side.name] = figures
    return out


def measure_sides(work: Path, sides: list[Side], *, warmup_s: float, window_s: float,
                  repeat: int = 1, during: DuringWindow | None = None) -> dict[str, Any]:
    """Every side's figures over the same window, `repeat` times; each figure's median, the
    runs themselves under `runs`, and `load1` (the load average before and after)."""
    load_before = os.getloadavg()[0]
    runs = [_once(work, sides, warmup_s, window_s, during if k == 0 else None)
            for k in range(repeat)]
    out: dict[str, Any] = {"repeat": repeat, "runs": runs,
                           "load1": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                           "pinned": all(r["pinned"] for r in runs)}
    for side in sides:
        out[side.name] = {key: round(statistics.median(f[key] for f in side.figures), 1)
                          for key in side.figures[0]}
    return out


def median_ratio(result: dict[str, Any], top: str, bottom: str,
                 key: str = "requests_per_cpu_s") -> float:
    """The median over the runs of top/bottom (per run, so both come from the same window)."""
    ratios = [r[top][key] / r[bottom][key] for r in result["runs"] if r[bottom][key]]
    return round(statistics.median(ratios), 3) if ratios else 0.0
