"""What the Linux backend wants in the kernel for IPv6, computed without a kernel; its sysctls."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Interface, IPv6Address, IPv6Interface, IPv6Network
from pathlib import Path

from wanwatch.config import Config, loads
from wanwatch.engine.intent import Health, Intent, intent_from_config
from wanwatch.footprint import (
    DEFAULT_METRIC,
    FALLBACK_METRIC_BASE,
    FWMARK_MASK,
    RULE_PRIO_FWMARK,
    RULE_PRIO_SOURCE,
    RULE_PRIO_SUPPRESS,
    UNREACHABLE_METRIC,
)
from wanwatch.linux import sysctl
from wanwatch.linux.desired import (
    Uplink6,
    main_defaults6,
    resolve,
    resolve6,
    rules6,
    table_routes6,
)
from wanwatch.linux.netlink import (
    DEFAULT_DST6,
    IP6_RT_PRIO_USER,
    RT_TABLE_MAIN,
    RTN_UNREACHABLE,
    Address,
    Address6,
    Link,
    Route,
    Rule,
)

BASE = """
wans:
  - {name: A, interface: ether1, address: 192.168.0.2/24, gateway: 192.168.0.1,
     address6: 2001:db8:a::2/64, gateway6: "fe80::1", probe: {targets: [198.51.100.1]}}
  - {name: B, interface: ether2, address: 192.168.18.2/24, gateway: 192.168.18.1,
     priority: 2, address6: auto, probe: {targets: [198.51.100.2]}}
  - {name: C, interface: ether4, address: 10.64.0.2/24, gateway: 10.64.0.1,
     priority: 3, probe: {targets: [198.51.100.3]}}
lans:
  - {name: office, interface: ether3, address: 192.168.19.1/24, address6: auto}
