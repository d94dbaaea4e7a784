"""One health model per uplink over both families, on the virtual clock (no wall clock).

The dual-stack office: the reference office with IPv6 on both uplinks and an IPv6
probe target each. Every figure asserted is exact for its seed.
"""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Interface
from pathlib import Path

import pytest

from wanwatch.config import Config, load
from wanwatch.config.model import icmp
from wanwatch.engine.core import Engine, combined
from wanwatch.engine.intent import Health
from wanwatch.engine.sim import LinkModel, Simulator, first_after

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"
P, B = "INET-UTAMA", "BACKUP-INET"
LTE = LinkModel(rtt=0.045, jitter=0.005)
WIRED = LinkModel(rtt=0.012, jitter=0.001)
TARGET6 = {P: IPv6Address("2001:db8:ffff::10"), B: IPv6Address("2001:db8:ffff::20")}


def dual_stack(cfg: Config, *, targets6: bool = True) -> Config:
    wans = []
    for i, w in enumerate(cfg.wans):
        extra = (icmp(TARGET6[w.name]),) if targets6 else ()
        wans.append(
            w.replace(
                address6=IPv6Interface(f"2001:db8:{i + 1}::2/64"),
                gateway6=IPv6Address("fe80::1"),
                probe=w.probe.replace(targets=(*w.probe.targets, *extra)),
            )
        )
    return cfg.replace(wans=tuple(wans))


@pytest.fixture(scope="module")
def office() -> Config:
    return dual_stack(load(OFFICE))


def simulate(cfg: Config, until: float, seed: int = 1, **links: LinkModel) -> Simulator:
    sim = Simulator(cfg, {P: links.get("primary", LTE), B: links.get("backup", WIRED)}, seed=seed)
    sim.run_until(until)
    return sim


