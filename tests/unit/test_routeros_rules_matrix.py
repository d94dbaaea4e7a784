"""The export of a config with rules, read back by verify's simulator, predicts the
path of every rule's mark in every combination of uplinks up and down exactly as
``wanwatch plan --matrix`` (engine/matrix.py) does for that rule.

Two independent sides: the engine decides paths from uplink states; the simulator
reads the RouterOS script and applies RouterOS's route selection and fallback rules.
The only difference allowed is the total outage, where the engine keeps each rule's
last path and RouterOS has nothing to keep: there no rule's traffic may leave at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wanwatch.config import Config, load, loads
from wanwatch.engine.intent import Intent, PathKind
from wanwatch.engine.matrix import matrix
from wanwatch.routeros.compile import compile_config
from wanwatch.routeros.parse import parse_text
from wanwatch.routeros.report import MarkPath
from wanwatch.routeros.rules import balanced, table_name
from wanwatch.routeros.simulate import Scenario
from wanwatch.routeros.verify import mark_paths, verify_text

ROOT = Path(__file__).resolve().parents[2]
OFFICE_RULES = ROOT / "examples" / "office-rules.yaml"

THREE = """
wans:
  - {name: A, interface: ether1, address: 10.0.0.2/24, gateway: 10.0.0.1, priority: 1,
     probe: {targets: [203.0.113.1, 203.0.113.2]}}
  - {name: B, interface: ether2, address: 10.1.0.2/24, gateway: 10.1.0.1, priority: 2,
     weight: 2, probe: {targets: [203.0.113.3]}}
  - {name: C, interface: ether3, address: 10.2.0.2/24, gateway: 10.2.0.1, priority: 3,
     probe: {targets: [203.0.113.4]}}
lans:
  - {name: office, interface: ether9, address: 192.168.9.1/24}
  - {name: guest, interface: wlan1, address: 192.168.10.1/24}
policy: {mode: %s}
rules:
  - {name: guest, from: [guest], via: [C, B], when_down: block}
  - {name: sip, from: [office], proto: udp, ports: [5060], via: [B], when_down: default}
  - {name: split, from: [192.168.9.0/25], to: [198.51.100.0/24],
     via: {mode: loadbalance, uplinks: [A, {name: C, weight: 3}]}, when_down: default}
  - {name: all, from: [192.168.9.128/25], sticky: src-dst,
     via: {mode: loadbalance, uplinks: [C, B, A]}, when_down: block}
