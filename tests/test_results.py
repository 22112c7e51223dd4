import json
import math
import random

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from shop_loadtest.errors import ResultsError
from shop_loadtest.results import (
    INTERVAL_COLUMNS,
    TICK_COLUMNS,
    build_scope,
    counts_percentiles_ms,
    decode_counts,
    load_run,
    merge_hist,
    number,
    percentile_ms,
    percentiles_ms,
    rounded,
    windows,
    write_atomic,
)
from tests.runfolder import CHECKOUT, PRODUCTS, RunFolder, known_run


def _hist(values_us):
    hist = HdrHistogram(1, 3_600_000_000, 3)
    for v in values_us:
        hist.record_value(v)
    return hist


# --- histograms -------------------------------------------------------------------------------
def test_merged_histogram_equals_hdrh_add():
    rng = random.Random(7)
    parts = [_hist(rng.randint(1, 10 ** rng.randint(2, 9)) for _ in range(rng.randint(0, 300)))
             for _ in range(25)]
    expected = HdrHistogram(1, 3_600_000_000, 3)
    for part in parts:
        expected.add(part)
    merged = merge_hist([p.encode().decode() for p in parts] + [None, ""])
    assert merged.get_total_count() == expected.get_total_count()
    assert merged.get_max_value() == expected.get_max_value()
    assert merged.get_min_value() == expected.get_min_value()
    for q in (0, 1, 25, 50, 90, 95, 99, 99.9, 99.99, 100):
        assert percentile_ms(merged, q) == expected.get_value_at_percentile(q) / 1000.0
        assert merged.get_value_at_percentile(q) == expected.get_value_at_percentile(q)


def test_percentiles_are_exact_to_a_tenth_of_a_percent():
    hist = _hist(ms * 1000 for ms in range(1, 1001))  # 1..1000 ms, once each
    values = percentiles_ms(hist, [50, 95, 99])
    assert values[50] == pytest.approx(500.0, rel=1e-3)
    assert values[95] == pytest.approx(950.0, rel=1e-3)
    assert values[99] == pytest.approx(990.0, rel=1e-3)


def test_nothing_to_merge_gives_none():
    assert merge_hist([None, None]) is None
    assert merge_hist([]) is None
    assert percentile_ms(None, 95) is None
    assert percentiles_ms(None, [50]) == {50: None}
    assert counts_percentiles_ms(None, [50, 99]) == [None, None]


def test_unreadable_histograms_are_skipped():
    good = _hist([1000, 2000]).encode().decode()
    assert decode_counts("not a histogram") is None
    assert merge_hist(["garbage!!", good]).get_total_count() == 2


def test_histograms_with_another_layout_are_rebucketed():
    other = HdrHistogram(1, 60_000_000, 2)
    other.record_value(250_000)
    merged = merge_hist([other.encode().decode(), _hist([250_000]).encode().decode()])
    assert merged.get_total_count() == 2
    assert percentile_ms(merged, 50) == pytest.approx(250.0, rel=1e-2)


# --- loading a folder -----------------------------------------------------------------------
def test_load_run_reads_every_file(tmp_path):
    run = known_run(tmp_path)
    run.monitor(5.0, [("shop_db_bytes", {"db": "main"}, 1.5e6), ("shop_orders", {}, 42)])
    data = load_run(tmp_path)
    assert data.meta["scenario"] == "demo"
    assert list(data.intervals.columns) == INTERVAL_COLUMNS
    assert list(data.ticks.columns) == TICK_COLUMNS
    assert len(data.intervals) == 30 and len(data.ticks) == 10
    assert data.intervals["n"].sum() == 300 and data.intervals["fail"].sum() == 12
    assert data.endpoints[0] in (PRODUCTS, CHECKOUT)
    assert set(data.endpoints) == {PRODUCTS, CHECKOUT, "GET /api/products/{id}"}
    assert data.errors["count"].sum() == 12
    assert set(data.errors["kind"]) == {"HTTP 503", "HTTP 404"}
    assert [e["kind"] for e in data.events] == ["start", "stop"]
    assert list(data.monitor["name"]) == ["shop_db_bytes", "shop_orders"]
    assert data.monitor["value"].tolist() == [1.5e6, 42.0]
    assert data.duration_s == 10.0 and data.interval_s == 1.0
    assert data.warnings == ()
    assert [s["name"] for s in data.stages] == ["ramp-up", "steady", "ramp-down"]


