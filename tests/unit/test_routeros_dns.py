"""dns probe targets in a RouterOS export: v7 Netwatch type=dns entries (IPv4 and IPv6
servers), the notes on what it cannot check, RouterOS 6's note, and the reader."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from wanwatch.config import Config, loads
from wanwatch.routeros.compile import compile_config
from wanwatch.routeros.parse import parse_text
from wanwatch.routeros.verify import verify_text

# IPv6 targets first on B: each comment names the target's index in the config.
OFFICE = """\
wans:
  - name: A
    interface: ether1
    address: 10.1.0.2/24
    gateway: 10.1.0.1
    address6: 2001:db8:1::2/64
    gateway6: fe80::1
    probe:
      targets:
        - 203.0.113.1
        - {method: dns, address: 198.51.100.53, name: example.com, answer: 203.0.113.7}
        - 2001:db8:ffff::1
  - name: B
    interface: ether2
    address: 10.2.0.2/24
    gateway: 10.2.0.1
    address6: 2001:db8:2::2/64
    gateway6: fe80::1
    priority: 2
    probe:
      timeout: 2s
      targets:
        - {method: dns, address: "2001:db8:53::53", name: example.net, interval: 30s}
        - {method: dns, address: 198.51.100.54, name: example.org}
lans:
  - {name: lan, interface: ether9, address: 192.168.9.1/24}
"""


def office() -> Config:
    return loads(OFFICE, "dns.yaml")


def entries(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("add host=")]


def log(wan: str, label: str, state: str) -> str:
    return rf'{state}-script=":log info \"wanwatch: uplink {wan} target {label} {state}\""'


def test_v7_asks_each_dns_server_for_its_name() -> None:
    got = [e for e in entries(compile_config(office(), 7).script) if "type=dns" in e]
    a, b4 = "dns 198.51.100.53 example.com", "dns 198.51.100.54 example.org"
    b6 = "dns 2001:db8:53::53 example.net"
    assert got == [
        "add host=example.com type=dns dns-server=198.51.100.53 record-type=A interval=5s "
        f"{log('A', a, 'down')} {log('A', a, 'up')} "
        f'comment="wanwatch: wans[0].probe.targets[1] A {a}"',
        "add host=example.org type=dns dns-server=198.51.100.54 record-type=A interval=5s "
        f"timeout=2s {log('B', b4, 'down')} {log('B', b4, 'up')} "
        f'comment="wanwatch: wans[1].probe.targets[1] B {b4}"',
        # The IPv6 server's entry comes with the other IPv6 targets' ones.
        "add host=example.net type=dns dns-server=2001:db8:53::53 record-type=A interval=30s "
        f"timeout=2s {log('B', b6, 'down')} {log('B', b6, 'up')} "
        f'comment="wanwatch: wans[1].probe.targets[0] B {b6}"',
    ]


def test_v7_notes_name_the_answer_check_netwatch_lacks() -> None:
    notes = [n for n in compile_config(office(), 7).notes if "type=dns" in n]
    cannot = (
        "type=dns needs a RouterOS 7 release whose Netwatch has it (the 7.4-era manual "
        "lists none); Netwatch checks only that the server responds and cannot match an "
        "answer, while wanwatch counts only a NOERROR reply"
    )
    assert notes == [
        f"wans[0].probe.targets[1] (dns 198.51.100.53 example.com): {cannot} whose A "
        "records hold answer=203.0.113.7, not SERVFAIL, NXDOMAIN or REFUSED",
        f"wans[1].probe.targets[0] (dns 2001:db8:53::53 example.net): {cannot}, not "
        "SERVFAIL, NXDOMAIN or REFUSED",
        f"wans[1].probe.targets[1] (dns 198.51.100.54 example.org): {cannot}, not "
        "SERVFAIL, NXDOMAIN or REFUSED",
    ]


def test_v6_has_no_dns_entry_and_says_so() -> None:
    out = compile_config(office(), 6)
    assert [e.split()[0:2] for e in entries(out.script)] == [["add", "host=203.0.113.1"]]
    assert [n for n in out.notes if "dns " in n and "targets[" in n] == [
        f"wans[{i}].probe.targets[{t}] ({label}): no Netwatch entry "
        "(RouterOS 6 Netwatch only pings)"
        for i, t, label in [
            (0, 1, "dns 198.51.100.53 example.com"),
            (1, 0, "dns 2001:db8:53::53 example.net"),
            (1, 1, "dns 198.51.100.54 example.org"),
        ]
    ]


def test_an_auto_uplinks_ipv6_dns_server_gets_no_entry() -> None:
    """Its IPv6 targets are not pinned to it (ipv6.py's note): no entry, no dns note."""
    cfg = loads(
        OFFICE.replace("address6: 2001:db8:2::2/64\n    gateway6: fe80::1\n", "address6: auto\n"),
        "dns.yaml",
    )
    out = compile_config(cfg, 7)
    assert "dns-server=2001:db8:53::53" not in out.script
    assert "dns-server=198.51.100.54" in out.script
    assert not any("(dns 2001:db8:53::53" in n for n in out.notes)


def test_verify_reads_the_entries_back_by_their_servers() -> None:
    script = compile_config(office(), 7).script
    export = parse_text(script, "dns.rsc")
    assert len(export.netwatch) + len(export.netwatch6) == len(entries(script)) == 5
    dns = [(n.host, n.interval, n.timeout) for n in export.netwatch if n.type == "dns"]
    assert dns == [
        (IPv4Address("198.51.100.53"), 5.0, None),
        (IPv4Address("198.51.100.54"), 5.0, 2.0),
    ]
    assert [(n.host, n.type) for n in export.netwatch6 if n.type == "dns"] == [
        (IPv6Address("2001:db8:53::53"), "dns")
    ]
    report = verify_text(script, "dns.rsc")
    assert report.warnings == (), report.to_text()
    ids = {s.id for s in report.scenarios}
    assert {"target-silent:198.51.100.53", "target-silent:2001:db8:53::53"} <= ids


@pytest.mark.parametrize(
    ("entry", "note"),
    [
        # Without dns-server it asks the /ip dns servers: which one is not known.
        ("add host=example.com type=dns record-type=A", "type=dns: dns-server is not an address"),
        (
            "add host=example.com type=dns dns-server=resolver.lan",
            "type=dns: dns-server is not an address",
        ),
        ("add host=example.com type=icmp", None),  # a name to ping: nothing routed
    ],
)
def test_a_netwatch_entry_without_an_address_to_route_is_skipped(
    entry: str, note: str | None
) -> None:
    export = parse_text(f"/tool netwatch\n{entry}\n")
    assert (export.netwatch, export.netwatch6, export.skipped_lines) == ((), (), 1)
    assert [msg.split(",")[0] for _, msg in export.notes] == ([note] if note else [])


def test_a_dns_entry_is_not_read_as_a_ping_of_its_name() -> None:
    export = parse_text(
        "/tool netwatch\nadd host=example.com type=dns dns-server=9.9.9.9 record-type=AAAA\n"
    )
    (nw,) = export.netwatch
    assert (nw.line, nw.host, nw.type) == (2, IPv4Address("9.9.9.9"), "dns")
