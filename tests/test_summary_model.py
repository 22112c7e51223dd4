"""The typed summary (judge/model.py) and summary.schema.json describe the same JSON: the same
keys at every level, required where the schema requires them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from shop_loadtest.judge import model

SCHEMA = json.loads((Path(model.__file__).parent.parent / "schemas"
                     / "summary.schema.json").read_text())


def _object(node: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema behind a property: followed through $ref, anyOf/oneOf and arrays."""
    if "$ref" in node:
        return _object(SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]])
    for key in ("anyOf", "oneOf"):
        for option in node.get(key, []):
            found = _object(option)
            if found is not None:
                return found
    if node.get("type") == "array":
        return _object(node.get("items", {}))
    return node if "properties" in node else None


def _typed(hint: Any) -> Any:
    """The TypedDict inside a hint such as `list[Endpoint]` or `Latency | None`."""
    if is_typeddict(hint):
        return hint
    for arg in get_args(hint):
        found = _typed(arg)
        if found is not None:
            return found
    return None if get_origin(hint) is None else None


def _pairs(typed: Any, schema: dict[str, Any], path: str) -> list[tuple[str, Any, dict]]:
    out = [(path, typed, schema)]
    hints = get_type_hints(typed)
    for key, node in schema["properties"].items():
        inner, child = _object(node), _typed(hints.get(key))
        if inner is not None and child is not None:
            out += _pairs(child, inner, f"{path}.{key}")
    return out


PAIRS = _pairs(model.Summary, SCHEMA, "summary")


def test_every_object_of_the_schema_with_properties_has_its_typed_dict():
    assert len(PAIRS) >= 20, [p for p, _, _ in PAIRS]


@pytest.mark.parametrize(("path", "typed", "schema"), PAIRS, ids=[p for p, _, _ in PAIRS])
def test_the_typed_keys_are_the_schemas_keys(path, typed, schema):
    assert set(get_type_hints(typed)) == set(schema["properties"]), path
    required = set(schema.get("required", []))
    assert typed.__required_keys__ >= required, (path, required - typed.__required_keys__)
