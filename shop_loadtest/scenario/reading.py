"""Scenario text -> plain data, with YAML's dangerous corners closed off.

PyYAML's safe loader is safe against code execution, not against size: a 1 KB "billion laughs"
file expands to 10^9 values, `&a [1, *a]` is a list that contains itself, 5,000 nested `[` blow
Python's recursion limit, and a repeated key silently keeps the last value. `read_yaml` refuses
all of them with a located error, before anything expands:

1. characters YAML cannot hold (a NUL byte) are found with their line and column;
2. a pass over the parser's events bounds the nesting depth (no recursion, no tree yet);
3. the composed node graph is walked once, memoised, to bound what aliases expand to and to
   find an alias that contains itself;
4. the constructor records every duplicate key, with the line of the first one.

>>> read_yaml("a: 1\\nb: [x, y]\\n", "s.yaml").data
{'a': 1, 'b': ['x', 'y']}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from shop_loadtest import limits
from shop_loadtest.errors import ScenarioError

Loc = tuple[str | int, ...]
Marks = dict[Loc, tuple[int, int]]

# What YAML 1.1 (and PyYAML's Reader) allows in a stream; anything else is refused by name.
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd"
                            "\U00010000-\U0010ffff]")
_MERGE_TAG = "tag:yaml.org,2002:merge"
# libyaml when PyYAML was built with it: the same safe loader, ten times faster.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Document:
    """The data of a YAML document, where each value starts, and duplicate-key errors."""

    data: Any
    marks: Marks
    duplicates: list[ScenarioError] = field(default_factory=list)


def locate(marks: Marks, loc: Loc, key: bool) -> tuple[int, int] | None:
    """Where `loc` starts (its key, with `key`), else its nearest located parent."""
    if key and (*loc, "<key>") in marks:
        return marks[(*loc, "<key>")]
    for end in range(len(loc), -1, -1):
        if loc[:end] in marks:
            return marks[loc[:end]]
    return None


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _check_characters(text: str, file: str) -> None:
    found = _NOT_PRINTABLE.search(text)
    if found:
        char = found.group()
        what = "a NUL byte" if char == "\x00" else f"the control character U+{ord(char):04X}"
        line, col = _position(text, found.start())
        raise ScenarioError(f"{what} cannot appear in a scenario file (write it as an escape, "
                            f"e.g. \"\\x{ord(char):02x}\", inside a double-quoted string)",
                            file=file, line=line, col=col)


def _check_depth(text: str, file: str) -> None:
    """Bound the nesting before composing: PyYAML's composer recurses once per level."""
    depth = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limits.MAX_DEPTH:
                mark = event.start_mark
                raise ScenarioError(f"YAML nests deeper than {limits.MAX_DEPTH} levels "
                                    f"(docs/limits.md)", file=file,
                                    line=mark.line + 1 if mark else None,
                                    col=mark.column + 1 if mark else None)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Bound the values aliases expand to, and the depth they reach; refuse self-reference."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded values, height)
    active: set[int] = set()

    def fail(message: str, node: yaml.Node) -> ScenarioError:
        mark = node.start_mark
        return ScenarioError(message, file=file, line=mark.line + 1, col=mark.column + 1)

    def walk(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in active:
            raise fail("a recursive alias: this value contains itself", node)
        known = sizes.get(key)
        if known is None:
            active.add(key)
            size, height = 1, 0
            children: list[yaml.Node] = []
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            for child in children:
                if depth + 1 > limits.MAX_DEPTH:
                    raise fail(f"YAML nests deeper than {limits.MAX_DEPTH} levels once "
                               f"aliases are followed (docs/limits.md)", child)
                child_size, child_height = walk(child, depth + 1)
                size += child_size
                height = max(height, child_height + 1)
                if size > limits.MAX_NODES:
                    break
            active.discard(key)
            known = sizes[key] = (size, height)
        if depth + known[1] > limits.MAX_DEPTH:
            raise fail(f"YAML nests deeper than {limits.MAX_DEPTH} levels once aliases are "
                       f"followed (docs/limits.md)", node)
        if known[0] > limits.MAX_NODES:
            raise fail(f"aliases expand to more than {limits.MAX_NODES:,} values "
                       f"(docs/limits.md); is this a YAML bomb?", node)
        return known

    walk(root, 0)


def record_marks(node: yaml.Node, path: Loc, out: Marks) -> None:
    """Where each value (and each mapping key, under path + (key, '<key>')) starts."""
    out.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            if not isinstance(key, str):  # a complex key: its parts have no path of their own
                continue
            out.setdefault((*path, key, "<key>"), (key_node.start_mark.line + 1,
                                                   key_node.start_mark.column + 1))
            record_marks(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            record_marks(item, (*path, i), out)


def _node_paths(node: yaml.Node, path: Loc, out: dict[int, Loc]) -> None:
    out.setdefault(id(node), path)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node.value, str):
                _node_paths(value_node, (*path, key_node.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_paths(item, (*path, i), out)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """The safe loader, noting duplicate keys instead of letting the last one win."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.duplicates: list[ScenarioError] = []
        self.paths: dict[int, Loc] = {}

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """PyYAML raises plain exceptions for some scalars (an int past Python's 4,300-digit
        limit, a timestamp with month 13, `!!timestamp` on text that is not one: an
        AttributeError): give them the node's position."""
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:
            tag = str(node.tag).rsplit(":", 1)[-1]
            why = str(exc)[:120] if isinstance(exc, ValueError) else f"not a valid {tag}"
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value ({why})", node.start_mark) from None

    def construct_yaml_int(self, node: yaml.Node) -> int:
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > limits.MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {digits:,} digits; at most {limits.MAX_INT_DIGITS:,} "
                f"are read (docs/limits.md)", node.start_mark)
        return super().construct_yaml_int(node)  # type: ignore[no-any-return]

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    mark = key_node.start_mark
                    where = ".".join(str(p) for p in self.paths.get(id(node), ()))
                    self.duplicates.append(ScenarioError(
                        f"duplicate key {str(key)[:60]!r} (first at line {seen[key]}); a "
                        f"repeated key would silently replace the first",
                        file=self.file, line=mark.line + 1, col=mark.column + 1, path=where))
                else:
                    seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def read_yaml(text: str, file: str) -> Document:
    """Parse scenario text within the limits of docs/limits.md; ScenarioError otherwise."""
    if len(text.encode("utf-8", errors="replace")) > limits.MAX_FILE_BYTES:
        raise ScenarioError(f"the file is larger than {limits.MAX_FILE_BYTES:,} bytes "
                            f"(docs/limits.md)", file=file)
    _check_characters(text, file)
    loader = _Loader(text, file)
    try:
        _check_depth(text, file)
        root = loader.get_single_node()
        marks: Marks = {}
        if root is None:
            return Document(None, marks)
        _check_expansion(root, file)
        record_marks(root, (), marks)
        _node_paths(root, (), loader.paths)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = f"YAML syntax error: {exc.problem or 'invalid YAML'}"
        if isinstance(exc, yaml.constructor.ConstructorError):
            problem = f"YAML value error: {exc.problem}"
        if "nesting depth" in problem:  # libyaml's own bound (1,000) met before ours
            problem = f"YAML nests deeper than {limits.MAX_DEPTH} levels (docs/limits.md)"
        raise ScenarioError(problem, file=file,
                            line=mark.line + 1 if mark else None,
                            col=mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:  # a reader or emitter error carries no mark
        raise ScenarioError(f"YAML error: {str(exc).splitlines()[0]}", file=file) from None
    finally:
        loader.dispose()
    return Document(data, marks, loader.duplicates)
