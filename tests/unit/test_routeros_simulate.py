"""RouterOS route selection as the simulator models it (manual rules, one per test)."""

from __future__ import annotations

import pytest

from wanwatch.routeros.parse import parse_text
from wanwatch.routeros.simulate import (
    BASELINE,
    Evaluation,
    Scenario,
    State,
    script_effects,
    settle,
)

ADDRS = (
    "/ip address\n"
    "add address=10.1.0.2/24 interface=ether1\n"
    "add address=10.2.0.2/24 interface=ether2\n"
)


def main_of(text: str, scenario: Scenario = BASELINE) -> tuple[str, str | None] | None:
    export = parse_text(ADDRS + text)
    ev, ok = settle(export, scenario, State())
    assert ok
    c = ev.tables()["main"]
    return None if c is None else (c.gateway, c.nexthop)


def down(gw: str) -> Scenario:
    return Scenario(f"gateway-down:{gw}", down=frozenset({gw}))


def dead(gw: str) -> Scenario:
    return Scenario(f"upstream-dead:{gw}", upstream_dead=frozenset({gw}))


def silent(addr: str) -> Scenario:
    return Scenario(f"target-silent:{addr}", silent=frozenset({addr}))


RECURSIVE = (
    "/ip route\n"
    "add dst-address=8.8.8.8 gateway=10.1.0.1 scope=10\n"
    "add dst-address=9.9.9.9 gateway=10.2.0.1 scope=10\n"
    "add gateway=8.8.8.8 distance=1 check-gateway=ping target-scope={ts}\n"
    "add gateway=9.9.9.9 distance=2 check-gateway=ping target-scope={ts}\n"
)


@pytest.mark.parametrize("ts", [10, 11])
def test_recursive_routes_pinned_by_scope_10(ts: int) -> None:
    text = RECURSIVE.format(ts=ts)
    assert main_of(text) == ("8.8.8.8", "10.1.0.1")
    assert main_of(text, down("10.1.0.1")) == ("9.9.9.9", "10.2.0.1")
    assert main_of(text, dead("10.1.0.1")) == ("9.9.9.9", "10.2.0.1")
    assert main_of(text, silent("8.8.8.8")) == ("9.9.9.9", "10.2.0.1")
    assert main_of(text, silent("9.9.9.9")) == ("8.8.8.8", "10.1.0.1")


def test_target_scope_below_the_pin_scope_cannot_resolve() -> None:
    assert main_of(RECURSIVE.format(ts=9)) is None


def test_target_scope_30_resolves_through_the_other_default_when_the_pin_dies() -> None:
    text = RECURSIVE.format(ts=30).replace("scope=10\n", "scope=10 check-gateway=ping\n")
    # The pin through the dead gateway is inactive; 8.8.8.8 then resolves through
    # the backup's default route (scope 30 <= 30) and the "primary" stays active.
    assert main_of(text, down("10.1.0.1")) == ("8.8.8.8", "10.2.0.1")


def test_smallest_target_scope_of_a_nexthop_wins() -> None:
    # Both routes use 8.8.8.8; the second's target-scope=10 applies to both, so the
    # scope-20 pin cannot resolve it for either ("each nexthop address selects the
    # smallest value of target-scope from all routes that use it").
    text = (
        "/ip route\n"
        "add dst-address=8.8.8.8 gateway=10.1.0.1 scope=20\n"
        "add gateway=8.8.8.8 target-scope=30\n"
        "add dst-address=1.2.3.0/24 gateway=8.8.8.8 target-scope=10\n"
    )
    assert main_of(text) is None
    assert main_of(text.replace("target-scope=10", "target-scope=20")) == ("8.8.8.8", "10.1.0.1")


def test_lowest_distance_then_file_order() -> None:
    text = (
        "/ip route\nadd gateway=10.2.0.1 distance=5\nadd gateway=10.1.0.1 distance=5\n"
        "add gateway=10.1.0.9 distance=9\n"
    )
    assert main_of(text) == ("10.2.0.1", "10.2.0.1")


