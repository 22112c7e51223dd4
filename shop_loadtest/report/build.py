"""Build every output of a run from its folder: the one place the report stages are chained
(judge the run, then write what the judge found: report/ itself judges nothing)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Collection
from pathlib import Path

from shop_loadtest.judge.model import Summary
from shop_loadtest.judge.summary import judge_run, write_capacity
from shop_loadtest.report.html import render_html
from shop_loadtest.report.junit import render_junit
from shop_loadtest.report.markdown import render_markdown
from shop_loadtest.results import RunData, load_run, write_atomic
from shop_loadtest.safety.mask import env_secrets, mask, mask_data


def _write(path: Path, text: str, secrets: Collection[str] = ()) -> None:
    """Write atomically; every output passes the secret mask here, whatever it was built
    from."""
    write_atomic(path, mask(text, secrets))


def run_secrets(run_dir: Path) -> set[str]:
    """The secrets a run may have used: the values of the environment variables its
    scenario reads (`env.NAME`), where this process has them."""
    try:
        text = (Path(run_dir) / "scenario.yaml").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return env_secrets(text, os.environ)


def _mask_messages(run: RunData, secrets: set[str]) -> RunData:
    """The run with its failure messages masked before anything transforms them: the error
    table's normalising (`%40` -> `%{n}`) would otherwise break an encoded secret into a
    form the mask no longer knows, and keep its plain part (mask first, then transform)."""
    if not secrets:
        return run
    errors = run.errors
    if not errors.empty:
        errors = errors.assign(message=errors["message"].map(lambda m: mask(str(m), secrets)))
    samples = tuple({**s, "message": mask(str(s.get("message", "")), secrets)}
                    if "message" in s else s for s in run.error_samples)
    return dataclasses.replace(run, errors=errors, error_samples=samples)


def build_reports(run_dir: Path, *, tolerate_worker_loss: bool = False) -> Summary:
    """Judge the run in `run_dir` and write summary.json, report.html, junit.xml, summary.md.

    Returns the summary (the content of summary.json). Raises ResultsError when the folder
    or its run.json is missing, BudgetSyntaxError when run.json holds a bad budget.
    """
    run_dir = Path(run_dir)
    secrets = run_secrets(run_dir)
    run = _mask_messages(load_run(run_dir), secrets)
    summary = judge_run(run, tolerate_worker_loss=tolerate_worker_loss)
    summary["capacity"] = write_capacity(run_dir, run)
    summary = mask_data(summary, secrets)
    _write(run_dir / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n",
           secrets)
    _write(run_dir / "junit.xml", render_junit(summary), secrets)
    # The runner keeps the demo shop's database in the run's folder: that names the target.
    demo_shop = (run_dir / "demo-shop.sqlite").exists()
    _write(run_dir / "summary.md", render_markdown(summary, demo_shop=demo_shop), secrets)
    _write(run_dir / "report.html", render_html(run, summary), secrets)
    return summary  # type: ignore[no-any-return]
