"""The summary of a run: the figures behind summary.json (schemas/summary.schema.json) and every
other output, computed once from the results folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shop_loadtest.judge import evidence
from shop_loadtest.judge.budgets import BudgetResult, evaluate, first_hit
from shop_loadtest.judge.errors import error_table
from shop_loadtest.judge.model import (
    AbortRow,
    Capacity,
    EndpointRow,
    Latency,
    Percentiles,
    Summary,
)
from shop_loadtest.judge.scrapes import scrape_table
from shop_loadtest.judge.verdict import (
    aborted,
    decide,
    generator_health,
    refused_requests,
    stall_evidence,
    workers_lost,
)
from shop_loadtest.results import (
    Counts,
    RunData,
    counts_percentiles_ms,
    export_files,
    merge_counts,
    rounded,
)
from shop_loadtest.scenario.budgets import AbortRule, parse_abort, parse_budget

SCHEMA_VERSION = 1
IMPLIED_BUDGET = "error_rate < 1%"
LATENCY_QS = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0,
              "p99_9_ms": 99.9}


def _percentiles(counts: Counts | None) -> Percentiles:
    p50, p90, p95, p99, p99_9 = (rounded(v) for v in counts_percentiles_ms(
        counts, list(LATENCY_QS.values())))
    return {"p50_ms": p50, "p90_ms": p90, "p95_ms": p95, "p99_ms": p99, "p99_9_ms": p99_9}


def _latency(counts: Counts | None, *, total_ms: float, n: int, lo: Any, hi: Any) -> Latency:
    return {**_percentiles(counts), "mean_ms": rounded(total_ms / n) if n else None,
            "min_ms": rounded(lo), "max_ms": rounded(hi)}


def endpoint_table(run: RunData) -> tuple[list[EndpointRow], Latency, Percentiles | None]:
    """Per-endpoint figures (busiest first) and the run's overall latency.

    Percentiles come from each endpoint's merged histograms; the overall ones from merging
    those again: exact to the histogram's 0.1%, never an average of percentiles.
    """
    iv = run.intervals
    duration = run.duration_s
    rows: list[EndpointRow] = []
    merged, merged_due = [], []
    for name in run.endpoints:
        positions = np.flatnonzero((iv["endpoint"] == name).to_numpy())
        part = iv.iloc[positions]
        n, fail = int(part["n"].sum()), int(part["fail"].sum())
        counts = run.hists.merged("hist", positions)
        due = (run.hists.merged("hist_due", positions) if part["hist_due"].notna().any()
               else None)
        merged.append(counts)
        merged_due.append(due)
        due_values = counts_percentiles_ms(due, [95.0, 99.0])
        rows.append({
            "name": name, "method": str(part["method"].iloc[0]), "requests": n,
            "failures": fail, "error_rate": rounded(fail / n, 6) if n else None,
            "rps": round(n / duration, 3) if duration else 0.0,
            **_latency(counts, total_ms=float(part["sum_ms"].sum()), n=n,
                       lo=part["min_ms"].min(), hi=part["max_ms"].max()),
            "p95_due_ms": rounded(due_values[0]), "p99_due_ms": rounded(due_values[1]),
            "bytes": int(part["bytes"].sum()),
        })
    overall = _latency(merge_counts(merged), total_ms=float(iv["sum_ms"].sum()),
                       n=int(iv["n"].sum()), lo=iv["min_ms"].min() if len(iv) else None,
                       hi=iv["max_ms"].max() if len(iv) else None)
    due_all = merge_counts(merged_due)
    return rows, overall, _percentiles(due_all) if due_all is not None else None


def abort_table(rules: list[AbortRule], run: RunData) -> list[AbortRow]:
    """Each abort rule judged on the whole recorded run: did it (or would it) fire, when."""
    out: list[AbortRow] = []
    for rule in rules:
        hit = first_hit(rule, run)
        out.append({"expr": rule.expr, "triggered": hit is not None,
                    "t": hit.t if hit else None,
                    "observed": rounded(hit.observed, 6) if hit else None,
                    "limit": round(rule.limit, 6), "unit": rule.unit})
    return out


def build_summary(run: RunData, budgets: list[BudgetResult], abort_rules: list[AbortRule],
                  *, tolerate_worker_loss: bool = False, budgets_implied: bool = False
                  ) -> Summary:
    """summary.json as a dict, verdict included."""
    meta = run.meta
    endpoints, latency, latency_due = endpoint_table(run)
    requests = int(run.intervals["n"].sum())
    failures = int(run.intervals["fail"].sum())
    duration = run.duration_s
    generator = generator_health(run)
    arrivals = generator.pop("arrivals")
    summary: Summary = {
        "schema_version": SCHEMA_VERSION,
        "scenario": str(meta.get("scenario") or (run.run_dir.name if run.run_dir else "")),
        "verdict": "inconclusive", "reasons": [],
        "target": evidence.target(run),
        "started_at": meta.get("started_at"), "ended_at": meta.get("ended_at"),
        "duration_s": round(duration, 3), "exit_reason": meta.get("exit_reason"),
        "model": meta.get("model"), "host": meta.get("host"),
        "speedup": rounded(meta.get("speedup")),
        "requests": requests, "failures": failures,
        "error_rate": rounded(failures / requests, 6) if requests else None,
        "rps": round(requests / duration, 3) if duration else 0.0,
        "latency": latency, "latency_due": latency_due,
        "endpoints": endpoints,
        "budgets": [{**b.to_json(), "implied": budgets_implied} for b in budgets],
        "budgets_implied": budgets_implied,
        "delivery": evidence.delivery_of(run),
        "load_process": evidence.load_process(run),
        "workers": evidence.workers(run),
        "stall": {"timeouts": evidence.timeouts(run),
                  "in_flight_at_stop": evidence.in_flight_at_stop(run),
                  **stall_evidence(meta)},
        "refused": refused_requests(run),
        "abort_rules": abort_table(abort_rules, run),
        "aborted": aborted(run),
        "arrivals": arrivals,
        "generator": generator,
        "workers_lost": workers_lost(run),
        "errors": error_table(run),
        "scrapes": scrape_table(run),
        "warnings": list(run.warnings),
        "exports": [{"file": f.file, "rows": f.rows} for f in export_files(run.run_dir)],
    }
    summary["verdict"], summary["reasons"] = decide(
        summary, tolerate_worker_loss=tolerate_worker_loss)
    return summary


def write_capacity(run_dir: Path, run: RunData) -> Capacity | None:
    """Write capacity.json (resource runway at the forecast) and return its headlines."""
    from shop_loadtest.judge.runway import write_capacity as write_runway

    data = write_runway(run_dir, run)
    if data is None:
        return None
    return {"headlines": list(data.get("headlines") or []), "file": "capacity.json"}


def judge_run(run: RunData, *, tolerate_worker_loss: bool = False) -> Summary:
    """The summary of a loaded run, verdict included, from its run.json's budgets and abort
    rules; a scenario without budgets is judged on the implied `error_rate < 1%`."""
    named = [str(expr) for expr in run.meta.get("budgets") or []]
    # No budget is not "nothing can fail": 100% failed requests must not pass.
    budgets = [parse_budget(expr) for expr in named or [IMPLIED_BUDGET]]
    abort_rules = [parse_abort(str(expr)) for expr in run.meta.get("abort") or []]
    return build_summary(run, evaluate(budgets, run), abort_rules,
                         tolerate_worker_loss=tolerate_worker_loss, budgets_implied=not named)
