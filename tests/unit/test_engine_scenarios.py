"""The Engine driven by the simulator through due/reply/tick, as the daemon drives it.

Virtual time: an hour of 20 % loss runs in well under a second, and every figure
asserted here is exact for its seed (no wall clock anywhere).
"""

from __future__ import annotations

import math
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from wanwatch.config import Config, load, loads
from wanwatch.engine.core import Engine, WanStatus
from wanwatch.engine.intent import Health
from wanwatch.engine.sim import PORTAL_URL, LinkModel, Simulator, first_after

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"
P, B = "INET-UTAMA", "BACKUP-INET"
LTE = LinkModel(rtt=0.045, jitter=0.005)
WIRED = LinkModel(rtt=0.012, jitter=0.001)


@pytest.fixture(scope="module")
def office() -> Config:
    return load(OFFICE)


def loadbalance(cfg: Config) -> Config:
    return cfg.replace(policy=cfg.policy.replace(mode="loadbalance"))


def simulate(cfg: Config, until: float, seed: int = 1, **links: LinkModel) -> Simulator:
    models = {P: links.get("primary", LTE), B: links.get("backup", WIRED)}
    sim = Simulator(cfg, models, seed=seed)
    sim.run_until(until)
    return sim


def test_clean_cut_fails_over_within_a_second(office: Config) -> None:
    sim = simulate(office, 120, primary=LinkModel(rtt=0.045, jitter=0.005, outages=[(60.3, 100)]))
    down = first_after(sim.events, "wan.down", 0, wan=P)
    assert down is not None and down.fields["reason"] == "lost"
    assert 60.3 < down.at < 61.3
    fo = first_after(sim.events, "policy.failover", 0)
    assert fo is not None and fo.at == down.at
    assert fo.fields["from"] == P and fo.fields["to"] == B
    assert fo.fields["detect_ms"] == down.fields["detect_ms"]
    assert isinstance(fo.fields["detect_ms"], int) and 0 < fo.fields["detect_ms"] < 1000
    assert sim.primary_at(down.at - 0.001) == P and sim.primary_at(down.at) == B
    during = next(i for t, i in sim.intents if t == down.at)
    assert during.flush == (P,) and not during.stale
    assert len(sim.named("wan.down")) == 1  # the backup never wavered


def test_carrier_loss_is_immediate(office: Config) -> None:
    sim = simulate(office, 100, primary=LinkModel(rtt=0.045, carrier_down=[(60.3, 80)]))
    down = first_after(sim.events, "wan.down", 0, wan=P)
    assert down is not None and down.at == 60.3 and down.fields["reason"] == "carrier"
    assert sim.primary_at(60.3) == B


def test_twenty_percent_loss_for_an_hour_never_fails_over(office: Config) -> None:
    lossy = LinkModel(rtt=0.1, jitter=0.02, loss=0.2)
    sim = simulate(office, 3600, seed=7, primary=lossy)
    names = {e.name for e in sim.events}
    assert not names & {"wan.down", "wan.degraded", "policy.failover", "target.silent"}
    assert sim.primary_at(3600) == P
    rate = sim.engine.probes_sent()[P] / 3600
    assert rate <= 2.02  # suspicion bursts are paid for by a slower healthy cadence
    (status,) = [s for s in sim.engine.status(3600) if s.name == P]
    assert 5 <= status.loss_pct <= 40 and status.state is Health.UP


def test_jitter_100_20_causes_no_timeout_storm(office: Config) -> None:
    jittery = LinkModel(rtt=0.1, jitter=0.02)
    sim = simulate(office, 1800, seed=3, primary=jittery)
    assert not sim.named("wan.down") and not sim.named("policy.failover")
    assert sim.engine.probes_sent()[P] / 1800 <= 2.01
    (status,) = [s for s in sim.engine.status(1800) if s.name == P]
    assert status.rtt_ms is not None and 85 <= status.rtt_ms <= 115
    assert status.loss_pct < 1.0


def _steps(rtt: float) -> LinkModel:
    """A 0.5 ms path whose RTT steps to ``rtt`` for 2 s every minute (a queue filled by an
    upload), from 60 s on: by then its record is measured clean (50 ms floor)."""
    return LinkModel(rtt=0.0005, slow=[((60.0 * k, 60.0 * k + 2.0), rtt) for k in range(1, 15)])


