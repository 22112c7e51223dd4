"""Compare a run with a baseline run: did any endpoint get clearly worse?

    comparison = compare_runs(load_run(base_dir), load_run(new_dir))
    comparison.verdict      # ok | regression | inconclusive
    write_comparison(base_dir, new_dir)  # compare.md and compare.html into new_dir

Four modules, re-exported here: `bootstrap` (whole-run figures and a circular block bootstrap
over intervals), `sides` (can each run be trusted: generator, machine, delivery, target),
`judging` (floors and the verdict; its docstring says when a figure has regressed) and
`outputs` (the console table, compare.md, compare.html from report/templates/compare.html.j2).
"""

from shop_loadtest.compare.bootstrap import (
    QUANTILES,
    RESAMPLES,
    Resampling,
    Sample,
    block_length,
)
from shop_loadtest.compare.judging import (
    ALL,
    GATING,
    METRICS,
    MIN_SLOTS,
    Comparison,
    Delta,
    Floors,
    compare_runs,
    format_change,
    format_p,
    judge,
)
from shop_loadtest.compare.outputs import (
    MAX_CHART_ENDPOINTS,
    STATUS_TEXT,
    render_html,
    render_markdown,
    terminal_table,
    write_comparison,
)
from shop_loadtest.compare.sides import Side, describe_delivery, target_kind

__all__ = [
    "ALL", "GATING", "MAX_CHART_ENDPOINTS", "METRICS", "MIN_SLOTS", "QUANTILES", "RESAMPLES",
    "STATUS_TEXT", "Comparison", "Delta", "Floors", "Resampling", "Sample", "Side",
    "block_length", "compare_runs", "describe_delivery", "format_change", "format_p", "judge",
    "render_html", "render_markdown", "target_kind", "terminal_table", "write_comparison",
]
