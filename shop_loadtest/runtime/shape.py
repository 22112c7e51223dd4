"""The campaign's LoadTestShape: ticks every second with the target for that second."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from locust import LoadTestShape

from shop_loadtest.shapes import Profile


class CampaignShape(LoadTestShape):
    """Users (closed model) or the size of the arrival pool (open model), every second.

    A target is emitted every second with a spawn rate that reaches it within half a second:
    Locust's master walks a ramp synchronously, so a slow spawn rate would delay later ticks
    and skip whole stages (locust#2242).
    """

    abstract = True
    model: ClassVar[str] = "users"
    stages: ClassVar[list[tuple[str, float, float]]] = []
    time_scale: ClassVar[float] = 1.0
    user_classes: ClassVar[list[Any]] = []
    max_users: ClassVar[int] = 2000
    arrivals: ClassVar[str] = "even"
    max_lateness: ClassVar[float] = 1.0
    spawn_rate: ClassVar[float | None] = None

    def __init__(self) -> None:
        super().__init__()
        self._last_users = 0
        self._last_stage: str | None = None

    def profile(self, speedup: float) -> Profile:
        """The shape in wall-clock seconds."""
        return Profile.from_stages(self.stages).scaled(self.time_scale * speedup)

    def tick(self) -> tuple[int, float, list[Any]] | None:
        runner = self.runner
        state: Any = getattr(runner.environment, "shop_loadtest", None) if runner else None
        if state is None or state.profile is None:
            return None
        profile = state.profile
        # The campaign clock starts when the doors open (the master opens them a moment after
        # it starts, so that every worker begins together), not when the shape started.
        t = state.campaign_time() if state.doors_open is not None else self.get_run_time()
        if t >= profile.duration:
            return None
        t = max(t, 0.0)
        stage = profile.stage_at(t)
        if stage != self._last_stage:
            self._last_stage = stage
            state.event("stage", {"name": stage})
        if self.model == "arrival_rate":
            users = self._pool_size(profile, t, state.journey_seconds(), state.in_flight())
        else:
            users = min(round(profile.value(t)), self.max_users)
        delta = abs(users - self._last_users)
        rate = self.spawn_rate or max(2.0 * delta, 1.0)
        self._last_users = users
        state.target_now = profile.value(t)
        return users, rate, list(self.user_classes)

    def _pool_size(self, profile: Profile, t: float, journey_s: float,
                   in_flight: int = 0) -> int:
        """Little's law with headroom, sized for the next two seconds, and never fewer than
        the journeys in flight plus two seconds of arrivals: when the shop slows down or
        stalls, journeys last longer than any completed one says, and the pool must grow
        with them (up to max_users) rather than drop arrivals. It never shrinks, so no
        journey is cut off mid-way when the rate falls."""
        rate = max(profile.value(t), profile.value(t + 1.0), profile.value(t + 2.0))
        needed = max(math.ceil(rate * journey_s * 1.5), in_flight + math.ceil(rate * 2.0)) + 2
        return min(max(needed, self._last_users), self.max_users)
