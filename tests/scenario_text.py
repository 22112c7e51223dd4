"""Scenario text for the language tests: one journey of given steps, and the one-line error a
bad scenario gives."""

from __future__ import annotations

import pytest

from shop_loadtest.errors import ScenarioError
from shop_loadtest.scenario import load_scenario_text

HEAD = "name: t\nload: {model: users, stages: [{duration: 10s, target: 1}]}\n"


def journey_text(steps: str) -> str:
    """A scenario whose one journey has `steps`; the first step is on line 6."""
    return HEAD + "journeys:\n  - name: j\n    steps:\n" + steps


def scenario_error(text: str) -> str:
    """The error `text` gives as s.yaml (it must give one)."""
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, file="s.yaml")
    return str(info.value)
