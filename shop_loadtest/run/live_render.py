"""The live view's words and pictures: a Snapshot of a run as a plain line for CI logs and
as a rich panel for terminals. Pure functions of the snapshot (live.py gathers it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from shop_loadtest.judge.budgets import BudgetResult, format_value
from shop_loadtest.safety.text import terminal_safe

WINDOW_S = 10.0  # p95 and error rate are of the last 10 s
STATE = {"pass": "ok", "fail": "BROKEN", "no_data": "no data yet", "so_far": "failing so far"}
STYLE = {"pass": "green", "fail": "bold red", "no_data": "yellow", "so_far": "yellow"}

ABORT_STATE = {"armed": "armed", "fired": "FIRED", "no_data": "no data yet"}
ABORT_STYLE = {"armed": "green", "fired": "bold red", "no_data": "yellow"}


@dataclass(frozen=True)
class AbortView:
    """An abort rule as the live view shows it. `state`: armed, fired or no_data."""

    expr: str
    observed: float | None
    limit: float
    unit: str
    op: str
    state: str
    fired_t: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """What the view shows at one moment. Rates are per second; None: not known yet."""

    elapsed_s: float
    duration_s: float
    scenario: str = ""
    model: str | None = None
    stage: str | None = None
    t: float | None = None  # the latest recorded second (load time)
    users: float | None = None
    target: float | None = None  # users (closed model) or journeys/s (open model)
    rate: float | None = None  # journeys started/s (open model) or requests/s (closed)
    rps: float | None = None
    p95_ms: float | None = None
    error_rate: float | None = None
    requests: int = 0
    failures: int = 0
    budgets: tuple[BudgetResult, ...] = ()
    budgets_at: float | None = None  # load time the budgets were judged at
    states: tuple[str, ...] = ()  # live_state of each budget
    aborts: tuple[AbortView, ...] = ()
    target_name: str = ""  # the host, or "demo shop"
    speedup: float = 1.0
    scrapes_ok: int = 0  # scrapes of the shop's metrics
    scrapes_failed: int = 0
    scrape_error: str | None = None  # the last failure's error
    first_scrape_error: str | None = None  # the run's first scrape failed: this is why

    @property
    def open_model(self) -> bool:
        return self.model == "arrival_rate"

    def state(self, i: int) -> str:
        if i < len(self.states):
            return self.states[i]
        return self.budgets[i].status


# --- rendering ------------------------------------------------------------------------------
def _n(value: float | None) -> str:
    """`40`, `9.5`: targets and users without float noise."""
    if value is None:
        return "n/a"
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}ms"


def _clock(seconds: float) -> str:
    """`45s`, `3m20s`, `4h05m`."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def headline(snap: Snapshot) -> str:
    """`flash-sale → demo shop · speedup 10x · campaign 3m20s of 13m00s`"""
    campaign = (f"campaign {_clock(snap.elapsed_s * snap.speedup)} of "
                f"{_clock(snap.duration_s * snap.speedup)}")
    target = terminal_safe(snap.target_name or "") or "host unknown"
    return (f"{terminal_safe(snap.scenario)} → {target} · "
            f"speedup {snap.speedup:g}x · {campaign}")


def _budget_line(snap: Snapshot) -> str:
    results = snap.budgets
    if not results:
        return ""
    states = [snap.state(i) for i in range(len(results))]
    ok = sum(s == "pass" for s in states)
    line = f"budgets {ok}/{len(results)} ok"
    broken = [terminal_safe(r.expr) for r, s in zip(results, states, strict=True) if s == "fail"]
    so_far = [terminal_safe(r.expr) for r, s in zip(results, states, strict=True) if s == "so_far"]
    waiting = sum(s == "no_data" for s in states)
    for label, exprs in (("BROKEN", broken), ("failing so far", so_far)):
        if exprs:
            shown = ", ".join(exprs[:3]) + (f" and {len(exprs) - 3} more"
                                             if len(exprs) > 3 else "")
            line += f", {label}: {shown}"
    if waiting:
        line += f", {waiting} without data yet"
    return line


def _abort_line(snap: Snapshot) -> str:
    """`aborts 0/2 fired`, or `ABORT FIRED: error_rate > 50% for 20s (t=14s)`."""
    if not snap.aborts:
        return ""
    fired = [a for a in snap.aborts if a.state == "fired"]
    if not fired:
        return f"aborts 0/{len(snap.aborts)} fired"
    return "ABORT FIRED: " + ", ".join(
        terminal_safe(a.expr) + (f" (t={a.fired_t:.0f}s)" if a.fired_t is not None else "")
        for a in fired)


