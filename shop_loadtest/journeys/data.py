"""Data pools: the rows of the scenario's CSV files, handed out to journeys."""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from shop_loadtest.limits import MAX_DATA_BYTES


class DataExhausted(Exception):
    """A `mode: unique` data source has handed out every row it holds."""


class Row:
    """One CSV row in templates: `{{ coupons.code }}` or `{{ coupons["discount code"] }}`."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getattr__(self, name: str) -> str:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Row) and other._values == self._values

    def __hash__(self) -> int:
        return hash(tuple(self._values.items()))

    def __repr__(self) -> str:
        return f"Row({self._values!r})"


def open_data_file(path: str | Path) -> TextIO:
    """A CSV file a scenario names, opened for reading: a regular file (not /dev/stdin, which
    would wait forever, nor /dev/zero) of at most MAX_DATA_BYTES; a BOM is skipped."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} is not a regular file")
    if path.is_file() and path.stat().st_size > MAX_DATA_BYTES:
        raise ValueError(f"{path} is larger than {MAX_DATA_BYTES:,} bytes (docs/limits.md)")
    return path.open(newline="", encoding="utf-8-sig")


def read_csv(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of a CSV file with a header row; ValueError naming the line otherwise.

    A byte-order mark (spreadsheets write one) is not part of the first column's name. A row
    with more or fewer values than the header, a repeated or empty column name, are errors:
    silently padding or dropping values would send requests with the wrong data.
    """
    with open_data_file(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        columns = [c.strip() for c in header or []]
        if not columns or columns == [""]:
            raise ValueError(f"{path}: empty CSV (the first line names the columns)")
        for i, name in enumerate(columns):
            if not name:
                raise ValueError(f"{path}:1: column {i + 1} has no name")
            if name in columns[:i]:
                raise ValueError(f"{path}:1: column {name!r} appears twice")
        rows = []
        for values in reader:
            if not values:  # a blank line
                continue
            if len(values) != len(columns):
                raise ValueError(f"{path}:{reader.line_num}: {len(values)} values under "
                                 f"{len(columns)} columns")
            rows.append({c: v.strip() for c, v in zip(columns, values, strict=True)})
    if not rows:
        raise ValueError(f"{path}: no rows under the header")
    return columns, rows


@dataclass(frozen=True)
class DataSource:
    """A `data:` entry as generated locustfiles declare it (`file` resolved by them)."""

    name: str
    file: str | Path
    mode: str = "random"
    per: str = "journey"


class DataPool:
    """The rows of one data source in one load process.

    `random` draws any row, `sequential` goes round the rows in file order, `unique` hands each
    row out once and then raises DataExhausted. `share(index, count)` keeps the rows
    `index::count`, so that worker processes split a unique pool without overlap.
    """

    def __init__(self, source: DataSource, rows: list[Row], rng: random.Random | None = None):
        self.source = source
        self._all = rows
        self._rng = rng or random.Random()
        self._order = list(range(len(rows)))
        self._cursor = 0
        self._handed: set[int] = set()

    @classmethod
    def load(cls, source: DataSource, rng: random.Random | None = None) -> DataPool:
        _, rows = read_csv(source.file)
        return cls(source, [Row(r) for r in rows], rng)

    def share(self, index: int, count: int) -> None:
        """Keep only rows `index::count` (rows already handed out stay used)."""
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"share index {index} of {count} is out of range")
        self._order = [i for i in range(len(self._all))
                       if i % count == index and i not in self._handed]
        self._cursor = 0

    def __len__(self) -> int:
        return len(self._order)

    def remaining(self) -> int:
        return len(self._order) - self._cursor if self.source.mode == "unique" else len(self)

    def draw(self) -> Row:
        order = self._order
        if not order:
            raise DataExhausted(f"data {self.source.name!r} has no rows in this process")
        mode = self.source.mode
        if mode == "random":
            return self._all[order[self._rng.randrange(len(order))]]
        if mode == "sequential":
            i = order[self._cursor % len(order)]
            self._cursor += 1
            return self._all[i]
        if self._cursor >= len(order):
            raise DataExhausted(
                f"data {self.source.name!r} is exhausted: all {len(order)} unique rows are used")
        i = order[self._cursor]
        self._cursor += 1
        self._handed.add(i)
        return self._all[i]
