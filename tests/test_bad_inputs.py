"""Every bad input issue 15 names, kept as files under tests/inputs/: each ends in exit 2 with
one line per error naming file:line, or is rightly accepted; no traceback, no hang.

A scenario file states what it must print in its first lines, one `# expect: REGEX` per error
line, in order. Run folders under tests/inputs/runs/ are listed in RUNS with what `report`
must answer.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from shop_loadtest import cli
from shop_loadtest.errors import EXIT_INPUT, EXIT_OK, EXIT_RUN
from tests.conftest import cli as real_cli

INPUTS = Path(__file__).resolve().parent / "inputs"
BAD = sorted((INPUTS / "bad").glob("*.yaml"))
GOOD = sorted((INPUTS / "good").glob("*.yaml"))
MAX_LINE = 400


def run_main(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The CLI in this process (the same `main` the console script calls)."""
    with pytest.raises(SystemExit) as done:
        cli.main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def expectations(path: Path) -> list[str]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        return [line[len("# expect: "):].rstrip("\n") for line in handle
                if line.startswith("# expect: ")]


def assert_clean(text: str) -> None:
    assert "Traceback" not in text
    for line in text.splitlines():
        assert len(line) <= MAX_LINE, line[:200]


def test_every_bad_file_states_what_it_must_print():
    assert len(BAD) >= 30
    for path in BAD:
        assert expectations(path), f"{path.name} has no '# expect:' line"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_a_bad_scenario_is_exit_2_with_one_located_line_per_error(path, capsys):
    code, out, err = run_main("validate", str(path), capsys=capsys)
    assert code == EXIT_INPUT, err
    assert out == ""
    assert_clean(err)
    lines = err.splitlines()
    wanted = expectations(path)
    assert len(lines) == len(wanted), err
    for pattern, line in zip(wanted, lines, strict=True):
        assert re.search(pattern, line), f"{line!r} does not match {pattern!r}"
        assert line.startswith(str(path)), line  # names the file (and line, by the pattern)


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_a_rightly_accepted_input_validates(path, capsys):
    code, out, err = run_main("validate", str(path), capsys=capsys)
    assert (code, err) == (EXIT_OK, "")
    assert out.startswith(f"{path}: ok")


def test_a_csv_with_a_byte_order_mark_reads_its_first_column_by_name():
    from shop_loadtest.journeys.data import read_csv

    columns, rows = read_csv(INPUTS / "bad" / "files" / "bom.csv")
    assert columns == ["email", "name"]
    assert rows == [{"email": "a@example.com", "name": "Ann"}]


def test_run_reports_every_error_of_the_file_too(capsys, tmp_path):
    path = INPUTS / "bad" / "many-errors.yaml"
    code, _, err = run_main("run", str(path), "--reports", str(tmp_path), capsys=capsys)
    assert code == EXIT_INPUT
    assert len(err.splitlines()) == len(expectations(path)) == 3
    assert all(line.startswith(f"error: {path}:") for line in err.splitlines())
    assert not any(tmp_path.iterdir())  # nothing ran


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", ["alias-bomb", "recursive-alias", "deep-nesting", "nul-byte",
                                  "jinja-huge-power", "host-ipv6-unclosed"])
def test_the_real_command_ends_the_worst_inputs_with_one_line(name):
    """As a user runs it: a fresh process, its real exit code (these were tracebacks or hangs)."""
    done = real_cli("validate", f"tests/inputs/bad/{name}.yaml", timeout=120)
    assert done.returncode == EXIT_INPUT, done.stderr
    assert_clean(done.stderr)
    assert len(done.stderr.splitlines()) == 1


