"""The firewall's config: openings, forwards and isolated LANs, and every refusal with its line."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network
from pathlib import Path

import pytest
import yaml

from wanwatch.config import loads
from wanwatch.config.fields import PortRange, parse_port_range, parse_ports
from wanwatch.config.model import MAX_SHIFTED_PORTS
from wanwatch.errors import ConfigError

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"
A, B = "INET-UTAMA", "BACKUP-INET"


def office(extra: str) -> str:
    """The reference office with ``extra`` YAML appended (top-level sections)."""
    return OFFICE.read_text() + "\n" + extra


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(text, "t.yaml")
    return info.value.problems


def line_of(text: str, needle: str) -> int:
    """The first line holding ``needle`` outside a comment (office.yaml has commented examples)."""
    return next(
        i + 1
        for i, line in enumerate(text.splitlines())
        if needle in line and not line.lstrip().startswith("#")
    )


FORWARDS = """
forwards:
  - name: nas
    proto: tcp
    port: 8443
    to: 192.168.19.10
    to_port: 443
    wans: [BACKUP-INET]
    from: [198.51.100.0/24]
  - name: rtp
    proto: udp
    port: 10000-10999
    to: 192.168.20.12
"""


def test_defaults_filter_with_nothing_open() -> None:
    cfg = loads(OFFICE.read_text())
    assert cfg.firewall.enabled is True
    assert cfg.firewall.allow == ()
    assert cfg.forwards == ()
    assert not any(lan.isolate for lan in cfg.lans)


ALLOW = """
firewall:
  allow:
    - name: ssh
      proto: tcp
      port: 22
      from: [203.0.113.0/24, "2001:db8::/32", 198.51.100.7]
      wans: [BACKUP-INET]
    - name: games
      proto: tcp+udp
      port: [27015, "27020-27030"]
    - name: ipsec
      proto: esp
"""


def test_a_full_firewall_section_loads() -> None:
    cfg = loads(office(ALLOW + FORWARDS))
    ssh, games, ipsec = cfg.firewall.allow
    assert ssh.port == (PortRange(22, 22),)
    assert ssh.from_ == (
        IPv4Network("203.0.113.0/24"),
        IPv6Network("2001:db8::/32"),
        IPv4Network("198.51.100.7/32"),
    )
    assert ssh.wans == (B,)
    assert games.port == (PortRange(27015, 27015), PortRange(27020, 27030))
    assert games.wans is None  # every uplink
    assert ipsec.port is None
    nas, rtp = cfg.forwards
    assert nas.to == IPv4Address("192.168.19.10")
    assert (nas.port, nas.to_port) == (PortRange(8443, 8443), PortRange(443, 443))
    assert rtp.port == PortRange(10000, 10999) and rtp.to_port is None


def test_to_data_round_trips_through_yaml() -> None:
    """The lab writes a config back as YAML (lab/plan.py): the firewall must survive it."""
    cfg = loads(office(ALLOW + FORWARDS))
    data = yaml.safe_load(OFFICE.read_text())
    data["firewall"] = cfg.firewall.to_data(drop_none=True)
    data["forwards"] = [f.to_data(drop_none=True) for f in cfg.forwards]
    again = loads(yaml.safe_dump(data, sort_keys=False))
    assert again.firewall == cfg.firewall
    assert again.forwards == cfg.forwards
    assert data["firewall"]["allow"][1]["port"] == [27015, "27020-27030"]
    assert data["firewall"]["allow"][0]["from"][1] == "2001:db8::/32"  # the YAML key, not from_


@pytest.mark.parametrize(
    ("value", "want"),
    [(22, PortRange(22, 22)), ("8000-8100", PortRange(8000, 8100)), (" 53 ", PortRange(53, 53))],
)
def test_port_forms(value: object, want: PortRange) -> None:
    assert parse_port_range(value) == want


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "outside 1-65535"),
        (65536, "outside 1-65535"),
        ("9000-8000", "reversed"),
        ("http", "not a port"),
        (True, "not a port"),
        ("1-2-3", "not a port"),
    ],
)
def test_bad_ports(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_port_range(value)


def test_overlapping_ports_in_one_list() -> None:
    with pytest.raises(ValueError, match="8080 overlaps 8000-8100"):
        parse_ports(["8000-8100", 8080])


def test_bad_range_in_allow_names_file_and_line() -> None:
    text = office(
        """
