"""The RouterOS compiler: syntax helpers, what the office export holds, notes, and the
round trip export -> verify (no warnings, the expected uplink in every scenario)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wanwatch.config import Config, Wan, load, loads
from wanwatch.errors import RouterOSError
from wanwatch.routeros.compile import (
    OWNED,
    compile_config,
    quote,
    ros_duration,
    value,
)
from wanwatch.routeros.parse import Command, commands, parse_duration, parse_text, unquote
from wanwatch.routeros.verify import verify_text

ROOT = Path(__file__).resolve().parents[2]
OFFICE = ROOT / "examples" / "office.yaml"
OFFICE_LB = ROOT / "tests" / "data" / "routeros" / "office-loadbalance.yaml"


# --------------------------------------------------------------------------- syntax


@given(st.text(max_size=200))
def test_quote_round_trips_through_the_reader(text: str) -> None:
    q = quote(text)
    assert unquote(q) == text
    assert "$" not in q.replace("\\$", "") and "?" not in q.replace("\\?", "")


def test_value_quotes_only_when_needed() -> None:
    assert value("ether1") == "ether1"
    assert value("8.8.8.8@main") == "8.8.8.8@main"
    assert value("a b") == '"a b"'
    assert value("") == '""'


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(86400, "1d"), (3600, "1h"), (5400, "1h30m"), (0.5, "500ms"), (90061.5, "1d1h1m1s500ms")],
)
def test_ros_duration(seconds: float, text: str) -> None:
    assert ros_duration(seconds) == text


@given(st.integers(min_value=1, max_value=10**9))
def test_ros_duration_reads_back(ms: int) -> None:
    assert parse_duration(ros_duration(ms / 1000)) == pytest.approx(ms / 1000)


# --------------------------------------------------------------------------- office


def adds(script: str) -> list[Command]:
    return [c for c in commands(script, "x") if isinstance(c, Command) and c.verb == "add"]


@pytest.mark.parametrize("path", [OFFICE, OFFICE_LB], ids=["failover", "loadbalance"])
@pytest.mark.parametrize("version", [7, 6])
def test_every_object_carries_an_owned_comment(path: Path, version: int) -> None:
    script = compile_config(load(path), version).script
    found = adds(script)
    assert found
    for c in found:
        assert c.args.get("comment", "").startswith(OWNED), (c.line, c.path)


def test_office_export_holds_the_papers_tables() -> None:
    cfg = load(OFFICE)
    e = parse_text(compile_config(cfg, 7).script, "office.rsc")
    assert {(str(a.address), a.interface) for a in e.addresses} == {
        ("192.168.0.2/24", "ether1"),
        ("192.168.18.2/24", "ether2"),
        ("192.168.19.1/24", "ether3"),
        ("192.168.20.1/24", "wlan1"),
    }
    assert {p.ranges for p in e.pools} == {
        "192.168.19.2-192.168.19.254",
        "192.168.20.2-192.168.20.254",
    }
    assert {(s.interface, s.lease_time, s.disabled) for s in e.dhcp_servers} == {
        ("ether3", 86400.0, False),
        ("wlan1", 3600.0, False),
    }
    assert {(str(n.address), n.gateway, n.dns) for n in e.dhcp_networks} == {
        ("192.168.19.0/24", "192.168.19.1", ("8.8.8.8", "8.8.4.4")),
        ("192.168.20.0/24", "192.168.20.1", ("8.8.8.8", "8.8.4.4")),
    }
    assert e.dns_servers == ("8.8.8.8", "1.1.1.1")
    assert {(n.chain, n.action, n.out_interface) for n in e.nat} == {
        ("srcnat", "masquerade", "ether1"),
        ("srcnat", "masquerade", "ether2"),
    }
    pins = [(str(r.dst), r.gateway_text, r.scope) for r in e.routes if r.dst.prefixlen == 32]
    assert pins == [
        ("8.8.8.8/32", "192.168.0.1", 10),
        ("1.1.1.1/32", "192.168.0.1", 10),
        ("9.9.9.9/32", "192.168.18.1", 10),
        ("8.8.4.4/32", "192.168.18.1", 10),
    ]
    defaults = [
        (r.gateway_text, r.distance, r.check, r.target_scope) for r in e.routes if r.is_default
    ]
    # Both targets of each uplink count; the primary's distances are below the backup's.
    assert defaults == [
        ("8.8.8.8", 1, "ping", 11),
        ("1.1.1.1", 2, "ping", 11),
        ("9.9.9.9", 3, "ping", 11),
        ("8.8.4.4", 4, "ping", 11),
    ]
    assert [(str(n.host), n.type, n.thr_avg) for n in e.netwatch] == [
        ("8.8.8.8", "icmp", 1.0),
        ("1.1.1.1", "icmp", 1.0),
        ("9.9.9.9", "icmp", 1.0),
        ("8.8.4.4", "icmp", 1.0),
    ]
    assert "uplink INET-UTAMA is down" in e.netwatch[0].down_script


def test_v6_and_v7_differ_where_routeros_does() -> None:
    lb = load(OFFICE_LB)
    v7 = compile_config(lb, 7).script
    v6 = compile_config(lb, 6).script
    assert "/routing table" in v7 and "routing-table=wanwatch-INET-UTAMA" in v7
    assert "gateway=9.9.9.9@main" in v7
    assert "/routing table" not in v6 and "routing-table=" not in v6
    assert "routing-mark=wanwatch-INET-UTAMA" in v6 and "@main" not in v6
    assert {n.type for n in parse_text(v7).netwatch} == {"icmp"}
    assert {n.type for n in parse_text(v6).netwatch} == {"simple"}  # v6 has no type
    assert {n.thr_avg for n in parse_text(v7).netwatch} == {1.0}
    assert {n.thr_avg for n in parse_text(v6).netwatch} == {None}
    assert "per-connection-classifier=both-addresses:2/0" in v6
    assert "per-connection-classifier=both-addresses:2/1" in v7


def test_reimport_replaces_exactly_what_wanwatch_owns() -> None:
    script = compile_config(load(OFFICE_LB), 7).script
    foreign = "/ip route\nadd dst-address=10.99.0.0/16 gateway=192.168.19.254 comment=mine\n"
    once = parse_text(foreign + script)
    twice = parse_text(foreign + script + script)
    for field in ("addresses", "routes", "tables", "nat", "mangle", "pools", "netwatch", "filters"):
        assert getattr(twice, field) != () or field == "tables"
        a = [_strip_line(x) for x in getattr(once, field)]
        b = [_strip_line(x) for x in getattr(twice, field)]
        assert a == b, field
    assert any(r.comment == "mine" for r in twice.routes)


def _strip_line(obj: Any) -> Any:
    return {k: v for k, v in vars(obj).items() if k != "line"}


def test_notes_are_reported_not_dropped() -> None:
    compiled = compile_config(load(OFFICE), 7)
    header = [ln for ln in compiled.script.splitlines() if ln.startswith("#   ")]
    assert [ln[4:] for ln in header] == list(compiled.notes)
    text = "\n".join(compiled.notes)
    for needle in ("fast_interval", "hold=", "min_timeout", "hooks.on_down", "cannot run"):
        assert needle in text


OFFICE_TEXT = OFFICE.read_text()


def test_uplink_and_lan_without_address() -> None:
    text = OFFICE_TEXT.replace("    address: 192.168.0.2/24\n", "").replace(
        "    address: 192.168.20.1/24\n", ""
    )
    compiled = compile_config(loads(text, "o.yaml"), 7)
    assert "gateway=192.168.0.1%ether1 scope=10" in compiled.script
    assert any("INET-UTAMA has no address" in n for n in compiled.notes)
    assert any("WIFI has no address" in n and "no DHCP server" in n for n in compiled.notes)
    assert "wanwatch-WIFI" not in compiled.script
    report = verify_text(compiled.script)
    assert report.warnings == ()


def test_static_leases_domain_and_router_dns() -> None:
    text = OFFICE_TEXT.replace(
        "      dns: [8.8.8.8, 8.8.4.4]\n      lease_time: 1h\n",
        "      lease_time: 1h\n      static:\n"
        "        - {mac: AA:BB:CC:00:11:22, address: 192.168.20.50, hostname: printer}\n",
    ).replace("dns:\n  upstream:", "dns:\n  domain: office.lan\n  upstream:")
    compiled = compile_config(loads(text, "o.yaml"), 6)
    e = parse_text(compiled.script)
    assert [(x.address, x.mac, x.server) for x in e.leases] == [
        ("192.168.20.50", "AA:BB:CC:00:11:22", "wanwatch-WIFI")
    ]
    wifi = next(n for n in e.dhcp_networks if n.address == IPv4Network("192.168.20.0/24"))
    assert wifi.dns == ("192.168.20.1",)  # no dhcp.dns: the router itself
    assert "domain=office.lan" in compiled.script
    assert any("hostname=printer" in n for n in compiled.notes)


def test_hook_text_is_escaped_for_routeros() -> None:
    text = OFFICE_TEXT.replace('"uplink {wan} is down"', '"$HOME \\"{wan}\\" down?"')
    e = parse_text(compile_config(loads(text, "o.yaml"), 7).script)
    inner = e.netwatch[0].down_script
    assert inner.startswith(':log info "') and "INET-UTAMA" in inner
    assert unquote(inner.removeprefix(":log info ")).endswith('$HOME "INET-UTAMA" down?)')


def test_too_many_distances_is_an_error() -> None:
    targets = ", ".join(f"203.0.113.{i}" for i in range(1, 129))
    targets2 = ", ".join(f"198.51.100.{i}" for i in range(1, 129))
    text = OFFICE_TEXT.replace("[8.8.8.8, 1.1.1.1]", f"[{targets}]").replace(
        "[9.9.9.9, 8.8.4.4]", f"[{targets2}]"
    )
    with pytest.raises(RouterOSError, match="at most 255"):
        compile_config(loads(text, "o.yaml"), 7)


def test_bad_version() -> None:
    with pytest.raises(RouterOSError):
        compile_config(load(OFFICE), 8)


# --------------------------------------------------------------------------- round trip


def ranked(cfg: Config) -> list[Wan]:
    return [w for _, w in sorted(enumerate(cfg.wans), key=lambda p: (p[1].priority, p[0]))]


def oracle(cfg: Config, scenario: str, first: Wan | None) -> dict[str, str] | None:
    """Who should carry a table's traffic: independent of the simulator."""
    kind, _, subject = scenario.partition(":")
    order = ranked(cfg)
    if first is not None:
        order = [first] + [w for w in order if w is not first]
    for w in order:
        if kind in ("gateway-down", "upstream-dead") and subject == str(w.gateway):
            continue
        live = [t for t in w.probe.addresses if not (kind == "target-silent" and subject == str(t))]
        if live:
            return {"gateway": str(live[0]), "nexthop": str(w.gateway)}
    return None