def test_an_rtt_step_shorter_than_the_run_fails_nothing_over(office: Config) -> None:
    # 100 ms: each burst's first probes are answered late, within the run (~200 ms)
    sim = simulate(office, 900, primary=_steps(0.1))
    assert not sim.named("wan.down", P) and not sim.named("policy.failover")


def test_a_late_reply_keeps_later_rtt_steps_from_failing_over(office: Config) -> None:
    # 250 ms outlasts the run of the 50 ms floor: the first step fails over, but its
    # late replies keep the 150 ms floor (run ~400 ms), so the next 13 steps do not.
    sim = simulate(office, 900, primary=_steps(0.25))
    downs = sim.named("wan.down", P)
    assert [round(d.at) for d in downs] == [60]
    assert len(sim.named("policy.failover")) == 1
    # one floor of 50 ms (min_timeout too): every step is a false down
    low = office.replace(monitor=office.monitor.replace(min_timeout=0.05))
    assert len(simulate(low, 900, primary=_steps(0.25)).named("wan.down", P)) == 14


def test_recovery_fails_back_only_after_hold(office: Config) -> None:
    sim = simulate(office, 200, primary=LinkModel(rtt=0.045, outages=[(60, 100)]))
    up = first_after(sim.events, "wan.up", 100, wan=P)
    assert up is not None and up.fields["hold_s"] == 10.0 and up.fields["good"] == 5
    assert 102 <= up.at <= 103.5  # five answers at the healthy cadence
    fb = first_after(sim.events, "policy.failback", 0)
    assert fb is not None and fb.fields["from"] == B and fb.fields["to"] == P
    assert fb.at == pytest.approx(up.at + 10.0)
    assert sim.primary_at(fb.at - 0.01) == B and sim.primary_at(fb.at) == P


def test_flapping_grows_the_hold_and_it_decays(office: Config) -> None:
    flaps = [(60.0 + 30 * k, 65.0 + 30 * k) for k in range(8)]
    late = 60.0 + 30 * 7 + 700  # after the flap window: forgiven
    link = LinkModel(rtt=0.045, outages=[*flaps, (late, late + 5)])
    sim = simulate(office, late + 60, primary=link)
    holds = [e.fields["hold_s"] for e in sim.named("wan.up", P) if e.at > 60]
    assert holds == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0, 10.0]
    # while damped it stays off the primary role although it answers again
    assert sim.primary_at(60 + 30 * 3 + 20) == B


def test_both_dead_keeps_last_choice_and_recovers(office: Config) -> None:
    sim = simulate(
        office,
        200,
        primary=LinkModel(rtt=0.045, outages=[(60, 150)]),
        backup=LinkModel(rtt=0.012, outages=[(90, 120)]),
    )
    stale = first_after(sim.events, "policy.stale", 0)
    assert stale is not None and stale.fields["keeping"] == B and 90 < stale.at < 91
    mid = next(i for t, i in reversed(sim.intents) if t <= 100)
    assert mid.stale and mid.active == (B,) and mid.flush == (P,)
    back = first_after(sim.events, "wan.up", 120, wan=B)
    assert back is not None
    after = next(i for t, i in reversed(sim.intents) if t <= back.at)
    assert not after.stale and after.active == (B,)
    assert sim.primary_at(199) == P


def test_one_silent_target_is_not_a_dead_uplink(office: Config) -> None:
    dead = IPv4Address("8.8.8.8")
    link = LinkModel(rtt=0.045, jitter=0.005, silent_targets={dead: [(60, 150)]})
    sim = simulate(office, 200, primary=link)
    silent = first_after(sim.events, "target.silent", 0)
    assert silent is not None and silent.fields["target"] == "8.8.8.8"
    # its own misses raise the loss estimate, so a few more than a clean link's 6
    assert 6 <= int(silent.fields["lost"] or 0) <= 15
    assert 60 < silent.at < 70
    assert not sim.named("wan.down") and not sim.named("policy.failover")
    back = first_after(sim.events, "target.back", 0)
    assert back is not None and 150 < back.at <= 156  # the 5 s recheck found it
    (status,) = [s for s in sim.engine.status(100) if s.name == P]
    assert status.targets == {"8.8.8.8": "answering", "1.1.1.1": "answering"}
    status_mid = Simulator(office, {P: link, B: WIRED}, seed=1)
    status_mid.run_until(100)
    (mid,) = [s for s in status_mid.engine.status(100) if s.name == P]
    assert mid.targets["8.8.8.8"] == "silent" and mid.loss_pct == 0.0