def test_missing_folder_and_run_json_raise_results_error(tmp_path):
    with pytest.raises(ResultsError, match="no such results folder"):
        load_run(tmp_path / "nope")
    with pytest.raises(ResultsError) as info:
        load_run(tmp_path)
    assert str(info.value) == f"{tmp_path / 'run.json'}: missing; is this a results folder?"
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(ResultsError, match="run.json: unreadable"):
        load_run(tmp_path)


def test_optional_files_may_be_missing(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"scenario": "x"}))
    data = load_run(tmp_path)
    assert data.intervals.empty and data.ticks.empty and data.errors.empty
    assert data.monitor.empty and data.events == []
    assert data.duration_s == 0.0 and data.endpoints == []


def test_truncated_last_line_is_ignored_with_a_warning(tmp_path):
    run = known_run(tmp_path, seconds=4, finish=False)
    run.truncate_last_line("intervals.jsonl")
    run.event(4.5, "abort", rule="x")
    with (tmp_path / "events.jsonl").open("a") as handle:
        handle.write('{"t": 5, "kind": "st')
    data = load_run(tmp_path)
    assert sorted(set(data.intervals["t"])) == [1.0, 2.0, 3.0]
    assert data.warnings == ("intervals.jsonl:4: truncated last line ignored",
                             "events.jsonl:3: truncated last line ignored")
    assert [e["kind"] for e in data.events] == ["start", "abort"]


def test_a_bad_line_in_the_middle_is_skipped(tmp_path):
    run = known_run(tmp_path, seconds=3)
    lines = (tmp_path / "intervals.jsonl").read_text().splitlines()
    lines.insert(1, "garbage")
    lines.insert(2, "[1, 2]")
    (tmp_path / "intervals.jsonl").write_text("\n".join(lines) + "\n")
    data = load_run(run.path)
    assert len(data.ticks) == 3
    assert data.warnings == ("intervals.jsonl:2: not JSON, ignored",
                             "intervals.jsonl:3: not a JSON object, ignored")


def test_sources_flushing_a_few_ms_apart_land_on_the_same_interval(tmp_path):
    run = RunFolder(tmp_path)
    run.interval(1.003, {"GET /a": [10.0]}, source="worker-0")
    run.interval(0.996, {"GET /a": [20.0]}, source="worker-1")
    run.interval(2.4, {"GET /a": [30.0]}, source="worker-0")  # the last, shorter flush
    run.interval(0.2, {}, source="master", users=None, cpu=None)
    data = load_run(tmp_path)
    assert data.intervals["t"].tolist() == [1.0, 1.0, 2.0]
    assert data.grid.tolist() == [1.0, 2.0]
    assert data.ticks.groupby("t")["users"].sum().tolist() == [20.0, 10.0]


def test_monitor_lines_are_read_leniently(tmp_path):
    run = RunFolder(tmp_path)
    run.monitor(1.0, [("up", {}, 1)])
    run.monitor(2.0, [], ok=False, error="connection refused")
    with (tmp_path / "monitor.jsonl").open("a") as handle:
        handle.write('{"t": 3, "samples": [{"name": "up", "labels": "oops", "value": "x"}]}\n')
        handle.write('{"t": 4, "samp')
    data = load_run(tmp_path)
    mon = data.monitor
    assert mon["t"].tolist() == [1.0, 2.0, 3.0]
    assert mon["name"].isna().tolist() == [False, True, False]
    assert mon["error"].tolist()[1] == "connection refused"
    assert np.isnan(mon["value"].tolist()[2]) and mon["labels"].tolist()[2] == {}
    assert data.warnings == ("monitor.jsonl:4: truncated last line ignored",)