"""
CFG = loads(BASE, "t.yaml")
LINKS = {
    "ether1": Link(2, "ether1", True, True),
    "ether2": Link(3, "ether2", True, True),
    "ether4": Link(5, "ether4", True, True),
}
ADDRS = [
    Address(2, "ether1", IPv4Interface("192.168.0.2/24"), 0, False),
    Address(3, "ether2", IPv4Interface("192.168.18.2/24"), 0, False),
    Address(5, "ether4", IPv4Interface("10.64.0.2/24"), 0, False),
]
A6 = IPv6Interface("2001:db8:a::2/64")
B6 = IPv6Interface("2001:db8:b::5054:ff:fe00:2/64")
ADDRS6 = [
    Address6(2, "ether1", A6, 87, dynamic=False, usable=True),
    Address6(3, "ether2", IPv6Interface("2001:db8:b::1234/64"), 0, dynamic=True, usable=False),
    Address6(3, "ether2", B6, 0, dynamic=True, usable=True),
]
RA_ROUTER = IPv6Address("fe80::b")
# The kernel's default from B's router advertisements (proto ra = 9, metric 1024).
MAIN6 = [Route(RT_TABLE_MAIN, DEFAULT_DST6, 1024, RA_ROUTER, oif=3, proto=9)]


def ups6(
    cfg: Config = CFG, intent: Intent | None = None, addrs6: list[Address6] = ADDRS6
) -> list[Uplink6]:
    intent = intent or intent_from_config(cfg)
    return resolve6(cfg, resolve(intent.uplinks, LINKS, ADDRS), addrs6, MAIN6)


def test_static_and_learned_ipv6_resolve_and_an_ipv4_only_uplink_has_none() -> None:
    a, b, c = ups6()
    assert (a.address, a.gateway, a.usable) == (A6, IPv6Address("fe80::1"), True)
    # auto: the SLAAC address that is neither tentative, deprecated nor temporary,
    # and the router the kernel learned from the advertisements on that link
    assert (b.address, b.gateway, b.usable) == (B6, RA_ROUTER, True)
    assert (c.address, c.gateway, c.usable) == (None, None, False)
    assert [(u.table, u.mark) for u in (a, b, c)] == [
        (28701, 0x10000), (28702, 0x20000), (28703, 0x30000)
    ]  # fmt: skip


def test_a_static_address6_counts_only_once_it_is_on_the_interface() -> None:
    a, b, _ = ups6(addrs6=ADDRS6[1:])
    assert a.address is None and not a.usable and b.usable


def test_an_ipv4_only_config_has_no_ipv6_side() -> None:
    v4 = CFG.replace(wans=tuple(w.replace(address6=None, gateway6=None) for w in CFG.wans), lans=())
    assert ups6(v4) == []
    assert rules6([]) == []


def test_ipv6_tables_refuse_unless_the_uplink_carries_ipv6() -> None:
    a, _, c = ups6()
    assert table_routes6(a) == [
        Route(a.table, DEFAULT_DST6, metric=UNREACHABLE_METRIC, kind=RTN_UNREACHABLE),
        Route(
            a.table,
            IPv6Network("2001:db8:a::/64"),
            metric=IP6_RT_PRIO_USER,
            oif=2,
            prefsrc=A6.ip,
        ),
        Route(a.table, DEFAULT_DST6, IP6_RT_PRIO_USER, IPv6Address("fe80::1"), oif=2),
    ]
    # an IPv6 packet marked for an IPv4-only uplink is refused, never routed elsewhere
    assert table_routes6(c) == [
        Route(c.table, DEFAULT_DST6, metric=UNREACHABLE_METRIC, kind=RTN_UNREACHABLE)
    ]


def test_ipv6_rules_mirror_ipv4s_with_the_ipv6_source() -> None:
    a, b, c = ups6()
    got = rules6([a, b, c])
    assert got[0] == Rule(RULE_PRIO_SUPPRESS, RT_TABLE_MAIN, suppress_prefixlen=0, family=6)
    for n, u in enumerate((a, b, c), start=1):
        assert (
            Rule(RULE_PRIO_FWMARK + n, u.table, fwmark=u.mark, fwmask=FWMARK_MASK, family=6) in got
        )
    assert Rule(RULE_PRIO_SOURCE + 2, b.table, src=IPv6Network(f"{B6.ip}/128"), family=6) in got
    assert all(r.family == 6 for r in got)
    assert not [r for r in got if r.table == c.table and r.src is not None]


def test_ipv6_main_defaults_follow_active6_not_active() -> None:
    # IPv4 stays on A while A's IPv6 died: IPv6 is carried by B, A is no IPv6 fallback
    intent = replace(intent_from_config(CFG, active=("A",)), active6=("B",), flush6=("A",))
    a, b, _ = ups6(intent=intent)
    got, keep = main_defaults6(intent, [a, b])
    assert not keep
    assert got == [b.default(RT_TABLE_MAIN, DEFAULT_METRIC)]


def test_ipv6_fallbacks_by_rank_and_an_unroutable_primary_keeps_its_route() -> None:
    intent = replace(intent_from_config(CFG, active=("A",)), active6=("A",))
    a, b, c = ups6(intent=intent)
    got, keep = main_defaults6(intent, [a, b, c])
    assert not keep
    assert got == [
        a.default(RT_TABLE_MAIN, DEFAULT_METRIC),
        b.default(RT_TABLE_MAIN, FALLBACK_METRIC_BASE + b.rank),
    ]
    down = replace(
        intent_from_config(CFG, active=("A",), health={"B": Health.DOWN}), active6=("A",)
    )
    assert main_defaults6(down, ups6(intent=down))[0] == [a.default(RT_TABLE_MAIN, DEFAULT_METRIC)]
    gone, keep = main_defaults6(intent, ups6(intent=intent, addrs6=ADDRS6[1:]))
    assert keep and gone == [b.default(RT_TABLE_MAIN, FALLBACK_METRIC_BASE + b.rank)]


def test_ipv6_sysctls_accept_ra_before_forwarding(tmp_path: Path) -> None:
    for parts, value in (
        (("all", "forwarding"), "0"),
        (("ether2", "accept_ra"), "1"),
        (("ether2", "ignore_routes_with_linkdown"), "0"),
    ):
        path = tmp_path.joinpath("net", "ipv6", "conf", *parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    changes = sysctl.ensure_uplink6("ether2", accept_ra=True, root=tmp_path)
    changes += sysctl.ensure_forwarding6(tmp_path)
    assert [(c.key, c.new) for c in changes] == [
        ("net.ipv6.conf.ether2.accept_ra", "2"),
        ("net.ipv6.conf.ether2.ignore_routes_with_linkdown", "1"),
        ("net.ipv6.conf.all.forwarding", "1"),
    ]
    assert sysctl.ensure_uplink6("ether9", accept_ra=True, root=tmp_path) == []  # absent
