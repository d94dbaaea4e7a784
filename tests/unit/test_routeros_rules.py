"""Policy rules in the RouterOS export (routeros/rules.py): the mangle rows each rule's
fields become, the order they are tried in, and what is left out with a note."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

import pytest
import yaml

from wanwatch.config import Config, load, loads
from wanwatch.config.model import Rule, Via, ViaUplink
from wanwatch.errors import RouterOSError
from wanwatch.routeros.compile import compile_config
from wanwatch.routeros.parse import parse_text

ROOT = Path(__file__).resolve().parents[2]
OFFICE_RULES = ROOT / "examples" / "office-rules.yaml"


def office_with(rules: list[dict[str, object]], **top: object) -> Config:
    """examples/office-rules.yaml with other rules (and top-level keys)."""
    data = yaml.safe_load(OFFICE_RULES.read_text())
    data["rules"] = rules
    data.update(top)
    return loads(yaml.safe_dump(data), "rules.yaml")


def mangle(script: str) -> list[dict[str, str]]:
    """The mangle rows as RouterOS reads them back (property -> value)."""
    export = parse_text(script, "x.rsc")
    rows = []
    for line in script.splitlines():
        if line.startswith("add chain=") and "mark-" in line:
            rows.append(line)
    assert len(rows) == len(export.mangle)
    return [
        dict(w.split("=", 1) for w in row[4:].split(' comment="')[0].split() if "=" in w)
        for row in rows
    ]


def test_each_field_becomes_its_matcher() -> None:
    got = compile_config(load(OFFICE_RULES), 7).script
    rows = mangle(got)
    voip = [r for r in rows if r.get("new-connection-mark") == "wanwatch-rule-voip"]
    assert voip == [
        {
            "chain": "prerouting",
            "in-interface-list": "wanwatch-lans",
            "connection-mark": "no-mark",
            "connection-state": "new",
            "dst-address-type": "!local",
            "src-address-list": "wanwatch-rule-voip-from",
            "dst-address-list": "!wanwatch-local",
            "protocol": "udp",
            "dst-port": "5060-5061,10000-20000",
            "action": "mark-connection",
            "new-connection-mark": "wanwatch-rule-voip",
            "passthrough": "yes",
        }
    ]
    # A LAN in from stands for its subnet, as on Linux (ip saddr).
    assert "add list=wanwatch-rule-voip-from address=192.168.19.0/24 " in got
    # to: the destination list replaces the local exclusion.
    bulk = [r for r in rows if r.get("src-address-list") == "wanwatch-rule-bulk-from"]
    assert {r["dst-address-list"] for r in bulk} == {"wanwatch-rule-bulk-to"}
    assert "add list=wanwatch-rule-bulk-to address=203.0.113.0/24 " in got


def test_rules_come_first_in_config_order_then_the_policy() -> None:
    cfg = load(OFFICE_RULES)
    cfg = cfg.replace(policy=cfg.policy.replace(mode="loadbalance"))
    rows = mangle(compile_config(cfg, 7).script)
    new = [(i, r) for i, r in enumerate(rows) if r["action"] == "mark-connection"]
    rule_rows = [
        (i, r["new-connection-mark"])
        for i, r in new
        if "src-address-list" in r or r.get("dst-address-list") == "wanwatch-rule-bank-to"
    ]
    policy_rows = [i for i, r in new if r.get("in-interface") in ("ether3", "wlan1")]
    order = list(
        dict.fromkeys(
            m.removesuffix("-INET-UTAMA").removesuffix("-BACKUP-INET") for _, m in rule_rows
        )
    )
    assert order == [f"wanwatch-rule-{n}" for n in ("guest", "voip", "bank", "bulk")]
    assert policy_rows and max(i for i, _ in rule_rows) < min(policy_rows)
    # Every row that marks a new connection waits for one without a mark: the first wins.
    assert all(r["connection-mark"] == "no-mark" for _, r in new)


def test_tcp_and_udp_is_one_row_each() -> None:
    cfg = office_with(
        [
            {
                "name": "dns",
                "from": ["ether3"],
                "proto": "tcp+udp",
                "ports": 53,
                "via": ["BACKUP-INET"],
                "when_down": "default",
            }
        ]
    )
    rows = mangle(compile_config(cfg, 6).script)
    marks = [r for r in rows if r.get("new-connection-mark") == "wanwatch-rule-dns"]
    assert [(r["protocol"], r["dst-port"]) for r in marks] == [("tcp", "53"), ("udp", "53")]
    assert "add routing-mark=wanwatch-rule-dns action=lookup table=wanwatch-rule-dns" in (
        compile_config(cfg, 6).script
    )


def test_what_an_ipv4_export_cannot_match_is_a_note_not_a_rule() -> None:
    # check refuses IPv6 in rules while the Linux dataplane has none; the export
    # already leaves such matches out with a note, so the rules are built directly.
    b = ViaUplink("BACKUP-INET")
    cfg = load(OFFICE_RULES).replace(
        rules=(
            Rule(
                name="v6only",
                from_=(IPv6Network("2001:db8::/48"),),
                via=Via((b,)),
                when_down="block",
            ),
            Rule(name="ping6", proto="icmpv6", via=Via((b,)), when_down="block"),
            Rule(
                name="mixed",
                to=(IPv4Network("198.51.100.0/24"), IPv6Network("2001:db8:1::/48")),
                via=Via((b,)),
                when_down="block",
            ),
        )
    )
    out = compile_config(cfg, 7)
    assert "wanwatch-rule-v6only" not in out.script
    assert "wanwatch-rule-ping6" not in out.script
    assert "add list=wanwatch-rule-mixed-to address=198.51.100.0/24 " in out.script
    notes = "\n".join(out.notes)
    assert "rules[0] v6only: only IPv6 prefixes" in notes
    assert "rules[1] ping6: proto icmpv6 is IPv6" in notes
    assert "rules[2] mixed.to 2001:db8:1::/48: IPv6" in notes


def test_domains_v7_dns_fwd_v6_a_name_in_the_list() -> None:
    v7 = compile_config(load(OFFICE_RULES), 7)
    assert (
        "add name=bank.example type=FWD forward-to=8.8.8.8 match-subdomain=yes "
        "address-list=wanwatch-rule-bank-to " in v7.script
    )
    assert "/ip dns static remove" in v7.script
    v6 = compile_config(load(OFFICE_RULES), 6)
    assert "add list=wanwatch-rule-bank-to address=bank.example " in v6.script
    assert "ip dns static" not in v6.script
    assert any("no names under them" in n for n in v6.notes)


def test_exports_without_rules_have_no_rule_objects() -> None:
    got = compile_config(load(ROOT / "examples" / "office.yaml"), 7).script
    assert "routing rule" not in got and "wanwatch-lans" not in got


def test_one_table_name_for_two_things_is_refused() -> None:
    cfg = office_with(
        [
            {
                "name": "a-BACKUP-INET",
                "from": ["ether3"],
                "via": ["BACKUP-INET"],
                "when_down": "block",
            },
            {
                "name": "a",
                "from": ["WIFI"],
                "via": {"mode": "loadbalance", "uplinks": ["INET-UTAMA", "BACKUP-INET"]},
                "when_down": "block",
            },
        ]
    )
    with pytest.raises(RouterOSError, match="wanwatch-rule-a-BACKUP-INET"):
        compile_config(cfg, 7)