def test_the_uplink_dies_while_one_target_is_already_silent(office: Config) -> None:
    dead = IPv4Address("8.8.8.8")
    link = LinkModel(rtt=0.045, silent_targets={dead: [(30, 500)]}, outages=[(100, 150)])
    sim = simulate(office, 160, primary=link)
    down = first_after(sim.events, "wan.down", 0, wan=P)
    assert down is not None and 100 < down.at < 101.2


def test_same_seed_same_story(office: Config) -> None:
    link = LinkModel(rtt=0.08, jitter=0.02, loss=0.1, outages=[(40, 70)])
    a = simulate(office, 150, seed=5, primary=link)
    b = simulate(office, 150, seed=5, primary=link)
    assert [str(e) for e in a.events] == [str(e) for e in b.events]
    assert [(t, i) for t, i in a.intents] == [(t, i) for t, i in b.intents]


def test_startup_waits_for_the_primary_even_if_the_backup_answers_first(office: Config) -> None:
    sim = simulate(office, 30, primary=LinkModel(rtt=0.08), backup=LinkModel(rtt=0.005))
    policy = [e for e in sim.events if e.name.startswith("policy.")]
    assert [(e.name, e.fields) for e in policy] == [("policy.select", {"to": P})]


def test_startup_with_a_dead_primary_selects_the_backup(office: Config) -> None:
    sim = simulate(office, 30, primary=LinkModel(outages=[(0, 100)]))
    policy = [e for e in sim.events if e.name.startswith("policy.")]
    assert [(e.name, e.fields) for e in policy] == [("policy.select", {"to": B})]
    assert policy[0].at <= 3.0


def test_loadbalance_drops_the_dead_uplink_from_the_hash(office: Config) -> None:
    cfg = loadbalance(office.replace(wans=tuple(w.replace(priority=1) for w in office.wans)))
    sim = simulate(cfg, 120, primary=LinkModel(rtt=0.045, outages=[(60, 90)]))
    assert sim.engine.intent().active == (P, B)
    mid = next(i for t, i in reversed(sim.intents) if t <= 80)
    assert mid.active == (B,) and mid.buckets == (B,)
    fo = first_after(sim.events, "policy.failover", 0)
    assert fo is not None and fo.fields["from"] == f"{P},{B}" and fo.fields["to"] == B
    fb = first_after(sim.events, "policy.failback", 0)
    assert fb is not None and fb.fields["to"] == f"{P},{B}"


def test_reload_keeps_health_of_surviving_uplinks(office: Config) -> None:
    sim = simulate(office, 20)
    engine = sim.engine
    assert {s.name: s.state for s in engine.status(20)} == {P: Health.UP, B: Health.UP}
    only_backup = office.replace(wans=(office.wans[1],))
    events = engine.reload(only_backup, 20.0)
    assert events[0].name == "engine.reload" and events[0].fields["removed"] == P
    assert [e.name for e in events[1:]] == ["policy.failover"]
    assert [s.name for s in engine.status(20)] == [B]
    assert engine.status(20)[0].state is Health.UP
    assert engine.intent().active == (B,) and engine.intent().uplink(B).slot == 0
    assert engine.reply(P, 1, 0.01, 20.1) == []  # the removed uplink's late replies


def test_engine_api_contract(office: Config) -> None:
    engine = Engine(office, 1000.0)
    reqs = engine.due(1000.0)
    assert {(r.wan, r.target.address) for r in reqs} == {
        (P, IPv4Address("8.8.8.8")),
        (B, IPv4Address("9.9.9.9")),
    }
    assert engine.due(1000.0) == []  # already outstanding
    assert 1000.0 < engine.next_wakeup() <= 1001.0
    assert engine.reply("nope", 1, 0.01, 1000.01) == []
    assert engine.reply(P, 999, 0.01, 1000.01) == []
    assert engine.intent().stale  # nothing known yet
    status = engine.status(1000.0)
    assert [s.state for s in status] == [Health.UNKNOWN, Health.UNKNOWN]
    assert status[0].rtt_ms is None and status[0].since == 1000.0


