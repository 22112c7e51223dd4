"""The journey language: journeys, their steps, captures, checks and think times."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shop_loadtest import limits
from shop_loadtest.errors import shown
from shop_loadtest.journeys.steps import MAX_REPEAT
from shop_loadtest.scenario.base import (
    IDENT_RE,
    METHODS,
    NAME_RE,
    Headers,
    JsonValue,
    Model,
    Name,
    OnFail,
    Seconds,
    Status,
    check_name,
    control_problem,
)
from shop_loadtest.scenario.exports import ExportSpec
from shop_loadtest.scenario.units import parse_duration


def _one_or_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


StatusList = Annotated[
    list[Status], BeforeValidator(_one_or_list),
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
    default: JsonValue = Field(default=None,
                               description="value when nothing matches (no failure)")
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
    equals: JsonValue = None
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
    repeat: int | str | None = Field(
        default=None, description=f"run `steps` N times, or N..M times (drawn per journey "
                                  f"run); 1 <= N <= M <= {MAX_REPEAT}")
    steps: list[Step] | None = Field(default=None, description="the steps a repeat runs")
    if_: str | None = Field(
        default=None, alias="if",
        description="run this request or set: step only when the expression (over variables "
                    "and captures; with or without {{ }}) is true; else skip it")
    set_: dict[str, Any] | None = Field(
        default=None, alias="set",
        description="assign variables from templates, in order, for the journey's later steps "
                    "(reset with its captures each run unless session: keep)")
    export: ExportSpec | None = Field(
        default=None, description="write a row of captured values to a CSV file of the run "
                                  "folder (exports/FILE): what a run created, to clean it up")
    name: Name | None = None
    query: dict[str, JsonValue] | None = None
    json_body: JsonValue = Field(default=None, alias="json")
    form: dict[str, JsonValue] | None = None
    body: str | None = None
    headers: Headers = Field(default_factory=dict)
    capture: dict[str, CaptureValue] = Field(default_factory=dict)
    check: list[Check] = Field(default_factory=list)
    expect: Expect | None = None
    follow_redirects: bool = True
    timeout: Seconds | None = Field(
        default=None, gt=0, description="give up on this request after this long (a failed "
                                        "request of kind timeout); default: target.timeout")
    on_fail: OnFail = "end_journey"
    think: ThinkValue | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("request")
    @classmethod
    def _request_line(cls, value: str | None) -> str | None:
        if value is None:
            return value
        problem = control_problem(value, "the request line")
        if problem:
            raise ValueError(problem)
        parts = value.split(None, 1)
        if len(parts) != 2 or parts[0].upper() not in METHODS:
            raise ValueError(f"expected 'METHOD /path' with METHOD one of {', '.join(METHODS)}, "
                             f"got {shown(value)}")
        if not parts[1].startswith(("/", "{{")):
            raise ValueError(f"the path must start with '/', got {shown(parts[1])}")
        if parts[1].startswith("//"):
            raise ValueError(f"the path must start with a single '/' ('//name/...' names "
                             f"another host), got {shown(parts[1])}")
        return f"{parts[0].upper()} {parts[1]}"

    @field_validator("repeat")
    @classmethod
    def _repeat(cls, value: Any) -> Any:
        if value is not None:
            parse_repeat(value)
        return value

    @field_validator("think")
    @classmethod
    def _think(cls, value: Any) -> Any:
        if isinstance(value, str | int | float):
            parse_think(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k, v in (("request", self.request), ("think", self.think),
                                ("set", self.set_), ("repeat", self.repeat),
                                ("export", self.export)) if v is not None]
        if len(kinds) != 1:
            raise ValueError("a step is one of a request (request: GET /path), a think time "
                             "(think: 1s), an assignment (set: {name: value}), a loop "
                             "(repeat: N, steps: [...]) or an export (export: {file: x.csv, "
                             "values: [name]})")
        if self.if_ is not None and (self.think is not None or self.repeat is not None):
            raise ValueError("if: goes on a request or set: step (not on think or repeat)")
        if self.if_ is not None and not if_expression(self.if_):
            raise ValueError("if: needs an expression, e.g. if: \"stock > 0\"")
        if self.repeat is not None:
            if self.model_fields_set - {"repeat", "steps"}:
                raise ValueError("a repeat step takes only repeat: and steps: (give the "
                                 "requests inside steps:)")
            if not self.steps:
                raise ValueError("repeat: needs steps: (the steps to run again)")
            if any(s.repeat is not None for s in self.steps):
                raise ValueError("a repeat block cannot hold another repeat")
        elif self.steps is not None:
            raise ValueError("steps: goes with repeat: N")
        if self.set_ == {}:
            raise ValueError("set: needs at least one name: value")
        if self.set_ is not None and (self.model_fields_set - {"set_", "if_"}):
            raise ValueError("a set step takes nothing else (put the request in a step "
                             "of its own)")
        if self.export is not None and (self.model_fields_set - {"export", "if_"}):
            raise ValueError("an export step takes only export: (and if:); put the request "
                             "in a step of its own before it")
        if self.think is not None and (self.name or self.capture or self.expect or self.check
                                       or self.timeout is not None):
            raise ValueError("a think step takes no name, capture, check, expect or timeout")
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


def if_expression(text: str) -> str:
    """The expression of an `if:`: `"{{ stock > 0 }}"` and `"stock > 0"` are the same."""
    text = text.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2].strip()
    return text


def parse_repeat(value: int | str) -> tuple[int, int]:
    """`3` -> (3, 3); `"3..6"` -> (3, 6): a count drawn uniformly per journey run."""
    text = str(value).strip()
    low_text, sep, high_text = text.partition("..")
    try:
        low = int(low_text)
        high = int(high_text) if sep else low
    except ValueError:
        raise ValueError(f"expected a count N or a range N..M, got {value!r}") from None
    if isinstance(value, bool) or not 1 <= low <= high <= MAX_REPEAT:
        raise ValueError(f"repeat counts go from 1 to {MAX_REPEAT} (low first), got {value!r}")
    return low, high


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
    weight: float = Field(default=1.0, gt=0, le=limits.MAX_WEIGHT)
    class_: str | None = Field(
        default=None, alias="class",
        description="a hand-written Locust user class, path.py:ClassName (relative to the "
                    "scenario file), run beside the generated ones; in the open model each "
                    "arrival calls one of its methods (method:)")
    method: str | None = Field(
        default=None, description="with class: the method to run (the only task of the "
                                  "user); default: the class's one @task, else journey()")
    on_start: list[Step] = Field(default_factory=list,
                                 description="steps run once per user, before its first journey")
    steps: list[Step] = Field(default_factory=list)
    on_stop: list[Step] = Field(default_factory=list,
                                description="steps run once per user, when it stops")
    session: Literal["fresh", "keep"] = Field(
        default="fresh",
        description="fresh: each run of the journey is a new visitor (empty cookie jar, no "
                    "captures from earlier runs; what on_start left is restored); keep: the "
                    "user's cookies and captures carry on across its runs of the journey")
    on_fail_pause: Seconds | None = Field(
        default=None, description="after a failure ends the journey, wait at least this long "
                                  "before the next one (default: the journey's remaining "
                                  "think times)")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        check_name(value, "a journey name")
        if not NAME_RE.match(value):
            raise ValueError(f"journey names use letters, digits, _ . -; got {shown(value)}")
        return value

    @field_validator("class_")
    @classmethod
    def _class(cls, value: str | None) -> str | None:
        if value is not None:
            path, _, name = value.rpartition(":")
            if not path.endswith(".py") or not IDENT_RE.match(name) or control_problem(path, ""):
                raise ValueError(f"expected path/to/file.py:ClassName, got {shown(value)}")
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str | None) -> str | None:
        if value is not None and (not IDENT_RE.match(value) or value.startswith("_")):
            raise ValueError(f"a method name (letters, digits, _; not private), got "
                             f"{shown(value)}")
        return value

    @model_validator(mode="after")
    def _steps_or_class(self) -> Journey:
        if self.method is not None and self.class_ is None:
            raise ValueError("method: goes with class: path.py:ClassName (the method of a "
                             "hand-written user class to run)")
        if self.class_ is not None:
            if self.steps or self.on_start or self.on_stop:
                raise ValueError("a journey with class: takes no steps, on_start or on_stop "
                                 "(the class brings its own tasks)")
            if "session" in self.model_fields_set or self.on_fail_pause is not None:
                raise ValueError("a journey with class: takes no session or on_fail_pause "
                                 "(the class manages its own session and pacing)")
        elif not self.steps:
            raise ValueError("a journey needs steps (or class: path.py:ClassName)")
        return self
