"""The shop's side of the story: its own metrics, read as a performance engineer reads them.

- a resource of `monitor.resources` (storage): used against its limit, the 80% line and the
  moment it crossed it;
- a Prometheus histogram (`*_bucket`, or only `*_sum`/`*_count` when buckets were not kept):
  the server's own p50/p95 (mean without buckets) per route, beside the latency the client
  measured on the matching endpoint: the gap is network and queueing;
- a counter (`*_total`): its rate per second, not the raw cumulative value;
- any other gauge: as it is.

At most MAX_CHARTS charts: the metrics a budget names and the resources first, then by sample
count. How the scrapes went is judge/scrapes.py's.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from shop_loadtest.judge.model import BudgetRow
from shop_loadtest.judge.monitor_stats import project_growth, resources_of, speedup_of, used_ratio
from shop_loadtest.results import RunData, rounded

MAX_CHARTS = 6
MAX_LINES = 8
_HIST_PARTS = ("_bucket", "_sum", "_count")
_METRIC_IN_BUDGET = re.compile(r"\b([a-z_:][a-z0-9_:]*)\s*(?:\{|\))")


def _family(name: str) -> tuple[str, str]:
    """(family, kind): kind is histogram, counter or gauge."""
    for part in _HIST_PARTS:
        if name.endswith(part):
            return name[: -len(part)], "histogram"
    if name.endswith("_total"):
        return name, "counter"
    return name, "gauge"


def _labels(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _series_key(labels: dict[str, str], drop: tuple[str, ...] = ()) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in drop)


def _shape(path: str) -> str:
    """A route or endpoint path with its parameters as `*`: `/api/products/<int:id>` and
    `/api/products/{id}` are both `/api/products/*`."""
    return re.sub(r"<[^>]*>|\{[^}]*\}|:[a-z_]+", "*", path.strip().lower())


def matching_endpoint(labels: dict[str, str], endpoints: list[str]) -> str | None:
    """The client endpoint a server series stands for, by method and route (or path)."""
    route = labels.get("route") or labels.get("path") or labels.get("handler") or ""
    method = (labels.get("method") or "").upper()
    if not route:
        return None
    for name in endpoints:
        verb, _, path = name.partition(" ")
        if _shape(path) == _shape(route) and (not method or method == verb.upper()):
            return name
    return None


def _quantile(le: np.ndarray, counts: np.ndarray, q: float) -> float:
    """histogram_quantile over one interval's bucket increases (cumulative, sorted by le)."""
    total = counts[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    i = int(np.searchsorted(counts, rank, side="left"))
    if i >= len(le) or math.isinf(le[i]):
        return float(le[i - 1]) if i >= 1 else math.nan
    lo_le = le[i - 1] if i else 0.0
    lo_count = counts[i - 1] if i else 0.0
    inside = counts[i] - lo_count
    return float(lo_le + (le[i] - lo_le) * ((rank - lo_count) / inside if inside else 1.0))


def _unit_scale(family: str) -> float | None:
    """Milliseconds per unit of a latency histogram, from its name; None: not a duration."""
    if family.endswith("_seconds"):
        return 1000.0
    if family.endswith(("_milliseconds", "_ms")):
        return 1.0
    return None


def _rises(table: pd.DataFrame) -> np.ndarray:
    """What each column of cumulative counters (rows in time order) grew by over the run; a
    fall is a restart of the shop, after which the counter counts from 0."""
    values = table.to_numpy(float)
    if len(values) < 2:
        return np.zeros(values.shape[1])
    step = np.diff(values, axis=0)
    return np.where(step >= 0, step, values[1:]).sum(axis=0)


def bucket_table(rows: pd.DataFrame, times: pd.Series) -> pd.DataFrame:
    """One histogram series' buckets: a row per scrape that kept its family's buckets (`times`),
    a column per `le`, cumulative counts. A series the shop creates at its route's first
    request is absent from the scrapes before: it counted 0 there, so the requests before its
    first scrape are not lost. A later gap keeps the last value."""
    le = rows["labels"].map(lambda lab: _le(_labels(lab).get("le")))
    table = (rows.assign(le=le.to_numpy()).dropna(subset=["le"])
             .pivot_table(index="t", columns="le", values="value", aggfunc="sum")
             .sort_index().dropna(axis=1))
    if table.empty:
        return table
    every = np.unique(np.concatenate([times.dropna().to_numpy(float),
                                      table.index.to_numpy(float)]))
    before = every[every < table.index[0]]
    table = table.reindex(every).ffill()
    table.loc[before] = 0.0
    return table


def server_latency(run: RunData) -> dict[str, dict[str, Any]]:
    """Per client endpoint: the server's own p50/p95 over the whole run, from the buckets kept
    of each latency histogram (`monitor.buckets`), as histogram_quantile would give them on
    the run's increase. {endpoint: {p50_ms, p95_ms, count, metric, route, first_le_ms,
    p50_first, p95_first (the percentile is in the first bucket: at most first_le_ms)}};
    empty without buckets or without a route that matches an endpoint."""
    mon = run.monitor
    if mon.empty:
        return {}
    rows = mon[mon["name"].astype(str).str.endswith("_bucket") & mon["t"].notna()]
    endpoints = list(run.endpoints)
    out: dict[str, dict[str, Any]] = {}
    for name, part in rows.groupby("name", sort=True):
        family = str(name)[: -len("_bucket")]
        scale = _unit_scale(family)
        if scale is None:
            continue
        labels = part["labels"].map(_labels)
        series = labels.map(lambda lab: _series_key(lab, drop=("le",)))
        frame = part.assign(series=series.to_numpy())
        merged: dict[str, tuple[np.ndarray, np.ndarray, dict[str, str]]] = {}
        for _, one in frame.groupby("series", sort=True):
            lab = {k: v for k, v in _labels(one["labels"].iloc[0]).items() if k != "le"}
            endpoint = matching_endpoint(lab, endpoints)
            if endpoint is None or endpoint in out:
                continue
            table = bucket_table(one, part["t"])
            edges, grown = table.columns.to_numpy(float), _rises(table)
            if endpoint in merged and np.array_equal(merged[endpoint][0], edges):
                grown = grown + merged[endpoint][1]  # one route, several series (status)
            merged[endpoint] = (edges, grown, lab)
        for endpoint, (edges, grown, lab) in merged.items():
            if not len(grown) or grown[-1] <= 0:
                continue
            p50, p95 = (_quantile(edges, grown, q) * scale for q in (0.5, 0.95))
            # In the first bucket the interpolation from 0 is a guess: say "at most its le".
            first = float(edges[0]) * scale if math.isfinite(edges[0]) else None
            out[endpoint] = {"p50_ms": rounded(p50), "p95_ms": rounded(p95),
                             "first_le_ms": rounded(first),
                             "p50_first": bool(grown[0] >= 0.5 * grown[-1]),
                             "p95_first": bool(grown[0] >= 0.95 * grown[-1]),
                             "count": int(grown[-1]), "metric": family,
                             "route": lab.get("route") or lab.get("path") or lab.get("handler")}
    return out


def _le(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class ShopCharts:
    """Builds the shop-metric charts of one run (see the module's docstring)."""

    def __init__(self, run: RunData, budgets: list[BudgetRow], figure: Any,
                 line: Any) -> None:
        self.run, self.budgets = run, budgets
        self.figure, self.line = figure, line  # charts.py's _figure and _line: one look
        mon = run.monitor.dropna(subset=["name", "value"])
        self.mon = mon[mon["t"].notna()]

    def charts(self) -> list[tuple[str, go.Figure]]:
        if self.mon.empty:
            return []
        out: list[tuple[str, go.Figure]] = []
        done: set[str] = set()
        for resource in resources_of(self.run.meta):
            fig = self._resource(resource)
            if fig is not None:
                out.append((f"Shop resource: {resource.name}", fig))
                done.add(resource.used)
                if isinstance(resource.limit, str):
                    done.add(resource.limit.split("{")[0])  # drawn as the 100% line
        names = self.mon["name"].astype(str)
        families = names.map(lambda n: _family(n)[0])
        counts = families.value_counts()
        named = {m for b in self.budgets for m in _METRIC_IN_BUDGET.findall(str(b["expr"]))}
        order = sorted(counts.index, key=lambda f: (f not in named, -int(counts[f]), f))
        for family in order:
            if len(out) >= MAX_CHARTS:
                break
            if family in done:
                continue
            kinds = {_family(n)[1] for n in names[families == family].unique()}
            fig = (self._histogram(family) if "histogram" in kinds else
                   self._counter(family) if "counter" in kinds else self._gauge(family))
            if fig is not None:
                out.append((fig.layout.title.text, fig))
                done.add(family)
        return out[:MAX_CHARTS]

    def _rows(self, name: str) -> pd.DataFrame:
        return self.mon[self.mon["name"] == name]

    def _resource(self, resource: Any) -> go.Figure | None:
        t, ratio = used_ratio(self.mon, resource)
        if not len(t):
            return None
        fig = self.figure(f"Shop resource: {resource.name} used of its limit", "% of limit",
                          hovermode="closest")
        self.line(fig, t, ratio * 100.0, f"{resource.used} / limit")
        speedup = speedup_of(self.run.meta)
        if speedup != 1.0:  # what the budget judges: the growth as the campaign would make it
            projected = project_growth(ratio, speedup)
            self.line(fig, t, projected * 100.0, f"projected to the campaign (x{speedup:g})",
                      line={"dash": "dash"})
            ratio = projected
        fig.add_hline(y=100, line_color="rgba(214,39,40,0.8)", annotation_text="limit",
                      annotation_position="top left")
        fig.add_hline(y=80, line_dash="dash", line_color="rgba(214,39,40,0.5)",
                      annotation_text="80%", annotation_position="bottom left")
        over = np.flatnonzero(ratio >= 0.8)
        if len(over):
            crossed = float(t[over[0]])
            speedup = speedup_of(self.run.meta)
            when = (f"campaign {crossed * speedup:.0f} s (wall {crossed:g} s)"
                    if speedup != 1.0 else f"t={crossed:g} s")
            fig.add_vline(x=crossed, line_dash="dot", line_color="rgba(214,39,40,0.8)",
                          annotation_text=f"crossed 80% at {when}",
                          annotation_position="top right")
        return fig

    def _counter(self, name: str) -> go.Figure | None:
        rows = self._rows(name)
        fig = self.figure(f"Shop metric: rate({name})", "per second", hovermode="closest")
        drawn = 0
        keys = rows["labels"].map(lambda v: _series_key(_labels(v)))
        for key in keys.value_counts().index[:MAX_LINES]:
            part = rows[keys == key].sort_values("t")
            t, v = part["t"].to_numpy(float), part["value"].to_numpy(float)
            if len(t) < 2:
                continue
            dt = np.diff(t)
            rise = np.diff(v)
            rate = np.where(rise >= 0, rise, v[1:]) / np.where(dt > 0, dt, np.nan)
            self.line(fig, t[1:], rate, key or name)
            drawn += 1
        return fig if drawn else None

    def _gauge(self, name: str) -> go.Figure | None:
        rows = self._rows(name)
        fig = self.figure(f"Shop metric: {name}", "value", hovermode="closest")
        keys = rows["labels"].map(lambda v: _series_key(_labels(v)))
        for key in keys.value_counts().index[:MAX_LINES]:
            part = rows[keys == key].sort_values("t")
            self.line(fig, part["t"].to_numpy(float), part["value"].to_numpy(float),
                      key or name)
        return fig

    def _histogram(self, family: str) -> go.Figure | None:
        """Server p50/p95 per route from the buckets (or the mean from sum/count), beside the
        client's p95 of the matching endpoint."""
        buckets = self._rows(f"{family}_bucket")
        seconds = family.endswith("_seconds")
        scale = 1000.0 if seconds else 1.0
        fig = self.figure(f"Shop metric: {family}, server vs client",
                          "ms (log scale)" if seconds else "value", hovermode="closest")
        if seconds:  # one slow second must not flatten the rest
            fig.update_yaxes(type="log")
        endpoints = self.run.endpoints
        drawn = 0
        routes: dict[str, dict[str, str]] = {}
        source = buckets if len(buckets) else self._rows(f"{family}_count")
        for labels in source["labels"]:
            lab = {k: v for k, v in _labels(labels).items() if k != "le"}
            routes.setdefault(_series_key(lab), lab)
        ranked = sorted(routes.items(),
                        key=lambda kv: matching_endpoint(kv[1], endpoints) is None)
        for key, lab in ranked[:MAX_LINES // 2]:
            client = matching_endpoint(lab, endpoints)
            if len(buckets):
                drawn += self._bucket_lines(fig, buckets, key, scale)
            else:
                drawn += self._mean_line(fig, family, key, scale)
            if client is not None:
                self._client_line(fig, client)
        return fig if drawn else None

    def _bucket_lines(self, fig: go.Figure, buckets: pd.DataFrame, key: str,
                      scale: float) -> int:
        labels = buckets["labels"].map(_labels)
        mine = buckets[labels.map(lambda lab: _series_key(
            {k: v for k, v in lab.items() if k != "le"}) == key)]
        if mine.empty:
            return 0
        table = bucket_table(mine, buckets["t"])
        if len(table) < 2:
            return 0
        edges = table.columns.to_numpy(float)
        rises = np.clip(np.diff(table.to_numpy(float), axis=0), 0, None)
        t = table.index.to_numpy(float)[1:]
        for q, dash in ((0.5, "dot"), (0.95, "solid")):
            values = np.array([_quantile(edges, row, q) for row in rises]) * scale
            self.line(fig, t, values, f"server p{q * 100:g} {key}", line={"dash": dash})
        return 1

    def _mean_line(self, fig: go.Figure, family: str, key: str, scale: float) -> int:
        sums, counts = self._rows(f"{family}_sum"), self._rows(f"{family}_count")

        def one(rows: pd.DataFrame) -> pd.Series:
            keys = rows["labels"].map(lambda v: _series_key(_labels(v)))
            return rows[keys == key].groupby("t")["value"].sum().sort_index()

        s, c = one(sums), one(counts)
        both = pd.concat([s, c], axis=1, keys=["s", "c"]).dropna()
        if len(both) < 2:
            return 0
        ds, dc = np.diff(both["s"].to_numpy(float)), np.diff(both["c"].to_numpy(float))
        mean = np.where(dc > 0, ds / np.where(dc > 0, dc, 1.0), np.nan) * scale
        self.line(fig, both.index.to_numpy(float)[1:], mean, f"server mean {key}")
        return 1

    def _client_line(self, fig: go.Figure, endpoint: str) -> None:
        iv = self.run.intervals
        rows = iv[iv["endpoint"] == endpoint].groupby("t")["p95_ms"].max()
        if len(rows):
            self.line(fig, rows.index.to_numpy(float), rows.to_numpy(float),
                      f"client p95 {endpoint}", line={"dash": "dash"})


def first_scrape_failed(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first scrape of the run, when it failed (the live view warns at once)."""
    for rec in records:
        return rec if rec.get("ok") is False else None
    return None

