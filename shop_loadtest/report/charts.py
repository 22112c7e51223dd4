"""Plotly figures for report.html, built from a run's dataframes and its summary.

Time series use the per-interval figures the recorder precomputed (one source) or per-interval
merged histograms; long runs are cut down to MAX_POINTS per trace (rates averaged, latencies
by their worst value per bin, so a spike never disappears).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from shop_loadtest.judge.model import BudgetRow, Summary
from shop_loadtest.report.shop_metrics import ShopCharts
from shop_loadtest.results import RunData, build_scope, counts_percentiles_ms, merge_counts

MAX_POINTS = 2000
MAX_ENDPOINTS = 20
MAX_KINDS = 6
RED = "rgba(214,39,40,{})"
TEMPLATE = go.layout.Template(layout={
    "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
    "colorway": ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"],
    "plot_bgcolor": "white", "paper_bgcolor": "white",
    "xaxis": {"gridcolor": "#eee", "zeroline": False},
    "yaxis": {"gridcolor": "#eee", "zeroline": False, "rangemode": "tozero"},
})


def label(text: Any) -> str:
    """Plotly renders its own pseudo-HTML in names and annotations: show text as text."""
    return html.escape(str(text), quote=False)


def _bin(t: np.ndarray, columns: Mapping[str, np.ndarray], how: str = "mean"
         ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """At most MAX_POINTS points: bins of k intervals, stamped with the bin's last t."""
    if len(t) <= MAX_POINTS:
        return t, dict(columns)
    k = math.ceil(len(t) / MAX_POINTS)
    group = np.arange(len(t)) // k
    frame = pd.DataFrame(dict(columns)).groupby(group)
    binned = frame.max() if how == "max" else frame.mean()
    return pd.Series(t).groupby(group).max().to_numpy(), {
        c: binned[c].to_numpy() for c in columns}


def _figure(title: str, ytitle: str, **layout: Any) -> go.Figure:
    return go.Figure(layout={
        "template": TEMPLATE, "title": {"text": label(title), "x": 0.01},
        "height": 340, "margin": {"l": 60, "r": 20, "t": 50, "b": 60},
        "xaxis": {"title": {"text": "t (s since start)"}},
        "yaxis": {"title": {"text": ytitle}},
        "legend": {"orientation": "h", "y": -0.28}, "hovermode": "x unified", **layout})


def _line(fig: go.Figure, t: np.ndarray, y: np.ndarray, name: str, **kw: Any) -> None:
    fig.add_trace(go.Scatter(x=t, y=y, name=label(name), mode="lines", **kw))


def _mark(fig: go.Figure, budgets: list[BudgetRow], duration: float) -> None:
    """Red bands where budgets broke (windows, stages; not a whole-run scope)."""
    shapes = 0
    for b in budgets:
        for start, end in b.get("breaches") or []:
            if shapes >= 40 or (end - start) >= 0.9 * duration:
                continue
            fig.add_vrect(x0=start, x1=end, fillcolor=RED.format(0.12), line_width=0,
                          layer="below", annotation_text=label(b["expr"]),
                          annotation_position="top left", annotation_font_size=10)
            shapes += 1


def _per_t(run: RunData) -> pd.DataFrame:
    """Totals per interval over every source: requests, failures, users, target, arrivals."""
    grid = run.grid
    iv = run.intervals.groupby("t")[["n", "fail"]].sum()
    grouped = run.ticks.groupby("t")
    tk = grouped[["users", "target", "due", "started", "dropped", "late"]].sum(min_count=1)
    tk["dt"] = grouped["dt"].max()
    out = pd.DataFrame(index=pd.Index(grid, name="t"))
    out = out.join(iv).join(tk)
    out[["n", "fail"]] = out[["n", "fail"]].fillna(0)
    out["dt"] = out["dt"].fillna(run.interval_s)
    return out