def test_check_gateway_ping_and_arp_and_none() -> None:
    ping = "/ip route\nadd gateway=10.1.0.1 check-gateway=ping\nadd gateway=10.2.0.1 distance=2\n"
    assert main_of(ping, down("10.1.0.1")) == ("10.2.0.1", "10.2.0.1")
    # The gateway itself answers when only its upstream is dead: the LTE blind spot.
    assert main_of(ping, dead("10.1.0.1")) == ("10.1.0.1", "10.1.0.1")
    arp = ping.replace("check-gateway=ping", "check-gateway=arp")
    assert main_of(arp, down("10.1.0.1")) == ("10.2.0.1", "10.2.0.1")
    none = ping.replace(" check-gateway=ping", "")
    assert main_of(none, down("10.1.0.1")) == ("10.1.0.1", "10.1.0.1")


def test_disabled_and_blackhole_routes() -> None:
    text = (
        "/ip route\nadd gateway=10.1.0.1 disabled=yes\n"
        "add gateway=10.2.0.1 distance=3\nadd type=blackhole distance=200\n"
    )
    assert main_of(text) == ("10.2.0.1", "10.2.0.1")
    assert main_of(text, Scenario("x", down=frozenset({"10.2.0.1"}))) == ("10.2.0.1", "10.2.0.1")
    only_bh = "/ip route\nadd blackhole distance=200\n"
    assert main_of(only_bh) == ("blackhole", None)


def test_interface_gateway_and_percent_interface() -> None:
    # A PPPoE session ends with its server: the interface, and the route, go down.
    text = (
        "/interface pppoe-client\nadd name=pppoe-out1 interface=ether1\n"
        "/ip route\nadd gateway=pppoe-out1\n"
        "add gateway=10.9.9.9%ether2 distance=2\n"
    )
    assert main_of(text) == ("pppoe-out1", "pppoe-out1")
    assert main_of(text, down("pppoe-out1")) == ("10.9.9.9", "10.9.9.9")
    # An Ethernet interface stays up when the modem behind it stops answering, and
    # check-gateway has no address to test on an interface gateway.
    ether = (
        "/ip route\nadd gateway=ether3 check-gateway=ping\nadd gateway=10.9.9.9%ether2 distance=2\n"
    )
    assert main_of(ether, down("ether3")) == ("ether3", "ether3")


def test_unknown_subnets_are_assumed_on_link_without_addresses() -> None:
    # The official recipe as often pasted, without /ip address (DHCP-assigned WANs).
    export = parse_text(
        "/ip route\n"
        "add dst-address=8.8.8.8 scope=10 gateway=10.111.0.1\n"
        "add distance=1 gateway=8.8.8.8 target-scope=11 check-gateway=ping\n"
        "add distance=2 gateway=10.112.0.1\n"
    )
    c = Evaluation(export, BASELINE).tables()["main"]
    assert c is not None and (c.gateway, c.nexthop, c.interface) == ("8.8.8.8", "10.111.0.1", None)


def test_with_full_addresses_an_off_subnet_gateway_is_unreachable() -> None:
    assert main_of("/ip route\nadd gateway=172.16.0.1\n") is None


def test_cyclic_recursion_is_unresolvable() -> None:
    text = (
        "/ip route\n"
        "add dst-address=1.1.1.1/32 gateway=2.2.2.2 scope=10 target-scope=10\n"
        "add dst-address=2.2.2.2/32 gateway=1.1.1.1 scope=10 target-scope=10\n"
        "add gateway=1.1.1.1 target-scope=10\n"
    )
    assert main_of(text) is None


TABLES = (
    "/routing table\nadd name=t1 fib\n"
    "/ip route\n"
    "add gateway=10.1.0.1 routing-table=t1 check-gateway=ping\n"
    "add gateway=10.1.0.1 check-gateway=ping\n"
    "add gateway=10.2.0.1 distance=2 check-gateway=ping\n"
)


