"""The RouterOS script language around an export, and the run-time behaviour verify
models, one written example per failure class seen on real exports."""

from __future__ import annotations

from typing import Any

from wanwatch.routeros.commands import Command, commands
from wanwatch.routeros.parse import parse_text
from wanwatch.routeros.verify import verify_text

TWO_UPLINKS = (
    "/ip address\n"
    "add address=10.1.0.2/24 interface=ether1\n"
    "add address=10.2.0.2/24 interface=ether2\n"
    "add address=192.168.88.1/24 interface=bridge\n"
    "/ip firewall nat\nadd chain=srcnat action=masquerade\n"
)


def carriers(text: str, table: str = "main") -> dict[str, Any]:
    got = verify_text(text, "t.rsc").to_json()
    return {s["id"]: s["tables"][table] for s in got["scenarios"]}


def codes(text: str) -> list[tuple[str, int]]:
    return [(w.code, w.line) for w in verify_text(text, "t.rsc").warnings]


# --------------------------------------------------------------------------- language


def test_blocks_run_their_statements_and_restore_the_menu() -> None:
    e = parse_text(
        "{\n/ip route\nadd gateway=10.0.0.1\n}\n"
        "/ip route\n{ add gateway=10.0.0.2 distance=2 }\n"
        "add gateway=10.0.0.3 distance=3\n"
    )
    assert [r.gateway_text for r in e.routes] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert e.notes == ()


def test_loops_and_conditionals_are_skipped_whole() -> None:
    e = parse_text(
        "/ip route\n"
        ":foreach i in=[/interface find] do={\n  /ip route add gateway=10.9.9.9\n}\n"
        ':if ([/system resource get uptime] > 0) do={ :log info "up" } else={\n'
        "  :log info x }\n"
        ":for i from=1 to=3 do={ :put $i }\n"
        "add gateway=10.0.0.1\n"
    )
    assert [r.gateway_text for r in e.routes] == ["10.0.0.1"]
    assert e.skipped_lines == 3 and e.notes == ()


def test_literal_variables_are_substituted_unknown_ones_noted() -> None:
    e = parse_text(
        ':global wan1ip "10.1.1.2"\n:local gw 10.1.1.1\n:global later\n'
        ":local found [/ip route find]\n"
        '/ip address add address="$wan1ip/24" interface=ether1\n'
        '/ip route add gateway=$gw comment="via $gw"\n'
        "/ip route add gateway=$later distance=2\n"
        "/ip route add gateway=$found distance=3\n"
    )
    assert str(e.addresses[0].address) == "10.1.1.2/24"
    assert [(r.gateway_text, r.comment) for r in e.routes] == [("10.1.1.1", "via 10.1.1.1")]
    assert [n[0] for n in e.notes] == [7, 8]
    assert "$later" in e.notes[0][1] and "$found" in e.notes[1][1]


def test_multi_line_strings_and_slash_paths() -> None:
    e = parse_text(
        '/system/script/add name=failover source="/ip route disable [find comment=ISP1]\n'
        ':log info \\"failover\\"\n"\n'
        "/ip/route/add gateway=10.1.0.1 comment=ISP1\n"
    )
    assert e.scripts["failover"].splitlines() == [
        "/ip route disable [find comment=ISP1]",
        ':log info "failover"',
    ]
    assert e.routes[0].comment == "ISP1"


def test_an_item_the_export_marks_invalid_is_not_modelled() -> None:
    e = parse_text(
        "/ip dhcp-client\n# DHCP client can not run on slave interface!\n"
        "add interface=ether1\nadd interface=ether2\n"
    )
    assert [r.gateway_text for r in e.routes] == ["ether2"]
    assert e.notes == (
        (3, "RouterOS marks this item invalid: DHCP client can not run on slave interface!"),
    )


def test_a_long_user_comment_is_not_a_marker() -> None:
    e = parse_text(
        "/ip dhcp-client\n# this client cannot be removed: main uplink\nadd interface=ether1\n"
    )
    assert [r.gateway_text for r in e.routes] == ["ether1"]


# --------------------------------------------------------------------------- client routes


