"""Property-based fuzzing of `validate`: whatever the file holds, the answer is exit 0 or 2,
quickly, in a few lines, never a traceback; and what it accepts generates a locustfile that
compiles, with a shape that only returns finite values.

Inputs are valid scenarios (tests/inputs/fuzz/ and scenarios/) mutated by hypothesis: fields
deleted, duplicated, retyped and perturbed; YAML features injected (anchors, aliases, merge
keys, tags, documents, deep nesting); random bytes spliced in. Example counts come from the
hypothesis profile in tests/conftest.py (`make fuzz` raises them).
"""

from __future__ import annotations

import ast
import contextlib
import copy
import io
import math
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from shop_loadtest import cli, limits
from shop_loadtest.errors import EXIT_INPUT, EXIT_OK, MAX_LISTED
from tests.conftest import FUZZ_CLI_EXAMPLES, FUZZ_PROFILE
from tests.conftest import cli as real_cli

ROOT = Path(__file__).resolve().parent.parent
SEED_FILES = [*sorted((ROOT / "tests" / "inputs" / "fuzz").glob("*.yaml")),
              ROOT / "scenarios" / "flash-sale.yaml", ROOT / "scenarios" / "email-blast.yaml"]
TIME_BOUND_S = 30.0  # a hang detector, far above the milliseconds an input takes
MAX_LINES = MAX_LISTED + 1

HOSTILE_TEXT = [
    "{{ 9**(9**9) }}", "{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}", "{{ 'x' * 10**9 }}", "{{ (10**5)**(10**5) }}",
    "{{ 'a'|attr('__class__') }}", "{{ x['__dict__'] }}", "{{ range(10**9)|list }}",
    "{{ product_id ** 99999 }}", "{{", "}}", "{% if %}", "{{ faker.emial() }}",
    "{{ undefined_name }}", "{{ env.NOT_SET }}", "1e-300", "1e308", "-1e308", "100000000000d",
    "-1s", "0s", "1s..0s", "9999999h", "1m30", "nan", "NaN", ".inf", "http://[::1",
    "http://127.0.0.1:99999", "http://127.0.0.1:0", "ftp://x", "GET /a\r\nX-Injected: 1",
    "GET /a HTTP/1.1", "POST", "BREW /pot", "X-A\r\nB", "a" * 5000, "\x00", "\ufeff", "\u2028",
    "p95 of POST /api/chekout < 800ms", "error_rate < 1%", "p95 < ", "p95 < 500ms during nope",
    "throughput > 1e308/s", "json:$..[", "regex:(", "css:a[", "header:", "cookie:", "form:",
    "data/customers.csv", "files/ragged.csv", "/etc/passwd", "../../../x.py:User",
    "x.py:NotThere", "*", "&", "!", "%", "\t", "", " ", "true", "null", "~",
]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**20, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(HOSTILE_TEXT), st.lists(st.integers(-5, 700), max_size=3),
    st.dictionaries(st.text(max_size=6), st.sampled_from([1, "x", None]), max_size=2),
    st.dates(), st.binary(max_size=6),
)
FACTORS = [0, -1, 1e-300, 1e-6, 0.5, 2, 1e6, 1e300, 10**30, math.inf, math.nan]
YAML_SNIPPETS = [
    "---\n", "...\n", "%YAML 1.1\n", "!!python/object/apply:os.system ['true']\n",
    "? [a, b]\n: 1\n", "x: &a [1, *a]\n", "<<: {name: merged}\n", "extra: !!binary aGVsbG8=\n",
    "s: !!set {a, b}\n", "d: !!timestamp 2001-12-14\n", "f: !!float .nan\n", "\t", "# c\n",
    "&anchor ", "*anchor", "*undefined_alias", "{", "[", "'", '"', "|\n", ">\n", "\ufeff",
    "\x00", "\x85", "\u2028", ": : :\n", "- - -\n", "name: duplicate\n", "load: null\n",
]


@dataclass(frozen=True)
class Seed:
    name: str
    text: str
    tree: Any


def _seeds() -> list[Seed]:
    return [Seed(p.name, p.read_text(encoding="utf-8"),
                 yaml.safe_load(p.read_text(encoding="utf-8"))) for p in SEED_FILES]


