"""Dynamic uplinks in the backend's desired state, and the DHCP client's lease hand-off."""

from __future__ import annotations

import dataclasses
import subprocess
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from wanwatch.config import loads
from wanwatch.engine.intent import Intent, intent_from_config
from wanwatch.footprint import DEFAULT_METRIC
from wanwatch.linux.desired import main_defaults, resolve, rules, table_routes
from wanwatch.linux.dhcp_client import SCRIPT, parse_line
from wanwatch.linux.netlink import DEFAULT_DST, RT_SCOPE_LINK, RT_TABLE_MAIN, Address, Link, Route

CFG = loads(
    """
wans:
  - {name: D, interface: ether1, address: dhcp, probe: {targets: [198.51.100.1]}}
  - {name: P, interface: ppp0, priority: 2, probe: {targets: [203.0.113.1]}}
""",
    "t.yaml",
)
LINKS = {"ether1": Link(2, "ether1", True, True), "ppp0": Link(3, "ppp0", True, True)}
LEASE = IPv4Interface("10.100.0.123/24")
PPP = Address(
    3, "ppp0", IPv4Interface("10.201.255.2/32"), 0, False, peer=IPv4Address("10.201.255.1")
)


def leased(router: str | None = "10.100.0.1") -> Intent:
    base = intent_from_config(CFG, active=("D",))
    d = dataclasses.replace(
        base.uplinks[0], address=LEASE, gateway=IPv4Address(router) if router else None
    )
    return dataclasses.replace(base, uplinks=(d, base.uplinks[1]))


def test_dhcp_uplink_without_a_lease_is_not_usable_even_with_an_address() -> None:
    stray = Address(2, "ether1", IPv4Interface("10.9.9.9/24"), 0, False)
    d, _ = resolve(intent_from_config(CFG).uplinks, LINKS, [stray])
    assert d.address is None and not d.usable  # never the interface's other addresses


def test_dhcp_uplink_routes_via_the_router_of_its_lease() -> None:
    intent = leased()
    d, _ = resolve(intent.uplinks, LINKS, [Address(2, "ether1", LEASE, 0, False)])
    assert d.usable and d.gateway == IPv4Address("10.100.0.1")
    assert Route(d.table, DEFAULT_DST, gateway=d.gateway, oif=2) in table_routes(d)
    assert any(r.src == IPv4Network("10.100.0.123/32") for r in rules([d]))


def test_dhcp_lease_not_yet_on_the_interface_or_without_router_is_not_usable() -> None:
    d, _ = resolve(leased().uplinks, LINKS, [])
    assert not d.usable
    d, _ = resolve(leased(router=None).uplinks, LINKS, [Address(2, "ether1", LEASE, 0, False)])
    assert not d.usable


def test_point_to_point_with_a_peer_routes_via_the_peer_on_link() -> None:
    _, p = resolve(intent_from_config(CFG).uplinks, LINKS, [PPP])
    assert p.usable and p.gateway == PPP.peer and p.address == PPP.interface
    routes = table_routes(p)
    peer = Route(
        p.table,
        IPv4Network("10.201.255.1/32"),
        oif=3,
        scope=RT_SCOPE_LINK,
        prefsrc=IPv4Address("10.201.255.2"),
    )
    assert peer in routes
    assert Route(p.table, DEFAULT_DST, gateway=PPP.peer, oif=3) in routes


def test_point_to_point_without_a_peer_routes_via_the_device() -> None:
    bare = dataclasses.replace(PPP, peer=None)
    intent = intent_from_config(CFG, active=("P",))
    _, p = resolve(intent.uplinks, LINKS, [bare])
    assert p.gateway is None
    assert Route(p.table, DEFAULT_DST, oif=3, scope=RT_SCOPE_LINK) in table_routes(p)
    defaults, keep = main_defaults(intent, resolve(intent.uplinks, LINKS, [bare]))
    assert not keep
    assert defaults[0] == Route(
        RT_TABLE_MAIN, DEFAULT_DST, metric=DEFAULT_METRIC, oif=3, scope=RT_SCOPE_LINK
    )


def test_point_to_point_follows_a_new_address() -> None:
    moved = Address(
        3, "ppp0", IPv4Interface("10.201.255.6/32"), 0, False, peer=IPv4Address("10.201.255.5")
    )
    _, p = resolve(intent_from_config(CFG).uplinks, LINKS, [moved])
    assert p.address == moved.interface and p.gateway == moved.peer