def throughput(run: RunData, per_t: pd.DataFrame, budgets: list[BudgetRow]) -> go.Figure:
    open_model = run.meta.get("model") == "arrival_rate"
    cols = {"rps": (per_t["n"] / per_t["dt"]).to_numpy(),
            "fps": (per_t["fail"] / per_t["dt"]).to_numpy()}
    if open_model:
        cols["started"] = (per_t["started"] / per_t["dt"]).to_numpy(float)
        cols["target"] = per_t["target"].to_numpy(float)
    t, v = _bin(per_t.index.to_numpy(), cols)
    fig = _figure("Throughput: achieved vs target", "per second")
    _line(fig, t, v["rps"], "requests/s")
    _line(fig, t, v["fps"], "failed requests/s", line={"color": RED.format(1)})
    if open_model:
        _line(fig, t, v["started"], "journeys started/s")
        _line(fig, t, v["target"], "target journeys/s", line={"dash": "dash", "color": "#555"})
    _mark(fig, [b for b in budgets if b["unit"] in ("/s", "count")], run.duration_s)
    return fig


def users(run: RunData, per_t: pd.DataFrame) -> go.Figure:
    cols = {"users": per_t["users"].to_numpy(float), "target": per_t["target"].to_numpy(float)}
    t, v = _bin(per_t.index.to_numpy(), cols)
    fig = _figure("Users over time", "users")
    _line(fig, t, v["users"], "users running")
    if run.meta.get("model") != "arrival_rate":
        _line(fig, t, v["target"], "target users", line={"dash": "dash"})
    return fig


def _global_latency(run: RunData) -> tuple[np.ndarray, np.ndarray]:
    scope = build_scope(run)
    slots = scope.counts("hist")
    values = np.array([counts_percentiles_ms(merge_counts(s), [50.0, 95.0, 99.0])
                       for s in slots], dtype=float).reshape(len(slots), 3)
    return scope.t, values


def _endpoint_latency(run: RunData, name: str) -> tuple[np.ndarray, np.ndarray]:
    iv = run.intervals
    rows = iv[iv["endpoint"] == name]
    if not rows["t"].duplicated().any():  # one source: the recorder's own figures
        return rows["t"].to_numpy(float), rows[["p50_ms", "p95_ms", "p99_ms"]].to_numpy(float)
    ts, values = [], []
    for t, group in rows.groupby("t"):
        ts.append(t)
        merged = run.hists.merged("hist", group.index.to_numpy())
        values.append(counts_percentiles_ms(merged, [50.0, 95.0, 99.0]))
    return np.array(ts, dtype=float), np.array(values, dtype=float).reshape(len(ts), 3)


