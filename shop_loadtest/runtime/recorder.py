"""Per-process recording of every request into one-second intervals with HDR histograms.

Locust's own stats round percentiles to 10 ms buckets and its CSV files are not rewritten at
shutdown; this recorder keeps exact counts and histograms (microseconds, 3 significant digits)
that merge exactly across intervals and processes. See docs/results-format.md.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def _us(ms: float) -> int:
    return min(max(int(ms * 1000.0), LOWEST_US), HIGHEST_US)


@dataclass
class EndpointInterval:
    method: str
    n: int = 0
    fail: int = 0
    sum_ms: float = 0.0
    min_ms: float = float("inf")
    max_ms: float = 0.0
    bytes: int = 0
    hist: HdrHistogram = field(default_factory=new_histogram)
    hist_due: HdrHistogram | None = None

    def to_json(self) -> dict[str, Any]:
        h = self.hist
        return {
            "method": self.method, "n": self.n, "fail": self.fail,
            "sum_ms": round(self.sum_ms, 3),
            "min_ms": round(self.min_ms, 3) if self.n else None,
            "max_ms": round(self.max_ms, 3),
            "bytes": self.bytes,
            "p50_ms": h.get_value_at_percentile(50) / 1000.0,
            "p95_ms": h.get_value_at_percentile(95) / 1000.0,
            "p99_ms": h.get_value_at_percentile(99) / 1000.0,
            "hist": h.encode().decode("ascii"),
            "hist_due": self.hist_due.encode().decode("ascii") if self.hist_due else None,
        }


class Recorder:
    """Collects one process's requests; `take()` returns the interval's figures and resets."""

    def __init__(self, redact: set[str] | None = None) -> None:
        self._endpoints: dict[str, EndpointInterval] = {}
        self._errors: Counter[tuple[str, str, str]] = Counter()
        self._redact = redact if redact is not None else set()
        self.journeys = 0
        self.journey_seconds = 0.0
        self.total_requests = 0

    def record(self, method: str, name: str, response_time_ms: float, length: int,
               error: tuple[str, str] | None, late_ms: float | None) -> None:
        ep = self._endpoints.get(name)
        if ep is None:
            ep = self._endpoints[name] = EndpointInterval(method)
        ep.n += 1
        ep.sum_ms += response_time_ms
        if response_time_ms < ep.min_ms:
            ep.min_ms = response_time_ms
        if response_time_ms > ep.max_ms:
            ep.max_ms = response_time_ms
        ep.bytes += length or 0
        ep.hist.record_value(_us(response_time_ms))
        if late_ms is not None:
            if ep.hist_due is None:
                ep.hist_due = new_histogram()
            ep.hist_due.record_value(_us(response_time_ms + late_ms))
        if error is not None:
            ep.fail += 1
            self._errors[(name, error[0], self._scrub(error[1]))] += 1
        self.total_requests += 1

    def journey_done(self, seconds: float) -> None:
        self.journeys += 1
        self.journey_seconds += seconds

    def _scrub(self, message: str) -> str:
        message = message[:300]
        for secret in self._redact:
            if secret:
                message = message.replace(secret, "***")
        return message

    def take(self) -> dict[str, Any]:
        endpoints, errors = self._endpoints, self._errors
        journeys, journey_seconds = self.journeys, self.journey_seconds
        self._endpoints, self._errors = {}, Counter()
        self.journeys, self.journey_seconds = 0, 0.0
        return {
            "endpoints": {name: ep.to_json() for name, ep in endpoints.items()},
            "errors": [
                {"endpoint": name, "kind": kind, "message": msg, "count": count}
                for (name, kind, msg), count in errors.items()
            ],
            "journeys": {"completed": journeys,
                         "mean_s": journey_seconds / journeys if journeys else None},
        }


def describe_failure(exception: BaseException | None, response: Any) -> tuple[str, str] | None:
    """(kind, message) of a failed request: `HTTP 503`, `ConnectionRefusedError`, `check`."""
    if exception is None:
        return None
    message = str(exception) or type(exception).__name__
    status = getattr(response, "status_code", 0) or 0
    if message.startswith("HTTP "):
        return f"HTTP {status}", message
    if status == 0:
        cause = getattr(response, "error", None) or exception
        return type(cause).__name__, str(cause) or message
    if type(exception).__name__ == "CatchResponseError":
        return "check failed", message
    return f"HTTP {status}", message


def now() -> float:
    return time.time()
