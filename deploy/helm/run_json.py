"""Make a results folder recorded by plain `locust ... --slt-results DIR` reportable.

`shop-loadtest run` and `master` write `run.json` (scenario, stages, budgets, how the run
ended) themselves; plain `locust` (the Helm chart's route) records only intervals.jsonl and
events.jsonl. This writes the missing run.json and scenario.yaml from the scenario file, so
`shop-loadtest report DIR` can judge the run:

    python deploy/helm/run_json.py scenarios/flash-sale.yaml reports/flash-sale-helm \
        --host http://storefront.shop.svc.cluster.local:8800
    shop-loadtest report reports/flash-sale-helm

The run counts as completed only if events.jsonl holds a `stop` event; otherwise the
report says the run did not finish (verdict inconclusive), as for any crashed run.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _events(run_dir: Path) -> list[dict[str, Any]]:
    events = []
    try:
        lines = (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a truncated last line
        if isinstance(event, dict):
            events.append(event)
    return events


def _sources(run_dir: Path) -> set[str]:
    sources = set()
    try:
        with (run_dir / "intervals.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    sources.add(str(json.loads(line).get("source")))
                except (ValueError, AttributeError):
                    continue
    except FileNotFoundError:
        pass
    return sources - {"master", "None"}


def build_meta(scenario_path: Path, run_dir: Path, *, host: str | None = None,
               speedup: float = 1.0) -> dict[str, Any]:
    from shop_loadtest import __version__
    from shop_loadtest.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    events = _events(run_dir)
    start = next((e for e in events if e.get("kind") == "start"), None)
    stop = next((e for e in reversed(events) if e.get("kind") == "stop"), None)
    return {
        "schema_version": 1, "scenario": scenario.name, "scenario_file": str(scenario_path),
        "started_at": _iso(start.get("ts") if start else None),
        "ended_at": _iso(stop.get("ts") if stop else None),
        "host": host or scenario.target.host, "model": scenario.load.model,
        "speedup": speedup, "command": ["locust", "--slt-results", str(run_dir)],
        "processes": len(_sources(run_dir)) or None,
        "versions": {"shop_loadtest": __version__},
        "stages": scenario.profile(scenario_path.parent, speedup).stages(),
        "budgets": list(scenario.budgets), "abort": list(scenario.abort),
        "exit_reason": "completed" if stop else None, "abort_reason": None,
        "locust_exit_code": None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", type=Path, help="the scenario file the locustfile came from")
    parser.add_argument("run_dir", type=Path, help="the folder --slt-results wrote")
    parser.add_argument("--host", help="the host the run targeted (Locust's --host)")
    parser.add_argument("--speedup", type=float, default=1.0, help="the run's --slt-speedup")
    args = parser.parse_args(argv)
    if not (args.run_dir / "intervals.jsonl").exists():
        print(f"error: {args.run_dir / 'intervals.jsonl'}: missing; is this the folder "
              "--slt-results wrote?", file=sys.stderr)
        return 2
    meta = build_meta(args.scenario, args.run_dir, host=args.host, speedup=args.speedup)
    (args.run_dir / "run.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    copy = args.run_dir / "scenario.yaml"
    if not copy.exists():
        copy.write_text(args.scenario.read_text(encoding="utf-8"), encoding="utf-8")
    print(f"wrote {args.run_dir / 'run.json'}; now: shop-loadtest report {args.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