def test_pppoe_route_goes_down_with_its_session() -> None:
    text = (
        TWO_UPLINKS
        + "/interface pppoe-client\nadd name=pppoe-out1 interface=ether1 add-default-route=yes\n"
        + "/ip route\nadd gateway=10.2.0.1 distance=2 check-gateway=ping\n"
    )
    got = carriers(text)
    assert got["baseline"] == {"gateway": "pppoe-out1", "nexthop": "pppoe-out1"}
    assert got["gateway-down:pppoe-out1"] == {"gateway": "10.2.0.1", "nexthop": "10.2.0.1"}
    # The session stays up when only the internet behind the server is gone.
    assert got["upstream-dead:pppoe-out1"] == {"gateway": "pppoe-out1", "nexthop": "pppoe-out1"}


def test_lte_apn_profile_gives_the_default_route_and_its_distance() -> None:
    e = parse_text(
        "/interface lte apn\nadd name=inet apn=internet default-route-distance=5\n"
        "/interface lte\nset [ find default-name=lte1 ] apn-profiles=inet\n"
    )
    assert [(r.gateway_text, r.distance, r.origin) for r in e.routes] == [
        ("lte1", 5, "interface lte")
    ]
    assert e.peer_links == frozenset({"lte1"})


def test_a_tunnel_goes_down_with_the_uplink_that_carries_it() -> None:
    text = (
        TWO_UPLINKS
        + "/interface l2tp-client\n"
        + "add name=l2tp-out1 connect-to=203.0.113.7 add-default-route=yes\n"
        + "/ip route\nadd dst-address=203.0.113.7 gateway=10.1.0.1\n"
        + "add gateway=10.2.0.1 distance=2 check-gateway=ping\n"
        + "add gateway=10.1.0.1 distance=3 check-gateway=ping\n"
    )
    got = carriers(text)
    assert got["baseline"]["gateway"] == "l2tp-out1"
    # Its server is reached through 10.1.0.1: that uplink's failure ends the tunnel.
    assert got["gateway-down:10.1.0.1"]["gateway"] == "10.2.0.1"
    assert got["upstream-dead:10.1.0.1"]["gateway"] == "10.2.0.1"
    assert got["gateway-down:10.2.0.1"]["gateway"] == "l2tp-out1"


def test_static_route_wins_a_distance_tie_with_a_dhcp_route() -> None:
    text = (
        "# by RouterOS 6.49\n/ip dhcp-client\nadd interface=ether3\n"
        + TWO_UPLINKS
        + "/ip route\nadd gateway=10.2.0.1 check-gateway=ping\n"
    )
    assert carriers(text)["baseline"] == {"gateway": "10.2.0.1", "nexthop": "10.2.0.1"}


def test_branches_reads_the_bodies_of_conditionals_and_loops() -> None:
    script = (
        ':if ($bound=1) do={ /ip route set [find comment=A] gateway=$"gateway-address" } '
        "else={ :if (1) do={ /ip route disable [find comment=B] } }\n"
        ':log info "do={ /ip route remove [find] }"\n'
        ":foreach r in=[/ip route find] do={\n  /ip route set $r distance=3\n}\n"
    )
    assert [c for c in commands(script, "s") if isinstance(c, Command)] == []
    got = [
        (c.line, c.verb, c.selector.conditions[0].value if c.selector else sorted(c.flags))
        for c in commands(script, "s", branches=True)
        if isinstance(c, Command)
    ]
    assert got == [(1, "set", "A"), (1, "disable", "B"), (4, "set", ["$r"])]


PINS = (
    "/ip route\n"
    "add dst-address=8.8.8.8 gateway=10.9.1.1 scope=10 comment=PIN1\n"
    "add dst-address=9.9.9.9 gateway=10.9.2.1 scope=10 comment=PIN2\n"
    "add gateway=8.8.8.8 target-scope=11 check-gateway=ping\n"
    "add gateway=9.9.9.9 target-scope=11 check-gateway=ping distance=2\n"
    "/ip firewall nat\nadd chain=srcnat action=masquerade\n"
)


