"""The outputs of a comparison: the console table, compare.md, compare.html and the files.

compare.html comes from report/templates/compare.html.j2. Endpoint and run names go through
Jinja2's autoescaping; chart data through `charts.script_json`, which escapes `<` inside JSON.

    comparison = write_comparison(base_dir, new_dir)  # compare.md and compare.html into new_dir
    print(terminal_table(comparison))
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import numpy as np

from shop_loadtest.compare.judging import (
    ALL,
    GATING,
    Comparison,
    Delta,
    compare_runs,
    format_change,
    format_p,
    format_pct,
)
from shop_loadtest.judge.budgets import format_value
from shop_loadtest.report.build import run_secrets
from shop_loadtest.results import counts_percentiles_ms, load_run
from shop_loadtest.safety.mask import mask

TEMPLATES = Path(__file__).parents[1] / "report" / "templates"
MAX_CHART_ENDPOINTS = 20
STATUS_TEXT = {"regression": "REGRESSION", "noise": "not significant", "too_short": "too short",
               "better": "better", "ok": "ok", "no_data": "no data"}


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _cells(d: Delta) -> list[str]:
    return [d.metric, format_value(d.base, d.unit), format_value(d.new, d.unit),
            format_change(d), format_p(d.p_value), STATUS_TEXT[d.status]]


def terminal_table(c: Comparison) -> str:
    """The console table: every endpoint's figures, then the verdict and its reasons."""
    rows, last = [], None
    for d in c.deltas:
        name = d.endpoint if d.endpoint != last else ""
        last = d.endpoint
        rows.append([name[:48], *_cells(d)])
    out = [f"base: {c.base_name}", f"new:  {c.new_name}", ""]
    out += _table(["endpoint", "figure", "base", "new", "change", "p", "result"], rows,
                  right={2, 3, 4, 5})
    out += ["", *[f"warning: {w}" for w in c.warnings]] if c.warnings else []
    out += ["", f"compare: {c.verdict.upper()}", *[f"  - {r}" for r in c.reasons]]
    return "\n".join(out)


def render_markdown(c: Comparison) -> str:
    """compare.md: for $GITHUB_STEP_SUMMARY or a pull-request comment."""
    from shop_loadtest.report.markdown import md

    icon = {"ok": "✅", "regression": "❌", "inconclusive": "⚠️"}[c.verdict]
    lines = [f"## {icon} Compared with the baseline: {c.verdict.upper()}", "",
             f"Base `{md(c.base_name)}`, new `{md(c.new_name)}`; a regression is a figure worse "
             f"by more than {format_pct(c.max_regression)} with p <= {c.alpha:g} (one-sided "
             "Mann-Whitney U on per-second values).", ""]
    lines += [f"- {md(r)}" for r in c.reasons] + [""]
    lines += [f"> warning: {md(w)}" for w in c.warnings] + ([""] if c.warnings else [])
    lines += ["| Endpoint | Figure | Base | New | Change | p | Result |",
              "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for d in c.deltas:
        cells = _cells(d)
        result = f"**{cells[-1]}**" if d.status in GATING else cells[-1]
        lines.append(f"| {md(d.endpoint)} | {' | '.join(md(x) for x in cells[:-1])} | "
                     f"{result} |")
    return "\n".join(lines) + "\n"


def _figures(c: Comparison) -> list[dict[str, str]]:
    import plotly.graph_objects as go
    import plotly.io as pio

    from shop_loadtest.report.charts import TEMPLATE, label, script_json

    def figure(title: str, ytitle: str, xtitle: str = "t (s since start)") -> go.Figure:
        return go.Figure(layout={
            "template": TEMPLATE, "title": {"text": label(title), "x": 0.01}, "height": 360,
            "margin": {"l": 60, "r": 20, "t": 60, "b": 45}, "hovermode": "x unified",
            "xaxis": {"title": {"text": xtitle}}, "yaxis": {"title": {"text": ytitle}},
            "legend": {"orientation": "h", "y": -0.2}})

    names = [d.endpoint for d in c.deltas if d.metric == "p95"][:MAX_CHART_ENDPOINTS + 1]
    p95 = figure("p95 of each second: base vs new", "ms")
    for i, name in enumerate(names):
        for side, dash in (("base", "dot"), ("new", "solid")):
            s = c.series[(side, name)]
            p95.add_trace(go.Scatter(x=s.t, y=s.samples["p95"], mode="lines", visible=i == 0,
                                     name=label(f"{side} {name}"), line={"dash": dash}))
    if len(names) > 1:
        p95.update_layout(updatemenus=[{
            "buttons": [{"label": label(n), "method": "update",
                         "args": [{"visible": [j // 2 == i for j in range(2 * len(names))]}]}
                        for i, n in enumerate(names)],
            "direction": "down", "x": 1.0, "xanchor": "right", "y": 1.2, "yanchor": "top"}])
    rate = figure("Throughput, all endpoints: base vs new", "requests/s")
    dist = figure("Latency distribution, all endpoints (whole run)", "ms", "percentile")
    nines = np.linspace(0, 4, 81)
    qs = list(100.0 * (1.0 - 10.0 ** -nines))
    dist.update_layout(hovermode="closest", xaxis={"tickvals": [0, 1, 2, 3, 4],
                                                   "ticktext": ["0%", "90%", "99%", "99.9%",
                                                                "99.99%"]})
    for side, dash in (("base", "dot"), ("new", "solid")):
        whole = c.series.get((side, ALL))
        if whole is None:
            continue
        rate.add_trace(go.Scatter(x=whole.grid, y=whole.samples["throughput"], mode="lines",
                                  name=side, line={"dash": dash}))
        if whole.counts is not None:
            dist.add_trace(go.Scatter(x=nines, y=counts_percentiles_ms(whole.counts, qs),
                                      mode="lines", name=side, line={"dash": dash}))
    return [{"id": f"chart-{key}", "json": script_json(pio.to_json(fig))}
            for key, fig in (("p95", p95), ("throughput", rate), ("distribution", dist))]


def render_html(c: Comparison) -> str:
    """compare.html: self-contained and offline, like report.html."""
    import jinja2
    import plotly.offline

    # Unlike report.html.j2, no trim_blocks/lstrip_blocks: the template's whitespace is the page's.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["value"] = format_value
    return env.get_template("compare.html.j2").render(
        c=c, figures=_figures(c), plotly_js=plotly.offline.get_plotlyjs(),
        change=format_change, pvalue=format_p, status=STATUS_TEXT)


def _write(path: Path, text: str, secrets: Collection[str] = ()) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(mask(text, secrets), encoding="utf-8")  # the one secret mask
    os.replace(tmp, path)


def write_comparison(base_dir: Path, new_dir: Path, out_dir: Path | None = None, *,
                     max_regression: float = 0.10, alpha: float = 0.05) -> Comparison:
    """Compare two results folders; write compare.md and compare.html into `out_dir`
    (default: the new run's folder). Raises ResultsError for a missing folder."""
    comparison = compare_runs(load_run(base_dir), load_run(new_dir),
                              max_regression=max_regression, alpha=alpha)
    out = Path(out_dir or new_dir)
    out.mkdir(parents=True, exist_ok=True)
    secrets = run_secrets(base_dir) | run_secrets(new_dir)
    _write(out / "compare.md", render_markdown(comparison), secrets)
    _write(out / "compare.html", render_html(comparison), secrets)
    return comparison
