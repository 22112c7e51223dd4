"""The outputs of a comparison: the console table, compare.md, compare.html and the files.

compare.html comes from report/templates/compare.html.j2. Endpoint and run names go through
Jinja2's autoescaping; chart data through `charts.script_json`, which escapes `<` inside JSON.

    comparison = write_comparison(base_dir, new_dir)  # compare.md and compare.html into new_dir
    print(terminal_table(comparison))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shop_loadtest.compare.bootstrap import RESAMPLES
from shop_loadtest.compare.judging import (
    ALL,
    Comparison,
    Delta,
    Floors,
    compare_runs,
    format_amount,
    format_change,
    format_interval,
    format_p,
)
from shop_loadtest.compare.sides import Side
from shop_loadtest.judge.budgets import format_value
from shop_loadtest.report.build import run_secrets
from shop_loadtest.report.terminal import text_table
from shop_loadtest.results import counts_percentiles_ms, load_run, write_atomic
from shop_loadtest.safety.mask import mask

TEMPLATES = Path(__file__).parents[1] / "report" / "templates"
MAX_CHART_ENDPOINTS = 20
MAX_MD_ROWS = 12  # regressions and improvements listed in compare.md; the rest: compare.html
STATUS_TEXT = {"regression": "REGRESSION", "noise": "not clear", "too_short": "too short",
               "better": "better", "ok": "ok", "no_data": "no data"}
METHOD = ("worse than the floor ({floors}) with {confidence:g}% confidence: a circular block "
          "bootstrap over the runs' seconds ({resamples} resamples, seed {seed})")


def _cells(d: Delta) -> list[str]:
    return [d.metric, format_value(d.base, d.unit), format_value(d.new, d.unit),
            format_change(d), format_interval(d), format_amount(d.floor, d.unit),
            STATUS_TEXT[d.status]]


def method(c: Comparison) -> str:
    return METHOD.format(floors=c.floors.describe(), confidence=(1 - c.alpha) * 100,
                         resamples=c.resamples, seed=c.seed)


def side_line(s: Side) -> str:
    """`base run x: 1,234 requests; generator healthy, CPU up to 40%; machine ...`."""
    machine = ("BUSY: " if s.machine.busy else "") + s.machine.describe()
    return (f"{s.label} run {s.name}: {s.requests:,} requests; target {s.target_kind}; "
            f"generator {s.generator}; machine {machine}; delivery {s.delivery}")


def unchanged(c: Comparison) -> int:
    """Endpoints (not "all endpoints") with neither a regression nor an improvement."""
    names = [d.endpoint for d in c.deltas if d.metric == "p50" and d.endpoint != ALL]
    moved = {d.endpoint for d in c.deltas if d.status in ("regression", "better")}
    return sum(1 for n in names if n not in moved)


def terminal_table(c: Comparison) -> str:
    """The console table: every endpoint's figures, both sides, then the verdict and reasons."""
    rows, last = [], None
    for d in c.deltas:
        name = d.endpoint if d.endpoint != last else ""
        last = d.endpoint
        rows.append([name[:48], *_cells(d)])
    out = [f"base: {c.base_name}", f"new:  {c.new_name}", ""]
    out += text_table(["endpoint", "figure", "base", "new", "change", "interval", "floor",
                       "result"], rows, right={2, 3, 4, 5, 6})
    out += ["", *[side_line(s) for s in c.sides]]
    out += ["", *[f"warning: {w}" for w in c.warnings]] if c.warnings else []
    out += ["", f"a regression: {method(c)}"]
    out += ["", f"compare: {c.verdict.upper()}", *[f"  - {r}" for r in c.reasons]]
    return "\n".join(out)


