import re
from pathlib import Path

import pytest
import yaml

from shop_loadtest.errors import BudgetSyntaxError, InputError
from shop_loadtest.judge.budgets import check_abort, evaluate, format_value
from shop_loadtest.judge.stats import COMPUTE
from shop_loadtest.results import load_run
from shop_loadtest.scenario.budgets import STATS, AbortRule, parse_abort, parse_budget
from tests.runfolder import CHECKOUT, PRODUCTS, RunFolder, known_run


# --- parsing --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "fields"),
    [
        ("p95 < 500ms", dict(stat="p95", name="pNN", arg=95.0, endpoint=None, op="<",
                             limit=500.0, unit="ms")),
        ("p99.9 <= 1.5s", dict(stat="p99.9", arg=99.9, op="<=", limit=1500.0)),
        ("p59 < 10ms", dict(arg=59.0, limit=10.0)),
        ("P95 < 500 ms", dict(stat="p95", limit=500.0)),
        ("p95 < 250", dict(limit=250.0, unit="ms")),
        ("p95 < 500 ms for 30s", dict(limit=500.0, window_s=30.0)),
        ("throughput > 100 rps", dict(limit=100.0)),
        ("count > 5 during steady", dict(limit=5.0, stage="steady")),
        ("p95_due < 1s", dict(name="pNN_due", arg=95.0, limit=1000.0)),
        ("mean < 200ms", dict(name="mean", limit=200.0)),
        ("max < 2s", dict(name="max", limit=2000.0)),
        ("min >= 1ms", dict(name="min", op=">=", limit=1.0)),
        ("p95 of POST /api/checkout < 800ms", dict(endpoint="POST /api/checkout", limit=800.0)),
        ("p95 of GET /api/* < 300ms", dict(endpoint="GET /api/*", limit=300.0)),
        ("p95 of GET /api/products/{id} < 300ms", dict(endpoint="GET /api/products/{id}")),
        ("error_rate < 1%", dict(name="error_rate", arg=None, limit=0.01, unit="ratio")),
        ("error_rate < 0.5%", dict(limit=0.005)),
        ("error_rate < 0.01", dict(limit=0.01)),
        ("error_rate(5xx) < 1%", dict(stat="error_rate(5xx)", name="error_rate", arg="5xx")),
        ("error_rate(4XX) < 1%", dict(arg="4xx")),
        ("error_rate (5xx) of GET /a < 1%", dict(stat="error_rate(5xx)", endpoint="GET /a")),
        ("error_rate(503) of POST /api/checkout < 2%", dict(arg="503", endpoint=CHECKOUT)),
        ("throughput > 100/s", dict(name="throughput", op=">", limit=100.0, unit="/s")),
        ("throughput >= 100rps", dict(op=">=", limit=100.0)),
        ("throughput > 6000/m", dict(limit=100.0)),
        ("throughput > 100", dict(limit=100.0)),
        ("count >= 1000", dict(name="count", limit=1000.0, unit="count")),
        ("failures < 10", dict(name="failures", limit=10.0)),
        ("p95 < 500ms for 30s", dict(window_s=30.0, stage=None, excluding_ramps=False)),
        ("p95 < 500ms during peak", dict(stage="peak", window_s=None)),
        ("error_rate < 1% excluding ramps", dict(excluding_ramps=True)),
        ("p95 of GET /api/* < 300ms for 1m during peak excluding ramps",
         dict(endpoint="GET /api/*", window_s=60.0, stage="peak", excluding_ramps=True)),
        ("p95 < 500ms during black friday for 10s",
         dict(stage="black friday", window_s=10.0)),
        ("  p95   of  GET /a   <   1s  ", dict(endpoint="GET /a", limit=1000.0)),
    ],
)
def test_valid_budgets_parse_to_fields(expr, fields):
    budget = parse_budget(expr)
    assert budget.expr == expr
    for key, value in fields.items():
        assert getattr(budget, key) == (pytest.approx(value) if isinstance(value, float)
                                        else value), key