def test_carrier_back_takes_the_uplink_off_the_flush_list(office: Config) -> None:
    sim = simulate(office, 70, primary=LinkModel(rtt=0.045, carrier_down=[(30, 60)]))
    during = next(i for t, i in reversed(sim.intents) if t <= 59)
    assert during.flush == (P,)
    after = next(i for t, i in reversed(sim.intents) if t <= 60)
    assert after.flush == () and after.uplink(P).health is Health.UNKNOWN


def test_poisson_upper_bound() -> None:
    from wanwatch.engine.sim import poisson_upper

    assert poisson_upper(0, 3.0) == pytest.approx(0.9986, abs=1e-3)
    assert poisson_upper(5, 1.0) == pytest.approx(10.51, rel=0.01)  # chi2(0.95, 12) / 2


# --------------------------------------------------------------------------- traffic trigger


def test_traffic_starts_the_burst_before_the_next_probe_would(office: Config) -> None:
    """Ten cuts at random phases of the probe cadence, with and without LAN traffic."""
    # One 150 ms floor: with the 50 ms clean floor a probe sent just before the cut is
    # lost before the stall is reported, and the trigger has nothing left to start.
    office = office.replace(monitor=office.monitor.replace(clean_min_timeout=0.15))
    quicker = []
    for k in range(10):
        cut = 60.0 + k * 0.047  # spread over one 500 ms interval
        downs = []
        for traffic in ((0.0, 200.0),), ():
            link = LinkModel(rtt=0.045, jitter=0.005, outages=[(cut, 150)], traffic=traffic)
            sim = simulate(office, 120, primary=link)
            down = first_after(sim.events, "wan.down", cut, wan=P)
            assert down is not None and down.fields["reason"] == "lost"
            downs.append(down.at - cut)
            suspects = sim.named("wan.suspect", P)
            if traffic:
                [suspect] = suspects
                assert suspect.fields["trigger"] == "traffic"
                assert suspect.at == pytest.approx(cut + link.stall_after)
            else:
                assert suspects == []
        quicker.append(downs[1] - downs[0])
        # the burst: 6 probes 25 ms apart from the stall, the last one's timeout
        assert downs[0] <= link.stall_after + 5 * 0.025 + 0.151
    # a cut just before a healthy probe gains least: that probe starts the run anyway
    assert min(quicker) >= 0 and sorted(quicker)[5] > 0.2


def test_a_one_way_flow_at_twenty_percent_loss_never_fails_over(office: Config) -> None:
    """The kernel reports a stall every 75 ms for an hour; the probes still decide."""
    lossy = LinkModel(rtt=0.1, jitter=0.02, loss=0.2, one_way=[(0.0, 3600.0)])
    sim = simulate(office, 3600, seed=7, primary=lossy)
    names = {e.name for e in sim.events}
    assert not names & {"wan.down", "wan.degraded", "policy.failover", "target.silent"}
    assert sim.primary_at(3600) == P
    assert sim.engine.probes_sent()[P] / 3600 <= 2.02  # the same budget as without it
    # bursts were started, but loss-started episodes already use much of the budget
    assert 0 < len(sim.named("wan.suspect", P)) < 3600 / 0.5


# --------------------------------------------------------------------------- probe methods

MIXED_TARGETS = """targets:
        - 8.8.8.8
        - 1.1.1.1
        - {method: tcp, address: 1.0.0.1, port: 443}
        - {method: http, address: 142.250.1.1, url: "http://connectivitycheck.gstatic.com/generate_204"}
        - {method: dns, address: 9.9.9.10, name: example.com}"""
NEVER = math.inf


@pytest.fixture(scope="module")
def mixed() -> Config:
    """The office with a primary probed by every method."""
    text = OFFICE.read_text().replace("targets: [8.8.8.8, 1.1.1.1]", MIXED_TARGETS)
    return loads(text, "mixed.yaml")


