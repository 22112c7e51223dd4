"""The histogram layout's arithmetic agrees with hdrh's own, value for value."""

import random

import numpy as np

from shop_loadtest import hdr


def test_the_layout_constants_are_the_ones_hdrh_derives():
    ref = hdr.new_histogram()
    assert (hdr.UNIT_MAGNITUDE, hdr.SUB_BUCKET_HALF_COUNT_MAGNITUDE, hdr.SUB_BUCKET_HALF_COUNT,
            hdr.SUB_BUCKET_MASK, hdr.COUNTS_LEN) == (
        ref.unit_magnitude, ref.sub_bucket_half_count_magnitude, ref.sub_bucket_half_count,
        ref.sub_bucket_mask, ref.counts_len)


def test_bucket_indexes_and_percentiles_match_hdrh():
    rng = random.Random(3)
    values = [rng.choice([rng.randint(1, 3000), rng.randint(1, 10**6), hdr.HIGHEST_US])
              for _ in range(5000)]
    hist = hdr.new_histogram()
    for v in values:
        hist.record_value(v)
    assert hdr.index_of(np.array(values)).tolist() == [hist._counts_index_for(v) for v in values]
    dense = np.ctypeslib.as_array(hist.counts)
    idx = np.flatnonzero(dense)
    qs = [0.0, 0.5, 50.0, 99.0, 99.99, 100.0]
    assert hdr.values_at_us(np.cumsum(dense[idx]), idx, qs).tolist() == [
        hist.get_value_at_percentile(q) for q in qs]
    lowest, highest = hdr.bucket_values_us(idx)
    assert lowest.tolist() == [hist.get_lowest_equivalent_value(hdr_value(hist, i)) for i in idx]
    assert highest.tolist() == [hist.get_highest_equivalent_value(hdr_value(hist, i))
                                for i in idx]


def hdr_value(hist, index):
    return hist.get_value_from_index(int(index))
