"""Weights -> hash buckets, the one allocation both dataplanes use: the Linux
backend's nft verdict map (through the engine's Intent) and the RouterOS
compiler's PCC rules. A leaf module: nothing of wanwatch below it."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from math import gcd


def allocate_buckets(weights: Sequence[tuple[str, int]]) -> tuple[str, ...]:
    """Hash bucket -> uplink name: weight/gcd buckets each, interleaved.

    Tijdeman's chairman-assignment algorithm (R. Tijdeman, "The chairman
    assignment problem", Discrete Math. 32, 1980): in every prefix of the result
    each uplink's count stays within 1 - 1/(2n-2) of its exact share, so none
    takes a long run of buckets. (Smooth weighted round-robin, tried first,
    strays up to 1.4 buckets with 16 uplinks.) Exact integer arithmetic.
    """
    names = [n for n, _ in weights]
    if len(set(names)) != len(names):
        raise ValueError(f"uplink named twice in {names}")
    if any(w < 1 for _, w in weights):
        raise ValueError(f"weights must be >= 1: {list(weights)}")
    if len(weights) <= 1:
        return tuple(names)
    g = reduce(gcd, (w for _, w in weights))
    counts = [w // g for _, w in weights]
    total = sum(counts)
    m = 2 * len(counts) - 2
    given = [0] * len(counts)
    out: list[str] = []
    for t in range(1, total + 1):
        best = -1
        for i, c in enumerate(counts):
            # eligible when its ideal share is ahead of its count by 1/m or more:
            # c/total * t - given >= 1/m
            if (c * t - given[i] * total) * m < total:
                continue
            # earliest deadline first: (given + 1 - 1/m) / (c / total), compared
            # as fractions ((given + 1) * m - 1) / c by cross-multiplying
            if (
                best < 0
                or ((given[i] + 1) * m - 1) * counts[best] < ((given[best] + 1) * m - 1) * c
            ):
                best = i
        given[best] += 1
        out.append(names[best])
    return tuple(out)
