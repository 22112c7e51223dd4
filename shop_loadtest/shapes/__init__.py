"""The traffic shape as a pure function of time: no clock, no sleep.

A `Profile` is a chain of linear segments in k6's convention: each stage moves linearly from
the previous target (0 at the start) to its own target over its duration; a zero-length stage
is a jump. Campaign templates (flash sale, email blast, ...) expand to plain stages, so one
code path serves them all. For the open model the profile is a rate (journeys/s), and
`cumulative`/`time_at` give the exact arrival instants:

>>> p = Profile.from_stages([("ramp", 10, 10.0)])
>>> p.value(5), p.cumulative(10), p.time_at(50.0)
(5.0, 50.0, 10.0)
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from shop_loadtest.limits import MAX_DATA_BYTES, MAX_STAGES

StageSpec = tuple[str, float, float]  # (name, duration seconds, target)


@dataclass(frozen=True)
class Segment:
    name: str
    start: float
    end: float
    start_value: float
    end_value: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def value(self, t: float) -> float:
        if self.duration <= 0:
            return self.end_value
        frac = (t - self.start) / self.duration
        return self.start_value + (self.end_value - self.start_value) * frac

    def area(self, t: float) -> float:
        """Integral of the value from the segment's start to `t` (clamped to the segment)."""
        x = min(max(t - self.start, 0.0), self.duration)
        if self.duration <= 0:
            return 0.0
        slope = (self.end_value - self.start_value) / self.duration
        return self.start_value * x + slope * x * x / 2.0

    def time_at_area(self, area: float) -> float:
        """Inverse of `area`: the instant at which the integral reaches `area`."""
        r0 = self.start_value
        slope = (self.end_value - r0) / self.duration
        if abs(slope) < 1e-12:
            return self.start + area / r0
        # slope/2 x^2 + r0 x - area = 0, the root in [0, duration]; written to avoid cancellation
        disc = max(r0 * r0 + 2.0 * slope * area, 0.0)
        x = 2.0 * area / (r0 + math.sqrt(disc)) if r0 + math.sqrt(disc) > 0 else 0.0
        return self.start + min(x, self.duration)


@dataclass(frozen=True)
class Profile:
    segments: tuple[Segment, ...]

    @classmethod
    def from_stages(cls, stages: Iterable[StageSpec], start_value: float = 0.0) -> Profile:
        segments: list[Segment] = []
        t, previous = 0.0, start_value
        for name, duration, target in stages:
            segments.append(Segment(name, t, t + duration, previous, float(target)))
            t += duration
            previous = float(target)
        return cls(tuple(segments))

    @property
    def duration(self) -> float:
        return self.segments[-1].end if self.segments else 0.0

    def scaled(self, speedup: float) -> Profile:
        """The same shape played `speedup` times faster: durations divided, targets unchanged."""
        return Profile(
            tuple(
                Segment(s.name, s.start / speedup, s.end / speedup, s.start_value, s.end_value)
                for s in self.segments
            )
        )

    def segment_at(self, t: float) -> Segment | None:
        """The segment running at `t` (a jump's segment is never returned: it lasts no time)."""
        for seg in self.segments:
            if seg.start <= t < seg.end:
                return seg
        return None

    def value(self, t: float) -> float:
        """The target at `t`; 0 before the start and after the end."""
        seg = self.segment_at(t)
        return seg.value(t) if seg is not None else 0.0

    def stage_at(self, t: float) -> str | None:
        seg = self.segment_at(t)
        return seg.name if seg is not None else None

    def peak(self) -> float:
        return max((max(s.start_value, s.end_value) for s in self.segments if s.duration > 0),
                   default=0.0)

    def cumulative(self, t: float) -> float:
        """Integral of the value from 0 to `t`: for a rate, the arrivals due by `t`."""
        return sum(seg.area(t) for seg in self.segments if seg.start < t)

    def total(self) -> float:
        return self.cumulative(self.duration)

    def time_at(self, area: float) -> float | None:
        """The first instant at which `cumulative` reaches `area`; None when it never does.

        Even spacing puts arrival k (k = 1, 2, ...) at `time_at(k - 0.5)`; a Poisson process
        puts them at `time_at` of a running sum of Exp(1) draws (the time-change theorem).
        """
        if area <= 0:
            return 0.0
        done = 0.0
        for seg in self.segments:
            if seg.duration <= 0:
                continue
            seg_area = seg.area(seg.end)
            if done + seg_area >= area and seg_area > 0:
                return seg.time_at_area(area - done)
            done += seg_area
        return None

    def stages(self) -> list[dict[str, float | str]]:
        return [
            {"name": s.name, "start_s": s.start, "end_s": s.end,
             "from": s.start_value, "to": s.end_value}
            for s in self.segments
        ]


def arrival_times(profile: Profile, *, index: int, count: int, mode: str,
                  rng: random.Random) -> Iterator[float]:
    """Due instants (seconds from doors open) of this process's share of the arrivals.

    Evenly spaced: arrival k falls where the cumulative rate reaches k - 1/2 (`time_at(k -
    0.5)`), in the middle of its unit of area rather than at its end: 20/s for 4 s gives 80
    arrivals with none at the instant the shape ends, where the stop would race it (every
    such run lost its last arrival and called it dropped). Process `index` of `count` takes
    every `count`-th one, so the total stays evenly spaced. Poisson: each process runs its
    own process at 1/count of the rate (the sum of Poisson processes is Poisson). The walk
    goes segment by segment, O(1) per arrival whatever the number of stages: a week-long
    replay has hundreds.
    """
    if mode == "poisson":
        def targets() -> Iterator[float]:
            area = 0.0
            while True:
                area += rng.expovariate(1.0) * count
                yield area
    else:
        def targets() -> Iterator[float]:
            k = index + 1
            while True:
                yield k - 0.5
                k += count
    wanted = targets()
    target = next(wanted)
    done = 0.0
    for seg in profile.segments:
        if seg.duration <= 0:
            continue
        seg_area = seg.area(seg.end)
        # the same comparison, in the same floating-point order, as Profile.time_at
        while seg_area > 0 and done + seg_area >= target:
            yield seg.time_at_area(target - done)
            target = next(wanted)
        done += seg_area


