"""The live view of a run: what the engineer at a terminal, or the CI log, sees while it runs.

On a terminal, a rich panel redrawn every 2 s (each time the runner reports progress): stage,
elapsed and remaining time, target vs achieved rate, users, p95 and error rate of the last
10 s, and each budget judged on the results so far. Elsewhere (CI), one plain line every 10 s:

    [  20s/60s] stage=peak rate=38.2/s (target 40) p95=7.1ms errors=0.00% budgets 5/5 ok

Like every other stage it reads only the run folder. The recent figures come from the new
lines of intervals.jsonl alone; budgets need the whole folder, so they are judged at most
every few seconds, less often when judging gets expensive on a long run, so that the view never
takes the CPU the load generator needs. A folder read mid-write is expected to fail now and
then: the view then shows its last state, and never stops the run.

    with LiveView() as progress:
        run(options, progress=progress)
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from shop_loadtest.judge.budgets import BudgetResult, evaluate, format_value
from shop_loadtest.results import counts_percentile_ms, decode_counts, load_run, merge_counts
from shop_loadtest.safety.text import terminal_safe
from shop_loadtest.scenario.budgets import parse_budget

WINDOW_S = 10.0  # p95 and error rate are of the last 10 s
PLAIN_EVERY_S = 10.0
BUDGETS_EVERY_S = 2.0  # at most this often...
BUDGETS_CPU_SHARE = 0.1  # ...and spending at most ~10% of the time judging them
STATE = {"pass": "ok", "fail": "BROKEN", "no_data": "no data yet"}
STYLE = {"pass": "green", "fail": "bold red", "no_data": "yellow"}


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

    @property
    def open_model(self) -> bool:
        return self.model == "arrival_rate"


class JsonlTail:
    """The complete lines appended to a JSONL file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.rest = path, 0, b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *lines, self.rest = (self.rest + data).split(b"\n")  # the last piece may be half-written
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


@dataclass
class _Second:
    """One recorded second, summed over the load processes that reported it."""

    t: float
    dt: float
    # Gauges, by source: a process that flushes twice onto one second (its last, partial
    # interval at stop) must not count its users twice.
    users_by: dict[str, float] = field(default_factory=dict)
    target_by: dict[str, float] = field(default_factory=dict)
    started: float | None = None
    n: int = 0
    fail: int = 0
    hists: list[str] = field(default_factory=list)


class FolderWatch:
    """Follows a run folder as it grows and turns it into Snapshots."""

    def __init__(self, run_dir: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.run_dir, self.clock = Path(run_dir), clock
        self.tail = JsonlTail(self.run_dir / "intervals.jsonl")
        self.meta: dict[str, Any] | None = None
        self.seconds: deque[_Second] = deque()
        self.requests = self.failures = 0
        self.budget_results: tuple[BudgetResult, ...] = ()
        self.budgets_at: float | None = None
        self.next_budgets = -math.inf

    def _read_meta(self) -> dict[str, Any]:
        if self.meta is None:
            meta = json.loads((self.run_dir / "run.json").read_text(encoding="utf-8"))
            self.meta = meta if isinstance(meta, dict) else {}
        return self.meta

    def _add(self, record: dict[str, Any]) -> None:
        t, dt = _num(record.get("t")), _num(record.get("dt")) or 1.0
        if t is None:
            return
        t = round(max(round(t / dt), 1) * dt, 6)  # on the interval grid, as results/folder.py does
        second = next((s for s in reversed(self.seconds) if s.t == t), None)
        if second is None:
            second = _Second(t, dt)
            self.seconds.append(second)
            if len(self.seconds) > 1 and self.seconds[-2].t > t:  # sources out of order
                self.seconds = deque(sorted(self.seconds, key=lambda s: s.t))
        source = str(record.get("source"))
        second.users_by[source] = _num(record.get("users")) or 0.0
        second.target_by[source] = _num(record.get("target")) or 0.0
        arrivals = record.get("arrivals")
        if isinstance(arrivals, dict):
            second.started = (second.started or 0.0) + (_num(arrivals.get("started")) or 0.0)
        endpoints = record.get("endpoints")
        for ep in endpoints.values() if isinstance(endpoints, dict) else ():
            if isinstance(ep, dict):
                n, fail = int(_num(ep.get("n")) or 0), int(_num(ep.get("fail")) or 0)
                second.n, second.fail = second.n + n, second.fail + fail
                self.requests, self.failures = self.requests + n, self.failures + fail
                if isinstance(ep.get("hist"), str):
                    second.hists.append(ep["hist"])

    def _judge_budgets(self, t: float | None) -> None:
        """Judge budgets on the whole folder so far, as often as their cost allows."""
        exprs = self._read_meta().get("budgets") or []
        now = self.clock()
        if not exprs or now < self.next_budgets:
            return
        began = time.perf_counter()
        try:
            run = load_run(self.run_dir)
            self.budget_results = tuple(evaluate([parse_budget(str(e)) for e in exprs], run))
            self.budgets_at = t
        except Exception:  # noqa: BLE001 - a folder mid-write: keep the last results
            pass
        cost = time.perf_counter() - began
        self.next_budgets = now + max(BUDGETS_EVERY_S, cost / BUDGETS_CPU_SHARE) - 0.1

    def snapshot(self, elapsed: float, duration: float) -> Snapshot:
        meta = self._read_meta()
        for record in self.tail.read():
            self._add(record)
        while self.seconds and self.seconds[0].t <= self.seconds[-1].t - WINDOW_S:
            self.seconds.popleft()
        seconds = list(self.seconds)
        latest = seconds[-1].t if seconds else None
        self._judge_budgets(latest)
        common: dict[str, Any] = {"elapsed_s": elapsed, "duration_s": duration,
                  "scenario": str(meta.get("scenario") or ""), "model": meta.get("model"),
                  "stage": _stage(meta, latest if latest is not None else elapsed),
                  "requests": self.requests, "failures": self.failures,
                  "budgets": self.budget_results, "budgets_at": self.budgets_at}
        if not seconds:
            return Snapshot(**common)
        # Rates and users from the latest second every load process has reported.
        full = max(len(s.users_by) for s in seconds)
        now = next((s for s in reversed(seconds) if len(s.users_by) == full), seconds[-1])
        n = sum(s.n for s in seconds)
        window = sum(s.dt for s in seconds)
        counts = merge_counts(decode_counts(h) for s in seconds for h in s.hists)
        open_model = meta.get("model") == "arrival_rate"
        return Snapshot(
            **common, t=latest, users=sum(now.users_by.values()),
            target=sum(now.target_by.values()),
            rate=((now.started or 0.0) / now.dt) if open_model else now.n / now.dt,
            rps=n / window if window else None, p95_ms=counts_percentile_ms(counts, 95.0),
            error_rate=sum(s.fail for s in seconds) / n if n else None)


def _stage(meta: dict[str, Any], t: float) -> str | None:
    listed = meta.get("stages")
    stages = [s for s in listed if isinstance(s, dict)] if isinstance(listed, list) else []
    for s in stages:
        start, end = _num(s.get("start_s")), _num(s.get("end_s"))
        if start is not None and end is not None and start <= t < end:
            return terminal_safe(str(s.get("name")))
    return terminal_safe(str(stages[-1].get("name"))) if stages and t > 0 else None


# --- rendering ------------------------------------------------------------------------------
def _n(value: float | None) -> str:
    """`40`, `9.5`: targets and users without float noise."""
    if value is None:
        return "n/a"
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}ms"