def watched(cfg: Config, version: int) -> list[tuple[str, str]]:
    """The Netwatch entries the export should hold, as (address probed, type): v7 asks a
    dns target's server with type=dns, v6 pings only (no type written)."""
    types = {"icmp": "icmp", "dns": "dns"} if version == 7 else {"icmp": "simple"}
    return [
        (str(t.address), types[t.method])
        for w in ranked(cfg)
        for t in w.probe.targets
        if t.method in types
    ]


def check_round_trip(cfg: Config, version: int) -> None:
    script = compile_config(cfg, version).script
    export = parse_text(script, "rt.rsc")
    assert [(str(n.host), n.type) for n in export.netwatch] == watched(cfg, version)
    report = verify_text(script, "rt.rsc")
    assert report.warnings == (), report.to_text()
    got = {s.id: s.to_json()["tables"] for s in report.scenarios}
    want_ids = {"baseline"}
    want_ids |= {f"{k}:{w.gateway}" for w in cfg.wans for k in ("gateway-down", "upstream-dead")}
    want_ids |= {f"target-silent:{t}" for w in cfg.wans for t in w.probe.addresses}
    assert set(got) == want_ids
    lb = cfg.policy.mode == "loadbalance"
    for sid, tables in got.items():
        want = {"main": oracle(cfg, sid, None)}
        if lb:
            want |= {f"wanwatch-{w.name}": oracle(cfg, sid, w) for w in cfg.wans}
        assert tables == want, sid