SEEDS = _seeds()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the seeds' data files (data/) and the bad inputs' (files/)."""
    work = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(ROOT / "scenarios" / "data", work / "data")
    shutil.copytree(ROOT / "tests" / "inputs" / "bad" / "files", work / "files")
    return work


# --- mutations ----------------------------------------------------------------------------
def _places(tree: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into the tree (dict keys and list indexes)."""
    yield path
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _places(value, (*path, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _places(value, (*path, i))


def _parent(tree: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        tree = tree[part]
    return tree


def _mutate_tree(data: st.DataObject, tree: Any) -> Any:
    tree = copy.deepcopy(tree)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        places = [p for p in _places(tree) if p]
        if not places:
            return data.draw(VALUES)
        path = data.draw(st.sampled_from(places), label="path")
        parent, key = _parent(tree, path), path[-1]
        op = data.draw(st.sampled_from(["delete", "duplicate", "retype", "perturb", "rename"]),
                       label="op")
        if op == "delete":
            del parent[key]
        elif op == "duplicate":
            if isinstance(parent, list):
                parent.insert(key, copy.deepcopy(parent[key]))
            else:
                parent[f"{key}_copy"] = copy.deepcopy(parent[key])
        elif op == "retype":
            parent[key] = data.draw(VALUES, label="value")
        elif op == "perturb":
            value = parent[key]
            if isinstance(value, int | float) and not isinstance(value, bool):
                factor = data.draw(st.sampled_from(FACTORS), label="factor")
                try:
                    parent[key] = value * factor
                except OverflowError:
                    parent[key] = math.inf
            elif isinstance(value, str):
                cut = data.draw(st.integers(0, len(value)), label="cut")
                parent[key] = value[:cut] + data.draw(
                    st.sampled_from(HOSTILE_TEXT[:20] + ["{{", "}}", "..", "%", "/"])) + \
                    value[cut:]
            else:
                parent[key] = data.draw(VALUES, label="value")
        elif op == "rename" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["nmae", "target", "stages", "__class__", "1",
                                              "weight", "x" * 300]))] = parent.pop(key)
    return tree


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump(tree: Any) -> str:
    try:
        return yaml.dump(tree, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=100)
    except yaml.YAMLError:  # a value safe_dump cannot write: keep the seed's own text
        return yaml.safe_dump({"unwritable": True})


def _mutate_text(data: st.DataObject, text: str) -> bytes:
    op = data.draw(st.sampled_from(["none", "inject", "bytes", "truncate", "dupline", "nest",
                                    "alias"]), label="text op")
    lines = text.splitlines(keepends=True) or [""]
    if op == "inject":
        at = data.draw(st.integers(0, len(lines)), label="line")
        lines.insert(at, data.draw(st.sampled_from(YAML_SNIPPETS), label="snippet"))
    elif op == "dupline":
        at = data.draw(st.integers(0, len(lines) - 1), label="line")
        lines.insert(at, lines[at])
    elif op == "nest":
        depth = data.draw(st.integers(10, 3000), label="depth")
        lines.append(f"deep: {'[' * depth}1{']' * depth}\n")
    elif op == "alias":
        width = data.draw(st.integers(2, 12), label="width")
        levels = data.draw(st.integers(2, 9), label="levels")
        bomb = [f"l0: &l0 [{', '.join(['x'] * width)}]\n"]
        bomb += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]\n"
                 for i in range(1, levels)]
        lines = bomb + lines + [f"variables: {{v: *l{levels - 1}}}\n"]
    raw = "".join(lines).encode("utf-8")
    if op == "bytes":
        at = data.draw(st.integers(0, len(raw)), label="byte at")
        raw = raw[:at] + data.draw(st.binary(min_size=1, max_size=8), label="bytes") + \
            raw[at + data.draw(st.integers(0, 8), label="replaced"):]
    elif op == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)), label="length")]
    return raw


def _mutant(data: st.DataObject) -> bytes:
    seed = data.draw(st.sampled_from(SEEDS), label="seed")
    if data.draw(st.booleans(), label="mutate tree"):
        text = _dump(_mutate_tree(data, seed.tree))
    else:
        text = seed.text
    return _mutate_text(data, text)


