"""Scenario YAML -> a validated `Scenario`; errors name file:line:col and the field path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from shop_loadtest import limits
from shop_loadtest.errors import ScenarioError, ScenarioErrors, did_you_mean, dotted, shown
from shop_loadtest.scenario.load import _TEMPLATE_KINDS
from shop_loadtest.scenario.models import Scenario
from shop_loadtest.scenario.reading import Loc, Marks, locate, read_yaml
from shop_loadtest.scenario.semantics import check_scenario


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


def _clean_message(error: dict[str, Any]) -> str:
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


# The Tag()s of our discriminated unions (scenario/journey.py): never a key of the file.
_UNION_TAGS = {"<capture text>", "<capture spec>", "<think text>", "<think distribution>"}
# The labels pydantic puts in an error's path for the member of a union that was tried.
_MEMBER_LABEL = re.compile(r"^(str|int|float|bool|none|\[key\]|"
                           r"(function-\w+|list|dict|tuple|set|literal|constrained-\w+)\[.*\])$")
# Errors that only say "not this member of the union": another error at the place says more.
_MEMBER_MISMATCH = {"string_type", "float_type", "float_parsing", "int_type", "int_parsing",
                    "bool_type", "bool_parsing", "list_type", "dict_type", "model_type",
                    "model_attributes_type", "none_required", "is_instance_of"}


def _drop_tags(raw: Loc) -> Loc:
    """Drop pydantic's union tags and member labels (e.g. 'flash_sale', '<capture spec>',
    'str') so the path is the YAML's."""
    loc = tuple(p for i, p in enumerate(raw) if not (isinstance(p, str) and (
        p in _UNION_TAGS or _MEMBER_LABEL.match(p) is not None
        or (p in _TEMPLATE_KINDS and i > 0 and raw[i - 1] == "template"))))
    return loc or tuple(raw)


def _model_errors(exc: ValidationError, file: str, marks: Marks) -> list[ScenarioError]:
    """One error per place: a value that fits no member of a union gives one error per
    member, and a typo in a required key gives 'missing' beside 'unknown' (the typo wins)."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] in _MEMBER_MISMATCH)
    typo_parents = {_drop_tags(e["loc"])[:-1] for e in errors if e["type"] == "extra_forbidden"}
    out: list[ScenarioError] = []
    seen: set[Loc] = set()
    for error in errors:
        loc = _drop_tags(error["loc"])
        if loc in seen or (error["type"] == "missing" and loc[:-1] in typo_parents):
            continue
        seen.add(loc)
        out.append(_one_error(error, loc, file, marks))
    return out


def _one_error(error: Any, loc: Loc, file: str, marks: Marks) -> ScenarioError:
    msg = _clean_message(error)
    if error["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        options = [f.alias or n for n, f in parent.model_fields.items()] if parent else []
        msg = f"unknown field {shown(loc[-1])}{did_you_mean(str(loc[-1]), options)}"
    elif error["type"] == "missing":
        msg = f"missing required field {loc[-1]!r}"
        line, col = locate(marks, loc[:-1], key=False) or (None, None)
        return ScenarioError(msg, file=file, line=line, col=col, path=dotted(loc))
    elif error["type"] == "union_tag_invalid":
        tag = error.get("input", {}).get("kind") if isinstance(error.get("input"), dict) else None
        msg = f"unknown template kind {shown(tag)}{did_you_mean(str(tag), list(_TEMPLATE_KINDS))}"
    elif error["type"] == "finite_number":
        msg = "must be a finite number (not .nan or .inf)"
    line, col = locate(marks, loc, key=error["type"] == "extra_forbidden") or (None, None)
    return ScenarioError(msg, file=file, line=line, col=col, path=dotted(loc))


def load_scenario_text(text: str, file: str = "<scenario>", base: Path | None = None) -> Scenario:
    """Parse and validate scenario YAML text; raise ScenarioError(s) with every location.

    All errors of the file are raised together (`ScenarioErrors`, sorted by line): those of
    the YAML and the models first; the checks that need a whole scenario run when those pass.
    """
    doc = read_yaml(text, file)
    if not isinstance(doc.data, dict):
        raise ScenarioError("a scenario is a YAML mapping with name, load and journeys",
                            file=file, line=1, col=1)
    try:
        scenario = Scenario.model_validate(doc.data)
    except ValidationError as exc:
        raise _raise_all(doc.duplicates + _model_errors(exc, file, doc.marks)) from None
    except RecursionError:  # bounded by read_yaml's depth limit; kept as a last line of defence
        raise ScenarioError("the scenario nests too deeply", file=file) from None
    problems = doc.duplicates + check_scenario(scenario, file, doc.marks, base or Path("."))
    if problems:
        raise _raise_all(problems)
    return scenario


def _raise_all(errors: list[ScenarioError]) -> ScenarioError:
    return errors[0] if len(errors) == 1 else ScenarioErrors(errors)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(limits.MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError("no such file", file=path) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read the file: {exc.strerror or exc}", file=path) from None
    if len(raw) > limits.MAX_FILE_BYTES:
        raise ScenarioError(f"the file is larger than {limits.MAX_FILE_BYTES:,} bytes "
                            f"(docs/limits.md)", file=path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ScenarioError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", file=path,
                            line=line) from None
    return load_scenario_text(text, file=str(path), base=path.parent)
