"""Drive one run: check the target, write the run folder, run Locust headless as a subprocess,
watch it (abort rules, live view, Ctrl-C), and build the reports from what was recorded.

This process never imports locust: Locust runs as `python -m locust` on the generated file,
and its results reach us only through the run folder (docs/results-format.md).
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from secrets import token_hex
from typing import IO, Any
from urllib.parse import urlsplit

from shop_loadtest import __version__
from shop_loadtest.errors import (
    EngineError,
    InputError,
    ResultsError,
    TargetUnreachable,
)
from shop_loadtest.generate.locustfile import render_locustfile
from shop_loadtest.judge.model import Summary
from shop_loadtest.run.monitor import run_meta, start_monitor
from shop_loadtest.run.parentdeath import die_with_parent
from shop_loadtest.safety.hosts import (
    Allowlist,
    HostNotAllowed,
    guarded_urlopen,
    refusal_event,
    scenario_allowlist,
)
from shop_loadtest.safety.hosts import check_target_allowed as check_host
from shop_loadtest.safety.mask import env_secrets, mask
from shop_loadtest.scenario import Scenario, load_scenario

GRACE_S = 30.0  # beyond the shape's end, before we stop a Locust that does not stop itself
ABORT_EVERY_S = 5.0  # abort rules are checked at least this often, at hour 4 as at second 4
BATCH_ABORT_EVERY_S = 10.0  # abort rules on monitor statistics read the whole folder
STOP_WAIT_S = 15.0


@dataclass(frozen=True)
class RunOptions:
    scenario_path: Path
    host: str | None = None
    speedup: float = 1.0
    out: Path | None = None
    reports_root: Path = Path("reports")
    allow_hosts: tuple[str, ...] = ()
    workers: int = 1
    seed: int | None = None
    tolerate_worker_loss: bool = False
    command: tuple[str, ...] = ()
    extra_locust_args: tuple[str, ...] = ()
    # Master/worker on several machines: this process is the master, workers connect to it.
    expect_workers: int = 0
    bind_host: str = "*"
    bind_port: int = 5557
    workers_wait_s: float = 120.0
    # Prometheus metrics of the run itself on 127.0.0.1 (0: any free port); None: off.
    metrics_port: int | None = None


@dataclass
class RunOutcome:
    run_dir: Path
    summary: Summary
    exit_reason: str
    notes: list[str] = field(default_factory=list)


Progress = Callable[[Path, float, float], None]  # (run_dir, elapsed_s, duration_s)


def allowlist_of(scenario: Scenario, extra: tuple[str, ...], host: str | None = None
                 ) -> Allowlist:
    """Who may get traffic: the scenario's host, its allowed_hosts, --allow-host, and the
    run's target once it is known (checked against those first, or the demo shop we start)."""
    return scenario_allowlist(scenario.target.host, scenario.target.allowed_hosts,
                              [*extra, *([host] if host else [])])


def target_host(scenario: Scenario, host: str | None) -> str | None:
    """The URL load goes to: `--host`, else the scenario's; None means the demo shop.
    An empty or blank `--host` (an unset CI variable) is bad input, never the demo shop."""
    if host is None:
        return scenario.target.host
    host = host.strip()
    parts = urlsplit(host)
    if not host or parts.scheme not in ("http", "https") or not parts.hostname:
        shown = repr(host) if host else "empty"
        raise InputError(f"--host {shown}: give the target's URL, e.g. --host "
                         "http://127.0.0.1:8800 (leave --host out to test the bundled demo shop)")
    return host


def check_target_allowed(scenario: Scenario, host: str, extra: tuple[str, ...]) -> None:
    """Only the scenario's own host, its allowed_hosts and --allow-host may get traffic.
    A scenario that names no host lets `--host` name the target."""
    if scenario.target.host is None:
        return
    check_host(host, allowlist_of(scenario, extra))


