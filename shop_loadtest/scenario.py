"""Scenario YAML -> a frozen, validated `Scenario`; errors name file:line:col and the field.

>>> s = load_scenario_text('''
... name: tiny
... load: {model: users, stages: [{duration: 10s, target: 5}]}
... journeys: [{name: home, steps: [{request: GET /}]}]
... ''')
>>> s.name, s.profile().duration
('tiny', 10.0)
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shop_loadtest import shapes
from shop_loadtest.errors import BudgetSyntaxError, ScenarioError
from shop_loadtest.monitor import MonitorConfig
from shop_loadtest.plan import PlanConfig
from shop_loadtest.runway import Forecast
from shop_loadtest.units import parse_duration

# Friendly units are validated by our parsers; the JSON Schema says what editors should accept.
_DURATION_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0},
                              {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d)?)+$"}],
                    "description": "seconds, or a duration such as 90s, 1m30s, 400ms"}
Seconds = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
OnFail = Literal["continue", "end_journey"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DemoShopOptions(Model):
    storage_limit_mb: float | None = Field(
        default=None, gt=0, description="cap its database (MB = 10^6 bytes): checkout then "
                                        "fails as on a full disk")


class Target(Model):
    host: str | None = None
    allowed_hosts: list[str] = Field(default_factory=list)
    health_path: str = "/"
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


class Stage(Model):
    name: str | None = None
    duration: Seconds
    target: float = Field(ge=0)


class FlashSale(Model):
    kind: Literal["flash_sale"]
    baseline: float = Field(ge=0)
    peak: float = Field(ge=0)
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
    baseline: float = Field(ge=0)
    peak: float | None = Field(default=None, ge=0)
    multiplier: float | None = Field(default=None, gt=0)
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
    start: float = Field(ge=0)
    step: float = Field(gt=0)
    every: Seconds = Field(gt=0)
    until: float = Field(ge=0)

    def expand(self, base: Path) -> list[shapes.StageSpec]:
        return shapes.step_load(start=self.start, step=self.step, every=self.every,
                                until=self.until)


class Spike(Model):
    kind: Literal["spike"]
    baseline: float = Field(ge=0)
    peak: float = Field(ge=0)
    at: Seconds = 60.0
    rise: Seconds = 10.0
    hold: Seconds = 60.0
    after: Seconds = 60.0

    def expand(self, base: Path) -> list[shapes.StageSpec]:
        return shapes.spike(baseline=self.baseline, peak=self.peak, at=self.at, rise=self.rise,
                            hold=self.hold, after=self.after)


class Soak(Model):
    kind: Literal["soak"]
    target: float = Field(ge=0)
    ramp: Seconds = 60.0
    duration: Seconds = 3600.0

    def expand(self, base: Path) -> list[shapes.StageSpec]:
        return shapes.soak(target=self.target, ramp=self.ramp, duration=self.duration)


class Wave(Model):
    kind: Literal["wave"]
    low: float = Field(ge=0)
    high: float = Field(ge=0)
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
    multiplier: float = Field(default=1.0, gt=0)
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


class Load(Model):
    model: Literal["users", "arrival_rate"] = "users"
    stages: list[Stage] | None = None
    template: Template | None = None
    time_scale: float = Field(default=1.0, gt=0)
    arrivals: Literal["even", "poisson"] = "even"
    max_users: int = Field(default=2000, gt=0)
    max_lateness: Seconds = Field(default=1.0, gt=0)
    spawn_rate: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_shape(self) -> Load:
        if (self.stages is None) == (self.template is None):
            raise ValueError("give either stages or template")
        if self.stages is not None and not self.stages:
            raise ValueError("stages is empty: give at least one stage")
        return self


def _one_or_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


StatusList = Annotated[
    list[int], BeforeValidator(_one_or_list),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}}],
                    "description": "a status code or a list of them"}),
]


class Expect(Model):
    status: StatusList | None = None


class CaptureSpec(Model):
    """The long form of a capture: `{from: "css:a.product@href", pick: random}`."""

    from_: str = Field(alias="from", description="kind:expression, as in the short form")
    pick: Literal["first", "random", "all"] = Field(
        default="first", description="first match, a random match, or all matches (a list)")
    default: Any = Field(default=None, description="value when nothing matches (no failure)")
    on_fail: OnFail | None = Field(default=None, description="default: the step's on_fail")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_CAPTURE_SCHEMA = {
    "type": "string", "pattern": "^(json|regex|header|cookie|css|form):",
    "description": "json:$.path, regex:pattern, header:Name, cookie:name, "
                   "css:selector[@attribute], form:field_name",
}


def _capture_tag(value: Any) -> str:
    return "<capture spec>" if isinstance(value, dict | CaptureSpec) else "<capture text>"


CaptureValue = Annotated[
    Union[Annotated[str, Tag("<capture text>"), WithJsonSchema(_CAPTURE_SCHEMA)],  # noqa: UP007
          Annotated[CaptureSpec, Tag("<capture spec>")]],
    Discriminator(_capture_tag),
]


class Check(Model):
    """One check of a response: `{status: 200}`, `{json: $.state, equals: paid}`,
    `{json: $.id, exists: true}` or `{body_contains: "Order #"}`."""

    status: StatusList | None = None
    json_path: str | None = Field(default=None, alias="json")
    equals: Any = None
    exists: bool | None = None
    body_contains: str | None = None
    on_fail: OnFail | None = Field(default=None, description="default: the step's on_fail")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_kind(self) -> Check:
        kinds = [k for k, v in (("status", self.status), ("json", self.json_path),
                                ("body_contains", self.body_contains)) if v is not None]
        if len(kinds) != 1:
            raise ValueError("a check is one of {status: 200}, {json: $.path, equals: value}, "
                             "{json: $.path, exists: true} or {body_contains: text}")
        has_equals = "equals" in self.model_fields_set
        if self.json_path is not None and has_equals == (self.exists is not None):
            raise ValueError("a json check takes exactly one of equals: or exists:")
        if self.json_path is None and (has_equals or self.exists is not None):
            raise ValueError("equals: and exists: go with json: $.path")
        return self


class ThinkDistribution(Model):
    """A random pause: `{exponential: 2s}` (mean 2 s) or `{normal: 2s, sd: 500ms}`,
    kept within `min` (default 0) and `max`."""

    exponential: Seconds | None = None
    normal: Seconds | None = None
    sd: Seconds | None = None
    min: Seconds = 0.0
    max: Seconds | None = None

    @model_validator(mode="after")
    def _one_distribution(self) -> ThinkDistribution:
        if (self.exponential is None) == (self.normal is None):
            raise ValueError("give one of exponential: MEAN or normal: MEAN (with sd:)")
        if self.normal is not None and self.sd is None:
            raise ValueError("a normal think time needs sd: (its standard deviation)")
        if self.exponential is not None and self.sd is not None:
            raise ValueError("sd: goes with normal:, not exponential:")
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max:g}s) is below min ({self.min:g}s)")
        return self


def _think_tag(value: Any) -> str:
    return "<think distribution>" if isinstance(value, dict | ThinkDistribution) else (
        "<think text>")


ThinkValue = Annotated[
    Union[Annotated[str | float, Tag("<think text>")],  # noqa: UP007
          Annotated[ThinkDistribution, Tag("<think distribution>")]],
    Discriminator(_think_tag),
]


class Step(Model):
    request: str | None = None
    name: str | None = None
    query: dict[str, Any] | None = None
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, Any] | None = None
    body: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    capture: dict[str, CaptureValue] = Field(default_factory=dict)
    check: list[Check] = Field(default_factory=list)
    expect: Expect | None = None
    follow_redirects: bool = True
    on_fail: OnFail = "end_journey"
    think: ThinkValue | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("request")
    @classmethod
    def _request_line(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = value.split(None, 1)
        if len(parts) != 2 or parts[0].upper() not in METHODS:
            raise ValueError(
                f"expected 'METHOD /path' with METHOD one of {', '.join(METHODS)}, got {value!r}"
            )
        if not parts[1].startswith(("/", "{{")):
            raise ValueError(f"the path must start with '/', got {parts[1]!r}")
        return f"{parts[0].upper()} {parts[1]}"

    @field_validator("think")
    @classmethod
    def _think(cls, value: Any) -> Any:
        if isinstance(value, str | int | float):
            parse_think(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        if (self.request is None) == (self.think is None):
            raise ValueError("a step is either a request (request: GET /path) or a think time")
        if self.think is not None and (self.name or self.capture or self.expect or self.check):
            raise ValueError("a think step takes no name, capture, check or expect")
        bodies = [b for b in (self.json_body, self.form, self.body) if b is not None]
        if len(bodies) > 1:
            raise ValueError("give at most one of json, form and body")
        return self

    @property
    def method(self) -> str:
        assert self.request is not None
        return self.request.split(None, 1)[0]

    @property
    def path(self) -> str:
        assert self.request is not None
        return self.request.split(None, 1)[1]

    @property
    def label(self) -> str:
        """The stats name: given, else the request line without its query string."""
        return self.name or f"{self.method} {self.path.split('?', 1)[0]}"


CAPTURE_KINDS = ("json", "regex", "header", "cookie", "css", "form")


def parse_think(value: str | float) -> tuple[float, float]:
    """`1s` -> (1, 1); `1s..3s` -> (1, 3): a pause drawn uniformly from the range."""
    if isinstance(value, str) and ".." in value:
        low, high = (parse_duration(v) for v in value.split("..", 1))
        if high < low:
            raise ValueError(f"think range {value!r} ends before it starts")
        return low, high
    seconds = parse_duration(value)
    return seconds, seconds


class Journey(Model):
    name: str
    weight: float = Field(default=1.0, gt=0)
    class_: str | None = Field(
        default=None, alias="class",
        description="a hand-written Locust user class, path.py:ClassName (relative to the "
                    "scenario file), run beside the generated ones; closed model only")
    on_start: list[Step] = Field(default_factory=list,
                                 description="steps run once per user, before its first journey")
    steps: list[Step] = Field(default_factory=list)
    on_stop: list[Step] = Field(default_factory=list,
                                description="steps run once per user, when it stops")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"journey names use letters, digits, _ . -; got {value!r}")
        return value

    @field_validator("class_")
    @classmethod
    def _class(cls, value: str | None) -> str | None:
        if value is not None:
            path, _, name = value.rpartition(":")
            if not path.endswith(".py") or not IDENT_RE.match(name):
                raise ValueError(f"expected path/to/file.py:ClassName, got {value!r}")
        return value

    @model_validator(mode="after")
    def _steps_or_class(self) -> Journey:
        if self.class_ is not None:
            if self.steps or self.on_start or self.on_stop:
                raise ValueError("a journey with class: takes no steps, on_start or on_stop "
                                 "(the class brings its own tasks)")
        elif not self.steps:
            raise ValueError("a journey needs steps (or class: path.py:ClassName)")
        return self


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


# --- Loading with locations ------------------------------------------------------------------

Loc = tuple[str | int, ...]


def _marks(node: yaml.Node, path: Loc, out: dict[Loc, tuple[int, int]]) -> None:
    """Record where each value (and each mapping key, under path + (key, '<key>')) starts."""
    out[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key, "<key>")] = (key_node.start_mark.line + 1,
                                          key_node.start_mark.column + 1)
            _marks(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _marks(item, (*path, i), out)


def _locate(marks: dict[Loc, tuple[int, int]], loc: Loc, key: bool) -> tuple[int, int] | None:
    if key and (*loc, "<key>") in marks:
        return marks[(*loc, "<key>")]
    for end in range(len(loc), -1, -1):
        if loc[:end] in marks:
            return marks[loc[:end]]
    return None


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class whose fields live at `loc` (for 'did you mean' on unknown fields)."""
    annotation: Any = Scenario
    for part in loc:
        annotation = _step_into(annotation, part)
        if annotation is None:
            return None
    return _first_model(annotation)


