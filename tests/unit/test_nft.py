"""The nft renderer's logic and the bucket prediction, without a kernel."""

from __future__ import annotations

import re
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wanwatch.config import Config, Policy, load
from wanwatch.config.model import Classifier
from wanwatch.errors import NftError
from wanwatch.linux.apply import intent_from_config
from wanwatch.linux.classify import CLASSIFIERS
from wanwatch.linux.nft import (
    jhash,
    predict_bucket,
    render,
    rendered_fingerprint,
    transaction,
)

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"
A, B = "INET-UTAMA", "BACKUP-INET"


def office(
    mode: Literal["failover", "loadbalance"] = "loadbalance",
    classifier: Classifier = "both-addresses",
) -> Config:
    return load(OFFICE).replace(policy=Policy(mode=mode, classifier=classifier))


# --------------------------------------------------------------------------- jhash


@pytest.mark.parametrize(
    ("key", "seed", "want"),
    [
        # The test vectors printed by driver5() of Bob Jenkins' lookup3.c (hashlittle),
        # which the kernel's jhash() equals on a little-endian CPU.
        (b"", 0, 0xDEADBEEF),
        (b"", 0xDEADBEEF, 0xBD5B7DDE),
        (b"Four score and seven years ago", 0, 0x17770551),
        (b"Four score and seven years ago", 1, 0xCD628161),
    ],
)
def test_jhash_matches_lookup3(key: bytes, seed: int, want: int) -> None:
    assert jhash(key, seed) == want


def test_prediction_matches_what_the_kernel_did() -> None:
    """Buckets the lab's kernel chose (weights 2:1, both-addresses-and-ports, ports 40000+)."""
    client, server = IPv4Address("192.168.19.10"), IPv4Address("198.51.100.10")
    got = "".join(
        "AAB"[
            predict_bucket(
                "both-addresses-and-ports", 3, client, server, proto=6, sport=p, dport=8000
            )
        ]
        for p in range(40000, 40012)
    )
    assert got == "BAABBAABABBB"


def test_port_classifiers_hash_only_addresses_for_other_protocols() -> None:
    s, d = IPv4Address("10.0.0.1"), IPv4Address("198.51.100.7")
    for name, cls in CLASSIFIERS.items():
        if cls.fallback is None:
            continue
        icmp = {predict_bucket(name, 16, s, d, proto=1, sport=p, dport=p) for p in range(50)}
        assert len(icmp) == 1, name  # ports are ignored for ICMP
        plain = name.removesuffix("-and-port").removesuffix("-and-ports")
        if plain == "both-addresses":
            assert icmp == {predict_bucket(plain, 16, s, d, proto=6)}
        tcp = {predict_bucket(name, 16, s, d, proto=6, sport=p, dport=p) for p in range(50)}
        assert len(tcp) > 1, name  # ports count for TCP


@given(st.integers(1, 64), st.integers(0, 2**32 - 1), st.integers(0, 65535))
def test_prediction_is_a_bucket(n: int, addr: int, port: int) -> None:
    b = predict_bucket(
        "both-addresses-and-ports",
        n,
        IPv4Address(addr),
        IPv4Address("198.51.100.1"),
        proto=17,
        sport=port,
        dport=53,
    )
    assert 0 <= b < n


# --------------------------------------------------------------------------- render


@given(st.lists(st.sampled_from([A, B]), min_size=1, max_size=40))
def test_every_bucket_is_one_vmap_key(buckets: list[str]) -> None:
    """vyos shipped duplicate map keys with three uplinks; ours are 0..n-1, each once."""
    cfg = office()
    text = render(intent_from_config(cfg, active=(A, B), buckets=buckets), cfg)
    rule = next(line for line in text.splitlines() if "jhash" in line)
    assert f"mod {len(buckets)} " in rule
    keys = [int(k) for k in re.findall(r"(\d+) : jump mark_", rule)]
    assert keys == list(range(len(buckets)))
    targets = re.findall(r"\d+ : jump mark_(\d)", rule)
    assert targets == ["1" if b == A else "2" for b in buckets]


def test_failover_has_no_hashing_and_loadbalance_without_buckets_neither() -> None:
    cfg = office("failover")
    assert "jhash" not in render(intent_from_config(cfg, active=(A,)), cfg)
    cfg = office("loadbalance")
    assert "jhash" not in render(intent_from_config(cfg, active=()), cfg)


def test_masquerade_is_one_rule_over_the_intents_interfaces() -> None:
    cfg = office("failover")
    text = render(intent_from_config(cfg, active=(A,)), cfg)
    assert [ln.strip() for ln in text.splitlines() if "masquerade" in ln and "#" not in ln] == [
        'meta nfproto ipv4 oifname { "ether1", "ether2" } masquerade'
    ]
    off = cfg.replace(nat=cfg.nat.replace(masquerade=False))
    assert "type nat" not in render(intent_from_config(off, active=(A,)), off)


def test_marks_keep_the_admins_bits() -> None:
    cfg = office()
    text = render(intent_from_config(cfg, active=(A, B), buckets=(A, B)), cfg)
    for line in text.splitlines():
        if " set " in line:
            assert "& 0xff00ffff | 0x00" in line, line


@pytest.mark.parametrize("bad", ['we"ird', "eth*", "back\\slash", "tab\tname"])
def test_unwritable_interface_names_are_refused(bad: str) -> None:
    cfg = office("failover")
    intent = intent_from_config(cfg, active=(A,))
    broken = replace(intent, uplinks=(replace(intent.uplinks[0], interface=bad), intent.uplinks[1]))
    with pytest.raises(NftError, match="cannot be written"):
        render(broken, cfg)


def test_a_bucket_must_name_an_uplink() -> None:
    cfg = office()
    with pytest.raises(NftError, match="not an uplink"):
        render(intent_from_config(cfg, active=(A,), buckets=(A, "GHOST")), cfg)


def test_transaction_replaces_only_our_table() -> None:
    cfg = office("failover")
    definition = render(intent_from_config(cfg, active=(A,)), cfg)
    text = transaction(definition)
    assert text.startswith("table inet wanwatch\ndelete table inet wanwatch\n")
    assert text.endswith(definition)
    assert "flush" not in text
    assert len(rendered_fingerprint(text)) == 16
