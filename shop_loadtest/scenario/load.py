"""The `load:` section: a list of stages or a template that `shapes` expands into stages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from shop_loadtest import limits, shapes
from shop_loadtest.scenario.base import Level, Model, Name, Seconds
from shop_loadtest.scenario.units import parse_percent

Fraction = Annotated[float, BeforeValidator(parse_percent), WithJsonSchema(
    {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\d+(\.\d+)?%$"}],
     "description": "a percentage such as 95%, or a fraction such as 0.95"})]


class Stage(Model):
    name: Name | None = None
    duration: Seconds
    target: Level


class FlashSale(Model):
    kind: Literal["flash_sale"]
    baseline: Level
    peak: Level
    ramp: Seconds = 120.0
    hold: Seconds = 300.0
    decay: Seconds = 300.0
    before: Seconds = 60.0
    after: Seconds = 60.0

    def expand(self, base: Path) -> list[shapes.StageSpec]:
        return shapes.flash_sale(baseline=self.baseline, peak=self.peak, ramp=self.ramp,
                                 hold=self.hold, decay=self.decay, before=self.before,
                                 after=self.after)


class EmailBlast(Model):
    kind: Literal["email_blast"]
    baseline: Level
    peak: Level | None = None
    multiplier: float | None = Field(default=None, gt=0, le=limits.MAX_TARGET)
    send_at: Seconds = 60.0
    rise: Seconds = 60.0
    half_life: Seconds = Field(default=600.0, gt=0)
    duration: Seconds = 3600.0

    @model_validator(mode="after")
    def _peak(self) -> EmailBlast:
        if (self.peak is None) == (self.multiplier is None):
            raise ValueError("give exactly one of peak or multiplier")
        return self

    def expand(self, base: Path) -> list[shapes.StageSpec]:
        peak = self.peak if self.peak is not None else self.baseline * (self.multiplier or 1.0)
        return shapes.email_blast(baseline=self.baseline, peak=peak, send_at=self.send_at,
                                  rise=self.rise, half_life=self.half_life,
                                  duration=self.duration)


class StepTemplate(Model):
    kind: Literal["step"]
    start: Level
    step: float = Field(gt=0, le=limits.MAX_TARGET)
    every: Seconds = Field(gt=0)
    until: Level

    def expand(self, base: Path) -> list[shapes.StageSpec]:
        return shapes.step_load(start=self.start, step=self.step, every=self.every,
                                until=self.until)


class Spike(Model):
    kind: Literal["spike"]
    baseline: Level
    peak: Level
    at: Seconds = 60.0
    rise: Seconds = 10.0
    hold: Seconds = 60.0
    after: Seconds = 60.0

    def expand(self, base: Path) -> list[shapes.StageSpec]:
        return shapes.spike(baseline=self.baseline, peak=self.peak, at=self.at, rise=self.rise,
                            hold=self.hold, after=self.after)


class Soak(Model):
    kind: Literal["soak"]
    target: Level
    ramp: Seconds = 60.0
    duration: Seconds = 3600.0

    def expand(self, base: Path) -> list[shapes.StageSpec]:
        return shapes.soak(target=self.target, ramp=self.ramp, duration=self.duration)


class Wave(Model):
    kind: Literal["wave"]
    low: Level
    high: Level
    period: Seconds = Field(default=86400.0, gt=0)
    duration: Seconds = 86400.0

    def expand(self, base: Path) -> list[shapes.StageSpec]:
        return shapes.wave(low=self.low, high=self.high, period=self.period,
                           duration=self.duration)


class Replay(Model):
    kind: Literal["replay"]
    file: str
    column: str | None = None
    step: Seconds = Field(default=60.0, gt=0)
    multiplier: float = Field(default=1.0, gt=0, le=limits.MAX_TARGET)
    per: Literal["second", "minute"] = "minute"

    def expand(self, base: Path) -> list[shapes.StageSpec]:
        rows = shapes.read_replay_csv(base / self.file, self.column)
        to_rate = 1.0 / 60.0 if self.per == "minute" else 1.0
        return shapes.replay_points([r * to_rate for r in rows], step=self.step,
                                    multiplier=self.multiplier)


Template = Annotated[
    FlashSale | EmailBlast | StepTemplate | Spike | Soak | Wave | Replay,
    Field(discriminator="kind"),
]

# The tags of `Template`: the loader drops them from error paths and suggests one for a typo.
_TEMPLATE_KINDS = tuple(get_args(model.model_fields["kind"].annotation)[0]
                        for model in get_args(get_args(Template)[0]))


class Load(Model):
    model: Literal["users", "arrival_rate"] = "users"
    stages: list[Stage] | None = None
    template: Template | None = None
    time_scale: float = Field(default=1.0, ge=limits.MIN_TIME_SCALE, le=limits.MAX_TIME_SCALE,
                              description="campaign seconds per wall second")
    arrivals: Literal["even", "poisson"] = "even"
    max_users: int = Field(default=2000, gt=0, le=limits.MAX_USERS)
    max_lateness: Seconds = Field(default=1.0, gt=0)
    spawn_rate: float | None = Field(default=None, gt=0, le=limits.MAX_TARGET)
    # The always-on delivery check: each stage must get at least this share of its planned
    # arrivals (open model) or users (closed model, after ramps), or the run is not a pass.
    min_delivered: Fraction = Field(default=0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _one_shape(self) -> Load:
        if (self.stages is None) == (self.template is None):
            raise ValueError("give either stages or template")
        if self.stages is not None and not self.stages:
            raise ValueError("stages is empty: give at least one stage")
        return self
