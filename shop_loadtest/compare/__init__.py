"""Compare a run with a baseline run: did any endpoint get significantly worse?

    comparison = compare_runs(load_run(base_dir), load_run(new_dir))
    comparison.verdict      # ok | regression | inconclusive
    write_comparison(base_dir, new_dir)  # compare.md and compare.html into new_dir

Two modules, re-exported here: `judging` (per-second samples, the Mann-Whitney U test, the
verdict; its docstring says when a figure has regressed) and `outputs` (the console table,
compare.md, compare.html from report/templates/compare.html.j2, writing the files).
"""

from shop_loadtest.compare.judging import (
    ALL,
    ERROR_RATE_FLOOR,
    EXACT_LIMIT,
    GATING,
    METRICS,
    QUANTILES,
    Comparison,
    Delta,
    Series,
    compare_runs,
    endpoint_series,
    format_change,
    format_p,
    judge,
    significance,
)
from shop_loadtest.compare.outputs import (
    MAX_CHART_ENDPOINTS,
    STATUS_TEXT,
    render_html,
    render_markdown,
    terminal_table,
    write_comparison,
)

__all__ = [
    "ALL", "ERROR_RATE_FLOOR", "EXACT_LIMIT", "GATING", "MAX_CHART_ENDPOINTS", "METRICS",
    "QUANTILES", "STATUS_TEXT", "Comparison", "Delta", "Series", "compare_runs",
    "endpoint_series", "format_change", "format_p", "judge", "render_html", "render_markdown",
    "significance", "terminal_table", "write_comparison",
]
