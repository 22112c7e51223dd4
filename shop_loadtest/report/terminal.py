"""The compact plain-text summary printed on the console after a run."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from shop_loadtest.judge.budgets import format_value
from shop_loadtest.judge.model import Summary
from shop_loadtest.judge.verdict import ALLOWED_HOSTS_RULE, target_line

MAX_ENDPOINTS = 15
RESULT = {"pass": "PASS", "fail": "FAIL", "no_data": "NO DATA"}


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]],
               right: Collection[int] = ()) -> list[str]:
    """Lines of a plain-text table: a header, a rule, the rows; columns in `right` align right."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _cut(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def terminal_summary(summary: Summary) -> str:
    """Budgets (observed vs limit, PASS/FAIL), endpoints, and the verdict line."""
    ms = lambda v: format_value(v, "ms")  # noqa: E731
    out: list[str] = [target_line(summary), ""]
    rows = [[_cut(b["expr"], 60), format_value(b["observed"], b["unit"]),
             f"{b['op']} {format_value(b['limit'], b['unit'])}", RESULT[b["status"]]]
            for b in summary["budgets"]]
    refused = summary.get("refused")
    if refused:
        rows.append([f"{ALLOWED_HOSTS_RULE} (always on)", f"{refused['count']} refused",
                     "= 0 refused", "PASS" if refused["passed"] else "FAIL"])
    if rows:
        out += text_table(["budget", "observed", "limit", "result"], rows, right={1, 2})
        out.append("")
    endpoints = summary["endpoints"]
    if endpoints:
        rows = [[_cut(e["name"]), f"{e['requests']:,}", f"{e['failures']:,}", ms(e["p50_ms"]),
                 ms(e["p95_ms"]), ms(e["p99_ms"]), ms(e["max_ms"]), f"{e['rps']:.1f}"]
                for e in endpoints[:MAX_ENDPOINTS]]
        rows.append(["all endpoints", f"{summary['requests']:,}", f"{summary['failures']:,}",
                     ms(summary["latency"]["p50_ms"]), ms(summary["latency"]["p95_ms"]),
                     ms(summary["latency"]["p99_ms"]), ms(summary["latency"]["max_ms"]),
                     f"{summary['rps']:.1f}"])
        out += text_table(["endpoint", "requests", "failed", "p50", "p95", "p99", "max", "req/s"],
                      rows, right={1, 2, 3, 4, 5, 6, 7})
        if len(endpoints) > MAX_ENDPOINTS:
            out.append(f"... and {len(endpoints) - MAX_ENDPOINTS} more endpoints in report.html")
        out.append("")
    arrivals = summary.get("arrivals")
    if arrivals and arrivals.get("late_p50_ms") is not None:
        out += [f"arrivals: {arrivals['due']:,} due, {arrivals['started']:,} started, "
                f"{arrivals['dropped']:,} dropped, {arrivals['late']:,} late (> 100 ms); "
                f"started late by p50 {ms(arrivals['late_p50_ms'])}, p95 "
                f"{ms(arrivals['late_p95_ms'])}, p99 {ms(arrivals['late_p99_ms'])}, max "
                f"{ms(arrivals['late_max_ms'])}", ""]
    for export in summary.get("exports") or []:
        out.append(f"exported {export['rows']:,} rows to {export['file']}")
    if summary.get("exports"):
        out.append("")
    out.append(f"verdict: {summary['verdict'].upper()}")
    out += [f"  - {reason}" for reason in summary["reasons"]]
    return "\n".join(out)