def intent_at(sim: Simulator, t: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
    best = sim.intents[0][1]
    for at, intent in sim.intents:
        if at > t:
            break
        best = intent
    return best.active, best.active6


def test_both_families_start_on_the_primary(office: Config) -> None:
    sim = simulate(office, 10)
    assert intent_at(sim, 10) == ((P,), (P,))
    select6 = first_after(sim.events, "policy.select", 0, family=6)
    assert select6 is not None and select6.fields["to"] == P
    (p,) = [s for s in sim.engine.status(10) if s.name == P]
    assert p.state is Health.UP and p.families == {"4": Health.UP, "6": Health.UP}


def test_ipv6_dying_alone_moves_ipv6_only(office: Config) -> None:
    sim = simulate(office, 80, primary=LinkModel(rtt=0.045, jitter=0.005, outages6=[(60.3, 100)]))
    degraded = first_after(sim.events, "wan.degraded", 0, wan=P, family=6)
    assert degraded is not None and degraded.fields["reason"] == "lost"
    assert 60.3 < degraded.at < 62.5  # IPv6 probes at half cadence: one per second
    assert not sim.named("wan.down")  # the uplink is not down: its IPv4 lives
    fo = first_after(sim.events, "policy.failover", 0)
    assert fo is not None and fo.fields["family"] == 6 and fo.at == degraded.at
    assert fo.fields["from"] == P and fo.fields["to"] == B
    assert fo.fields["detect_ms"] == degraded.fields["detect_ms"]
    assert intent_at(sim, degraded.at - 0.001) == ((P,), (P,))
    assert intent_at(sim, degraded.at) == ((P,), (B,))
    during = next(i for t, i in sim.intents if t == degraded.at)
    assert during.flush6 == (P,) and during.flush == ()
    (p,) = [s for s in sim.engine.status(80) if s.name == P]
    assert p.state is Health.DEGRADED
    assert p.families == {"4": Health.UP, "6": Health.DOWN}
    sim.run_until(120)
    # back: IPv6 recovers (the uplink was never down) and fails back after its hold
    back = first_after(sim.events, "wan.recovered", 100, wan=P, family=6)
    assert back is not None
    fb = first_after(sim.events, "policy.failback", 100, family=6)
    assert fb is not None and fb.fields["to"] == P
    assert fb.at == pytest.approx(back.at + 10.0)
    assert intent_at(sim, 120) == ((P,), (P,))


def test_a_whole_uplink_outage_moves_both_families_and_is_one_down(office: Config) -> None:
    sim = simulate(office, 120, primary=LinkModel(rtt=0.045, jitter=0.005, outages=[(60.3, 100)]))
    downs = sim.named("wan.down", P)
    assert len(downs) == 1  # the second family to fall speaks for the uplink
    first = first_after(sim.events, "wan.degraded", 60, wan=P)
    assert first is not None and first.at <= downs[0].at
    f4 = first_after(sim.events, "policy.failover", 0)
    f6 = first_after(sim.events, "policy.failover", 0, family=6)
    assert f4 is not None and "family" not in f4.fields and f6 is not None
    # the first loss of either family starts the other's burst: both well within a second
    assert 60.3 < f4.at < 61.3 and 60.3 < f6.at < 61.3
    assert isinstance(f4.fields["detect_ms"], int) and 0 < f4.fields["detect_ms"] < 1000
    assert first_after(sim.events, "wan.suspect", 60, trigger="sibling") is not None
    assert intent_at(sim, 62) == ((B,), (B,))


def test_carrier_loss_is_one_down_for_both_families(office: Config) -> None:
    sim = simulate(office, 70, primary=LinkModel(rtt=0.045, carrier_down=[(60.3, 80)]))
    down = first_after(sim.events, "wan.down", 0, wan=P)
    assert down is not None and down.at == 60.3 and down.fields["family"] == 4
    degraded = first_after(sim.events, "wan.degraded", 60, wan=P)
    assert degraded is not None and degraded.at == 60.3 and degraded.fields["family"] == 6
    assert len(sim.named("wan.down", P)) == 1
    assert intent_at(sim, 60.3) == ((B,), (B,))
    (p,) = [s for s in sim.engine.status(70) if s.name == P]
    assert p.state is Health.DOWN


def test_both_families_together_keep_the_probe_budget(office: Config) -> None:
    lossy = LinkModel(rtt=0.1, jitter=0.02, loss=0.2)
    sim = simulate(office, 3600, seed=7, primary=lossy)
    names = {e.name for e in sim.events}
    assert not names & {"wan.down", "wan.degraded", "policy.failover"}
    # both families, one budget: 2.022 /s at this seed, IPv4 alone 2.017 (the sibling
    # bursts cost the difference, paid back by the healthy cadence like any burst)
    assert sim.engine.probes_sent()[P] / 3600 <= 2.03
    assert sim.engine.probes_sent()[B] / 3600 <= 2.01


def test_an_uplink_without_ipv6_never_carries_it(office: Config) -> None:
    backup = office.wans[1].replace(
        address6=None, gateway6=None, probe=office.wans[1].probe.replace(
            targets=office.wans[1].probe.family(4)
        )
    )  # fmt: skip
    cfg = office.replace(wans=(office.wans[0], backup))
    sim = simulate(cfg, 120, primary=LinkModel(rtt=0.045, outages=[(60.3, 100)]))
    assert intent_at(sim, 80) == ((B,), (P,))  # IPv6 keeps its last choice: no one else has it
    late = sim.intents[-1][1]
    assert all(B not in i.active6 for _, i in sim.intents) and late.active6 == (P,)
    stale6 = first_after(sim.events, "policy.stale", 60, family=6)
    assert stale6 is not None and stale6.fields["keeping"] == P


def test_ipv6_without_its_own_target_follows_the_ipv4_health(office: Config) -> None:
    cfg = dual_stack(load(OFFICE), targets6=False)
    cut = LinkModel(rtt=0.045, outages=[(60.3, 100)])
    sim = simulate(cfg, 120, primary=cut)
    assert intent_at(sim, 80) == ((B,), (B,))
    f6 = first_after(sim.events, "policy.failover", 0, family=6)
    f4 = first_after(sim.events, "policy.failover", 0)
    assert f6 is not None and f4 is not None and f6.at == f4.at
    assert f6.fields["detect_ms"] == f4.fields["detect_ms"]
    # one family probed, exactly as an IPv4-only office probes it
    assert sim.engine.probes_sent() == simulate(load(OFFICE), 120, primary=cut).engine.probes_sent()


def test_reload_to_ipv4_only_drops_the_ipv6_monitors(office: Config) -> None:
    engine = Engine(office, 0.0)
    assert {r.target.address.version for t in (0.0, 0.5) for r in engine.due(t)} == {4, 6}
    engine.reload(load(OFFICE), 1.0)
    engine.tick(4.0)  # past the start-up grace: the policy has chosen
    assert {r.target.address.version for r in engine.due(5.0)} == {4}
    assert engine.intent().active6 == ()


@pytest.mark.parametrize(
    ("families", "state"),
    [
        ({4: Health.UP, 6: Health.UP}, Health.UP),
        ({4: Health.UP, 6: Health.DOWN}, Health.DEGRADED),
        ({4: Health.DOWN, 6: Health.UP}, Health.DEGRADED),
        ({4: Health.DEGRADED, 6: Health.UP}, Health.DEGRADED),
        ({4: Health.DOWN, 6: Health.DOWN}, Health.DOWN),
        ({4: Health.UNKNOWN, 6: Health.DOWN}, Health.UNKNOWN),
        ({4: Health.UP, 6: Health.UNKNOWN}, Health.UP),
    ],
)
def test_combined_health(families: dict[int, Health], state: Health) -> None:
    assert combined(families) is state
