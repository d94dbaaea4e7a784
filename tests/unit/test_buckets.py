"""allocate_buckets: weights -> hash buckets, the one allocation behind both the nft
verdict map and the RouterOS PCC rules. Property tests (vyos once duplicated nft
map keys with three uplinks; the counts and coverage must hold for any input)."""

from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction
from functools import reduce
from math import gcd

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wanwatch.config import Config, loads
from wanwatch.engine.buckets import allocate_buckets
from wanwatch.engine.policy import plan_for
from wanwatch.linux.nft import render
from wanwatch.routeros.compile import compile_config
from wanwatch.routeros.parse import parse_text

weights_st = st.lists(st.integers(1, 100), min_size=1, max_size=16).map(
    lambda ws: [(f"wan{i}", w) for i, w in enumerate(ws)]
)


@settings(deadline=None)  # no timed asserts: a loaded machine is slow
@given(weights_st)
def test_counts_exactly_proportional_and_nothing_missing(weights: list[tuple[str, int]]) -> None:
    buckets = allocate_buckets(weights)
    g = reduce(gcd, (w for _, w in weights))
    assert len(buckets) == sum(w // g for _, w in weights)
    for name, w in weights:
        assert buckets.count(name) == w // g
    assert set(buckets) == {n for n, _ in weights}


@settings(deadline=None)  # no timed asserts: a loaded machine is slow
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


@settings(deadline=None)  # no timed asserts: a loaded machine is slow
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


@settings(deadline=None)  # no timed asserts: a loaded machine is slow
@given(weights_st)
def test_every_uplink_gets_a_bucket_and_its_share(weights: list[tuple[str, int]]) -> None:
    buckets = allocate_buckets(weights)
    counts = Counter(buckets)
    total = sum(w for _, w in weights)
    for name, w in weights:
        assert counts[name] >= 1
        # exact after the gcd: count / buckets == weight / sum of weights
        assert counts[name] * total == w * len(buckets)


def office(weights: list[int]) -> Config:
    """A loadbalance office whose uplinks (one priority tier) have these weights."""
    wans = [
        {
            "name": f"W{i}",
            "interface": f"ether{i + 1}",
            "address": f"10.{i}.0.2/24",
            "gateway": f"10.{i}.0.1",
            "weight": w,
            "probe": {"targets": [f"203.0.113.{i + 1}"]},
        }
        for i, w in enumerate(weights)
    ]
    lans = [{"name": "lan", "interface": "ether9", "address": "192.168.9.1/24"}]
    doc = {"wans": wans, "lans": lans, "policy": {"mode": "loadbalance"}}
    return loads(yaml.safe_dump(doc), "gen.yaml")


def pcc_layout(cfg: Config) -> list[str]:
    """Bucket -> uplink name as the compiled RouterOS PCC rules say, checked for
    duplicate or missing buckets on the way."""
    export = parse_text(compile_config(cfg, 7).script, "lb.rsc")
    seen: dict[int, str] = {}
    n = None
    for m in export.mangle:
        if m.pcc is None:
            continue
        hit = re.fullmatch(r"[a-z-]+:(\d+)/(\d+)", m.pcc)
        assert hit, m.pcc
        n = n or int(hit.group(1))
        assert int(hit.group(1)) == n
        b = int(hit.group(2))
        assert b not in seen, f"bucket {b} twice"
        seen[b] = (m.new_connection_mark or "").removeprefix("wanwatch-")
    assert n is not None and sorted(seen) == list(range(n))
    return [seen[b] for b in range(n)]


def nft_layout(cfg: Config) -> list[str]:
    """Bucket -> uplink name as the rendered nft verdict map says (keys unique)."""
    text = render(plan_for(cfg, set()), cfg)
    vmap = re.search(r"jhash .* mod (\d+) seed \S+ vmap \{ ([^}]*) \}", text)
    assert vmap
    pairs = [p.split(" : jump mark_") for p in vmap.group(2).split(", ")]
    keys = [int(k) for k, _ in pairs]
    assert keys == list(range(int(vmap.group(1))))  # no duplicate, none missing
    return [cfg.wans[int(slot) - 1].name for _, slot in pairs]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 100), min_size=1, max_size=4))
def test_routeros_pcc_and_nft_use_the_same_buckets(weights: list[int]) -> None:
    cfg = office(weights)
    want = list(allocate_buckets([(w.name, w.weight) for w in cfg.wans]))
    assert pcc_layout(cfg) == want
    assert nft_layout(cfg) == want


def test_three_uplinks_no_duplicate_keys_in_either_dataplane() -> None:
    cfg = office([1, 2, 3])
    assert pcc_layout(cfg) == ["W2", "W1", "W2", "W0", "W1", "W2"]
    assert nft_layout(cfg) == ["W2", "W1", "W2", "W0", "W1", "W2"]
