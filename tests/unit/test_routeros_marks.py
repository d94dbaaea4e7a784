"""verify on mangle-routed traffic: where a marked table's traffic goes when every
uplink of the table is dead (``mark-leak``), and how that differs from a PCC split's
``table-no-fallback``."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanwatch.routeros.verify import verify_text

LEAK = Path(__file__).resolve().parents[1] / "data" / "routeros" / "v7-policy-route-leak.rsc"

TWO_UPLINKS = """\
/routing table
add fib name=to_ISP2
/ip address
add address=10.111.0.2/24 interface=ether1
add address=10.112.0.2/24 interface=ether2
add address=192.168.88.1/24 interface=bridge
/ip firewall mangle
{mangle}
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip route
add dst-address=8.8.8.8/32 gateway=10.111.0.1 scope=10
add dst-address=9.9.9.9/32 gateway=10.112.0.1 scope=10
add check-gateway=ping distance=1 gateway=8.8.8.8 target-scope=11
add check-gateway=ping distance=2 gateway=9.9.9.9 target-scope=11
add check-gateway=ping gateway=9.9.9.9@main routing-table=to_ISP2 target-scope=11
{rule}"""

BY_SOURCE = (
    "add action=mark-routing chain=prerouting src-address=192.168.88.0/25 "
    "new-routing-mark=to_ISP2 passthrough=no"
)
BY_PCC = (
    "add action=mark-connection chain=prerouting in-interface=bridge connection-mark=no-mark "
    "new-connection-mark=c2 per-connection-classifier=src-address:2/1\n"
    "add action=mark-routing chain=prerouting connection-mark=c2 new-routing-mark=to_ISP2 "
    "passthrough=no"
)


def codes(text: str) -> list[tuple[str, int]]:
    return [(w.code, w.line) for w in verify_text(text, "m.rsc").warnings]


def test_one_uplink_only_is_table_no_fallback_whose_advice_fits_a_policy_route() -> None:
    got = verify_text(TWO_UPLINKS.format(mangle=BY_SOURCE, rule=""), "m.rsc")
    assert [(w.code, w.line) for w in got.warnings] == [("table-no-fallback", 2)]
    assert "action=lookup-only-in-table if it must never use another uplink" in (
        got.warnings[0].message
    )


@pytest.mark.parametrize("action", ["lookup-only-in-table", "lookup", "drop", "unreachable"])
def test_a_routing_rule_for_the_mark_says_what_is_meant(action: str) -> None:
    rule = f"/routing rule\nadd action={action} routing-mark=to_ISP2 table=to_ISP2\n"
    assert codes(TWO_UPLINKS.format(mangle=BY_SOURCE, rule=rule)) == []


def test_a_rule_with_other_matchers_does_not_speak_for_the_whole_mark() -> None:
    rule = (
        "/routing rule\nadd action=lookup-only-in-table routing-mark=to_ISP2 "
        "src-address=192.168.88.0/26 table=to_ISP2\n"
    )
    assert codes(TWO_UPLINKS.format(mangle=BY_SOURCE, rule=rule)) == [("table-no-fallback", 2)]


def test_a_pcc_split_with_one_uplink_is_still_table_no_fallback() -> None:
    """Here losing the table means losing the split: the older finding, not a leak."""
    assert codes(TWO_UPLINKS.format(mangle=BY_PCC, rule="")) == [("table-no-fallback", 2)]
    rule = "/routing rule\nadd action=lookup-only-in-table routing-mark=to_ISP2 table=to_ISP2\n"
    assert codes(TWO_UPLINKS.format(mangle=BY_PCC, rule=rule)) == [("table-no-fallback", 2)]


def test_a_table_over_two_of_three_uplinks_leaks_when_both_die() -> None:
    """No single failure shows it (each scenario keeps one backup): the finding comes
    from the scenario of every uplink of the table down at once."""
    text = LEAK.read_text()
    report = verify_text(text, LEAK.name)
    rows = {s.id: s.tables["guest_out"] for s in report.scenarios}
    assert all(c is not None and not c.fallback for c in rows.values())
    assert [(w.code, w.line) for w in report.warnings] == [("mark-leak", 6)]
    assert "10.112.0.1, 10.113.0.1" in report.warnings[0].message
    assert "leaves by 10.111.0.1" in report.warnings[0].message
    # Main through one of the table's own uplinks is no leak: the office line gone too.
    only_backups = text.replace("add check-gateway=ping distance=1 gateway=8.8.8.8", "#")
    assert [w.code for w in verify_text(only_backups, "b.rsc").warnings] == []
    rule = "/routing rule\nadd action=lookup routing-mark=guest_out table=guest_out\n"
    assert verify_text(text + rule, "r.rsc").warnings == ()


def test_each_mangle_routed_mark_has_its_path_per_scenario_in_json_and_text() -> None:
    text = TWO_UPLINKS.format(
        mangle=BY_SOURCE,
        rule="/routing rule\nadd action=lookup-only-in-table routing-mark=to_ISP2 table=to_ISP2\n",
    )
    report = verify_text(text, "m.rsc")
    data = report.to_json()
    assert data["marks"] == [{"mark": "to_ISP2", "lines": [8], "routing_rule": 19}]
    marks = {s["id"]: s["marks"] for s in data["scenarios"]}
    assert marks["baseline"] == {
        "to_ISP2": {"path": "table", "gateway": "9.9.9.9", "nexthop": "10.112.0.1"}
    }
    assert marks["gateway-down:10.112.0.1"] == {"to_ISP2": {"path": "blocked", "routing_rule": 19}}
    assert "    marks: to_ISP2 blocked (routing rule line 19)" in report.to_text()
    # Without the rule the same failure sends the marked traffic by main.
    leaky = verify_text(TWO_UPLINKS.format(mangle=BY_SOURCE, rule=""), "m.rsc").to_json()
    down = next(s for s in leaky["scenarios"] if s["id"] == "gateway-down:10.112.0.1")
    assert down["marks"] == {
        "to_ISP2": {"path": "main", "gateway": "8.8.8.8", "nexthop": "10.111.0.1"}
    }


def test_reply_marks_and_exports_without_mangle_routing_have_no_marks() -> None:
    """Marks that only route replies of connections from an uplink are not LAN traffic."""
    replies = TWO_UPLINKS.format(
        mangle=(
            "add action=mark-connection chain=prerouting in-interface=ether2 "
            "new-connection-mark=in2\n"
            "add action=mark-routing chain=prerouting in-interface=ether2 connection-mark=in2 "
            "new-routing-mark=to_ISP2"
        ),
        rule="",
    )
    data = verify_text(replies, "r.rsc").to_json()
    assert "marks" not in data
    assert all("marks" not in s for s in data["scenarios"])