def tables_of(text: str, scenario: Scenario) -> dict[str, tuple[str | None, bool] | None]:
    ev = Evaluation(parse_text(ADDRS + text), scenario)
    return {t: (c.nexthop, c.fallback) if c else None for t, c in ev.tables().items()}


def test_marked_table_falls_back_to_main() -> None:
    assert tables_of(TABLES, BASELINE)["t1"] == ("10.1.0.1", False)
    assert tables_of(TABLES, down("10.1.0.1"))["t1"] == ("10.2.0.1", True)


@pytest.mark.parametrize(
    "rule",
    [
        "/routing rule\nadd routing-mark=t1 action=lookup-only-in-table table=t1\n",
        "/ip route rule\nadd routing-mark=t1 action=lookup-only-in-table table=t1\n",
    ],
)
def test_lookup_only_in_table_stops_the_fallback(rule: str) -> None:
    assert tables_of(TABLES + rule, down("10.1.0.1"))["t1"] is None


def test_at_table_resolves_there_only() -> None:
    text = (
        "/routing table\nadd name=t1 fib\n/ip route\n"
        "add dst-address=8.8.8.8 gateway=10.1.0.1 scope=10\n"
        "add gateway=8.8.8.8@main routing-table=t1 target-scope=11\n"
        "add gateway=8.8.8.8@t1 routing-table=t1 target-scope=11 distance=0\n"
    )
    # @t1 finds no pin in t1; @main does.
    assert tables_of(text, BASELINE)["t1"] == ("10.1.0.1", False)
    ev = Evaluation(parse_text(ADDRS + text), BASELINE)
    assert ev.usable(2) == ()


def test_script_effects_understand_common_forms() -> None:
    export = parse_text(
        '/system script\nadd name=dn source="/ip route set [find comment=A] distance=9"\n'
    )
    assert [e.distance for e in script_effects(export, "dn")] == [9]
    assert [e.distance for e in script_effects(export, "/system script run dn")] == [9]
    [effect] = script_effects(export, '/ip/route/disable [find where comment="A"]; :log info x')
    assert effect.disabled is True and effect.selector is not None
    assert effect.selector.conditions[0].value == "A"
    assert (
        script_effects(export, ":foreach i in=[/ip route find] do={ /ip route disable $i }") == []
    )
    assert script_effects(export, '/ip route disable [find comment="unterminated]') == []


NETWATCH = (
    "/ip route\n"
    "add comment=pin dst-address=1.1.1.1 gateway=10.1.0.1 scope=10\n"
    "add comment=ISP1 gateway=10.1.0.1\n"
    "add comment=ISP2 gateway=10.2.0.1 distance=2\n"
    "/tool netwatch\n"
    'add host=1.1.1.1 down-script="/ip route disable [find comment=ISP1]" '
    'up-script="/ip route enable [find comment=ISP1]"\n'
)


def test_netwatch_scripts_move_traffic_and_back() -> None:
    export = parse_text(ADDRS + NETWATCH)
    state = State()
    settle(export, BASELINE, state)
    ev, ok = settle(export, dead("10.1.0.1"), state)
    c = ev.tables()["main"]
    assert ok and c is not None and c.nexthop == "10.2.0.1"
    back, ok = settle(export, BASELINE, state)
    c = back.tables()["main"]
    assert ok and c is not None and c.nexthop == "10.1.0.1"


def test_unpinned_netwatch_host_flaps() -> None:
    text = NETWATCH.replace("add comment=pin dst-address=1.1.1.1 gateway=10.1.0.1 scope=10\n", "")
    export = parse_text(ADDRS + text)
    state = State()
    settle(export, BASELINE, state)
    _, ok = settle(export, down("10.1.0.1"), state)
    assert not ok


def test_ecmp_route_lists_its_usable_members() -> None:
    text = "/ip route\nadd gateway=10.1.0.1,10.2.0.1 check-gateway=ping\n"
    assert main_of(text) == ("10.1.0.1,10.2.0.1", "10.1.0.1,10.2.0.1")
    assert main_of(text, down("10.1.0.1")) == ("10.2.0.1", "10.2.0.1")
