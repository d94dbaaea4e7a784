"""verify against the corpus (tests/data/routeros/*.rsc with *.expected.json sidecars).

Each corpus file is a variation of a public recipe (the official "Failover (WAN
Backup)" recursive routes, Netwatch scripts, check-gateway only, PCC with and
without fallback routes), v6 or v7 syntax, good or broken. Its sidecar holds the
carrying route per scenario and table, and the warnings as [code, line], worked
out by hand from the RouterOS rules in simulate.py's docstring.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wanwatch.errors import RouterOSError
from wanwatch.routeros.parse import parse_text
from wanwatch.routeros.verify import verify_file, verify_text

CORPUS = Path(__file__).resolve().parents[1] / "data" / "routeros"
FILES = sorted(CORPUS.glob("*.rsc"))
CONTRACT_CODES = {
    "recursive-target-leak",
    "no-check",
    "shared-target",
    "no-masquerade",
    "table-no-fallback",
    "netwatch-thr-avg",
    "no-failback",
}


def expected(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.with_suffix(".expected.json").read_text())
    return data


def test_corpus_is_there() -> None:
    assert len(FILES) >= 15
    for f in FILES:
        assert f.with_suffix(".expected.json").exists(), f


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_corpus_file(path: Path) -> None:
    want = expected(path)
    if "error" in want:
        with pytest.raises(RouterOSError) as info:
            verify_file(path)
        msg = str(info.value)
        assert msg.startswith(f"{path}:{want['error']['line']}: "), msg
        assert want["error"]["reason"] in msg
        return
    got = verify_file(path).to_json()
    assert {s["id"]: s["tables"] for s in got["scenarios"]} == want["scenarios"]
    # The IPv6 side, for an export that has one (tables6 beside every scenario's tables).
    assert {s["id"]: s["tables6"] for s in got["scenarios"] if "tables6" in s} == want.get(
        "scenarios6", {}
    )
    assert [[w["code"], w["line"]] for w in got["warnings"]] == want["warnings"]
    assert got["skipped_lines"] == want["skipped_lines"]
    assert [[n["line"], n["message"]] for n in got["notes"]] == want.get("notes", [])


def test_corpus_flags_every_contract_code() -> None:
    codes = set()
    for f in FILES:
        codes |= {code for code, _ in expected(f).get("warnings", [])}
    assert codes >= CONTRACT_CODES


def test_official_recipe_names_the_carrying_uplink() -> None:
    got = verify_file(CORPUS / "v7-recursive-official.rsc").to_json()
    carry = {s["id"]: s["tables"]["main"] for s in got["scenarios"]}
    primary = {"gateway": "8.8.8.8", "nexthop": "10.111.0.1"}
    backup = {"gateway": "8.8.4.4", "nexthop": "10.112.0.1"}
    assert carry == {
        "baseline": primary,
        "gateway-down:10.111.0.1": backup,
        "gateway-down:10.112.0.1": primary,
        "upstream-dead:10.111.0.1": backup,
        "upstream-dead:10.112.0.1": primary,
        "target-silent:8.8.8.8": backup,
        "target-silent:8.8.4.4": primary,
    }
    assert got["warnings"] == []


def test_json_shape_is_the_contract() -> None:
    got = verify_file(CORPUS / "v7-leak-target-scope.rsc").to_json()
    assert set(got) == {"scenarios", "warnings", "skipped_lines", "notes"}
    for s in got["scenarios"]:
        assert set(s) == {"id", "tables"}
        for choice in s["tables"].values():
            assert choice is None or {"gateway", "nexthop"} <= set(choice) <= {
                "gateway",
                "nexthop",
                "ecmp",
                "fallback",
            }
            assert choice is None or choice.get("fallback", True) is True
    for w in got["warnings"]:
        assert set(w) == {"code", "line", "message"}
        assert isinstance(w["line"], int) and w["message"]
    ids = [s["id"] for s in got["scenarios"]]
    assert ids[0] == "baseline"
    assert all(re.match(r"^(gateway-down|upstream-dead|target-silent):\S+$", i) for i in ids[1:])


def test_messages_say_what_and_where() -> None:
    got = verify_file(CORPUS / "v7-leak-target-scope.rsc")
    (first, _) = got.warnings
    assert first.code == "recursive-target-leak"
    assert "target-scope=30" in first.message and "1.1.1.1" in first.message


THR_AVG = (
    "/ip address\nadd address=10.1.0.2/24 interface={iface}\n"
    "add address=10.2.0.2/24 interface=ether2\n"
    "/ip firewall nat\nadd chain=srcnat action=masquerade\n"
    "/ip route\nadd dst-address=8.8.8.8 gateway={gw} scope=10\n"
    "add gateway=8.8.8.8 check-gateway=ping target-scope=11\n"
    "add gateway=10.2.0.1 check-gateway=ping distance=2\n"
    "/tool netwatch\nadd host=8.8.8.8 type=icmp thr-avg={thr}\n"
)
LTE = "/interface lte\nset [ find default-name=lte1 ] name=lte1\n"
PPP_MODEM = "/interface ppp-client\nadd name=ppp-out1 port=usb2 apn=internet\n"


def thr_codes(
    thr: str, *, iface: str = "ether1", gw: str = "10.1.0.1", head: str = ""
) -> list[str]:
    text = head + THR_AVG.format(iface=iface, gw=gw, thr=thr)
    return [w.code for w in verify_text(text).warnings]


def test_thr_avg_matters_on_radio_uplinks_only() -> None:
    # Ethernet: an average RTT of 100-400 ms means trouble; no warning.
    assert thr_codes("400ms") == []
    # LTE, a PPP session over a modem, or an interface named so: a loaded radio
    # link averages more than that, so Netwatch declares a slow uplink dead.
    assert thr_codes("400ms", gw="lte1", head=LTE) == ["netwatch-thr-avg"]
    assert thr_codes("1s", gw="lte1", head=LTE) == []
    assert thr_codes("400ms", gw="ppp-out1", head=PPP_MODEM) == ["netwatch-thr-avg"]
    assert thr_codes("400ms", iface="wwan0") == ["netwatch-thr-avg"]
    assert thr_codes("400ms", iface="ether1-LTE") == ["netwatch-thr-avg"]
    simple = THR_AVG.format(iface="lte1", gw="lte1", thr="1s").replace("type=icmp thr-avg=1s", "")
    assert "netwatch-thr-avg" not in [w.code for w in verify_text(LTE + simple).warnings]


def test_thr_avg_warning_names_the_radio_link() -> None:
    text = LTE + THR_AVG.format(iface="ether1", gw="lte1", thr="400ms")
    (w,) = verify_text(text).warnings
    assert "lte1" in w.message and "thr-avg=400ms" in w.message


def test_check_on_an_interface_gateway_is_called_what_it_is() -> None:
    text = (
        "/ip address\nadd address=10.2.0.2/24 interface=ether2\n"
        "/ip firewall nat\nadd chain=srcnat action=masquerade\n"
        "/ip route\nadd gateway=ether3 check-gateway=ping\n"
        "add gateway=10.2.0.1 check-gateway=ping distance=2\n"
    )
    (w,) = verify_text(text).warnings
    assert (w.code, w.line) == ("no-check", 6)
    assert (
        "check-gateway=ping, but a check on an interface gateway has nothing to ping" in w.message
    )
    assert "has no check-gateway" not in w.message
    unchecked = text.replace("gateway=ether3 check-gateway=ping", "gateway=ether3")
    (w,) = verify_text(unchecked).warnings
    assert "has no check-gateway" in w.message


def test_masquerade_without_out_interface_covers_every_uplink() -> None:
    text = (CORPUS / "v6-wan-list-no-masquerade.rsc").read_text()
    fixed = text.replace("out-interface-list=WAN", "")
    assert [w.code for w in verify_text(fixed).warnings] == []
    negated = text.replace("out-interface-list=WAN", "out-interface=!bridge")
    assert [w.code for w in verify_text(negated).warnings] == []


# --------------------------------------------------------------------------- fuzz


_GWS = ["10.1.0.1", "10.2.0.1", "8.8.8.8", "9.9.9.9", "ether1", "10.9.0.1%ether2", "8.8.8.8@main"]


@st.composite
def failover_exports(draw: st.DrawFn) -> str:
    lines = [draw(st.sampled_from(["", "# by RouterOS 6.49", "# by RouterOS 7.15"])), "/ip address"]
    for i in draw(st.lists(st.sampled_from([1, 2]), unique=True)):
        lines.append(f"add address=10.{i}.0.2/24 interface=ether{i}")
    if draw(st.booleans()):
        lines += ["/ip dhcp-client", "add interface=ether3"]
    if draw(st.booleans()):
        lines += ["/interface pppoe-client", "add name=pppoe-out1 add-default-route=yes"]
    if draw(st.booleans()):
        # A client script re-pointing routes at the gateway it learns.
        client = draw(
            st.sampled_from(
                ["/ppp profile\nset default on-up", "/ip dhcp-client\nadd interface=ether4 script"]
            )
        )
        lines.append(f'{client}=":if (1) do={{ /ip route set [find comment=A] gateway=\\$gw }}"')
    lines.append("/ip route")
    for _ in range(draw(st.integers(0, 8))):
        dst = draw(st.sampled_from(["", "dst-address=8.8.8.8 ", "dst-address=9.9.9.9/32 "]))
        gw = draw(st.sampled_from([*_GWS, "8.8.8.8,10.2.0.1", "pppoe-out1"]))
        extra = draw(
            st.lists(
                st.sampled_from(
                    [
                        "scope=10",
                        "target-scope=11",
                        "target-scope=30",
                        "check-gateway=ping",
                        "check-gateway=arp",
                        "distance=2",
                        "distance=3",
                        "routing-table=t1",
                        "comment=A",
                        "disabled=yes",
                    ]
                ),
                unique=True,
            )
        )
        lines.append(f"add {dst}gateway={gw} " + " ".join(extra))
    if draw(st.booleans()):
        lines += ["/ip route", "add type=blackhole distance=250 routing-table=t1"]
    if draw(st.booleans()):
        lines += ["/routing rule", "add routing-mark=t1 action=lookup-only-in-table table=t1"]
    lines.append("/tool netwatch")
    for _ in range(draw(st.integers(0, 2))):
        host = draw(st.sampled_from(["8.8.8.8", "9.9.9.9", "10.1.0.1"]))
        down = draw(st.sampled_from(["disable", "set", "log", "relative", "client"]))
        script = {
            "disable": "/ip route disable [find comment=A]",
            "set": "/ip route set [find comment=A] distance=9",
            "log": ":log info x",
            "relative": "ip route disable [find comment=A]",
            "client": "/interface pppoe-client set [find name=pppoe-out1] default-route-distance=9",
        }[down]
        up = draw(st.sampled_from(["/ip route enable [find comment=A]", ""]))
        lines.append(f'add host={host} type=icmp down-script="{script}" up-script="{up}"')
    lines += ["/ip firewall nat", "add chain=srcnat action=masquerade out-interface=ether1"]
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None)
@given(failover_exports())
def test_fuzz_failover_exports(text: str) -> None:
    first = verify_text(text, "g.rsc").to_json()
    again = verify_text(text, "g.rsc").to_json()
    assert first == again  # deterministic
    codes = {w["code"] for w in first["warnings"]}
    assert codes <= CONTRACT_CODES | {"unresolvable-gateway", "gateway-only-check", "netwatch-flap"}
    for s in first["scenarios"]:
        for choice in s["tables"].values():
            assert choice is None or isinstance(choice["gateway"], str)


# --------------------------------------------------------------------------- defect classes


def codes_of(text: str) -> list[tuple[str, int]]:
    return [(w.code, w.line) for w in verify_text(text, "d.rsc").warnings]


NESTED_LISTS = (
    "/interface list\n"
    "add name=WAN-A\n"
    "add include=WAN-A name=WAN\n"
    "/interface list member\n"
    "add interface=ether1 list=WAN-A\n"
    "/ip address\n"
    "add address=10.1.0.2/24 interface=ether1\n"
    "/ip route\n"
    "add gateway=10.1.0.1\n"
    "/ip firewall nat\n"
    "add chain=srcnat action=masquerade out-interface-list=WAN\n"
)


def test_nested_interface_lists_are_followed() -> None:
    assert codes_of(NESTED_LISTS) == []
    # exclude= takes a list's members out again: ether1 is no longer in WAN.
    excluded = NESTED_LISTS.replace(
        "add include=WAN-A name=WAN\n", "add name=LTE\nadd include=WAN-A exclude=LTE name=WAN\n"
    ).replace("list=WAN-A\n", "list=WAN-A\nadd interface=ether1 list=LTE\n")
    assert codes_of(excluded) == [("no-masquerade", 11)]


def test_interface_lists_that_include_each_other_end() -> None:
    text = NESTED_LISTS.replace("add name=WAN-A\n", "add include=WAN name=WAN-A\n")
    assert codes_of(text) == []
    export = parse_text(text, "c.rsc")
    assert export.interface_lists["WAN"] == export.interface_lists["WAN-A"]
    assert "ether1" in export.interface_lists["WAN"]


def test_the_builtin_list_all_holds_every_interface() -> None:
    assert codes_of(NESTED_LISTS.replace("out-interface-list=WAN", "out-interface-list=all")) == []
    but_lan = (
        "/interface list\n"
        "add name=LAN\n"
        "add include=all exclude=LAN name=WAN\n"
        "/interface list member\n"
        "add interface={lan} list=LAN\n"
        "/ip address\n"
        "add address=10.1.0.2/24 interface=ether1\n"
        "/ip route\n"
        "add gateway=10.1.0.1\n"
        "/ip firewall nat\n"
        "add chain=srcnat action=masquerade out-interface-list=WAN\n"
    )
    assert codes_of(but_lan.format(lan="bridge")) == []
    assert codes_of(but_lan.format(lan="ether1")) == [("no-masquerade", 9)]


DHCP_OTHER_TABLE = (
    "/routing table\n"
    "add name=t2 fib\n"
    "/ip address\n"
    "add address=10.1.0.2/24 interface=ether1\n"
    "add address=192.168.88.1/24 interface=bridge\n"
    "/ip dhcp-client\n"
    "add add-default-route=no interface=ether2\n"
    "/ip route\n"
    "add gateway=10.1.0.1 check-gateway=ping\n"
    "add dst-address=192.168.170.0/24 gateway=ether2 routing-table=t2\n"
    "add gateway=192.168.170.1 distance=2 check-gateway=ping\n"
    "/ip firewall mangle\n"
    "add chain=prerouting in-interface=bridge action=mark-routing new-routing-mark=t2\n"
    "/ip firewall nat\n"
    "add chain=srcnat action=masquerade\n"
)


def test_dhcp_gateway_is_on_link_in_main_whatever_other_tables_hold() -> None:
    got = verify_text(DHCP_OTHER_TABLE, "d.rsc").to_json()
    main = {s["id"]: s["tables"]["main"] for s in got["scenarios"]}
    primary = {"gateway": "10.1.0.1", "nexthop": "10.1.0.1"}
    backup = {"gateway": "192.168.170.1", "nexthop": "192.168.170.1"}
    # The DHCP client's subnet is connected in main: its gateway is an uplink's
    # first hop, not a probe target, and the backup carries when the primary dies.
    assert main == {
        "baseline": primary,
        "gateway-down:10.1.0.1": backup,
        "gateway-down:192.168.170.1": primary,
        "upstream-dead:10.1.0.1": primary,  # check-gateway pings only the gateway
        "upstream-dead:192.168.170.1": primary,
    }
    # t2 has no default of its own: marked traffic takes main's route.
    assert [(w["code"], w["line"]) for w in got["warnings"]] == [
        ("table-no-fallback", 2),
        ("gateway-only-check", 9),
    ]
    assert "scope=10" not in " ".join(w["message"] for w in got["warnings"])


FALL_THROUGH = (
    "/routing table\n"
    "add name=to-a fib\n"
    "/ip address\n"
    "add address=10.1.0.2/24 interface=ether1\n"
    "add address=10.2.0.2/24 interface=ether2\n"
    "/ip route\n"
    "add gateway=10.1.0.1 check-gateway=ping\n"
    "add gateway=10.2.0.1 distance=2 check-gateway=ping\n"
    "add gateway=10.1.0.1 check-gateway=ping routing-table=to-a\n"
    "/ip firewall nat\n"
    "add chain=srcnat action=masquerade\n"
)


def test_json_says_when_a_marked_table_falls_back_to_main() -> None:
    got = verify_text(FALL_THROUGH, "f.rsc").to_json()
    rows = {s["id"]: s["tables"] for s in got["scenarios"]}
    assert rows["baseline"]["to-a"] == {"gateway": "10.1.0.1", "nexthop": "10.1.0.1"}
    # to-a's own default is dead: RouterOS sends its traffic the way main does, and
    # the entry says so; nexthop stays the effective next hop.
    assert rows["gateway-down:10.1.0.1"] == {
        "main": {"gateway": "10.2.0.1", "nexthop": "10.2.0.1"},
        "to-a": {"gateway": "10.2.0.1", "nexthop": "10.2.0.1", "fallback": True},
    }
    # With lookup-only-in-table nothing falls back: no default at all.
    strict = (
        FALL_THROUGH
        + "/routing rule\nadd routing-mark=to-a action=lookup-only-in-table table=to-a\n"
    )
    rows = {s["id"]: s["tables"] for s in verify_text(strict, "f.rsc").to_json()["scenarios"]}
    assert rows["gateway-down:10.1.0.1"]["to-a"] is None


def test_own_table_route_that_cannot_resolve_leaves_the_gateway_to_main() -> None:
    # The table's interface route has scope 30, above target-scope 10: it cannot
    # resolve the gateway, and the lookup goes on in main, where the DHCP
    # client's subnet is connected.
    text = DHCP_OTHER_TABLE.replace(
        "add gateway=192.168.170.1 distance=2 check-gateway=ping\n",
        "add gateway=192.168.170.1 distance=2 check-gateway=ping\n"
        "add gateway=192.168.170.1 check-gateway=ping routing-table=t2\n",
    )
    got = verify_text(text, "d.rsc").to_json()
    rows = {s["id"]: s["tables"]["t2"] for s in got["scenarios"]}
    assert rows["baseline"] == {"gateway": "192.168.170.1", "nexthop": "192.168.170.1"}
    assert "unresolvable-gateway" not in {w["code"] for w in got["warnings"]}


def test_a_disabled_mangle_rule_marks_no_table() -> None:
    text = FALL_THROUGH + (
        "/ip firewall mangle\n"
        "add action=mark-routing chain=prerouting disabled=yes new-routing-mark=ghost\n"
    )
    (baseline, *_) = verify_text(text, "g.rsc").to_json()["scenarios"]
    assert set(baseline["tables"]) == {"main", "to-a"}


# --------------------------------------------------------------------------- wan-open

WAN_OPEN = (
    "/interface list\n"
    "add name=WAN\n"
    "add name=LAN\n"
    "/interface list member\n"
    "add interface=ether1 list=WAN\n"
    "add interface=bridge list=LAN\n"
    "/ip address\n"
    "add address=10.1.0.2/24 interface=ether1\n"
    "/ip route\n"
    "add gateway=10.1.0.1\n"
    "/ip firewall nat\n"
    "add chain=srcnat action=masquerade out-interface-list=WAN\n"
    "/ip firewall filter\n"
    "add chain=input action=accept connection-state=established,related,untracked\n"
    "add chain=input action=drop connection-state=invalid\n"
    "add chain=input action=accept protocol=icmp\n"
    "add chain=input action=accept protocol=tcp dst-port=8291\n"
)


def test_defconf_closes_the_uplinks() -> None:
    """defconf's last input rule drops all not coming from LAN: nothing to warn about."""
    assert codes_of(WAN_OPEN + "add chain=input action=drop in-interface-list=!LAN\n") == []
    assert codes_of(WAN_OPEN + "add chain=input action=drop in-interface-list=WAN\n") == []
    assert codes_of(WAN_OPEN + "add chain=input action=drop in-interface=ether1\n") == []


