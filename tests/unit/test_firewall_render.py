"""The firewall's description, its rules in the rendered table, and the counter reader."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from wanwatch.config import Config, load, loads
from wanwatch.config.fields import PortRange
from wanwatch.config.ha import local_view
from wanwatch.engine.intent import Intent, intent_from_config
from wanwatch.errors import NftError
from wanwatch.linux import firewall
from wanwatch.linux.firewall import Count, Reading, Totals, describe, parse_table
from wanwatch.linux.nft import render, rendered_fingerprint
from wanwatch.status import Drops

ROOT = Path(__file__).resolve().parents[2]
OFFICE = ROOT / "examples" / "office.yaml"
GOLDEN = ROOT / "tests" / "golden" / "nft" / "firewall.yaml"
DATA = ROOT / "tests" / "data"
A, B = "INET-UTAMA", "BACKUP-INET"


def office(extra: str = "") -> Config:
    return loads(OFFICE.read_text() + "\n" + extra, "office.yaml")


def table(cfg: Config, intent: Intent | None = None) -> str:
    return render(intent or intent_from_config(cfg, active=(cfg.wans[0].name,)), cfg)


def chain(text: str, name: str) -> list[str]:
    """The rules of one chain (comments and blank lines left out)."""
    m = re.search(rf"^\tchain {re.escape(name)} {{\n(.*?)^\t}}", text, re.S | re.M)
    assert m is not None, f"no chain {name}"
    return [ln.strip() for ln in m.group(1).splitlines() if ln.strip() and "#" not in ln[:4]]


def rules(text: str, name: str) -> list[str]:
    return [r for r in chain(text, name) if not r.startswith(("type ", "#"))]


# --------------------------------------------------------------------------- description


def test_description_resolves_every_default() -> None:
    d = describe(load(GOLDEN))
    assert d.enabled
    assert [(g.wan, g.interface, g.slot, g.dhcp_client) for g in d.guards] == [
        ("LTE", "wwan0", 1, False),
        ("FIBER", "eth1", 2, True),
    ]
    lte, fiber = d.guards
    assert [o.name for o in lte.openings] == ["wireguard", "games", "monitoring"]
    assert [o.name for o in fiber.openings] == ["ssh", "wireguard", "ipsec", "monitoring"]
    games = lte.openings[1]
    assert games.protocols == ("tcp", "udp")
    assert games.ports == (PortRange(27015, 27015), PortRange(27020, 27030))
    assert [(g.lan, g.slot) for g in d.guests] == [("guest", 2)]
    web, nas, rtp, shifted = d.forwards
    assert (web.to_port, web.wans, web.lan) == (PortRange(443, 443), ("LTE", "FIBER"), "office")
    assert (nas.to_port, nas.wans) == (PortRange(443, 443), ("FIBER",))
    assert rtp.to_port == rtp.port
    assert shifted.lan == "guest"
    assert d.counters == (
        "drop_in_LTE",
        "drop_fwd_LTE",
        "drop_in_FIBER",
        "drop_fwd_FIBER",
        "drop_guest_guest",
        "forward_web",
        "forward_nas",
        "forward_rtp",
        "forward_shifted",
    )


def test_disabled_describes_no_filter_but_keeps_the_forwards() -> None:
    cfg = load(GOLDEN)
    cfg = cfg.replace(
        firewall=cfg.firewall.replace(enabled=False),
        lans=tuple(lan.replace(isolate=False) for lan in cfg.lans),
    )
    d = describe(cfg)
    assert (d.enabled, d.guards, d.guests) == (False, (), ())
    assert [f.name for f in d.forwards] == ["web", "nas", "rtp", "shifted"]
    assert d.counters == ("forward_web", "forward_nas", "forward_rtp", "forward_shifted")


# --------------------------------------------------------------------------- rendering


def test_only_uplinks_and_isolated_lans_are_judged() -> None:
    """A LAN, lo or a management port the config does not name is never dispatched."""
    text = table(office())
    assert rules(text, "input") == [
        'iifname vmap { "ether1" : jump wan_in_1, "ether2" : jump wan_in_2 }'
    ]
    guest = office().replace(
        lans=tuple(lan.replace(isolate=lan.name == "WIFI") for lan in office().lans)
    )
    assert rules(table(guest), "input") == [
        'iifname vmap { "ether1" : jump wan_in_1, "ether2" : jump wan_in_2, '
        '"wlan1" : jump guest_in_2 }'
    ]


def test_an_uplink_drops_what_it_did_not_open_and_counts_it() -> None:
    text = table(office())
    wan = rules(text, "wan_in_2")
    assert wan[:3] == [
        "ct state established,related accept",
        "jump icmp_in",  # before the invalid drop: inverse ND and SEND read invalid
        "ct state invalid counter name drop_in_BACKUP-INET drop",
    ]
    assert wan[-1] == "counter name drop_in_BACKUP-INET drop"
    assert not any("tcp" in r or "udp dport 68" in r for r in wan)  # nothing opened
    fwd = rules(text, "wan_fwd_2")
    assert fwd[0] == "ct status dnat accept"
    assert fwd[-1] == "counter name drop_fwd_BACKUP-INET drop"
    assert "counter drop_in_BACKUP-INET { }" in text


def test_icmpv6_follows_rfc4890() -> None:
    icmp = rules(table(office()), "icmp_in")
    nd = next(r for r in icmp if "nd-neighbor-solicit" in r)
    assert nd.endswith("ip6 hoplimit 255 accept")
    for t in ("nd-router-advert", "nd-neighbor-advert", "ind-neighbor-solicit", "148", "149"):
        assert t in nd
    assert "nd-redirect" not in " ".join(icmp)  # RFC 4890 4.4.4: a router takes no redirect
    mld = next(r for r in icmp if "mld-listener-query" in r)
    assert mld.endswith("ip6 saddr fe80::/10 accept")
    assert "icmpv6 type packet-too-big accept" in icmp
    assert "icmp type destination-unreachable icmp code frag-needed accept" in icmp
    echo = [r for r in icmp if "echo-request" in r]
    assert echo and all(firewall.ECHO_RATE in r for r in echo)


def test_dhcp_uplink_takes_server_replies() -> None:
    text = table(load(GOLDEN))
    assert 'udp sport 67 udp dport 68 accept comment "DHCP client"' in rules(text, "wan_in_2")
    assert not any("dport 68" in r for r in rules(text, "wan_in_1"))  # LTE is static


def test_a_router_pair_takes_vrrp_on_its_uplinks() -> None:
    cfg = local_view(load(ROOT / "examples" / "office-ha-a.yaml"))
    text = table(cfg)
    for slot in (1, 2):
        assert 'ip protocol vrrp accept comment "router pair"' in rules(text, f"wan_in_{slot}")
    assert "vrrp" not in table(office())


def test_allow_opens_exactly_its_uplinks_sources_and_ports() -> None:
    text = table(load(GOLDEN))
    lte, fiber = rules(text, "wan_in_1"), rules(text, "wan_in_2")
    ssh = [r for r in fiber if "allow ssh" in r]
    assert ssh == [
        'ip saddr 198.51.100.0/24 tcp dport 22 accept comment "allow ssh"',
        'ip6 saddr 2001:db8:1::/48 tcp dport 22 accept comment "allow ssh"',
    ]
    assert not any("allow ssh" in r for r in lte)
    assert (
        'meta l4proto { tcp, udp } th dport { 27015, 27020-27030 } accept comment "allow games"'
        in lte
    )
    assert 'meta l4proto esp accept comment "allow ipsec"' in fiber
    assert 'ip saddr 203.0.113.7/32 meta l4proto icmp accept comment "allow monitoring"' in lte
    # every opening sits before the final drop
    assert fiber[-1].startswith("counter name drop_in_FIBER drop")


def test_forwards_dnat_from_the_uplinks_and_hairpin_from_inside() -> None:
    cfg = load(GOLDEN)
    intent = intent_from_config(cfg, active=("LTE",))
    leased = replace(intent.uplinks[1], address=IPv4Interface("100.64.7.9/22"))
    text = table(cfg, replace(intent, uplinks=(intent.uplinks[0], leased)))
    dnat = rules(text, "dstnat")
    web = [r for r in dnat if "forward_web" in r]
    assert web == [
        'iifname { "wwan0", "eth1" } fib daddr type local meta nfproto ipv4 tcp dport 443 '
        "counter name forward_web dnat ip to 192.168.19.10",
        'iifname != { "wwan0", "eth1" } ip daddr { 100.64.7.9, 192.168.0.2 } tcp dport 443 '
        "counter name forward_web dnat ip to 192.168.19.10",
    ]
    nas = [r for r in dnat if "forward_nas" in r]
    assert all("ip saddr 198.51.100.0/24 tcp dport 8443" in r for r in nas)
    assert all(r.endswith("dnat ip to 192.168.19.11:443") for r in nas)
    assert "ip daddr 100.64.7.9 " in nas[1]  # FIBER only: its leased address
    shifted = next(r for r in dnat if "forward_shifted" in r)
    assert shifted.endswith(
        "dnat ip to 192.168.20.50 : th dport map "
        "{ 7000 : 9000, 7001 : 9001, 7002 : 9002, 7003 : 9003 }"
    )
    # the servers' LANs masquerade a hairpinned flow that stays on them
    assert rules(text, "nat")[:2] == [
        'meta nfproto ipv4 ct status dnat iifname "eth2" oifname "eth2" masquerade',
        'meta nfproto ipv4 ct status dnat iifname "wlan0" oifname "wlan0" masquerade',
    ]


def test_no_hairpin_without_a_known_uplink_address() -> None:
    """A DHCP uplink without a lease: its forward still works from outside."""
    cfg = load(GOLDEN)
    nas = [r for r in rules(table(cfg), "dstnat") if "forward_nas" in r]
    assert len(nas) == 1 and nas[0].startswith('iifname "eth1" fib daddr type local')


def test_a_pairs_shared_address_is_hairpinned_too() -> None:
    cfg = local_view(
        load(ROOT / "examples" / "office-ha-a.yaml").replace(
            forwards=office(
                "forwards:\n  - {name: web, proto: tcp, port: 80, to: 192.168.19.10}\n"
            ).forwards
        )
    )
    hairpin = [r for r in rules(table(cfg), "dstnat") if r.startswith("iifname !=")]
    own = [str(w.address.ip) for w in cfg.wans if isinstance(w.address, IPv4Interface)]
    shared = [str(s.ip) for hw in cfg.ha.wans if (s := hw.shared) is not None] if cfg.ha else []
    assert shared and all(a in hairpin[0] for a in (*own, *shared))


def test_isolated_lan_reaches_only_the_internet_dhcp_and_dns() -> None:
    text = table(load(GOLDEN))
    inp = rules(text, "guest_in_2")
    assert "udp dport 67 accept" in inp
    assert "meta l4proto { tcp, udp } th dport 53 accept" in inp
    assert inp[-1] == "counter name drop_guest_guest drop"
    fwd = rules(text, "guest_fwd_2")
    assert fwd == [
        "ct status dnat accept",
        'oifname { "wwan0", "eth1" } ip daddr 192.168.0.0/24 counter name drop_guest_guest drop',
        'oifname { "wwan0", "eth1" } accept',
        "counter name drop_guest_guest drop",
    ]
    forward = rules(text, "forward")
    assert forward[-2:] == [
        'oifname "wlan0" ct status dnat accept',  # a forward to a guest host
        'oifname "wlan0" counter name drop_guest_guest drop',  # nothing else new gets in
    ]


def test_disabled_filters_nothing() -> None:
    cfg = office("firewall:\n  enabled: false\n")
    text = table(cfg)
    assert "chain input" not in text
    drops = [ln.strip() for ln in text.splitlines() if ln.endswith(" drop")]
    assert drops == ['meta nfproto ipv4 ct state invalid oifname { "ether1", "ether2" } drop']
    assert rules(text, "forward") == [
        'meta nfproto ipv4 ct state invalid oifname { "ether1", "ether2" } drop'
    ]
    # no firewall counters (the usage counters are every table's, linux/usage.py)
    assert [ln for ln in text.splitlines() if "counter " in ln and "usage_" not in ln] == []
    assert "firewall off" in text.splitlines()[1]


def test_the_fingerprint_covers_the_firewall() -> None:
    """Drift repair compares fingerprints: every firewall change must change it."""
    base = office()
    texts = [
        table(base),
        table(office("firewall:\n  allow:\n    - {name: ssh, proto: tcp, port: 22}\n")),
        table(office("firewall:\n  allow:\n    - {name: ssh, proto: tcp, port: 23}\n")),
        table(office("firewall:\n  enabled: false\n")),
        table(office("forwards:\n  - {name: w, proto: tcp, port: 80, to: 192.168.19.10}\n")),
        table(
            base.replace(lans=tuple(lan.replace(isolate=lan.name == "WIFI") for lan in base.lans))
        ),
    ]
    assert len({rendered_fingerprint(t) for t in texts}) == len(texts)


def test_failover_does_not_touch_the_firewall() -> None:
    """Failover mode swaps no table on a failover: the firewall must not depend on it."""
    cfg = load(GOLDEN)
    before = render(intent_from_config(cfg, active=("LTE",)), cfg)
    after = render(intent_from_config(cfg, active=("FIBER",), flush=("LTE",)), cfg)
    assert after == before


# --------------------------------------------------------------------------- counters


def test_parse_table_from_a_captured_listing() -> None:
    """``nft -j list table inet wanwatch`` as the lab's router printed it
    (tests/lab/test_firewall.py, the forward on the backup: three connections forwarded
    across a failover and failback, two SYNs to the primary's address dropped)."""
    got = parse_table((DATA / "nft-table.json").read_text())
    assert got == Reading(
        16,
        {
            "drop_in_INET-UTAMA": Count(2, 120),  # two SYNs to the primary's address
            "drop_fwd_INET-UTAMA": Count(0, 0),
            "drop_in_BACKUP-INET": Count(0, 0),
            "drop_fwd_BACKUP-INET": Count(0, 0),
            "forward_web": Count(3, 180),  # three connections forwarded
        },
    )


def listing(table: int, **counts: int) -> str:
    items: list[dict[str, object]] = [
        {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"table": {"family": "inet", "name": "wanwatch", "handle": table}},
    ]
    items += [
        {"counter": {"family": "inet", "name": n, "table": "wanwatch", "handle": 9,
                     "packets": p, "bytes": 60 * p}}
        for n, p in counts.items()
    ]  # fmt: skip
    items.append({"chain": {"family": "inet", "table": "wanwatch", "name": "input", "handle": 1}})
    return json.dumps({"nftables": items})


def test_parse_table_reads_the_handle_and_only_counters() -> None:
    assert parse_table(listing(7, a=2, b=0)) == Reading(7, {"a": Count(2, 120), "b": Count(0, 0)})


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"nftables": 3}',
        '{"nftables": [{"counter": {"name": "x", "packets": 1}}]}',
        '{"nftables": [{"table": {"name": "wanwatch"}}]}',
    ],
)
def test_parse_table_refuses_what_is_not_a_listing(text: str) -> None:
    with pytest.raises(NftError):
        parse_table(text)