def _flatten(annotation: Any) -> list[Any]:
    """Annotated[X, ...] -> [X]; X | Y -> [X, Y]; anything else -> [it]."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _flatten(get_args(annotation)[0])
    if origin is Union or type(annotation).__name__ == "UnionType":
        return [a for arg in get_args(annotation) for a in _flatten(arg)]
    return [annotation]


def _step_into(annotation: Any, part: str | int) -> Any:
    for cand in _flatten(annotation):
        origin = get_origin(cand)
        if isinstance(part, int) and origin is list:
            return get_args(cand)[0]
        if isinstance(part, str) and origin is dict:
            return get_args(cand)[1]
        if isinstance(part, str) and isinstance(cand, type) and issubclass(cand, BaseModel):
            fields = cand.model_fields
            by_alias = {f.alias or n: f for n, f in fields.items()}
            field = by_alias.get(part) or fields.get(part)
            if field is not None:
                return field.annotation
    return None


def _first_model(annotation: Any) -> Any:
    for cand in _flatten(annotation):
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            return cand
    return None


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)


def _clean_message(error: dict[str, Any]) -> str:
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def _pick_error(errors: list[Any]) -> Any:
    """The first error, except that an unknown key beats a missing one beside it (a typo in a
    required key gives both, and the typo is what to show)."""
    first = errors[0]
    if first["type"] == "missing":
        for other in errors[1:]:
            if other["type"] == "extra_forbidden" and other["loc"][:-1] == first["loc"][:-1]:
                return other
    return first


def _first_error(exc: ValidationError, file: str,
                 marks: dict[Loc, tuple[int, int]]) -> ScenarioError:
    error = _pick_error(exc.errors())
    # Drop pydantic's union tags (e.g. 'flash_sale', '<capture spec>') so the path is the YAML's.
    raw = error["loc"]
    loc = tuple(p for i, p in enumerate(raw) if not (isinstance(p, str) and (
        p.startswith("<") or (p in _TEMPLATE_KINDS and i > 0 and raw[i - 1] == "template"))))
    msg = _clean_message(error)
    if error["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        options = [f.alias or n for n, f in parent.model_fields.items()] if parent else []
        msg = f"unknown field {loc[-1]!r}{_suggest(str(loc[-1]), options)}"
    elif error["type"] == "missing":
        msg = f"missing required field {loc[-1]!r}"
        where = _locate(marks, loc[:-1], key=False)
        line, col = where or (None, None)
        return ScenarioError(msg, file=file, line=line, col=col, path=_dotted(loc))
    elif error["type"] == "union_tag_invalid":
        tag = error.get("input", {}).get("kind") if isinstance(error.get("input"), dict) else None
        msg = f"unknown template kind {tag!r}{_suggest(str(tag), list(_TEMPLATE_KINDS))}"
    where = _locate(marks, loc, key=error["type"] == "extra_forbidden")
    line, col = where or (None, None)
    return ScenarioError(msg, file=file, line=line, col=col, path=_dotted(loc))


_TEMPLATE_KINDS = ("flash_sale", "email_blast", "step", "spike", "soak", "wave", "replay")


def load_scenario_text(text: str, file: str = "<scenario>", base: Path | None = None) -> Scenario:
    """Parse and validate scenario YAML text; raise ScenarioError with its location."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        raise ScenarioError(
            f"YAML syntax error: {problem}",
            file=file,
            line=mark.line + 1 if mark else None,
            col=mark.column + 1 if mark else None,
        ) from None
    if not isinstance(data, dict):
        raise ScenarioError("a scenario is a YAML mapping with name, load and journeys",
                            file=file, line=1, col=1)
    marks: dict[Loc, tuple[int, int]] = {}
    if root is not None:
        _marks(root, (), marks)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, file, marks) from None
    _check_semantics(scenario, file, marks, base or Path("."))
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("no such file", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read the file: {exc}", file=path) from None
    return load_scenario_text(text, file=str(path), base=path.parent)


def _check_semantics(scenario: Scenario, file: str, marks: dict[Loc, tuple[int, int]],
                     base: Path) -> None:
    """Checks that need the whole scenario: budgets parse, templates parse, captures in order."""
    from shop_loadtest import budgets, journeys  # budgets and journeys import this module

    def fail(msg: str, loc: Loc) -> ScenarioError:
        line, col = _locate(marks, loc, key=False) or (None, None)
        return ScenarioError(msg, file=file, line=line, col=col, path=_dotted(loc))

    parsed = []
    for field, parse in (("budgets", budgets.parse_budget), ("abort", budgets.parse_abort)):
        for i, expr in enumerate(getattr(scenario, field)):
            try:
                parsed.append(((field, i), parse(expr)))
            except BudgetSyntaxError as exc:
                raise fail(str(exc), (field, i)) from None
    try:
        stage_names = sorted({name for name, _, _ in scenario.stage_specs(base)})
    except (OSError, ValueError) as exc:
        raise fail(str(exc), ("load", "template")) from None
    # A budget `during` a stage that does not exist would only show at report time, as no data.
    for loc, rule in parsed:
        stage = getattr(rule, "stage", None)
        if stage is not None and stage not in stage_names:
            raise fail(f"no stage named {stage!r}{_suggest(stage, stage_names)}; stages: "
                       f"{', '.join(stage_names)}", loc)
    for problem in journeys.check_journeys(scenario, base):
        raise fail(problem.message, problem.loc)


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of the scenario format, for editors (yaml-language-server) and tools.

    Friendly units (`90s`, `1%`) are accepted as strings or numbers, as the loader does.
    """
    schema = Scenario.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "shop-loadtest scenario"
    return schema