"""


def gateways(cfg: Config) -> dict[str, str]:
    return {w.name: str(w.gateway) for w in cfg.wans}


def expected_ok(cfg: Config, intent: Intent, index: int, got: dict[str, MarkPath]) -> None:
    """Assert the simulator's paths for rule ``index`` are the engine's."""
    rule = cfg.rules[index]
    gw = gateways(cfg)
    p = intent.rules[index]
    marks = [table_name(rule, u) for u in rule.via.names] if balanced(rule) else [table_name(rule)]
    paths = [got[m] for m in marks]
    if intent.stale:  # all down: the engine keeps its path; RouterOS sends nothing anywhere
        assert {x.path for x in paths} <= {"blocked", "none"}
        assert all(x.choice is None for x in paths)
        return
    if p.kind is PathKind.BLOCK:
        assert [x.path for x in paths] == ["blocked"] * len(paths)
    elif p.kind is PathKind.DEFAULT:
        assert intent.primary is not None
        for x in paths:
            assert x.path == "main" and x.choice is not None
            assert x.choice.nexthop == gw[intent.primary]
    elif p.kind is PathKind.UPLINK:
        assert [(x.path, x.choice and x.choice.nexthop) for x in paths] == [
            ("table", gw[p.uplinks[0]])
        ]
    else:  # balance: every bucket's table stays on the rule's usable uplinks, and a
        # table whose own uplink is usable keeps it
        assert all(x.path == "table" and x.choice is not None for x in paths)
        hops = {x.choice.nexthop for x in paths if x.choice is not None}
        assert hops <= {gw[u] for u in p.uplinks}
        for u, x in zip(rule.via.names, paths, strict=True):
            if u in p.uplinks and x.choice is not None:
                assert x.choice.nexthop == gw[u]
        if not balanced(rule):
            assert hops == {gw[u] for u in p.uplinks}


def check_against_matrix(cfg: Config, version: int) -> int:
    """Every matrix row and rule; returns the number of (row, rule) cells compared."""
    script = compile_config(cfg, version).script
    export = parse_text(script, "rules.rsc")
    gw = gateways(cfg)
    cells = 0
    for row in matrix(cfg):
        down = frozenset(gw[n] for n in row.down)
        got = mark_paths(export, Scenario("down:" + "+".join(sorted(down)), down=down))
        for i in range(len(cfg.rules)):
            expected_ok(cfg, row.intent, i, got)
            cells += 1
    # verify's own report, its single failures included, holds the same paths, warns
    # of nothing, and says the same in the text.
    report = verify_text(script, "rules.rsc")
    assert report.warnings == (), report.to_text()
    rows = {r.id: r.marks for r in report.scenarios}
    by_down = {row.down: row.intent for row in matrix(cfg)}
    for w in cfg.wans:
        for i in range(len(cfg.rules)):
            expected_ok(cfg, by_down[frozenset({w.name})], i, rows[f"gateway-down:{w.gateway}"])
            expected_ok(cfg, by_down[frozenset()], i, rows["baseline"])
    return cells


@pytest.mark.parametrize("version", [7, 6])
def test_the_office_rules_paths_are_the_matrix(version: int) -> None:
    assert check_against_matrix(load(OFFICE_RULES), version) == 4 * 4


@pytest.mark.parametrize("mode", ["failover", "loadbalance"])
@pytest.mark.parametrize("version", [7, 6])
def test_three_uplinks_every_combination(mode: str, version: int) -> None:
    cfg = loads(THREE % mode, "three.yaml")
    assert check_against_matrix(cfg, version) == 8 * 4


@st.composite
def ruled_offices(draw: st.DrawFn) -> Config:
    n = draw(st.integers(min_value=2, max_value=3))
    wans = [
        {
            "name": f"W{i}",
            "interface": f"ether{i + 1}",
            "address": f"10.{i}.0.2/24",
            "gateway": f"10.{i}.0.1",
            "priority": draw(st.integers(min_value=1, max_value=3)),
            "weight": draw(st.integers(min_value=1, max_value=3)),
            "probe": {"targets": [f"203.0.113.{10 * i + t + 1}" for t in range(2)]},
        }
        for i in range(n)
    ]
    rules = []
    for k in range(draw(st.integers(min_value=1, max_value=4))):
        names = draw(st.permutations([w["name"] for w in wans]))
        via_n = draw(st.integers(min_value=1, max_value=n))
        lb = draw(st.booleans())
        via: object = (
            {"mode": "loadbalance", "uplinks": list(names[:via_n])} if lb else list(names[:via_n])
        )
        rules.append(
            {
                "name": f"r{k}",
                "from": [f"192.168.9.{32 * k}/27"],  # disjoint: no rule shadows another
                "via": via,
                "when_down": draw(st.sampled_from(["block", "default"])),
            }
        )
    data = {
        "wans": wans,
        "lans": [{"name": "lan", "interface": "ether9", "address": "192.168.9.1/24"}],
        "policy": {"mode": draw(st.sampled_from(["failover", "loadbalance"]))},
        "rules": rules,
    }
    return loads(yaml.safe_dump(data), "gen.yaml")


@settings(max_examples=30, deadline=None)
@given(ruled_offices(), st.sampled_from([6, 7]))
def test_any_ruled_office_paths_are_the_matrix(cfg: Config, version: int) -> None:
    assert check_against_matrix(cfg, version) == 2 ** len(cfg.wans) * len(cfg.rules)