def plain_line(snap: Snapshot) -> str:
    """`[  20s/60s] stage=peak rate=38.2/s (target 40) p95=7.1ms errors=0.00% budgets 5/5 ok`"""
    parts = [f"[{snap.elapsed_s:4.0f}s/{snap.duration_s:.0f}s]"]
    if snap.speedup != 1.0:
        parts.append(f"campaign={_clock(snap.elapsed_s * snap.speedup)}")
    if snap.stage:
        parts.append(f"stage={snap.stage}")
    if snap.t is None:
        return " ".join([*parts, "waiting for the first results"])
    if snap.open_model:
        parts.append(f"rate={snap.rate:.1f}/s (target {_n(snap.target)})")
    else:
        parts += [f"users={_n(snap.users)} (target {_n(snap.target)})",
                  f"rate={snap.rate:.1f}/s"]
    errors = "n/a" if snap.error_rate is None else f"{snap.error_rate * 100:.2f}%"
    parts += [f"p95={_ms(snap.p95_ms)}", f"errors={errors}"]
    budgets = _budget_line(snap)
    aborts = _abort_line(snap)
    scrapes = (f"scrapes {snap.scrapes_ok} ok/{snap.scrapes_failed} failed"
               if snap.scrapes_failed else "")
    return " ".join(parts + [x for x in (budgets, aborts, scrapes) if x])


def render(snap: Snapshot, run_dir: Path | None = None) -> RenderableType:
    """The terminal panel for one snapshot."""
    done = min(snap.elapsed_s / snap.duration_s, 1.0) if snap.duration_s else 1.0
    left = max(snap.duration_s - snap.elapsed_s, 0.0)
    clock = Table.grid(padding=(0, 2))
    clock.add_row(Text(f"stage {snap.stage or '-'}", style="bold"),
                  ProgressBar(total=1.0, completed=done, width=40),
                  Text(f"{snap.elapsed_s:.0f}s / {snap.duration_s:.0f}s"),
                  Text(f"{left:.0f}s left" if left else "stopping...", style="dim"))
    figures = Table.grid(padding=(0, 3))
    if snap.t is None:
        figures.add_row(Text("waiting for the first results...", style="dim"))
    else:
        what = "journeys/s" if snap.open_model else "requests/s"
        target = (f"target {_n(snap.target)}/s" if snap.open_model
                  else f"users {_n(snap.users)} (target {_n(snap.target)})")
        errors = "n/a" if snap.error_rate is None else f"{snap.error_rate * 100:.2f}%"
        figures.add_row(f"rate [bold]{snap.rate:.1f}[/] {what}", target,
                        f"requests {snap.requests:,} ({snap.failures:,} failed)")
        figures.add_row(f"p95 [bold]{_ms(snap.p95_ms)}[/] (last {WINDOW_S:g}s)",
                        f"errors [bold]{errors}[/] (last {WINDOW_S:g}s)", "")
    parts: list[RenderableType] = [clock, Text(), figures]
    if snap.scrapes_ok or snap.scrapes_failed:
        style = "bold red" if snap.scrapes_failed else "green"
        health = f"shop metrics: {snap.scrapes_ok} scrapes ok, {snap.scrapes_failed} failed"
        if snap.scrape_error:
            health += f" (last: {snap.scrape_error})"
        parts += [Text(), Text(health, style=style)]
    if snap.budgets or snap.aborts:
        when = f" (as of t={snap.budgets_at:.0f}s)" if snap.budgets_at is not None else ""
        title = f"budgets so far{when}" if snap.budgets else "abort rules"
        table = Table(title=title, title_justify="left", expand=False,
                      box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for column, justify in (("budget", "left"), ("now", "right"), ("limit", "right"),
                                ("state", "left")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for i, r in enumerate(snap.budgets):
            state = snap.state(i)
            table.add_row(Text(terminal_safe(r.expr)), format_value(r.observed, r.unit),
                          f"{r.op} {format_value(r.limit, r.unit)}",
                          Text(STATE.get(state, state), style=STYLE.get(state, "")))
        if snap.budgets and snap.aborts:
            table.add_section()
        for a in snap.aborts:  # as judged: the rule fires on its own window, now
            shown = ABORT_STATE.get(a.state, a.state)
            if a.fired_t is not None:
                shown += f" at t={a.fired_t:.0f}s"
            table.add_row(Text("abort if " + terminal_safe(a.expr)),
                          format_value(a.observed, a.unit),
                          f"{a.op} {format_value(a.limit, a.unit)}",
                          Text(shown, style=ABORT_STYLE.get(a.state, "")))
        parts += [Text(), table]
    title = f"shop-loadtest: {headline(snap)}" if snap.target_name else \
        f"shop-loadtest: {terminal_safe(snap.scenario)}"
    return Panel(Group(*parts), title=Text(title, style="bold"),
                 subtitle=Text(str(run_dir)) if run_dir else None, title_align="left",
                 subtitle_align="right")


