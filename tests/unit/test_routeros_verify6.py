"""verify's IPv6 side: /ipv6 routes simulated per scenario (tables6), an uplink's
failure taking its IPv6 first hops along, and the warnings where IPv6 cannot fail over."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Interface, ip_address
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_routeros_compile import target, watched

from wanwatch.config import Config, Wan, load, loads
from wanwatch.config.model import Dhcp6
from wanwatch.routeros.compile import OWNED, compile_config
from wanwatch.routeros.parse import parse_text
from wanwatch.routeros.verify import verify_text

ROOT = Path(__file__).resolve().parents[2]
BASE = """/ip address
add address=10.111.0.2/24 interface=ether1
add address=10.112.0.2/24 interface=ether2
/ip firewall nat
add chain=srcnat action=masquerade
/ip route
add dst-address=8.8.8.8 scope=10 gateway=10.111.0.1
add dst-address=8.8.4.4 scope=10 gateway=10.112.0.1
add distance=1 gateway=8.8.8.8 target-scope=11 check-gateway=ping
add distance=2 gateway=8.8.4.4 target-scope=11 check-gateway=ping
"""


def dual_stack(static_primary: bool) -> Config:
    cfg = load(ROOT / "examples" / "office-dual-stack.yaml")
    if not static_primary:
        return cfg
    w = cfg.wans[0].replace(
        address6=IPv6Interface("2001:db8:1::2/64"), gateway6=IPv6Address("fe80::1")
    )
    return cfg.replace(wans=(w, *cfg.wans[1:]))


def six(got: dict[str, Any]) -> dict[str, str | None]:
    """Each scenario's IPv6 next hop in main."""
    return {s["id"]: (s["tables6"]["main"] or {}).get("nexthop") for s in got["scenarios"]}


def codes(got: dict[str, Any]) -> set[str]:
    return {w["code"] for w in got["warnings"]}


def test_a_compiled_dual_stack_office_moves_ipv6_with_its_uplink() -> None:
    """Round trip: the export's checked recursive IPv6 routes, read back, carry IPv6 by
    the uplink that is up, in every scenario, with no warning."""
    got = verify_text(compile_config(dual_stack(static_primary=True), 7).script).to_json()
    hops = six(got)
    primary, backup = "fe80::1%ether1", "fe80::1%ether2"
    assert hops["baseline"] == primary
    # IPv4's uplink failures take the IPv6 router on the same interface along.
    assert hops["gateway-down:192.168.0.1"] == backup
    assert hops["upstream-dead:192.168.0.1"] == backup
    assert hops["gateway-down:192.168.18.1"] == primary
    # IPv6 failing alone (the LTE failure) moves IPv6 only.
    assert hops[f"gateway-down:{primary}"] == backup
    assert hops["target-silent:2001:4860:4860::8888"] == backup
    assert hops["target-silent:2620:fe::fe"] == primary
    ipv4 = {s["id"]: s["tables"]["main"]["nexthop"] for s in got["scenarios"]}
    assert ipv4[f"gateway-down:{primary}"] == "192.168.0.1"
    assert got["warnings"] == []


def test_a_ra_learned_primary_is_predicted_to_keep_ipv6_and_says_why() -> None:
    got = verify_text(compile_config(dual_stack(static_primary=False), 7).script).to_json()
    assert set(six(got).values()) == {"router-advertisement"}
    assert codes(got) == {"ipv6-ra-default"}


def test_one_unchecked_ipv6_default_is_no_failover() -> None:
    text = BASE + "/ipv6 route\nadd dst-address=::/0 gateway=fe80::1%ether1\n"
    got = verify_text(text).to_json()
    assert codes(got) == {"ipv6-no-failover"}
    warning = got["warnings"][0]
    assert warning["line"] == 12
    assert "through fe80::1%ether1 only" in warning["message"]
    assert set(six(got).values()) == {"fe80::1%ether1"}


