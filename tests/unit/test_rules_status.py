"""Per-rule figures: the path and why (engine), the counters (rules_nft), and how
``wanwatch status``, its JSON and /metrics show them (fake parts)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from daemon_fakes import Backend, fake_parts
from test_engine_ipv6 import dual_stack, simulate
from test_metrics import STATUS, scrape

from wanwatch.cli.router import format_status
from wanwatch.config import Config, load
from wanwatch.daemon.clock import Clock
from wanwatch.daemon.eventlog import EventLog
from wanwatch.daemon.loop import Daemon
from wanwatch.daemon.parts import Paths
from wanwatch.engine.core import Engine
from wanwatch.engine.intent import Admin, Health
from wanwatch.engine.policy import decide, decide_families, plan_for
from wanwatch.engine.rules import explain, where
from wanwatch.engine.sim import LinkModel, first_after
from wanwatch.linux import rules_nft
from wanwatch.linux.firewall import Count
from wanwatch.status import RulesStatus, RuleStatus, RuleTraffic, from_json, to_json

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RULES = EXAMPLES / "office-rules.yaml"
P, B = "INET-UTAMA", "BACKUP-INET"
BOTH = {P: True, B: True}


@pytest.fixture(scope="module")
def office() -> Config:
    return load(RULES)


def why(config: Config, down: set[str], preferred: dict[str, bool] = BOTH) -> dict[str, str]:
    intent = plan_for(config, down)
    return {p.name: explain(config, intent, p, preferred) for p in intent.rules}


def test_all_up_every_rule_says_it_has_its_first_choice(office: Config) -> None:
    assert why(office, set()) == {
        "guest": "first in via, usable",
        "voip": "first in via, usable",
        "bank": "first in via, usable",
        "bulk": "every uplink of via usable",
    }


def test_the_backup_down_names_it_for_each_rule_that_passed_it_over(office: Config) -> None:
    assert why(office, {B}) == {
        "guest": f"none of via usable ({B} down): when_down block, refused",
        "voip": f"{B} down: next in via",
        "bank": f"none of via usable ({B} down): when_down block, refused",
        "bulk": f"{B} down: balanced over the rest of via",
    }


def posed(
    config: Config,
    health: dict[str, Health],
    preferred: dict[str, bool] = BOTH,
    admin: dict[str, Admin] | None = None,
) -> dict[str, tuple[str, tuple[str, ...], str]]:
    """Each rule's (path, where its connections go, why) for these uplink states."""
    intent = decide(config, health, preferred, None, admin)
    return {
        p.name: (p.kind.value, where(intent, p), explain(config, intent, p, preferred))
        for p in intent.rules
    }


def test_an_uplink_in_its_hold_and_a_disabled_one_are_named_as_such(office: Config) -> None:
    up = {P: Health.UP, B: Health.UP}
    held = posed(office, up, {P: True, B: False})  # B came back, its hold not over
    assert held["voip"] == ("uplink", (P,), f"{B} up, in its hold: next in via")
    off = posed(office, up, admin={B: Admin.DISABLED})
    assert off["voip"] == ("uplink", (P,), f"{B} disabled: next in via")
    assert off["guest"] == (
        "block",
        (),
        f"none of via usable ({B} disabled): when_down block, refused",
    )


def test_when_down_default_follows_the_policy_and_says_where(office: Config) -> None:
    wired_only = msgspec.structs.replace(
        office.rules[1],
        via=msgspec.structs.replace(office.rules[1].via, uplinks=office.rules[0].via.uplinks),
    )
    config = msgspec.structs.replace(office, rules=(office.rules[0], wired_only, *office.rules[2:]))
    got = posed(config, {P: Health.UP, B: Health.DOWN})
    assert got["voip"] == (
        "default",
        (P,),  # the policy's uplink
        f"none of via usable ({B} down): when_down default, the policy decides",
    )


def test_a_total_outage_keeps_the_last_path_and_says_so(office: Config) -> None:
    intent = plan_for(office, {P, B})
    assert intent.stale
    assert set(why(office, {P, B}).values()) == {
        "no uplink at all is usable: the last path is kept"
    }


