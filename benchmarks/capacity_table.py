"""How many journeys a second one load process takes per core: the capacity table of
docs/performance.md.

Each row is a real `shop-loadtest run` of the open model at a fixed rate, one load process,
read back from its summary.json: journeys started per second, divided by the load process's
mean CPU (its own `generator.cpu_mean_pct`, a share of one core). Rows:
- a one-request journey (`GET /api/products`) against benchmarks/server.py;
- the demo shop's journeys (scenarios/flash-sale.yaml: browse 70, buy 30, with their think
  times) against the demo shop, started by the run itself.

    .venv/bin/python benchmarks/capacity_table.py [--seconds 12] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from run import scenario, shop_loadtest_run
from sides import ROOT, target


def _row(name: str, rate: float, summary: dict[str, Any]) -> dict[str, Any]:
    arrivals = summary.get("arrivals") or {}
    cpu = float(summary["generator"]["cpu_mean_pct"] or 0.0)
    per_s = float(arrivals.get("started") or 0) / float(summary["duration_s"] or 1.0)
    per_core = per_s / (cpu / 100.0) if cpu else None
    return {"name": name, "rate": rate, "journeys_per_s": round(per_s, 1),
            "requests_per_journey": round(summary["requests"] / max(arrivals.get("started")
                                                                     or 1, 1), 2),
            "cpu_mean_pct": cpu, "journeys_per_core_s": round(per_core) if per_core else None,
            "verdict": summary["verdict"], "late_p99_ms": arrivals.get("late_p99_ms")}


def one_request(work: Path, rate: float, seconds: float) -> dict[str, Any]:
    with target() as tgt:
        path = scenario(work, "one-request", tgt.url, model="arrival_rate",
                        stages=[("hold", 0, rate), ("hold", seconds, rate)])
        _, summary = shop_loadtest_run(path, tgt.url, work / f"one-{rate:g}")
    return _row("one-request journey (benchmark server)", rate, summary)


def demo_shop(work: Path, rate: float, seconds: float) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "scenarios" / "flash-sale.yaml").read_text())
    data["load"] = {"model": "arrival_rate",
                    "stages": [{"duration": 0, "target": rate},
                               {"duration": seconds, "target": rate}]}
    data["budgets"] = ["error_rate < 100%"]  # the table is about the generator, not the shop
    data.pop("plan", None)
    path = work / "flash-sale-capacity.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = work / f"demo-{rate:g}"
    subprocess.run([sys.executable, "-m", "shop_loadtest", "run", str(path), "--out", str(out)],
                   cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)
    summary = json.loads((out / "summary.json").read_text())
    return _row("demo shop: flash-sale's browse 70 / buy 30", rate, summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--rates", type=float, nargs="*", default=[500.0, 1500.0])
    parser.add_argument("--demo-rates", type=float, nargs="*", default=[20.0, 60.0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="slt-capacity-") as tmp:
        work = Path(tmp)
        for rate in args.rates:
            rows.append(one_request(work, rate, args.seconds))
        for rate in args.demo_rates:
            rows.append(demo_shop(work, rate, args.seconds))
    for r in rows:
        print(f"{r['name']:45} at {r['rate']:6g}/s: {r['journeys_per_s']:7.1f} journeys/s, "
              f"{r['requests_per_journey']:.2f} req/journey, CPU {r['cpu_mean_pct']:.0f}% -> "
              f"{r['journeys_per_core_s']} journeys/s per core (verdict {r['verdict']}, "
              f"late p99 {r['late_p99_ms']} ms)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