def render_markdown(c: Comparison) -> str:
    """compare.md for a pull request: regressions first, then improvements, then one line
    for the endpoints that did not move. Under 30 lines for 10 endpoints."""
    from shop_loadtest.report.markdown import md

    icon = {"ok": "✅", "regression": "❌", "inconclusive": "⚠️"}[c.verdict]
    lines = [f"## {icon} Compared with the baseline: {c.verdict.upper()}", "",
             f"Base `{md(c.base_name)}`, new `{md(c.new_name)}`. A regression is a figure "
             f"{md(method(c))}.", ""]
    if c.verdict != "regression":
        lines += [f"- {md(r)}" for r in c.reasons[:3]]
        lines += [f"- and {len(c.reasons) - 3} more (compare.html)"] if len(c.reasons) > 3 else []
        lines.append("")
    lines += ["| Run | Target | Generator | Machine | Delivery |",
              "| --- | --- | --- | --- | --- |"]
    for s in c.sides:
        machine = ("**busy**: " if s.machine.busy else "") + md(s.machine.describe())
        lines.append(f"| {s.label} | {md(s.target_kind)} | {md(s.generator)} | {machine} | "
                     f"{md(s.delivery)} |")
    lines.append("")
    moved = [d for d in c.deltas if d.status == "regression"] + [
        d for d in c.deltas if d.status == "better"]
    if moved:
        lines += ["| | Endpoint | Figure | Base | New | Change | Interval | Floor |",
                  "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for d in moved[:MAX_MD_ROWS]:
            mark = "❌ **regression**" if d.status == "regression" else "✅ better"
            cells = [d.endpoint, d.metric, format_value(d.base, d.unit),
                     format_value(d.new, d.unit), format_change(d), format_interval(d),
                     format_amount(d.floor, d.unit)]
            lines.append(f"| {mark} | " + " | ".join(md(x) for x in cells) + " |")
        if len(moved) > MAX_MD_ROWS:
            lines.append(f"\n{len(moved) - MAX_MD_ROWS} more changed figures in compare.html.")
        lines.append("")
    count = unchanged(c)
    lines.append(f"{count} endpoint{'s' if count != 1 else ''} unchanged.")
    return "\n".join(lines) + "\n"


def _figures(c: Comparison) -> list[dict[str, str]]:
    import plotly.graph_objects as go
    import plotly.io as pio

    from shop_loadtest.report.charts import TEMPLATE, label, script_json

    names = [d.endpoint for d in c.deltas if d.metric == "p50"][:MAX_CHART_ENDPOINTS + 1]
    dist = go.Figure(layout={
        "template": TEMPLATE, "height": 420, "hovermode": "closest",
        "title": {"text": label("Latency distribution, whole run: base vs new"), "x": 0.01},
        "margin": {"l": 60, "r": 20, "t": 60, "b": 45},
        "xaxis": {"title": {"text": "percentile"}, "tickvals": [0, 1, 2, 3, 4],
                  "ticktext": ["0%", "90%", "99%", "99.9%", "99.99%"]},
        "yaxis": {"title": {"text": "ms"}}, "legend": {"orientation": "h", "y": -0.2}})
    nines = np.linspace(0, 4, 81)
    qs = list(100.0 * (1.0 - 10.0 ** -nines))
    for i, name in enumerate(names):
        for side, dash in (("base", "dot"), ("new", "solid")):
            counts = c.distributions.get((side, name))
            y = counts_percentiles_ms(counts, qs) if counts is not None else []
            dist.add_trace(go.Scatter(x=nines[:len(y)], y=y, mode="lines", visible=i == 0,
                                      name=label(f"{side} {name}"), line={"dash": dash}))
    if len(names) > 1:
        dist.update_layout(updatemenus=[{
            "buttons": [{"label": label(n), "method": "update",
                         "args": [{"visible": [j // 2 == i for j in range(2 * len(names))]}]}
                        for i, n in enumerate(names)],
            "direction": "down", "x": 1.0, "xanchor": "right", "y": 1.2, "yanchor": "top"}])
    return [{"id": "chart-distribution", "json": script_json(pio.to_json(dist))}]


def render_html(c: Comparison) -> str:
    """compare.html: self-contained and offline, like report.html."""
    import jinja2
    import plotly.offline

    # Unlike report.html.j2, no trim_blocks/lstrip_blocks: the template's whitespace is the page's.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["value"] = format_value
    env.filters["amount"] = format_amount
    return env.get_template("compare.html.j2").render(
        c=c, figures=_figures(c), plotly_js=plotly.offline.get_plotlyjs(), method=method(c),
        change=format_change, interval=format_interval, pvalue=format_p, status=STATUS_TEXT,
        unchanged=unchanged(c))


def write_comparison(base_dir: Path, new_dir: Path, out_dir: Path | None = None, *,
                     floors: Floors | None = None, alpha: float = 0.05, seed: int = 0,
                     resamples: int = RESAMPLES, tolerate_busy_machine: bool = False
                     ) -> Comparison:
    """Compare two results folders; write compare.md and compare.html into `out_dir`
    (default: the new run's folder). Raises ResultsError for a missing folder."""
    comparison = compare_runs(load_run(base_dir), load_run(new_dir), floors=floors,
                              alpha=alpha, seed=seed, resamples=resamples,
                              tolerate_busy_machine=tolerate_busy_machine)
    out = Path(out_dir or new_dir)
    out.mkdir(parents=True, exist_ok=True)
    secrets = run_secrets(base_dir) | run_secrets(new_dir)
    write_atomic(out / "compare.md", mask(render_markdown(comparison), secrets))
    write_atomic(out / "compare.html", mask(render_html(comparison), secrets))
    return comparison
