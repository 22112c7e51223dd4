"""How the scrapes of the shop's metrics went, per endpoint: a monitor that never got a sample
must say so, not leave its charts and budgets silently empty."""

from __future__ import annotations

from typing import Any

from shop_loadtest.judge.model import Scrape
from shop_loadtest.results import RunData, rounded


def scrape_table(run: RunData) -> list[Scrape]:
    """Per scraped endpoint: scrapes that worked and failed, the last error and when."""
    mon = run.monitor
    if mon.empty:
        return []
    scrapes = mon.drop_duplicates(subset=["t", "endpoint"])
    out: list[Scrape] = []
    for endpoint, rows in scrapes.groupby("endpoint", sort=True):
        ok = rows["ok"].fillna(False).astype(bool)
        failed = rows[~ok]
        last = failed.iloc[-1] if len(failed) else None
        out.append({"endpoint": str(endpoint), "ok": int(ok.sum()), "failed": int((~ok).sum()),
                    "last_error": None if last is None else str(last["error"] or "failed"),
                    "last_error_t": None if last is None else rounded(last["t"]),
                    "first_failed": bool(len(rows) and not ok.iloc[0])})
    return out



def scrape_totals(run: RunData) -> dict[str, Any]:
    """capacity.json's `scrapes`: {scrapes, failed, last_error} over every endpoint."""
    rows = scrape_table(run)
    failed = [r for r in rows if r["failed"]]
    last = max(failed, key=lambda r: r["last_error_t"] or 0.0, default=None)
    return {"scrapes": sum(r["ok"] + r["failed"] for r in rows),
            "failed": sum(r["failed"] for r in rows),
            "last_error": last["last_error"] if last else None}