@pytest.mark.parametrize("path", [OFFICE, OFFICE_LB], ids=["failover", "loadbalance"])
@pytest.mark.parametrize("version", [7, 6])
def test_office_round_trip(path: Path, version: int) -> None:
    check_round_trip(load(path), version)


def target(address: IPv4Address | IPv6Address) -> st.SearchStrategy[str | dict[str, str]]:
    """A probe target at ``address``: a ping, or a DNS server asked for a name."""
    dns = {"method": "dns", "address": str(address), "name": "example.com"}
    return st.sampled_from([str(address), dns])


@st.composite
def offices(draw: st.DrawFn) -> Config:
    n = draw(st.integers(min_value=1, max_value=3))
    pool = [IPv4Address("203.0.113.1") + i for i in range(40)]
    chosen = draw(st.permutations(pool))
    wans = []
    k = 0
    for i in range(n):
        m = draw(st.integers(min_value=1, max_value=3))
        wans.append(
            {
                "name": f"W{i}",
                "interface": f"ether{i + 1}",
                "address": str(IPv4Interface(f"10.{i}.0.2/24")),
                "gateway": f"10.{i}.0.1",
                "priority": draw(st.integers(min_value=1, max_value=3)),
                "weight": draw(st.integers(min_value=1, max_value=4)),
                "probe": {"targets": [draw(target(t)) for t in chosen[k : k + m]]},
            }
        )
        k += m
    mode = draw(st.sampled_from(["failover", "loadbalance"]))
    lans = [{"name": "lan", "interface": "ether9", "address": "192.168.9.1/24"}]
    return loads(yaml.safe_dump({"wans": wans, "lans": lans, "policy": {"mode": mode}}), "gen.yaml")


