"""summary.md for a pull request or $GITHUB_STEP_SUMMARY: what broke first, then why requests
failed, then the rest. A 10-endpoint run fits in under 40 lines.
"""

from __future__ import annotations

import re
from typing import Any

from shop_loadtest.judge.budgets import format_value
from shop_loadtest.judge.model import BudgetRow, ErrorRow, Summary
from shop_loadtest.judge.verdict import ALLOWED_HOSTS_RULE, target_line
from shop_loadtest.safety.text import terminal_safe

ICON = {"pass": "✅", "fail": "❌", "inconclusive": "⚠️"}
RESULT = {"pass": "✅ pass", "fail": "❌ FAIL", "no_data": "⚠️ no data"}
MAX_REASONS = 4
MAX_ERRORS = 5
MAX_ENDPOINTS = 12
SAID_CHARS = 100


def md(text: Any) -> str:
    """Text that Markdown and GitHub's HTML renderer show as it is."""
    escaped = re.sub(r"([\\`*_\[\]|#<>~])", r"\\\1", terminal_safe(str(text)))
    return escaped.replace("\n", " ")


def target_label(summary: Summary, demo_shop: bool = False) -> str:
    """`demo shop` when the run's target was the bundled demo shop, else its host."""
    if demo_shop:
        return "demo shop"
    target = summary.get("target")
    if isinstance(target, dict) and str(target.get("kind") or "").startswith("demo"):
        return "demo shop"
    return str(summary.get("host") or "host unknown")


def duration_text(seconds: float | None) -> str:
    """`45 s`, `12m30s`, `4h05m`."""
    if seconds is None:
        return "n/a"
    s = int(round(seconds))
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def headline(summary: Summary, demo_shop: bool = False) -> str:
    """Target, speedup, duration (campaign time under a speedup) and generator health."""
    speedup = summary.get("speedup") or 1.0
    duration = duration_text(summary.get("duration_s"))
    if speedup != 1.0:
        campaign = duration_text((summary.get("duration_s") or 0.0) * speedup)
        timing = f"speedup {speedup:g}x, {duration} wall = {campaign} of campaign"
    else:
        timing = f"no speedup, {duration}"
    health = "generator healthy" if (summary.get("generator") or {}).get("healthy") \
        else "generator UNHEALTHY"
    return f"{target_label(summary, demo_shop)} · {timing} · {health}"


def projected_budgets(summary: Summary) -> list[str]:
    """The budgets judged on a projection to the real campaign (cumulative resources under
    a speedup)."""
    return [b["expr"] for b in summary.get("budgets") or []
            if "projected to the real campaign" in str(b.get("note") or "")]


def _budget_rows(budgets: list[BudgetRow]) -> list[str]:
    lines = ["| Budget | Observed | Limit | Result |", "| --- | ---: | ---: | --- |"]
    for b in budgets:
        lines.append(f"| {md(b['expr'])} | {format_value(b['observed'], b['unit'])} | "
                     f"{md(b['op'])} {format_value(b['limit'], b['unit'])} | "
                     f"{RESULT[b['status']]} |")
    return lines + [""]


def _said(error: ErrorRow) -> str:
    samples = error.get("samples") or []
    if not samples:
        return ""
    first = samples[0]
    body = str(first.get("body") or "")
    body = body if len(body) <= SAID_CHARS else body[: SAID_CHARS - 1] + "…"
    return f"{first.get('method')} {first.get('path')} → {first.get('status') or '-'}: {body}"


def _errors(summary: Summary) -> list[str]:
    errors = summary.get("errors") or []
    if not errors:
        return []
    sampled = any(e.get("samples") for e in errors[:MAX_ERRORS])
    lines = [f"#### Errors ({summary['failures']:,} failed requests)",
             "| Endpoint | Kind | Message | Count |" + (" A response |" if sampled else ""),
             "| --- | --- | --- | ---: |" + (" --- |" if sampled else "")]
    for e in errors[:MAX_ERRORS]:
        lines.append(f"| {md(e['endpoint'])} | {md(e['kind'])} | {md(e['message'])} | "
                     f"{e['count']:,} |" + (f" {md(_said(e))} |" if sampled else ""))
    if len(errors) > MAX_ERRORS:
        lines.append(f"\n{len(errors) - MAX_ERRORS} more error groups in report.html.")
    return lines + [""]