def test_ppp_profile_on_up_moves_the_routes_it_sets_to_the_session() -> None:
    # pppoe-out1 names its profile; pppoe-out2 uses the built-in "default" one.
    text = (
        "/ppp profile\n"
        'add name=isp1 on-up=":local gw [/ip address get [find interface=\\"pppoe-out1\\"] '
        'network];\\r\\n:if (\\$gw != \\"\\") do={ /ip route set [find comment=\\"PIN1\\"] '
        'gateway=\\$gw }"\n'
        'set default on-up="/ip route set [find comment=PIN2] gateway=\\$\\"remote-address\\""\n'
        "/interface pppoe-client\n"
        "add name=pppoe-out1 interface=ether1 profile=isp1\n"
        "add name=pppoe-out2 interface=ether2\n" + PINS
    )
    assert [r.gateway_text for r in parse_text(text).routes[:2]] == ["pppoe-out1", "pppoe-out2"]
    got = carriers(text)
    # The placeholders 10.9.1.1 and 10.9.2.1 are no uplinks of their own.
    assert set(got) == {
        "baseline",
        "gateway-down:pppoe-out1",
        "gateway-down:pppoe-out2",
        "upstream-dead:pppoe-out1",
        "upstream-dead:pppoe-out2",
        "target-silent:8.8.8.8",
        "target-silent:9.9.9.9",
    }
    assert got["baseline"] == {"gateway": "8.8.8.8", "nexthop": "pppoe-out1"}
    assert got["gateway-down:pppoe-out1"] == {"gateway": "9.9.9.9", "nexthop": "pppoe-out2"}
    assert got["upstream-dead:pppoe-out1"] == {"gateway": "9.9.9.9", "nexthop": "pppoe-out2"}
    assert got["gateway-down:pppoe-out2"] == {"gateway": "8.8.8.8", "nexthop": "pppoe-out1"}


def test_dhcp_client_script_moves_the_routes_it_sets_to_the_client() -> None:
    text = (
        "/ip dhcp-client\n"
        "add interface=ether1 add-default-route=no "
        'script=":if (\\$bound=1) do={ /ip route set [find where comment=\\"PIN1\\"] '
        'gateway=\\$\\"gateway-address\\" }"\n'
        "add interface=ether2 add-default-route=no disabled=yes "
        'script="/ip route set [find comment=PIN2] gateway=\\$\\"gateway-address\\""\n' + PINS
    )
    e = parse_text(text)
    # The disabled client runs no script: PIN2 keeps its written gateway.
    assert [r.gateway_text for r in e.routes[:2]] == ["ether1", "10.9.2.1"]
    got = carriers(text)
    assert got["baseline"] == {"gateway": "8.8.8.8", "nexthop": "ether1"}
    # A lease outlives a dead gateway, but the check through the pin fails.
    assert got["gateway-down:ether1"] == {"gateway": "9.9.9.9", "nexthop": "10.9.2.1"}
    assert got["upstream-dead:ether1"] == {"gateway": "9.9.9.9", "nexthop": "10.9.2.1"}


def test_client_scripts_too_dynamic_or_ambiguous_are_noted_not_modelled() -> None:
    text = (
        "/ppp profile\n"
        "add name=shared "
        'on-up="/ip route set [find comment=PIN1] gateway=\\$\\"remote-address\\""\n'
        "/interface pppoe-client\n"
        "add name=pppoe-out1 interface=ether1 profile=shared\n"
        "add name=pppoe-out2 interface=ether2 profile=shared\n"
        "/ip dhcp-client\n"
        'add interface=ether3 script=":local r [/ip route find comment=PIN2]; '
        '/ip route set \\$r gateway=\\$\\"gateway-address\\""\n'
        'add interface=ether4 script="/ip route set [find comment=PIN2] gateway=10.9.9.9; '
        '/ip route add gateway=\\$\\"gateway-address\\" routing-table=t1"\n' + PINS
    )
    e = parse_text(text)
    assert [r.gateway_text for r in e.routes[:2]] == ["10.9.1.1", "10.9.2.1"]
    notes = dict(e.notes)
    assert "without a literal [find ...]" in notes[7]
    assert "adds routes at run time" in notes[8]
    assert "pppoe-out1, pppoe-out2, whichever came up last" in notes[10]


# --------------------------------------------------------------------------- netwatch


def _netwatch(script: str, route: str = "add gateway=10.1.0.1 comment=ISP1") -> str:
    return (
        TWO_UPLINKS
        + "/ip route\nadd dst-address=9.9.9.9/32 gateway=10.1.0.1 scope=10\n"
        + f"{route}\nadd gateway=10.2.0.1 distance=2 check-gateway=ping\n"
        + f'/tool netwatch\nadd host=9.9.9.9 down-script="{script}"\n'
    )