def test_mixed_methods_at_twenty_percent_loss_never_fail_over(mixed: Config) -> None:
    lossy = LinkModel(rtt=0.1, jitter=0.02, loss=0.2)
    sim = simulate(mixed, 4 * 3600, seed=7, primary=lossy)
    names = {e.name for e in sim.events}
    assert not names & {"wan.down", "wan.degraded", "wan.portal", "policy.failover"}
    # ICMP's 2 /s (stretched to pay for bursts) plus tcp 0.5, dns 0.2, http 0.1
    assert 2.4 <= sim.engine.probes_sent()[P] / (4 * 3600) <= 2.8


def test_icmp_filtered_but_tcp_http_dns_answering_is_up_for_hours(mixed: Config) -> None:
    for seed, loss in ((7, 0.0), (8, 0.2)):
        link = LinkModel(rtt=0.1, jitter=0.02, loss=loss, filtered={"icmp": [(0, NEVER)]})
        sim = simulate(mixed, 3 * 3600, seed=seed, primary=link)
        names = {e.name for e in sim.events}
        assert not names & {"wan.down", "wan.degraded", "policy.failover"}, (seed, names)
        silent = [str(e.fields["target"]) for e in sim.named("target.silent", P)]
        assert sorted(silent) == ["1.1.1.1", "8.8.8.8"]  # once each, early
        assert all(e.at < 15 for e in sim.named("target.silent", P))
        (status,) = [s for s in sim.engine.status(3 * 3600) if s.name == P]
        assert status.state is Health.UP and status.loss_pct < 30


def test_icmp_filtered_later_on_causes_no_failover(mixed: Config) -> None:
    link = LinkModel(rtt=0.045, jitter=0.005, loss=0.1, filtered={"icmp": [(600, NEVER)]})
    sim = simulate(mixed, 3600, seed=3, primary=link)
    assert not sim.named("policy.failover") and not sim.named("wan.degraded")
    assert {e.fields["target"] for e in sim.named("target.silent", P)} == {"8.8.8.8", "1.1.1.1"}


def test_icmp_filtered_uplink_still_fails_over_on_a_cut(mixed: Config) -> None:
    detect = []
    for k in range(10):
        cut = 300.0 + 7.3 * k  # spread over the tcp and dns cadences
        link = LinkModel(rtt=0.045, filtered={"icmp": [(0, NEVER)]}, outages=[(cut, cut + 60)])
        sim = simulate(mixed, cut + 30, primary=link)
        fo = first_after(sim.events, "policy.failover", cut)
        assert fo is not None and fo.fields["reason"] == "down"
        detect.append(fo.at - cut)
    # the next tcp/dns probe (<= 2 s) times out, then the burst over tcp, http and dns
    assert max(detect) < 3.5


def test_a_cut_is_seen_by_every_method_together(mixed: Config) -> None:
    link = LinkModel(rtt=0.045, jitter=0.005, outages=[(60.3, 100)])
    sim = simulate(mixed, 120, primary=link)
    down = first_after(sim.events, "wan.down", 0, wan=P)
    assert down is not None and 60.3 < down.at < 61.3  # as fast as with ICMP alone


def test_portal_is_detected_routed_like_down_and_left_after_a_hold(mixed: Config) -> None:
    link = LinkModel(rtt=0.045, portal=[(60.0, 200.0)])
    sim = simulate(mixed, 260, primary=link)
    portal = first_after(sim.events, "wan.portal", 0, wan=P)
    assert portal is not None and portal.fields["url"] == PORTAL_URL
    assert 60 < portal.at < 70.5  # the next http probe (every 10 s), then its confirmation
    fo = first_after(sim.events, "policy.failover", 0)
    assert fo is not None and fo.at == portal.at
    assert (fo.fields["cause"], fo.fields["reason"]) == (P, "portal")
    during = next(i for t, i in reversed(sim.intents) if t <= 150)
    assert during.active == (B,) and during.flush == (P,)
    assert not sim.named("wan.down", P)  # ICMP, tcp and dns still answered
    up = first_after(sim.events, "wan.up", 200, wan=P)
    assert up is not None and up.fields["prev"] == "portal" and up.fields["hold_s"] == 10.0
    fb = first_after(sim.events, "policy.failback", 0)
    assert fb is not None and fb.at == pytest.approx(up.at + 10.0)


