"""report.html: one self-contained, offline file (plotly.js inline once, no external resource).

Everything from the run (endpoint names, error messages, the scenario) goes through Jinja2's
autoescaping; chart data goes through `charts.script_json`, which escapes `<` inside JSON.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import jinja2
import plotly.offline

from shop_loadtest.judge.budgets import format_value
from shop_loadtest.judge.machine import machine_health
from shop_loadtest.judge.model import Summary
from shop_loadtest.judge.verdict import target_line
from shop_loadtest.report.charts import all_figures
from shop_loadtest.report.markdown import projected_budgets
from shop_loadtest.report.shop_metrics import server_latency
from shop_loadtest.results import RunData

TEMPLATES = Path(__file__).parent / "templates"
MAX_SCENARIO_CHARS = 200_000


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["value"] = format_value
    env.filters["ms"] = lambda v: format_value(v, "ms")
    env.filters["pct"] = lambda v: format_value(v, "ratio")
    env.filters["num"] = lambda v, d=1: "n/a" if v is None else f"{v:,.{d}f}"
    env.filters["span"] = lambda s: "" if not s else f"{s[0]:g}-{s[1]:g} s"
    return env


def _scenario_text(run: RunData) -> str:
    if run.run_dir is None:
        return ""
    try:
        text = (run.run_dir / "scenario.yaml").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(scenario.yaml is missing from the results folder)"
    return text[:MAX_SCENARIO_CHARS]


def _metadata(run: RunData, summary: Summary) -> list[tuple[str, str]]:
    meta = run.meta
    command = meta.get("command")
    versions: dict[str, Any] = meta.get("versions") or {}
    if not isinstance(versions, dict):
        versions = {}
    rows = [
        ("scenario", str(summary["scenario"])), ("scenario file", str(meta.get("scenario_file"))),
        ("host", str(meta.get("host"))), ("model", str(meta.get("model"))),
        ("speedup", str(meta.get("speedup"))), ("processes", str(meta.get("processes"))),
        ("started", str(meta.get("started_at"))), ("ended", str(meta.get("ended_at"))),
        ("duration", f"{summary['duration_s']:g} s"), ("exit reason", str(meta.get("exit_reason"))),
        ("command", shlex.join(map(str, command)) if isinstance(command, list) else str(command)),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
        ("results folder", run.run_dir.name if run.run_dir else ""),
    ]
    return rows


def render_html(run: RunData, summary: Summary) -> str:
    """The whole report as one HTML string."""
    template = _environment().get_template("report.html.j2")
    return template.render(
        s=summary, figures=all_figures(run, summary), plotly_js=plotly.offline.get_plotlyjs(),
        scenario_text=_scenario_text(run), metadata=_metadata(run, summary),
        events=[e for e in run.events if isinstance(e, dict)][:500],
        target_line=target_line(summary),
        projected=projected_budgets(summary),
        machine=machine_health(run.ticks),
        server=server_latency(run),
    )
