"""The options of the sections other stages act on: `monitor:` (run/ scrapes, judge/ reads),
`forecast:` (judge/runway.py projects) and `plan:` (capacity/plan.py).

They live with the rest of the scenario's model so that scenario/ imports no later stage.

>>> Selector.parse('shop_db_rows{table="orders"}')
Selector(name='shop_db_rows', labels=(('table', 'orders'),))
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from shop_loadtest.scenario.base import Model, Seconds
from shop_loadtest.scenario.units import parse_percent, parse_rate, parse_size

# --- monitor: ---------------------------------------------------------------------------------
_SELECTOR = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*(?:"([^"]*)"|([^,"\s]*))\s*(?:,|$)')


@dataclass(frozen=True)
class Selector:
    """A metric sample name with optional label equalities: `name{label="value",...}`.

    Matching ignores case, because budget expressions are lower-cased when parsed.
    """

    name: str
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Selector:
        m = _SELECTOR.match(text.strip())
        if not m:
            raise ValueError(f"expected a metric such as shop_db_size_bytes or "
                             f'shop_db_rows{{table="orders"}}, got {text!r}')
        labels, rest = [], (m.group(2) or "").strip()
        while rest:
            lm = _LABEL.match(rest)
            if not lm:
                raise ValueError(f"cannot read the labels of {text!r}; write "
                                 'name{label="value"}')
            labels.append((lm.group(1), lm.group(2) if lm.group(2) is not None else lm.group(3)))
            rest = rest[lm.end():].strip()
        return cls(m.group(1), tuple(labels))

    def matches(self, name: str, labels: dict[str, Any]) -> bool:
        if name.lower() != self.name.lower():
            return False
        return all(str(labels.get(k, "")).lower() == v.lower() for k, v in self.labels)

    def __str__(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.name}{{{inner}}}" if inner else self.name


def _selector_text(value: str) -> str:
    Selector.parse(value)
    return value


class Resource(Model):
    """A resource to watch and project: `used` grows with the `per` counter (work done)."""

    name: str = Field(description="what budgets name it by: used(storage), runway(storage)")
    used: str = Field(description="gauge of what is used, e.g. shop_db_size_bytes")
    limit: str | float | None = Field(
        default=None, description="gauge of the limit (shop_db_storage_limit_bytes), or a "
                                  "fixed number in the same unit; none: growth only")
    per: str = Field(default="shop_orders_total",
                     description="counter of the work that makes it grow (orders)")
    unit: str = Field(default="", description="unit of `used`, for the report (bytes, rows)")

    @field_validator("used", "per")
    @classmethod
    def _selector(cls, value: str) -> str:
        return _selector_text(value)

    @field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, value: Any) -> Any:
        if isinstance(value, str) and value[:1].isdigit():
            return parse_size(value)
        if isinstance(value, str):
            return _selector_text(value)
        return value


DEFAULT_RESOURCES = (
    Resource(name="storage", used="shop_db_size_bytes", limit="shop_db_storage_limit_bytes",
             unit="bytes"),
    Resource(name="rows", used="shop_db_rows", unit="rows"),
)


_PROMQL_SELECTOR = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?$")
_PROMQL_MATCHERS = re.compile(
    r'^\s*([a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"[^"]*"\s*(,\s*|$))*$')


class Traffic(Model):
    """The shop's own request metrics, for the alerts command's traffic and SLO rules.

    Names are PromQL: `requests` a counter of answered requests, `latency` a histogram in
    seconds (its `_bucket` and `_count` series), `select` and `errors` label matchers.
    The defaults are the demo shop's (docs/demo-shop.md#metrics).
    """

    requests: str | None = Field(
        default="shop_http_requests_total",
        description="counter of requests the shop answered (null: no traffic or error rules)")
    latency: str | None = Field(
        default="shop_http_request_duration_seconds",
        description="histogram of answer times in seconds, without _bucket (null: no latency "
                    "rules)")
    select: str = Field(default='route!="/metrics"',
                        description="PromQL label matchers: which requests are the shop's "
                                    "traffic (not the scrapes)")
    errors: str = Field(default='status=~"5.."',
                        description="PromQL label matchers that make a request an error")
    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="a budget's endpoint name -> PromQL label matchers of its requests, e.g. "
                    "'POST /api/checkout': 'method=\"POST\",route=\"/api/checkout\"': "
                    "per-endpoint budgets become SLO alerts")

    @field_validator("requests", "latency")
    @classmethod
    def _metric(cls, value: str | None) -> str | None:
        if value is not None and not _PROMQL_SELECTOR.match(value.strip()):
            raise ValueError(f"expected a metric name such as shop_http_requests_total, "
                             f"got {value!r}")
        return value

    @field_validator("select", "errors")
    @classmethod
    def _matchers(cls, value: str) -> str:
        return _promql_matchers(value)

    @field_validator("endpoints")
    @classmethod
    def _endpoint_matchers(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: _promql_matchers(m) for name, m in value.items()}


def _promql_matchers(value: str) -> str:
    if not _PROMQL_MATCHERS.match(value):
        raise ValueError(f'expected PromQL label matchers such as status=~"5..", got {value!r}')
    return value.strip()


class MonitorConfig(Model):
    """The `monitor:` section: what to scrape, how often, and which resources to project."""

    endpoints: list[str] = Field(
        default_factory=lambda: ["/metrics"],
        description="URLs, or paths on the target host (default: the target's /metrics)")
    interval: Seconds = Field(default=2.0, gt=0, description="seconds between scrapes "
                                                             "(wall time, not scaled by --speedup)")
    timeout: Seconds = Field(default=2.0, gt=0, description="per scrape")
    include: list[str] = Field(default_factory=lambda: ["*"],
                               description="sample names kept (globs)")
    exclude: list[str] = Field(default_factory=lambda: ["*_bucket", "*_created"],
                               description="sample names dropped (globs); histogram buckets "
                                           "are dropped by default")
    buckets: list[str] | None = Field(
        default=None,
        description="histogram families (globs, without _bucket) whose buckets are kept "
                    "though `exclude` drops buckets: the server's own p50/p95 in the report; "
                    "null: the traffic.latency histogram; []: none")
    buckets_every: Seconds | None = Field(
        default=None, gt=0,
        description="those buckets are kept on one scrape in this many seconds (and the "
                    "first and last): server percentiles per window, bounded on a long run; "
                    "null: 10 s, or a 30th of a shorter run (never more often than interval)")
    resources: list[Resource] = Field(
        default_factory=lambda: list(DEFAULT_RESOURCES),
        description="resources to project; default: the demo shop's storage and rows")
    traffic: Traffic | None = Field(
        default_factory=Traffic,
        description="the shop's request counter and latency histogram, for `shop-loadtest "
                    "alerts`; default: the demo shop's")

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, value: list[str]) -> list[str]:
        for url in value:
            if not (url.startswith("/") or re.match(r"^https?://[^/\s]+", url)):
                raise ValueError(f"expected a URL or a path such as /metrics, got {url!r}")
        return value

    def urls(self, host: str) -> list[str]:
        return [u if u.startswith("http") else host.rstrip("/") + u for u in self.endpoints]

    def keeps(self, name: str) -> bool:
        return (any(fnmatch.fnmatchcase(name, p) for p in self.include)
                and not any(fnmatch.fnmatchcase(name, p) for p in self.exclude))

    def buckets_every_s(self, planned_s: float) -> float:
        """Seconds between the scrapes that keep buckets, for a run of `planned_s`."""
        if self.buckets_every is not None:
            return float(self.buckets_every)
        return max(min(10.0, planned_s / 30.0), float(self.interval))

    def bucket_families(self) -> list[str]:
        if self.buckets is not None:
            return list(self.buckets)
        latency = self.traffic.latency if self.traffic is not None else None
        return [latency.split("{")[0].strip()] if latency else []

    def keeps_bucket(self, name: str) -> bool:
        """A `_bucket` sample of a histogram whose buckets are kept (see `buckets`)."""
        if not name.endswith("_bucket"):
            return False
        family = name[: -len("_bucket")]
        return (any(fnmatch.fnmatchcase(family, p) for p in self.bucket_families())
                and any(fnmatch.fnmatchcase(name, p) for p in self.include))


def config_of(meta: dict[str, Any]) -> MonitorConfig | None:
    raw = meta.get("monitor")
    if not isinstance(raw, dict):
        return None
    try:
        return MonitorConfig.model_validate(raw)
    except ValueError:
        return None


# --- forecast: --------------------------------------------------------------------------------
Rate = Annotated[float, BeforeValidator(parse_rate),
                 WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}],
                                 "description": "per second, or 40/s, 2400/m, 9000/h"})]


class Forecast(Model):
    """The `forecast:` section: how long the campaign lasts and how busy it will be."""

    duration: Seconds = Field(gt=0, description="how long the campaign lasts, e.g. 4h")
    orders_per_hour: float | None = Field(
        default=None, gt=0, description="expected orders (units of the resources' `per` "
                                        "counter) per hour at the campaign's load")
    peak_rate: Rate | None = Field(
        default=None, gt=0, description="journeys started per second at the peak (the open "
                                        "model's unit); orders per journey are measured")

    @model_validator(mode="after")
    def _some_load(self) -> Forecast:
        if self.orders_per_hour is None and self.peak_rate is None:
            raise ValueError("give orders_per_hour, peak_rate, or both")
        return self


def forecast_of(meta: dict[str, Any]) -> Forecast | None:
    raw = meta.get("forecast")
    if not isinstance(raw, dict):
        return None
    try:
        return Forecast.model_validate(raw)
    except ValueError:
        return None


# --- plan: ------------------------------------------------------------------------------------
Percent = Annotated[float, BeforeValidator(parse_percent),
                    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}],
                                    "description": "a percentage such as 30%, or a fraction"})]


class FunnelStep(Model):
    journey: str = Field(description="a journey of the scenario")
    reach: Percent = Field(ge=0, le=1, description="share of visitors who get at least this "
                                                   "deep: browse 100%, cart 30%, checkout 8%")


class PlanConfig(Model):
    """The `plan:` section: forecast visitors and the funnel, in order of depth."""

    visitors_per_minute: float | None = Field(
        default=None, gt=0, description="forecast peak visitors per minute; default: the "
                                        "peak of the load shape (open model: visitors/s)")
    funnel: list[FunnelStep] = Field(min_length=1, description="browse -> cart -> checkout")
    think: Seconds | None = Field(
        default=None, description="mean pause between a visitor's pages; default: the "
                                  "think steps of each journey")
    response_time: Seconds = Field(default=0.2, ge=0, description="assumed per request, "
                                                                  "for session lengths")
    rps_per_worker: float | None = Field(default=None, gt=0,
                                         description="requests/s one load process sends")

    @field_validator("funnel")
    @classmethod
    def _deeper_is_smaller(cls, steps: list[FunnelStep]) -> list[FunnelStep]:
        for a, b in zip(steps, steps[1:], strict=False):
            if b.reach > a.reach:
                raise ValueError(f"reach cannot grow deeper in the funnel: {b.journey} "
                                 f"({b.reach:.0%}) after {a.journey} ({a.reach:.0%})")
        names = [s.journey for s in steps]
        if len(set(names)) != len(names):
            raise ValueError("each journey appears once in the funnel")
        return steps