firewall:
  allow:
    - name: web
      proto: tcp
      port: 9000-8000
"""
    )
    at = f"t.yaml:{line_of(text, 'port: 9000-8000')}: firewall.allow[0].port"
    # The cross check cannot tell a rejected port from a missing one (both read None).
    assert problems(text) == [
        f"{at}: 9000-8000 is reversed (the first port is above the last)",
        f"{at}: tcp needs ports to open (e.g. 22, 8000-8100, [80, 443])",
    ]


def test_unknown_uplink_names() -> None:
    text = office(
        """
firewall:
  allow:
    - name: ssh
      proto: tcp
      port: 22
      wans: [BACKUP-INET, LTE2]
forwards:
  - name: nas
    proto: tcp
    port: 8443
    to: 192.168.19.10
    wans: [FIBER]
"""
    )
    assert problems(text) == [
        f"t.yaml:{line_of(text, 'LTE2')}: firewall.allow[0].wans[1]: no uplink is named 'LTE2'",
        f"t.yaml:{line_of(text, 'FIBER')}: forwards[0].wans[0]: no uplink is named 'FIBER'",
    ]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "192.168.19.10",
            "192.168.0.50",
            "to",
            "192.168.0.50 is outside every LAN: a forward reaches a host on a LAN",
        ),
        (
            "192.168.19.10",
            "192.168.19.1",
            "to",
            "192.168.19.1 is the router's own address on LAN 'ether3'",
        ),
        (
            "192.168.19.10",
            "192.168.19.255",
            "to",
            "192.168.19.255 is the network or broadcast address of LAN 'ether3'",
        ),
        (
            "[198.51.100.0/24]",
            '[198.51.100.0/24, "2001:db8::/32"]',
            "from[1]",
            "2001:db8::/32 is IPv6: a forward reaches an IPv4 LAN host",
        ),
        (
            "198.51.100.0/24",
            "198.51.100.7/24",
            "from",
            "198.51.100.7/24 has host bits set: did you mean 198.51.100.0/24?",
        ),
    ],
)
def test_a_forward_reaches_a_lan_host_from_ipv4_sources(
    old: str, new: str, field: str, message: str
) -> None:
    text = office(FORWARDS.replace(old, new))
    line = line_of(text, f"    {field.partition('[')[0]}: ")  # the forward's own key
    assert problems(text) == [f"t.yaml:{line}: forwards[0].{field}: {message}"]


def test_two_forwards_of_one_port_on_one_uplink() -> None:
    text = office(
        FORWARDS
        + """
  - name: other
    proto: tcp+udp
    port: 10500
    to: 192.168.19.20
    wans: [BACKUP-INET, INET-UTAMA]
  - name: fine
    proto: tcp
    port: 10500
    to: 192.168.19.21
    wans: [INET-UTAMA]
"""
    )
    # "other" overlaps "rtp" (udp 10000-10999, every uplink) on BACKUP-INET first; "fine"
    # is tcp on INET-UTAMA, where "other" already forwards tcp 10500.
    assert problems(text) == [
        f"t.yaml:{line_of(text, 'port: 10500')}: forwards[2].port: 10500/tcp+udp on "
        "BACKUP-INET is already forwarded by forwards[1] (rtp)",
        f"t.yaml:{line_of(text, 'port: 10500') + 5}: forwards[3].port: 10500/tcp on "
        "INET-UTAMA is already forwarded by forwards[2] (other)",
    ]


def test_one_port_on_two_uplinks_or_two_protocols_is_fine() -> None:
    text = office(
        """
forwards:
  - name: a
    proto: tcp
    port: 80
    to: 192.168.19.10
    wans: [INET-UTAMA]
  - name: b
    proto: tcp
    port: 80
    to: 192.168.19.11
    wans: [BACKUP-INET]
  - name: c
    proto: udp
    port: 80
    to: 192.168.19.12