def test_two_checked_ipv6_defaults_fail_over_on_a_dead_router() -> None:
    text = BASE + (
        "/ipv6 route\n"
        "add dst-address=::/0 gateway=fe80::1%ether1 check-gateway=ping distance=1\n"
        "add dst-address=::/0 gateway=fe80::1%ether2 check-gateway=ping distance=2\n"
    )
    got = verify_text(text).to_json()
    hops = six(got)
    assert hops["gateway-down:10.111.0.1"] == "fe80::1%ether2"
    # The check pings the router only: with nothing behind it, IPv6 stays, and verify
    # says so as it does for IPv4.
    assert hops["upstream-dead:10.111.0.1"] == "fe80::1%ether1"
    assert codes(got) == {"gateway-only-check"}


def test_the_same_link_local_router_on_two_uplinks_is_two_first_hops() -> None:
    text = BASE + (
        "/ipv6 route\n"
        "add dst-address=::/0 gateway=fe80::1%ether1 check-gateway=ping distance=1\n"
        "add dst-address=::/0 gateway=fe80::1%ether2 check-gateway=ping distance=2\n"
    )
    ids = [s["id"] for s in verify_text(text).to_json()["scenarios"]]
    assert "gateway-down:fe80::1%ether1" in ids
    assert "gateway-down:fe80::1%ether2" in ids


def test_an_ipv4_only_export_has_no_ipv6_tables() -> None:
    got = verify_text(BASE).to_json()
    assert all("tables6" not in s for s in got["scenarios"])


def test_a_ula_lan_needs_ipv6_nat_and_netmap_is_nat() -> None:
    routes = (
        "/ipv6 route\n"
        "add dst-address=::/0 gateway=fe80::1%ether1 check-gateway=ping distance=1\n"
        "add dst-address=::/0 gateway=fe80::1%ether2 check-gateway=ping distance=2\n"
    )
    ula = "/ipv6 address\nadd address=fd00:88::1/64 interface=bridge\n"
    glob = "/ipv6 address\nadd address=2001:db8:88::1/64 interface=bridge\n"
    netmap = (
        "/ipv6 firewall nat\n"
        "add chain=srcnat action=netmap src-address=fd00:88::/64 to-address=2001:db8:1::/64"
        " out-interface=ether1\n"
        "add chain=srcnat action=masquerade out-interface=ether2\n"
    )
    assert "no-masquerade" in codes(verify_text(BASE + ula + routes).to_json())
    assert "no-masquerade" not in codes(verify_text(BASE + glob + routes).to_json())
    assert "no-masquerade" not in codes(verify_text(BASE + ula + netmap + routes).to_json())


def test_the_v6_export_of_the_dual_stack_office_is_warned_as_its_notes_say() -> None:
    """RouterOS 6 has no IPv6 NAT (the export's note): its ULA LANs leave the static
    uplink untranslated, and verify says so, beside the RA-learned primary."""
    got = verify_text(compile_config(dual_stack(static_primary=False), 6).script).to_json()
    assert codes(got) == {"ipv6-ra-default", "no-masquerade"}


# --------------------------------------------------------------------------- round trip


@st.composite
def dual_stack_offices(draw: st.DrawFn) -> Config:
    """1-3 static dual-stack uplinks (every IPv6 router fe80::1), 1-2 targets per
    family each, in failover mode."""
    n = draw(st.integers(min_value=1, max_value=3))
    four = draw(st.permutations([IPv4Address("203.0.113.1") + i for i in range(12)]))
    six_ = draw(st.permutations([IPv6Address("2001:db8:ffff::1") + i for i in range(12)]))
    wans = []
    for i in range(n):
        m4, m6 = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        wans.append(
            {
                "name": f"W{i}",
                "interface": f"ether{i + 1}",
                "address": f"10.{i}.0.2/24",
                "gateway": f"10.{i}.0.1",
                "address6": f"2001:db8:{i}::2/64",
                "gateway6": "fe80::1",
                "priority": draw(st.integers(min_value=1, max_value=3)),
                "probe": {
                    "targets": [draw(target(t)) for t in four[2 * i : 2 * i + m4]]
                    + [draw(target(t)) for t in six_[2 * i : 2 * i + m6]]
                },
            }
        )
    lans = [{"name": "lan", "interface": "ether9", "address": "192.168.9.1/24", "address6": "auto"}]
    return loads(yaml.safe_dump({"wans": wans, "lans": lans}), "gen.yaml")


