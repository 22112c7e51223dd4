import xml.etree.ElementTree as ET
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
SVG = "{http://www.w3.org/2000/svg}"


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
    root = ET.fromstring(svg)
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "flash-sale (arrival_rate)" in labels and "journeys/s" in labels
    assert [n for n in labels if n in {"baseline", "blast", "peak", "decay"}] == [
        "baseline", "blast", "peak", "decay"]


def test_the_image_draws_the_shape_it_was_given(tmp_path):
    scenario = load_scenario_text(JUMP)
    root = ET.parse(write_image(scenario, Path("."), tmp_path / "jump.svg")).getroot()
    line = next(root.iter(f"{SVG}polyline")).get("points")
    points = [tuple(float(v) for v in p.split(",")) for p in line.split()]
    xs, ys = _samples(scenario.profile())
    assert len(points) == len(xs)
    # Pixels grow right with time and up with the value: the jump at 1 min is one x, two ys.
    at_jump = [y for (x, y), t in zip(points, xs, strict=True) if t == 60.0]
    assert len(at_jump) == 2 and at_jump[1] < at_jump[0]
    assert points[-1][0] > points[0][0] and min(p[1] for p in points) == at_jump[1]


@pytest.mark.parametrize("name", ["shape.svg", "shape.gif", "shape.png"])
def test_preview_command(tmp_path, name):
    result = cli("preview", "scenarios/flash-sale.yaml", "-o", str(tmp_path / name))
    if not name.endswith(".svg"):
        assert result.returncode == 2 and "use a .svg file name" in result.stderr
        assert not (tmp_path / name).exists()
    else:
        assert result.returncode == 0, result.stderr
        assert "total: 13m of campaign" in result.stdout
        assert (tmp_path / name).exists()
