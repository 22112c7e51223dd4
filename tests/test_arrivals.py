"""The open model's arithmetic: when arrivals are due, how they are split across load
processes, and how the scheduler accounts for the ones it could not start on time.

`shapes.arrival_times` is pure and tested here directly. The scheduler lives in the runtime,
which imports locust (gevent patches the process), so its checks run in a subprocess.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from shop_loadtest.shapes import Profile, arrival_times
from tests.conftest import ROOT


def times(profile: Profile, *, index: int = 0, count: int = 1, mode: str = "even",
          seed: int = 1) -> list[float]:
    return list(arrival_times(profile, index=index, count=count, mode=mode,
                              rng=random.Random(seed)))


def in_engine(code: str, timeout: float = 60.0) -> Any:
    """Run `code` in a fresh process with locust (and so gevent) imported first; it prints
    one JSON document, which is returned."""
    script = "import locust  # noqa: F401\n" + textwrap.dedent(code)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


HOLD = Profile.from_stages([("open", 0, 50.0), ("hold", 4, 50.0)])
RAMP = Profile.from_stages([("ramp", 10, 40.0)])


def test_a_constant_rate_is_evenly_spaced():
    got = times(HOLD)
    assert len(got) == 200
    assert got == pytest.approx([(k + 0.5) / 50.0 for k in range(200)], abs=1e-9)
    # none at the end of the shape, where the stop would race it
    assert got[-1] < HOLD.duration - 0.5 / 50.0 + 1e-9


def test_a_ramp_starts_arrivals_where_the_cumulative_rate_reaches_each_half_unit():
    got = times(RAMP)
    assert len(got) == round(RAMP.total()) == 200
    for k, t in enumerate(got, start=1):
        assert RAMP.cumulative(t) == pytest.approx(k - 0.5, abs=1e-6)
    # the rate doubles from the first half to the second: three times the arrivals
    first = sum(1 for t in got if t <= 5.0)
    assert (first, len(got) - first) == (50, 150)


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_processes_split_the_arrivals_exactly_and_the_total_stays_evenly_spaced(count):
    shares = [times(RAMP, index=i, count=count) for i in range(count)]
    assert sorted(t for share in shares for t in share) == times(RAMP)
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 1
    # each process is itself evenly spread: its share of a constant rate is every count-th
    hold = [times(HOLD, index=i, count=count) for i in range(count)]
    for i, share in enumerate(hold):
        assert share == pytest.approx([(i + 0.5 + count * k) / 50.0
                                       for k in range(len(share))])


def test_poisson_arrivals_have_the_mean_of_the_rate_and_exponential_gaps():
    profile = Profile.from_stages([("open", 0, 200.0), ("hold", 50, 200.0)])
    got = times(profile, mode="poisson", seed=3)
    expected = profile.total()  # 10,000
    assert abs(len(got) - expected) < 4 * math.sqrt(expected)
    gaps = [b - a for a, b in zip(got, got[1:], strict=False)]
    mean = sum(gaps) / len(gaps)
    std = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))
    assert mean == pytest.approx(1 / 200.0, rel=0.05)
    assert std / mean == pytest.approx(1.0, abs=0.05)  # exponential: std == mean


def test_poisson_follows_a_changing_rate():
    got = times(RAMP, mode="poisson", seed=5)
    first = sum(1 for t in got if t <= 5.0)
    assert abs(first - 50) < 4 * math.sqrt(50)
    assert abs(len(got) - first - 150) < 4 * math.sqrt(150)


def test_poisson_shares_add_up_to_the_rate():
    profile = Profile.from_stages([("open", 0, 300.0), ("hold", 20, 300.0)])
    total = sum(len(times(profile, index=i, count=4, mode="poisson", seed=10 + i))
                for i in range(4))
    assert abs(total - 6000) < 4 * math.sqrt(6000)


def test_the_scheduler_releases_the_same_instants_as_the_shape_in_constant_time_per_arrival():
    got = in_engine("""
        import json, random, time
        from shop_loadtest.shapes import Profile, arrival_times, replay_points

        def due_times(p, *, index, count, mode, rng):
            # the definition: one Profile.time_at scan per arrival
            if mode == "poisson":
                area = 0.0
                while (t := p.time_at(area := area + rng.expovariate(1.0) * count)) is not None:
                    yield t
                return
            k = index + 1
            while (t := p.time_at(k - 0.5)) is not None:
                yield t
                k += count

        profiles = [
            Profile.from_stages([("ramp", 10, 40.0)]),
            Profile.from_stages([("a", 0, 100), ("a", 3.3, 100), ("b", 2, 7), ("c", 0, 0),
                                 ("d", 1, 0), ("e", 5, 33.3)]),
        ]
        same = True
        for p in profiles:
            for mode in ("even", "poisson"):
                for count in (1, 3):
                    for index in range(count):
                        a = list(arrival_times(p, index=index, count=count, mode=mode,
                                               rng=random.Random(7)))
                        b = list(due_times(p, index=index, count=count, mode=mode,
                                           rng=random.Random(7)))
                        same = same and a == b and len(a) > 0
        # 300 stages at 2,000 arrivals/s: a scan of every stage per arrival would take seconds
        rng = random.Random(1)
        long = Profile.from_stages(replay_points([2000 + rng.random() for _ in range(301)],
                                                 step=1.0, multiplier=1.0))
        began = time.perf_counter()
        n = sum(1 for _ in arrival_times(long, index=0, count=1, mode="even",
                                         rng=random.Random(1)))
        print(json.dumps({"same": same, "n": n, "total": long.total(), "per_arrival_us":
                          (time.perf_counter() - began) / n * 1e6}))
    """)
    assert got["same"] is True
    assert 0 <= got["total"] - got["n"] < 1 and got["n"] > 600_000
    assert got["per_arrival_us"] < 20


SCHEDULER_RUN = """
    import json, time
    import gevent
    from shop_loadtest.runtime.arrivals import ArrivalScheduler
    from shop_loadtest.shapes import Profile

    def run(rate, seconds, users, service_s, max_lateness, mode="even", stop_at=None):
        # stop_at: the user that starts that many arrivals stops the scheduler, from
        # inside the hand-out (the scheduler is handing tickets out when it is stopped)
        profile = Profile.from_stages([("open", 0, rate), ("hold", seconds, rate)])
        s = ArrivalScheduler(profile, index=0, count=1, mode=mode, max_lateness=max_lateness,
                             doors_open=time.time() + 0.2, seed=1)
        starts = []
        stopped_at = []

        def user():
            while not s.finished or not s._queue.empty():
                lateness = s.take(timeout=0.1)
                if lateness is not None:
                    starts.append(time.time())
                    if len(starts) == stop_at:
                        s.stop()
                        stopped_at.append(time.time())
                    gevent.sleep(service_s)

        pool = [gevent.spawn(user) for _ in range(users)]
        s.start()
        gevent.sleep(0.2 + seconds + 0.05)
        s.stop()
        gevent.killall(pool)
        gaps = sorted(b - a for a, b in zip(starts, starts[1:]))
        return {**s.counts.take(), "expected": profile.total(),
                "after_stop": sum(1 for t in starts if stopped_at and t > stopped_at[0]),
                "gap_min": gaps[0] if gaps else None,
                "gap_median": gaps[len(gaps) // 2] if gaps else None}

    def started_after_stop():
        # a run stopped before its doors opened: the scheduler's start comes after
        profile = Profile.from_stages([("open", 0, 100), ("hold", 1.0, 100)])
        s = ArrivalScheduler(profile, index=0, count=1, mode="even", max_lateness=1.0,
                             doors_open=time.time())
        s.stop()
        s.start()
        gevent.sleep(0.3)
        return s.counts.take()["due"]

    print(json.dumps({
        "fast": run(200, 1.0, users=5, service_s=0.001, max_lateness=1.0),
        "slow": run(100, 1.5, users=2, service_s=0.1, max_lateness=0.2),
        "stopped": run(100, 1.0, users=1, service_s=0.001, max_lateness=1.0, stop_at=30),
        "started_after_stop": started_after_stop(),
    }))
"""


@pytest.fixture(scope="module")
def scheduler_runs() -> dict[str, Any]:
    return dict(in_engine(SCHEDULER_RUN))


def test_with_free_users_every_arrival_starts_on_time_and_evenly(scheduler_runs):
    fast = scheduler_runs["fast"]
    assert fast["due"] == fast["started"] == 200 == fast["expected"]
    assert fast["dropped"] == 0 and fast["late"] == 0
    assert fast["late_max_ms"] < 50
    # one start every 5 ms, not users in lockstep
    assert fast["gap_median"] == pytest.approx(0.005, abs=0.0015)


def test_arrivals_that_find_no_free_user_are_late_then_dropped_and_all_are_accounted(
        scheduler_runs):
    slow = scheduler_runs["slow"]
    # 2 users x 10 journeys/s cannot serve 100/s: the rest wait, then are given up
    assert slow["due"] == 150 == slow["expected"]
    assert slow["started"] + slow["dropped"] == slow["due"]
    assert 25 <= slow["started"] <= 40
    assert slow["dropped"] >= 100
    assert slow["late"] > 0
    assert 100 < slow["late_max_ms"] <= 200 + 20


def test_a_stopped_scheduler_releases_nothing_more_and_accounts_for_what_it_released(
        scheduler_runs):
    stopped = scheduler_runs["stopped"]
    # stopped by the user that took the 30th ticket, while the scheduler was handing out
    assert stopped["started"] == 30 and stopped["after_stop"] == 0
    assert stopped["due"] == stopped["started"] + stopped["dropped"]
    assert stopped["due"] <= 31  # of the 100 the shape had: nothing released after the stop
    assert scheduler_runs["started_after_stop"] == 0
