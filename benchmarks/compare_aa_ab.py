"""How often does `compare` cry wolf, and how often does it catch a real regression?

N A/A pairs (the same loopback server twice) and N A/B pairs (B: the same server with 20%
added to one endpoint's delay), each run a few seconds of real load through
`shop-loadtest run`; every pair is judged by `compare_runs` with its default thresholds.
Prints the false-alarm rate (A/A pairs judged `regression`) and the detection rate (A/B pairs
judged `regression`), and how many were `inconclusive` (a busy machine, a saturated generator).
Each run's machine health is printed too: on a shared machine most runs can be busy.

Not a pass/fail test: the figures depend on the machine. Load goes only to 127.0.0.1; every
run is bounded (a few seconds).

    .venv/bin/python benchmarks/compare_aa_ab.py --pairs 20 [--keep DIR] [--json FILE]
    .venv/bin/python benchmarks/compare_aa_ab.py --rejudge DIR   # judge kept runs again

`--rejudge` reads the folders a `--keep` run left, so another version of `compare` (an older
checkout on PYTHONPATH) can be judged on exactly the same pairs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH: --rejudge can judge with another checkout

from tests.servers import Handler, LoopbackServer  # noqa: E402  (the test suite's servers)

# path -> (endpoint name, server delay in seconds). B adds SLOWDOWN to SLOWED only.
ENDPOINTS = {"/api/products": ("GET /api/products", 0.010),
             "/api/products/1": ("GET /api/products/{id}", 0.020),
             "/api/checkout": ("POST /api/checkout", 0.050)}
SLOWED, SLOWDOWN = "/api/checkout", 0.20
RATE, SECONDS = 20, 5  # journeys/s (3 requests each), seconds held


class DelayServer(LoopbackServer):
    """A loopback HTTP server answering each path after its delay (times `factor` for one)."""

    def __init__(self, slowed_factor: float = 1.0) -> None:
        delays = {path: delay * (slowed_factor if path == SLOWED else 1.0)
                  for path, (_, delay) in ENDPOINTS.items()}

        class Delaying(Handler):
            def _answer(self) -> None:
                self.body()
                time.sleep(delays.get(self.path.split("?")[0], 0.0))
                self.reply(200, b'{"items":[{"id":1}],"ok":true}')

            do_GET = do_POST = _answer

        super().__init__(Delaying)


def scenario(host: str) -> dict[str, Any]:
    steps = [{"request": f"{'POST' if path == SLOWED else 'GET'} {path}", "name": name}
             | ({"json": {"email": "a@example.com"}} if path == SLOWED else {})
             for path, (name, _) in ENDPOINTS.items()]
    return {"name": "aa-ab", "target": {"host": host},
            "load": {"model": "arrival_rate",
                     "stages": [{"name": "start", "duration": 0, "target": RATE},
                                {"name": "hold", "duration": SECONDS, "target": RATE}]},
            "journeys": [{"name": "shop", "steps": steps}]}


def one_run(folder: Path, slowed_factor: float) -> Path:
    with DelayServer(slowed_factor) as server:
        spec = folder.with_suffix(".yaml")
        spec.write_text(yaml.safe_dump(scenario(server.url)))
        subprocess.run([sys.executable, "-m", "shop_loadtest", "run", str(spec), "--out",
                        str(folder)], cwd=ROOT, capture_output=True, timeout=180)
    return folder


def judge(base: Path, new: Path, **options: Any) -> tuple[str, str]:
    from shop_loadtest.compare import compare_runs
    from shop_loadtest.results import load_run

    c = compare_runs(load_run(base), load_run(new), **options)
    return c.verdict, (c.reasons[0] if c.reasons else "")


def record(keep: Path, pairs: int) -> None:
    """base_i, aa_i (the same server) and ab_i (SLOWED 20% slower), in turn."""
    for i in range(pairs):
        for name, factor in (("base", 1.0), ("aa", 1.0), ("ab", 1.0 + SLOWDOWN)):
            folder = keep / f"{i:03d}-{name}"
            if not (folder / "run.json").exists():
                one_run(folder, factor)
        print(f"pair {i + 1}/{pairs} recorded", file=sys.stderr, flush=True)


def rejudge(keep: Path, **options: Any) -> dict[str, Any]:
    results: dict[str, list[tuple[str, str]]] = {"aa": [], "ab": []}
    indexes = sorted({p.name.split("-")[0] for p in keep.iterdir() if p.is_dir()})
    for i in indexes:
        base = keep / f"{i}-base"
        for kind in ("aa", "ab"):
            new = keep / f"{i}-{kind}"
            if (base / "run.json").exists() and (new / "run.json").exists():
                results[kind].append(judge(base, new, **options))
    aa, ab = (Counter(v for v, _ in results[k]) for k in ("aa", "ab"))
    return {
        "runs_busy": busy_runs(keep),
        "pairs": {"aa": len(results["aa"]), "ab": len(results["ab"])},
        "false_alarms": aa["regression"], "detections": ab["regression"],
        "aa": dict(aa), "ab": dict(ab),
        "aa_reasons": [r for v, r in results["aa"] if v != "ok"],
        "ab_missed": [r for v, r in results["ab"] if v != "regression"],
    }


def busy_runs(keep: Path) -> str:
    """`busy machine` runs of all runs kept (judge/machine.py), when this compare has it."""
    from shop_loadtest import results

    if not hasattr(results, "MACHINE_COLUMNS"):
        return "n/a (this version of compare reads no machine samples)"
    from shop_loadtest.judge.machine import machine_health
    from shop_loadtest.results import load_run

    runs = [p for p in keep.iterdir() if (p / "run.json").exists()]
    busy = sum(machine_health(load_run(p).ticks).busy for p in runs)
    return f"{busy} of {len(runs)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="keep the run folders here")
    parser.add_argument("--rejudge", type=Path, help="judge the runs kept in this folder")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--tolerate-busy-machine", action="store_true",
                        help="judge as `compare --tolerate-busy-machine` does")
    args = parser.parse_args()
    # An older compare (--rejudge with an older checkout on PYTHONPATH) has no such option.
    options = {"tolerate_busy_machine": True} if args.tolerate_busy_machine else {}
    if args.rejudge:
        figures = rejudge(args.rejudge, **options)
    else:
        with TemporaryDirectory() as tmp:
            keep = args.keep or Path(tmp)
            keep.mkdir(parents=True, exist_ok=True)
            record(keep, args.pairs)
            figures = rejudge(keep, **options)
    n_aa, n_ab = figures["pairs"]["aa"], figures["pairs"]["ab"]
    print(f"runs on a busy machine: {figures['runs_busy']}")
    print(f"A/A pairs: {n_aa}, false alarms (regression): {figures['false_alarms']} "
          f"{dict(figures['aa'])}")
    print(f"A/B pairs: {n_ab} (+{SLOWDOWN:.0%} on {ENDPOINTS[SLOWED][0]}), detections: "
          f"{figures['detections']} {dict(figures['ab'])}")
    for label, reasons in (("A/A not ok", figures["aa_reasons"]),
                           ("A/B missed", figures["ab_missed"])):
        busy = [r for r in reasons if "run: busy machine" in r[:40]]
        if busy:
            print(f"  {label}: {len(busy)} with a busy machine named, e.g. {busy[0][:140]}")
        for reason in [r for r in reasons if r not in busy][:8]:
            print(f"  {label}: {reason[:160]}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