def test_an_input_chain_of_openings_alone_is_wan_open() -> None:
    got = verify_text(WAN_OPEN, "w.rsc").warnings
    assert [(w.code, w.line) for w in got] == [("wan-open", 17)]  # the chain's last rule
    assert "ether1" in got[0].message and "reaches its end" in got[0].message


def test_a_rule_that_accepts_the_uplink_is_named() -> None:
    text = WAN_OPEN + "add chain=input in-interface=ether1\nadd chain=input action=drop\n"
    assert codes_of(text) == [("wan-open", 18)]


def test_what_a_drop_narrows_or_the_lan_takes_does_not_close_the_uplink() -> None:
    narrowed = WAN_OPEN + "add chain=input action=drop in-interface=ether1 protocol=udp\n"
    assert codes_of(narrowed) == [("wan-open", 18)]
    lan_only = WAN_OPEN + "add chain=input action=drop in-interface-list=LAN\n"
    assert codes_of(lan_only) == [("wan-open", 18)]
    disabled = WAN_OPEN + "add chain=input action=drop in-interface-list=WAN disabled=yes\n"
    assert codes_of(disabled) == [("wan-open", 17)]
    nat_only = WAN_OPEN + "add chain=input action=drop connection-nat-state=dstnat\n"
    assert codes_of(nat_only) == [("wan-open", 18)]