def render_markdown(summary: Summary, *, demo_shop: bool = False) -> str:
    """`demo_shop`: the runner started the bundled demo shop for this run."""
    ms = lambda v: format_value(v, "ms")  # noqa: E731
    lines = [f"## {ICON[summary['verdict']]} {md(summary['scenario'])}: "
             f"{summary['verdict'].upper()} · {md(headline(summary, demo_shop))}", "",
             f"**{md(target_line(summary))}**", ""]
    projected = projected_budgets(summary)
    if projected:
        lines += [f"*Under --speedup {summary.get('speedup') or 1:g}, "
                  f"{md(', '.join(projected))}: judged on the projection to the real "
                  f"campaign (the growth measured, times the speedup).*", ""]
    failing = [b for b in summary["budgets"] if b["status"] != "pass"]
    held = [b for b in summary["budgets"] if b["status"] == "pass"]
    # a broken budget is in the table below: the reasons list says only what else there is
    reasons = [r for r in summary["reasons"]
               if not (failing and str(r).startswith("budget broke:"))]
    lines += [f"- {md(reason)}" for reason in reasons[:MAX_REASONS]]
    if len(reasons) > MAX_REASONS:
        lines.append(f"- and {len(reasons) - MAX_REASONS} more reasons in summary.json")
    if reasons:
        lines.append("")
    if failing:
        lines += ["#### Failing budgets", *_budget_rows(failing)]
    lines += _errors(summary)
    lines += [f"{summary['requests']:,} requests, {summary['failures']:,} failed "
              f"({format_value(summary['error_rate'], 'ratio')}), {summary['rps']:.1f} req/s; "
              f"p95 {ms(summary['latency']['p95_ms'])}, "
              f"p99 {ms(summary['latency']['p99_ms'])}.", ""]
    exports = summary.get("exports") or []
    if exports:
        lines += ["Exported (what the run created, to clean up): " + ", ".join(
            f"`{md(e['file'])}` ({e['rows']:,} rows)" for e in exports), ""]
    capacity = summary.get("capacity")
    if capacity and capacity["headlines"]:
        lines += ["#### Capacity at the forecast"]
        lines += [f"- {md(line)}" for line in capacity["headlines"]] + [""]
    if held and failing:  # what broke is the story; what held fits on one line
        lines += ["#### Budgets held", " · ".join(
            f"✅ {md(b['expr'])}: {format_value(b['observed'], b['unit'])}" for b in held), ""]
    elif held:
        lines += ["#### Budgets", *_budget_rows(held)]
    refused = summary.get("refused")
    if refused:
        lines += ["| Always-on rule | Observed | Limit | Result |", "| --- | ---: | ---: | --- |",
                  f"| {ALLOWED_HOSTS_RULE} (always on) | {refused['count']} refused | = 0 refused "
                  f"| {RESULT['pass' if refused['passed'] else 'fail']} |", ""]
    endpoints = summary["endpoints"]
    if endpoints:
        lines += ["#### Endpoints", "| Endpoint | Requests | Failed | p95 | p99 | req/s |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for e in endpoints[:MAX_ENDPOINTS]:
            lines.append(f"| {md(e['name'])} | {e['requests']:,} | {e['failures']:,} | "
                         f"{ms(e['p95_ms'])} | {ms(e['p99_ms'])} | {e['rps']:.1f} |")
        if len(endpoints) > MAX_ENDPOINTS:
            lines.append(f"\n{len(endpoints) - MAX_ENDPOINTS} more endpoints in report.html.")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