def oracle(cfg: Config, scenario: str, family: int) -> dict[str, str] | None:
    """Who should carry a family's default traffic: independent of the simulator. An
    uplink's IPv4 failure takes its IPv6 along; an IPv6 failure is IPv6's alone."""
    kind, _, subject = scenario.partition(":")
    order = [w for _, w in sorted(enumerate(cfg.wans), key=lambda p: (p[1].priority, p[0]))]

    def dead(w: Wan) -> bool:
        if kind not in ("gateway-down", "upstream-dead"):
            return False
        return subject == str(w.gateway) or (family == 6 and subject == f"fe80::1%{w.interface}")

    for w in order:
        if dead(w):
            continue
        targets = [t.address for t in w.probe.family(family)]
        live = [t for t in targets if not (kind == "target-silent" and subject == str(t))]
        if live:
            hop = str(w.gateway) if family == 4 else f"fe80::1%{w.interface}"
            return {"gateway": str(live[0]), "nexthop": hop}
    return None


@settings(max_examples=30, deadline=None)
@given(dual_stack_offices())
def test_round_trip_any_dual_stack_office(cfg: Config) -> None:
    script = compile_config(cfg, 7).script
    export = parse_text(script, "rt.rsc")
    for family, entries in ((4, export.netwatch), (6, export.netwatch6)):
        want = [(a, k) for a, k in watched(cfg, 7) if ip_address(a).version == family]
        assert [(str(n.host), n.type) for n in entries] == want
    report = verify_text(script, "rt.rsc")
    assert report.warnings == (), report.to_text()
    got = report.to_json()["scenarios"]
    ids = {"baseline"}
    for w in cfg.wans:
        for k in ("gateway-down", "upstream-dead"):
            ids |= {f"{k}:{w.gateway}", f"{k}:fe80::1%{w.interface}"}
        ids |= {f"target-silent:{t.address}" for t in w.probe.targets}
    assert {s["id"] for s in got} == ids
    for s in got:
        assert s["tables"] == {"main": oracle(cfg, s["id"], 4)}, s["id"]
        assert s["tables6"] == {"main": oracle(cfg, s["id"], 6)}, s["id"]


def test_a_dhcp6_uplink_asks_for_a_prefix_only_and_its_lans_masquerade() -> None:
    """``dhcp6`` becomes a prefix-only DHCPv6 client (no default route, no DNS from it):
    the checked recursive routes stay the failover, and the LANs masquerade on that
    uplink, which a note explains; read back, IPv6 still moves with the uplink."""
    cfg = dual_stack(static_primary=True)
    w = cfg.wans[0].replace(prefix6=None, dhcp6=Dhcp6(prefix_length=56))
    cfg = cfg.replace(wans=(w, *cfg.wans[1:]))
    out = compile_config(cfg, 7)
    lines = out.script.splitlines()
    assert lines.index(f'/ipv6 dhcp-client remove [find where comment~"^{OWNED}"]') < next(
        n for n, line in enumerate(lines) if line.startswith("add ")
    )
    (client,) = [line for line in lines if "request=prefix" in line]
    assert client == (
        "add interface=ether1 request=prefix pool-name=INET-UTAMA-pd prefix-hint=::/56 "
        f'add-default-route=no use-peer-dns=no comment="{OWNED}wans[0] INET-UTAMA dhcp6"'
    )
    (note,) = [n for n in out.notes if n.startswith("wans[0].dhcp6")]
    assert "masquerade on ether1" in note
    masq = [
        line for line in lines if "action=masquerade" in line and "out-interface=ether1" in line
    ]
    assert masq and all("netmap" not in line for line in masq)
    got = verify_text(out.script).to_json()
    assert six(got)["gateway-down:fe80::1%ether1"] == "fe80::1%ether2"
    assert got["warnings"] == []
    # No hint without a length: the ISP's choice.
    w = w.replace(dhcp6=Dhcp6())
    plain = compile_config(cfg.replace(wans=(w, *cfg.wans[1:])), 7).script
    assert "prefix-hint" not in plain and "request=prefix" in plain