def test_netwatch_scripts_run_from_the_root_menu() -> None:
    got = carriers(_netwatch("ip route disable [find comment=ISP1]"))
    assert got["baseline"]["gateway"] == "10.1.0.1"
    assert got["target-silent:9.9.9.9"]["gateway"] == "10.2.0.1"


def test_netwatch_set_distance_moves_traffic() -> None:
    got = carriers(_netwatch("/ip route set [find comment=ISP1] distance=5"))
    assert got["target-silent:9.9.9.9"]["gateway"] == "10.2.0.1"


def test_netwatch_disables_a_client_by_name() -> None:
    pppoe = "/interface pppoe-client\nadd name=pppoe-out1 interface=ether1 add-default-route=yes\n"
    for script in (
        "/interface pppoe-client disable pppoe-out1",
        '/interface set \\"pppoe-out1\\" disabled=yes',
        "/interface pppoe-client set [find name=pppoe-out1] default-route-distance=9",
    ):
        text = _netwatch(script, route="") + pppoe
        got = carriers(text)
        assert got["baseline"]["gateway"] == "pppoe-out1", script
        assert got["target-silent:9.9.9.9"]["gateway"] == "10.2.0.1", script


# --------------------------------------------------------------------------- ecmp


def test_v7_equal_distance_routes_are_ecmp_v6_uses_one() -> None:
    routes = (
        "/ip route\nadd gateway=10.1.0.1 check-gateway=ping\n"
        "add gateway=10.2.0.1 check-gateway=ping\n"
    )
    v7 = carriers("# by RouterOS 7.15\n" + TWO_UPLINKS + routes)
    assert v7["baseline"] == {
        "gateway": "10.1.0.1",
        "nexthop": "10.1.0.1",
        "ecmp": ["10.1.0.1", "10.2.0.1"],
    }
    assert v7["gateway-down:10.1.0.1"] == {"gateway": "10.2.0.1", "nexthop": "10.2.0.1"}
    v6 = carriers("# by RouterOS 6.49\n" + TWO_UPLINKS + routes)
    assert v6["baseline"] == {"gateway": "10.1.0.1", "nexthop": "10.1.0.1"}


def test_unchecked_ecmp_member_into_a_dead_uplink_is_flagged() -> None:
    text = (
        "# by RouterOS 7.15\n"
        + TWO_UPLINKS
        + "/ip route\nadd gateway=10.1.0.1\nadd gateway=10.2.0.1\n"
    )
    assert ("no-check", 9) in codes(text) and ("no-check", 10) in codes(text)


# --------------------------------------------------------------------------- table fallback


PCC_TABLES = (
    "# by RouterOS 7.15\n"
    + TWO_UPLINKS
    + "/routing table\nadd name=to1 fib\nadd name=to2 fib\n"
    + "/ip route\nadd gateway=10.1.0.1 check-gateway=ping\n"
    + "add gateway=10.2.0.1 distance=2 check-gateway=ping\n"
    + "add gateway=10.1.0.1 routing-table=to1\nadd gateway=10.2.0.1 routing-table=to2\n"
    + "/ip firewall mangle\n"
    + "add chain=prerouting in-interface=ether1 action=mark-connection new-connection-mark=c1\n"
    + "add chain=prerouting in-interface=ether2 action=mark-connection new-connection-mark=c2\n"
    + "add chain=output connection-mark=c1 action=mark-routing new-routing-mark=to1\n"
    + "add chain=output connection-mark=c2 action=mark-routing new-routing-mark=to2\n"
)


def test_reply_only_tables_need_no_fallback() -> None:
    assert [c for c in codes(PCC_TABLES) if c[0] == "table-no-fallback"] == []


def test_tables_lan_traffic_is_routed_into_need_a_fallback() -> None:
    lan = PCC_TABLES + (
        "add chain=prerouting in-interface=bridge connection-mark=c1 action=mark-routing "
        "new-routing-mark=to1\n"
    )
    assert [c for c in codes(lan) if c[0] == "table-no-fallback"] == [("table-no-fallback", 9)]
    rule = PCC_TABLES + "/routing rule\nadd src-address=192.168.88.0/25 action=lookup table=to2\n"
    assert [c for c in codes(rule) if c[0] == "table-no-fallback"] == [("table-no-fallback", 10)]