def log_ticks(values: list[float]) -> tuple[list[float], list[str]]:
    """Ticks at 1, 2, 5 x 10^k covering the values, each labelled in full: plotly's own
    minor labels on a log axis read "2" and "5" where they mean 20 and 500 ms."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return [], []
    lo = math.floor(math.log10(min(positive))) - 1
    hi = math.ceil(math.log10(max(positive))) + 1
    ticks = [m * 10.0 ** k for k in range(lo, hi) for m in (1, 2, 5)]
    # Keep one tick beyond each end, so that the data never sits outside the labelled span.
    below = [t for t in ticks if t <= min(positive)][-1:]
    above = [t for t in ticks if t >= max(positive)][:1]
    kept = below + [t for t in ticks if min(positive) < t < max(positive)] + above
    return kept, [f"{t:g}" if t < 1000 else f"{t / 1000:g} s" for t in kept]


def latency(run: RunData, budgets: list[BudgetRow]) -> go.Figure:
    """p50/p95/p99 per interval: all endpoints, and one endpoint at a time from a dropdown."""
    # A log axis keeps both a 5 ms p50 and a 1 s budget line readable on one chart.
    fig = _figure("Response time percentiles", "ms (log scale)",
                  margin={"l": 60, "r": 20, "t": 80, "b": 60})
    series = [("All endpoints", *_global_latency(run))]
    series += [(name, *_endpoint_latency(run, name)) for name in run.endpoints[:MAX_ENDPOINTS]]
    latency_budgets = [b for b in budgets if b["unit"] == "ms"]
    lines = [b for b in latency_budgets if b["endpoint"] is None and b["window_s"] is None]
    # Only the extremes decide the ticks: no need to walk every point of a long run in Python.
    shown = np.concatenate([values.ravel() for _, _, values in series])
    shown = shown[np.isfinite(shown) & (shown > 0)]
    extremes = [float(shown.min()), float(shown.max())] if shown.size else []
    tickvals, ticktext = log_ticks(extremes + [float(b["limit"]) for b in lines])
    fig.update_yaxes(type="log", rangemode="normal", tickvals=tickvals, ticktext=ticktext)
    for i, (name, t, values) in enumerate(series):
        tb, v = _bin(t, {q: values[:, k] for k, q in enumerate(("p50", "p95", "p99"))}, "max")
        for q in ("p50", "p95", "p99"):
            _line(fig, tb, v[q], q if i == 0 else f"{q} {name}", visible=i == 0)
    buttons = []
    for i, (name, _, _) in enumerate(series):
        visible = [j // 3 == i for j in range(3 * len(series))]
        buttons.append({"label": label(name), "method": "update", "args": [{"visible": visible}]})
    if len(series) > 1:
        # Under the title on the left: the top right is the toolbar's, and the budget lines'
        # labels sit on the right.
        fig.update_layout(updatemenus=[{"buttons": buttons, "direction": "down", "x": 0.0,
                                        "xanchor": "left", "y": 1.02, "yanchor": "bottom"}])
    for b in lines:
        fig.add_hline(y=b["limit"], line_dash="dot", line_color=RED.format(0.7))
        # Annotations on a log axis take log10 of the value (add_hline's own label would be
        # placed at 10^limit, off the chart).
        fig.add_annotation(text=label(b["expr"]), x=1.0, xref="paper", xanchor="right",
                           y=math.log10(max(b["limit"], 1e-9)), yref="y", yanchor="bottom",
                           showarrow=False, font={"size": 10, "color": RED.format(0.9)})
    _mark(fig, latency_budgets, run.duration_s)
    return fig


def errors(run: RunData, per_t: pd.DataFrame, budgets: list[BudgetRow]) -> go.Figure:
    fig = _figure("Failures over time by kind", "failures/s", barmode="stack")
    err = run.errors
    if err.empty:
        fig.add_annotation(text="no failed requests", showarrow=False, xref="paper",
                           yref="paper", x=0.5, y=0.5, font={"size": 16, "color": "#2a7"})
        fig.update_xaxes(range=[0, max(run.duration_s, 1.0)])
    else:
        table = err.groupby(["t", "kind"])["count"].sum().unstack(fill_value=0)
        order = table.sum().sort_values(ascending=False).index
        kept = list(order[:MAX_KINDS])
        if len(order) > MAX_KINDS:
            table["other"] = table[list(order[MAX_KINDS:])].sum(axis=1)
            kept.append("other")
        table = table.reindex(per_t.index, fill_value=0)[kept]
        rates = {str(k): (table[k] / per_t["dt"]).to_numpy(float) for k in kept}
        t, v = _bin(per_t.index.to_numpy(), rates)
        for kind in v:
            fig.add_trace(go.Bar(x=t, y=v[kind], name=label(kind)))
        fig.update_layout(showlegend=True)  # plotly hides a lone trace's legend: the kind
    _mark(fig, [b for b in budgets if b["unit"] == "ratio"], run.duration_s)
    return fig


def distribution(run: RunData) -> go.Figure:
    """Latency by percentile from the merged histograms (the HdrHistogram classic plot)."""
    nines = np.linspace(0, 5, 101)
    qs = list(100.0 * (1.0 - 10.0 ** -nines))
    fig = _figure("Latency distribution (whole run)", "ms", hovermode="closest",
                  xaxis={"title": {"text": "percentile"}, "tickvals": [0, 1, 2, 3, 4, 5],
                         "ticktext": ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]})
    iv = run.intervals
    per_endpoint = [(name, run.hists.merged("hist", np.flatnonzero(
        (iv["endpoint"] == name).to_numpy()))) for name in run.endpoints[:8]]
    everything = merge_counts(c for _, c in per_endpoint) if len(run.endpoints) <= 8 else \
        run.hists.merged("hist", np.arange(len(iv)))
    for name, counts in [("All endpoints", everything), *per_endpoint]:
        if counts is not None:
            _line(fig, nines, np.array(counts_percentiles_ms(counts, qs), dtype=float), name,
                  customdata=np.round(qs, 4),
                  hovertemplate="p%{customdata}: %{y:.1f} ms")
    return fig


def generator(run: RunData) -> go.Figure:
    fig = _figure("Load generator: CPU and event-loop lag", "CPU % of one core",
                  margin={"l": 60, "r": 70, "t": 50, "b": 60},
                  yaxis2={"title": {"text": "loop lag ms"}, "overlaying": "y", "side": "right",
                          "rangemode": "tozero", "showgrid": False, "tickmode": "auto"})
    for source, rows in run.ticks.groupby("source", sort=True):
        if rows["cpu_pct"].notna().any():
            t, v = _bin(rows["t"].to_numpy(float), {
                "cpu": rows["cpu_pct"].to_numpy(float),
                "lag": rows["loop_lag_ms"].to_numpy(float)}, "max")
            _line(fig, t, v["cpu"], f"CPU {source}")
            _line(fig, t, v["lag"], f"loop lag {source}", yaxis="y2", line={"dash": "dot"})
    fig.add_hline(y=90, line_dash="dash", line_color=RED.format(0.5))
    return fig


def arrivals(per_t: pd.DataFrame) -> go.Figure:
    cols = {k: (per_t[k] / per_t["dt"]).to_numpy(float) for k in ("due", "started", "dropped",
                                                                    "late")}
    t, v = _bin(per_t.index.to_numpy(), cols)
    fig = _figure("Arrivals (open model)", "journeys/s")
    for key, name in (("due", "due"), ("started", "started"), ("late", "late (>100 ms)"),
                      ("dropped", "dropped")):
        _line(fig, t, v[key], name)
    return fig


def all_figures(run: RunData, summary: Summary) -> list[dict[str, str]]:
    """Every chart as {id, title, json}: JSON safe to place inside a <script> element."""
    budgets = summary["budgets"]
    per_t = _per_t(run)
    figures: list[tuple[str, str, go.Figure]] = [
        ("throughput", "Throughput", throughput(run, per_t, budgets)),
        ("users", "Users", users(run, per_t)),
        ("latency", "Latency", latency(run, budgets)),
        ("errors", "Failures", errors(run, per_t, budgets)),
        ("distribution", "Latency distribution", distribution(run)),
        ("generator", "Generator", generator(run)),
    ]
    if per_t["due"].notna().any():
        figures.append(("arrivals", "Arrivals", arrivals(per_t)))
    shop = ShopCharts(run, budgets, _figure, _line).charts()
    figures += [(f"monitor-{i}", title, fig) for i, (title, fig) in enumerate(shop)]
    speedup = _speedup(run)
    for key, _, fig in figures:
        if key != "distribution":  # every time chart
            _stages(fig, run.stages)
            if speedup != 1.0:
                _campaign_time(fig, speedup)
    return [{"id": f"chart-{key}", "title": title, "json": script_json(pio.to_json(fig))}
            for key, title, fig in figures]


def _speedup(run: RunData) -> float:
    try:
        speedup = float(run.meta.get("speedup") or 1.0)
    except (TypeError, ValueError):
        return 1.0
    return speedup if speedup > 0 and math.isfinite(speedup) else 1.0


def _stages(fig: go.Figure, stages: list[dict[str, Any]]) -> None:
    """A dotted line and the stage's name where each stage starts."""
    for stage in stages[:20]:
        try:
            start = float(stage.get("start_s"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        fig.add_vline(x=start, line_dash="dot", line_color="rgba(0,0,0,0.25)", line_width=1,
                      annotation_text=label(stage.get("name") or ""),
                      annotation_position="top right", annotation_font_size=10,
                      annotation_font_color="#777")


def _campaign_time(fig: go.Figure, speedup: float) -> None:
    """Under --speedup the x axis reads campaign time; the hover also gives wall time."""
    for trace in fig.data:
        if trace.x is None:
            continue
        wall = np.asarray(trace.x, dtype=float)
        trace.x = wall * speedup
        if trace.hovertemplate is None:
            trace.customdata = wall
            trace.hovertemplate = ("%{y:.4g} at campaign %{x:.0f} s (wall %{customdata:.1f} s)"
                                   f"<extra>{trace.name or ''}</extra>")
    for shape in fig.layout.shapes:
        if shape.xref in (None, "x"):
            for key in ("x0", "x1"):
                if isinstance(shape[key], int | float):
                    shape[key] = shape[key] * speedup
    for note in fig.layout.annotations:
        if note.xref in (None, "x") and isinstance(note.x, int | float):
            note.x = note.x * speedup
    fig.update_xaxes(title_text=f"campaign time, s (wall time x {speedup:g}: --speedup "
                                f"{speedup:g})")


def script_json(text: str) -> str:
    """JSON that cannot end a <script> element early: `<`, `>`, `&` become \\u escapes."""
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