# --- slices ------------------------------------------------------------------------------------
def test_scopes_select_endpoints_and_stages(tmp_path):
    data = load_run(known_run(tmp_path).path)
    everything = build_scope(data)
    assert everything.t.tolist() == [float(t) for t in range(1, 11)]
    assert everything.total("n").tolist() == [30.0] * 10
    glob = build_scope(data, "GET /api/*")
    assert glob.endpoints == [PRODUCTS, "GET /api/products/{id}"]
    assert glob.describe(30) == "GET /api/* (2 endpoints), whole run, every 30s window"
    steady = build_scope(data, CHECKOUT, "steady")
    assert steady.t.tolist() == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert steady.failures_where(lambda kind: kind == "HTTP 503").sum() == 10
    holds = build_scope(data, excluding_ramps=True)
    assert holds.t.tolist() == steady.t.tolist()
    braces = build_scope(data, "GET /api/products/{id}")  # an exact name is not a glob
    assert braces.endpoints == ["GET /api/products/{id}"]


@pytest.mark.parametrize(
    ("t", "window", "full_only", "starts", "ends"),
    [
        ([1, 2, 3, 4], None, False, [0], [4]),
        ([1, 2, 3, 4], None, True, [0, 0, 0, 0], [1, 2, 3, 4]),
        ([1, 2, 3, 4], 2, False, [0, 1, 2], [2, 3, 4]),
        ([1, 2, 3, 4], 5, False, [0], [4]),
        ([1, 2, 3, 4], 5, True, [], []),
        ([1, 2, 3, 7, 8], 2, False, [0, 1, 3], [2, 3, 5]),  # no window spans the gap
        ([1, 2, 3, 7], 2, False, [0, 1, 3], [2, 3, 4]),
        ([1, 2, 3, 7], 2, True, [0, 1], [2, 3]),
    ],
)
def test_windows_slide_within_runs_of_consecutive_intervals(tmp_path, t, window, full_only,
                                                              starts, ends):
    run = RunFolder(tmp_path)
    for second in t:
        run.interval(float(second), {"GET /a": [1.0]})
    got_starts, got_ends = windows(build_scope(load_run(tmp_path)), window, full_only=full_only)
    assert got_starts.tolist() == starts and got_ends.tolist() == ends


def test_runfolder_precomputes_percentiles_as_hdrh_does():
    from tests.runfolder import _histogram, _pct, _us

    rng = random.Random(3)
    for _ in range(50):
        latencies = [rng.lognormvariate(4, 1) for _ in range(rng.randint(0, 60))]
        hist, ordered = _histogram(latencies), sorted(_us(latencies))
        for q in (50, 95, 99):
            assert _pct(hist, ordered, q) == hist.get_value_at_percentile(q) / 1000.0


@pytest.mark.parametrize(("value", "missing", "read"), [
    ("12.5", math.nan, 12.5), ("x", math.nan, math.nan), (3, None, 3.0), (None, None, None),
    ("n/a", None, None),
    ({"x": 1}, 0.0, 0.0), (float("nan"), None, None), ("nan", 7.0, 7.0), ("inf", None, math.inf),
])
def test_number_reads_leniently_and_says_what_is_missing(value, missing, read):
    got = number(value, missing)
    assert got == read or (math.isnan(got) and math.isnan(read))


def test_number_is_nan_by_default_and_rounded_drops_no_value():
    assert math.isnan(number("garbage"))
    assert rounded(2 / 3) == 0.667 and rounded(1 / 3, 6) == 0.333333
    assert rounded(None) is None and rounded(float("nan")) is None and rounded("x") is None


def test_write_atomic_replaces_the_file_whole_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    write_atomic(target, "new ✓\n")
    assert target.read_text(encoding="utf-8") == "new ✓\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
