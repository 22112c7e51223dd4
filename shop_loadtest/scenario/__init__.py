"""Scenario YAML -> a frozen, validated `Scenario`; errors name file:line:col and the field.

>>> s = load_scenario_text('''
... name: tiny
... load: {model: users, stages: [{duration: 10s, target: 5}]}
... journeys: [{name: home, steps: [{request: GET /}]}]
... ''')
>>> s.name, s.profile().duration
('tiny', 10.0)

One module per idea, re-exported here: `base` (the frozen, closed base model and shared field
types), `load` (the `load:` section: stages and templates), `journey` (journeys, steps,
captures, checks, think times), `models` (`Scenario` and its other sections, the JSON Schema)
and `loader` (reading YAML, with errors located in the file).
"""

from shop_loadtest.scenario.base import IDENT_RE, METHODS, NAME_RE, Model, OnFail, Seconds
from shop_loadtest.scenario.journey import (
    CaptureSpec,
    CaptureValue,
    Check,
    Expect,
    Journey,
    StatusList,
    Step,
    ThinkDistribution,
    ThinkValue,
    if_expression,
    parse_for,
    parse_repeat,
    parse_think,
)
from shop_loadtest.scenario.load import (
    EmailBlast,
    FlashSale,
    Load,
    Replay,
    Soak,
    Spike,
    Stage,
    StepTemplate,
    Template,
    Wave,
)
from shop_loadtest.scenario.loader import Loc, load_scenario, load_scenario_text
from shop_loadtest.scenario.models import (
    DataSource,
    DemoShopOptions,
    FakerOptions,
    Scenario,
    Target,
    scenario_json_schema,
)

__all__ = [
    "IDENT_RE",
    "METHODS",
    "NAME_RE",
    "CaptureSpec",
    "CaptureValue",
    "Check",
    "DataSource",
    "DemoShopOptions",
    "EmailBlast",
    "Expect",
    "FakerOptions",
    "FlashSale",
    "Journey",
    "Load",
    "Loc",
    "Model",
    "OnFail",
    "Replay",
    "Scenario",
    "Seconds",
    "Soak",
    "Spike",
    "Stage",
    "StatusList",
    "Step",
    "StepTemplate",
    "Target",
    "Template",
    "ThinkDistribution",
    "ThinkValue",
    "Wave",
    "load_scenario",
    "load_scenario_text",
    "if_expression",
    "parse_for",
    "parse_repeat",
    "parse_think",
    "scenario_json_schema",
]