def test_status_names_the_portal_url_while_portal_only(mixed: Config) -> None:
    sim = Simulator(mixed, {P: LinkModel(rtt=0.045, portal=[(60.0, 200.0)]), B: WIRED}, seed=1)

    def primary() -> WanStatus:
        return next(w for w in sim.engine.status(sim.now) if w.name == P)

    sim.run_until(50)
    assert (primary().state, primary().portal) == (Health.UP, None)
    sim.run_until(150)
    assert (primary().state, primary().portal) == (Health.PORTAL, PORTAL_URL)
    sim.run_until(260)
    assert (primary().state, primary().portal) == (Health.UP, None)


def test_a_portal_as_last_resort_carries_only_when_nothing_else_can(mixed: Config) -> None:
    primary_wan = mixed.wans[0]
    last = primary_wan.replace(probe=primary_wan.probe.replace(portal="last_resort"))
    cfg = mixed.replace(wans=(last, *mixed.wans[1:]))
    primary = LinkModel(rtt=0.045, portal=[(60.0, 500.0)])
    sim = simulate(cfg, 300, primary=primary, backup=LinkModel(rtt=0.012, outages=[(120, 500)]))
    assert sim.primary_at(100) == B  # a healthy backup beats the portal
    assert sim.primary_at(150) == P  # the backup died: the portal is better than nothing
    final = sim.intents[-1][1]
    assert not final.stale and final.flush == (B,)


def test_startup_on_a_portal_selects_the_backup_without_a_false_start(mixed: Config) -> None:
    sim = simulate(mixed, 30, primary=LinkModel(rtt=0.045, portal=[(0.0, 100.0)]))
    policy = [(e.name, e.fields) for e in sim.events if e.name.startswith("policy.")]
    assert policy == [("policy.select", {"to": B})]
    # ICMP, tcp and dns answer first (one round trip), the http verdict follows
    portal = first_after(sim.events, "wan.portal", 0, wan=P)
    assert portal is not None and portal.at < 0.5  # two HTTP round trips 25 ms apart


def test_a_line_back_from_a_cut_into_a_portal_rises_into_portal(mixed: Config) -> None:
    link = LinkModel(rtt=0.045, outages=[(60.0, 100.0)], portal=[(80.0, 300.0)])
    sim = simulate(mixed, 200, primary=link)
    portal = first_after(sim.events, "wan.portal", 100, wan=P)
    assert portal is not None and portal.fields["prev"] == "down"
    # its lower layers answered first, but the rise waited for the web's verdict
    assert not first_after(sim.events, "wan.up", 100, wan=P)
    assert not first_after(sim.events, "policy.failback", 0)
    assert sim.primary_at(199) == B
    assert not sim.named("target.silent")  # the outage's misses blame no target


def test_a_metered_backup_is_probed_slowly_yet_taken_at_the_primarys_detection(
    office: Config,
) -> None:
    metered = office.replace(wans=(office.wans[0], office.wans[1].replace(metered=True)))
    # No jitter: the primary's timeouts (above the 50 ms clean floor) then do not hang on
    # random draws, which the backup's fewer probes would shift.
    cut = LinkModel(rtt=0.045, outages=[(600.3, 700)])
    plain = simulate(office, 800, primary=cut)
    slow = simulate(metered, 800, primary=cut)
    for sim in (plain, slow):
        fo = first_after(sim.events, "policy.failover", 0)
        assert fo is not None and fo.fields["to"] == B
    # the same detection: the primary's probes decide it, not the backup's
    fo_plain = first_after(plain.events, "policy.failover", 0)
    fo_slow = first_after(slow.events, "policy.failover", 0)
    assert fo_plain is not None and fo_slow is not None and fo_slow.at == fo_plain.at
    standby = Simulator(metered, {P: cut, B: WIRED}, seed=1)
    standby.run_until(600)
    assert standby.engine.probes_sent()[B] / 600 < 0.11  # every 10 s, not 2 /s
    before = standby.engine.probes_sent()[B]
    standby.run_until(700)
    assert (standby.engine.probes_sent()[B] - before) / 100 > 1.9  # carrying: full cadence