def test_each_rules_figures_come_from_its_own_named_counters(office: Config) -> None:
    found = {
        "rule_guest_new": Count(7, 420),
        "rule_guest_out": Count(30, 4_000),
        "rule_guest_in": Count(25, 90_000),
        "rule_bank_new": Count(1, 60),
        "drop_in_INET-UTAMA": Count(99, 9_999),  # the firewall's: not a rule's
    }
    assert rules_nft.traffic(office, found) == {
        "guest": RuleTraffic(connections=7, bytes_out=4_000, bytes_in=90_000),
        "voip": RuleTraffic(0, 0, 0),  # not read yet: zero
        "bank": RuleTraffic(1, 0, 0),
        "bulk": RuleTraffic(0, 0, 0),
    }


def test_the_counters_are_named_after_the_rule_so_a_reorder_keeps_its_totals(
    office: Config,
) -> None:
    intent = plan_for(office, set())
    text = "\n".join(rules_nft.render(office, intent, with_paths=True).declarations)
    swapped = msgspec.structs.replace(
        office, rules=(office.rules[2], office.rules[0], office.rules[1], office.rules[3])
    )
    moved = rules_nft.render(swapped, plan_for(swapped, set()), with_paths=True)
    assert "counter rule_bank_new { }" in text
    assert (
        '\tcounter name "rule_bank_new"'
        in moved.chains[next(i for i, c in enumerate(moved.chains) if c[0] == "chain rule_1 {")]
    )
    # the bytes map follows the rule to its new mark
    assert '0x00000100 : "rule_bank_out"' in moved.forward[1]


def daemon(tmp_path: Path, counted: dict[str, RuleTraffic], config: Path = RULES) -> Daemon:
    cfg = load(config)
    clock = Clock()
    calls: list[str] = []
    backend = Backend(calls, fail_start=False)
    backend.rule_traffic = (0.3, counted)
    paths = Paths(config, tmp_path / "s.sock", tmp_path / "state")
    return Daemon(
        cfg, paths, Engine(cfg, clock()), fake_parts(calls, backend), clock=clock, events=EventLog()
    )


COUNTED = {"guest": RuleTraffic(12, 3_000, 2_097_152), "voip": RuleTraffic(4, 800, 900)}


def test_status_names_every_rule_its_path_why_and_counters(tmp_path: Path) -> None:
    st = daemon(tmp_path, COUNTED).status()
    assert st.rules is not None and st.rules.age_s == 0.3
    assert [r.name for r in st.rules.rules] == ["guest", "voip", "bank", "bulk"]
    guest = st.rules.rules[0]
    assert guest.traffic == COUNTED["guest"]
    assert st.rules.rules[2].traffic == RuleTraffic(0, 0, 0)  # no counter read: zero
    # before any verdict every uplink is unknown: the rules keep their first uplink
    assert guest.path == "uplink" and guest.uplinks == [B]
    doc = to_json(st)
    assert doc["rules"]["rules"][0]["traffic"] == {
        "connections": 12,
        "bytes_out": 3_000,
        "bytes_in": 2_097_152,
    }
    assert from_json(doc).rules == st.rules  # the contract round-trips


def test_wanwatch_status_prints_a_rules_table(tmp_path: Path) -> None:
    text = format_status(to_json(daemon(tmp_path, COUNTED).status())).splitlines()
    head = next(i for i, x in enumerate(text) if x.startswith("RULE"))
    assert text[head].split() == ["RULE", "PATH", "OPENED", "IN", "OUT", "WHY"]
    guest = text[head + 1].split()
    assert guest[:5] == ["guest", B, "12", "2.0M", "2.9K"], text[head + 1]
    assert text[head + 4].split()[:2] == ["bulk", f"balance {P}+{B}".split()[0]]


def test_a_status_without_rules_has_no_rules_table(tmp_path: Path) -> None:
    doc = to_json(daemon(tmp_path, COUNTED).status())
    doc["rules"] = None  # no rules in the config, or an older daemon
    assert from_json(doc).rules is None
    assert not any(x.startswith("RULE") for x in format_status(doc).splitlines())


DUAL = Path(__file__).resolve().parents[1] / "golden" / "rules" / "dual-stack-rules.yaml"


