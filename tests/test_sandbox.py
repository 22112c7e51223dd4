"""The template sandbox: what validate refuses before compiling, what renders refuse."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError

from shop_loadtest.journeys import make_environment
from shop_loadtest.journeys.sandbox import Sandbox, template_problem


def problem(text: str) -> str | None:
    return template_problem(Sandbox().parse(text))


@pytest.mark.parametrize("text", [
    "{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}", "{{ x|attr('__class__') }}", "{{ x['__dict__'] }}",
    "{% for k in x._private %}{% endfor %}",
])
def test_private_names_are_refused_before_anything_runs(text):
    assert problem(text).startswith("unsafe attribute '_")


@pytest.mark.parametrize("text", [
    "{{ 9**(9**9) }}", "{{ (10**5)**(10**5) }}", "{{ 2 ** 4000 }}", "{{ -(7 ** 99999) }}",
    "{{ 'x' * 10**9 }}", "{{ [1, 2] * 10**7 }}", "{{ 10**9 * 'ab' }}",
])
def test_constant_expressions_too_costly_to_fold_are_refused(text):
    assert problem(text).startswith("the expression is too costly to compute")


@pytest.mark.parametrize("text", [
    "{{ 2 ** 10 }}", "{{ 10 ** 999 }}", "{{ 'ab' * 3 }}", "{{ random_int(1, 10) * 2 }}",
    "{{ x.items }}", "{{ x['name'] }}", "{{ 1 / 0 }}", "{{ 2 ** -5000 }}", "{{ 0.5 ** 1e9 }}",
    "{{ product_id ** 2 }}",
])
def test_ordinary_expressions_pass(text):
    assert problem(text) is None


def test_parsing_a_huge_power_does_not_fold_it():
    """Compiling `9**(9**9)` with plain Jinja computes it (minutes); the Sandbox never does."""
    template = Sandbox().from_string("{{ 9 ** (9 ** 9) }}")
    with pytest.raises(SecurityError, match="power of more than 1,000 digits"):
        template.render()


@pytest.mark.parametrize(("text", "context"), [
    ("{{ base ** exponent }}", {"base": 9, "exponent": 10**9}),
    ("{{ word * times }}", {"word": "ab", "times": 10**9}),
])
def test_renders_refuse_costly_operations_whose_operands_come_at_run_time(text, context):
    env = make_environment(seed=1)
    with pytest.raises(SecurityError):
        env.from_string(text).render(context)


def test_renders_still_compute_what_they_did():
    env = make_environment(seed=1)
    assert env.from_string("{{ 2 ** 10 }}-{{ 'ab' * 2 }}-{{ n * 3 }}").render(n=4) == \
        "1024-abab-12"
    assert isinstance(env, Sandbox)
