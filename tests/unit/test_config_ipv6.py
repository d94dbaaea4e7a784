"""IPv6 in the config: uplinks' address6/gateway6/prefix6, IPv6 probe targets, LAN ULAs."""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv6Address, IPv6Interface, IPv6Network
from pathlib import Path

import pytest
from test_config import one, problems

from wanwatch.config import load, loads
from wanwatch.config.ipv6 import derived_ula, ipv4_only, lan_address6, translated_prefix
from wanwatch.config.model import icmp

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"

BASE = """\
wans:
  - name: A
    interface: wan1
    address: 198.51.100.2/24
    gateway: 198.51.100.1
    address6: 2001:db8:1::2/64
    gateway6: fe80::1
    prefix6: 2001:db8:100::/56
    probe:
      targets: [198.18.0.10, "2001:db8:ffff::10"]
  - name: B
    interface: wan2
    address: 203.0.113.2/24
    gateway: 203.0.113.1
    address6: auto
    probe:
      targets: [198.18.0.20, "2001:db8:ffff::20"]
lans:
  - name: LAN
    interface: lan1
    address: 192.168.19.1/24
    address6: auto
  - name: WIFI
    interface: lan2
    address: 192.168.20.1/24
    address6: fd12:3456:789a:1::1/64
"""


def test_dual_stack_office_loads() -> None:
    cfg = loads(BASE, "t.yaml")
    a, b = cfg.wans
    assert a.address6 == IPv6Interface("2001:db8:1::2/64")
    assert a.gateway6 == IPv6Address("fe80::1")
    assert a.probe.family(6) == (icmp("2001:db8:ffff::10"),)
    assert [t.label for t in a.probe.family(4)] == ["198.18.0.10"]
    assert b.address6 == "auto" and b.gateway6 is None
    assert lan_address6(cfg.lans[1]) == IPv6Interface("fd12:3456:789a:1::1/64")


def test_the_reference_office_is_ipv4_only_and_still_valid() -> None:
    cfg = load(OFFICE)
    assert all(w.address6 is None and not w.probe.family(6) for w in cfg.wans)
    assert all(lan_address6(lan) is None for lan in cfg.lans)


def test_a_lan_ula_derived_from_its_name_is_stable_and_rfc4193_shaped() -> None:
    ula = derived_ula("WIFI")
    assert ula == derived_ula("WIFI") != derived_ula("ether3")
    assert ula.network.prefixlen == 64 and ula.network.subnet_of(IPv6Network("fd00::/8"))
    assert int(ula.ip) & 0xFFFF_FFFF_FFFF_FFFF == 1  # the router is ::1 on subnet 0
    # RFC 4193 3.2.2: the Global ID is the low 40 bits of a SHA-1 digest (of the name here)
    low40 = hashlib.sha1(b"WIFI").hexdigest()[-10:]
    assert ula.network == IPv6Network(f"fd{low40[:2]}:{low40[2:6]}:{low40[6:]}::/64")
    assert str(ula) == "fd03:b54d:de6f::1/64"


def test_translated_prefix_gives_each_lan_a_slash64_of_the_routed_prefix() -> None:
    cfg = loads(BASE, "t.yaml")
    a, b = cfg.wans
    assert translated_prefix(a, 0) == IPv6Network("2001:db8:100::/64")
    assert translated_prefix(a, 1) == IPv6Network("2001:db8:100:1::/64")
    assert translated_prefix(b, 0) is None  # no routed prefix: masquerade


def test_ipv6_target_on_an_uplink_without_ipv6() -> None:
    text = BASE.replace("    address6: auto\n", "", 1)
    assert "t.yaml:16: wans[1].probe.targets[1]: 2001:db8:ffff::20 is IPv6 and B has no IPv6" in (
        one(text)
    )


def test_families_mixed_up_are_reported_at_their_line() -> None:
    text = BASE.replace("gateway6: fe80::1", "gateway6: 198.51.100.1").replace(
        "address6: fd12:3456:789a:1::1/64", "address6: 192.168.20.1/24"
    )
    assert problems(text) == [
        "t.yaml:7: wans[0].gateway6: not an IPv6 address",
        "t.yaml:26: lans[1].address6: not an IPv6 address with prefix "
        "(e.g. 2001:db8:1::2/64) or 'auto'",
    ]


def test_an_ipv6_gateway_in_the_ipv4_field() -> None:
    text = BASE.replace("gateway: 198.51.100.1", "gateway: fe80::1")
    assert one(text) == "t.yaml:5: wans[0].gateway: not an IPv4 address"


def test_learned_address_takes_no_gateway() -> None:
    text = BASE.replace("    address6: auto\n", "    address6: auto\n    gateway6: fe80::1\n", 1)
    assert "wans[1].gateway6: fe80::1: an uplink with address6: auto learns its router" in one(text)


def test_gateway6_and_prefix6_need_address6() -> None:
    text = BASE.replace("    address6: 2001:db8:1::2/64\n", "").replace(
        '"2001:db8:ffff::10"', "198.18.0.11"
    )
    assert problems(text) == [
        "t.yaml:6: wans[0].gateway6: gateway6 needs address6 (a static IPv6 address or auto)",
        "t.yaml:7: wans[0].prefix6: prefix6 needs address6 (a static IPv6 address or auto)",
    ]


