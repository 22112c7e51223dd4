"""Scenario -> a readable locustfile that plain `locust -f` can run.

Values are written as Python literals (`repr`), never spliced in as text, and the result is
checked with `compile()` before anyone sees it.
"""

from __future__ import annotations

import dataclasses
import os
import pprint
import re
import textwrap
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from shop_loadtest import __version__
from shop_loadtest.errors import ShopLoadtestError
from shop_loadtest.generate.blocks import to_block
from shop_loadtest.journeys import (
    DEFAULT_TIMEOUT_S,
    ExportStep,
    ForStep,
    IfStep,
    RepeatStep,
    RequestStep,
    SetStep,
    ThinkStep,
)
from shop_loadtest.safety.mask import env_names
from shop_loadtest.scenario import Scenario

LINE = 99  # longer calls are written one argument per line, long literals wrapped
STEP_INDENT = 8  # the column steps start at in the template


def _literal(value: Any) -> str:
    """A Python literal for JSON-like data; floats that are whole stay readable (`20.0`)."""
    return repr(value)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _call(func: str, positional: list[str], keywords: list[str], indent: int = 0) -> str:
    """`func(a, b, k=v)` on one line, or one argument per line (4-space indent) when it
    would not fit at column `indent`."""
    one_line = f"{func}({', '.join(positional + keywords)})"
    if indent + len(one_line) <= LINE and "\n" not in one_line:
        return one_line
    lines = [f"    {', '.join(positional)},"] if positional else []
    lines += ["    " + kw.replace("\n", "\n    ") + "," for kw in keywords]
    return f"{func}(\n" + "\n".join(lines) + "\n)"


def _keyword(name: str, value: Any, indent: int) -> str:
    """`name=<literal>`, the literal wrapped (pprint, still a Python literal) when long."""
    text = f"{name}={value!r}"
    if indent + len(text) < LINE:
        return text
    width = max(LINE - indent - len(name) - 2, 40)
    literal = pprint.pformat(value, width=width, sort_dicts=False)
    return f"{name}=" + literal.replace("\n", "\n" + " " * (len(name) + 1))


def _dataclass_source(obj: Any, positional: tuple[str, ...], indent: int = STEP_INDENT) -> str:
    """Constructor call for a dataclass: positional fields, then keywords that differ from
    their defaults; every value written as a Python literal."""
    args = [repr(getattr(obj, name)) for name in positional]
    keywords = [_keyword(f.name, getattr(obj, f.name), indent + 4)
                for f in dataclasses.fields(obj)
                if f.name not in positional and getattr(obj, f.name) != _default(f)]
    return _call(type(obj).__name__, args, keywords, indent)


def _inner(steps: list[Any]) -> str:
    return "".join("    " + _step_source(s).replace("\n", "\n    ") + ",\n" for s in steps)


def _step_source(step: RequestStep | ThinkStep | SetStep | RepeatStep | IfStep | ForStep
                 | ExportStep) -> str:
    if isinstance(step, ForStep):
        return f"ForStep({step.var!r}, {step.source!r}, steps=[\n{_inner(step.steps)}])"
    if isinstance(step, IfStep) and step.step is None:
        return f"IfStep({step.test!r}, steps=[\n{_inner(step.steps)}])"
    if isinstance(step, IfStep):
        assert step.step is not None
        then = _step_source(step.step)
        if "\n" not in then:
            return _call("IfStep", [repr(step.test), then], [], STEP_INDENT)
        then = then.replace("\n", "\n    ")
        return f"IfStep(\n    {step.test!r},\n    {then},\n)"
    if isinstance(step, RepeatStep):
        return f"RepeatStep({step.low!r}, {step.high!r}, steps=[\n{_inner(step.steps)}])"
    if isinstance(step, SetStep):
        return _dataclass_source(step, ("values",))
    if isinstance(step, ExportStep):
        return _dataclass_source(step, ("file", "values"))
    if isinstance(step, ThinkStep):
        return _dataclass_source(step, ("low", "high"))
    return _dataclass_source(step, ("method", "path"))


def _relative(file: str, source: str, output: str) -> str:
    """`file` (relative to the scenario file) as a path relative to the generated file's
    folder, so the locustfile finds it wherever the checkout lives."""
    if os.path.isabs(file):
        return Path(file).as_posix()
    target = os.path.join(os.path.dirname(source), file)
    out_dir = os.path.dirname(output) or "."
    if os.path.isabs(target) != os.path.isabs(out_dir):
        target, out_dir = os.path.abspath(target), os.path.abspath(out_dir)
    return Path(os.path.relpath(target, out_dir)).as_posix()


def _settings_args(scenario: Scenario, source: str, output: str) -> list[str]:
    args = []
    if scenario.variables:
        args.append(_keyword("variables", dict(scenario.variables), 4))
    if scenario.target.headers:
        args.append(_keyword("headers", dict(scenario.target.headers), 4))
    if scenario.data:
        sources = []
        for name, data in scenario.data.items():
            keywords = [f"{k}={getattr(data, k)!r}" for k in ("mode", "per")
                        if getattr(data, k) != type(data).model_fields[k].default]
            path = _relative(data.file, source, output)
            sources.append("    " + _call("DataSource", [repr(name), f"HERE / {path!r}"],
                                          keywords, 8).replace("\n", "\n    ") + ",")
        args.append("data=[\n" + "\n".join(sources) + "\n]")
    if scenario.faker.locale is not None:
        args.append(f"locale={scenario.faker.locale!r}")
    if scenario.faker.seed is not None:
        args.append(f"seed={scenario.faker.seed!r}")
    if scenario.target.timeout != DEFAULT_TIMEOUT_S:
        args.append(f"timeout={scenario.target.timeout!r}")
    return args


