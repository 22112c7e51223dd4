"""The `shop-loadtest` command. Exit codes are decided here and only here:
0 budgets held, 1 a budget broke, 2 bad input, 3 the run could not be carried out or trusted.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from shop_loadtest.errors import (
    EXIT_BUDGET,
    EXIT_INPUT,
    EXIT_OK,
    EXIT_RUN,
    InputError,
    ScenarioError,
    ShopLoadtestError,
)

app = typer.Typer(
    name="shop-loadtest",
    help="Load-test an online shop before a campaign: scenario YAML -> Locust -> judged report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

VERDICT_EXIT = {"pass": EXIT_OK, "fail": EXIT_BUDGET, "inconclusive": EXIT_RUN}

ScenarioArg = Annotated[Path, typer.Argument(help="Scenario YAML file.", show_default=False)]


def _echo(message: str, err: bool = False, nl: bool = True) -> None:
    """Every line the command prints: names and messages from scenarios and shops are shown
    with their control characters escaped (an ANSI/OSC sequence cannot reach the terminal)."""
    from shop_loadtest.safety.text import terminal_safe

    typer.echo(terminal_safe(message), err=err, nl=nl)


def _echo_err(message: str) -> None:
    _echo(message, err=True)


def _version(value: bool) -> None:
    if value:
        from shop_loadtest import __version__

        typer.echo(f"shop-loadtest {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")
        ] = False) -> None:
    """Load-test an online shop before a campaign: scenario YAML -> Locust -> judged report."""


def _speedup(value: float) -> float:
    """--speedup: finite and within docs/limits.md (inf would make every stage last 0 s)."""
    from shop_loadtest.limits import MAX_SPEEDUP

    if not (0.001 <= value <= MAX_SPEEDUP):  # also refuses nan
        raise typer.BadParameter(f"expected a number from 0.001 to {MAX_SPEEDUP:g}, got {value}")
    return value


def _finite(value: float | None) -> float | None:
    """A number option: nan and inf are refused (click's ranges let nan through)."""
    import math

    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"expected a finite number, got {value}")
    return value


def _out_folder(value: Path | None) -> Path | None:
    if value is not None and value.exists() and not value.is_dir():
        raise typer.BadParameter(f"{value} is a file; --out names the folder the run writes")
    return value


def _host_url(value: str | None) -> str | None:
    from shop_loadtest.scenario.base import url_problem

    problem = url_problem(value) if value is not None else None
    if problem:
        raise typer.BadParameter(problem)
    return value


Speedup = Annotated[float, typer.Option(callback=_speedup, help="Play the shape N times faster.")]
Host = Annotated[str | None, typer.Option(callback=_host_url,
                                          help="Target URL; overrides the scenario's.")]
Out = Annotated[Path | None, typer.Option(callback=_out_folder,
                                          help="Folder the run writes into.")]


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Scenario files.")]) -> None:
    """Check scenario files without sending any traffic."""
    from shop_loadtest.scenario import load_scenario

    failed = 0
    for path in files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            for line in exc.lines():
                _echo_err(line)
            failed += 1
            continue
        except InputError as exc:
            _echo_err(str(exc))
            failed += 1
            continue
        profile = scenario.profile(path.parent)
        _echo(f"{path}: ok ({scenario.load.model}, {len(scenario.journeys)} journeys, "
                   f"{profile.duration:.0f}s, peak {profile.peak():g}, "
                   f"{len(scenario.budgets)} budgets)")
    if failed:
        raise typer.Exit(EXIT_INPUT)


@app.command()
def schema(
    output: Annotated[Path | None,
                      typer.Option("-o", "--output", help="Write to this file.")] = None,
) -> None:
    """Print the JSON Schema of the scenario format (for editor completion)."""
    from shop_loadtest.scenario import scenario_json_schema

    text = json.dumps(scenario_json_schema(), indent=2) + "\n"
    if output:
        output.write_text(text)
    else:
        _echo(text, nl=False)


