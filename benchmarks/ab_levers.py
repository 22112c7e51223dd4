"""A/B of the request-path levers of issue 20, each measured against the same code without it,
all sides in the same window (benchmarks/sides.py), repeated (median).

Each side runs a copy of a source tree: this checkout with one lever taken out, or a git ref.
- closed model (20 users, no think time): all levers (twice: an A/A pair tells the noise),
  without the one-send `sendall` (a per-socket poll() keep-alive check was an A/B side
  here too, and was not kept: benchmarks/ab_request_path.py still measures it),
  the code of `--base` (before the levers),
  and a plain FastHttpUser;
- open model (`--rate` arrivals/s): all levers, with the old scheduler hand-off (gevent
  `Queue.get(timeout=0.5)`, from `--old-queue`), the code of `--base`, and a plain
  FastHttpUser paced to the same rate.

    .venv/bin/python benchmarks/ab_levers.py --repeat 3 --json ab.json
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from run import (
    EFF_USERS,
    EFF_WARMUP_S,
    EFF_WINDOW_S,
    PACE_PER_USER,
    Code,
    generated_side,
    machine,
    plain_side,
    unpack,
)
from sides import ROOT, Side, measure_sides, median_ratio

CLIENT = "shop_loadtest/runtime/client.py"


def copy_of_checkout(work: Path, name: str) -> Path:
    folder = work / name
    shutil.copytree(ROOT / "shop_loadtest", folder / "shop_loadtest",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def without(folder: Path, path: str, pattern: str, replacement: str) -> Path:
    """`folder` with one definition renamed away in `path`, so the base class's is used."""
    file = folder / path
    text, n = re.subn(pattern, replacement, file.read_text())
    if n != 1:
        raise RuntimeError(f"{path}: {pattern!r} matched {n} times")
    file.write_text(text)
    return folder


def with_files_of(folder: Path, ref: str, paths: list[str]) -> Path:
    for path in paths:
        shown = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout
        (folder / path).write_text(shown)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=800.0)
    parser.add_argument("--base", default="main", help="git ref before the levers")
    parser.add_argument("--old-queue", default="0178ee6",
                        help="git ref whose runtime/arrivals.py and users.py have the old hand-off")
    parser.add_argument("--only", choices=["closed", "open"], action="append")
    parser.add_argument("--sides", nargs="*", default=None,
                        help="closed-model sides to keep (all sides on one core saturate it "
                             "and skew the shares: 4 at most is advisable)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    only = set(args.only or ["closed", "open"])
    results: dict[str, Any] = {"machine": machine()}
    duration = EFF_WARMUP_S + EFF_WINDOW_S + 10.0
    with tempfile.TemporaryDirectory(prefix="slt-ab-") as tmp:
        work = Path(tmp)
        base = unpack(args.base, work)
        head = copy_of_checkout(work, "head")
        if "closed" in only:
            no_send = without(copy_of_checkout(work, "no-send"), CLIENT,
                              r"def sendall\(", "def _lean_sendall(")
            sides: list[Side] = [
                generated_side(work, "all", Code(head), model="users", level=EFF_USERS,
                               duration=duration),
                generated_side(work, "all-again", Code(head), model="users", level=EFF_USERS,
                               duration=duration),
                generated_side(work, "no-send", Code(no_send), model="users",
                               level=EFF_USERS, duration=duration),
                generated_side(work, "base", Code(base), model="users", level=EFF_USERS,
                               duration=duration),
                plain_side("plain", "plain_locustfile.py", EFF_USERS, duration),
            ]
            if args.sides:
                sides = [side for side in sides if side.name in args.sides]
            closed = measure_sides(work, sides, warmup_s=EFF_WARMUP_S, window_s=EFF_WINDOW_S,
                                   repeat=args.repeat)
            kept = {side.name for side in sides}
            closed["ratios"] = {f"{a}/{b}": median_ratio(closed, a, b) for a, b in [
                ("all", "all-again"), ("all", "no-send"), ("all", "no-poll"), ("all", "base"),
                ("all", "plain"), ("no-poll", "base"), ("base", "plain")]
                if a in kept and b in kept}
            results["closed"] = closed
        if "open" in only:
            old_queue = with_files_of(copy_of_checkout(work, "old-queue"), args.old_queue,
                                      ["shop_loadtest/runtime/arrivals.py",
                                       "shop_loadtest/runtime/users.py"])
            users = round(args.rate / PACE_PER_USER)
            sides = [
                generated_side(work, "all-open", Code(head), model="arrival_rate",
                               level=args.rate, duration=duration),
                generated_side(work, "old-queue", Code(old_queue), model="arrival_rate",
                               level=args.rate, duration=duration),
                generated_side(work, "base-open", Code(base), model="arrival_rate",
                               level=args.rate, duration=duration),
                plain_side("plain-paced", "plain_paced_locustfile.py", users, duration,
                           env={"SLT_BENCH_PACE": f"{PACE_PER_USER:g}"}),
            ]
            opened = measure_sides(work, sides, warmup_s=EFF_WARMUP_S, window_s=EFF_WINDOW_S,
                                   repeat=args.repeat)
            opened["rate"] = args.rate
            opened["cost_ratios"] = {f"{a}/{b}": median_ratio(opened, a, b,
                                                              key="cpu_us_per_request")
                                     for a, b in [("all-open", "plain-paced"),
                                                  ("old-queue", "plain-paced"),
                                                  ("base-open", "plain-paced"),
                                                  ("all-open", "old-queue")]}
            results["open"] = opened
    for key in ("closed", "open"):
        if key not in results:
            continue
        r = results[key]
        print(f"\n{key} (median of {r['repeat']}; load average {r['load1'][0]:g} -> "
              f"{r['load1'][1]:g}{'' if r['pinned'] else '; NOT pinned'})")
        for name, figures in r.items():
            if isinstance(figures, dict) and "cpu_us_per_request" in figures:
                print(f"  {name:12} {figures['requests_per_cpu_s']:7.0f} req/CPU-s  "
                      f"{figures['cpu_us_per_request']:6.1f} CPU-us/req  ({figures['rps']:.0f} "
                      f"req/s, CPU {figures['locust_cpu_pct']:.0f}%)")
        for name, ratio in (r.get("ratios") or r.get("cost_ratios") or {}).items():
            what = "req/CPU-s" if "ratios" in r else "CPU-us/req"
            print(f"  {name:24} {ratio:.3f} ({what})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
