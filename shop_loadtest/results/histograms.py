"""HDR histograms as sparse bucket counts: decode, merge exactly, read percentiles.

Every `hist` in a results folder uses the recorder's fixed layout (1 us to 1 h, 3 significant
digits), so a histogram is just its non-zero bucket indexes and counts (`Counts`), and merging
thousands of them is a numpy `bincount` rather than thousands of `HdrHistogram.add` calls.

>>> percentile_ms(merge_hist(run.intervals["hist"]), 95)  # doctest: +SKIP
231.423
"""

from __future__ import annotations

import binascii
import ctypes
import hashlib
import struct
import zlib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyhdrh
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


def decode_counts(encoded: str | bytes | None) -> Counts | None:
    """Decode one `hist` string (or its base64-decoded bytes, as `load_run` keeps them);
    None for null, empty or unreadable input."""
    if not encoded or not isinstance(encoded, str | bytes):
        return None
    try:
        if isinstance(encoded, bytes):
            encoded = binascii.b2a_base64(encoded, newline=False).decode("ascii")
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


# --- many histograms at once ---------------------------------------------------------------
_EXT = struct.Struct(">II")  # cookie, length: the base64 wrapper's header
_PAYLOAD = struct.Struct(">IIIIQQd")  # cookie, length, offset, digits, lowest, highest, ratio
_COMPRESSION_COOKIE, _ENCODING_COOKIE = 0x1C849304, 0x1C849303


class _Decoder:
    """Decodes `hist` strings one after the other into one reused dense buffer (pyhdrh's C
    decoder): 30 us a histogram where building a payload object costs 100."""

    def __init__(self) -> None:
        self.length = _layout().counts_len
        self._buffer = (ctypes.c_int64 * self.length)()
        self.dense = np.ctypeslib.as_array(self._buffer)
        self._address = ctypes.addressof(self._buffer)
        self._last = (0, 0)

    def __call__(self, encoded: Any) -> tuple[int, int] | None:
        """Decode into `dense`; the (lo, hi) slice holding its non-zero buckets, or None.
        The buffer holds only this histogram until the next call (pyhdrh adds to it)."""
        lo, hi = self._last
        self.dense[lo:hi] = 0
        self._last = (0, 0)
        span = self._decode(encoded)
        if span is not None:
            self._last = span
        return span

    def _decode(self, encoded: Any) -> tuple[int, int] | None:
        if not encoded or not isinstance(encoded, str | bytes):
            return None
        try:
            raw = encoded if isinstance(encoded, bytes) else binascii.a2b_base64(encoded)
            cookie, length = _EXT.unpack_from(raw)
            data = zlib.decompress(raw[8:]) if (cookie & ~0xF0 == _COMPRESSION_COOKIE
                                                and length == len(raw) - 8) else b""
            if len(data) >= _PAYLOAD.size:
                cookie, size, offset, digits, low, high, _ = _PAYLOAD.unpack_from(data)
                if (cookie & ~0xF0 == _ENCODING_COOKIE and not offset and size == len(data)
                        - _PAYLOAD.size and (low, high, digits) == (LOWEST_US, HIGHEST_US,
                                                                     DIGITS)):
                    found = pyhdrh.decode(data, _PAYLOAD.size, self._address, self.length, 8)
                    if not found["total"]:
                        return None
                    return found["min_nonzero_index"], found["max_nonzero_index"] + 1
        except (binascii.Error, struct.error, zlib.error, ValueError, TypeError):
            pass
        counts = decode_counts(encoded)  # another layout, or damaged: the general path
        if counts is None:
            return None
        self.dense[counts.idx] = counts.cnt
        return int(counts.idx[0]), int(counts.idx[-1]) + 1


def _sparse(dense: np.ndarray, lo: int = 0, hi: int | None = None) -> Counts | None:
    part = dense[lo:hi]
    nz = np.flatnonzero(part)
    return Counts(nz.astype(np.int64) + lo, part[nz].astype(np.int64)) if len(nz) else None