def test_status_names_a_rules_ipv6_path_where_it_differs(tmp_path: Path) -> None:
    st = daemon(tmp_path, {}, DUAL).status()
    assert st.rules is not None
    guest, voip = st.rules.rules[:2]
    assert (guest.path, guest.uplinks, guest.path6, guest.uplinks6) == ("uplink", [B], None, None)
    # voip: via [DSL, INET-UTAMA]; the DSL has no IPv6
    assert (voip.path, voip.uplinks, voip.path6, voip.uplinks6) == (
        "uplink",
        ["DSL"],
        "uplink",
        [P],
    )
    assert (guest.why6, voip.why6) == (None, "no uplink's IPv6 is usable: the last path is kept")
    assert st.rules.families == [4, 6]
    text = format_status(to_json(st)).splitlines()
    (line,) = [x for x in text if x.startswith("voip ")]
    assert line.split()[1:4] == ["DSL;", "IPv6", P], line
    assert line.endswith(
        "no uplink at all is usable: the last path is kept;"
        " IPv6: no uplink's IPv6 is usable: the last path is kept"
    ), line
    assert from_json(to_json(st)).rules == st.rules


def test_a_rule_of_one_family_shows_that_familys_path_alone(tmp_path: Path) -> None:
    st = daemon(tmp_path, {}, DUAL).status()
    assert st.rules is not None
    (partner6,) = [r for r in st.rules.rules if r.name == "partner6"]  # to: an IPv6 prefix
    assert (partner6.families, partner6.path, partner6.uplinks) == ([6], "uplink", [P])
    assert partner6.why == "no uplink's IPv6 is usable: the last path is kept"
    assert partner6.path6 is None  # no second family
    (line,) = [x for x in format_status(to_json(st)).splitlines() if x.startswith("partner6 ")]
    assert line.split()[1:3] == ["IPv6", P], line
    # the same rule for an IPv4 prefix, via the DSL first as voip: no IPv6 path, although
    # IPv6 would take the LTE
    four = tmp_path / "four.yaml"
    four.write_text(
        DUAL.read_text()
        .replace("to: [2001:db8:ffff:5::/64]", "to: [198.51.100.0/25]")
        .replace("proto: icmpv6\n    via: [INET-UTAMA]", "proto: icmp\n    via: [DSL, INET-UTAMA]")
    )
    st4 = daemon(tmp_path, {}, four).status()
    assert st4.rules is not None
    (partner,) = [r for r in st4.rules.rules if r.name == "partner6"]
    assert (partner.families, partner.uplinks, partner.path6) == ([4], ["DSL"], None)