@app.command()
def preview(
    file: ScenarioArg,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="SVG image to write. Default: <name>-shape.svg")] = None,
    speedup: Annotated[float, typer.Option(
        callback=_speedup, help="Show wall time at this speedup.")] = 1.0,
) -> None:
    """Draw the scenario's traffic shape (terminal and an image) without sending traffic."""
    from shop_loadtest.report.preview import stage_table, terminal_chart, write_image
    from shop_loadtest.scenario import load_scenario

    scenario = load_scenario(file)
    output = output or Path(f"{scenario.name}-shape.svg")
    if output.suffix.lower() != ".svg":
        raise InputError(f"--output {output}: use a .svg file name (any browser or "
                         "converter turns it into a PNG)")
    _echo(terminal_chart(scenario, file.parent))
    for line in stage_table(scenario, file.parent, speedup):
        _echo(line)
    _echo(f"wrote {write_image(scenario, file.parent, output)}")


@app.command()
def generate(
    file: ScenarioArg,
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Default: locustfiles/<name>.py")] = None,
) -> None:
    """Write the locustfile for a scenario (plain `locust -f` can run it)."""
    from shop_loadtest.generate.locustfile import render_locustfile
    from shop_loadtest.scenario import load_scenario

    scenario = load_scenario(file)
    output = output or Path("locustfiles") / f"{scenario.name}.py"
    source = render_locustfile(scenario, source=file.as_posix(), output=output.as_posix(),
                               base=file.parent)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(source)
    _echo(f"wrote {output}")


@app.command()
def run(
    file: ScenarioArg,
    host: Host = None,
    speedup: Speedup = 1.0,
    out: Out = None,
    reports: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("reports"),
    allow_host: Annotated[list[str] | None, typer.Option(
        help="Also allow load to this host (repeatable).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Local load processes.")] = 1,
    seed: Annotated[int | None, typer.Option(help="Seed for template randomness.")] = None,
    tolerate_worker_loss: Annotated[bool, typer.Option(
        help="A lost worker does not make the run inconclusive.")] = False,
    metrics_port: Annotated[int | None, typer.Option(
        min=0, max=65535, help="Serve the run's own Prometheus metrics on 127.0.0.1:N "
                               "(0: a free port) while it runs.")] = None,
) -> None:
    """Run a scenario headless and judge it against its budgets."""
    from shop_loadtest.run.runner import RunOptions

    options = RunOptions(
        scenario_path=file, host=host, speedup=speedup, out=out, reports_root=reports,
        allow_hosts=tuple(allow_host or ()), workers=workers, seed=seed,
        tolerate_worker_loss=tolerate_worker_loss, command=tuple(sys.argv),
        metrics_port=metrics_port,
    )
    _run_and_judge(options)


def _run_and_judge(options: Any) -> None:
    """Run with the live view, print the judgement, exit with the verdict's code."""
    from shop_loadtest.report import terminal_summary
    from shop_loadtest.run.live import LiveView
    from shop_loadtest.run.runner import run as run_scenario

    with LiveView() as progress:
        outcome = run_scenario(options, progress=progress)
    _echo(terminal_summary(outcome.summary))
    _echo(f"report: {outcome.run_dir / 'report.html'}")
    raise typer.Exit(VERDICT_EXIT[outcome.summary["verdict"]])


@app.command()
def master(
    file: ScenarioArg,
    expect_workers: Annotated[int, typer.Option(min=1, help="Workers to wait for.")],
    host: Host = None,
    speedup: Speedup = 1.0,
    out: Out = None,
    reports: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("reports"),
    allow_host: Annotated[list[str] | None, typer.Option()] = None,
    bind: Annotated[str, typer.Option(help="Address workers connect to.")] = "*",
    port: Annotated[int, typer.Option(help="Port workers connect to.")] = 5557,
    wait: Annotated[float, typer.Option(min=0, callback=_finite,
                                        help="Seconds to wait for the workers.")] = 120.0,
    tolerate_worker_loss: Annotated[bool, typer.Option()] = False,
) -> None:
    """Run a scenario as the master of workers on other machines (`shop-loadtest worker`)."""
    from shop_loadtest.run.runner import RunOptions

    options = RunOptions(
        scenario_path=file, host=host, speedup=speedup, out=out, reports_root=reports,
        allow_hosts=tuple(allow_host or ()), expect_workers=expect_workers, bind_host=bind,
        bind_port=port, workers_wait_s=wait, tolerate_worker_loss=tolerate_worker_loss,
        command=tuple(sys.argv),
    )
    _run_and_judge(options)


