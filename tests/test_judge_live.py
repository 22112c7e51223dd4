"""The live judge folds intervals one at a time and must agree with the batch judge on the
same intervals: the same verdict for every budget, the same first abort."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from shop_loadtest.judge.budgets import check_abort, evaluate, first_hit
from shop_loadtest.judge.live import LiveJudge, supports
from shop_loadtest.results import load_run
from shop_loadtest.scenario.budgets import parse_abort, parse_budget
from tests.runfolder import KNOWN_STAGES, RunFolder, known_run

BUDGETS = ["p95 < 500ms", "p99 < 300ms", "mean < 150ms", "max < 900ms", "min > 1ms",
           "error_rate < 2%", "error_rate(5xx) < 1%", "throughput > 25/s", "count > 100",
           "failures < 5", "p95 of POST /api/checkout < 500ms for 2s",
           "p95 of GET /api/* < 120ms during steady", "error_rate < 3% excluding ramps",
           "p99 < 950ms for 3s", "error_rate of POST /api/checkout < 20% for 4s",
           "p95_due < 1s", "throughput > 29/s for 2s", "p50 of GET /nothing < 1ms"]
ABORTS = ["error_rate > 40% for 1s", "p95 > 900ms for 2s", "error_rate > 3%",
          "p99 of GET /api/products > 95ms", "failures > 10", "max > 2s for 3s"]


def _random_run(path: Path, seed: int) -> RunFolder:
    rng = random.Random(seed)
    sources = ("local",) if seed % 3 else ("worker-1", "worker-2")
    run = RunFolder(path, stages=KNOWN_STAGES, budgets=BUDGETS, abort=ABORTS,
                    model="arrival_rate")
    run.meta["processes"] = len(sources)
    for t in range(1, 11):
        if t == 5 and seed % 2:
            continue  # a hole in the intervals
        endpoints = {"GET /api/products": [rng.uniform(5, 120) for _ in range(10)],
                     "GET /api/products/{id}": [rng.uniform(1, 30) for _ in range(8)],
                     "POST /api/checkout": [rng.choice([200.0, 1000.0]) for _ in range(6)]}
        errors = {}
        if rng.random() < 0.5:
            errors["POST /api/checkout"] = [("HTTP 503", "busy", rng.randint(1, 3))]
        if rng.random() < 0.3:
            errors["GET /api/products"] = [("HTTP 404", "gone", 1)]
        due = {n: [v + rng.uniform(0, 50) for v in vals] for n, vals in endpoints.items()}
        for source in sources:
            run.interval(float(t), endpoints, errors=errors, due=due, source=source)
    run.finish(t=10.0)
    return run


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "intervals.jsonl").read_text().splitlines()]


def _live(path: Path, *, chunk: int = 1) -> LiveJudge:
    meta = json.loads((path / "run.json").read_text())
    judge = LiveJudge(meta, [parse_budget(b) for b in meta["budgets"]],
                      [parse_abort(a) for a in meta["abort"]])
    lines = _lines(path)
    for i in range(0, len(lines), chunk):
        judge.feed(lines[i : i + chunk])
    judge.finish()
    return judge


@pytest.mark.parametrize("seed", range(6))
def test_folding_interval_by_interval_agrees_with_the_batch_judge(tmp_path, seed):
    _random_run(tmp_path, seed)
    run = load_run(tmp_path)
    batch = evaluate([parse_budget(b) for b in BUDGETS], run)
    live = _live(tmp_path, chunk=1 + seed % 3).results()
    assert len(live) == len(batch)
    for b, got in zip(batch, live, strict=True):
        assert got.status == b.status, b.expr
        if b.observed is None:
            assert got.observed is None, b.expr
        else:
            assert got.observed == pytest.approx(b.observed, rel=1e-6), b.expr
        assert got.first_breach == b.first_breach, b.expr


@pytest.mark.parametrize("seed", range(6))
def test_the_first_abort_is_the_batch_judges(tmp_path, seed):
    _random_run(tmp_path, seed)
    run = load_run(tmp_path)
    judge = _live(tmp_path)
    for rule in ABORTS:
        want = first_hit(parse_abort(rule), run)
        got = next(r.hit for r in judge.aborts if r.budget.expr == rule)
        assert (got is None) == (want is None), rule
        if want is not None:
            assert (got.t, got.window) == (want.t, want.window), rule
            assert got.observed == pytest.approx(want.observed, rel=1e-6), rule
    assert judge.abort_hit() == check_abort([parse_abort(a) for a in ABORTS], run)


def test_an_abort_fires_while_the_run_goes_on_not_only_at_the_end(tmp_path):
    known = known_run(tmp_path, abort=["error_rate of POST /api/checkout > 40% for 1s"],
                      finish=False)
    meta = known.meta
    judge = LiveJudge(meta, [], [parse_abort(a) for a in meta["abort"]])
    lines = _lines(tmp_path)
    fired_at = None
    for i, line in enumerate(lines):
        judge.feed([line])
        if judge.abort_hit() is not None:
            fired_at = i
            break
    # checkout fails 50% at t=6: known as soon as that interval's line is in (one process)
    assert judge.abort_hit().t == 6.0 and fired_at == 5


def test_monitor_statistics_are_left_to_the_batch_judge():
    assert not supports(parse_budget("used(storage) < 80%"))
    assert supports(parse_budget("p95 < 1s for 10s"))
