"""The open model on a closed-model engine: arrivals scheduled by the clock, not by users.

One scheduler greenlet per load process releases arrival tickets at the instants given by the
shape (evenly spaced or Poisson), for this process's share of the rate. A pool of users takes
tickets; an arrival that finds no free user waits in the queue and counts as late, and one
that waited longer than `max_lateness` is dropped and counted: a slow target can no longer
lower the arrival rate without it showing (coordinated omission).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import gevent
from gevent.queue import Empty, Queue

from shop_loadtest.shapes import Profile, arrival_times

LATE_S = 0.1


@dataclass
class ArrivalCounts:
    due: int = 0
    started: int = 0
    dropped: int = 0
    late: int = 0
    late_max_ms: float = 0.0

    def take(self) -> dict[str, float]:
        out = {"due": self.due, "started": self.started, "dropped": self.dropped,
               "late": self.late, "late_max_ms": round(self.late_max_ms, 3)}
        self.due = self.started = self.dropped = self.late = 0
        self.late_max_ms = 0.0
        return out


class ArrivalScheduler:
    def __init__(self, profile: Profile, *, index: int, count: int, mode: str,
                 max_lateness: float, doors_open: float, seed: int | None = None) -> None:
        self.profile = profile
        self.max_lateness = max_lateness
        self.doors_open = doors_open
        self.counts = ArrivalCounts()
        self._queue: Queue[float] = Queue()
        self._times = arrival_times(profile, index=index, count=count, mode=mode,
                                    rng=random.Random(seed))
        self._greenlet: gevent.Greenlet | None = None
        self.finished = False

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def _run(self) -> None:
        # Release every ticket that is due, then sleep until the next one: at thousands of
        # arrivals per second the loop wakes about once a millisecond, not once per arrival.
        pending = next(self._times, None)
        while pending is not None:
            now = time.time()
            due_abs = self.doors_open + pending
            if due_abs > now:
                gevent.sleep(min(due_abs - now, 0.5))
                continue
            self._drop_stale(now)
            while pending is not None and self.doors_open + pending <= now:
                self._queue.put(self.doors_open + pending)
                self.counts.due += 1
                pending = next(self._times, None)
        self.finished = True

    def _drop_stale(self, now: float) -> None:
        while True:
            try:
                due = self._queue.peek_nowait()
            except Empty:
                return
            if now - due <= self.max_lateness:
                return
            self._queue.get_nowait()
            self.counts.dropped += 1

    def take(self, timeout: float = 1.0) -> float | None:
        """Wait for the next arrival; returns its lateness in seconds, or None (none came,
        or it was too late and was dropped)."""
        try:
            due = self._queue.get(timeout=timeout)
        except Empty:
            return None
        lateness = time.time() - due
        if lateness > self.max_lateness:
            self.counts.dropped += 1
            return None
        self.counts.started += 1
        if lateness > LATE_S:
            self.counts.late += 1
        if lateness * 1000.0 > self.counts.late_max_ms:
            self.counts.late_max_ms = lateness * 1000.0
        return max(lateness, 0.0)