class SlotCounts(Sequence["Counts | None"]):
    """Per-slot histograms packed into two flat arrays (4 bytes a bucket): a 4-hour run's
    14,400 merged intervals, where a list of Counts would take three times the memory."""

    def __init__(self, bounds: np.ndarray, idx: np.ndarray, cnt: np.ndarray) -> None:
        self._bounds, self._idx, self._cnt = bounds, idx, cnt

    def __len__(self) -> int:
        return len(self._bounds) - 1

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        lo, hi = self._bounds[k], self._bounds[k + 1]
        if hi == lo:
            return None
        return Counts(self._idx[lo:hi].astype(np.int64), self._cnt[lo:hi].astype(np.int64))


def _narrowest(largest: int) -> type[np.unsignedinteger[Any]] | type[np.int64]:
    if largest < 2**16:
        return np.uint16
    return np.uint32 if largest < 2**32 else np.int64


class _Packer:
    """Builds a SlotCounts slot by slot (in any order of slots, each once)."""

    def __init__(self, n_slots: int) -> None:
        self.sizes = np.zeros(n_slots, dtype=np.int64)
        self.order: list[int] = []
        self.idx: list[np.ndarray] = []
        self.cnt: list[np.ndarray] = []

    def add(self, slot: int, dense: np.ndarray, lo: int, hi: int) -> None:
        part = dense[lo:hi]
        nz = np.flatnonzero(part)
        if not len(nz):
            return
        values = part[nz]
        self.sizes[slot] = len(nz)
        self.order.append(slot)
        self.idx.append((nz + lo).astype(np.uint16))
        # most buckets of one interval count fewer than 65,536 requests: 4 bytes a bucket
        self.cnt.append(values.astype(_narrowest(int(values.max()))))

    def done(self) -> SlotCounts:
        bounds = np.r_[0, np.cumsum(self.sizes)]
        by_slot = np.argsort(np.asarray(self.order, dtype=np.int64), kind="stable")
        idx = (np.concatenate([self.idx[i] for i in by_slot]) if self.idx
               else np.empty(0, dtype=np.uint16))
        wide = max((c.dtype.itemsize for c in self.cnt), default=2)
        kind = {2: np.uint16, 4: np.uint32}.get(wide, np.int64)
        cnt = (np.concatenate([self.cnt[i].astype(kind) for i in by_slot]) if self.cnt
               else np.empty(0, dtype=np.uint16))
        self.idx, self.cnt = [], []
        return SlotCounts(bounds, idx, cnt)