def _msg(expr, text):
    return f"budget {expr!r}: {text}"


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("eror_rate < 1%", "unknown statistic 'eror_rate'; did you mean error_rate?"),
        ("p95_deu < 1s", "unknown statistic 'p95_deu'; did you mean p95_due?"),
        ("thruput > 10/s", "unknown statistic 'thruput'; did you mean throughput?"),
        ("eror_rate(5xx) < 1%", "unknown statistic 'eror_rate(5xx)'; did you mean error_rate?"),
        ("latency < 1s", "unknown statistic 'latency'; expected one of p50, p90, p95, p99, "
                         "p99.9, p95_due, p99_due, mean, max, min, error_rate, throughput, "
                         "count, failures, used, gauge_max, rate, runway"),
        ("p95 < 5%", "p95 is a latency: write the limit as a duration such as 500ms or 1.5s, "
                     "not '5%'"),
        ("p95 < 500mss", "p95 is a latency: write the limit as a duration such as 500ms or "
                         "1.5s, not '500mss' (did you mean ms?)"),
        ("error_rate < 5", "error_rate is a ratio: write the limit as a percentage such as 1% "
                           "or 0.5% (or a fraction such as 0.01), not '5'"),
        ("error_rate < 200ms", "error_rate is a ratio: write the limit as a percentage such as "
                               "1% or 0.5% (or a fraction such as 0.01), not '200ms'"),
        ("throughput > 5%", "throughput is a rate: write the limit as 100/s, 100rps or 6000/m, "
                            "not '5%'"),
        ("count > 5s", "count is a count: write the limit as a plain number, not '5s'"),
        ("p95 500ms", "no comparison; write it as `<stat> < <limit>`, e.g. `p95 < 500ms`"),
        ("p95 == 500ms", "'==' is not a budget comparison; use <, <=, > or >="),
        ("p95 = 500ms", "'=' is not a budget comparison; use <, <=, > or >="),
        ("p95 < fast", "expected a number after '<', e.g. `p95 < 500ms`"),
        ("p95 < -5ms", "a limit cannot be negative"),
        ("< 500ms", "missing the statistic before the comparison, e.g. `p95 < 500ms`"),
        ("p95 for GET /x < 1s", "expected `of <endpoint>` after 'p95', got 'for GET /x'"),
        ("p95 off GET /x < 1s", "expected `of <endpoint>` after 'p95', got 'off GET /x' "
                                "(did you mean `of`?)"),
        ("p95 of < 1s", "missing the endpoint after `of`, e.g. `p95 of GET /api/cart < 300ms`"),
        ("p95 < 500ms durng peak", "unexpected 'durng' after the limit; did you mean `during`? "
                                   "expected `for <window>`, `during <stage>` or "
                                   "`excluding ramps`"),
        ("p95 < 500ms stop", "unexpected 'stop' after the limit; expected `for <window>`, "
                             "`during <stage>` or `excluding ramps`"),
        ("p95 < 500ms for ever", "`for` needs a window such as 30s or 1m, got 'ever'"),
        ("p95 < 500ms for 0s", "`for` needs a window such as 30s or 1m, got '0s'"),
        ("p95 < 500ms for 10s for 20s", "`for` given twice"),
        ("p95 < 500ms excluding warmup", "expected `excluding ramps`, got `excluding warmup`"),
        ("p100 < 1s", "percentile 'p100' must be above p0 and below p100 (use min or max)"),
        ("p0 > 1ms", "percentile 'p0' must be above p0 and below p100 (use min or max)"),
        ("error_rate(6xx) < 1%", "error_rate(...) takes a status class such as 5xx or 4xx, or "
                                 "a status code such as 503; got '6xx'"),
        ("error_rate(5xx < 1%", "unbalanced parentheses in 'error_rate(5xx', e.g. "
                                "`error_rate(5xx)`"),
        ("count(5xx) > 1", "count takes no argument; write `count`"),
    ],
)
def test_invalid_budgets_say_what_is_wrong(expr, message):
    with pytest.raises(BudgetSyntaxError) as info:
        parse_budget(expr)
    assert str(info.value) == _msg(expr, message)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, InputError)


