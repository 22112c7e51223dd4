"""The export files of a run folder (`exports/*.csv`, written by `export:` steps): each file's
path in the folder and its row count, for the summary."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from shop_loadtest.journeys import EXPORTS_FOLDER


@dataclass(frozen=True)
class ExportFile:
    file: str  # relative to the run folder: exports/orders.csv
    rows: int  # data rows, the header not counted

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "rows": self.rows}


def export_files(run_dir: Path | None) -> list[ExportFile]:
    """Every export file of the folder, by name. Rows are CSV records (a value may hold a
    newline); a file cut short by a crash counts the rows it has."""
    folder = run_dir / EXPORTS_FOLDER if run_dir is not None else None
    if folder is None or not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.csv")):
        try:
            with path.open(encoding="utf-8", errors="replace", newline="") as handle:
                records = sum(1 for _ in csv.reader(handle))
        except (OSError, csv.Error):
            continue
        found.append(ExportFile(f"{EXPORTS_FOLDER}/{path.name}", max(records - 1, 0)))
    return found