class HistCache:
    """Merges the intervals' histograms as the statistics ask, without keeping every decoded
    histogram (a 4-hour run has a million): each merge decodes its rows once, keeps only the
    merged result and remembers it for the next caller. The first merge of a column decodes
    every row once and keeps what most callers want: per endpoint, and per interval over all
    endpoints."""

    def __init__(self, intervals: pd.DataFrame) -> None:
        self._columns = {c: intervals[c].to_numpy() for c in ("hist", "hist_due")
                         if c in intervals}
        self._endpoints = (intervals["endpoint"].to_numpy() if "endpoint" in intervals
                           else np.empty(0, dtype=object))
        self._t = intervals["t"].to_numpy(float) if "t" in intervals else np.empty(0)
        self._memo: dict[tuple[Any, ...], Any] = {}
        self._primed: set[str] = set()
        self._decode: _Decoder | None = None

    @property
    def decoder(self) -> _Decoder:
        if self._decode is None:
            self._decode = _Decoder()
        return self._decode

    @staticmethod
    def _key(kind: str, column: str, *arrays: np.ndarray) -> tuple[Any, ...]:
        return (kind, column, *(hashlib.blake2b(np.ascontiguousarray(a).tobytes(),
                                                digest_size=16).digest() for a in arrays))

    def _prime(self, column: str) -> None:
        """One pass over every row: merged per endpoint, over all rows, and per interval."""
        if column in self._primed:
            return
        self._primed.add(column)
        values = self._columns.get(column)
        n = len(self._t)
        if values is None or not n:
            return
        decode, length = self.decoder, self.decoder.length
        names = list(dict.fromkeys(self._endpoints.tolist()))
        code = {name: i for i, name in enumerate(names)}
        per_endpoint = np.zeros((len(names), length), dtype=np.int64)
        grid = np.unique(self._t)
        slot_of_row = np.searchsorted(grid, self._t)
        order = np.argsort(slot_of_row, kind="stable")
        per_slot = column == "hist"  # per-interval due-time histograms are rarely asked for
        packed = _Packer(len(grid)) if per_slot else None
        current = np.zeros(length, dtype=np.int64)
        lo_s, hi_s, slot = length, 0, -1
        for row in order.tolist():
            if packed is not None:
                s = int(slot_of_row[row])
                if s != slot:
                    if slot >= 0 and hi_s > lo_s:
                        packed.add(slot, current, lo_s, hi_s)
                        current[lo_s:hi_s] = 0
                    slot, lo_s, hi_s = s, length, 0
            span = decode(values[row])
            if span is None:
                continue
            lo, hi = span
            part = decode.dense[lo:hi]
            per_endpoint[code[self._endpoints[row]], lo:hi] += part
            if packed is not None:
                current[lo:hi] += part
                lo_s, hi_s = min(lo_s, lo), max(hi_s, hi)
        every = np.arange(n, dtype=np.int64)
        if packed is not None:
            if slot >= 0 and hi_s > lo_s:
                packed.add(slot, current, lo_s, hi_s)
            self._memo[self._key("by_slot", column, every, slot_of_row)] = packed.done()
        self._memo[self._key("merged", column, every)] = _sparse(per_endpoint.sum(axis=0))
        for name, i in code.items():
            positions = np.flatnonzero(self._endpoints == name)
            self._memo[self._key("merged", column, positions)] = _sparse(per_endpoint[i])

    def rows(self, column: str, positions: Iterable[int]) -> list[Counts | None]:
        """Each row's histogram (decoded now, not kept)."""
        values = self._columns.get(column)
        out: list[Counts | None] = []
        for pos in positions:
            span = self.decoder(values[int(pos)]) if values is not None else None
            out.append(None if span is None else _sparse(self.decoder.dense, *span))
        return out

    def merged(self, column: str, positions: Iterable[int]) -> Counts | None:
        """All the rows' histograms merged into one."""
        self._prime(column)
        pos = np.fromiter(positions, dtype=np.int64)
        key = self._key("merged", column, pos)
        if key not in self._memo:
            values = self._columns.get(column, np.empty(0, dtype=object))
            dense = np.zeros(self.decoder.length, dtype=np.int64)
            for row in pos.tolist() if len(values) else ():
                span = self.decoder(values[row])
                if span is not None:
                    dense[span[0]:span[1]] += self.decoder.dense[span[0]:span[1]]
            self._memo[key] = _sparse(dense)
        return self._memo[key]  # type: ignore[no-any-return]

    def by_slot(self, column: str, positions: np.ndarray, slots: np.ndarray, n_slots: int
                ) -> Sequence[Counts | None]:
        """The rows' histograms merged per slot: `slots[i]` (sorted) is that of
        `positions[i]`."""
        self._prime(column)
        pos, slots = np.asarray(positions, dtype=np.int64), np.asarray(slots, dtype=np.int64)
        key = self._key("by_slot", column, pos, slots)
        if key not in self._memo:
            values = self._columns.get(column, np.empty(0, dtype=object))
            packer = _Packer(n_slots)
            dense = np.zeros(self.decoder.length, dtype=np.int64)
            bounds = np.searchsorted(slots, np.arange(n_slots + 1))
            for k in range(n_slots):
                lo_s, hi_s = dense.size, 0
                for row in pos[bounds[k]:bounds[k + 1]].tolist() if len(values) else ():
                    span = self.decoder(values[row])
                    if span is not None:
                        dense[span[0]:span[1]] += self.decoder.dense[span[0]:span[1]]
                        lo_s, hi_s = min(lo_s, span[0]), max(hi_s, span[1])
                if hi_s > lo_s:
                    packer.add(k, dense, lo_s, hi_s)
                    dense[lo_s:hi_s] = 0
            self._memo[key] = packer.done()
        return self._memo[key]  # type: ignore[no-any-return]


def empty_dense() -> np.ndarray:
    """A zeroed dense counts array in the standard layout (for running window sums)."""
    return np.zeros(COUNTS_LEN, dtype=np.int64)
