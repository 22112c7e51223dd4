"""`shop-loadtest compare`: noise must not fail a build, a real regression must."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly.offline
import pytest
import typer
import yaml

from shop_loadtest.cli import app
from shop_loadtest.compare import (
    Floors,
    Resampling,
    Sample,
    block_length,
    compare_runs,
    describe_delivery,
    render_markdown,
    terminal_table,
    write_comparison,
)
from shop_loadtest.results import counts_percentiles_ms, load_run, merge_counts
from tests.conftest import ROOT, cli
from tests.runfolder import RunFolder, synthetic_run
from tests.servers import CountingServer

PRODUCTS, CHECKOUT = "GET /api/products", "POST /api/checkout"
HOSTILE = "<script>alert(1)</script>"
QUIET = {"cores": 2, "other_cpu_pct": 20.0, "steal_pct": 0.0, "load1": 0.5,
         "runq_wait_pct": 1.0, "family": 1}
BUSY = {**QUIET, "other_cpu_pct": 190.0, "load1": 4.0, "runq_wait_pct": 12.0}

Latency = Callable[[int, str], float]  # (second, endpoint) -> median latency in ms


def recorded(path: Path, *, seconds: int = 20, seed: int = 1, per_second: int = 50,
             median: Latency = lambda t, name: 50.0, failures: Callable[[int], int] = lambda t: 0,
             endpoints: tuple[str, ...] = (PRODUCTS, CHECKOUT), cpu: float = 30.0,
             scenario: str = "shop", machine: dict | None = QUIET,
             meta: dict | None = None) -> Path:
    """A finished results folder: lognormal latencies around `median`, per endpoint."""
    rng = np.random.default_rng(seed)
    run = RunFolder(path, scenario=scenario,
                    stages=[{"name": "hold", "start_s": 0.0, "end_s": float(seconds),
                             "from": 10, "to": 10}])
    run.meta["host"] = "http://127.0.0.1:8800"
    run.meta.update(meta or {})
    for t in range(1, seconds + 1):
        lat = {name: list(rng.lognormal(np.log(median(t, name)), 0.2, per_second))
               for name in endpoints}
        failed = failures(t)
        errors = {endpoints[0]: [("HTTP 503", "Service Unavailable", failed)]} if failed else {}
        run.interval(float(t), lat, errors=errors, cpu=cpu, machine=machine)
    return run.finish(t=float(seconds))


def compared(tmp_path: Path, base: dict, new: dict, **options):
    return compare_runs(load_run(recorded(tmp_path / "base", **base)),
                        load_run(recorded(tmp_path / "new", **new)), **options)


def statuses(comparison, endpoint: str) -> dict[str, str]:
    return {d.metric: d.status for d in comparison.deltas if d.endpoint == endpoint}


def delta(comparison, endpoint: str, metric: str):
    (d,) = [d for d in comparison.deltas if d.endpoint == endpoint and d.metric == metric]
    return d


# --- the statistics, with the default floors ------------------------------------------------
def test_the_same_system_twice_is_ok(tmp_path):
    c = compared(tmp_path, {"seed": 1}, {"seed": 2})
    assert c.verdict == "ok" and not c.regressions
    assert {d.status for d in c.deltas} == {"ok"}
    assert [d.endpoint for d in c.deltas if d.metric == "p95"] == ["all endpoints", PRODUCTS,
                                                                    CHECKOUT]


@pytest.mark.parametrize("seed", range(2, 12))
def test_identical_systems_never_regress_whatever_the_seeds(tmp_path, seed):
    c = compared(tmp_path, {"seed": 1}, {"seed": seed}, seed=seed)
    assert c.verdict == "ok", c.reasons


def test_a_slower_endpoint_is_a_regression_and_is_named(tmp_path):
    slow = {"seed": 2, "median": lambda t, name: 60.0 if name == CHECKOUT else 50.0}
    c = compared(tmp_path, {"seed": 1}, slow)
    assert c.verdict == "regression"
    assert statuses(c, CHECKOUT)["p50"] == statuses(c, CHECKOUT)["p95"] == "regression"
    assert set(statuses(c, PRODUCTS).values()) == {"ok"}
    p50 = delta(c, CHECKOUT, "p50")
    assert 0.15 < p50.relative < 0.25 and p50.low > p50.floor > 5.0
    assert p50.floor == pytest.approx(0.10 * p50.base)  # 10% of 50 ms beats the 5 ms floor
    assert any(r.startswith(f"regression in {CHECKOUT}: p50 ") for r in c.reasons)
    assert "floor +5." in c.reasons[0] and "interval +" in c.reasons[0]


def test_a_change_within_the_relative_floor_is_not_a_regression(tmp_path):
    slower = {"seed": 2, "median": lambda t, name: 52.5}  # +5%: real, but allowed
    c = compared(tmp_path, {"seed": 1}, slower)
    assert c.verdict == "ok"
    strict = Floors(relative=0.02, latency_ms=0.0)
    assert compared(tmp_path / "strict", {"seed": 1}, slower,
                    floors=strict).verdict == "regression"


def test_a_change_within_the_absolute_floor_is_not_a_regression(tmp_path):
    # 2 ms -> 3 ms is +50%, far beyond 10%, and clear; but 1 ms is under the 5 ms floor
    base, slower = {"seed": 1, "median": lambda t, n: 2.0}, {"seed": 2, "median": lambda t, n: 3.0}
    c = compared(tmp_path, base, slower)
    assert c.verdict == "ok"
    p50 = delta(c, PRODUCTS, "p50")
    assert p50.relative > 0.4 and p50.low > 0 and p50.floor == 5.0 and p50.status == "ok"
    assert compared(tmp_path / "strict", base, slower,
                    floors=Floors(latency_ms=0.5)).verdict == "regression"


def test_one_slow_second_moves_p99_but_is_not_clear(tmp_path):
    spike = {"seed": 2, "median": lambda t, name: 400.0 if t == 7 else 50.0}
    c = compared(tmp_path, {"seed": 1}, spike)
    p99 = delta(c, "all endpoints", "p99")
    assert p99.relative > 1.0  # the whole run's p99 more than doubled...
    assert p99.status == "noise" and p99.low <= p99.floor  # ...because of one second in 20
    assert c.verdict == "ok"


def test_a_faster_system_is_better_not_a_regression(tmp_path):
    c = compared(tmp_path, {"seed": 1, "median": lambda t, name: 80.0}, {"seed": 2})
    assert c.verdict == "ok"
    assert statuses(c, PRODUCTS)["p50"] == "better"
    assert statuses(c, PRODUCTS)["throughput"] == "ok"


def test_new_failures_every_second_are_an_error_rate_regression(tmp_path):
    c = compared(tmp_path, {"seed": 1}, {"seed": 2, "failures": lambda t: 3})  # 6%
    assert statuses(c, PRODUCTS)["error_rate"] == "regression"
    assert statuses(c, CHECKOUT)["error_rate"] == "ok"
    assert delta(c, PRODUCTS, "error_rate").floor == 0.005
    assert c.verdict == "regression"


@pytest.mark.parametrize(("failures", "status"), [
    (lambda t: int(t == 5), "ok"),  # 0.1%: under the 0.5 pp floor
    (lambda t: 25 * int(t == 5), "noise"),  # 2.5% overall, but all in one second of 20
])
def test_rare_or_bunched_failures_are_not_an_error_rate_regression(tmp_path, failures, status):
    c = compared(tmp_path, {"seed": 1}, {"seed": 2, "failures": failures})
    assert statuses(c, PRODUCTS)["error_rate"] == status
    assert c.verdict == "ok"


def test_lower_throughput_is_a_regression(tmp_path):
    c = compared(tmp_path, {"seed": 1}, {"seed": 2, "per_second": 30})
    assert statuses(c, PRODUCTS)["throughput"] == "regression"
    rate = delta(c, PRODUCTS, "throughput")
    assert rate.base == pytest.approx(50.0) and rate.new == pytest.approx(30.0)
    assert rate.floor == pytest.approx(-5.0)


def test_runs_too_short_to_tell_are_inconclusive(tmp_path):
    c = compared(tmp_path, {"seed": 1, "seconds": 3},
                 {"seed": 2, "seconds": 3, "median": lambda t, name: 150.0})
    assert c.verdict == "inconclusive"
    assert statuses(c, PRODUCTS)["p95"] == "too_short"
    assert "too short" in c.reasons[0]


def test_the_same_folders_give_the_same_answer(tmp_path):
    base = load_run(recorded(tmp_path / "base"))
    new = load_run(recorded(tmp_path / "new", seed=2, median=lambda t, n: 54.0))
    first, again = compare_runs(base, new), compare_runs(base, new)
    assert first.deltas == again.deltas
    other = compare_runs(base, new, seed=9)
    assert [d.low for d in other.deltas] != [d.low for d in first.deltas]
    assert [d.base for d in other.deltas] == [d.base for d in first.deltas]


# --- the trust in each side -------------------------------------------------------------------
def test_a_saturated_generator_makes_the_comparison_inconclusive(tmp_path):
    c = compared(tmp_path, {"seed": 1},
                 {"seed": 2, "cpu": 97.0, "median": lambda t, name: 80.0})
    assert c.verdict == "inconclusive"
    assert "new run: load generator saturated" in c.reasons[0]
    assert any(r.startswith("(not trusted) regression in ") for r in c.reasons)


def test_a_busy_machine_beside_the_new_run_is_inconclusive_not_a_regression(tmp_path):
    # A/A on the latencies' side, but the new run's machine was busy and it was 30% slower
    c = compared(tmp_path, {"seed": 1},
                 {"seed": 2, "machine": BUSY, "median": lambda t, name: 65.0})
    assert c.verdict == "inconclusive"
    assert c.reasons[0].startswith("new run: busy machine: other processes left the load "
                                   "process less than its share of the CPU")
    assert "for 20 of 20 s on local" in c.reasons[0] and "190%" in c.reasons[0]
    assert c.sides[1].machine.busy and not c.sides[0].machine.busy
    assert "**busy**" in render_markdown(c)
    # the same figures on a quiet machine are a regression: the machine made the difference
    quiet = compared(tmp_path / "quiet", {"seed": 1},
                     {"seed": 2, "median": lambda t, name: 65.0})
    assert quiet.verdict == "regression"


def test_a_run_without_machine_samples_is_compared_with_a_warning(tmp_path):
    c = compared(tmp_path, {"seed": 1, "machine": None}, {"seed": 2})
    assert c.verdict == "ok"
    assert any("base run has no machine samples" in w for w in c.warnings)


@pytest.mark.parametrize(("delivery", "text", "ok"), [
    (None, "not recorded", None),
    ({"ratio": 0.996, "ok": True}, "99.6% of planned", True),
    ({"planned": 1000, "achieved": 800, "ok": False}, "80.0% of planned: short", False),
    ({"stages": [{"name": "a", "delivered_pct": 99.0, "ok": True},
                 {"name": "b", "delivered_pct": 70.0, "ok": False}]},
     "lowest stage 70.0%: short", False),
    ({"ratio": 0.7, "ok": False, "cause": "shop"}, "short because the shop was slow", True),
    ("garbage", "unreadable (str)", None),
    ({"judged": False, "held": False}, "too little planned to judge", None),
    ({"judged": True, "held": False, "ratio": 0.5, "planned": 100, "achieved": 50,
      "dropped_full": 40}, "short because the shop was slow", True),
    ({"judged": True, "held": True, "ratio": 0.99, "unit": "arrivals",
      "stages": [{"name": "hold", "judged": True, "held": True, "ratio": 0.99}]},
     "99.0% of planned, lowest stage 99.0%", True),
])
def test_delivery_is_read_whatever_its_shape(delivery, text, ok):
    line, delivered = describe_delivery(delivery)
    assert text in line and delivered is ok


def test_a_side_that_did_not_deliver_its_load_is_inconclusive(tmp_path):
    c = compared(tmp_path, {"seed": 1},
                 {"seed": 2, "meta": {"delivery": {"ratio": 0.6, "ok": False}}})
    assert c.verdict == "inconclusive"
    assert c.reasons[0] == "new run: the planned load was not delivered (60.0% of planned: short)"


def test_different_kinds_of_target_are_inconclusive(tmp_path):
    c = compared(tmp_path, {"seed": 1}, {"seed": 2, "meta": {"target": {"kind": "demo"}}})
    assert c.verdict == "inconclusive"
    assert "different kinds of target: named in the base run, demo in the new one" in \
        c.reasons[0]


def test_an_endpoint_in_one_run_only_is_a_warning(tmp_path):
    c = compared(tmp_path, {"seed": 1}, {"seed": 2, "endpoints": (PRODUCTS,), "scenario": "x"})
    assert f"{CHECKOUT} is only in the base run, left out" in c.warnings
    assert "different scenario: 'shop' in the base run, 'x' in the new one" in c.warnings
    assert c.verdict == "ok"  # "all endpoints" is every endpoint both runs have
    c = compared(tmp_path / "same", {"seed": 1}, {"seed": 2, "endpoints": (PRODUCTS,)})
    assert {d.endpoint for d in c.deltas} == {"all endpoints", PRODUCTS}


# --- the bootstrap ------------------------------------------------------------------------------
def test_the_whole_run_figures_are_the_merged_histograms(tmp_path):
    run = load_run(recorded(tmp_path / "run"))
    sample = Sample.of(run, [PRODUCTS])
    figures = Resampling.plan(sample, seed=1, resamples=50).figures(sample)
    rows = run.intervals.index[run.intervals["endpoint"] == PRODUCTS]
    merged = merge_counts(run.hists.rows("hist", rows))
    assert [figures[q][0] for q in ("p50", "p95", "p99")] == counts_percentiles_ms(
        merged, [50, 95, 99])
    assert figures["throughput"][0] == pytest.approx(50.0)


def test_resamples_keep_the_run_length_stage_by_stage():
    from shop_loadtest.compare.bootstrap import Sample as S

    segment = np.array([0] * 7 + [1] * 13)
    sample = S(np.arange(1.0, 21), np.ones(20), np.ones(20), np.zeros(20),
               np.array([1]), np.ones((20, 1)), segment)
    w = Resampling.plan(sample, seed=3, resamples=200, block=4).weights
    assert (w[0] == 1).all()
    assert (w[1:, :7].sum(axis=1) == 7).all() and (w[1:, 7:].sum(axis=1) == 13).all()
    assert np.array_equal(w, Resampling.plan(sample, seed=3, resamples=200, block=4).weights)


def test_blocks_are_longer_when_slow_seconds_come_in_runs(tmp_path):
    iid = load_run(recorded(tmp_path / "iid", seconds=60))
    spells = load_run(recorded(tmp_path / "spells", seconds=60,
                               median=lambda t, n: 90.0 if (t // 10) % 2 else 50.0))
    assert block_length(Sample.of(iid, [PRODUCTS])) == 4  # ceil(60 ** (1/3))
    sample = Sample.of(spells, [PRODUCTS])
    block = block_length(sample)
    assert block >= 6
    # and the uncertainty it gives is wider than pretending the seconds were independent
    wide = Resampling.plan(sample, seed=1, block=block).figures(sample)["p50"][1:]
    narrow = Resampling.plan(sample, seed=1, block=1).figures(sample)["p50"][1:]
    assert wide.std() > 1.3 * narrow.std()


def test_a_long_run_is_resampled_in_at_most_240_slots(tmp_path):
    run = load_run(synthetic_run(tmp_path / "soak", duration_s=1800, endpoints=2).path)
    sample = Sample.of(run, run.endpoints)
    assert sample.slots <= 240
    assert sample.n.sum() == run.intervals["n"].sum() and sample.dt.sum() == 1800
    figures = Resampling.plan(sample, seed=1, resamples=100).figures(sample)
    rows = run.intervals.index
    assert figures["p95"][0] == counts_percentiles_ms(
        merge_counts(run.hists.rows("hist", rows)), [95])[0]


# --- outputs ----------------------------------------------------------------------------------
def test_outputs_are_written_self_contained_and_escaped(tmp_path):
    base = recorded(tmp_path / "base", endpoints=(HOSTILE, PRODUCTS))
    new = recorded(tmp_path / "new", seed=2, endpoints=(HOSTILE, PRODUCTS),
                   median=lambda t, name: 80.0 if name == HOSTILE else 50.0)
    c = write_comparison(base, new, tmp_path / "out")
    page = (tmp_path / "out" / "compare.html").read_text()
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for external in ('src="http', "src='http", "<link", "@import", "url(http"):
        assert external not in page.lower()
    assert page.count(plotly.offline.get_plotlyjs()) == 1 and page.count("<script") == 3
    assert page.count('<div class="chart"') == 1 and "The two runs" in page
    markdown = (tmp_path / "out" / "compare.md").read_text()
    assert markdown == render_markdown(c)
    assert markdown.startswith("## ❌ Compared with the baseline: REGRESSION")
    assert "\\<script\\>alert(1)\\</script\\>" in markdown and HOSTILE not in markdown
    table = terminal_table(c)
    assert re.search(r"^<script>alert\(1\)</script>\s+p50 .* REGRESSION$", table, re.M)
    assert "\ncompare: REGRESSION\n  - regression in all endpoints: p50 " in table
    assert "new run new: 2,000 requests; target named; generator healthy" in table


def test_compare_md_lists_regressions_then_improvements_then_the_rest(tmp_path):
    names = tuple(f"GET /api/endpoint-{i}" for i in range(10))
    median = {names[3]: 70.0, names[7]: 30.0}
    c = compared(tmp_path, {"seed": 1, "endpoints": names},
                 {"seed": 2, "endpoints": names,
                  "median": lambda t, name: median.get(name, 50.0)})
    lines = render_markdown(c).splitlines()
    assert len(lines) < 30
    table = [line for line in lines if line.startswith("| ❌") or line.startswith("| ✅")]
    assert table and all("regression" in line for line in table[:2])
    assert any("endpoint-3" in line and "regression" in line for line in table)
    assert "endpoint-7" in table[-1] and "better" in table[-1]
    first_better = next(i for i, line in enumerate(table) if "better" in line)
    assert all("regression" in line for line in table[:first_better])
    assert all("better" in line for line in table[first_better:])
    assert lines[-1] == "8 endpoints unchanged."


def test_compare_md_stays_short_when_every_endpoint_regresses(tmp_path):
    names = tuple(f"GET /api/endpoint-{i}" for i in range(10))
    c = compared(tmp_path, {"seed": 1, "endpoints": names},
                 {"seed": 2, "endpoints": names, "median": lambda t, name: 90.0})
    text = render_markdown(c)
    assert len(text.splitlines()) < 30
    assert "more changed figures in compare.html" in text and "0 endpoints unchanged." in text


def test_outputs_go_into_the_new_run_by_default(tmp_path):
    base, new = recorded(tmp_path / "base"), recorded(tmp_path / "new", seed=2)
    write_comparison(base, new)
    assert (new / "compare.html").exists() and (new / "compare.md").exists()


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--max-regression", "10"], 2, "expected a percentage such as 1% or 0.5%, got '10'"),
    (["--alpha", "0.9"], 2, "--alpha must be in (0, 0.5]"),
    (["--latency-floor", "5"], 2, "--latency-floor: give a unit, such as 5ms, got '5'"),
    (["--latency-floor", "fast"], 2, "--latency-floor: expected a duration"),
    (["--error-rate-floor", "half"], 2, "--error-rate-floor: expected a percentage"),
])
def test_cli_refuses_bad_flags(tmp_path, args, code, message):
    base, new = recorded(tmp_path / "base"), recorded(tmp_path / "new", seed=2)
    result = cli("compare", str(base), str(new), *args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("new", "flags", "code"), [
    ({"seed": 2}, [], 0),
    ({"seed": 2, "median": lambda t, n: 60.0}, [], 1),
    ({"seed": 2, "median": lambda t, n: 60.0}, ["--max-regression", "25%"], 0),
    ({"seed": 2, "median": lambda t, n: 60.0}, ["--latency-floor", "20ms"], 0),
    ({"seed": 2, "machine": BUSY}, [], 3),
    ({"seed": 2, "machine": BUSY}, ["--tolerate-busy-machine"], 0),
    ({"seed": 2, "machine": BUSY, "median": lambda t, n: 60.0}, ["--tolerate-busy-machine"], 1),
])
def test_cli_exit_codes(tmp_path, new, flags, code):
    base, new_dir = recorded(tmp_path / "base"), recorded(tmp_path / "new", **new)
    result = cli("compare", str(base), str(new_dir), *flags)
    assert result.returncode == code, result.stdout + result.stderr


def test_cli_missing_folder_exits_3(tmp_path):
    result = cli("compare", str(recorded(tmp_path / "base")), str(tmp_path / "nope"))
    assert result.returncode == 3
    assert result.stderr.strip() == f"error: {tmp_path / 'nope'}: no such results folder"


# --- real runs ----------------------------------------------------------------------------------
def real_run(tmp_path: Path, name: str, delay_s: float) -> Path:
    """4 users for 6 s against a server that answers after `delay_s`."""
    with CountingServer(delay_s=delay_s) as server:
        scenario = tmp_path / f"{name}.yaml"
        scenario.write_text(yaml.safe_dump({
            "name": "shop", "target": {"host": server.url},
            "load": {"model": "users", "stages": [{"name": "hold", "duration": 0, "target": 4},
                                                  {"name": "hold", "duration": 6, "target": 4}]},
            "journeys": [{"name": "browse", "steps": [
                {"request": "GET /api/products", "name": PRODUCTS}]}]}))
        result = cli("run", str(scenario), "--out", str(tmp_path / name))
    assert result.returncode in (0, 3), result.stderr
    return tmp_path / name


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    return real_run(tmp_path_factory.mktemp("runs"), "base", 0.01)


def busy_machine_named(stdout: str) -> bool:
    """This box is shared: another developer's work can make either run's machine busy. Then
    `inconclusive` naming the busy machine is the true answer, and the test accepts it."""
    return "compare: INCONCLUSIVE" in stdout and "run: busy machine: " in stdout


@pytest.mark.e2e
def test_a_repeat_run_of_the_same_system_is_not_a_regression(base_run, tmp_path):
    repeat = real_run(tmp_path, "repeat", 0.01)
    result = cli("compare", str(base_run), str(repeat))
    assert result.returncode != 1 and "REGRESSION" not in result.stdout, result.stdout
    assert result.returncode == 0 or (result.returncode == 3 and busy_machine_named(
        result.stdout)), result.stdout + result.stderr
    assert (repeat / "compare.html").exists() and (repeat / "compare.md").exists()


@pytest.mark.e2e
def test_a_deliberately_slowed_server_fails_the_comparison(base_run, tmp_path):
    slowed = real_run(tmp_path, "slowed", 0.03)
    result = cli("compare", str(base_run), str(slowed), "--out", str(tmp_path / "cmp"))
    if result.returncode == 3 and busy_machine_named(result.stdout):
        assert f"(not trusted) regression in {PRODUCTS}: p50 " in result.stdout
        return
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"regression in {PRODUCTS}: p50 " in result.stdout
    assert re.search(rf"^{re.escape(PRODUCTS)}\s+p50\s.*REGRESSION$", result.stdout, re.M)
    assert "**regression**" in (tmp_path / "cmp" / "compare.md").read_text()


@pytest.mark.e2e
def test_cpu_bound_processes_beside_the_new_run_make_it_inconclusive(base_run, tmp_path):
    spin = "import time\nend = time.monotonic() + 40\nwhile time.monotonic() < end: pass\n"
    busy = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(3)]
    try:
        repeat = real_run(tmp_path, "repeat", 0.01)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    result = cli("compare", str(base_run), str(repeat))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "compare: INCONCLUSIVE" in result.stdout and "compare: REGRESSION" not in result.stdout
    assert "new run: busy machine: other processes left the load process less than its share" \
        in result.stdout


# --- docs/ci.md: every example is checked ---------------------------------------------------
CI_DOC = ROOT / "docs" / "ci.md"


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", CI_DOC.read_text(), re.S)


def shop_loadtest_commands() -> list[list[str]]:
    """Every `shop-loadtest ...` command line in docs/ci.md (continuation lines joined)."""
    text = CI_DOC.read_text().replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        m = re.search(r"\bshop-loadtest (\w.*)$", line)
        if m and not line.lstrip().startswith(("#", "|")) and "`" not in line:
            commands.append(shlex.split(m.group(1).split(" || ")[0].split(";")[0], posix=True))
    return commands


def test_ci_doc_yaml_examples_parse():
    blocks = [yaml.safe_load(block) for block in yaml_blocks()]
    github = next(b for b in blocks if "jobs" in b)
    gitlab = next(b for b in blocks if "loadtest" in b)
    steps = [s for job in github["jobs"].values() for s in job["steps"]]
    assert any("GITHUB_STEP_SUMMARY" in s.get("run", "") for s in steps)
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in steps)
    assert gitlab["loadtest"]["artifacts"]["reports"]["junit"] == "results/junit.xml"
    assert gitlab["loadtest"]["artifacts"]["when"] == "always"


def test_ci_doc_commands_are_accepted_by_the_cli():
    commands = shop_loadtest_commands()
    assert {c[0] for c in commands} >= {"run", "compare"}
    command = typer.main.get_command(app)
    for args in commands:
        args = [re.sub(r"\$\{?\w+\}?", "x", a) for a in args]  # shell variables
        sub = command.commands[args[0]]  # type: ignore[attr-defined]
        sub.make_context(args[0], args[1:])  # raises on an unknown option or a missing argument
