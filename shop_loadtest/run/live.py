"""The live view of a run: what the engineer at a terminal, or the CI log, sees while it runs.

On a terminal, a rich panel redrawn every 2 s (each time the runner reports progress): stage,
elapsed and remaining time, target vs achieved rate, users, p95 and error rate of the last
10 s, and each budget judged on the results so far. Elsewhere (CI), one plain line every 10 s:

    [  20s/60s] stage=peak rate=38.2/s (target 40) p95=7.1ms errors=0.00% budgets 5/5 ok

Like every other stage it reads only the run folder, and each file only once: the recent
figures and the budgets come from the new lines of intervals.jsonl and monitor.jsonl alone
(budgets folded interval by interval, judge/live.py; those on the shop's metrics judged on
what was read, results/light.py, at most every few seconds and less often when judging gets
expensive, so that the view never takes the CPU the load generator needs). A line read
mid-write is expected now and then: the view then shows its last state, and never stops the run.

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

from rich.console import Console
from rich.live import Live

from shop_loadtest.judge.budgets import AbortHit, BudgetResult, evaluate, first_hit
from shop_loadtest.judge.live import LiveJudge, supports
from shop_loadtest.judge.recovery import live_state
from shop_loadtest.results import (
    counts_percentile_ms,
    decode_counts,
    merge_counts,
    number,
)
from shop_loadtest.results.light import MonitorEvidence
from shop_loadtest.run.live_render import (
    WINDOW_S,
    AbortView,
    Snapshot,
    headline,
    plain_line,
    render,
)
from shop_loadtest.safety.text import terminal_safe
from shop_loadtest.scenario.budgets import Budget, parse_abort, parse_budget

__all__ = ["FolderWatch", "JsonlTail", "LiveView", "Snapshot", "live_state", "plain_line",
           "render"]
PLAIN_EVERY_S = 10.0
BUDGETS_EVERY_S = 2.0  # at most this often...
BUDGETS_CPU_SHARE = 0.1  # ...and spending at most ~10% of the time judging them
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
        self.monitor_tail = JsonlTail(self.run_dir / "monitor.jsonl")
        self.evidence = MonitorEvidence()  # what the monitor budgets read, grown as read
        self.scrapes_ok = self.scrapes_failed = 0
        self.scrape_error: str | None = None
        self.first_scrape_error: str | None = None
        self.scraped = False
        self.meta: dict[str, Any] | None = None
        self.seconds: deque[_Second] = deque()
        self.requests = self.failures = 0
        self.budget_results: tuple[BudgetResult, ...] = ()
        self.budgets_at: float | None = None
        self.next_budgets = -math.inf
        self.parsed: list[Budget] | None = None
        self.aborts: list[Budget] = []
        self.abort_hits: dict[str, AbortHit] = {}  # monitor abort rules that fired
        self.judge: LiveJudge | None = None
        self.batch_results: dict[int, BudgetResult] = {}
        self.next_batch = -math.inf

    def _read_meta(self) -> dict[str, Any]:
        if self.meta is None:
            meta = json.loads((self.run_dir / "run.json").read_text(encoding="utf-8"))
            self.meta = meta if isinstance(meta, dict) else {}
        return self.meta

    def _add(self, record: dict[str, Any]) -> None:
        t, dt = number(record.get("t"), None), number(record.get("dt"), None) or 1.0
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
        second.users_by[source] = number(record.get("users"), 0.0)
        second.target_by[source] = number(record.get("target"), 0.0)
        arrivals = record.get("arrivals")
        if isinstance(arrivals, dict):
            second.started = (second.started or 0.0) + number(arrivals.get("started"), 0.0)
        endpoints = record.get("endpoints")
        for ep in endpoints.values() if isinstance(endpoints, dict) else ():
            if isinstance(ep, dict):
                n, fail = int(number(ep.get("n"), 0)), int(number(ep.get("fail"), 0))
                second.n, second.fail = second.n + n, second.fail + fail
                self.requests, self.failures = self.requests + n, self.failures + fail
                if isinstance(ep.get("hist"), str):
                    second.hists.append(ep["hist"])

    def _read_scrapes(self) -> None:
        """Scrape health from the new lines of monitor.jsonl (kept for the monitor budgets)."""
        records = self.monitor_tail.read()
        if self._needs_evidence():
            self.evidence.add_monitor(records)
        for rec in records:
            ok = rec.get("ok") is True
            if ok:
                self.scrapes_ok += 1
            else:
                self.scrapes_failed += 1
                self.scrape_error = f"{rec.get('endpoint')}: {rec.get('error') or 'failed'}"
            if not self.scraped and not ok:
                self.first_scrape_error = self.scrape_error
            self.scraped = True

    def _parsed(self) -> list[Budget]:
        if self.parsed is None:
            meta = self._read_meta()
            self.parsed = [parse_budget(str(e)) for e in meta.get("budgets") or []]
            self.aborts = [parse_abort(str(e)) for e in meta.get("abort") or []]
            self.judge = LiveJudge(meta, [b for b in self.parsed if supports(b)],
                                   [r for r in self.aborts if supports(r)])
        return self.parsed

    def _needs_evidence(self) -> bool:
        """Whether a budget on the shop's metrics is to be judged (then the lines read are
        kept for it; otherwise not, to keep a long run's view small)."""
        try:
            return any(not supports(b) for b in [*self._parsed(), *self.aborts])
        except Exception:
            return False

    def _hopeless(self) -> list[bool]:
        """Per budget, in order: whether the planned rest of the run cannot save it."""
        folded = iter(self.judge.hopeless() if self.judge is not None else ())
        return [next(folded, False) if supports(b) else False for b in self.parsed or []]

    def _abort_views(self) -> tuple[AbortView, ...]:
        """Abort rules as the runner judges them: folded ones with their value now; those on
        monitor statistics armed (no value shown) until they fire."""
        folded = iter(self.judge.abort_states() if self.judge is not None else ())
        views = []
        for rule in self.aborts:
            if not supports(rule):
                hit = self.abort_hits.get(rule.expr)
                views.append(AbortView(rule.expr, None if hit is None else hit.observed,
                                       rule.limit, rule.unit, rule.op,
                                       "armed" if hit is None else "fired",
                                       None if hit is None else hit.t))
                continue
            state = next(folded, None)
            if state is None:
                continue
            views.append(AbortView(rule.expr, state.observed, rule.limit, rule.unit, rule.op,
                                   "fired" if state.hit is not None else
                                   "armed" if state.observed is not None else "no_data",
                                   state.hit.t if state.hit is not None else None))
        return tuple(views)

    def _judge_budgets(self, t: float | None) -> None:
        """Budgets on the results so far. Most are folded in interval by interval (cheap at
        any length); monitor statistics are judged on the lines read so far without their
        request figures (results/light.py), as often as their cost allows."""
        now = self.clock()
        budgets = self._parsed()
        if not (budgets or self.aborts) or now < self.next_budgets:
            return
        self.next_budgets = now + BUDGETS_EVERY_S - 0.1
        batch = [i for i, b in enumerate(budgets) if not supports(b)]
        batch_aborts = [r for r in self.aborts if not supports(r)]
        if (batch or batch_aborts) and now >= self.next_batch:
            began = time.perf_counter()
            try:
                run = self.evidence.run(self._read_meta())
                found = evaluate([budgets[i] for i in batch], run)
                self.batch_results = dict(zip(batch, found, strict=True))
                for rule in batch_aborts:  # the runner's own check, on the same lines
                    if rule.expr not in self.abort_hits:
                        hit = first_hit(rule, run)
                        if hit is not None:
                            self.abort_hits[rule.expr] = hit
            except Exception:
                pass
            cost = time.perf_counter() - began
            self.next_batch = now + max(BUDGETS_EVERY_S, cost / BUDGETS_CPU_SHARE) - 0.1
        assert self.judge is not None
        folded = iter(self.judge.results())
        results = []
        for i, _ in enumerate(budgets):
            if i in batch:
                if i not in self.batch_results:
                    return  # not judged yet: keep showing the last results
                results.append(self.batch_results[i])
            else:
                results.append(next(folded))
        self.budget_results = tuple(results)
        self.budgets_at = t

    def snapshot(self, elapsed: float, duration: float) -> Snapshot:
        meta = self._read_meta()
        self._read_scrapes()
        records = self.tail.read()
        if self._needs_evidence():
            self.evidence.add_intervals(records)
        for record in records:
            self._add(record)
        try:
            self._parsed()
            if self.judge is not None:
                self.judge.feed(records)
        except Exception:
            self.parsed, self.judge = [], None
        while self.seconds and self.seconds[0].t <= self.seconds[-1].t - WINDOW_S:
            self.seconds.popleft()
        seconds = list(self.seconds)
        latest = seconds[-1].t if seconds else None
        self._judge_budgets(latest)
        states = tuple(
            live_state(b, r, t=latest, stages=_stages(meta), ended=elapsed >= duration,
                       hopeless=h)
            for b, r, h in zip(self.parsed or [], self.budget_results, self._hopeless(),
                               strict=False))
        common: dict[str, Any] = {"elapsed_s": elapsed, "duration_s": duration,
                  "scenario": str(meta.get("scenario") or ""), "model": meta.get("model"),
                  "stage": _stage(meta, latest if latest is not None else elapsed),
                  "requests": self.requests, "failures": self.failures,
                  "budgets": self.budget_results, "budgets_at": self.budgets_at,
                  "states": states, "aborts": self._abort_views(),
                  "target_name": _target_name(meta, self.run_dir),
                  "scrapes_ok": self.scrapes_ok, "scrapes_failed": self.scrapes_failed,
                  "scrape_error": self.scrape_error,
                  "first_scrape_error": self.first_scrape_error,
                  "speedup": number(meta.get("speedup"), None) or 1.0}
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


