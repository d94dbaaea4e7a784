"""The IPv6 side of policy rules in the RouterOS export (routeros/rules.py) and in
verify: /ipv6 firewall address-list and mangle rows per family the rule matches, the
tables' IPv6 ladders, what RouterOS 6 and RA-learned uplinks leave out, and the IPv6
per-mark paths verify reads back from the export."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Interface
from pathlib import Path
from typing import Any

from wanwatch.config import Config, load
from wanwatch.config.model import Via, ViaUplink
from wanwatch.routeros.compile import compile_config
from wanwatch.routeros.model import Export
from wanwatch.routeros.parse import parse_text
from wanwatch.routeros.verify import verify_text

ROOT = Path(__file__).resolve().parents[2]
DUAL_RULES = ROOT / "tests" / "golden" / "rules" / "dual-stack-rules.yaml"
GUEST, VOIP = "wanwatch-rule-guest", "wanwatch-rule-voip"


def static_primary(**via: list[str]) -> Config:
    """dual-stack-rules.yaml with INET-UTAMA's IPv6 static (a table can hold it), and
    the rules named in ``via`` sent through other uplinks."""
    cfg = load(DUAL_RULES)
    w = cfg.wans[0].replace(
        address6=IPv6Interface("2001:db8:1::2/64"), gateway6=IPv6Address("fe80::1")
    )
    rules = tuple(
        r.replace(via=Via(tuple(ViaUplink(n) for n in via[r.name]))) if r.name in via else r
        for r in cfg.rules
    )
    return cfg.replace(wans=(w, *cfg.wans[1:]), rules=rules)


def lines(script: str, section: str) -> list[str]:
    """The ``add`` lines of one menu (the script writes each menu once in a run)."""
    out: list[str] = []
    current = ""
    for line in script.splitlines():
        if line.startswith("/"):
            current = line[1:]
        elif current == section and line.startswith("add "):
            out.append(line)
    return out


def props(line: str) -> dict[str, str]:
    return dict(
        w.split("=", 1) for w in line[4:].split(' comment="', maxsplit=1)[0].split() if "=" in w
    )


def ipv6_routes(script: str, table: str) -> list[dict[str, str]]:
    rows = [props(x) for x in lines(script, "ipv6 route")]
    return [r for r in rows if r.get("routing-table") == table]


def marks(export: Export, family: int) -> dict[str, list[str | None]]:
    """Connection mark -> the classifiers of the rows that set it (None: no PCC)."""
    out: dict[str, list[str | None]] = {}
    for m in export.mangle if family == 4 else export.mangle6:
        if m.action == "mark-connection" and m.new_connection_mark:
            out.setdefault(m.new_connection_mark, []).append(m.pcc)
    return out


def test_a_rule_from_a_lan_is_compiled_in_both_families() -> None:
    got = compile_config(load(DUAL_RULES), 7).script
    four = [props(x) for x in lines(got, "ip firewall address-list")]
    six = [props(x) for x in lines(got, "ipv6 firewall address-list")]
    # The LAN stands for its IPv4 subnet and its IPv6 /64 (config/matches.py lan_prefixes).
    assert {"list": f"{GUEST}-from", "address": "192.168.20.0/24"} in four
    assert {"list": f"{GUEST}-from", "address": "fd19:2019:2020:20::/64"} in six
    # Our own IPv6 subnets stay local, as IPv4's do.
    local6 = {r["address"] for r in six if r["list"] == "wanwatch-local"}
    assert local6 == {"2001:db8:18::/64", "fd82:1b29:265d::/64", "fd19:2019:2020:20::/64"}
    row6 = next(
        props(x) for x in lines(got, "ipv6 firewall mangle") if f"new-connection-mark={GUEST} " in x
    )
    assert row6 == {
        "chain": "prerouting",
        "in-interface-list": "wanwatch-lans",
        "connection-mark": "no-mark",
        "connection-state": "new",
        "dst-address-type": "!local",
        "src-address-list": f"{GUEST}-from",
        "dst-address-list": "!wanwatch-local",
        "action": "mark-connection",
        "new-connection-mark": GUEST,
        "passthrough": "yes",
    }
    export = parse_text(got, "x.rsc")
    assert list(marks(export, 6)) == [
        GUEST,
        VOIP,
        "wanwatch-rule-bank",
        "wanwatch-rule-partner6",
        "wanwatch-rule-bulk-BACKUP-INET",
    ]
    # One routing rule per mark serves both families (v7 /routing rule has no family).
    rules = [r for r in export.rules if r.routing_mark == GUEST]
    assert [(r.action, r.table) for r in rules] == [("lookup-only-in-table", GUEST)]


def test_partner6_is_compiled_in_ipv6_only() -> None:
    out = compile_config(load(DUAL_RULES), 7)
    export = parse_text(out.script, "x.rsc")
    assert "wanwatch-rule-partner6" not in marks(export, 4)
    row = next(
        props(x)
        for x in lines(out.script, "ipv6 firewall mangle")
        if "new-connection-mark=wanwatch-rule-partner6 " in x
    )
    assert row["protocol"] == "icmpv6"
    assert row["dst-address-list"] == "wanwatch-rule-partner6-to"
    assert "add list=wanwatch-rule-partner6-to address=2001:db8:ffff:5::/64 " in out.script
    assert "add name=wanwatch-rule-partner6 fib " in out.script
    assert not any("not compiled" in n or "IPv4 only" in n for n in out.notes)


def test_voip_ipv6_ladder_skips_the_dsl() -> None:
    """IPv4 tries the DSL, then INET-UTAMA; the DSL has no IPv6, so the IPv6 ladder is
    INET-UTAMA's routes alone, from distance 1 (as on Linux: next in via)."""
    got = compile_config(static_primary(), 7).script
    four = [props(x) for x in lines(got, "ip route") if f"routing-table={VOIP} " in x]
    assert [(r["gateway"], r["distance"]) for r in four] == [
        ("1.1.1.1@main", "1"),
        ("8.8.8.8@main", "2"),
    ]
    assert ipv6_routes(got, VOIP) == [
        {
            "dst-address": "::/0",
            "gateway": "2001:4860:4860::8888@main",
            "check-gateway": "ping",
            "distance": "1",
            "target-scope": "11",
            "routing-table": VOIP,
        }
    ]


