"""What the Linux backend wants in the kernel, computed without a kernel; and the sysctls."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from wanwatch.config import loads
from wanwatch.engine.intent import Health, intent_from_config
from wanwatch.errors import SysctlError
from wanwatch.footprint import (
    DEFAULT_METRIC,
    FALLBACK_METRIC_BASE,
    FWMARK_MASK,
    RT_PROTO,
    RULE_PRIO_FWMARK,
    RULE_PRIO_SOURCE,
    RULE_PRIO_SUPPRESS,
    UNREACHABLE_METRIC,
)
from wanwatch.linux import sysctl
from wanwatch.linux.desired import (
    Uplink,
    describe,
    interface_address,
    main_defaults,
    plan_json,
    resolve,
    rules,
    table_routes,
)
from wanwatch.linux.netlink import (
    DEFAULT_DST,
    RT_SCOPE_LINK,
    RT_TABLE_MAIN,
    RTN_UNREACHABLE,
    Address,
    Link,
    Route,
    Rule,
)

CFG = loads(
    """
wans:
  - {name: A, interface: ether1, address: 192.168.0.2/24, gateway: 192.168.0.1,
     priority: 2, probe: {targets: [198.51.100.1]}}
  - {name: B, interface: ether2, gateway: 192.168.18.1, priority: 1,
     probe: {targets: [198.51.100.2]}}
  - {name: C, interface: wwan0, gateway: 10.64.0.1, priority: 2,
     probe: {targets: [198.51.100.3]}}
