"""Checks of a scenario's journeys that its models cannot make on their own."""

from __future__ import annotations

import csv
import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError, meta, nodes

from shop_loadtest.errors import shown
from shop_loadtest.journeys.captures import Capture
from shop_loadtest.journeys.data import read_csv
from shop_loadtest.journeys.sandbox import Sandbox, template_problem
from shop_loadtest.journeys.templates import (
    GLOBAL_NAMES,
    Loc,
    SecretEnv,
    is_template,
    walk_strings,
)

if TYPE_CHECKING:
    from shop_loadtest.scenario.models import Scenario

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Read as mapping methods, not variable names: `env.items()` would list the environment.
# (`env.get('NAME', fallback)` with the name written out is the one call allowed.)
_NOT_VARIABLES = {"items", "keys", "values", "get", "copy", "pop", "popitem", "update",
                  "setdefault", "clear", "used", "scrub", "mro"}


@dataclass(frozen=True)
class Problem:
    message: str
    loc: tuple[str | int, ...]


def _templated_fields(step: Any) -> Iterator[tuple[Loc, str]]:
    """(location inside the step, text) for every string of a scenario step that is sent;
    check values come last (they may use the step's own captures)."""
    if step.request:
        yield ("request",), step.request
    yield from walk_strings(step.query, ("query",))
    yield from walk_strings(step.json_body, ("json",))
    yield from walk_strings(step.form, ("form",))
    yield from walk_strings(step.body, ("body",))
    yield from walk_strings(step.headers, ("headers",))


def _check_fields(step: Any) -> Iterator[tuple[Loc, str]]:
    for i, check in enumerate(step.check):
        yield from walk_strings(check.equals, ("check", i, "equals"))
        for key in ("contains", "body_contains", "body_not_contains", "final_url"):
            yield from walk_strings(getattr(check, key), ("check", i, key))


def _faker_attributes(ast: nodes.Template) -> Iterator[str]:
    for node in ast.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "faker":
            yield node.attr


def _column_uses(ast: nodes.Template, data: Mapping[str, list[str]]) -> Iterator[tuple[str, str]]:
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if not (isinstance(target, nodes.Name) and target.name in data):
            continue
        if isinstance(node, nodes.Getattr):
            yield target.name, node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and \
                isinstance(node.arg.value, str):
            yield target.name, node.arg.value


def env_problems(ast: nodes.Template) -> Iterator[str]:
    """`env` may only be read as `env.NAME`, the variable named literally: anything else on
    it (`env.items()`, `env[name]`, `env` passed around) could read or send the whole
    environment. A separate rule from the template checks, on purpose (docs/safety.md)."""
    reads: set[int] = set()
    called = {id(call.node) for call in ast.find_all(nodes.Call)}
    for call in ast.find_all(nodes.Call):  # env.get('NAME') and env.get('NAME', fallback)
        target = call.node
        if isinstance(target, nodes.Getattr) and target.attr == "get" and \
                isinstance(target.node, nodes.Name) and target.node.name == "env":
            first = call.args[0] if call.args else None
            if isinstance(first, nodes.Const) and isinstance(first.value, str) and \
                    _ENV_NAME.match(first.value) and len(call.args) <= 2 and not call.kwargs:
                reads.add(id(target.node))
                called.discard(id(target))
    for node in ast.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "env":
            if id(node.node) in reads and node.attr == "get" and id(node) not in called:
                continue  # a literal env.get('NAME', ...)
            if _ENV_NAME.match(node.attr) and node.attr not in _NOT_VARIABLES and \
                    not hasattr(SecretEnv, node.attr) and id(node) not in called:
                reads.add(id(node.node))
            else:
                yield (f"env.{node.attr} is not allowed: templates may only read environment "
                       "variables as env.NAME or env.get('NAME', fallback)")
                reads.add(id(node.node))
    for item in ast.find_all(nodes.Getitem):
        if isinstance(item.node, nodes.Name) and item.node.name == "env":
            yield ("env[...] is not allowed: templates may only read environment variables "
                   "as env.NAME or env.get('NAME', fallback), the name written out")
            reads.add(id(item.node))
    for name in ast.find_all(nodes.Name):
        if name.name == "env" and id(name) not in reads:
            yield ("env is not allowed on its own: templates may only read environment "
                   "variables as env.NAME or env.get('NAME', fallback)")
            return