def test_an_ra_learned_uplink_cannot_be_in_a_table_and_says_so() -> None:
    out = compile_config(load(DUAL_RULES), 7)
    assert ipv6_routes(out.script, VOIP) == []
    assert ipv6_routes(out.script, "wanwatch-rule-partner6") == []
    notes = "\n".join(out.notes)
    assert (
        "rules[3] partner6.via INET-UTAMA (address6: auto: its IPv6 default is learned from "
        "router advertisements" in notes
    )
    assert "take when_down=block at every moment (dropped)" in notes
    # bulk keeps an IPv6 path (BACKUP-INET): no PCC, one mark into that uplink's table.
    export = parse_text(out.script, "x.rsc")
    assert marks(export, 6)["wanwatch-rule-bulk-BACKUP-INET"] == [None]
    assert ipv6_routes(out.script, "wanwatch-rule-bulk-INET-UTAMA") == []


def test_a_balanced_rule_splits_ipv6_by_pcc_as_ipv4() -> None:
    got = compile_config(static_primary(), 7).script
    export = parse_text(got, "x.rsc")
    for family in (4, 6):
        m = marks(export, family)
        both = m["wanwatch-rule-bulk-INET-UTAMA"] + m["wanwatch-rule-bulk-BACKUP-INET"]
        assert sorted(str(c) for c in both) == [f"src-address:4/{b}" for b in range(4)]
        assert m["wanwatch-rule-bulk-BACKUP-INET"] == [f"src-address:4/{b}" for b in (0, 2, 3)]
    # Each uplink's table: its own IPv6 routes first, then the other's.
    gw = [r["gateway"] for r in ipv6_routes(got, "wanwatch-rule-bulk-INET-UTAMA")]
    assert gw == ["2001:4860:4860::8888@main", "2620:fe::fe@main"]


def test_routeros_6_writes_no_ipv6_rule_and_says_so() -> None:
    out = compile_config(load(DUAL_RULES), 6)
    assert "/ipv6 firewall mangle" not in out.script
    assert "/ipv6 firewall address-list" not in out.script
    assert not any("routing-mark=" in x for x in lines(out.script, "ipv6 route"))
    notes = "\n".join(out.notes)
    assert (
        "rules (IPv6): RouterOS 6 has no IPv6 policy routing (its /ipv6 route has no "
        "routing-mark): the IPv6 connections of rules[0] guest, rules[1] voip, rules[2] bank, "
        "rules[4] bulk follow the IPv6 main table" in notes
    )
    assert "rules[3] partner6: proto icmpv6 is IPv6, and RouterOS 6 has no IPv6" in notes
    assert "wanwatch-rule-partner6" not in out.script


def mark6(got: dict[str, Any], scenario: str, mark: str) -> dict[str, Any]:
    sc = next(s for s in got["scenarios"] if s["id"] == scenario)
    result: dict[str, Any] = sc["marks6"][mark]
    return result


