"""The one HDR histogram layout of shop-loadtest, and the arithmetic on its bucket indexes.

Every histogram the recorder writes and results/ reads covers 1 us to 1 h at 3 significant
digits. Bucket arithmetic is done here with numpy on the counts array, from constants derived
below the way HdrHistogram derives them (tests/test_engine.py checks they agree with hdrh), so
the recorder and the readers share one percentile walk and hdrh's internals are read in one
place only: the counts array that its encoder writes from.

>>> values_at_us(np.array([3, 4]), np.array([1000, 2000]), [50, 100]).tolist()
[1000, 2000]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3

# As HdrHistogram.__init__ computes them for (LOWEST_US, HIGHEST_US, DIGITS).
UNIT_MAGNITUDE = int(math.floor(math.log2(LOWEST_US)))
SUB_BUCKET_HALF_COUNT_MAGNITUDE = max(math.ceil(math.log2(2 * 10**DIGITS)), 1) - 1
SUB_BUCKET_HALF_COUNT = 1 << SUB_BUCKET_HALF_COUNT_MAGNITUDE
SUB_BUCKET_MASK = (2 * SUB_BUCKET_HALF_COUNT - 1) << UNIT_MAGNITUDE


def _counts_len() -> int:
    smallest_untrackable, buckets = (2 * SUB_BUCKET_HALF_COUNT) << UNIT_MAGNITUDE, 1
    while smallest_untrackable <= HIGHEST_US:
        smallest_untrackable <<= 1
        buckets += 1
    return (buckets + 1) * SUB_BUCKET_HALF_COUNT


COUNTS_LEN = _counts_len()
ALL_INDEXES = np.arange(COUNTS_LEN)  # the `idx` of a whole counts array, for values_at_us


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def index_of(values_us: np.ndarray) -> np.ndarray:
    """The counts-array index of each value (hdrh's `_counts_index_for`, vectorised)."""
    v = np.asarray(values_us, dtype=np.int64)
    # bit_length(v | mask): frexp's exponent is exact for integers below 2**53
    pow2ceiling = np.frexp((v | SUB_BUCKET_MASK).astype(np.float64))[1].astype(np.int64)
    bucket = pow2ceiling - UNIT_MAGNITUDE - (SUB_BUCKET_HALF_COUNT_MAGNITUDE + 1)
    sub_bucket = np.right_shift(v, bucket + UNIT_MAGNITUDE)
    return (np.left_shift(bucket + 1, SUB_BUCKET_HALF_COUNT_MAGNITUDE)
            + sub_bucket - SUB_BUCKET_HALF_COUNT)


def bucket_values_us(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) equivalent value in microseconds of each bucket index."""
    idx = np.asarray(idx, dtype=np.int64)
    bucket = (idx >> SUB_BUCKET_HALF_COUNT_MAGNITUDE) - 1
    sub = (idx & (SUB_BUCKET_HALF_COUNT - 1)) + SUB_BUCKET_HALF_COUNT
    first = bucket < 0
    sub = np.where(first, sub - SUB_BUCKET_HALF_COUNT, sub)
    bucket = np.where(first, 0, bucket)
    lowest = sub << (bucket + UNIT_MAGNITUDE)
    return lowest, lowest + (np.int64(1) << (bucket + UNIT_MAGNITUDE)) - 1


def values_at_us(cumulative: np.ndarray, idx: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """The value in microseconds at each percentile q (0..100), as hdrh's
    `get_value_at_percentile` computes it, from the running sum of the counts at bucket
    indexes `idx` (sorted, non-empty): the highest value of the bucket, the lowest for q=0."""
    q = np.minimum(np.asarray(qs, dtype=float), 100.0)
    targets = np.maximum((q * int(cumulative[-1]) / 100.0 + 0.5).astype(np.int64), 1)
    pos = np.minimum(np.searchsorted(cumulative, targets, side="left"), len(idx) - 1)
    lowest, highest = bucket_values_us(np.asarray(idx)[pos])
    return np.where(q > 0, highest, lowest)