""",
    "t.yaml",
)
LINKS = {
    "ether1": Link(2, "ether1", True, True),
    "ether2": Link(3, "ether2", True, True),
}
ADDRS = [
    Address(2, "ether1", IPv4Interface("192.168.0.2/24"), RT_PROTO, False),
    Address(3, "ether2", IPv4Interface("10.9.9.9/24"), 0, False),
    Address(3, "ether2", IPv4Interface("192.168.18.7/24"), 0, True),
    Address(3, "ether2", IPv4Interface("192.168.18.2/24"), 0, False),
]


def ups(active: tuple[str, ...] = ()) -> list[Uplink]:
    return resolve(intent_from_config(CFG, active=active).uplinks, LINKS, ADDRS)


def test_resolve_ranks_by_priority_then_order_and_reads_missing_addresses() -> None:
    a, b, c = ups()
    assert (a.rank, b.rank, c.rank) == (1, 0, 2)
    assert a.address == IPv4Interface("192.168.0.2/24") and a.index == 2
    # B has no address in the config: the interface's primary one on the gateway's subnet
    assert b.address == IPv4Interface("192.168.18.2/24") and b.usable
    assert c.index is None and c.address is None and not c.usable


def test_tables_and_marks_follow_config_order_everywhere_they_show() -> None:
    intent = intent_from_config(CFG)
    assert [(u.table, u.mark) for u in ups()] == [
        (28701, 0x10000), (28702, 0x20000), (28703, 0x30000)
    ]  # fmt: skip
    assert [(u["table"], u["mark"]) for u in plan_json(intent)["uplinks"]] == [
        (28701, 0x10000), (28702, 0x20000), (28703, 0x30000)
    ]  # fmt: skip
    assert "table 28702 mark 0x20000 priority 1" in describe(intent)


def test_a_configured_address_counts_only_once_it_is_there() -> None:
    a = resolve(intent_from_config(CFG).uplinks, LINKS, ADDRS[1:])[0]
    assert a.address is None and not a.usable
    assert table_routes(a) == [
        Route(a.table, DEFAULT_DST, metric=UNREACHABLE_METRIC, kind=RTN_UNREACHABLE)
    ]


def test_interface_address_preference() -> None:
    gw = IPv4Address("192.168.18.1")
    assert interface_address(3, gw, ADDRS) == IPv4Interface("192.168.18.2/24")
    only_secondary = [ADDRS[1], ADDRS[2]]
    assert interface_address(3, gw, only_secondary) == IPv4Interface("192.168.18.7/24")
    assert interface_address(3, IPv4Address("172.16.0.1"), ADDRS) == IPv4Interface("10.9.9.9/24")
    assert interface_address(9, gw, ADDRS) is None


def test_table_routes_end_with_unreachable_even_without_a_link() -> None:
    a, _, c = ups()
    assert table_routes(a) == [
        Route(a.table, DEFAULT_DST, metric=UNREACHABLE_METRIC, kind=RTN_UNREACHABLE),
        Route(
            a.table,
            IPv4Network("192.168.0.0/24"),
            oif=2,
            scope=RT_SCOPE_LINK,
            prefsrc=IPv4Address("192.168.0.2"),
        ),
        Route(a.table, DEFAULT_DST, gateway=IPv4Address("192.168.0.1"), oif=2),
    ]
    assert table_routes(c) == [
        Route(c.table, DEFAULT_DST, metric=UNREACHABLE_METRIC, kind=RTN_UNREACHABLE)
    ]
    assert all(r.proto == RT_PROTO for r in table_routes(a))


def test_rules() -> None:
    a, b, c = ups()
    got = rules([a, b, c])
    assert got[0] == Rule(RULE_PRIO_SUPPRESS, RT_TABLE_MAIN, suppress_prefixlen=0)
    assert Rule(RULE_PRIO_FWMARK + 1, a.table, fwmark=a.mark, fwmask=FWMARK_MASK) in got
    assert Rule(RULE_PRIO_SOURCE + 2, b.table, src=IPv4Network("192.168.18.2/32")) in got
    assert Rule(RULE_PRIO_FWMARK + 3, c.table, fwmark=c.mark, fwmask=FWMARK_MASK) in got
    assert not [r for r in got if r.table == c.table and r.src is not None]  # no address
    assert all(r.proto == RT_PROTO for r in got)


def test_main_defaults_primary_first_then_usable_fallbacks_by_rank() -> None:
    routes, keep = main_defaults(intent_from_config(CFG, active=("A", "B")), ups())
    assert not keep
    assert [(r.metric, str(r.gateway)) for r in routes] == [
        (DEFAULT_METRIC, "192.168.0.1"),
        (FALLBACK_METRIC_BASE + 0, "192.168.18.1"),  # C has no interface: no fallback
    ]
    assert all(r.table == RT_TABLE_MAIN and r.dst == DEFAULT_DST for r in routes)


def test_a_down_uplink_is_no_fallback() -> None:
    intent = intent_from_config(CFG, active=("A",), health={"B": Health.DOWN})
    routes, _ = main_defaults(intent, resolve(intent.uplinks, LINKS, ADDRS))
    assert [r.metric for r in routes] == [DEFAULT_METRIC]


def test_unroutable_primary_keeps_the_current_route() -> None:
    routes, keep = main_defaults(intent_from_config(CFG, active=("C",)), ups())
    assert keep
    assert DEFAULT_METRIC not in [r.metric for r in routes]


def test_no_active_uplink_means_no_primary() -> None:
    routes, keep = main_defaults(intent_from_config(CFG, active=()), ups())
    assert not keep
    assert DEFAULT_METRIC not in [r.metric for r in routes]


# --------------------------------------------------------------------------- sysctl


def _tree(root: Path, values: dict[str, str]) -> None:
    for key, value in values.items():
        path = root.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")


def _get(root: Path, key: str) -> str:
    return root.joinpath(*key.split("/")).read_text().strip()


@pytest.mark.parametrize(
    ("every", "dev", "want"),
    [("1", "0", "2"), ("0", "1", "2"), ("2", "0", "0"), ("0", "0", "0"), ("0", "2", "2")],
)
def test_rp_filter_becomes_loose_only_when_strict(
    tmp_path: Path, every: str, dev: str, want: str
) -> None:
    _tree(
        tmp_path,
        {
            "net/ipv4/conf/all/rp_filter": every,
            "net/ipv4/conf/eth0.7/rp_filter": dev,
            "net/ipv4/conf/eth0.7/ignore_routes_with_linkdown": "0",
        },
    )
    changes = sysctl.ensure_uplink("eth0.7", tmp_path)
    assert _get(tmp_path, "net/ipv4/conf/eth0.7/rp_filter") == want
    assert _get(tmp_path, "net/ipv4/conf/all/rp_filter") == every  # never lowered
    assert _get(tmp_path, "net/ipv4/conf/eth0.7/ignore_routes_with_linkdown") == "1"
    keys = {c.key for c in changes}
    assert "net.ipv4.conf.eth0/7.ignore_routes_with_linkdown" in keys  # sysctl(8) spelling
    assert ("net.ipv4.conf.eth0/7.rp_filter" in keys) == (want != dev)
    assert sysctl.ensure_uplink("eth0.7", tmp_path) == []  # second time: nothing


def test_forwarding_and_missing_interfaces(tmp_path: Path) -> None:
    _tree(tmp_path, {"net/ipv4/ip_forward": "0", "net/ipv4/conf/all/rp_filter": "1"})
    assert [(c.key, c.old, c.new) for c in sysctl.ensure_forwarding(tmp_path)] == [
        ("net.ipv4.ip_forward", "0", "1")
    ]
    assert sysctl.ensure_forwarding(tmp_path) == []
    assert sysctl.ensure_uplink("ppp0", tmp_path) == []
    assert sysctl.uplink_interfaces_present(["ppp0", "all"], tmp_path) == ["all"]


def test_unwritable_setting_is_a_sysctl_error(tmp_path: Path) -> None:
    _tree(tmp_path, {"net/ipv4/conf/all/rp_filter": "0"})
    (tmp_path / "net/ipv4/ip_forward").mkdir(parents=True)  # a directory cannot be read
    with pytest.raises(SysctlError, match="ip_forward"):
        sysctl.ensure_forwarding(tmp_path)