"""
    )
    assert [f.name for f in loads(text).forwards] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("port", "to_port", "message"),
    [
        ("8000-8100", "9000-9050", "9000-9050 has 51 port(s) and port 8000-8100 has 101"),
        ("8000-8100", "9000", "9000 has 1 port(s) and port 8000-8100 has 101"),
        ("80", "8000-8001", "8000-8001 has 2 port(s) and port 80 has 1"),
        (
            f"1-{MAX_SHIFTED_PORTS + 1}",
            f"2-{MAX_SHIFTED_PORTS + 2}",
            f"a shifted range maps at most {MAX_SHIFTED_PORTS} ports",
        ),
    ],
)
def test_to_port_must_match_the_range(port: str, to_port: str, message: str) -> None:
    text = office(
        f"""
forwards:
  - name: a
    proto: tcp
    port: {port}
    to: 192.168.19.10
    to_port: {to_port}
"""
    )
    (found,) = problems(text)
    assert found.startswith(f"t.yaml:{line_of(text, 'to_port')}: forwards[0].to_port: {message}")


def test_a_long_range_to_the_same_ports_is_fine() -> None:
    text = office(
        """
forwards:
  - name: all
    proto: udp
    port: 1024-65535
    to: 192.168.19.10
    to_port: 1024-65535
"""
    )
    assert loads(text).forwards[0].port.size == 64512


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ("proto: tcp", "port", "tcp needs ports to open"),
        ("proto: icmp\n      port: 8", "port", "icmp has no ports: remove port"),
        ("proto: icmp\n      from: ['2001:db8::/32']", "from[0]", "2001:db8::/32 is IPv6; icmp"),
        ("proto: icmpv6\n      from: [203.0.113.0/24]", "from[0]", "203.0.113.0/24 is IPv4"),
        ("proto: sctp\n      port: 9", "proto", "must be one of 'tcp', 'udp', 'tcp+udp'"),
    ],
)
def test_allow_protocol_and_port_agree(entry: str, field: str, message: str) -> None:
    text = office(f"firewall:\n  allow:\n    - name: x\n      {entry}\n")
    (found,) = problems(text)
    assert f": firewall.allow[0].{field}: {message}" in found, found


def test_names_once_in_allow_and_in_forwards() -> None:
    text = office(
        "firewall:\n  allow:\n"
        "    - {name: a, proto: gre}\n"
        "    - {name: a, proto: esp}\n" + FORWARDS.replace("name: rtp", "name: nas")
    )
    found = problems(text)
    assert [p.split(": ", 2)[1] for p in found] == ["firewall.allow[1].name", "forwards[1].name"]
    assert "name 'a' already used by firewall.allow[0]" in found[0]


def test_an_opening_shadowed_by_a_forward() -> None:
    text = office(
        """
firewall:
  allow:
    - name: https
      proto: tcp
      port: [443, 8443]
      wans: [BACKUP-INET]
"""
        + FORWARDS
    )
    assert problems(text) == [
        f"t.yaml:{line_of(text, 'port: [443, 8443]')}: firewall.allow[0].port: https: "
        "forwards[0] (nas) forwards this port on BACKUP-INET, and destination NAT comes "
        "first: the opening would never reach the router"
    ]


def test_isolate_needs_the_firewall() -> None:
    text = office("firewall:\n  enabled: false\n").replace(
        "lease_time: 1h", "lease_time: 1h\n    isolate: true"
    )
    assert problems(text) == [
        f"t.yaml:{line_of(text, 'isolate: true')}: lans[1].isolate: isolating a LAN needs "
        "the firewall, and firewall.enabled is false"
    ]


def test_every_firewall_problem_at_once() -> None:
    text = office(
        """
firewall:
  enabled: maybe
  allow:
    - name: x
      proto: tcp
      port: 70000
      from: nowhere
forwards:
  - name: y
    proto: tcp
    port: 80
    to: 10.1.1.1
    nonsense: 1
"""
    )
    assert [p.split(": ", 2)[1] for p in problems(text)] == [
        "firewall.enabled",
        "firewall.allow[0].port",
        "firewall.allow[0].port",
        "firewall.allow[0].from",
        "forwards[0].to",
        "forwards[0].nonsense",
    ]