def _budget_line(snap: Snapshot) -> str:
    results = snap.budgets
    if not results:
        return ""
    ok = sum(r.status == "pass" for r in results)
    line = f"budgets {ok}/{len(results)} ok"
    broken = [terminal_safe(r.expr) for r in results if r.status == "fail"]
    waiting = sum(r.status == "no_data" for r in results)
    if broken:
        shown = ", ".join(broken[:3]) + (f" and {len(broken) - 3} more" if len(broken) > 3 else "")
        line += f", BROKEN: {shown}"
    if waiting:
        line += f", {waiting} without data yet"
    return line


def plain_line(snap: Snapshot) -> str:
    """`[  20s/60s] stage=peak rate=38.2/s (target 40) p95=7.1ms errors=0.00% budgets 5/5 ok`"""
    parts = [f"[{snap.elapsed_s:4.0f}s/{snap.duration_s:.0f}s]"]
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
    return " ".join(parts + ([budgets] if budgets else []))


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
    if snap.budgets:
        when = f" (as of t={snap.budgets_at:.0f}s)" if snap.budgets_at is not None else ""
        table = Table(title=f"budgets so far{when}", title_justify="left", expand=False,
                      box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for column, justify in (("budget", "left"), ("now", "right"), ("limit", "right"),
                                ("state", "left")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for r in snap.budgets:
            table.add_row(Text(r.expr), format_value(r.observed, r.unit),
                          f"{r.op} {format_value(r.limit, r.unit)}",
                          Text(STATE.get(r.status, r.status), style=STYLE.get(r.status, "")))
        parts += [Text(), table]
    return Panel(Group(*parts), title=Text(f"shop-loadtest: {snap.scenario}", style="bold"),
                 subtitle=Text(str(run_dir)) if run_dir else None, title_align="left",
                 subtitle_align="right")


class LiveView:
    """The runner's progress callback: a rich panel on a terminal, plain lines elsewhere.

    Never raises: a partial folder that cannot be read yet is skipped until the next call.
    """

    def __init__(self, stream: TextIO | None = None, *, interactive: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.interactive = _isatty(self.stream) if interactive is None else interactive
        self.clock = clock
        self.watch: FolderWatch | None = None
        self.live: Live | None = None
        self.last_line = -math.inf
        self.waited = False

    def __enter__(self) -> LiveView:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.live is not None:
            try:
                self.live.stop()
            except Exception:  # noqa: BLE001 - a broken terminal must not hide the run's result
                pass
            self.live = None

    def __call__(self, run_dir: Path, elapsed: float, duration: float) -> None:
        try:
            self.update(Path(run_dir), elapsed, duration)
        except Exception:  # noqa: BLE001 - the view must never stop the run it shows
            pass

    def update(self, run_dir: Path, elapsed: float, duration: float) -> None:
        if self.watch is None or self.watch.run_dir != run_dir:
            self.watch = FolderWatch(run_dir, clock=self.clock)
        if not self.interactive:
            # A line every 10 s, and the first as soon as there are figures to show.
            if elapsed - self.last_line < PLAIN_EVERY_S:
                return
            snap = self.watch.snapshot(elapsed, duration)
            if snap.t is not None:
                self.last_line = elapsed
            elif self.waited:
                return
            self.waited = True
            print(plain_line(snap), file=self.stream, flush=True)
            return
        panel = render(self.watch.snapshot(elapsed, duration), run_dir)
        if self.live is None:
            console = Console(file=self.stream)
            self.live = Live(panel, console=console, auto_refresh=False,
                             redirect_stdout=False, redirect_stderr=False)
            self.live.start(refresh=True)
        else:
            self.live.update(panel, refresh=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