@app.command()
def worker(
    master_host: Annotated[str, typer.Option(help="The master's address.")] = "127.0.0.1",
    master_port: Annotated[int, typer.Option()] = 5557,
    locustfile: Annotated[Path | None, typer.Option(
        help="Default: fetch the master's generated locustfile.")] = None,
) -> None:
    """Run one load worker for a `shop-loadtest master` until the master ends the run."""
    import os
    import tempfile

    from shop_loadtest.run.runner import worker_command

    # Become the Locust worker (exec, not a child): a signal or a kill aimed at this process
    # reaches the worker itself, and no orphan keeps sending load.
    cmd = worker_command(master_host, master_port, locustfile)
    # Locust saves a fetched locustfile as $TMPDIR/locustfile.py: two workers on one machine
    # would write the same file while the other imports it ("No User class found!"). Two
    # levels below /, so the locustfile's ../../ paths to data files resolve as from /tmp.
    os.environ["TMPDIR"] = tempfile.mkdtemp(prefix="shop-loadtest-worker-",
                                            dir=tempfile.gettempdir())
    os.execv(cmd[0], cmd)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder.")],
    tolerate_worker_loss: Annotated[bool, typer.Option()] = False,
) -> None:
    """Rebuild every output of a run from its folder alone."""
    from shop_loadtest.report import build_reports, terminal_summary

    summary = build_reports(run_dir, tolerate_worker_loss=tolerate_worker_loss)
    for warning in summary.get("warnings") or []:
        _echo_err(f"warning: {warning}")
    _echo(terminal_summary(summary))
    raise typer.Exit(VERDICT_EXIT[summary["verdict"]])


@app.command()
def compare(
    base_dir: Annotated[Path, typer.Argument(help="The baseline run folder.")],
    new_dir: Annotated[Path, typer.Argument(help="The run folder to judge against it.")],
    max_regression: Annotated[str, typer.Option(
        help="Relative floor: a latency or throughput change smaller than this never "
             "fails.")] = "10%",
    latency_floor: Annotated[str, typer.Option(
        help="Absolute floor for latency (p50, p95, p99): also at least this much.")] = "5ms",
    error_rate_floor: Annotated[str, typer.Option(
        help="Floor for the error rate, in percentage points.")] = "0.5%",
    alpha: Annotated[float, typer.Option(
        callback=_finite,
        help="A regression must clear its floor with 1 - alpha confidence.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap: same folders, same "
                                           "answer.")] = 0,
    resamples: Annotated[int, typer.Option(min=100, max=100_000,
                                           help="Bootstrap resamples.")] = 1000,
    tolerate_busy_machine: Annotated[bool, typer.Option(
        help="Judge runs whose machine was busy instead of calling them inconclusive.")] = False,
    out: Annotated[Path | None, typer.Option(
        help="Where compare.md and compare.html go. Default: NEW_DIR.")] = None,
) -> None:
    """Compare a run with a baseline run; exit 1 on a clear regression beyond the floors."""
    from shop_loadtest.compare import Floors, terminal_table, write_comparison
    from shop_loadtest.scenario.units import parse_duration, parse_percent

    try:
        relative = parse_percent(max_regression)
    except ValueError as exc:
        raise InputError(f"--max-regression: {exc}") from None
    try:
        if latency_floor.strip().replace(".", "", 1).isdigit():
            raise ValueError(f"give a unit, such as 5ms, got {latency_floor!r}")
        latency_ms = parse_duration(latency_floor) * 1000.0
    except ValueError as exc:
        raise InputError(f"--latency-floor: {exc}") from None
    try:
        error_rate = parse_percent(error_rate_floor)
    except ValueError as exc:
        raise InputError(f"--error-rate-floor: {exc}") from None
    if min(relative, latency_ms, error_rate) < 0:
        raise InputError("--max-regression, --latency-floor and --error-rate-floor must be >= 0")
    if not 0 < alpha <= 0.5:
        raise InputError("--alpha must be in (0, 0.5]")
    floors = Floors(relative=relative, latency_ms=latency_ms, error_rate=error_rate)
    comparison = write_comparison(base_dir, new_dir, out, floors=floors, alpha=alpha, seed=seed,
                                  resamples=resamples,
                                  tolerate_busy_machine=tolerate_busy_machine)
    _echo(terminal_table(comparison))
    _echo(f"comparison: {(out or new_dir) / 'compare.html'}")
    raise typer.Exit({"ok": EXIT_OK, "regression": EXIT_BUDGET,
                      "inconclusive": EXIT_RUN}[comparison.verdict])


