"""Per-process recording of every request into one-second intervals with HDR histograms.

Locust's own stats round percentiles to 10 ms buckets and its CSV files are not rewritten at
shutdown; this recorder keeps exact counts and histograms (microseconds, 3 significant digits)
that merge exactly across intervals and processes. See docs/results-format.md.

Recording is on every request's path, so it does as little as it can there: it appends the
response time to a list. The interval's histogram, sum, min and max are built from those lists
once a second (`take`), in bulk with numpy (docs/performance.md has the measurements).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from shop_loadtest.safety.hosts import REFUSED_KIND, HostNotAllowed
from shop_loadtest.safety.mask import mask_cut

LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3
# Pending response times are folded into the histogram when a list grows this long, so
# memory stays bounded even if nobody takes the interval (a plain `locust -f` run).
FOLD_AT = 200_000
MAX_MESSAGE = 300  # characters of a failure message kept, after masking
MAX_REMEMBERED = 1024
TIMEOUT = "timeout"
IN_FLIGHT_AT_STOP = "in flight at stop"


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def to_us(values_ms: list[float]) -> np.ndarray:
    """Milliseconds -> whole microseconds (truncated), clamped to the histogram's range."""
    us = np.nan_to_num(np.asarray(values_ms, dtype=np.float64) * 1000.0)
    return np.clip(us, LOWEST_US, HIGHEST_US).astype(np.int64)


