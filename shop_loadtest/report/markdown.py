"""summary.md: verdict, budgets and endpoints in GitHub Markdown, fit for $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import re
from typing import Any

from shop_loadtest.judge.budgets import format_value
from shop_loadtest.judge.verdict import ALLOWED_HOSTS_RULE
from shop_loadtest.safety.text import terminal_safe

ICON = {"pass": "✅", "fail": "❌", "inconclusive": "⚠️"}
RESULT = {"pass": "✅ pass", "fail": "❌ FAIL", "no_data": "⚠️ no data"}


def md(text: Any) -> str:
    """Text that Markdown and GitHub's HTML renderer show as it is."""
    escaped = re.sub(r"([\\`*_\[\]|#<>~])", r"\\\1", terminal_safe(str(text)))
    return escaped.replace("\n", " ")


def render_markdown(summary: dict[str, Any]) -> str:
    ms = lambda v: format_value(v, "ms")  # noqa: E731
    lines = [f"## {ICON[summary['verdict']]} {md(summary['scenario'])}: "
             f"{summary['verdict'].upper()}", ""]
    lines += [f"- {md(reason)}" for reason in summary["reasons"]]
    lines += ["", f"{summary['requests']:,} requests, {summary['failures']:,} failed "
              f"({format_value(summary['error_rate'], 'ratio')}), {summary['rps']:.1f} req/s "
              f"over {summary['duration_s']:g} s; p95 {ms(summary['latency']['p95_ms'])}, "
              f"p99 {ms(summary['latency']['p99_ms'])}.", ""]
    capacity = summary.get("capacity") or {}
    if capacity.get("headlines"):
        lines += ["**Capacity at the forecast**", ""]
        lines += [f"- {md(line)}" for line in capacity["headlines"]] + [""]
    refused = summary.get("refused")
    if summary["budgets"] or refused:
        lines += ["| Budget | Observed | Limit | Result |", "| --- | ---: | ---: | --- |"]
        for b in summary["budgets"]:
            lines.append(f"| {md(b['expr'])} | {format_value(b['observed'], b['unit'])} | "
                         f"{md(b['op'])} {format_value(b['limit'], b['unit'])} | "
                         f"{RESULT[b['status']]} |")
        if refused:
            lines.append(f"| {ALLOWED_HOSTS_RULE} (always on) | {refused['count']} refused | "
                         f"= 0 refused | {RESULT['pass' if refused['passed'] else 'fail']} |")
        lines.append("")
    if summary["endpoints"]:
        lines += ["| Endpoint | Requests | Failures | p50 | p95 | p99 | max | req/s |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for e in summary["endpoints"]:
            lines.append(f"| {md(e['name'])} | {e['requests']:,} | {e['failures']:,} | "
                         f"{ms(e['p50_ms'])} | {ms(e['p95_ms'])} | {ms(e['p99_ms'])} | "
                         f"{ms(e['max_ms'])} | {e['rps']:.1f} |")
        lines.append("")
    return "\n".join(lines)
