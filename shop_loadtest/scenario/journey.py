"""The journey language: journeys, their steps, captures and think times (checks of a
response: `response_checks`)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
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
from shop_loadtest.journeys.flow import MAX_FOR_ITEMS, MAX_RETRY
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
    check_name,
    control_problem,
)
from shop_loadtest.scenario.exports import ExportSpec
from shop_loadtest.scenario.response_checks import Check, StatusList
from shop_loadtest.scenario.units import parse_duration


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


class RetrySpec(Model):
    """`retry: {times: 3, until: "response.status == 201", think: 500ms}` on a request step."""

    times: int = Field(ge=2, le=MAX_RETRY, description=f"tries in all, the first included "
                                                        f"(2 to {MAX_RETRY})")
    until: str | None = Field(
        default=None, description="try again while this is false (over the step's captures and "
                                  "`response`: response.status, response.json(), "
                                  "response.header('Name'), response.text), as well as while "
                                  "the request fails")
    think: str | float | None = Field(
        default=None, description="the pause between tries (1s, or 1s..3s); default: the think "
                                  "step right after the request, else 1s")

    @field_validator("think")
    @classmethod
    def _think(cls, value: Any) -> Any:
        if value is not None:
            parse_think(value)
        return value

    @field_validator("until")
    @classmethod
    def _until(cls, value: str | None) -> str | None:
        if value is not None and not if_expression(value):
            raise ValueError("until: needs an expression, e.g. until: \"response.status == 201\"")
        return value


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
    for_: str | None = Field(
        default=None, alias="for",
        description=f"`item in list`: run `steps` once per item of the list (a capture with "
                    f"pick: all, or any expression giving a list; at most {MAX_FOR_ITEMS} "
                    f"items), `item` holding it")
    steps: list[Step] | None = Field(default=None,
                                     description="the steps a repeat, for or if block runs")
    if_: str | None = Field(
        default=None, alias="if",
        description="run this request or set: step (or the block of steps: given with it) only "
                    "when the expression (over variables and captures; with or without {{ }}) "
                    "is true; else skip it")
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
    on_fail_pause: Seconds | None = Field(
        default=None, ge=0, description="when this request fails and ends the journey, wait at "
                                        "least this long before the user's next run (over the "
                                        "journey's on_fail_pause and the think times left)")
    think: ThinkValue | None = None
    retry: RetrySpec | None = Field(
        default=None, description=f"send the request again (at most {MAX_RETRY} tries) while "
                                  "it fails or `until` is false; each try is a request")

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

    @field_validator("for_")
    @classmethod
    def _for(cls, value: str | None) -> str | None:
        if value is not None:
            parse_for(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        is_block = self.steps is not None and self.repeat is None and self.for_ is None
        kinds = [k for k, v in (("request", self.request), ("think", self.think),
                                ("set", self.set_), ("repeat", self.repeat), ("for", self.for_),
                                ("if", self.if_ if is_block else None),
                                ("export", self.export)) if v is not None]
        if is_block and self.if_ is None:
            raise ValueError("steps: goes with repeat: N, for: item in list or if: expression")
        if len(kinds) != 1:
            raise ValueError("a step is one of a request (request: GET /path), a think time "
                             "(think: 1s), an assignment (set: {name: value}), a loop "
                             "(repeat: N or for: item in list, with steps: [...]), a "
                             "conditional block (if: expression, steps: [...]) or an export "
                             "(export: {file: x.csv, values: [name]})")
        if self.if_ is not None and kinds[0] in ("think", "repeat", "for"):
            raise ValueError(f"if: goes on a request, a set: step or a block of steps: (not on "
                             f"{kinds[0]}; put the {kinds[0]} step inside an if block)")
        if self.if_ is not None and not if_expression(self.if_):
            raise ValueError("if: needs an expression, e.g. if: \"stock > 0\"")
        if self.retry is not None and self.request is None:
            raise ValueError("retry: goes on a request step")
        if self.on_fail_pause is not None and (self.request is None
                                               or self.on_fail == "continue"):
            raise ValueError("on_fail_pause goes on a request step whose failure ends the "
                             "journey (not with on_fail: continue)")
        if kinds[0] in ("repeat", "for", "if") and self.steps is not None:
            word = "if" if kinds[0] == "if" else kinds[0]
            extra = self.model_fields_set - {"repeat", "for_", "if_", "steps"}
            if extra or (word != "if" and self.if_ is not None):
                raise ValueError(f"a {word} step takes only {word}: and steps: (give the "
                                 "requests inside steps:)")
            if not self.steps:
                raise ValueError(f"{word}: needs steps: (the steps to run)")
            if word != "if" and any(_holds_loop(s) for s in self.steps):
                raise ValueError(f"a {word} block cannot hold another repeat or for loop")
        elif kinds[0] in ("repeat", "for"):
            raise ValueError(f"{kinds[0]}: needs steps: (the steps to run)")
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


def _holds_loop(step: Step) -> bool:
    if step.repeat is not None or step.for_ is not None:
        return True
    return step.steps is not None and any(_holds_loop(s) for s in step.steps)


_FOR_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(\S.*?)\s*$", re.S)


def parse_for(text: str) -> tuple[str, str]:
    """`"item in ids"` -> ('item', 'ids'): the loop variable and the list's expression (with
    or without {{ }})."""
    found = _FOR_RE.match(text)
    if found is None:
        raise ValueError(f"expected `name in list` (for: product in product_ids), got "
                         f"{shown(text)}")
    source = if_expression(found.group(2))
    if not source:
        raise ValueError(f"for: needs a list after `in`, got {shown(text)}")
    return found.group(1), source


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