@pytest.mark.parametrize(
    ("gateway", "message"),
    [
        ("2001:db8:2::1", "2001:db8:2::1 is outside the uplink's subnet 2001:db8:1::/64"),
        ("2001:db8:1::2", "2001:db8:1::2 is the uplink's own address"),
        ("ff02::2", "ff02::2 is not a unicast address"),
    ],
)
def test_gateway6_must_be_reachable(gateway: str, message: str) -> None:
    text = BASE.replace("gateway6: fe80::1", f"gateway6: {gateway}")
    assert one(text).startswith(f"t.yaml:7: wans[0].gateway6: {message}")


def test_uplink_address6_must_be_global() -> None:
    text = BASE.replace("address6: 2001:db8:1::2/64", "address6: fe80::2/64")
    found = problems(text)
    assert found[0] == (
        "t.yaml:6: wans[0].address6: fe80::2 is link-local: an uplink needs a global one"
    )


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("2001:db8:100::/80", "2001:db8:100::/80 is longer than a /64"),
        ("2001:db8:100::/64", "2001:db8:100::/64 holds 1 /64(s), and 2 LANs have IPv6"),
    ],
)
def test_prefix6_must_hold_every_lan(prefix: str, message: str) -> None:
    text = BASE.replace("prefix6: 2001:db8:100::/56", f"prefix6: {prefix}")
    assert message in one(text)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("fd12:3456:789a:1::1/56", "a LAN's IPv6 prefix is a /64 (SLAAC, RFC 4862), not /56"),
        (
            "fd12:3456:789a:1::/64",
            "fd12:3456:789a:1:: is the subnet-router anycast address (RFC 4291 2.6.1)",
        ),
        ("fe80::1/64", "fe80::1 is link-local"),
    ],
)
def test_lan_address6_rules(address: str, message: str) -> None:
    text = BASE.replace("address6: fd12:3456:789a:1::1/64", f"address6: {address}")
    assert one(text) == f"t.yaml:26: lans[1].address6: {message}"


def test_overlapping_ipv6_subnets() -> None:
    text = BASE.replace("address6: fd12:3456:789a:1::1/64", "address6: 2001:db8:1::1/64")
    assert one(text) == (
        "t.yaml:26: lans[1].address6: subnet 2001:db8:1::/64 overlaps 2001:db8:1::/64 of wans[0]"
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("fe80::9", "fe80::9 is link-local: it cannot be probed through an uplink"),
        ("ff02::1", "ff02::1 cannot be probed through an uplink"),
        ("2001:db8:1::9", "2001:db8:1::9 is inside wans[0]'s IPv6 subnet"),
    ],
)
def test_ipv6_probe_target_rules(target: str, message: str) -> None:
    text = BASE.replace('"2001:db8:ffff::10"', f'"{target}"')
    assert one(text).startswith(f"t.yaml:10: wans[0].probe.targets[1]: {message}")


def test_an_ipv6_target_twice_over_two_uplinks() -> None:
    text = BASE.replace('"2001:db8:ffff::20"', '"2001:db8:ffff::10"')
    assert "wans[1].probe.targets[1]: 2001:db8:ffff::10 is already a probe target of wans[0]" in (
        one(text)
    )


def test_each_uplink_keeps_an_ipv4_target() -> None:
    text = BASE.replace("[198.18.0.10, ", "[")
    assert one(text) == (
        "t.yaml:10: wans[0].probe.targets: needs an IPv4 target too: the uplink's IPv4 "
        "is judged by its IPv4 targets"
    )


def test_ipv4_only_view_drops_every_ipv6_field() -> None:
    cfg = ipv4_only(loads(BASE, "t.yaml"))
    assert all(w.address6 is None and w.prefix6 is None for w in cfg.wans)
    assert all(t.address.version == 4 for w in cfg.wans for t in w.probe.targets)
    assert all(lan.address6 is None for lan in cfg.lans)


def test_dns_upstream_may_be_ipv6() -> None:
    cfg = loads(BASE + 'dns:\n  upstream: [198.18.0.53, "2001:db8:ffff::53"]\n', "t.yaml")
    assert cfg.dns.upstream == (IPv4Address("198.18.0.53"), IPv6Address("2001:db8:ffff::53"))


def test_an_ipv6_dns_upstream_needs_an_uplink_with_ipv6() -> None:
    text = OFFICE.read_text().replace("upstream: [8.8.8.8, 1.1.1.1]", 'upstream: ["2001:db8::53"]')
    assert "dns.upstream[0]: 2001:db8::53 is IPv6 and no uplink has IPv6 (address6)" in one(text)


def test_a_link_local_dns_upstream_is_refused() -> None:
    text = BASE + 'dns:\n  upstream: ["fe80::53"]\n'
    assert "t.yaml:28: dns.upstream[0]: fe80::53 is link-local: it is beyond no uplink" in one(text)


def test_a_dns_upstream_that_is_no_address_is_named() -> None:
    text = BASE + "dns:\n  upstream: [198.18.0.53, dns.example]\n"
    assert one(text) == (
        "t.yaml:28: dns.upstream: [1]: 'dns.example' is not an IPv4 or IPv6 address"
    )