@app.command("find-capacity")
def find_capacity(
    file: ScenarioArg,
    step: Annotated[str, typer.Option(help="How long each step holds its rate.")] = "30s",
    start: Annotated[float | None, typer.Option(
        min=0.001, callback=_finite,
        help="First rate, journeys/s. Default: the forecast peak.")] = None,
    max_rate: Annotated[float | None, typer.Option(
        "--max", min=0.001, callback=_finite,
        help="Never step above this rate. Default: 64x the start.")] = None,
    precision: Annotated[str, typer.Option(
        help="Stop when the highest pass and the lowest fail are this close.")] = "10%",
    max_steps: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 10,
    host: Host = None,
    out: Annotated[Path | None, typer.Option(callback=_out_folder,
                                             help="Folder the search writes into.")] = None,
    reports: Annotated[Path, typer.Option(help="Where run folders go.")] = Path("reports"),
    allow_host: Annotated[list[str] | None, typer.Option(
        help="Also allow load to this host (repeatable).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for template randomness.")] = None,
) -> None:
    """Step the arrival rate until a budget breaks: highest sustainable rate, knee, headroom."""
    from datetime import UTC, datetime

    from shop_loadtest.capacity import find as capacity
    from shop_loadtest.run.runner import run_folder
    from shop_loadtest.scenario import load_scenario
    from shop_loadtest.scenario.units import parse_duration, parse_percent

    try:
        hold_s, ratio = parse_duration(step), parse_percent(precision)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    name = load_scenario(file).name
    out = out or run_folder(reports, f"{name}-capacity", datetime.now(UTC))
    result = capacity.find_capacity(
        file, out, hold_s=hold_s, start=start, max_rate=max_rate, precision=ratio,
        max_steps=max_steps, host=host, allow_hosts=tuple(allow_host or ()), seed=seed,
        on_step=lambda n, s: _echo_err(capacity.describe_step(n, s)))
    _echo(result["summary"])
    _echo(f"report: {out / 'capacity.html'}")
    raise typer.Exit(VERDICT_EXIT[capacity.verdict(result)])


