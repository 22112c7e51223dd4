"""Show a scenario's shape before any traffic: a chart in the terminal and an image file.

Durations are shown in campaign time and in wall time (after time_scale and --speedup), so a
rehearsal's length is known before it starts.
"""

from __future__ import annotations

from pathlib import Path

from shop_loadtest.scenario import Scenario
from shop_loadtest.scenario.units import format_duration
from shop_loadtest.shapes import Profile

POINTS = 400


def _samples(profile: Profile) -> tuple[list[float], list[float]]:
    """The shape sampled at its corners and evenly between them (exact at every stage edge)."""
    times = {0.0, profile.duration}
    for seg in profile.segments:
        times.update((seg.start, seg.end))
    step = profile.duration / POINTS if profile.duration else 1.0
    times.update(i * step for i in range(POINTS + 1))
    xs = sorted(t for t in times if t <= profile.duration)
    # At a jump the value changes at one instant: show both sides of it.
    out_x: list[float] = []
    out_y: list[float] = []
    for t in xs:
        before = profile.value(t - 1e-9) if t > 0 else 0.0
        after = profile.value(t) if t < profile.duration else before
        if abs(before - after) > 1e-9 and t > 0:
            out_x.append(t)
            out_y.append(before)
        out_x.append(t)
        out_y.append(after)
    return out_x, out_y


def _unit(scenario: Scenario) -> str:
    return "journeys/s" if scenario.load.model == "arrival_rate" else "users"


def stage_table(scenario: Scenario, base: Path, speedup: float) -> list[str]:
    """One line per stage: name, campaign time, wall time, from -> to."""
    campaign = scenario.profile(base)
    wall = scenario.profile(base, speedup)
    lines = []
    for seg, fast in zip(campaign.segments, wall.segments, strict=True):
        if seg.duration <= 0:
            continue
        wall_time = format_duration(fast.duration)
        lines.append(f"{seg.name:<16} {format_duration(seg.start):>8} "
                     f"+{format_duration(seg.duration):<8} wall +{wall_time:<8}"
                     f" {seg.start_value:g} -> {seg.end_value:g} {_unit(scenario)}")
    lines.append(f"total: {format_duration(campaign.duration)} of campaign, "
                 f"{format_duration(wall.duration)} of wall time; peak {campaign.peak():g} "
                 f"{_unit(scenario)}; {campaign.total():,.0f} journeys"
                 if scenario.load.model == "arrival_rate" else
                 f"total: {format_duration(campaign.duration)} of campaign, "
                 f"{format_duration(wall.duration)} of wall time; peak {campaign.peak():g} users")
    return lines


def terminal_chart(scenario: Scenario, base: Path, width: int = 100, height: int = 20) -> str:
    import plotext as plt

    profile = scenario.profile(base)
    xs, ys = _samples(profile)
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    plt.plot([x / 60.0 for x in xs], ys, marker="braille")
    plt.title(f"{scenario.name}: {_unit(scenario)} over campaign minutes")
    plt.xlabel("minutes")
    for seg in profile.segments:
        if seg.duration > 0:
            plt.vline(seg.start / 60.0)
    return str(plt.build())


def write_image(scenario: Scenario, base: Path, path: Path) -> Path:
    """An SVG or PNG (by the file's suffix) of the shape with its stages labelled."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    profile = scenario.profile(base)
    xs, ys = _samples(profile)
    fig, ax = plt.subplots(figsize=(10, 4))
    try:
        ax.plot([x / 60.0 for x in xs], ys, color="#1f77b4")
        ax.fill_between([x / 60.0 for x in xs], ys, alpha=0.15, color="#1f77b4")
        top = max(ys, default=1.0) or 1.0
        for seg in profile.segments:
            if seg.duration <= 0:
                continue
            ax.axvline(seg.start / 60.0, color="#bbb", linewidth=0.8)
            ax.text((seg.start + seg.duration / 2) / 60.0, top * 1.04, seg.name, ha="center",
                    fontsize=8, color="#444")
        ax.set_ylim(0, top * 1.15)
        ax.set_xlabel("campaign minutes")
        ax.set_ylabel(_unit(scenario))
        ax.set_title(f"{scenario.name} ({scenario.load.model})")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
