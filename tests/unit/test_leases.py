"""dnsmasq's lease file -> typed leases, their LAN, and the table/JSON people see."""

from __future__ import annotations

import functools
import logging
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wanwatch.config import Config, load, loads
from wanwatch.errors import DnsmasqError
from wanwatch.linux.leases import Lease, format_leases, lan_of, parse_leases, read_leases

OFFICE = Path(__file__).parents[2] / "examples" / "office.yaml"
NOW = 1_700_000_000.0

# As dnsmasq 2.90 writes it (lease.c): expiry mac address hostname client-id,
# plus what DHCPv6 adds (a duid line and IPv6 leases).
LEASES = f"""\
{int(NOW) + 86340} 02:00:00:00:19:01 192.168.19.10 laptop 01:02:00:00:00:19:01
{int(NOW) + 3000} 02:00:00:00:20:01 192.168.20.77 * *
{int(NOW) + 60} 02:00:00:00:19:02 192.168.19.9 * 01:02:00:00:00:19:02
0 02:00:00:00:19:03 192.168.19.200 printer *
{int(NOW) - 300} 02:AA:00:00:19:04 192.168.19.201 old *
{int(NOW) + 99} 02:00:00:00:99:01 10.9.9.9 stray *
duid 00:01:00:01:2c:5f:1a:2b:02:00:00:00:19:01
{int(NOW) + 3600} 1234 fd00::10 laptop 00:01:00:01:2c:5f:1a:2b
"""


@functools.cache
def _office() -> Config:
    return load(OFFICE)


@pytest.fixture
def office() -> Config:
    return _office()


def test_every_ipv4_lease_is_read_with_its_lan(office: Config) -> None:
    leases = parse_leases(LEASES, office, NOW)
    # LAN order of the config, then numeric address order (19.9 before 19.10)
    assert [(le.lan, str(le.address)) for le in leases] == [
        ("ether3", "192.168.19.9"),
        ("ether3", "192.168.19.10"),
        ("ether3", "192.168.19.200"),
        ("ether3", "192.168.19.201"),
        ("WIFI", "192.168.20.77"),
        (None, "10.9.9.9"),
    ]
    laptop = leases[1]
    assert laptop == Lease(
        address=IPv4Address("192.168.19.10"),
        mac="02:00:00:00:19:01",
        hostname="laptop",
        lan="ether3",
        expires=int(NOW) + 86340,
        remaining=86340.0,
        client_id="01:02:00:00:00:19:01",
    )
    wifi = leases[4]
    assert wifi.hostname is None and wifi.client_id is None
    printer = leases[2]
    assert printer.expires is None and printer.remaining is None  # 0 = infinite
    assert leases[3].mac == "02:aa:00:00:19:04"
    assert leases[3].remaining == -300.0


def test_a_broken_line_is_skipped_and_named(
    office: Config, caplog: pytest.LogCaptureFixture
) -> None:
    text = "garbage\n123 02:00:00:00:19:01 not-an-address x *\n" + LEASES
    with caplog.at_level(logging.WARNING, logger="wanwatch.linux.leases"):
        leases = parse_leases(text, office, NOW, source="leases.txt")
    assert len(leases) == 6
    assert [r.getMessage().split(":")[:2] for r in caplog.records] == [
        ["leases.txt", "1"],
        ["leases.txt", "2"],
    ]


def test_lan_without_address_is_found_by_pool_or_static_lease() -> None:
    config = loads(
        """
wans:
  - {name: ISP, interface: wan0, gateway: 198.51.100.1, probe: {targets: [203.0.113.1]}}
lans:
  - name: WIFI
    interface: wlan1
    dhcp:
      range: 192.168.20.100-192.168.20.199
      static: [{mac: "02:00:00:00:20:09", address: 192.168.20.9}]
"""
    )
    assert lan_of(IPv4Address("192.168.20.150"), "02:00:00:00:20:01", config) == "WIFI"
    assert lan_of(IPv4Address("192.168.20.9"), "02:00:00:00:20:09", config) == "WIFI"
    assert lan_of(IPv4Address("192.168.20.50"), "02:00:00:00:20:01", config) is None


def test_missing_file_is_no_leases_yet(office: Config, tmp_path: Path) -> None:
    assert read_leases(tmp_path / "dnsmasq.leases", office, NOW) == []


def test_unreadable_file_is_an_error(office: Config, tmp_path: Path) -> None:
    with pytest.raises(DnsmasqError, match="cannot read the lease file"):
        read_leases(tmp_path, office, NOW)  # a directory


def test_read_leases_reads_the_file(office: Config, tmp_path: Path) -> None:
    path = tmp_path / "dnsmasq.leases"
    path.write_text(LEASES, encoding="utf-8")
    assert read_leases(path, office, NOW) == parse_leases(LEASES, office, NOW)


def test_table(office: Config) -> None:
    table = format_leases(parse_leases(LEASES, office, NOW))
    assert table.splitlines() == [
        "LAN     ADDRESS         MAC                HOSTNAME  EXPIRES",
        "ether3  192.168.19.9    02:00:00:00:19:02  -         in 1m00s",
        "ether3  192.168.19.10   02:00:00:00:19:01  laptop    in 23h59m",
        "ether3  192.168.19.200  02:00:00:00:19:03  printer   never",
        "ether3  192.168.19.201  02:aa:00:00:19:04  old       expired 5m00s ago",
        "WIFI    192.168.20.77   02:00:00:00:20:01  -         in 50m00s",
        "?       10.9.9.9        02:00:00:00:99:01  stray     in 1m39s",
    ]
    assert format_leases([]) == "no DHCP leases"


def test_json_round_trip(office: Config) -> None:
    leases = parse_leases(LEASES, office, NOW)
    data = [le.to_json() for le in leases]
    assert data[1] == {
        "lan": "ether3",
        "address": "192.168.19.10",
        "mac": "02:00:00:00:19:01",
        "hostname": "laptop",
        "expires": int(NOW) + 86340,
        "remaining_s": 86340,
        "client_id": "01:02:00:00:00:19:01",
    }
    assert [Lease.from_json(d) for d in data] == leases


@given(
    address=st.integers(0xC0A81302, 0xC0A813FE).map(IPv4Address),
    mac=st.lists(st.integers(0, 255), min_size=6, max_size=6).map(
        lambda b: ":".join(f"{x:02x}" for x in b)
    ),
    hostname=st.none() | st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True),
    expiry=st.integers(0, 2**31 - 1),
)
def test_any_line_dnsmasq_writes_reads_back(
    address: IPv4Address, mac: str, hostname: str | None, expiry: int
) -> None:
    line = f"{expiry} {mac} {address} {hostname or '*'} *\n"
    (lease,) = parse_leases(line, _office(), NOW)
    assert (lease.address, lease.mac, lease.hostname, lease.lan) == (
        address,
        mac,
        hostname,
        "ether3",
    )
    assert lease.expires == (None if expiry == 0 else expiry)