def _stages(meta: dict[str, Any]) -> list[dict[str, Any]]:
    listed = meta.get("stages")
    return [s for s in listed if isinstance(s, dict)] if isinstance(listed, list) else []


def _target_name(meta: dict[str, Any], run_dir: Path) -> str:
    """`demo shop` when the runner started the bundled shop for this run, else the host."""
    target = meta.get("target")
    if isinstance(target, dict) and str(target.get("kind") or "").startswith("demo"):
        return "demo shop"
    if (run_dir / "demo-shop.sqlite").exists():  # the runner keeps the demo shop's database
        return "demo shop"
    return str(meta.get("host") or "host unknown")


def _stage(meta: dict[str, Any], t: float) -> str | None:
    stages = _stages(meta)
    for s in stages:
        start, end = number(s.get("start_s"), None), number(s.get("end_s"), None)
        if start is not None and end is not None and start <= t < end:
            return terminal_safe(str(s.get("name")))
    return terminal_safe(str(stages[-1].get("name"))) if stages and t > 0 else None


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
        self.said_headline = False
        self.warned_scrape = False

    def _warn_first_scrape(self) -> None:
        """Said once, at once: a shop whose metrics cannot be read gives no resource budgets
        and no shop-side charts, and the engineer should know before the run is over."""
        assert self.watch is not None
        self.watch._read_scrapes()
        error = self.watch.first_scrape_error
        if error and not self.warned_scrape:
            self.warned_scrape = True
            message = (f"warning: the first scrape of the shop's metrics failed ({error}); "
                       "budgets and charts on them will see only the scrapes that work")
            if self.live is not None:
                self.live.console.print(message, style="bold yellow")
            else:
                print(message, file=self.stream, flush=True)

    def __enter__(self) -> LiveView:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.live is not None:
            try:
                self.live.stop()
            except Exception:  # a broken terminal must not hide the run's result
                pass
            self.live = None

    def __call__(self, run_dir: Path, elapsed: float, duration: float) -> None:
        try:
            self.update(Path(run_dir), elapsed, duration)
        except Exception:  # the view must never stop the run it shows
            pass

    def update(self, run_dir: Path, elapsed: float, duration: float) -> None:
        if self.watch is None or self.watch.run_dir != run_dir:
            self.watch = FolderWatch(run_dir, clock=self.clock)
        self._warn_first_scrape()
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
            if not self.said_headline:
                print(f"shop-loadtest: {headline(snap)}", file=self.stream, flush=True)
                self.said_headline = True
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