def test_empty_budget_is_rejected():
    with pytest.raises(BudgetSyntaxError, match="empty"):
        parse_budget("  ")


def test_abort_rules_share_the_grammar():
    rule = parse_abort("error_rate > 50% for 20s")
    assert isinstance(rule, AbortRule)
    assert (rule.name, rule.op, rule.limit, rule.window_s) == ("error_rate", ">", 0.5, 20.0)
    with pytest.raises(BudgetSyntaxError, match="did you mean error_rate"):
        parse_abort("eror_rate > 50%")


def test_parsing_is_fast_enough_for_validation():
    import time

    start = time.perf_counter()
    for _ in range(1000):
        parse_budget("p95 of GET /api/* < 300ms for 30s during peak excluding ramps")
    assert time.perf_counter() - start < 1.0


# --- judging against the known run (tests/runfolder.py: known_second) ------------------------
@pytest.fixture(scope="module")
def known(tmp_path_factory):
    return load_run(known_run(tmp_path_factory.mktemp("known")).path)


@pytest.mark.parametrize(
    ("expr", "observed", "status"),
    [
        # GET /api/products: 10 values 10..100 ms each second; p50 is the 50th of 100 sorted.
        (f"p50 of {PRODUCTS} < 60ms", 50.0, "pass"),
        (f"p95 of {PRODUCTS} <= 100.1ms", 100.0, "pass"),
        (f"p99.9 of {PRODUCTS} < 100ms", 100.0, "fail"),
        (f"mean of {PRODUCTS} < 56ms", 55.0, "pass"),
        (f"max of {PRODUCTS} <= 100ms", 100.0, "pass"),
        (f"min of {PRODUCTS} > 10ms", 10.0, "fail"),
        # all endpoints: 300 requests, 20 of them (checkout at t=6,7) at 1000 ms
        ("p95 < 500ms", 1000.0, "fail"),
        ("p90 < 500ms", 200.0, "pass"),
        ("max < 1s", 1000.0, "fail"),
        ("min > 4ms", 5.0, "pass"),
        # the glob takes products and products/{id}: 200 requests, 100 at 5 ms
        ("p95 of GET /api/* < 100ms", 90.0, "pass"),
        ("p50 of GET /api/* < 6ms", 5.0, "pass"),
        # 12 failures of 300: 10 HTTP 503 on checkout, 2 HTTP 404 on products
        ("error_rate < 5%", 12 / 300, "pass"),
        ("error_rate < 4%", 12 / 300, "fail"),
        ("error_rate(5xx) < 3%", 10 / 300, "fail"),
        ("error_rate(4xx) < 1%", 2 / 300, "pass"),
        ("error_rate(503) < 4%", 10 / 300, "pass"),
        ("error_rate(500) < 1%", 0.0, "pass"),
        (f"error_rate of {CHECKOUT} < 10%", 10 / 100, "fail"),
        ("throughput > 29/s", 30.0, "pass"),
        ("throughput >= 31/s", 30.0, "fail"),
        ("count >= 300", 300.0, "pass"),
        ("failures < 12", 12.0, "fail"),
        # stages: steady is t=3..8 (6 s); ramps are t=1,2 and t=9,10
        (f"error_rate of {CHECKOUT} < 10% during steady", 10 / 60, "fail"),
        (f"error_rate of {CHECKOUT} < 10% during ramp-up", 0.0, "pass"),
        ("error_rate < 5% excluding ramps", 10 / 180, "fail"),
        ("error_rate(4xx) < 0.1% excluding ramps", 0.0, "pass"),
        ("throughput > 29/s during steady", 30.0, "pass"),
        ("count >= 180 during steady excluding ramps", 180.0, "pass"),
        ("count >= 1 during ramp-up excluding ramps", None, "no_data"),
        # windows: the worst window decides
        (f"p95 of {CHECKOUT} < 800ms for 3s", 1000.0, "fail"),
        (f"p95 of {CHECKOUT} < 1100ms for 3s", 1000.0, "pass"),
        (f"error_rate of {CHECKOUT} < 40% for 2s", 0.5, "fail"),
        (f"error_rate of {CHECKOUT} < 40% for 5s", 0.2, "pass"),
        ("throughput > 29/s for 5s", 30.0, "pass"),
        ("error_rate < 5% for 1m", 12 / 300, "pass"),  # longer than the run: one window
        # nothing to judge
        ("p95 of GET /nope < 1s", None, "no_data"),
        ("p95 < 1s during peek", None, "no_data"),
        ("p95_due < 1s", None, "no_data"),
    ],
)
def test_budget_forms_against_a_known_run(known, expr, observed, status):
    [result] = evaluate([parse_budget(expr)], known)
    assert result.status == status
    assert result.passed is (status == "pass")
    if observed is None:
        assert result.observed is None
    else:
        assert result.observed == pytest.approx(observed, rel=1e-3, abs=1e-9)