@settings(max_examples=40, deadline=None)
@given(offices(), st.sampled_from([6, 7]))
def test_round_trip_any_office(cfg: Config, version: int) -> None:
    check_round_trip(cfg, version)


# --------------------------------------------------------------------------- firewall

FIREWALL = ROOT / "tests" / "golden" / "nft" / "firewall.yaml"


@pytest.mark.parametrize("version", [7, 6])
def test_the_firewall_export_is_read_whole_and_closes_the_uplinks(version: int) -> None:
    """The reader models every filter rule the export writes, and verify finds the uplinks
    closed: the rule that decides for each is the drop of the uplinks' list."""
    from wanwatch.routeros.filter import verdict

    export = parse_text(compile_config(load(FIREWALL), version).script, "fw.rsc")
    assert export.skipped_lines == 0
    drops = [r for r in export.filters if r.chain == "input" and r.action == "drop"]
    last = drops[-1]
    assert last.in_interface_list == "wanwatch-wans" and not last.narrowed
    for iface in ("wwan0", "eth1"):
        assert verdict(export, iface) == ("drop", last.line)
    assert verdict(export, "eth2") == ("accept", None)  # the office's LAN is not judged
    assert {"wwan0", "eth1"} <= set(export.interface_lists["wanwatch-wans"].names)


def test_openings_and_forwards_become_rules_on_their_uplinks() -> None:
    script = compile_config(load(FIREWALL), 7).script
    assert (
        "add chain=input action=accept in-interface=eth1 protocol=tcp dst-port=22 "
        'src-address=198.51.100.0/24 comment="wanwatch: firewall.allow[0] ssh"' in script
    )
    assert "protocol=ipsec-esp" in script
    # a shifted range maps port by port; a forward on every uplink uses the list
    assert "dst-port=7003 to-addresses=192.168.20.50 to-ports=9003" in script
    assert (
        "add chain=dstnat action=dst-nat in-interface-list=wanwatch-wans "
        "dst-address-type=local protocol=tcp dst-port=443 to-addresses=192.168.19.10 " in script
    )
    # hairpin to the static uplink's address, not to the DHCP one's (unknown here)
    assert "dst-address=192.168.0.2 protocol=tcp dst-port=443" in script
    assert script.count("hairpin via FIBER") == 0
    # an IPv6 source is left out and said so, never widened to "from anywhere"
    assert script.count("firewall.allow[0] ssh") == 1
    assert "firewall.allow ssh: 2001:db8:1::/48 is IPv6" in script


def test_a_disabled_firewall_writes_no_filter_but_its_forwards() -> None:
    cfg = load(FIREWALL)
    cfg = cfg.replace(
        firewall=cfg.firewall.replace(enabled=False),
        lans=tuple(lan.replace(isolate=False) for lan in cfg.lans),
    )
    compiled = compile_config(cfg, 7)
    assert "/ip firewall filter\nadd" not in compiled.script
    assert "action=dst-nat" in compiled.script
    assert "firewall.enabled=false: no /ip firewall filter rules written" in compiled.notes
    # no input chain: not judged (the DHCP uplink's pin, disabled until a lease, is)
    assert "wan-open" not in {w.code for w in verify_text(compiled.script, "off.rsc").warnings}
