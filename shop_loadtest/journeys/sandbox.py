"""The Jinja2 sandbox templates run in, and the static check `validate` makes of each one.

Jinja's sandbox refuses `''.__class__.__mro__` when a template renders, which is at run time,
under load. `template_problem` finds the same attempts in the parsed template, so `validate`
says so first. Jinja also folds constant expressions while it compiles: `{{ 9**(9**9) }}`
computes a number of 370 million digits before anything renders, and `{{ "x" * 10**10 }}` a
10 GB string. `Sandbox` intercepts `**` and `*`, which turns off their folding, and refuses
at render time a power or a repetition past docs/limits.md; `template_problem` refuses the
constant ones at validate time.

>>> template_problem(Sandbox().parse("{{ 9 ** (9 ** 9) }}"))
'the expression is too costly to compute: a power of more than 1,000 digits'
"""

from __future__ import annotations

import math
import operator
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from shop_loadtest import limits

_SEQUENCE = (str, list, tuple, bytes)


def _power_digits(base: Any, exponent: Any) -> float:
    """Decimal digits of `base ** exponent` for numbers (0 when it is small or fractional, or
    when either is not a number: Python raises for those, or they are not known yet)."""
    numbers = (int, float)
    if not (isinstance(base, numbers) and isinstance(exponent, numbers)) or isinstance(
            base, bool) or isinstance(exponent, bool):
        return 0.0
    try:
        magnitude = abs(float(base))
        power = float(exponent)
    except (TypeError, ValueError, OverflowError):
        return math.inf
    if magnitude in (0.0, 1.0) or power <= 0:
        return 0.0
    return power * math.log10(magnitude)


def _repeat_length(left: Any, right: Any) -> int:
    """Length of `left * right` when it repeats a sequence, else 0."""
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, _SEQUENCE) and isinstance(times, int) and not isinstance(times, bool):
            return len(seq) * max(times, 0)
    return 0


class Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, plus bounds on `**` and on `*` repeating a string or a list."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**" and _power_digits(left, right) > limits.MAX_POWER_DIGITS:
            raise SecurityError(f"a power of more than {limits.MAX_POWER_DIGITS:,} digits is "
                                f"refused")
        if operator_ == "*" and _repeat_length(left, right) > limits.MAX_REPEAT:
            raise SecurityError(f"a repetition longer than {limits.MAX_REPEAT:,} is refused")
        return {"**": operator.pow, "*": operator.mul}[operator_](left, right)


# Arithmetic that `_constant` follows; anything else is not a constant for this check.
_ARITHMETIC = {nodes.Add: operator.add, nodes.Sub: operator.sub, nodes.Mul: None,
               nodes.Div: operator.truediv, nodes.FloorDiv: operator.floordiv,
               nodes.Mod: operator.mod, nodes.Pow: None}


class _TooCostly(Exception):
    pass


def _constant(node: nodes.Node) -> Any:
    """The value of a constant arithmetic expression, computed only within the limits;
    _TooCostly when it is not; None when it is not a constant."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):  # only its length matters here
        return [None] * len(node.items)
    if isinstance(node, nodes.Neg | nodes.Pos):
        value = _constant(node.node)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value if isinstance(node, nodes.Neg) else value
        return None
    kind = type(node)
    if kind not in _ARITHMETIC:
        return None
    left, right = _constant(node.left), _constant(node.right)  # type: ignore[attr-defined]
    if kind is nodes.Pow and _power_digits(left, right) > limits.MAX_POWER_DIGITS:
        raise _TooCostly(f"a power of more than {limits.MAX_POWER_DIGITS:,} digits")
    if kind is nodes.Mul and _repeat_length(left, right) > limits.MAX_REPEAT:
        raise _TooCostly(f"a repetition longer than {limits.MAX_REPEAT:,}")
    if left is None or right is None:
        # A power whose exponent is not known yet is bounded at render time by the Sandbox.
        return None
    func = _ARITHMETIC[kind] or (operator.pow if kind is nodes.Pow else operator.mul)
    try:
        return func(left, right)
    except Exception:  # 1 / 0, "a" - 1: not a constant; the template fails at render time
        return None


def _unsafe_name(node: nodes.Node) -> str | None:
    """The attribute or key `node` reads when the sandbox would refuse it (private names)."""
    name: Any = None
    if isinstance(node, nodes.Getattr):
        name = node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        name = node.arg.value
    elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args and isinstance(
            node.args[0], nodes.Const):
        name = node.args[0].value
    if isinstance(name, str) and name.startswith("_"):
        return name
    return None


def template_problem(ast: nodes.Template) -> str | None:
    """Why the sandbox would refuse this parsed template, or why it is too costly to compile;
    None when it is fine. Checked before anything compiles it."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name = _unsafe_name(node)
        if name is not None:
            return (f"unsafe attribute {name!r}: templates may not read names starting with _ "
                    f"(the sandbox refuses them)")
    for node in ast.find_all(nodes.BinExpr):
        try:
            _constant(node)
        except _TooCostly as exc:
            return f"the expression is too costly to compute: {exc}"
    return None
