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

from shop_loadtest.hdr import (
    ALL_INDEXES,
    HIGHEST_US,
    LOWEST_US,
    index_of,
    new_histogram,
    values_at_us,
)
from shop_loadtest.journeys.failures import (
    Mask,
    describe_failure,
    failure_sample,
)
from shop_loadtest.journeys.templates import SecretEnv

# Pending response times are folded into the histogram when a list grows this long, so
# memory stays bounded even if nobody takes the interval (a plain `locust -f` run).
FOLD_AT = 200_000
SAMPLES_PER_KIND = 3

IN_FLIGHT_AT_STOP = "in flight at stop"


def to_us(values_ms: list[float]) -> np.ndarray:
    """Milliseconds -> whole microseconds (truncated), clamped to the histogram's range."""
    us = np.nan_to_num(np.asarray(values_ms, dtype=np.float64) * 1000.0)
    return np.clip(us, LOWEST_US, HIGHEST_US).astype(np.int64)


def record_many(hist: HdrHistogram, values_us: np.ndarray) -> None:
    """`hist.record_value(v)` for every v, in bulk: the same counts, min, max and total.

    hdrh's own `record_value` is pure Python (about 1 us a call); this computes the same
    counts-array indices with numpy (`hdr.index_of`) and adds to the array the histogram
    encodes from. `hist` has the one layout (`hdr.new_histogram`).
    """
    if not len(values_us):
        return
    v = np.asarray(values_us, dtype=np.int64)
    counts = np.ctypeslib.as_array(hist.counts)
    where, n = np.unique(index_of(v), return_counts=True)
    counts[where] += n.astype(counts.dtype)
    hist.total_count += int(len(v))
    hist.min_value = min(hist.min_value, int(v.min()))
    hist.max_value = max(hist.max_value, int(v.max()))


def percentiles_us(hist: HdrHistogram, percentiles: list[float]) -> list[int]:
    """`hist.get_value_at_percentile(p)` for each p, from one cumulative sum (hdrh walks the
    counts array in Python, once per percentile)."""
    if not hist.total_count:
        return [0 for _ in percentiles]
    cumulative = np.cumsum(np.ctypeslib.as_array(hist.counts))
    return [int(v) for v in values_at_us(cumulative, ALL_INDEXES, percentiles)]


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
    """Collects one process's requests; `take()` returns the interval's figures and resets.

    `mask` is the one secret mask (`SecretEnv.scrub`) every message and body sample passes
    before it is cut; `redact` (the values to mask) is the older way to give it.
    """

    def __init__(self, redact: set[str] | None = None, mask: Mask | None = None) -> None:
        self._endpoints: dict[str, EndpointInterval] = {}
        self._errors: Counter[tuple[str, str, str]] = Counter()
        if mask is None:
            secrets = SecretEnv({})
            secrets.used = redact if redact is not None else set()
            mask = secrets.scrub
        self._mask = mask
        # A few failed requests per endpoint and kind, for the whole life of the process:
        # what the shop answered, not only how often.
        self._sampled: Counter[tuple[str, str]] = Counter()
        self._samples: list[dict[str, Any]] = []
        self.journeys = 0
        self.journey_seconds = 0.0

    def on_request(self, request_type: str, name: str, response_time: float | None,
                   response_length: int | None, exception: BaseException | None = None,
                   context: dict[str, Any] | None = None, response: Any = None,
                   url: Any = None, **_: Any) -> None:
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
            self._failed(ep, request_type, name, exception, response, url)
        if len(times) >= FOLD_AT:
            ep.fold()

    def _failed(self, ep: EndpointInterval, method: str, name: str, exception: BaseException,
                response: Any, url: Any) -> None:
        error = describe_failure(exception, response, self._mask)
        if error is None:
            return
        ep.fail += 1
        self._errors[(name, error[0], error[1])] += 1
        key = (name, error[0])
        if self._sampled[key] < SAMPLES_PER_KIND:
            self._sampled[key] += 1
            self._samples.append({"endpoint": name, "kind": error[0], "message": error[1],
                                  **failure_sample(method, url, response, self._mask)})

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

    def take(self) -> dict[str, Any]:
        endpoints, errors, samples = self._endpoints, self._errors, self._samples
        journeys, journey_seconds = self.journeys, self.journey_seconds
        self._endpoints, self._errors, self._samples = {}, Counter(), []
        self.journeys, self.journey_seconds = 0, 0.0
        taken: dict[str, Any] = {
            "endpoints": {name: ep.to_json() for name, ep in endpoints.items()},
            "errors": [
                {"endpoint": name, "kind": kind, "message": msg, "count": count}
                for (name, kind, msg), count in errors.items()
            ],
            "journeys": {"completed": journeys,
                         "mean_s": journey_seconds / journeys if journeys else None},
        }
        if samples:
            taken["error_samples"] = samples
        return taken

