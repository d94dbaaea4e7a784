"""Golden RouterOS exports of the reference office (v7 and v6, failover and loadbalance).

``WANWATCH_UPDATE_GOLDENS=1 pytest tests/golden/routeros`` rewrites them; review the
diff before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wanwatch.config import Config, load
from wanwatch.routeros.compile import compile_config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
UPDATE = os.environ.get("WANWATCH_UPDATE_GOLDENS") == "1"


def same_as_golden(got: str, name: str) -> None:
    golden = HERE / name
    if UPDATE:
        golden.write_text(got)
    assert golden.exists(), f"{golden} missing: run with WANWATCH_UPDATE_GOLDENS=1"
    assert got == golden.read_text()


def office(mode: str) -> Config:
    cfg = load(ROOT / "examples" / "office.yaml")
    if mode == "failover":
        return cfg
    # The same office in loadbalance mode, validated from its own YAML.
    lb = load(ROOT / "tests" / "data" / "routeros" / "office-loadbalance.yaml")
    assert lb.wans == cfg.wans and lb.lans == cfg.lans and lb.dns == cfg.dns
    assert lb.policy.mode == "loadbalance"
    return lb


@pytest.mark.parametrize("mode", ["failover", "loadbalance"])
@pytest.mark.parametrize("version", [7, 6])
def test_office_golden(version: int, mode: str) -> None:
    got = compile_config(office(mode), version).script
    same_as_golden(got, f"office-v{version}-{mode}.rsc")


@pytest.mark.parametrize("version", [7, 6])
def test_dynamic_office_golden(version: int) -> None:
    """DHCP (/ip dhcp-client whose script re-points the pins) and point-to-point
    (interface routes) uplinks: examples/office-dynamic.yaml."""
    got = compile_config(load(ROOT / "examples" / "office-dynamic.yaml"), version).script
    same_as_golden(got, f"office-dynamic-v{version}.rsc")
    assert "gateway=ppp0 scope=10 comment=" in got  # the point-to-point pins
    assert "/ip dhcp-client\nadd interface=ether1 add-default-route=yes" in got


@pytest.mark.parametrize("version", [7, 6])
@pytest.mark.parametrize("case", ["firewall", "firewall-off"])
def test_firewall_golden(version: int, case: str) -> None:
    """Every kind of opening and forward, an isolated LAN, a DHCP uplink
    (tests/golden/nft/firewall.yaml, the nft goldens' case); and the same with the
    firewall off: dst-nat only."""
    cfg = load(ROOT / "tests" / "golden" / "nft" / "firewall.yaml")
    if case == "firewall-off":
        cfg = cfg.replace(
            firewall=cfg.firewall.replace(enabled=False),
            lans=tuple(lan.replace(isolate=False) for lan in cfg.lans),
        )
    got = compile_config(cfg, version).script
    same_as_golden(got, f"{case}-v{version}.rsc")
    assert ("/ip firewall filter\nadd chain=input" in got) == (case == "firewall")
    assert "action=dst-nat" in got


@pytest.mark.parametrize("version", [7, 6])
def test_rules_office_golden(version: int) -> None:
    """Policy rules (examples/office-rules.yaml): a mangle mark and a table per rule,
    PCC inside the balanced one, routing rules for when_down, the domain rule's list
    (v7: DNS FWD entries; v6: a name in the list)."""
    got = compile_config(load(ROOT / "examples" / "office-rules.yaml"), version).script
    same_as_golden(got, f"office-rules-v{version}.rsc")
    rule_menu = "/routing rule\n" if version == 7 else "/ip route rule\n"
    assert rule_menu + "add routing-mark=wanwatch-rule-guest action=lookup-only-in-table" in got
    assert ("type=FWD" in got) == (version == 7)


@pytest.mark.parametrize("version", [7, 6])
def test_dual_stack_office_golden(version: int) -> None:
    """The IPv6 side (examples/office-dual-stack.yaml): addresses, RAs to the LANs, the
    RA-learned primary, the static backup's checked recursive IPv6 routes, NAT66 (v7
    only), the IPv6 firewall and IPv6 Netwatch (v7 only)."""
    got = compile_config(load(ROOT / "examples" / "office-dual-stack.yaml"), version).script
    same_as_golden(got, f"office-dual-stack-v{version}.rsc")
    assert "/ipv6 settings set accept-router-advertisements=yes" in got
    assert "gateway=fe80::1%ether2 scope=10" in got
    assert ("action=netmap" in got) == (version == 7)
    assert ("add host=2620:fe::fe type=icmp" in got) == (version == 7)
    assert "add host=2001:4860:4860::8888" not in got  # not pinned: RA-learned


@pytest.mark.parametrize("version", [7, 6])
def test_dual_stack_rules_golden(version: int) -> None:
    """Both families of the rules (tests/golden/rules/dual-stack-rules.yaml): v7 writes
    each rule's IPv6 side in /ipv6 firewall address-list and mangle and its tables'
    IPv6 routes, leaving out the DSL (no IPv6) and the RA-learned uplink (a note); v6
    has no IPv6 policy routing and says so."""
    cfg = load(ROOT / "tests" / "golden" / "rules" / "dual-stack-rules.yaml")
    got = compile_config(cfg, version).script
    same_as_golden(got, f"dual-stack-rules-v{version}.rsc")
    assert ("/ipv6 firewall mangle\n" in got) == (version == 7)
    assert ("protocol=icmpv6 action=mark-connection" in got) == (version == 7)
    assert "routing-table=wanwatch-rule-voip comment" not in got.split("/ipv6 route")[-1]
