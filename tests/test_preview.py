from pathlib import Path

import pytest

from shop_loadtest.report.preview import _samples, stage_table, terminal_chart, write_image
from shop_loadtest.scenario import load_scenario, load_scenario_text
from tests.conftest import ROOT, cli

JUMP = """
name: jumpy
load:
  model: users
  stages:
    - {name: warm, duration: 1m, target: 10}
    - {name: spike, duration: 0s, target: 50}
    - {name: hold, duration: 2m, target: 50}
journeys: [{name: a, steps: [{request: GET /}]}]
"""


def test_samples_show_both_sides_of_a_jump():
    profile = load_scenario_text(JUMP).profile()
    xs, ys = _samples(profile)
    at_jump = [y for x, y in zip(xs, ys, strict=True) if x == 60.0]
    assert at_jump == pytest.approx([10.0, 50.0])
    assert max(ys) == 50.0 and ys[0] == 0.0


def test_stage_table_gives_campaign_and_wall_time():
    lines = stage_table(load_scenario_text(JUMP), Path("."), speedup=10)
    assert lines[0].split()[:4] == ["warm", "0s", "+1m", "wall"]
    assert "+6s" in lines[0]
    assert lines[-1].startswith("total: 3m of campaign, 18s of wall time; peak 50 users")


def test_terminal_chart_and_images(tmp_path):
    scenario = load_scenario(ROOT / "scenarios/flash-sale.yaml")
    chart = terminal_chart(scenario, ROOT / "scenarios", width=80, height=15)
    assert "flash-sale" in chart and len(chart.splitlines()) >= 10
    svg = write_image(scenario, ROOT / "scenarios", tmp_path / "s.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    png = write_image(scenario, ROOT / "scenarios", tmp_path / "s.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["shape.svg", "shape.gif"])
def test_preview_command(tmp_path, name):
    result = cli("preview", "scenarios/flash-sale.yaml", "-o", str(tmp_path / name))
    if name.endswith(".gif"):
        assert result.returncode == 2 and "use a .svg or .png" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert "total: 13m of campaign" in result.stdout
        assert (tmp_path / name).exists()
