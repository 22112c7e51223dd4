"""Scenario YAML -> a validated `Scenario`; errors name file:line:col and the field path."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from shop_loadtest.errors import BudgetSyntaxError, ScenarioError
from shop_loadtest.scenario.load import _TEMPLATE_KINDS
from shop_loadtest.scenario.models import Scenario

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
    # Deferred: checks brings jinja2 with it, and plain model use needs neither.
    from shop_loadtest.scenario import budgets, checks

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
    for problem in checks.check_journeys(scenario, base):
        raise fail(problem.message, problem.loc)