@app.command()
def plan(
    file: ScenarioArg,
    rps_per_worker: Annotated[float | None, typer.Option(
        min=1, callback=_finite,
        help="Requests/s one load process sends (default: docs/capacity.md).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """From the scenario's plan: (visitors, funnel): journey weights, rates, users, workers."""
    from shop_loadtest.capacity import plan as planning
    from shop_loadtest.scenario import load_scenario

    result = planning.plan_scenario(load_scenario(file), file.parent, rps_per_worker)
    _echo(json.dumps(planning.as_json(result), indent=2) if as_json
               else planning.render(result))


@app.command()
def alerts(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (monitored).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Rule file to write; its "
                                         "tests and RUNBOOK.md go beside it.")] = Path(
        "alerts.yml"),
    capacity_dir: Annotated[Path | None, typer.Option(
        "--capacity", help="A find-capacity folder: its sustainable rate is the capacity.")
    ] = None,
    horizon: Annotated[str, typer.Option(help="Page when a resource fills within this.")] = "4h",
    lookback: Annotated[str, typer.Option(help="Growth measured over this.")] = "1h",
    for_: Annotated[str, typer.Option("--for", help="Conditions hold this long first.")] = "5m",
    rate_window: Annotated[str, typer.Option(help="Request rate over this.")] = "5m",
    interval: Annotated[str, typer.Option(help="Rule evaluation interval.")] = "1m",
    share: Annotated[str, typer.Option(help="Traffic alert at this share of capacity.")] = "80%",
    runbook_url: Annotated[str, typer.Option(
        help="Where RUNBOOK.md will be served (the rules' runbook links).")] = "RUNBOOK.md",
    fmt: Annotated[str, typer.Option("--format", help="rules | prometheusrule")] = "rules",
) -> None:
    """Prometheus alert rules, their promtool tests and a runbook, from a run's measurements."""
    from shop_loadtest.capacity.alerts import Settings, write_alerts
    from shop_loadtest.scenario.units import parse_duration, parse_percent

    def parsed(flag: str, text: str, parse: Any) -> float:
        try:
            return float(parse(text))
        except ValueError as exc:
            raise InputError(f"{flag}: {exc}") from None

    settings = Settings(
        horizon_s=parsed("--horizon", horizon, parse_duration),
        lookback_s=parsed("--lookback", lookback, parse_duration),
        for_s=parsed("--for", for_, parse_duration),
        rate_window_s=parsed("--rate-window", rate_window, parse_duration),
        interval_s=parsed("--interval", interval, parse_duration),
        traffic_share=parsed("--share", share, parse_percent), runbook_url=runbook_url)
    written = write_alerts(run_dir, output, capacity_dir=capacity_dir, settings=settings,
                           fmt=fmt)
    typer.echo(f"{len(written.rules.alerts)} alerts from run {written.evidence.run_id}")
    for note in written.notes:
        _echo_err(f"note: {note}")
    for path in dict.fromkeys((written.output, written.rule_file, written.test_file,
                               written.runbook)):
        typer.echo(f"wrote {path}")


@app.command("demo-shop")
def demo_shop(
    port: Annotated[int, typer.Option(help="0 picks a free port.")] = 8800,
    db: Annotated[Path, typer.Option(help="SQLite file (created and seeded if missing).")] = Path(
        "demo-shop.sqlite"),
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    storage_limit_mb: Annotated[float | None, typer.Option(
        min=0.001, callback=_finite,
        help="Cap the database size: writes then fail as on a full disk.")] = None,
) -> None:
    """Run the bundled demo storefront (SQLite) until Ctrl-C."""
    from shop_loadtest.demo_shop import serve

    serve(db, host=host, port=port, storage_limit_mb=storage_limit_mb)


def _click_errors() -> tuple[tuple[type[BaseException], ...], ...]:
    """(exit, usage error, abort) classes: typer >= 0.22 raises its own vendored copies of
    click's exceptions, older typer raises click's own; catch both."""
    exits: list[type[BaseException]] = [click.exceptions.Exit, typer.Exit]
    usage: list[type[BaseException]] = [click.UsageError]
    aborts: list[type[BaseException]] = [click.exceptions.Abort, typer.Abort]
    try:
        from typer._click import exceptions as vendored  # type: ignore[import-not-found]

        usage.append(vendored.UsageError)
    except ImportError:
        pass
    return tuple(exits), tuple(usage), tuple(aborts)


def _internal_error(exc: BaseException) -> str:
    """The one line for an exception we did not expect; its traceback goes to a log file."""
    import tempfile
    import time
    import traceback

    from shop_loadtest.errors import one_line

    what = one_line(f"{type(exc).__name__}: {exc}", 200)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    log = Path(tempfile.gettempdir()) / f"shop-loadtest-internal-error-{stamp}-{os.getpid()}.log"
    try:
        log.write_text(f"shop-loadtest {' '.join(sys.argv[1:])}\n"
                       + "".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError:
        return f"internal error: {what}; please report it with the run folder"
    return f"internal error: {what}; please report it with the run folder and {log}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on stderr and the right exit code for every failure; never a
    traceback (an unexpected exception is `internal error: ...`, exit 3)."""
    exits, usage, aborts = _click_errors()
    try:
        result = app(args=argv, standalone_mode=False)
    except ScenarioError as exc:
        for line in exc.lines():
            _echo_err(f"error: {line}")
        sys.exit(exc.exit_code)
    except ShopLoadtestError as exc:
        _echo_err(f"error: {exc}")
        sys.exit(exc.exit_code)
    except exits as exc:
        sys.exit(getattr(exc, "exit_code", EXIT_OK))
    except usage as exc:
        if type(exc).__name__ == "BadParameter":  # a value we checked: one line, like ours
            _echo_err(f"error: {exc.format_message()}")  # type: ignore[attr-defined]
        else:
            exc.show()  # type: ignore[attr-defined]
        sys.exit(EXIT_INPUT)
    except aborts:
        _echo_err("error: interrupted")
        sys.exit(EXIT_RUN)
    except KeyboardInterrupt:
        _echo_err("error: interrupted")
        sys.exit(EXIT_RUN)
    except OSError as exc:  # a full disk, a read-only folder: name it, keep the exit code
        _echo_err(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        sys.exit(EXIT_RUN)
    except Exception as exc:
        _echo_err(_internal_error(exc))
        sys.exit(EXIT_RUN)
    sys.exit(result if isinstance(result, int) else EXIT_OK)
