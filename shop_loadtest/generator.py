"""Scenario -> a readable locustfile that plain `locust -f` can run.

Values are written as Python literals (`repr`), never spliced in as text, and the result is
checked with `compile()` before anyone sees it.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from shop_loadtest import __version__
from shop_loadtest.errors import ShopLoadtestError
from shop_loadtest.journeys import RequestStep, ThinkStep, to_steps
from shop_loadtest.scenario import Scenario


def _literal(value: Any) -> str:
    """A Python literal for JSON-like data; floats that are whole stay readable (`20.0`)."""
    return repr(value)


def _step_source(step: RequestStep | ThinkStep) -> str:
    if isinstance(step, ThinkStep):
        return f"ThinkStep({step.low!r}, {step.high!r})"
    defaults = {f.name: f.default if f.default is not dataclasses.MISSING else None
                for f in dataclasses.fields(RequestStep)}
    defaults["headers"] = {}
    defaults["capture"] = {}
    args = [f"{step.method!r}", f"{step.path!r}", f"name={step.name!r}"]
    for f in dataclasses.fields(step):
        if f.name in ("method", "path", "name"):
            continue
        value = getattr(step, f.name)
        if value != defaults[f.name]:
            args.append(f"{f.name}={value!r}")
    return f"RequestStep({', '.join(args)})"


def _class_name(journey_name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", journey_name)
    name = "".join(w[:1].upper() + w[1:] for w in words if w) or "Journey"
    return name if name[0].isalpha() else f"J{name}"


def _const_name(journey_name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "_", journey_name).strip("_").upper() or "JOURNEY"
    return name if name[0].isalpha() else f"J_{name}"


def render_locustfile(scenario: Scenario, *, source: str, output: str,
                      base: Path = Path(".")) -> str:
    """The locustfile source for `scenario` (stages in campaign time, as in the file)."""
    env = Environment(
        loader=PackageLoader("shop_loadtest", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - Python source, values inserted with repr()
    )
    env.filters["py"] = _literal
    classes = set()
    journeys = []
    for journey in scenario.journeys:
        cls = _class_name(journey.name)
        while cls in classes or cls in {"Shape", "Arrivals", "Journey"}:
            cls += "_"
        classes.add(cls)
        journeys.append({
            "name": journey.name,
            "weight": journey.weight,
            "cls": cls,
            "const": f"{_const_name(journey.name)}_JOURNEY",
            "steps": [_step_source(s) for s in to_steps(journey)],
        })
    load = scenario.load
    source_text = env.get_template("locustfile.py.j2").render(
        source=source,
        output=output,
        version=__version__,
        name=scenario.name,
        description=scenario.description.strip().replace("\n", " "),
        host=scenario.target.host,
        variables=dict(scenario.variables),
        headers=dict(scenario.target.headers),
        stages=[(n, d, t) for n, d, t in scenario.stage_specs(base)],
        journeys=journeys,
        model=load.model,
        time_scale=load.time_scale,
        max_users=load.max_users,
        arrivals=load.arrivals,
        max_lateness=load.max_lateness,
        spawn_rate=load.spawn_rate,
    )
    try:
        compile(source_text, output, "exec")
    except SyntaxError as exc:  # a bug in our template, never the user's input
        raise ShopLoadtestError(f"generated locustfile does not compile: {exc}") from exc
    return source_text