def mark4(got: dict[str, Any], scenario: str, mark: str) -> dict[str, Any]:
    sc = next(s for s in got["scenarios"] if s["id"] == scenario)
    result: dict[str, Any] = sc["marks"][mark]
    return result


def test_round_trip_a_rule_ipv6_path_moves_when_its_ipv6_uplink_dies() -> None:
    """guest via [BACKUP-INET, INET-UTAMA], both with static IPv6: when BACKUP-INET's
    IPv6 router dies alone, verify reads the export back and predicts guest's IPv6 on
    INET-UTAMA while its IPv4 stays on BACKUP-INET."""
    cfg = static_primary(guest=["BACKUP-INET", "INET-UTAMA"])
    report = verify_text(compile_config(cfg, 7).script)
    got = report.to_json()
    assert GUEST in {m["mark"] for m in got["marks6"]}
    base = mark6(got, "baseline", GUEST)
    assert (base["path"], base["nexthop"]) == ("table", "fe80::1%ether2")
    dead6 = mark6(got, "gateway-down:fe80::1%ether2", GUEST)
    assert (dead6["path"], dead6["gateway"], dead6["nexthop"]) == (
        "table",
        "2001:4860:4860::8888",
        "fe80::1%ether1",
    )
    four = mark4(got, "gateway-down:fe80::1%ether2", GUEST)
    assert (four["path"], four["nexthop"]) == ("table", "192.168.18.1")
    # The whole uplink down takes both families of the rule to INET-UTAMA.
    down = "gateway-down:192.168.18.1"
    assert mark6(got, down, GUEST)["nexthop"] == "fe80::1%ether1"
    assert mark4(got, down, GUEST)["nexthop"] == "192.168.0.1"
    assert "ipv6 marks: wanwatch-rule-guest by its table" in report.to_text()
    assert not {w["code"] for w in got["warnings"]} & {"mark-leak", "table-no-fallback"}


def test_round_trip_a_blocked_rule_ipv6_is_blocked_when_its_uplink_ipv6_dies() -> None:
    got = verify_text(compile_config(load(DUAL_RULES), 7).script).to_json()
    assert mark6(got, "baseline", GUEST)["nexthop"] == "fe80::1%ether2"
    assert mark6(got, "gateway-down:fe80::1%ether2", GUEST)["path"] == "blocked"
    assert mark4(got, "gateway-down:fe80::1%ether2", GUEST)["path"] == "table"
    # voip's IPv6 table is empty (the RA-learned uplink): when_down=default, by main.
    assert mark6(got, "baseline", VOIP)["path"] == "main"
    assert mark6(got, "baseline", "wanwatch-rule-partner6")["path"] == "blocked"


LEAK6 = """/routing table add name=t6 fib
/ipv6 address
add address=2001:db8:a::2/64 interface=ether1
add address=2001:db8:b::2/64 interface=ether2
add address=2001:db8:c::2/64 interface=ether3
add address=2001:db8:10::1/64 interface=bridge
/ipv6 route
add dst-address=::/0 gateway=2001:db8:a::1 check-gateway=ping distance=1
add dst-address=::/0 gateway=2001:db8:b::1 check-gateway=ping distance=2
add dst-address=::/0 gateway=2001:db8:c::1 check-gateway=ping distance=3
add dst-address=::/0 gateway=2001:db8:a::1 check-gateway=ping distance=1 routing-table=t6
add dst-address=::/0 gateway=2001:db8:b::1 check-gateway=ping distance=2 routing-table=t6
/ipv6 firewall mangle
add chain=prerouting in-interface=bridge action=mark-routing new-routing-mark=t6 passthrough=no
"""


def test_a_marked_ipv6_table_that_leaks_is_warned_as_ipv4s() -> None:
    """Every uplink of t6 dead: its IPv6 traffic falls back to main and leaves by the
    third uplink; a routing rule for the mark answers it."""
    got = verify_text(LEAK6, "leak6.rsc").to_json()
    leak = [w for w in got["warnings"] if w["code"] == "mark-leak"]
    assert len(leak) == 1
    assert "leaves by 2001:db8:c::1" in leak[0]["message"]
    ruled = LEAK6 + "/routing rule\nadd routing-mark=t6 table=t6 action=lookup-only-in-table\n"
    again = verify_text(ruled, "leak6.rsc").to_json()
    assert "mark-leak" not in {w["code"] for w in again["warnings"]}
    sc = next(s for s in again["scenarios"] if s["id"] == "baseline")
    assert sc["marks6"]["t6"]["nexthop"] == "2001:db8:a::1"