def test_windowed_budget_reports_first_breach_and_worst_window(known):
    [result] = evaluate([parse_budget(f"p95 of {CHECKOUT} < 800ms for 3s")], known)
    # 3 s windows over t=1..10; those holding t=6 or 7 break: (3,6] (4,7] (5,8] (6,9]
    assert result.first_breach == (3.0, 6.0)
    assert result.first_breach_t == 6.0
    assert result.worst_window == (3.0, 6.0)
    assert result.breaches == ((3.0, 9.0),)
    assert result.scope == f"{CHECKOUT}, whole run, every 3s window"


def test_error_rate_window_finds_the_burst(known):
    [result] = evaluate([parse_budget(f"error_rate of {CHECKOUT} < 20% for 2s")], known)
    # 2 s windows: (4,6] and (6,8] hold 5 failures of 20, (5,7] holds 10 of 20
    assert result.first_breach == (4.0, 6.0)
    assert result.worst_window == (5.0, 7.0)
    assert result.observed == 0.5
    assert result.breaches == ((4.0, 8.0),)


def test_no_data_results_explain_why(known):
    results = evaluate([parse_budget(e) for e in
                        ("p95 of GET /nope < 1s", "p95 < 1s during peek", "p95_due < 1s")], known)
    assert results[0].note == "no endpoint matches 'GET /nope'"
    assert results[1].note == "no stage named 'peek' (stages: ramp-up, steady, ramp-down)"
    assert "open model" in results[2].note


def test_due_latency_is_judged_in_the_open_model(tmp_path):
    """1 request in 20 started 890 ms late: sent fast, but slow from the user's view."""
    run = RunFolder(tmp_path, model="arrival_rate")
    for t in range(1, 5):
        run.interval(float(t), {"GET /a": [10.0] * 20}, due={"GET /a": [10.0] * 19 + [900.0]},
                     arrivals={"due": 20, "started": 20, "dropped": 0, "late": 1,
                               "late_max_ms": 890.0})
    run.finish()
    results = evaluate([parse_budget(e) for e in ("p99 < 20ms", "p95_due < 20ms",
                                                  "p96_due < 800ms", "p99_due < 1s")],
                       load_run(tmp_path))
    assert [r.passed for r in results] == [True, True, False, True]
    assert results[2].observed == pytest.approx(900.0, rel=1e-3)


def test_percentiles_merge_sources_exactly(tmp_path):
    """Two workers report the same second; p50 comes from the merged histograms."""
    run = RunFolder(tmp_path)
    run.interval(1.002, {"GET /a": [10.0] * 9}, source="worker-0")
    run.interval(0.998, {"GET /a": [500.0] * 11}, source="worker-1")
    run.finish()
    data = load_run(tmp_path)
    [p50, count] = evaluate([parse_budget("p50 < 1s"), parse_budget("count >= 20")], data)
    # averaging the two sources' medians would give 255 ms; the merged median is 500 ms
    assert p50.observed == pytest.approx(500.0, rel=1e-3)
    assert count.observed == 20


