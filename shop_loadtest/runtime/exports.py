"""The export files of a run (`export:` steps): `exports/<file>.csv` in the run folder.

One writer per run, where the other results are written: a local process writes its own rows;
a worker sends each row to the master as it is made (`MSG_EXPORT`), and the master writes it.
So cloud workers need no shared disk, every row is on disk (flushed) within moments of the
step that made it, and a worker that dies keeps the rows it sent. Rows are masked before they
leave the process that made them, and again by the master.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from shop_loadtest.journeys import EXPORT_FILE_RE, EXPORTS_FOLDER

logger = logging.getLogger(__name__)

MSG_EXPORT = "slt_export"
# Rows kept in memory per file while its disk is full, retried with the next row.
MAX_PENDING_ROWS = 100_000


def _line(cells: Sequence[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


class Exports:
    """Writes rows to `folder/exports/<file>` (header first), or hands them to `send`."""

    def __init__(self, folder: Path | None, mask: Callable[[str], str]) -> None:
        self.folder = folder
        self.mask = mask
        self.send: Callable[[dict[str, Any]], None] | None = None  # a worker: to the master
        self._files: dict[str, IO[str]] = {}
        self._columns: dict[str, list[str]] = {}
        self._pending: dict[str, list[str]] = {}
        self._failed = False

    def add(self, file: str, columns: Sequence[str], row: Sequence[str]) -> None:
        """One row (already masked by the caller, masked again here)."""
        cells = [self.mask(cell) for cell in row]
        if self.send is not None:
            self.send({"file": file, "columns": list(columns), "row": cells})
        else:
            self.write(file, columns, cells)

    def on_message(self, data: Any) -> None:
        """A worker's row (the master). A message that is not a row of a plain file name,
        with as many cells as columns, is dropped: it could name any path."""
        if not isinstance(data, dict):
            return
        file, columns, row = data.get("file"), data.get("columns"), data.get("row")
        if not (isinstance(file, str) and EXPORT_FILE_RE.match(file)
                and isinstance(columns, list) and isinstance(row, list)
                and len(columns) == len(row)
                and all(isinstance(c, str) for c in (*columns, *row))):
            logger.warning("shop-loadtest: dropped a malformed export row from a worker")
            return
        self.write(file, columns, [self.mask(cell) for cell in row])

    def write(self, file: str, columns: Sequence[str], cells: Sequence[str]) -> None:
        if self.folder is None:
            return
        pending = self._pending.setdefault(file, [])
        if file not in self._columns:
            self._columns[file] = list(columns)
            path = self.folder / EXPORTS_FOLDER / file
            if not (path.exists() and path.stat().st_size):  # a folder written into again
                pending.append(_line(columns))
        pending.append(_line(cells))
        try:
            handle = self._files.get(file)
            if handle is None:
                folder = self.folder / EXPORTS_FOLDER
                folder.mkdir(parents=True, exist_ok=True)
                handle = self._files[file] = (folder / file).open("a", encoding="utf-8",
                                                                  newline="")
            handle.write("".join(pending))
            handle.flush()
            pending.clear()
        except OSError as exc:
            if not self._failed:
                logger.error("shop-loadtest: cannot write %s (%s); keeping export rows in "
                             "memory", self.folder / EXPORTS_FOLDER / file, exc.strerror or exc)
            self._failed = True
            self._files.pop(file, None)
            del pending[:-MAX_PENDING_ROWS]

    def close(self) -> None:
        for handle in self._files.values():
            try:
                handle.close()
            except OSError:
                pass
        self._files.clear()
