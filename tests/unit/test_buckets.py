"""allocate_buckets: weights -> hash buckets. Property tests (vyos once duplicated
nft map keys with three uplinks; the counts and coverage must hold for any input)."""

from __future__ import annotations

from fractions import Fraction
from functools import reduce
from math import gcd

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wanwatch.engine.policy import allocate_buckets

weights_st = st.lists(st.integers(1, 100), min_size=1, max_size=16).map(
    lambda ws: [(f"wan{i}", w) for i, w in enumerate(ws)]
)


@given(weights_st)
def test_counts_exactly_proportional_and_nothing_missing(weights: list[tuple[str, int]]) -> None:
    buckets = allocate_buckets(weights)
    g = reduce(gcd, (w for _, w in weights))
    assert len(buckets) == sum(w // g for _, w in weights)
    for name, w in weights:
        assert buckets.count(name) == w // g
    assert set(buckets) == {n for n, _ in weights}


@given(weights_st)
def test_interleaved_every_prefix_within_one_bucket(weights: list[tuple[str, int]]) -> None:
    buckets = allocate_buckets(weights)
    total = len(buckets)
    g = reduce(gcd, (w for _, w in weights))
    n = len(weights)
    bound = 1 - Fraction(1, 2 * n - 2) if n > 1 else 0  # Tijdeman's bound
    for name, w in weights:
        seen = 0
        for length, b in enumerate(buckets, 1):
            seen += b == name
            assert abs(seen - Fraction(length * (w // g), total)) <= bound


def test_sixteen_uplinks_that_smooth_round_robin_got_wrong() -> None:
    weights = [99, 99, 99, 99, 3, 1, 1, 9, 1, 99, 1, 1, 9, 1, 9, 1]
    named = [(f"w{i}", w) for i, w in enumerate(weights)]
    buckets = allocate_buckets(named)
    for name, w in named:
        seen = 0
        for length, b in enumerate(buckets, 1):
            seen += b == name
            assert abs(seen - length * w / sum(weights)) < 1


@given(weights_st)
def test_deterministic(weights: list[tuple[str, int]]) -> None:
    assert allocate_buckets(weights) == allocate_buckets(list(weights))


def test_three_uplinks_known_layout() -> None:
    assert allocate_buckets([("a", 1), ("b", 2), ("c", 3)]) == ("c", "b", "c", "a", "b", "c")
    assert allocate_buckets([("a", 50), ("b", 50), ("c", 50)]) == ("a", "b", "c")
    assert allocate_buckets([("a", 3)]) == ("a",)
    assert allocate_buckets([]) == ()


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="named twice"):
        allocate_buckets([("a", 1), ("a", 2)])
    with pytest.raises(ValueError, match=">= 1"):
        allocate_buckets([("a", 0)])
