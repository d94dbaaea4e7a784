"""Each rule's path through failures, in virtual time (the simulator drives the Engine as
the daemon does), and the pure path function on posed states."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanwatch.config import Config, load
from wanwatch.engine.intent import Admin, Health, Intent, PathKind
from wanwatch.engine.policy import plan_for
from wanwatch.engine.rules import rule_paths
from wanwatch.engine.sim import LinkModel, Simulator, first_after

RULES = Path(__file__).resolve().parents[2] / "examples" / "office-rules.yaml"
P, B = "INET-UTAMA", "BACKUP-INET"
LTE = LinkModel(rtt=0.045, jitter=0.005)
WIRED = LinkModel(rtt=0.012, jitter=0.001)


@pytest.fixture(scope="module")
def office() -> Config:
    return load(RULES)


def paths(intent: Intent) -> dict[str, str]:
    return {p.name: str(p) for p in intent.rules}


def at(sim: Simulator, t: float) -> Intent:
    return next(i for when, i in reversed(sim.intents) if when <= t)


HEALTHY = {"guest": B, "voip": B, "bank": B, "bulk": f"balance {P}+{B}"}


def test_backup_dies_guest_and_bank_block_voip_moves_the_rest_stays(office: Config) -> None:
    sim = Simulator(office, {P: LTE, B: LinkModel(rtt=0.012, outages=[(60.3, 100)])}, seed=1)
    sim.run_until(120)
    assert paths(at(sim, 60.0)) == HEALTHY
    down = first_after(sim.events, "wan.down", 0, wan=B)
    assert down is not None and 60.3 < down.at < 61.3
    during = at(sim, down.at)
    assert paths(during) == {"guest": "block", "voip": P, "bank": "block", "bulk": f"balance {P}"}
    assert during.active == (P,) and during.flush == (B,)
    moved = [e for e in sim.events if e.name == "rule.path" and e.at == down.at]
    assert {e.fields["rule"]: (e.fields["from"], e.fields["to"]) for e in moved} == {
        "guest": (B, "block"),
        "voip": (B, P),
        "bank": (B, "block"),
        "bulk": (f"balance {P}+{B}", f"balance {P}"),
    }
    assert not any(e.name.startswith("policy.") for e in sim.events if e.at == down.at)
    # back after up_after good probes and the hold: every rule returns to its first choice
    back = first_after(sim.events, "rule.path", 100, rule="guest")
    assert back is not None and back.fields["to"] == B and back.at > 100
    assert paths(at(sim, 119)) == HEALTHY


def test_primary_dies_only_the_rules_that_used_it_move(office: Config) -> None:
    sim = Simulator(office, {P: LinkModel(rtt=0.045, outages=[(60.3, 100)]), B: WIRED}, seed=2)
    sim.run_until(90)
    down = first_after(sim.events, "wan.down", 0, wan=P)
    assert down is not None
    moved = [e.fields["rule"] for e in sim.events if e.name == "rule.path" and e.at >= 60]
    assert moved == ["bulk"]
    assert paths(at(sim, down.at))["bulk"] == f"balance {B}"
    assert at(sim, down.at).flush == (P,)


def test_an_uplink_a_rule_still_uses_is_not_flushed(office: Config) -> None:
    cfg = office.replace(policy=office.policy.replace(mode="failover"))
    intent = plan_for(cfg, {B})
    assert intent.flush == (B,)
    # the policy moved away from a DOWN primary, but a stale rule may still name it:
    health = {P: Health.DOWN, B: Health.DOWN}
    keep = rule_paths(cfg, health, {}, {}, stale=True, previous=plan_for(cfg, set()).rules)
    assert [str(p) for p in keep] == list(HEALTHY.values())


def test_when_everything_is_down_rules_keep_their_paths(office: Config) -> None:
    sim = Simulator(
        office,
        {
            P: LinkModel(rtt=0.045, outages=[(60.3, 80)]),
            B: LinkModel(rtt=0.012, outages=[(60.3, 80)]),
        },
        seed=3,
    )
    sim.run_until(79)
    final = at(sim, 79)
    assert final.stale
    assert paths(final) == HEALTHY  # no block storm in a total outage: nothing to fail to


def test_a_drained_uplink_takes_no_rule_traffic(office: Config) -> None:
    health = {P: Health.UP, B: Health.UP}
    ps = rule_paths(office, health, {P: True, B: True}, {B: Admin.DRAIN}, stale=False)
    assert [str(p) for p in ps] == ["block", P, "block", f"balance {P}"]
    assert [p.kind for p in ps] == [
        PathKind.BLOCK,
        PathKind.UPLINK,
        PathKind.BLOCK,
        PathKind.BALANCE,
    ]


def test_balanced_rule_buckets_follow_via_weights(office: Config) -> None:
    bulk = plan_for(office, set()).rules[3]
    assert bulk.buckets.count(B) == 3 and bulk.buckets.count(P) == 1


def test_a_degraded_uplink_beats_block(office: Config) -> None:
    health = {P: Health.UP, B: Health.DEGRADED}
    ps = rule_paths(office, health, {P: True, B: True}, {}, stale=False)
    assert str(ps[0]) == B  # guest has only the backup: degraded beats block
    assert str(ps[1]) == P  # voip [B, P]: an UP uplink beats a DEGRADED one, as in the policy
