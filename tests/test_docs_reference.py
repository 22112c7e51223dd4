"""docs/scenario-reference.md documents every field of the scenario file: each field of every
model a scenario is made of is named in that model's section (issue 18)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from shop_loadtest.scenario import Scenario

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "scenario-reference.md"

# model -> the section (heading) of the reference that documents its fields; a model the
# scenario grows without a section here fails the test below until it has one.
SECTIONS = {
    "Scenario": "The whole file",
    "Target": "target", "DemoShopOptions": "target",
    "Load": "load", "Stage": "load", "FlashSale": "load", "EmailBlast": "load",
    "StepTemplate": "load", "Spike": "load", "Soak": "load", "Wave": "load", "Replay": "load",
    "DataSource": "data", "FakerOptions": "faker",
    "Journey": "journeys", "Step": "journeys", "ExportSpec": "journeys",
    "CaptureSpec": "journeys", "Check": "journeys", "ThinkDistribution": "journeys",
    "Expect": "journeys", "RetrySpec": "journeys",  # RetrySpec: branch h18a
    "MonitorConfig": "monitor", "Resource": "monitor", "Traffic": "monitor",
    "Forecast": "forecast", "PlanConfig": "plan", "FunnelStep": "plan",
}


def _models(model: type[BaseModel], seen: dict[str, type[BaseModel]]) -> dict[str, type[BaseModel]]:
    """`model` and every model its fields hold, however nested (lists, unions, Annotated)."""
    if model.__name__ in seen:
        return seen
    seen[model.__name__] = model

    def walk(annotation: object) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _models(annotation, seen)
        for arg in typing.get_args(annotation):
            walk(arg)

    for field in model.model_fields.values():
        walk(field.annotation)
    return seen


def _section(text: str, heading: str) -> str:
    """The text under `## heading` (or `###`), its subsections included."""
    match = re.search(rf"^(#+) {re.escape(heading)}\n", text, re.MULTILINE)
    assert match, f"the reference has no section {heading!r}"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(text, match.end())
    return text[match.end():end.start() if end else len(text)]


def test_every_field_of_every_scenario_model_is_in_its_section_of_the_reference():
    text = REFERENCE.read_text()
    models = _models(Scenario, {})
    assert sorted(set(models) - set(SECTIONS)) == [], "add a section for these models"
    missing = []
    for name, model in models.items():
        section = _section(text, SECTIONS[name])
        for field_name, field in model.model_fields.items():
            key = field.alias or field_name
            if f"`{key}`" not in section and not re.search(rf"\b{re.escape(key)}:", section):
                missing.append(f"{name}.{key} (section {SECTIONS[name]!r})")
    assert missing == []


def test_the_reference_gives_the_stage_names_of_every_template_and_the_units():
    from shop_loadtest.scenario.load import _TEMPLATE_KINDS

    load = _section(REFERENCE.read_text(), "load")
    for kind in _TEMPLATE_KINDS:
        assert re.search(rf"^\| `{kind}` \| `", load, re.MULTILINE), kind
    load = " ".join(load.split())
    assert "flash_sale's `hold` is the stage `peak`" in load
    assert "hidden stage `open`" in load
    assert "*journeys started per second*" in load and "*requests* per second" in load