def dual_why(
    health6: dict[str, Health], preferred6: dict[str, bool] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Each rule's why per family of the dual-stack office: every uplink's IPv4 up,
    IPv6 in ``health6`` (past its hold unless ``preferred6`` says not)."""
    config = load(DUAL)
    four = {w.name: Health.UP for w in config.wans}
    pref4 = {w.name: True for w in config.wans}
    pref6 = preferred6 or dict.fromkeys(health6, True)
    intent = decide_families(config, (four, health6), (pref4, pref6), None)
    return (
        {p.name: explain(config, intent, p, pref4) for p in intent.rules},
        {
            p.name: explain(config, intent, p, pref6, family=6, health=health6)
            for p in intent.rules6
        },
    )


def test_a_rules_ipv6_path_is_explained_by_the_uplinks_ipv6_states() -> None:
    why4, why6 = dual_why({P: Health.UP, B: Health.DOWN})  # the backup's IPv6 died alone
    assert why6 == {
        "guest": f"none of via usable ({B} down): when_down block, refused",
        "voip": "DSL has no IPv6: next in via",
        "bank": f"none of via usable ({B} down): when_down block, refused",
        "partner6": "first in via, usable",
        "bulk": f"{B} down: balanced over the rest of via",
    }
    assert why4["guest"] == why4["voip"] == "first in via, usable"  # IPv4's own states
    held = dual_why({P: Health.UP, B: Health.UP}, {P: True, B: False})[1]
    assert held["bulk"] == f"{B} up, in its hold: balanced over the rest of via"
    assert held["guest"] == "first in via, usable"  # in its hold, yet the only one of via
    stale = dual_why({P: Health.DOWN, B: Health.DOWN})[1]
    assert set(stale.values()) == {"no uplink's IPv6 is usable: the last path is kept"}


def test_an_uplinks_ipv6_hold_is_its_own_in_the_engines_status() -> None:
    cut6 = LinkModel(rtt=0.045, jitter=0.005, outages6=[(60.3, 100)])
    sim = simulate(dual_stack(load(EXAMPLES / "office.yaml")), 105, primary=cut6)
    back = first_after(sim.events, "wan.recovered", 100, wan=P, family=6)
    assert back is not None and back.at + 10.0 > 105  # its IPv6 back, its hold not over
    (p,) = [s for s in sim.engine.status(105) if s.name == P]
    assert (p.preferred, p.preferred6) == (True, False)
    ipv4_only = simulate(load(EXAMPLES / "office.yaml"), 10)
    assert {s.preferred6 for s in ipv4_only.engine.status(10)} == {None}


def test_rule_figures_are_metrics() -> None:
    rs = RulesStatus(
        rules=[
            RuleStatus("guest", "block", [], "none of via usable", RuleTraffic(5, 100, 200)),
            RuleStatus("bulk", "balance", [P, B], "every uplink", RuleTraffic(9, 1_000, 9_000)),
        ],
        age_s=0.2,
    )
    text = scrape(msgspec.structs.replace(STATUS, rules=rs))
    assert 'wanwatch_rule_path{family="4",path="block",rule="guest"} 1.0' in text
    assert 'wanwatch_rule_path{family="4",path="uplink",rule="guest"} 0.0' in text
    assert 'wanwatch_rule_uplink{family="4",rule="bulk",wan="BACKUP-INET"} 1.0' in text
    assert 'wanwatch_rule_uplink{family="4",rule="guest"' not in text  # blocked: no uplink
    assert 'family="6"' not in text  # no IPv6 rules
    assert 'wanwatch_rule_connections_total{rule="guest"} 5.0' in text
    assert 'wanwatch_rule_bytes_total{direction="in",rule="bulk"} 9000.0' in text
    assert "# TYPE wanwatch_rule_bytes_total counter" in text


def test_a_rules_ipv6_path_is_its_own_metric_series() -> None:
    rs = RulesStatus(
        rules=[
            RuleStatus(
                "guest", "uplink", [B], "first", RuleTraffic(0, 0, 0), "block", [], "none", [4, 6]
            ),
            RuleStatus(
                "bulk",
                "balance",
                [P, B],
                "every uplink",
                RuleTraffic(0, 0, 0),
                None,
                None,
                None,
                [4, 6],
            ),
            # an IPv6-only rule: its one path is IPv6's
            RuleStatus("partner6", "block", [], "none", RuleTraffic(0, 0, 0), families=[6]),
        ],
        age_s=None,
        families=[4, 6],
    )
    text = scrape(msgspec.structs.replace(STATUS, rules=rs))
    # guest: its IPv4 on the backup, its IPv6 refused (the backup's IPv6 died alone)
    assert 'wanwatch_rule_path{family="4",path="uplink",rule="guest"} 1.0' in text
    assert 'wanwatch_rule_path{family="6",path="block",rule="guest"} 1.0' in text
    assert 'wanwatch_rule_path{family="6",path="uplink",rule="guest"} 0.0' in text
    assert 'wanwatch_rule_uplink{family="4",rule="guest",wan="BACKUP-INET"} 1.0' in text
    assert 'wanwatch_rule_uplink{family="6",rule="guest"' not in text
    # bulk: the same path in both families, so each family shows it
    for family in ("4", "6"):
        assert f'wanwatch_rule_path{{family="{family}",path="balance",rule="bulk"}} 1.0' in text
        assert f'wanwatch_rule_uplink{{family="{family}",rule="bulk",wan="{P}"}} 1.0' in text
    assert 'wanwatch_rule_path{family="6",path="block",rule="partner6"} 1.0' in text
    assert 'family="4",path="block",rule="partner6"' not in text


def test_no_rule_metrics_without_rules() -> None:
    assert "wanwatch_rule" not in scrape()
