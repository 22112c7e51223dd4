"""Everything built after a run, from its results folder alone.

    build_reports(run_dir)  ->  summary.json, report.html, junit.xml, summary.md (+ the summary)
    terminal_summary(summary) -> the console table

The verdict rules live in `shop_loadtest.judge.verdict`.
"""

from shop_loadtest.report.build import build_reports
from shop_loadtest.report.terminal import terminal_summary

__all__ = ["build_reports", "terminal_summary"]
