"""Show a scenario's shape before any traffic: a chart in the terminal and an image file.

Durations are shown in campaign time and in wall time (after time_scale and --speedup), so a
rehearsal's length is known before it starts.
"""

from __future__ import annotations

import math
from html import escape
from itertools import groupby
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
    """An SVG of the shape with its stages labelled (a polyline, written by hand: one picture
    does not need a plotting library)."""
    profile = scenario.profile(base)
    xs, ys = _samples(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_svg(scenario, profile, [x / 60.0 for x in xs], ys), encoding="utf-8")
    return path


W, H, LEFT, RIGHT, TOP, BOTTOM = 1000, 400, 70, 20, 50, 50  # px: the plot area inside margins


def _svg(scenario: Scenario, profile: Profile, xs: list[float], ys: list[float]) -> str:
    right, top = max(xs, default=1.0) or 1.0, (max(ys, default=1.0) or 1.0) * 1.15

    def px(x: float, y: float) -> str:
        return (f"{LEFT + x / right * (W - LEFT - RIGHT):.1f},"
                f"{H - BOTTOM - y / top * (H - TOP - BOTTOM):.1f}")

    def text(x: float, y: float, words: str, **attrs: str) -> str:
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(words)}</text>'

    line = " ".join(px(x, y) for x, y in zip(xs, ys, strict=True))
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for v in _ticks(top / 1.15):
        x0, y0 = px(0, v).split(",")
        out += [f'<line x1="{LEFT}" y1="{y0}" x2="{W - RIGHT}" y2="{y0}" stroke="#ddd"/>',
                text(float(x0) - 6, float(y0) + 4, f"{v:g}", text_anchor="end")]
    for m in _ticks(right):
        x0, y0 = px(m, 0).split(",")
        out.append(text(float(x0), float(y0) + 18, f"{m:g}", text_anchor="middle"))
    # One line and label per stage; a replay's many segments of one name are one stage.
    for name, run in groupby((s for s in profile.segments if s.duration > 0), lambda s: s.name):
        segs = list(run)
        start, end = segs[0].start, segs[-1].end
        x0, _ = px(start / 60.0, 0).split(",")
        mid, _ = px((start + end) / 120.0, 0).split(",")
        out += [f'<line x1="{x0}" y1="{TOP}" x2="{x0}" y2="{H - BOTTOM}" stroke="#bbb"/>',
                text(float(mid), TOP - 6, name, text_anchor="middle", fill="#444",
                     font_size="10")]
    out += [f'<polygon points="{px(0, 0)} {line} {px(xs[-1] if xs else 0, 0)}" '
            f'fill="#1f77b4" fill-opacity="0.15"/>',
            f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>',
            text(W / 2, H - 10, "campaign minutes", text_anchor="middle"),
            text(16, H / 2, _unit(scenario), text_anchor="middle",
                 transform=f"rotate(-90 16 {H / 2:.0f})"),
            text(W / 2, 20, f"{scenario.name} ({scenario.load.model})", text_anchor="middle",
                 font_size="15"),
            "</svg>"]
    return "\n".join(out) + "\n"


def _ticks(top: float, most: int = 8) -> list[float]:
    """Round tick values from 0 to `top`: steps of 1, 2 or 5 times a power of ten.

    >>> _ticks(13)
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    """
    if top <= 0:
        return [0.0]
    step = next(s * 10.0 ** e for e in range(math.floor(math.log10(top / most)), 99)
                for s in (1, 2, 5) if top / (s * 10.0 ** e) <= most)
    return [i * step for i in range(int(top / step + 1e-9) + 1)]
