"""The checks a request step makes of its response (`check:`), and the status lists they and
`expect:` take."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shop_loadtest.journeys.checks import JSON_TYPES
from shop_loadtest.scenario.base import JsonValue, Model, OnFail, Status


def _one_or_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


StatusList = Annotated[
    list[Status], BeforeValidator(_one_or_list),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}}],
                    "description": "a status code or a list of them"}),
]


JsonType = Literal["string", "number", "integer", "boolean", "array", "object", "null"]
assert set(JsonType.__args__) == set(JSON_TYPES)  # type: ignore[attr-defined]


class Check(Model):
    """One check of a response: `{status: 200}`, `{json: $.state, equals: paid}`,
    `{json: $.id, exists: true}`, `{json: $.id, type: integer}`, `{body_contains: "Order #"}`,
    `{body_not_contains: Traceback}`, `{header: Content-Type, contains: json}`,
    `{final_url: /cart}`, `{redirect_chain: [303, 200]}` or `{var: order_id, type: integer}`."""

    status: StatusList | None = None
    json_path: str | None = Field(default=None, alias="json")
    header: str | None = Field(default=None, description="a response header, by name (any "
                                                          "case); with equals, contains or exists")
    equals: JsonValue = None
    exists: bool | None = None
    contains: str | None = Field(default=None, description="text the header's value holds")
    type: Annotated[JsonType | list[JsonType] | None, WithJsonSchema({
        "anyOf": [{"enum": [*JSON_TYPES, None]},
                  {"type": "array", "items": {"enum": [*JSON_TYPES, None]}}],
        "description": "the JSON type(s) the value at json: must have (a bare null is "
                       "the type null)"})] = None
    body_contains: str | None = None
    body_not_contains: str | None = Field(default=None,
                                          description="text the body must not hold")
    final_url: str | None = Field(
        default=None, description="the URL the step ended at, after its redirects: a path "
                                  "(/cart, compared with the path, and the query if given) or "
                                  "a whole URL")
    redirect_chain: StatusList | None = Field(
        default=None, description="the status of each hop of the step, in order, the last "
                                  "one's included: [303, 200]")
    var: str | None = Field(
        default=None, description="a variable (a capture of this step or an earlier one, or a "
                                  "set: value); with equals, exists or type")
    on_fail: OnFail | None = Field(default=None, description="default: the step's on_fail")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("type", mode="before")
    @classmethod
    def _null(cls, value: Any) -> Any:
        """YAML reads a bare `null` as None: here it names the JSON type."""
        if value is None:
            return "null"
        return ["null" if v is None else v for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _one_kind(self) -> Check:
        subjects = ("status", "json", "header", "body_contains", "body_not_contains",
                    "final_url", "redirect_chain", "var")
        kinds = [k for k, v in zip(subjects, (
            self.status, self.json_path, self.header, self.body_contains,
            self.body_not_contains, self.final_url, self.redirect_chain, self.var), strict=True)
                 if v is not None]
        if len(kinds) != 1:
            raise ValueError("a check is one of {status: 200}, {json: $.path, equals: value | "
                             "exists: true | type: string}, {header: Name, equals: value | "
                             "contains: text | exists: true}, {body_contains: text}, "
                             "{body_not_contains: text}, {final_url: /path}, "
                             "{redirect_chain: [303, 200]} or {var: name, equals: value | "
                             "exists: true | type: integer}")
        has_equals = "equals" in self.model_fields_set
        predicates = [k for k, v in (("equals", has_equals or None), ("exists", self.exists),
                                     ("contains", self.contains), ("type", self.type))
                      if v is not None]
        allowed = {"json": {"equals", "exists", "type"}, "var": {"equals", "exists", "type"},
                   "header": {"equals", "exists", "contains"}}.get(kinds[0], set())
        if not allowed and predicates:
            raise ValueError(f"{', '.join(predicates)}: goes with json: $.path, header: Name or "
                             f"var: name, not with {kinds[0]}:")
        if allowed and len(predicates) != 1:
            raise ValueError(f"a {kinds[0]} check takes exactly one of "
                             f"{', '.join(p + ':' for p in sorted(allowed))}")
        if predicates and predicates[0] not in allowed:
            raise ValueError(f"{predicates[0]}: does not go with {kinds[0]}: (use one of "
                             f"{', '.join(p + ':' for p in sorted(allowed))})")
        return self
