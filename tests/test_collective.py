"""Exact sums shared by a Ray run's shards: the sum of float32 values as an
integer multiple of 2**-149, checked against Python's exact rationals, and
the same however the values are split."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from agenticrec import collective as col


def _reference(x: np.ndarray) -> Fraction:
    return sum((Fraction(float(v)) for v in np.asarray(x, np.float32).ravel()),
               Fraction(0))


def _values(rng: np.random.Generator, n: int) -> np.ndarray:
    """Normal, tiny, subnormal, huge, negative and zero float32 values."""
    parts = [
        rng.random(n),
        rng.random(n) * 1e-30,
        rng.random(n) * 1e-40,  # subnormal in float32
        rng.standard_normal(n) * 1e30,
        -rng.random(n),
        np.zeros(n),
    ]
    x = np.concatenate(parts).astype(np.float32)
    rng.shuffle(x)
    return x


@pytest.mark.parametrize("seed", range(5))
def test_exact_sum_equals_the_rational_sum(seed):
    x = _values(np.random.default_rng(seed), 200)
    assert Fraction(col.exact_sum(x), 2**col.SCALE_BITS) == _reference(x)


@pytest.mark.parametrize("seed", range(3))
def test_partial_sums_add_up_to_the_whole_in_any_split(seed):
    rng = np.random.default_rng(seed)
    x = rng.random((300, 7)).astype(np.float32)  # batched: any shape sums
    whole = col.exact_sum(x)
    cuts = np.sort(rng.choice(np.arange(1, 300), size=4, replace=False))
    parts = [{"s": col.exact_sum(p)} for p in np.split(x, cuts)]
    assert col.add(parts) == {"s": whole}
    assert col.mean(whole, x.size) == float(_reference(x) / x.size)


def test_the_exact_mean_of_a_wide_range_is_the_same_for_halves_and_whole():
    rng = np.random.default_rng(7)
    x = (rng.random(10_001) * rng.choice([1e-3, 1.0, 1e3], 10_001)).astype(np.float32)
    halves = np.split(x, [3_333])
    exact = [col.mean(col.add([{"s": col.exact_sum(h)} for h in halves])["s"], x.size)]
    exact.append(col.mean(col.exact_sum(x), x.size))
    assert exact[0] == exact[1] == float(_reference(x) / x.size)


def test_edge_cases_of_exact_sums_and_means():
    assert col.exact_sum(np.array([], np.float32)) == 0
    assert col.exact_sum(np.float32(0.5)) == 2**148  # unbatched scalar
    assert col.exact_sum([np.finfo(np.float32).tiny / 2**23]) == 1  # smallest
    assert np.isnan(col.mean(0, 0)) and np.isnan(col.ratio(1, 0))
    assert col.ratio(col.exact_sum([1.0]), col.exact_sum([4.0])) == 0.25
    big = np.full(3, np.finfo(np.float32).max, np.float32)
    assert col.mean(col.exact_sum(big), 3) == float(np.finfo(np.float32).max)
    with pytest.raises(ValueError, match="finite"):
        col.exact_sum([1.0, np.nan])
    with pytest.raises(ValueError, match="finite"):
        col.exact_sum([np.inf])


def test_allgather_without_a_group_is_this_process_alone():
    assert col.allgather(None, "k", {"a": 1}) == [{"a": 1}]