def check_reachable(host: str, path: str = "/", timeout: float = 5.0, *,
                    allow: Allowlist | None = None,
                    on_refused: Callable[[HostNotAllowed], None] | None = None) -> None:
    """Any HTTP answer counts (even 404): we only need the target to be there.

    The request and its redirects pass the allowlist (default: the host alone); a refused
    hop is handed to `on_refused` (it is not sent) and the target counts as reachable: it
    answered."""
    url = host.rstrip("/") + path
    allow = allow if allow is not None else Allowlist.of([host])
    try:
        with guarded_urlopen(url, allow=allow, where="health check (target.health_path)",
                             timeout=timeout):
            return
    except HostNotAllowed as exc:
        if on_refused is not None:
            on_refused(exc)
        return
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TargetUnreachable(
            f"target {host} is unreachable ({reason}); no load was sent") from None


@contextmanager
def demo_shop(db_path: Path, log_path: Path, timeout: float = 30.0,
              storage_limit_mb: float | None = None) -> Iterator[str]:
    """Start the bundled demo shop on a free loopback port; yields its URL; stops it after."""
    log = log_path.open("w")
    cap = ["--storage-limit-mb", str(storage_limit_mb)] if storage_limit_mb else []
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "shop_loadtest.demo_shop", "--host", "127.0.0.1",
         "--port", "0", "--db", str(db_path), *cap],
        stdout=subprocess.PIPE, stderr=log, text=True,
        # Its own session: a Ctrl-C in the terminal must not stop the shop before the load;
        # but it goes when we go, even by SIGKILL.
        start_new_session=True, preexec_fn=die_with_parent,
    )
    try:
        url = _wait_for_url(proc, timeout)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_for_url(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise EngineError(f"the demo shop exited with code {proc.returncode} at start")
            continue
        m = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if m:
            return m.group(1)
    proc.kill()
    raise EngineError(f"the demo shop did not start within {timeout:.0f}s")


def run_folder(root: Path, scenario: str, now: datetime) -> Path:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    path = root / f"{scenario}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{scenario}-{stamp}-{n}"
    return path


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        locust_version = version("locust")
    except PackageNotFoundError:
        locust_version = "unknown"
    return {"shop_loadtest": __version__, "locust": locust_version,
            "python": platform.python_version()}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from shop_loadtest.results import write_atomic  # results imports pandas: only when writing

    write_atomic(path, json.dumps(data, indent=2) + "\n")


class _Stop:
    """Remembers the first SIGINT/SIGTERM so the run can stop Locust and still report."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @contextmanager
    def installed(self) -> Iterator[None]:
        def handler(signum: int, _frame: Any) -> None:
            self.signal = self.signal or signum

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def locust_command(locustfile: Path, host: str, run_dir: Path, options: RunOptions,
                   local_port: int | None = None) -> list[str]:
    """The Locust command line. Local worker processes talk to their master on `local_port`
    of 127.0.0.1 only (never Locust's default 5557 on every interface, where any other Locust
    on the machine would join the run)."""
    cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host", host,
           "--only-summary", "--slt-results", str(run_dir), "--slt-speedup", str(options.speedup),
           "--slt-watch-parent"]
    if options.seed is not None:
        cmd += ["--slt-seed", str(options.seed)]
    for allowed in options.allow_hosts:
        cmd += ["--slt-allow-host", allowed]
    if options.expect_workers:
        cmd += ["--master", "--expect-workers", str(options.expect_workers),
                "--expect-workers-max-wait", str(int(options.workers_wait_s)),
                "--master-bind-host", options.bind_host,
                "--master-bind-port", str(options.bind_port)]
    elif options.workers > 1:
        port = local_port or free_port()
        cmd += ["--processes", str(options.workers), "--master-bind-host", "127.0.0.1",
                "--master-bind-port", str(port), "--master-host", "127.0.0.1",
                "--master-port", str(port)]
    return cmd + list(options.extra_locust_args)


def worker_command(master_host: str, master_port: int, locustfile: Path | None) -> list[str]:
    """A worker for a master on another machine; without a locustfile it fetches the
    master's (`-f -`), so a worker machine needs only the package installed."""
    return [sys.executable, "-m", "locust", "--worker", "--master-host", master_host,
            "--master-port", str(master_port), "-f", str(locustfile) if locustfile else "-"]


def run(options: RunOptions, *, progress: Progress | None = None) -> RunOutcome:
    """Carry out one run end to end; raises InputError/RunError before any load is sent."""
    scenario = load_scenario(options.scenario_path)
    if options.speedup <= 0:
        raise InputError(f"--speedup must be > 0, got {options.speedup}")
    host = target_host(scenario, options.host)
    if host is not None:
        check_target_allowed(scenario, host, options.allow_hosts)
    started = datetime.now(UTC)
    run_dir = options.out or run_folder(options.reports_root, scenario.name, started)
    run_dir.mkdir(parents=True, exist_ok=True)
    exporter = _start_metrics(run_dir, options.metrics_port)
    try:
        if host is None:
            with demo_shop(run_dir / "demo-shop.sqlite", run_dir / "demo-shop.log",
                       storage_limit_mb=scenario.target.demo_shop.storage_limit_mb) as shop_url:
                return _run_against(scenario, shop_url, run_dir, options, progress)
        return _run_against(scenario, host, run_dir, options, progress)
    except OSError as exc:  # a full disk or a read-only folder, named in one line
        raise ResultsError(
            f"cannot write the run folder {run_dir}: {exc.strerror or exc}") from None
    finally:
        if exporter is not None:
            exporter.stop()


def _start_metrics(run_dir: Path, port: int | None) -> Any:
    """`--metrics-port`: the run's own metrics, read from its folder (live_metrics)."""
    if port is None:
        return None
    from shop_loadtest.run.live_metrics import MetricsServer

    exporter = MetricsServer(run_dir, port).start()
    print(f"metrics of this run: {exporter.url}", file=sys.stderr, flush=True)
    return exporter


def _run_against(scenario: Scenario, host: str, run_dir: Path, options: RunOptions,
                 progress: Progress | None) -> RunOutcome:
    allow = allowlist_of(scenario, options.allow_hosts, host)
    secrets = env_secrets(options.scenario_path.read_text(), os.environ)

    def refused(exc: HostNotAllowed) -> None:
        _append_event(run_dir, "refused", refusal_event(exc))

    check_reachable(host, scenario.target.health_path, allow=allow, on_refused=refused)
    demo = target_host(scenario, options.host) is None
    base = options.scenario_path.parent
    profile = scenario.profile(base, options.speedup)
    (run_dir / "scenario.yaml").write_text(options.scenario_path.read_text())
    locustfile = run_dir / "locustfile.py"
    locustfile.write_text(render_locustfile(scenario, source=str(options.scenario_path),
                                            output=str(locustfile), base=base))
    meta: dict[str, Any] = {
        "schema_version": 1, "scenario": scenario.name,
        "scenario_file": str(options.scenario_path),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "ended_at": None, "host": host, "model": scenario.load.model,
        "speedup": options.speedup, "command": list(options.command),
        "processes": options.expect_workers or options.workers, "versions": _versions(),
        "stages": profile.stages(), "budgets": list(scenario.budgets),
        "abort": list(scenario.abort), "exit_reason": None, "abort_reason": None,
        "locust_exit_code": None,
        "target": {"kind": "demo" if demo else "named", "host": host},
        "min_delivered": scenario.load.min_delivered, "max_users": scenario.load.max_users,
        "workers": {"expected": options.expect_workers or options.workers},
        "load_process": None,
        **run_meta(scenario, demo_shop=demo),
    }
    _write_json(run_dir / "run.json", meta)
    watch = start_monitor(meta, host, run_dir, origin=lambda: _started_ts(run_dir),
                          allow=allow, on_refused=refused, secrets=secrets)
    try:
        exit_reason, abort_reason, code = _drive(
            locust_command(locustfile, host, run_dir, options), run_dir, scenario,
            profile.duration, progress,
            wait_s=options.workers_wait_s if options.expect_workers else 0.0,
            local=not options.expect_workers, secrets=secrets)
    finally:
        if watch is not None:
            watch.stop()
    if exit_reason == "completed" and code not in (0, 1):
        # Locust's own exit code is no proof: SIGKILLed it returns -9 and nothing stopped us
        # from calling that "completed".
        exit_reason = "load_process_died" if code < 0 else "engine_error"
    meta.update(
        ended_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        exit_reason=exit_reason, abort_reason=abort_reason, locust_exit_code=code,
        load_process={"exit_code": code, "signal": -code if code < 0 else None,
                      "planned_s": round(profile.duration, 3)},
    )
    meta["requests"] = {"timeout_s": scenario.target.timeout,
                        **request_evidence(run_dir / "intervals.jsonl")}
    if not (run_dir / "intervals.jsonl").exists():
        meta["exit_reason"] = "engine_error"
        _write_json(run_dir / "run.json", meta)
        raise EngineError(f"Locust recorded nothing (exit code {code}): "
                          f"{_last_line(run_dir / 'locust.log')} (see {run_dir / 'locust.log'})")
    _write_json(run_dir / "run.json", meta)
    from shop_loadtest.report import build_reports

    summary = build_reports(run_dir, tolerate_worker_loss=options.tolerate_worker_loss)
    # The evidence the verdict was built from, next to the raw facts it came from.
    meta.update({key: summary.get(key) for key in ("load_process", "workers", "delivery")})
    _write_json(run_dir / "run.json", meta)
    return RunOutcome(run_dir, summary, meta["exit_reason"])


def request_evidence(intervals: Path) -> dict[str, Any]:
    """What run.json says about requests without an answer: how many timed out, and how many
    were still in flight when their users were stopped (and the longest such wait). Read
    from the recorded intervals; a missing or torn file counts what it has."""
    timeouts = in_flight = 0
    longest = 0.0
    try:
        lines = intervals.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        for ep in (record.get("endpoints") or {}).values():
            if isinstance(ep, dict) and ep.get("stopped"):
                in_flight += int(ep["stopped"])
                longest = max(longest, float(ep.get("stopped_max_ms") or 0.0))
        for err in record.get("errors") or []:
            if isinstance(err, dict) and err.get("kind") == "timeout":
                timeouts += int(err.get("count") or 0)
    return {"timeouts": timeouts, "in_flight_at_stop": in_flight,
            "in_flight_longest_ms": round(longest, 3) if in_flight else None}


def _last_line(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no output"


def _drive(cmd: list[str], run_dir: Path, scenario: Scenario, duration: float,
           progress: Progress | None, wait_s: float = 0.0, local: bool = True,
           secrets: Collection[str] = (),
           ) -> tuple[str, dict[str, Any] | None, int]:
    """Run Locust until it ends, an abort rule fires, time runs out or we are signalled."""
    stop = _Stop()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if local:
        # A fresh token per run: only the worker processes we fork know it, so no other
        # Locust can join our master (runtime/admission.py). Remote workers of `master` use
        # the token the user set in SHOP_LOADTEST_RUN_TOKEN on every machine, if any.
        env["SHOP_LOADTEST_RUN_TOKEN"] = token_hex(16)
    with (run_dir / "locust.log").open("w", encoding="utf-8") as log, stop.installed():
        # Its own session (a terminal's Ctrl-C reaches us first, and we stop it cleanly), and
        # killed by the kernel if we die: no load goes on that nobody controls. Its output
        # reaches locust.log only through the secret mask.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, preexec_fn=die_with_parent)
        copier = _copy_masked(proc, log, secrets)
        began = time.monotonic()
        reason, abort = "completed", None
        next_check = began + 2.0
        check_abort = abort_checker(run_dir) if scenario.abort else None
        while proc.poll() is None:
            time.sleep(0.2)
            elapsed = time.monotonic() - began
            if stop.signal is not None:
                reason = "interrupted"
                break
            if elapsed > duration + GRACE_S + wait_s:
                reason = "timeout"
                break
            if time.monotonic() >= next_check:
                check_began = time.monotonic()
                if check_abort is not None:
                    abort = check_abort()
                    if abort is not None:
                        reason = "aborted"
                        _append_event(run_dir, "abort", abort)
                        break
                # The abort check folds in only new intervals: every 2 s, and never less
                # often than every ABORT_EVERY_S, even when it gets dearer. The live view
                # keeps its own share of the CPU (live.py).
                cost = time.monotonic() - check_began
                if progress is not None:
                    progress(run_dir, elapsed, duration)
                next_check = time.monotonic() + min(ABORT_EVERY_S, max(2.0, 5 * cost))
        code = _stop_locust(proc) if proc.poll() is None else proc.returncode
        copier.join(timeout=STOP_WAIT_S)
    return reason, abort, code


def _copy_masked(proc: subprocess.Popen[bytes], log: IO[str], secrets: Collection[str]
                 ) -> threading.Thread:
    """Locust's output, line by line through the secret mask, into locust.log (Locust and
    the libraries it logs for know nothing of our secrets)."""
    assert proc.stdout is not None
    stream = proc.stdout

    def copy() -> None:
        for raw in iter(stream.readline, b""):
            log.write(mask(raw.decode("utf-8", errors="replace"), secrets))
            log.flush()
        stream.close()

    thread = threading.Thread(target=copy, name="shop-loadtest-locust-log", daemon=True)
    thread.start()
    return thread


def abort_checker(run_dir: Path) -> Callable[[], dict[str, Any] | None]:
    """The abort check for a run folder, made once per run and called every few seconds.

    Rules the live judge folds (latency, errors, throughput, counts) cost only the intervals
    appended since the last call, however long the run; monitor statistics are judged on the
    lines read so far without their request figures (results/light.py: the folder is never
    read again), at most every BATCH_ABORT_EVERY_S.
    """
    from shop_loadtest.judge.budgets import check_abort
    from shop_loadtest.judge.live import LiveJudge, supports
    from shop_loadtest.results.light import MonitorEvidence
    from shop_loadtest.run.live import JsonlTail
    from shop_loadtest.scenario.budgets import parse_abort

    tail = JsonlTail(run_dir / "intervals.jsonl")
    monitor_tail = JsonlTail(run_dir / "monitor.jsonl")
    evidence = MonitorEvidence()
    state: dict[str, Any] = {"judge": None, "batch": [], "next_batch": 0.0, "meta": {}}

    def check() -> dict[str, Any] | None:
        if state["judge"] is None:
            try:
                meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            rules = [parse_abort(str(expr)) for expr in meta.get("abort") or []]
            state["judge"] = LiveJudge(meta, (), rules)
            state["batch"] = [r for r in rules if not supports(r)]
            state["meta"] = meta
        judge = state["judge"]
        records = tail.read()
        judge.feed(records)
        hits = [hit] if (hit := judge.abort_hit()) is not None else []
        if state["batch"]:
            evidence.add_intervals(records)
            evidence.add_monitor(monitor_tail.read())
        if state["batch"] and time.monotonic() >= state["next_batch"]:
            began = time.monotonic()
            try:
                batch_hit = check_abort(state["batch"], evidence.run(state["meta"]))
            except ResultsError:
                batch_hit = None
            if batch_hit is not None:
                hits.append(batch_hit)
            state["next_batch"] = time.monotonic() + max(
                BATCH_ABORT_EVERY_S, 5 * (time.monotonic() - began))
        if not hits:
            return None
        first = min(hits, key=lambda h: h.t)
        return {"rule": first.expr, "t": first.t, "observed": first.observed}

    return check


def _append_event(run_dir: Path, kind: str, detail: dict[str, Any]) -> None:
    now = time.time()
    started = _started_ts(run_dir)
    with (run_dir / "events.jsonl").open("a") as handle:
        handle.write(json.dumps({"t": round(now - started, 3) if started else None, "ts": now,
                                 "kind": kind, "detail": detail}) + "\n")


def _started_ts(run_dir: Path) -> float | None:
    try:
        with (run_dir / "events.jsonl").open() as handle:
            for line in handle:
                event = json.loads(line)
                if event.get("kind") == "start":
                    return float(event["ts"])
    except (OSError, ValueError):
        pass
    return None


def _stop_locust(proc: subprocess.Popen[bytes]) -> int:
    """SIGINT first: Locust then stops its users and runs its shutdown listeners, which
    flush our last interval. SIGKILL only if it does not stop in time."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        return proc.wait()
    try:
        return proc.wait(timeout=STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()