# --- Campaign templates: each returns plain stages -------------------------------------------

def _bounded(count: float, what: str) -> None:
    """Refuse, before the loop, a template that would expand to millions of stages."""
    if not count <= MAX_STAGES:  # also NaN
        raise ValueError(f"{what} expands to more than {MAX_STAGES:,} stages "
                         f"(docs/limits.md)")


def flash_sale(*, baseline: float, peak: float, ramp: float, hold: float, decay: float,
               before: float = 60.0, after: float = 60.0) -> list[StageSpec]:
    """Baseline traffic, a fast ramp to the peak, a hold, a decay back to baseline."""
    return [
        ("open", 0.0, baseline),
        ("baseline", before, baseline),
        ("ramp", ramp, peak),
        ("peak", hold, peak),
        ("decay", decay, baseline),
        ("after", after, baseline),
    ]


def email_blast(*, baseline: float, peak: float, send_at: float, rise: float, half_life: float,
                duration: float, steps_per_half_life: int = 4) -> list[StageSpec]:
    """Baseline until the send, a rise to the peak, then exponential decay with a half-life.

    The decay is drawn as linear pieces, `steps_per_half_life` per half-life, which keeps the
    shape within a few percent of the true curve and keeps one code path for all shapes.
    """
    stages: list[StageSpec] = [("open", 0.0, baseline), ("before send", send_at, baseline),
                               ("rise", rise, peak)]
    step = half_life / steps_per_half_life
    _bounded(duration / step, "this email_blast (duration / half_life x 4)")
    elapsed = 0.0
    while elapsed + step <= duration + 1e-9:
        elapsed += step
        value = baseline + (peak - baseline) * 0.5 ** (elapsed / half_life)
        stages.append(("decay", step, value))
    return stages


def step_load(*, start: float, step: float, every: float, until: float) -> list[StageSpec]:
    """Hold `start` for `every`, then jump by `step` and hold again, up to `until` inclusive."""
    _bounded((until - start) / step, "this step template ((until - start) / step)")
    stages: list[StageSpec] = []
    value, i = start, 1
    while value <= until + 1e-9:
        stages += [(f"step {i}", 0.0, value), (f"step {i}", every, value)]
        value += step
        i += 1
    return stages


def spike(*, baseline: float, peak: float, at: float, rise: float, hold: float,
          after: float) -> list[StageSpec]:
    return [("open", 0.0, baseline), ("baseline", at, baseline), ("spike", rise, peak),
            ("spike hold", hold, peak), ("recover", rise, baseline), ("after", after, baseline)]


def soak(*, target: float, ramp: float, duration: float) -> list[StageSpec]:
    return [("ramp", ramp, target), ("soak", duration, target), ("ramp down", ramp, 0.0)]


def wave(*, low: float, high: float, period: float, duration: float,
         pieces_per_period: int = 24) -> list[StageSpec]:
    """A daily-style cycle: low at the start of each period, high half-way (a cosine)."""
    piece = period / pieces_per_period
    _bounded(duration / piece, "this wave (duration / period x 24)")
    stages: list[StageSpec] = [("open", 0.0, low)]
    t = 0.0
    while t + piece <= duration + 1e-9:
        t += piece
        value = low + (high - low) * (1 - math.cos(2 * math.pi * t / period)) / 2
        stages.append(("wave", piece, value))
    return stages


def replay_points(rows: Sequence[float], *, step: float, multiplier: float) -> list[StageSpec]:
    """Historical traffic, one value per `step` seconds, times `multiplier`, joined linearly."""
    if not rows:
        return []
    stages: list[StageSpec] = [("replay", 0.0, rows[0] * multiplier)]
    stages += [("replay", step, value * multiplier) for value in rows[1:]]
    return stages


def read_replay_csv(path: Path, column: str | None) -> list[float]:
    """Values of `column` (or the last column) of a per-minute traffic CSV with a header.

    Every value must be a finite number >= 0; a bad one is named by its line in the file.
    """
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} is not a regular file")
    if path.is_file() and path.stat().st_size > MAX_DATA_BYTES:
        raise ValueError(f"{path} is larger than {MAX_DATA_BYTES:,} bytes (docs/limits.md)")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise ValueError(f"{path}: empty CSV")
        name = column or header[-1]
        if name not in header:
            raise ValueError(f"{path}: no column {name!r} (columns: {', '.join(header)})")
        index = header.index(name)
        values: list[float] = []
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(values) >= MAX_STAGES:
                raise ValueError(f"{path}: more than {MAX_STAGES:,} rows (docs/limits.md)")
            if len(row) <= index:
                raise ValueError(f"{path}:{line}: no value in column {name!r}")
            try:
                value = float(row[index])
            except ValueError:
                raise ValueError(f"{path}:{line}: {row[index][:40]!r} is not a number") from None
            if not math.isfinite(value):
                raise ValueError(f"{path}:{line}: {row[index][:40]!r} is not a finite number")
            if value < 0:
                raise ValueError(f"{path}:{line}: {value:g} is negative; traffic is 0 or more")
            values.append(value)
        return values
