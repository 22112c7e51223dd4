"""HDR histograms as sparse bucket counts: decode, merge exactly, read percentiles.

Every `hist` in a results folder uses the recorder's fixed layout (1 us to 1 h, 3 significant
digits), so a histogram is just its non-zero bucket indexes and counts (`Counts`), and merging
thousands of them is a numpy `bincount` rather than thousands of `HdrHistogram.add` calls.

>>> percentile_ms(merge_hist(run.intervals["hist"]), 95)  # doctest: +SKIP
231.423
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from hdrh.codec import HdrHistogramEncoder
from hdrh.histogram import HdrHistogram

from shop_loadtest.hdr import (
    COUNTS_LEN,
    DIGITS,
    HIGHEST_US,
    LOWEST_US,
    new_histogram,
    values_at_us,
)

if TYPE_CHECKING:
    import pandas as pd



class Counts(NamedTuple):
    """A histogram as sorted bucket indexes and their counts (the recorder's layout)."""

    idx: np.ndarray
    cnt: np.ndarray

    @property
    def total(self) -> int:
        return int(self.cnt.sum())


@lru_cache(maxsize=1)
def _layout() -> HdrHistogram:
    """An empty histogram with the recorder's layout: the reference for bucket arithmetic."""
    return new_histogram()


def _same_layout(h: HdrHistogram) -> bool:
    ref = _layout()
    return (h.counts_len, h.unit_magnitude, h.sub_bucket_count, h.word_size) == (
        ref.counts_len, ref.unit_magnitude, ref.sub_bucket_count, ref.word_size)


def counts_of(hist: HdrHistogram) -> Counts:
    """The non-zero buckets of a histogram, re-bucketed into the standard layout if needed."""
    if not _same_layout(hist):
        standard = new_histogram()
        standard.add(hist)
        hist = standard
    dense = np.ctypeslib.as_array(hist.counts)
    idx = np.flatnonzero(dense)
    return Counts(idx.astype(np.int64), dense[idx].astype(np.int64))


def decode_counts(encoded: str | None) -> Counts | None:
    """Decode one `hist` string; None for null, empty or unreadable input."""
    if not encoded or not isinstance(encoded, str):
        return None
    try:
        payload = HdrHistogramEncoder.decode(encoded, True)
        header = payload.payload
        if (header.lowest_trackable_value, header.highest_trackable_value,
                header.significant_figures) != (LOWEST_US, HIGHEST_US, DIGITS):
            counts = counts_of(HdrHistogram.decode(encoded))
            return counts if len(counts.idx) else None
        # Straight from the payload: building an HdrHistogram costs 5x the decoding itself.
        found = payload.init_counts(COUNTS_LEN)
    except Exception:  # hdrh raises TypeError, zlib.error and its own errors
        return None
    if not found["total"]:
        return None
    lo, hi = found["min_nonzero_index"], found["max_nonzero_index"]
    dense = np.ctypeslib.as_array(payload.counts)[lo : hi + 1]
    idx = np.flatnonzero(dense)
    return Counts(idx.astype(np.int64) + lo, dense[idx].astype(np.int64))


def merge_counts(parts: Iterable[Counts | None]) -> Counts | None:
    """Sum histograms bucket by bucket (exact: no percentile is ever averaged)."""
    present = [p for p in parts if p is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    idx = np.concatenate([p.idx for p in present])
    cnt = np.concatenate([p.cnt for p in present])
    uniq, inverse = np.unique(idx, return_inverse=True)
    return Counts(uniq, np.bincount(inverse, weights=cnt).astype(np.int64))


def counts_percentile_ms(counts: Counts | None, q: float) -> float | None:
    """Percentile q (0..100) of sparse counts in milliseconds; None when empty."""
    if counts is None or not len(counts.idx):
        return None
    return float(values_at_us(np.cumsum(counts.cnt), counts.idx, [q])[0]) / 1000.0


def counts_percentiles_ms(counts: Counts | None, qs: Sequence[float]) -> list[float | None]:
    """Several percentiles of sparse counts at once, in milliseconds."""
    if counts is None or not len(counts.idx):
        return [None] * len(qs)
    return [float(v) / 1000.0 for v in values_at_us(np.cumsum(counts.cnt), counts.idx, qs)]


def dense_percentile_ms(dense: np.ndarray, q: float) -> float | None:
    """Percentile q of a dense counts array in the standard layout (sliding windows)."""
    idx = np.flatnonzero(dense)
    if not len(idx):
        return None
    return float(values_at_us(np.cumsum(dense[idx]), idx, [q])[0]) / 1000.0


def counts_to_hist(counts: Counts) -> HdrHistogram:
    """A real HdrHistogram holding these counts."""
    hist = new_histogram()
    dense = np.ctypeslib.as_array(hist.counts)
    dense[counts.idx] = counts.cnt
    if len(counts.idx):
        hist.set_internal_tacking_values(int(counts.idx[0]), int(counts.idx[-1]),
                                         int(counts.cnt.sum()))
    return hist


def merge_hist(encoded: Iterable[str | None]) -> HdrHistogram | None:
    """Merge base64 `hist` strings into one histogram; None when there is nothing to merge."""
    merged = merge_counts(decode_counts(e) for e in encoded)
    return counts_to_hist(merged) if merged is not None else None


def percentile_ms(hist: HdrHistogram | None, q: float) -> float | None:
    """Percentile q (0..100) of a microsecond histogram, in milliseconds; None when empty."""
    if hist is None or not hist.get_total_count():
        return None
    return counts_percentile_ms(counts_of(hist), q)


def percentiles_ms(hist: HdrHistogram | None, qs: Sequence[float]) -> dict[float, float | None]:
    """Several percentiles at once: `{50: 12.3, 95: 80.1}`."""
    if hist is None or not hist.get_total_count():
        return {q: None for q in qs}
    counts = counts_of(hist)
    return {q: counts_percentile_ms(counts, q) for q in qs}


class HistCache:
    """Decodes each interval row's histogram at most once, and only when asked."""

    def __init__(self, intervals: pd.DataFrame) -> None:
        self._columns = {c: intervals[c].to_numpy() for c in ("hist", "hist_due")
                         if c in intervals}
        self._decoded: dict[tuple[str, int], Counts | None] = {}

    def rows(self, column: str, positions: Iterable[int]) -> list[Counts | None]:
        values = self._columns.get(column)
        out: list[Counts | None] = []
        for pos in positions:
            key = (column, int(pos))
            if key not in self._decoded:
                self._decoded[key] = decode_counts(values[pos]) if values is not None else None
            out.append(self._decoded[key])
        return out

    def merged(self, column: str, positions: Iterable[int]) -> Counts | None:
        return merge_counts(self.rows(column, positions))


def empty_dense() -> np.ndarray:
    """A zeroed dense counts array in the standard layout (for running window sums)."""
    return np.zeros(COUNTS_LEN, dtype=np.int64)