# --- command lines ------------------------------------------------------------------------
def test_version_and_h_are_flags(capsys):
    from shop_loadtest import __version__

    assert run_main("--version", capsys=capsys)[:2] == (EXIT_OK, f"shop-loadtest {__version__}\n")
    code, out, _ = run_main("-h", capsys=capsys)
    assert code == EXIT_OK and "Usage:" in out and "validate" in out
    code, out, _ = run_main("run", "-h", capsys=capsys)
    assert code == EXIT_OK and "--speedup" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--speedup", "inf"], "Invalid value for '--speedup': expected a number from 0.001"),
    (["--speedup", "1e300"], "Invalid value for '--speedup'"),
    (["--speedup", "nan"], "Invalid value for '--speedup'"),
    (["--speedup", "0"], "Invalid value for '--speedup'"),
    (["--host", "http://[::1"], "Invalid value for '--host': not a valid URL (Invalid IPv6 URL)"),
    (["--host", "http://127.0.0.1:99999"], "Invalid value for '--host': not a valid URL (Port"),
    (["--host", "127.0.0.1:8800"], "Invalid value for '--host': expected a URL such as"),
    (["--out", "README.md"], "Invalid value for '--out': README.md is a file"),
])
def test_bad_run_flags_are_exit_2_before_anything_starts(args, message, capsys, tmp_path):
    scenario = str(INPUTS / "good" / "csv-bom.yaml")
    code, out, err = run_main("run", scenario, "--reports", str(tmp_path), *args,
                              capsys=capsys)
    assert code == EXIT_INPUT
    assert message in err
    assert_clean(err)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("args", [
    ["find-capacity", "scenarios/flash-sale.yaml", "--start", "nan"],
    ["find-capacity", "scenarios/flash-sale.yaml", "--max", "inf"],
    ["plan", "scenarios/flash-sale.yaml", "--rps-per-worker", "inf"],
    ["compare", "a", "b", "--alpha", "nan"],
    ["preview", "scenarios/flash-sale.yaml", "--speedup", "inf"],
])
def test_non_finite_numbers_on_any_command_are_exit_2(args, capsys):
    code, _, err = run_main(*args, capsys=capsys)
    assert code == EXIT_INPUT, err
    assert_clean(err)


def test_an_unexpected_exception_is_one_line_exit_3_with_a_log_of_the_traceback(
        capsys, monkeypatch, tmp_path):
    """The last line of defence: a bug of ours reaches the user as one line, never exit 1."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR

    def broken() -> None:
        raise KeyError("a bug of ours")

    command = cli.app.command("broken-for-test")(broken)
    try:
        code, out, err = run_main("broken-for-test", capsys=capsys)
    finally:
        cli.app.registered_commands = [c for c in cli.app.registered_commands
                                       if c.callback is not command]
    assert code == EXIT_RUN
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("internal error: KeyError: 'a bug of ours'; please report it "
                               "with the run folder and ")
    log = Path(lines[0].rsplit(" and ", 1)[1])
    assert log.parent == tmp_path
    assert "Traceback" in log.read_text() and "raise KeyError" in log.read_text()


# --- run folders --------------------------------------------------------------------------
# name: (exit code, requests in summary.json or None, substrings of the warnings printed)
RUNS = {
    "good": (EXIT_OK, 90, []),
    "duplicate-lines": (EXIT_OK, 90, ["3 duplicated lines (same source, t and ts), read once"]),
    "huge-count": (EXIT_OK, 80, ["1 endpoint entries whose counts are not whole numbers"]),
    "nan-latencies": (EXIT_OK, 90, ["3 latencies that are not finite numbers",
                                    "1 values of users", "1 values of target"]),
    "string-errors": (EXIT_OK, 60, ["lines whose errors is not a list",
                                    "lines whose endpoints is not a mapping"]),
    "string-budgets": (EXIT_RUN, None, ["budgets is a str, not a list of expressions"]),
    "schema-99": (EXIT_RUN, None, ["schema_version 99 is not one this shop-loadtest reads"]),
    "nothing-trustworthy": (EXIT_RUN, None, ["none of its 3 lines holds usable figures"]),
}


def test_every_run_folder_under_tests_inputs_is_listed():
    assert {p.name for p in (INPUTS / "runs").iterdir()} == set(RUNS)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_damaged_run_folder_is_read_with_a_warning_per_kind_or_exit_3(name, capsys, tmp_path):
    code_wanted, requests, messages = RUNS[name]
    run_dir = tmp_path / name
    shutil.copytree(INPUTS / "runs" / name, run_dir)
    code, out, err = run_main("report", str(run_dir), capsys=capsys)
    assert code == code_wanted, err
    assert_clean(err + out)
    for message in messages:
        assert message in err
    assert len(err.splitlines()) == len(messages)  # one line per kind of damage
    if requests is not None:
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["requests"] == requests
        assert len(summary["warnings"]) == len(messages)


def test_the_checks_of_counts_and_measures_refuse_what_would_overflow_or_poison():
    from shop_loadtest.results.checks import count, measure

    assert [count(v) for v in (0, 3, 3.0, 10**12)] == [0, 3, 3, 10**12]
    assert [count(v) for v in (10**30, -1, 2.5, "3", True, None, float("nan"))] == [None] * 7
    assert [measure(v) for v in (0, 2.5)] == [0.0, 2.5]
    assert [measure(v) for v in (float("inf"), float("-inf"), float("nan"), -1, "1")] == \
        [None] * 5