def test_totals_carry_over_a_replaced_table() -> None:
    totals = Totals()
    assert totals.add(parse_table(listing(3, a=2))) == {"a": Count(2, 120)}
    assert totals.add(parse_table(listing(3, a=5))) == {"a": Count(5, 300)}
    # a new table (another handle): its counters start from zero, the totals do not
    assert totals.add(parse_table(listing(4, a=1, b=1))) == {
        "a": Count(6, 360),
        "b": Count(1, 60),
    }
    assert totals.add(Reading(None, {})) == {"a": Count(6, 360), "b": Count(1, 60)}  # gone
    assert totals.add(parse_table(listing(5, a=0))) == {"a": Count(6, 360), "b": Count(1, 60)}


def test_the_same_table_read_twice_adds_nothing() -> None:
    totals = Totals()
    first = totals.add(parse_table(listing(3, a=2)))
    assert totals.add(parse_table(listing(3, a=2))) == first


def test_counters_are_arranged_for_status() -> None:
    d = describe(load(GOLDEN))
    got = firewall.status(
        d,
        {
            "drop_in_LTE": Count(5, 300),
            "drop_fwd_FIBER": Count(2, 120),
            "forward_web": Count(7, 420),
            "unrelated": Count(1, 1),
        },
        0.123,
    )
    assert got.enabled
    assert got.dropped["LTE"] == Drops(input=5, forward=0)
    assert got.dropped["FIBER"] == Drops(input=0, forward=2)
    assert got.guests == {"guest": 0}
    assert got.forwards["web"] == 7
    assert set(got.forwards) == {f.name for f in d.forwards}
    assert got.age_s == 0.12


def test_a_disabled_firewall_counts_its_forwards_only() -> None:
    d = describe(office("firewall: {enabled: false}"))
    got = firewall.status(d, {}, None)
    assert (got.enabled, got.dropped, got.guests, got.age_s) == (False, {}, {}, None)