def _hint(word: str, options: Iterable[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


class _Checker:
    """Template checks for one scenario: names, Faker providers and data columns."""

    def __init__(self, scenario: Scenario, base: Path) -> None:
        from faker import Faker

        self.env = Sandbox()
        self.base = base
        self.problems: list[Problem] = []
        locale = scenario.faker.locale
        try:
            self.fake = Faker(locale) if locale else Faker()
        except AttributeError:
            self.fake = Faker()
        self.columns: dict[str, list[str]] = {}
        self.exports: dict[str, tuple[tuple[str, ...], Loc]] = {}  # file -> (values, where)

    def template(self, text: str, loc: Loc, known: set[str],
                 later: Mapping[str, str]) -> None:
        """Check one string; `later` maps names captured after this point to where."""
        if not is_template(text):
            return
        try:
            ast = self.env.parse(text)
        except TemplateSyntaxError as exc:
            self.problems.append(Problem(f"template does not parse: {exc.message}", loc))
            return
        except RecursionError:
            self.problems.append(Problem("template nests too deeply to parse", loc))
            return
        # The env rule is its own rule (docs/safety.md) and only reads the parsed tree: it is
        # reported whatever the sandbox check finds, so `env._environ` is named an env misuse.
        self.problems.extend(Problem(message, loc) for message in env_problems(ast))
        problem = template_problem(ast)
        if problem is not None:  # checked before anything below compiles the template
            self.problems.append(Problem(problem, loc))
            return
        for name in sorted(meta.find_undeclared_variables(ast)):
            if name in known:
                continue
            if name in later:
                self.problems.append(Problem(f"{name!r} is used before {later[name]}", loc))
            else:
                self.problems.append(Problem(f"unknown variable {name!r}{_hint(name, known)}",
                                             loc))
        for attr in _faker_attributes(ast):
            if not hasattr(self.fake, attr):
                options = [a for a in dir(self.fake) if not a.startswith("_")]
                self.problems.append(Problem(
                    f"unknown Faker provider faker.{attr}{_hint(attr, options, 'faker.')}", loc))
        for source, column in _column_uses(ast, self.columns):
            if column not in self.columns[source]:
                columns = self.columns[source]
                self.problems.append(Problem(
                    f"data {source!r} has no column {column!r}{_hint(column, columns)} "
                    f"(columns: {', '.join(columns)})", loc))

    def name(self, kind: str, var: str, loc: Loc) -> bool:
        """Whether `var` can be assigned (by a capture or set:); a problem when not."""
        if _IDENT.match(var) and var not in GLOBAL_NAMES:
            return True
        self.problems.append(Problem(
            f"{kind} name {var!r} must be a plain name (letters, digits, _) other "
            f"than {', '.join(GLOBAL_NAMES)}", loc))
        return False

    def assignments(self, step: Any, base: Loc, known: set[str],
                    later: Mapping[str, str]) -> None:
        """A `set:` step: names, and each value's templates (which may use the names set
        before it in the same step)."""
        known = set(known)
        for var, value in step.set_.items():
            loc: Loc = (*base, "set", var)
            self.name("set", var, loc)
            for field_loc, text in walk_strings(value, loc):
                self.template(text, field_loc, known, later)
            known.add(var)

    def export(self, spec: Any, loc: Loc, known: set[str], later: Mapping[str, str]) -> None:
        """An `export:` step: each value a name known here, and one column list per file."""
        for i, name in enumerate(spec.values):
            where: Loc = (*loc, "values", i)
            if name in later:
                self.problems.append(Problem(f"{name!r} is exported before {later[name]}",
                                             where))
            elif name in GLOBAL_NAMES:
                self.problems.append(Problem(
                    f"{name!r} is a template helper, not a value: make a variable from it "
                    "with set: first, and export that", where))
            elif name not in known:
                options = known - set(GLOBAL_NAMES)
                self.problems.append(Problem(
                    f"unknown variable {name!r}{_hint(name, options)} (export names a "
                    "capture, a set: name, a variable or a data source)", where))
        first = self.exports.setdefault(spec.file, (tuple(spec.values), loc))
        if first[0] != tuple(spec.values):
            self.problems.append(Problem(
                f"{spec.file} is exported with other values elsewhere ({', '.join(first[0])}, "
                f"at {'.'.join(str(p) for p in first[1])}): one file, one list of columns",
                (*loc, "values")))

    def captures(self, step: Any, base: Loc) -> None:
        for var, spec in step.capture.items():
            loc: Loc = (*base, "capture", var)
            if not self.name("capture", var, loc):
                continue
            text = spec if isinstance(spec, str) else spec.from_
            try:
                Capture.parse(var, text)
            except ValueError as exc:
                where = loc if isinstance(spec, str) else (*loc, "from")
                self.problems.append(Problem(f"capture {var!r}: {exc}", where))

    def checks(self, step: Any, base: Loc) -> None:
        from jsonpath_ng.ext import parse as jsonpath

        for i, check in enumerate(step.check):
            if check.json_path is not None:
                try:
                    jsonpath(check.json_path)
                except Exception as exc:
                    self.problems.append(Problem(
                        f"JSON path {check.json_path!r} does not parse: {exc}",
                        (*base, "check", i, "json")))

    def block(self, steps: list[Any], base: Loc, known: set[str],
              later_blocks: Mapping[str, str]) -> set[str]:
        """Check a list of steps; returns the names it captures."""
        captured_at: dict[str, int] = {}
        for s, step in enumerate(steps):
            for var in _assigned(step):
                captured_at.setdefault(var, s)
        known = set(known)
        block_name = base[-1]
        for s, step in enumerate(steps):
            loc: Loc = (*base, s)
            later = {**later_blocks, **{
                n: f"the step that {_verb(steps[i], n)} it ({block_name} step {i + 1})"
                if block_name != "steps" else f"the step that {_verb(steps[i], n)} it "
                                              f"(step {i + 1})"
                for n, i in captured_at.items() if i >= s and n not in known}}
            if step.if_ is not None:  # decided before the step runs: not its own captures
                from shop_loadtest.scenario.journey import if_expression

                self.template("{{ " + if_expression(step.if_) + " }}", (*loc, "if"), known,
                              later)
            if step.for_ is not None:
                from shop_loadtest.scenario.journey import parse_for

                var, source = parse_for(step.for_)
                self.template("{{ " + source + " }}", (*loc, "for"), known, later)
                if self.name("for", var, (*loc, "for")):
                    known |= self.block(step.steps or [], (*loc, "steps"), known | {var}, later)
                known.add(var)
                continue
            if step.repeat is not None or step.steps is not None:
                # its first run sees only what came before it; what it assigns is there after
                # (an if block's too: a name it assigns is undefined, a failure, when it did
                # not run)
                known |= self.block(step.steps or [], (*loc, "steps"), known, later)
                continue
            if step.set_ is not None:
                self.assignments(step, loc, known, later)
                known |= set(step.set_)
                continue
            if step.export is not None:
                self.export(step.export, (*loc, "export"), known, later)
                continue
            self.captures(step, loc)
            self.checks(step, loc)
            # a retried step's templates may use `attempt`, the try's number (1 first)
            own = known | {"attempt"} if step.retry is not None else known
            for field_loc, text in _templated_fields(step):
                self.template(text, (*loc, *field_loc), own, later)
            known |= set(step.capture) | ({"attempt"} if step.retry is not None else set())
            own |= set(step.capture)
            for field_loc, text in _check_fields(step):
                self.template(text, (*loc, *field_loc), own, later)
            for i, check in enumerate(step.check):
                if check.var is not None:
                    self.template("{{ " + check.var + " }}", (*loc, "check", i, "var"), own,
                                  later)
            if step.retry is not None and step.retry.until is not None:
                from shop_loadtest.scenario.journey import if_expression

                self.template("{{ " + if_expression(step.retry.until) + " }}",
                              (*loc, "retry", "until"), own | {"response"}, later)
        return set(captured_at)


def _assigned(step: Any) -> list[str]:
    """The names a scenario step assigns (a repeat block: those of its steps)."""
    if step.steps is not None:  # a repeat, for or if block
        inner = [n for s in step.steps for n in _assigned(s)]
        if step.for_ is not None:
            from shop_loadtest.scenario.journey import parse_for

            return [parse_for(step.for_)[0], *inner]
        return inner
    return [*step.capture, *(step.set_ or ()), *(["attempt"] if step.retry else [])]


def _verb(step: Any, name: str) -> str:
    if step.steps is not None:
        return "assigns"  # inside its block
    return "captures" if name in step.capture else "sets"


def _has_class(path: Path, name: str) -> bool:
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return any(isinstance(node, ast.ClassDef) and node.name == name for node in tree.body)


def check_journeys(scenario: Scenario, base: Path = Path(".")) -> Iterator[Problem]:
    """Problems the models cannot see: templates (syntax, unknown names, captures used too
    early, Faker typos, data columns), capture expressions, data files and user classes."""
    checker = _Checker(scenario, base)
    problems = checker.problems
    if scenario.faker.locale:
        from faker.config import AVAILABLE_LOCALES

        locales = ([scenario.faker.locale] if isinstance(scenario.faker.locale, str)
                   else scenario.faker.locale)
        for locale in locales:
            if locale not in AVAILABLE_LOCALES:
                yield Problem(f"unknown Faker locale {locale!r}"
                              f"{_hint(locale, AVAILABLE_LOCALES)}", ("faker", "locale"))
    reserved = set(GLOBAL_NAMES)
    for name in scenario.variables:
        if not _IDENT.match(name) or name in reserved:
            yield Problem(f"variable name {name!r} must be a plain name (letters, digits, _) "
                          f"other than {', '.join(GLOBAL_NAMES)}", ("variables", name))
    unreadable: set[str] = set()
    for name, source in scenario.data.items():
        if not _IDENT.match(name) or name in reserved or name in scenario.variables:
            yield Problem(f"data name {name!r} must be a plain name (letters, digits, _), "
                          f"not a variable nor one of {', '.join(GLOBAL_NAMES)}", ("data", name))
            continue
        try:
            columns, _ = read_csv(base / source.file)
        except FileNotFoundError:
            yield Problem(f"no such file {shown(source.file)} (paths are relative to the scenario "
                          f"file's folder, {base.as_posix() or '.'})", ("data", name, "file"))
            unreadable.add(name)
            continue
        except OSError as exc:
            yield Problem(f"cannot read {shown(source.file)}: {exc.strerror or exc}",
                          ("data", name, "file"))
            unreadable.add(name)
            continue
        except (ValueError, UnicodeDecodeError, csv.Error) as exc:
            yield Problem(f"cannot read {shown(source.file)}: {exc}", ("data", name, "file"))
            unreadable.add(name)  # its name is still known: no second error where it is used
            continue
        checker.columns[name] = columns
    globals_known = set(GLOBAL_NAMES)
    for name, value in scenario.variables.items():
        for loc, text in walk_strings(value, ("variables", name)):
            checker.template(text, loc, globals_known, {})
    known = globals_known | set(scenario.variables) | set(checker.columns) | unreadable
    for name, text in scenario.target.headers.items():
        checker.template(text, ("target", "headers", name), globals_known | set(
            scenario.variables), {})
    for j, journey in enumerate(scenario.journeys):
        if journey.class_ is not None:
            problem = _check_class(journey.class_, base, ("journeys", j, "class"),
                                   journey.method, scenario.load.model == "arrival_rate")
            if problem is not None:
                problems.append(problem)
            continue
        step_caps = {n: "the journey's steps, which run after on_start"
                     for step in journey.steps for n in _assigned(step)}
        started = checker.block(journey.on_start, ("journeys", j, "on_start"), known, step_caps)
        stop_caps = {n: "on_stop, which runs last" for step in journey.on_stop
                     for n in _assigned(step)}
        ran = checker.block(journey.steps, ("journeys", j, "steps"), known | started,
                            {n: w for n, w in stop_caps.items() if n not in started})
        checker.block(journey.on_stop, ("journeys", j, "on_stop"), known | started | ran, {})
    yield from problems


def _check_class(spec: str, base: Path, loc: Loc, method: str | None = None,
                 open_model: bool = False) -> Problem | None:
    file, _, name = spec.rpartition(":")
    path = base / file
    if not path.is_file():
        hint = ""
        if Path(file).is_file():
            rel = os.path.relpath(Path(file).resolve(), base.resolve())
            hint = f"; from the current folder it is {Path(rel).as_posix()}:{name}"
        return Problem(f"no such file {file!r} (relative to the scenario file's folder, "
                       f"{base.as_posix() or '.'}){hint}", loc)
    try:
        found = _has_class(path, name)
    except (SyntaxError, UnicodeDecodeError, OSError, ValueError, RecursionError) as exc:
        return Problem(f"cannot read {file}: {exc}", loc)
    if not found:
        return Problem(f"{file} defines no class {name} at its top level", loc)
    problem = _probe_class(path, name, method, open_model)
    if problem and method is not None and problem.startswith("has no method"):
        loc = (*loc[:-1], "method")
    return Problem(f"{file}:{name}: {problem}", loc) if problem else None


PROBE_TIMEOUT_S = 60.0


def _probe_class(path: Path, name: str, method: str | None = None,
                 open_model: bool = False) -> str | None:
    """Import the class in a child process as a run would; why it cannot be used, or None.

    A child, because importing Locust patches the process and the module may do anything.
    """
    import subprocess
    import sys

    mark = "probe: "
    try:
        done = subprocess.run([sys.executable, "-m", "shop_loadtest.runtime.probe", str(path),
                               name, method or "-", *(["open"] if open_model else [])],
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:
        return f"importing it took longer than {PROBE_TIMEOUT_S:.0f}s"
    if done.returncode == 0:
        return None
    answers = [line[len(mark):] for line in done.stdout.splitlines() if line.startswith(mark)]
    return answers[-1] if answers else f"importing it ended the process (exit {done.returncode})"