def record_many(hist: HdrHistogram, values_us: np.ndarray) -> None:
    """`hist.record_value(v)` for every v, in bulk: the same counts, min, max and total.

    hdrh's own `record_value` is pure Python (about 1 us a call); this computes the same
    counts-array indices with numpy (`_counts_index_for`, vectorised) and adds to the array
    the histogram encodes from.
    """
    if not len(values_us):
        return
    v = np.asarray(values_us, dtype=np.int64)
    # bit_length(v | mask): frexp's exponent is exact for integers below 2**53
    pow2ceiling = np.frexp((v | hist.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
    bucket = pow2ceiling - hist.unit_magnitude - (hist.sub_bucket_half_count_magnitude + 1)
    sub_bucket = np.right_shift(v, bucket + hist.unit_magnitude)
    index = (np.left_shift(bucket + 1, hist.sub_bucket_half_count_magnitude)
             + sub_bucket - hist.sub_bucket_half_count)
    counts = np.ctypeslib.as_array(hist.counts)
    where, n = np.unique(index, return_counts=True)
    counts[where] += n.astype(counts.dtype)
    hist.total_count += int(len(v))
    hist.min_value = min(hist.min_value, int(v.min()))
    hist.max_value = max(hist.max_value, int(v.max()))


def percentiles_us(hist: HdrHistogram, percentiles: list[float]) -> list[int]:
    """`hist.get_value_at_percentile(p)` for each p, from one cumulative sum (hdrh walks the
    counts array in Python, once per percentile)."""
    total = hist.total_count
    if not total:
        return [0 for _ in percentiles]
    cumulative = np.cumsum(np.ctypeslib.as_array(hist.counts))
    out = []
    for p in percentiles:
        target = max(int(min(p, 100.0) * total / 100 + 0.5), 1)
        index = int(np.searchsorted(cumulative, target, side="left"))
        value = hist.get_value_from_index(index)
        out.append(int(hist.get_highest_equivalent_value(value) if p
                       else hist.get_lowest_equivalent_value(value)))
    return out


class EndpointInterval:
    """One endpoint's requests in the current interval: raw times until `fold`."""

    __slots__ = ("method", "times", "due", "fail", "bytes", "hist", "hist_due", "n", "sum_ms",
                 "min_ms", "max_ms", "stopped", "stopped_max_ms")

    def __init__(self, method: str) -> None:
        self.method = method
        self.times: list[float] = []  # ms, not yet folded into `hist`
        self.due: list[float] | None = None  # ms from when the request was due (open model)
        self.fail = 0
        self.bytes = 0
        self.hist = new_histogram()
        self.hist_due: HdrHistogram | None = None
        self.n = 0
        self.sum_ms = 0.0
        self.min_ms = math.inf
        self.max_ms = 0.0
        self.stopped = 0  # sent, no answer yet when the user was stopped: not in n, fail, times
        self.stopped_max_ms = 0.0

    def fold(self) -> None:
        """Move pending times into the histograms and the exact sum, min and max."""
        times = self.times
        if times:
            self.n += len(times)
            self.sum_ms += math.fsum(times)
            self.min_ms = min(self.min_ms, min(times))
            self.max_ms = max(self.max_ms, max(times))
            record_many(self.hist, to_us(times))
            self.times = []
        if self.due:
            if self.hist_due is None:
                self.hist_due = new_histogram()
            record_many(self.hist_due, to_us(self.due))
            self.due = []

    def to_json(self) -> dict[str, Any]:
        self.fold()
        p50, p95, p99 = percentiles_us(self.hist, [50.0, 95.0, 99.0])
        return {
            "method": self.method, "n": self.n, "fail": self.fail,
            "sum_ms": round(self.sum_ms, 3),
            "min_ms": round(self.min_ms, 3) if self.n else None,
            "max_ms": round(self.max_ms, 3),
            "bytes": self.bytes,
            "p50_ms": p50 / 1000.0, "p95_ms": p95 / 1000.0, "p99_ms": p99 / 1000.0,
            "hist": self.hist.encode().decode("ascii"),
            "hist_due": self.hist_due.encode().decode("ascii") if self.hist_due else None,
            "stopped": self.stopped,
            "stopped_max_ms": round(self.stopped_max_ms, 3) if self.stopped else None,
        }


class Recorder:
    """Collects one process's requests; `take()` returns the interval's figures and resets."""

    def __init__(self, redact: set[str] | None = None) -> None:
        self._endpoints: dict[str, EndpointInterval] = {}
        self._errors: Counter[tuple[str, str, str]] = Counter()
        self._redact = redact if redact is not None else set()
        self._masked: dict[str, str] = {}
        self.journeys = 0
        self.journey_seconds = 0.0

    def record(self, method: str, name: str, response_time_ms: float, length: int,
               error: tuple[str, str] | None, late_ms: float | None) -> None:
        ep = self._endpoints.get(name)
        if ep is None:
            ep = self._endpoints[name] = EndpointInterval(method)
        times = ep.times
        times.append(response_time_ms)
        ep.bytes += length or 0
        if late_ms is not None:
            if ep.due is None:
                ep.due = []
            ep.due.append(response_time_ms + late_ms)
        if error is not None:
            ep.fail += 1
            self._errors[(name, error[0], self._scrub(error[1]))] += 1
        if len(times) >= FOLD_AT:
            ep.fold()

    def on_request(self, request_type: str, name: str, response_time: float | None,
                   response_length: int | None, exception: BaseException | None = None,
                   context: dict[str, Any] | None = None, response: Any = None,
                   **_: Any) -> None:
        """Locust's `request` event, recorded: attach with `events.request.add_listener`.

        The runtime's users put `late_ms` (how late the journey's arrival started) in the
        request context; failures are described by `describe_failure`.
        """
        ep = self._endpoints.get(name)
        if ep is None:
            ep = self._endpoints[name] = EndpointInterval(request_type)
        ms = response_time or 0.0
        times = ep.times
        times.append(ms)
        ep.bytes += response_length or 0
        if context:
            late_ms = context.get("late_ms")
            if late_ms is not None:
                if ep.due is None:
                    ep.due = []
                ep.due.append(ms + late_ms)
        if exception is not None:
            error = describe_failure(exception, response)
            if error is not None:
                ep.fail += 1
                self._errors[(name, error[0], self._scrub(error[1]))] += 1
        if len(times) >= FOLD_AT:
            ep.fold()

    def in_flight_at_stop(self, method: str, name: str, waited_ms: float) -> None:
        """A request still waiting for its answer when its user was stopped (the run ended,
        or a ramp-down). It has no outcome and no latency: counted apart (`stopped`), and
        listed among the errors as kind `in flight at stop` so the report shows it."""
        ep = self._endpoints.get(name)
        if ep is None:
            ep = self._endpoints[name] = EndpointInterval(method)
        ep.stopped += 1
        ep.stopped_max_ms = max(ep.stopped_max_ms, waited_ms)
        self._errors[(name, IN_FLIGHT_AT_STOP, "no answer yet when the user was stopped")] += 1

    def journey_done(self, seconds: float) -> None:
        self.journeys += 1
        self.journey_seconds += seconds

    def _scrub(self, message: str) -> str:
        """Mask, then cut (docs/safety.md); failures repeat, so answers are remembered."""
        if not self._redact:
            return message[:MAX_MESSAGE]
        done = self._masked.get(message)
        if done is None:
            if len(self._masked) >= MAX_REMEMBERED:
                self._masked.clear()
            done = self._masked[message] = mask_cut(message, self._redact, MAX_MESSAGE)
        return done

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
    """(kind, message) of a failed request: `HTTP 503`, `ConnectionRefusedError`, `check`,
    `timeout`."""
    if exception is None:
        return None
    for refused in (exception, getattr(response, "error", None)):
        if isinstance(refused, HostNotAllowed):  # whatever the user's code called it
            return REFUSED_KIND, str(refused)
    timeout = timeout_in(exception) or timeout_in(getattr(response, "error", None))
    if timeout is not None:
        return TIMEOUT, str(timeout) or "timed out"
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


def timeout_in(exc: BaseException | None) -> BaseException | None:
    """The timeout behind a failure, whichever layer noticed it: the runtime's timer, a socket
    or gevent, possibly wrapped by geventhttpclient (`RetriesExceeded(original=...)`)."""
    for _ in range(4):
        if exc is None:
            return None
        if isinstance(exc, TimeoutError) or type(exc).__name__ == "Timeout":
            return exc
        exc = getattr(exc, "original", None)
    return None
