"""The summary of a run as a type: what `judge` produces and report/, compare/, capacity/ and
the CLI read, key for key the shape of summary.json (schemas/summary.schema.json).

TypedDicts, not classes: the summary is JSON from the moment it is made (written as is, masked
as data, read back by `compare`), so a typed view of that JSON costs nothing at run time and
lets mypy check every key a consumer reads. tests/test_summary_model.py keeps these keys and
the schema's the same.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

Verdict = Literal["pass", "fail", "inconclusive"]


class Target(TypedDict):
    kind: Literal["demo", "named", "unknown"]
    host: str | None


class Percentiles(TypedDict):
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p99_9_ms: float | None


class Latency(Percentiles):
    mean_ms: float | None
    min_ms: float | None
    max_ms: float | None


class EndpointRow(TypedDict):
    name: str
    method: str
    requests: int
    failures: int
    error_rate: float | None
    rps: float
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p99_9_ms: float | None
    mean_ms: float | None
    min_ms: float | None
    max_ms: float | None
    p95_due_ms: float | None
    p99_due_ms: float | None
    bytes: int


class BudgetRow(TypedDict):
    expr: str
    stat: str
    endpoint: str | None
    op: Literal["<", "<=", ">", ">="]
    observed: float | None
    limit: float
    unit: str
    passed: bool
    status: Literal["pass", "fail", "no_data"]
    scope: str
    window_s: float | None
    first_breach_t: float | None
    first_breach: list[float] | None
    worst_window: list[float] | None
    breaches: list[list[float]]
    note: str
    implied: NotRequired[bool]


class DeliveryStage(TypedDict):
    name: str | None
    kind: Literal["hold", "ramp", "jump"]
    planned: float
    achieved: float | None
    ratio: float | None
    due: NotRequired[float]
    dropped: NotRequired[float]
    dropped_full: NotRequired[float]
    judged: bool
    held: bool


class Delivery(TypedDict):
    model: str | None
    unit: Literal["arrivals", "users"]
    min_delivered: float
    max_users: NotRequired[int | None]
    planned: float
    achieved: float
    ratio: float | None
    judged: bool
    held: bool
    capped: NotRequired[bool]
    dropped_full: NotRequired[float]
    stages: list[DeliveryStage]


class LoadProcess(TypedDict):
    exit_code: int | None
    signal: int | None
    signal_name: NotRequired[str | None]
    stop_event: bool
    played_s: float | None
    planned_s: float | None


class Workers(TypedDict):
    expected: int
    joined: int | None
    refused: int
    refused_reasons: NotRequired[list[str]]
    lost: int


class Stall(TypedDict, total=False):
    timeouts: int
    in_flight_at_stop: int | None
    reason: str | None
    hanging: bool


class AbortRow(TypedDict):
    expr: str
    triggered: bool
    t: float | None
    observed: float | None
    limit: float
    unit: str


class Aborted(TypedDict):
    rule: str | None
    t: float | None
    observed: float | None


class Arrivals(TypedDict):
    due: int
    started: int
    dropped: int
    late: int
    late_max_ms: float | None
    dropped_pct: float
    late_pct: float
    dropped_full: NotRequired[int]
    late_full: NotRequired[int]
    late_p50_ms: NotRequired[float | None]
    late_p95_ms: NotRequired[float | None]
    late_p99_ms: NotRequired[float | None]


class Generator(TypedDict):
    sources: list[str]
    cpu_max_pct: float | None
    cpu_mean_pct: float | None
    loop_lag_max_ms: float | None
    rss_max_mb: float | None
    healthy: bool
    problems: list[str]


class GeneratorHealth(Generator):
    """What judge/verdict.generator_health finds; the summary keeps `arrivals` beside it."""

    arrivals: NotRequired[Arrivals | None]


class WorkerLost(TypedDict):
    t: float | None
    worker: str
    users: int | None


class ErrorSample(TypedDict):
    status: int | None
    method: str
    path: str
    body: str
    t: float | None


class ErrorRow(TypedDict):
    endpoint: str
    kind: str
    message: str
    count: int
    first_t: float | None
    last_t: float | None
    example: NotRequired[str]
    samples: NotRequired[list[ErrorSample]]


class Capacity(TypedDict):
    headlines: list[str]
    file: str


class Scrape(TypedDict):
    endpoint: str
    ok: int
    failed: int
    last_error: str | None
    last_error_t: float | None
    first_failed: bool


class Refusal(TypedDict):
    host: str
    where: str
    count: int


class Refused(TypedDict):
    count: int
    passed: bool
    refusals: list[Refusal]


class ExportRow(TypedDict):
    file: str  # relative to the run folder: exports/orders.csv
    rows: int


class Summary(TypedDict):
    """summary.json: what was run, against what, what happened, and the verdict."""

    schema_version: int
    scenario: str
    verdict: Verdict
    reasons: list[str]
    target: Target
    started_at: str | None
    ended_at: str | None
    duration_s: float
    exit_reason: str | None
    model: str | None
    host: str | None
    speedup: float | None
    requests: int
    failures: int
    error_rate: float | None
    rps: float
    latency: Latency
    latency_due: Percentiles | None
    endpoints: list[EndpointRow]
    budgets: list[BudgetRow]
    budgets_implied: bool
    delivery: Delivery
    load_process: LoadProcess
    workers: Workers
    stall: NotRequired[Stall]
    abort_rules: list[AbortRow]
    aborted: Aborted | None
    arrivals: Arrivals | None
    generator: Generator
    workers_lost: list[WorkerLost]
    errors: list[ErrorRow]
    warnings: list[str]
    capacity: NotRequired[Capacity | None]
    scrapes: NotRequired[list[Scrape]]
    refused: Refused
    exports: NotRequired[list[ExportRow]]