def test_a_jump_to_a_chain_that_drops_closes_the_uplink() -> None:
    jump = WAN_OPEN + (
        "add chain=input action=jump jump-target=wan in-interface-list=WAN\n"
        "add chain=wan action=log\n"
        "add chain=wan action=drop\n"
    )
    assert codes_of(jump) == []
    returns = jump.replace("add chain=wan action=log\n", "add chain=wan action=return\n")
    assert codes_of(returns) == [("wan-open", 18)]  # the input chain's last rule: the jump


def test_a_chain_the_export_lacks_is_not_judged() -> None:
    """A partial export (routes only, or one chain only) says nothing of what it lacks."""
    routes_only = WAN_OPEN.split("/ip firewall filter\n", maxsplit=1)[0]
    assert codes_of(routes_only) == []
    closed_forward = (
        "add chain=forward action=drop connection-state=new connection-nat-state=!dstnat "
        "in-interface-list=WAN\n"
    )
    assert codes_of(routes_only + "/ip firewall filter\n" + closed_forward) == []


def test_a_forward_chain_open_to_the_uplinks_is_wan_open() -> None:
    """New connections from an uplink forwarded to the LANs: defconf drops those not
    dst-nat'ed; a port forward (dstnat) is an opening, not a hole."""
    routes_only = WAN_OPEN.split("/ip firewall filter\n", maxsplit=1)[0]
    forward = "/ip firewall filter\nadd chain=forward action=drop connection-state=invalid\n"
    got = verify_text(routes_only + forward, "d.rsc").warnings
    assert [(w.code, w.line) for w in got] == [("wan-open", 14)]
    assert "forwarded to the LANs" in got[0].message and "!dstnat" in got[0].message
    only_dstnat = forward + "add chain=forward action=drop connection-nat-state=dstnat\n"
    assert codes_of(routes_only + only_dstnat) == [("wan-open", 15)]