# --- abort rules ------------------------------------------------------------------------------
def test_abort_rule_fires_on_partial_data_with_a_truncated_line(tmp_path):
    run = known_run(tmp_path, seconds=8, finish=False)
    run.truncate_last_line()
    hit = check_abort([parse_abort("p99 > 5s"),
                       parse_abort(f"error_rate of {CHECKOUT} > 40% for 1s")], load_run(tmp_path))
    assert hit is not None
    assert hit.expr == f"error_rate of {CHECKOUT} > 40% for 1s"
    assert (hit.t, hit.observed, hit.window) == (6.0, 0.5, (5.0, 6.0))


def test_abort_rule_needs_a_full_window(tmp_path):
    known_run(tmp_path, seconds=7, finish=False)
    data = load_run(tmp_path)
    assert check_abort([parse_abort("error_rate > 1% for 20s")], data) is None
    hit = check_abort([parse_abort("error_rate > 10% for 2s during steady")], data)
    assert hit is not None and hit.t == 7.0


def test_abort_rule_without_window_looks_at_the_run_so_far(known):
    # cumulative error rate: 5/180 at t=6, then 10/210 at t=7
    hit = check_abort([parse_abort("error_rate > 3%")], known)
    assert hit.t == 7.0
    assert hit.observed == pytest.approx(10 / 210)


def test_earliest_abort_rule_wins(known):
    hit = check_abort([parse_abort("failures > 11"), parse_abort("p95 > 900ms for 1s")], known)
    assert hit.expr == "p95 > 900ms for 1s" and hit.t == 6.0


def test_check_abort_on_a_folder_with_no_intervals_yet(tmp_path):
    RunFolder(tmp_path)
    assert check_abort([parse_abort("error_rate > 0%")], load_run(tmp_path)) is None
    [result] = evaluate([parse_budget("p95 < 1s")], load_run(tmp_path))
    assert result.status == "no_data"


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(612.34, "ms", "612.3 ms"), (12_500.0, "ms", "12.50 s"), (0.0125, "ratio", "1.25%"),
     (98.46, "/s", "98.5/s"), (300.0, "count", "300"), (None, "ms", "n/a"),
     (3.5, "GB", "3.5 GB")],
)
def test_values_format_for_people(value, unit, text):
    assert format_value(value, unit) == text


# --- every example in docs/budgets.md parses ----------------------------------------------------
DOCS = Path(__file__).resolve().parent.parent / "docs" / "budgets.md"


def _doc_examples() -> list[tuple[str, str]]:
    text = DOCS.read_text()
    found: list[tuple[str, str]] = []
    for kind, block in re.findall(r"```(budget|abort)\n(.*?)```", text, flags=re.S):
        found += [(kind, line.strip()) for line in block.splitlines() if line.strip()]
    scenario = yaml.safe_load(re.search(r"```yaml\n(budgets:.*?)```", text, re.S).group(1))
    found += [("budget", e) for e in scenario["budgets"]] + [("abort", e) for e in
                                                              scenario["abort"]]
    kind = None
    for line in text.splitlines():
        if line.startswith("| shop-loadtest"):
            kind = "abort" if "abort" in line else "budget"
        elif not line.startswith("|"):
            kind = None
        elif kind and (cell := re.match(r"\| `([^`]+)` \|", line)):
            found.append((kind, cell.group(1)))
    return found


DOC_EXAMPLES = _doc_examples()


def test_docs_have_examples_of_every_statistic():
    assert len(DOC_EXAMPLES) > 40
    names = {parse_budget(e).name for _, e in DOC_EXAMPLES}
    assert names == set(STATS)


def test_every_statistic_the_grammar_names_is_computed():
    assert set(COMPUTE) == set(STATS)


@pytest.mark.parametrize(("kind", "expr"), DOC_EXAMPLES)
def test_docs_examples_parse(kind, expr):
    (parse_abort if kind == "abort" else parse_budget)(expr)


def test_docs_error_message_is_the_real_one():
    with pytest.raises(BudgetSyntaxError) as info:
        parse_budget("eror_rate < 1%")
    assert f"budgets.2: {info.value}\n" in DOCS.read_text()
