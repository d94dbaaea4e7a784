"""Policy rules per family (docs/rules.md): each rule's IPv6 path follows the uplinks'
IPv6 health, among the uplinks that have IPv6 (engine/policy.py decide_families).
On the virtual clock where timing matters; every figure is exact for its seed."""

from __future__ import annotations

from itertools import product
from pathlib import Path

from test_engine_ipv6 import LTE, dual_stack

from wanwatch.config import Config, load
from wanwatch.config.fields import AUTO
from wanwatch.engine.intent import Health, Intent, PathKind
from wanwatch.engine.policy import decide_families
from wanwatch.engine.sim import LinkModel, Simulator, first_after

HERE = Path(__file__).resolve().parents[1]
DUAL = HERE / "golden" / "rules" / "dual-stack-rules.yaml"
RULES = HERE.parent / "examples" / "office-rules.yaml"
P, B, DSL = "INET-UTAMA", "BACKUP-INET", "DSL"
UP, DOWN = Health.UP, Health.DOWN


def decided(cfg: Config, health4: dict[str, Health], health6: dict[str, Health]) -> Intent:
    preferred = {w.name: True for w in cfg.wans}
    return decide_families(cfg, (health4, health6), (preferred, preferred), None)


def paths(intent: Intent, family: int) -> dict[str, str]:
    return {p.name: str(p) for p in (intent.rules if family == 4 else intent.rules6)}


def test_an_uplink_without_ipv6_leaves_a_rules_ipv6_to_the_next_in_via() -> None:
    cfg = load(DUAL)
    intent = decided(cfg, dict.fromkeys((P, B, DSL), UP), dict.fromkeys((P, B), UP))
    assert paths(intent, 4)["voip"] == DSL  # via [DSL, INET-UTAMA]
    assert paths(intent, 6)["voip"] == P


def test_an_uplinks_ipv6_dying_alone_moves_only_the_rules_ipv6() -> None:
    cfg = load(DUAL)
    four = dict.fromkeys((P, B, DSL), UP)
    intent = decided(cfg, four, {P: UP, B: DOWN})
    assert paths(intent, 4) == {
        "guest": B,
        "voip": DSL,
        "bank": B,
        "partner6": P,
        "bulk": f"balance {P}+{B}",
    }
    assert paths(intent, 6) == {
        "guest": "block",  # when_down block: refused, never out by the LTE
        "voip": P,
        "bank": "block",
        "partner6": P,
        "bulk": f"balance {P}",
    }
    lost = decided(cfg, four, {P: DOWN, B: UP})
    assert paths(lost, 6)["voip"] == "default"  # when_down default: IPv6's policy, the backup
    assert lost.active6 == (B,) and paths(lost, 6)["partner6"] == "block"


def test_a_rules_ipv6_never_goes_to_an_uplink_whose_ipv6_is_down() -> None:
    """Every combination of both families' health on the three uplinks (2^5 with IPv6 on
    two of them): unless no IPv6 uplink is usable at all (the kept path), each IPv6 path
    goes by uplinks with IPv6 up only, and never by the DSL."""
    cfg = load(DUAL)
    seen = set()
    for h in product((UP, DOWN), repeat=5):
        four = dict(zip((P, B, DSL), h[:3], strict=True))
        six = dict(zip((P, B), h[3:], strict=True))
        intent = decided(cfg, four, six)
        assert intent.stale6 == all(v is DOWN for v in six.values())
        for p in intent.rules6:
            seen.add(p.kind)
            if not intent.stale6:
                assert all(six[u] is UP for u in p.uplinks), (h, p)
            assert DSL not in p.uplinks and DSL not in p.buckets
    assert seen == set(PathKind)


def _dual_rules_office() -> Config:
    """examples/office-rules.yaml with IPv6 on both uplinks and both LANs."""
    cfg = dual_stack(load(RULES))
    return cfg.replace(lans=tuple(lan.replace(address6=AUTO) for lan in cfg.lans))


def test_the_backups_ipv6_dying_blocks_the_guests_ipv6_at_the_same_instant() -> None:
    sim = Simulator(
        _dual_rules_office(),
        {P: LTE, B: LinkModel(rtt=0.012, jitter=0.001, outages6=[(60.3, 100)])},
        seed=1,
    )
    sim.run_until(80)
    degraded = first_after(sim.events, "wan.degraded", 0, wan=B, family=6)
    assert degraded is not None and 60.3 < degraded.at < 62.5
    moved = [e for e in sim.named("rule.path") if e.at > 10]
    assert {(e.fields["rule"], e.fields["to"], e.fields.get("family")) for e in moved} == {
        ("guest", "block", 6),
        ("voip", P, 6),
        ("bank", "block", 6),
    }  # not bulk: from and to IPv4 prefixes, it has no IPv6 path to move
    assert [str(p) for p in sim.intents[-1][1].rules6][3] == f"balance {P}"  # yet planned
    assert all(e.at == degraded.at for e in moved)  # the IPv4 paths never moved
    last = sim.intents[-1][1]
    assert [str(p) for p in last.rules] == [B, B, B, f"balance {P}+{B}"]