def test_absent_interface_is_not_usable() -> None:
    d, p = resolve(leased().uplinks, {}, [])
    assert d.index is None and p.index is None and not d.usable and not p.usable


def run_script(tmp_path: Path, event: str, env: dict[str, str]) -> str:
    script = tmp_path / "s"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    out = subprocess.run(
        [str(script), event], env=env, capture_output=True, text=True, check=True, timeout=5
    )
    return out.stdout


def test_the_udhcpc_script_hands_the_lease_over_and_changes_nothing(tmp_path: Path) -> None:
    env = {
        "ip": "10.100.0.123",
        "mask": "24",
        "router": "10.100.0.1 10.100.0.254",
        "dns": "10.100.0.53 198.51.100.53",
        "lease": "120",
        "serverid": "10.100.0.1",
        "PATH": "/usr/bin:/bin",
    }
    kind, lease = parse_line(run_script(tmp_path, "bound", env), 5.0) or ("", None)
    assert kind == "bound" and lease is not None
    assert lease.address == LEASE and lease.router == IPv4Address("10.100.0.1")
    assert lease.dns == (IPv4Address("10.100.0.53"), IPv4Address("198.51.100.53"))
    assert lease.lease_s == 120 and lease.server == IPv4Address("10.100.0.1")
    assert lease.bound_at == 5.0
    deconfig = run_script(tmp_path, "deconfig", {"PATH": "/bin"})
    assert parse_line(deconfig, 1.0) == ("deconfig", None)
    assert parse_line(deconfig.strip(), 1.0) == ("deconfig", None)  # as the log reader hands it


def test_lines_that_are_not_ours_or_are_malformed() -> None:
    assert parse_line("udhcpc: started, v1.35.0", 0.0) is None
    bad = "wanwatch-lease\tbound\t10.1.1.300\t24\t\t\t60\t"
    assert parse_line(bad, 0.0) == ("malformed", None)


def test_status_text_and_json_show_lease_link_and_peer() -> None:
    from wanwatch import status as st
    from wanwatch.cli.router import format_status

    def up(name: str, **extra: object) -> dict[str, object]:
        return {
            "name": name, "state": "up", "rtt_ms": 1.0, "loss_pct": 0.0,
            "since": "2026-12-05T12:00:00+00:00", "for_s": 1.0, "preferred": True,
            "carrying": True, "admin": "enabled", "phase": None, "progress": {},
            "targets": {}, "probes": {}, **extra,
        }  # fmt: skip

    lease = {"address": "10.100.0.123/24", "router": "10.100.0.1", "dns": [],
             "lease_s": 120, "server": "10.100.0.1", "age_s": 3.0}  # fmt: skip
    answer = {
        "wans": [
            up("D", kind="dhcp", lease=lease, address=lease["address"], gateway="10.100.0.1"),
            up("P", kind="point-to-point", address="10.201.255.2/32", gateway="10.201.255.1"),
            up("U", state="down", link="absent", present=False),
            up("S"),  # an older daemon's answer: no new fields at all
        ],
        "active": ["D"], "mode": "failover", "stale": False, "applied": True,
        "backend_error": None, "failed_steps": {}, "retry_in_s": None, "contested": [],
        "repairs": 0, "counters": {}, "counters_age_s": None, "dnsmasq": None,
        "leases": [], "events": [], "uptime_s": 1.0, "pid": 1,
    }  # fmt: skip
    decoded = st.from_json(answer)
    assert decoded.wans[0].lease == st.LeaseStatus("10.100.0.123/24", "10.100.0.1", [], 120,
                                                   "10.100.0.1", 3.0)  # fmt: skip
    assert (decoded.wans[3].kind, decoded.wans[3].link, decoded.wans[3].present) == (
        "static",
        "up",
        True,
    )
    text = format_status(answer)
    assert "D: dhcp lease 10.100.0.123/24 via 10.100.0.1 from 10.100.0.1, 120 s" in text
    assert "P: point-to-point 10.201.255.2/32 via 10.201.255.1" in text
    assert "U: interface absent (adopted when it appears)" in text
    assert "S:" not in text
