"""The open model on a closed-model engine: arrivals scheduled by the clock, not by users.

One scheduler per load process (a timer in the hub, no greenlet of its own) releases arrival
tickets at the instants given by the shape (evenly spaced or Poisson), for this process's
share of the rate. A pool of users takes tickets; an arrival that finds no free user waits in
the queue and counts as late, and one that waited longer than `max_lateness` is dropped and
counted: a slow target can no longer lower the arrival rate without it showing
(coordinated omission).

Every ticket ends as exactly one of `started` or `dropped` (tickets still queued when the load
stops are dropped), so over a run `due == started + dropped`. A ticket dropped while every user
of a pool already at `max_users` was in a journey is also counted `dropped_full`: those
arrivals could not start because all users were waiting on the shop, which is the shop's
failure, not the generator's. The same holds for a late start (`late_full`).

Each interval also carries the lateness of every started arrival as a histogram (`late_hist`,
microseconds, the one HDR layout), so the report can give lateness percentiles that merge
exactly across intervals and processes, and the verdict can judge sustained lateness.

The hand-off is built for a pool of thousands of users of which most wait (the pool is sized
for two seconds of arrivals beyond those in flight): a ticket goes straight to the user that
became free last (a stack of waiters: the same few users stay busy and warm), and a waiting
user sets no timer. gevent's `Queue.get(timeout=0.5)` cost a Timeout per wait and woke every
idle user twice a second to find nothing (docs/performance.md has the measurements).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gevent.hub import Waiter, get_hub

from shop_loadtest.hdr import new_histogram
from shop_loadtest.runtime.recorder import record_many, to_us
from shop_loadtest.shapes import LATE_S, Profile, arrival_times


@dataclass
class ArrivalCounts:
    """One interval's arrivals: due (released), started, dropped, late (> LATE_S), and the
    dropped and late ones that found the pool full (`dropped_full`, `late_full`)."""

    due: int = 0
    started: int = 0
    dropped: int = 0
    dropped_full: int = 0
    late: int = 0
    late_full: int = 0
    late_max_ms: float = 0.0
    # ms late, per started arrival: folded into `late_hist` once an interval
    lateness_ms: list[float] = field(default_factory=list)

    def drop(self, pool_full: bool) -> None:
        self.dropped += 1
        if pool_full:
            self.dropped_full += 1

    def start(self, lateness: float, max_lateness: float, pool_full: bool = False) -> bool:
        """Account for a ticket a user picked up `lateness` seconds after it was due; False
        when it is too late to start (dropped)."""
        if lateness > max_lateness:
            self.drop(pool_full)
            return False
        self.started += 1
        ms = lateness * 1000.0 if lateness > 0.0 else 0.0
        self.lateness_ms.append(ms)
        if lateness > LATE_S:
            self.late += 1
            if pool_full:
                self.late_full += 1
        if ms > self.late_max_ms:
            self.late_max_ms = ms
        return True

    def take(self) -> dict[str, Any]:
        late_hist = None
        if self.lateness_ms:
            hist = new_histogram()
            record_many(hist, to_us(self.lateness_ms))
            late_hist = hist.encode().decode("ascii")
        out = {"due": self.due, "started": self.started, "dropped": self.dropped,
               "dropped_full": self.dropped_full, "late": self.late,
               "late_full": self.late_full, "late_max_ms": round(self.late_max_ms, 3),
               "late_hist": late_hist}
        self.due = self.started = self.dropped = self.dropped_full = 0
        self.late = self.late_full = 0
        self.late_max_ms = 0.0
        self.lateness_ms = []
        return out


class ArrivalScheduler:
    """Releases this process's arrival tickets on time; users `take()` them.

    >>> scheduler = ArrivalScheduler(profile, index=0, count=2, mode="even",
    ...                              max_lateness=1.0, doors_open=time.time())
    >>> scheduler.start()                    # in a load process (gevent)
    >>> lateness = scheduler.take(timeout=0.5)   # in a user: seconds late, or None
    """

    def __init__(self, profile: Profile, *, index: int, count: int, mode: str,
                 max_lateness: float, doors_open: float, seed: int | None = None,
                 pool_full: Callable[[int], bool] | None = None) -> None:
        self.profile = profile
        self.max_lateness = max_lateness
        self.doors_open = doors_open
        self.counts = ArrivalCounts()
        # Journeys running now: the pool grows with them (CampaignShape), and a drop while
        # `pool_full(in_flight)` is the shop's doing.
        self.in_flight = 0
        self._pool_full = pool_full or (lambda _busy: False)
        self._queue = _Tickets()
        # With a seed, each process still draws its own Poisson stream: the same stream in
        # every worker would make all of them arrive at the same instants.
        rng = random.Random(None if seed is None else f"{seed}/{index}/{count}")
        self._times = arrival_times(profile, index=index, count=count, mode=mode, rng=rng)
        self._loop = get_hub().loop
        self._timer: Any = None
        self._pending: float | None = None
        self._stopped = False
        self.finished = False

    def start(self) -> None:
        self._pending = next(self._times, None)
        self._arm()

    def stop(self) -> None:
        """Stop releasing tickets; the ones still waiting were never started: dropped. The
        users still waiting are woken with no ticket, so a graceful stop need not wait."""
        self._stopped = True
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        full = self._full()
        while self._queue:
            self._queue.popleft()
            self.counts.drop(full)
        self._queue.wake_all()

    def _full(self) -> bool:
        return self._pool_full(self.in_flight)

    def journey_started(self) -> None:
        self.in_flight += 1

    def journey_ended(self) -> None:
        self.in_flight -= 1

    def _arm(self, now: float | None = None) -> None:
        """Wake (`_release`) when the next ticket is due, or in 0.5 s at most."""
        if self._pending is None:
            self.finished = True
            return
        if self._stopped:
            return
        delay = self.doors_open + self._pending - (time.time() if now is None else now)
        self._timer = timer = self._loop.timer(min(max(delay, 0.0), 0.5))
        timer.start(self._release)

    def _release(self) -> None:
        # Runs in the hub, from the timer: no scheduler greenlet to switch to and back from
        # for every arrival, so a ticket costs what a paced user's sleep costs. Every ticket
        # that is due goes out at once, so at thousands of arrivals per second the timer
        # fires about once a millisecond, not once per arrival. A one-shot timer that fired
        # has stopped itself: nothing to close.
        self._timer = None
        if self._stopped:
            return
        now = time.time()
        doors_open = self.doors_open
        pending = self._pending
        if pending is not None and doors_open + pending <= now:
            self._drop_stale(now)
            queue = self._queue
            while pending is not None and doors_open + pending <= now:
                queue.append(doors_open + pending)
                self.counts.due += 1
                pending = next(self._times, None)
            self._pending = pending
            queue.hand_out()
            self._arm()  # handing out ran users: the clock moved on
            return
        self._arm(now)

    def _drop_stale(self, now: float) -> None:
        queue = self._queue
        while queue and now - queue[0] > self.max_lateness:
            queue.popleft()
            self.counts.drop(self._full())

    def take(self, timeout: float | None = 1.0) -> float | None:
        """Wait for the next arrival (at most `timeout` seconds; None: until one comes or
        the scheduler stops); returns its lateness in seconds, or None (none came, or it was
        too late and was dropped)."""
        due = self._queue.get(timeout)
        if due is None:
            return None
        lateness = time.time() - due
        # This user was busy until now: the pool was as full as it was with it in a journey.
        full = (lateness > LATE_S or lateness > self.max_lateness) and self._pool_full(
            self.in_flight + 1)
        if not self.counts.start(lateness, self.max_lateness, full):
            return None
        return max(lateness, 0.0)


class _Tickets(deque[float]):
    """Due times not yet taken (oldest first), and the users waiting for one (the one that
    became free last first)."""

    def __init__(self) -> None:
        super().__init__()
        self._waiting: list[Waiter[Any]] = []
        self._hub = get_hub()

    def empty(self) -> bool:
        return not self

    def get(self, timeout: float | None) -> float | None:
        """The oldest ticket, waiting for one if there is none (None: timed out or woken)."""
        if self:
            return self.popleft()
        waiter: Waiter[Any] = Waiter(self._hub)
        self._waiting.append(waiter)
        timer = None
        if timeout is not None:
            timer = self._hub.loop.timer(timeout)
            timer.start(waiter.switch, None)
        try:
            due: float | None = waiter.get()
        except BaseException:  # killed while waiting (the user stopped)
            self._forget(waiter)
            raise
        finally:
            if timer is not None:
                timer.close()
        if due is None:
            self._forget(waiter)
        return due

    def _forget(self, waiter: Waiter[Any]) -> None:
        try:
            self._waiting.remove(waiter)
        except ValueError:
            pass

    def hand_out(self) -> None:
        """Give the waiting tickets to waiting users. Runs in the hub (the scheduler's timer
        callback): a Waiter is switched to from there only."""
        waiting = self._waiting
        while self and waiting:
            waiting.pop().switch(self.popleft())

    def wake_all(self) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            self._hub.loop.run_callback(waiter.switch, None)