# --- properties ---------------------------------------------------------------------------
@contextlib.contextmanager
def _time_bound(seconds: float) -> Iterator[None]:
    """Fail an input that takes longer than `seconds` (a hang), instead of waiting forever."""
    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"validate took longer than {seconds:.0f}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _validate_in_process(path: Path) -> tuple[int, str, str]:
    """The `validate` command's own function, without building the typer app each time (that
    costs more than validating). Any exception but its exit would be main()'s exit 3."""
    out, err = io.StringIO(), io.StringIO()
    code = EXIT_OK
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            _time_bound(TIME_BOUND_S):
        try:
            cli.validate([path])
        except typer.Exit as done:
            code = done.exit_code
    return code, out.getvalue(), err.getvalue()


def assert_answer_is_clean(code: int, out: str, err: str) -> None:
    assert code in (EXIT_OK, EXIT_INPUT), (code, err)
    for text in (out, err):
        assert "Traceback" not in text and "internal error" not in text, err
        lines = text.splitlines()
        assert len(lines) <= MAX_LINES, err
        assert all(len(line) <= 400 for line in lines), err
    if code == EXIT_OK:
        assert err == "" and out.rstrip().endswith("budgets)")
    else:
        assert out == "" and err


def assert_accepted_scenario_is_runnable(path: Path) -> None:
    """What validate accepts generates a locustfile that compiles, and its shape (what the
    runtime's CampaignShape and arrival scheduler read) gives finite values everywhere."""
    import random

    from shop_loadtest.generate.locustfile import render_locustfile
    from shop_loadtest.scenario import load_scenario
    from shop_loadtest.shapes import arrival_times

    scenario = load_scenario(path)
    source = render_locustfile(scenario, source=path.as_posix(),
                               output=(path.parent / "locustfile.py").as_posix(), base=path.parent)
    compile(source, "locustfile.py", "exec")
    # A float written as a bare inf or nan compiles, then dies in Locust with a NameError.
    names = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    assert not names & {"inf", "nan"}
    profile = scenario.profile(path.parent)
    duration = profile.duration
    assert 0 < duration <= limits.MAX_SHAPE_S and math.isfinite(profile.total())
    assert 0 < profile.peak() <= limits.MAX_TARGET
    for i in range(41):
        t = duration * i / 40
        value = profile.value(t)
        assert math.isfinite(value) and 0 <= value <= limits.MAX_TARGET
        assert math.isfinite(profile.cumulative(t))
    if scenario.load.model == "arrival_rate":
        times = arrival_times(profile, index=0, count=1, mode=scenario.load.arrivals,
                              rng=random.Random(1))
        due = [t for _, t in zip(range(200), times, strict=False)]
        assert all(math.isfinite(t) and 0 <= t <= duration + 1e-6 for t in due)
        assert due == sorted(due)


@given(data=st.data())
def test_validate_answers_every_mutated_scenario_with_0_or_2_and_a_few_clean_lines(
        data, workdir):
    path = workdir / "mutant.yaml"
    path.write_bytes(_mutant(data))
    code, out, err = _validate_in_process(path)
    assert_answer_is_clean(code, out, err)
    if code == EXIT_OK:
        assert_accepted_scenario_is_runnable(path)


@settings(max_examples=FUZZ_CLI_EXAMPLES[FUZZ_PROFILE])
@given(data=st.data())
def test_the_real_command_answers_mutated_scenarios_with_0_or_2(data, workdir):
    path = workdir / "mutant-cli.yaml"
    path.write_bytes(_mutant(data))
    done = real_cli("validate", str(path), cwd=workdir, timeout=120)
    assert_answer_is_clean(done.returncode, done.stdout, done.stderr)


def test_the_seeds_are_valid_so_mutants_start_from_a_good_file(workdir, capsys):
    for seed in SEEDS:
        path = workdir / seed.name
        path.write_text(seed.text, encoding="utf-8")
        code, out, err = _validate_in_process(path)
        assert (code, err) == (EXIT_OK, ""), err
        assert_accepted_scenario_is_runnable(path)