def _docstring(scenario: Scenario) -> str:
    """The module docstring's text: name and description, wrapped, safe in triple quotes."""
    description = " ".join(scenario.description.split())
    text = f"{scenario.name}: {description}" if description else scenario.name
    text = text.replace("\\", "\\\\").replace('"""', "'''")
    lines = textwrap.wrap(text, width=96, break_long_words=False, break_on_hyphens=False)
    if lines[-1].endswith('"'):  # a quote next to the closing ones would end the string
        lines[-1] += " "
    return "\n".join(lines)


def _env_names(scenario: Scenario) -> set[str]:
    """The environment variables the scenario's templates read (names, never values)."""
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            names.update(env_names(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(scenario.model_dump(mode="json", by_alias=True))
    return names


def _class_name(journey_name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", journey_name)
    name = "".join(w[:1].upper() + w[1:] for w in words if w) or "Journey"
    return name if name[0].isalpha() else f"J{name}"


def _const_name(journey_name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "_", journey_name).strip("_").upper() or "JOURNEY"
    return name if name[0].isalpha() else f"J_{name}"


def _kinds(steps: list[Any], found: set[str]) -> set[str]:
    """The names of the step classes (and Retry) that `steps` use, nested ones included."""
    for step in steps:
        found.add(type(step).__name__)
        if isinstance(step, RequestStep) and step.retry is not None:
            found.add("Retry")
        if isinstance(step, RepeatStep | ForStep):
            _kinds(step.steps, found)
        elif isinstance(step, IfStep):
            _kinds([step.step] if step.step is not None else step.steps, found)
    return found


def _journey_imports(kinds: set[str], data: bool) -> str:
    names = sorted({"Journey", "RequestStep", "Settings", "ThinkStep"} | (
        kinds & {"ExportStep", "ForStep", "IfStep", "RepeatStep", "Retry", "SetStep"}) | (
        {"DataSource"} if data else set()))
    line = f"from shop_loadtest.journeys import {', '.join(names)}"
    if len(line) <= LINE:
        return line
    return "from shop_loadtest.journeys import (\n" + "".join(f"    {n},\n" for n in names) + ")"


def render_locustfile(scenario: Scenario, *, source: str, output: str,
                      base: Path = Path(".")) -> str:
    """The locustfile source for `scenario` (stages in campaign time, as in the file)."""
    env = Environment(
        loader=PackageLoader("shop_loadtest.generate", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Python source, values inserted with repr()
    )
    env.filters["py"] = _literal
    classes = set()
    journeys = []
    kinds: set[str] = set()
    reserved = {"Shape", "Arrivals", "Journey", "Settings", "DataSource", "RequestStep",
                "ThinkStep", "SetStep", "RepeatStep", "IfStep", "ForStep", "Retry",
                "ExportStep", "CampaignShape", "JourneyUser", "ArrivalUser", "Path"}
    for journey in scenario.journeys:
        cls = _class_name(journey.name)
        while cls in classes or cls in reserved:
            cls += "_"
        classes.add(cls)
        entry: dict[str, Any] = {
            "name": journey.name,
            "weight": journey.weight,
            "cls": cls,
            "const": f"{_const_name(journey.name)}_JOURNEY",
            "custom": None,
            "options": [f"{k}={v!r}" for k, v in (("session", journey.session),
                                                   ("on_fail_pause", journey.on_fail_pause))
                        if v not in (None, "fresh")],
        }
        if journey.class_ is not None:
            file, _, class_name = journey.class_.rpartition(":")
            where = [f"HERE / {_relative(file, source, output)!r}", repr(class_name)]
            method = [f"method={journey.method!r}"] if journey.method else []
            if scenario.load.model == "arrival_rate":  # called once per arrival by the pool
                entry["custom"] = _call("class_journey", where, [
                    f"journey={journey.name!r}", f"weight={journey.weight!r}", "host=HOST",
                    *method], indent=len(entry["const"]) + 3)
            else:
                entry["custom"] = _call("user_class", where, [
                    f"alias={cls!r}", f"weight={journey.weight!r}", "host=HOST",
                    f"journey={journey.name!r}", *method], indent=len(cls) + 3)
        else:
            blocks = {name: to_block(getattr(journey, name))
                      for name in ("on_start", "steps", "on_stop")}
            entry.update({name: [_step_source(s) for s in block]
                          for name, block in blocks.items()})
            for block in blocks.values():
                _kinds(block, kinds)
        journeys.append(entry)
    load = scenario.load
    source_text = env.get_template("locustfile.py.j2").render(
        source=source,
        output=output,
        version=__version__,
        name=scenario.name,
        docstring=_docstring(scenario),
        host=scenario.target.host,
        allowed_hosts=list(scenario.target.allowed_hosts),
        secret_env=sorted(_env_names(scenario)),
        budgets=list(scenario.budgets),
        abort=list(scenario.abort),
        settings=_settings_args(scenario, source, output),
        journey_imports=_journey_imports(kinds, bool(scenario.data)),
        needs_here=bool(scenario.data) or any(j["custom"] for j in journeys),
        stages=[(n, d, t) for n, d, t in scenario.stage_specs(base)],
        journeys=journeys,
        model=load.model,
        time_scale=load.time_scale,
        max_users=load.max_users,
        arrivals=load.arrivals,
        max_lateness=load.max_lateness,
        spawn_rate=load.spawn_rate,
    )
    source_text = re.sub(r"\n{4,}", "\n\n\n", source_text)  # at most two blank lines
    try:
        compile(source_text, output, "exec")
    except SyntaxError as exc:  # a bug in our template, never the user's input
        raise ShopLoadtestError(f"generated locustfile does not compile: {exc}") from exc
    return source_text
