"""The scenario file's top level: `Scenario`, its target, data and faker sections, its schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from shop_loadtest import shapes
from shop_loadtest.scenario.base import NAME_RE, Model, Seconds
from shop_loadtest.scenario.journey import Journey
from shop_loadtest.scenario.load import Load
from shop_loadtest.scenario.options import Forecast, MonitorConfig, PlanConfig


class DemoShopOptions(Model):
    storage_limit_mb: float | None = Field(
        default=None, gt=0, description="cap its database (MB = 10^6 bytes): checkout then "
                                        "fails as on a full disk")


class Target(Model):
    host: str | None = None
    allowed_hosts: list[str] = Field(default_factory=list)
    health_path: str = "/"
    timeout: Seconds = Field(
        default=30.0, gt=0, description="give up on a request after this long: a failed "
                                        "request of kind timeout (a step's timeout overrides)")
    headers: dict[str, str] = Field(default_factory=dict)
    demo_shop: DemoShopOptions = Field(default_factory=DemoShopOptions,
                                       description="the demo shop started when no host is given")

    @field_validator("host", "allowed_hosts")
    @classmethod
    def _url(cls, value: Any) -> Any:
        for url in [value] if isinstance(value, str) else value or []:
            if not re.match(r"^https?://[^/\s]+", url):
                raise ValueError(f"expected a URL such as http://127.0.0.1:8800, got {url!r}")
        return value


class DataSource(Model):
    """Rows of a CSV file (with a header), one row per journey run or per user."""

    file: str = Field(description="CSV file with a header row, relative to the scenario file")
    mode: Literal["random", "sequential", "unique"] = Field(
        default="random", description="unique: a row is never handed out twice in a process")
    per: Literal["journey", "user"] = Field(
        default="journey", description="draw a row for each journey run, or once per user")


class FakerOptions(Model):
    locale: str | list[str] | None = Field(default=None, description="e.g. de_DE, or a list")
    seed: int | None = Field(
        default=None, description="seeds faker and the random helpers (--seed overrides)")


class Scenario(Model):
    name: str
    description: str = ""
    target: Target = Field(default_factory=Target)
    load: Load
    variables: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, DataSource] = Field(default_factory=dict)
    faker: FakerOptions = Field(default_factory=FakerOptions)
    journeys: list[Journey] = Field(min_length=1)
    budgets: list[str] = Field(default_factory=list)
    abort: list[str] = Field(default_factory=list)
    monitor: MonitorConfig | None = None
    forecast: Forecast | None = None
    plan: PlanConfig | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"use letters, digits, _ . - (it names the run folder); got {value!r}")
        return value

    @model_validator(mode="after")
    def _unique_journeys(self) -> Scenario:
        names = [j.name for j in self.journeys]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"journey names must be unique; repeated: {', '.join(dupes)}")
        return self

    def stage_specs(self, base: Path = Path(".")) -> list[shapes.StageSpec]:
        if self.load.stages is not None:
            return [
                (s.name or f"stage {i + 1}", s.duration, s.target)
                for i, s in enumerate(self.load.stages)
            ]
        assert self.load.template is not None
        return self.load.template.expand(base)

    def profile(self, base: Path = Path("."), speedup: float = 1.0) -> shapes.Profile:
        """The shape in wall time: campaign time divided by time_scale and speedup."""
        profile = shapes.Profile.from_stages(self.stage_specs(base))
        return profile.scaled(self.load.time_scale * speedup)


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of the scenario format, for editors (yaml-language-server) and tools.

    Friendly units (`90s`, `1%`) are accepted as strings or numbers, as the loader does.
    """
    schema = Scenario.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "shop-loadtest scenario"
    return schema
