"""The health state machine, its statistics and the per-uplink monitor, driven directly."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest

from wanwatch.config import Monitor
from wanwatch.config.load import validate
from wanwatch.config.model import HttpTarget, Target, TcpTarget, icmp
from wanwatch.engine.health import (
    Answered,
    CarrierChange,
    Clock,
    HealthState,
    Lost,
    Quality,
    Rules,
    Sample,
    Web,
    initial_state,
    step,
)
from wanwatch.engine.intent import Health
from wanwatch.engine.monitor import (
    FALSE_DOWNS_PER_DAY,
    PROVEN_RTTS,
    UplinkMonitor,
)
from wanwatch.engine.stats import (
    LOSS_FLOOR,
    PRIOR_SAMPLES,
    LossWindow,
    ProbeSample,
    RttEstimator,
    binomial_tail,
    losses_to_down,
    needed_losses,
)

RULES = Rules("W", up_after=5, hold=10.0, max_hold=300.0, degraded_loss=40.0, degraded_rtt=1.0)
ALPHA = FALSE_DOWNS_PER_DAY * 0.5 / 86400


def run(state: HealthState, *samples: Sample) -> tuple[HealthState, list[str]]:
    names: list[str] = []
    for s in samples:
        state, events = step(state, s, RULES)
        names += [e.name for e in events]
    return state, names


def up_state(at: float = 0.0) -> HealthState:
    s, _ = run(initial_state(5, 0.0), Answered(at), Answered(at))
    assert s.health is Health.UP
    return s


# --------------------------------------------------------------------------- step


def test_initial_rise_needs_two_answers_and_is_preferred_at_once() -> None:
    s = initial_state(5, 0.0)
    s, names = run(s, Answered(0.1))
    assert s.health is Health.UNKNOWN and names == []
    s, names = run(s, Answered(0.6))
    assert s.health is Health.UP and s.since == 0.6
    assert names == ["wan.up", "wan.preferred"]  # nothing to hold against at start
    assert s.preferred


def test_down_after_needed_losses_in_a_row_reports_detect_ms() -> None:
    s = up_state(1.0)
    s, names = run(s, Lost(2.15, 2.0, 3), Lost(2.30, 2.15, 3))
    assert s.health is Health.UP and names == [] and s.run_lost == 2
    s, events = step(s, Lost(2.33, 2.18, 3), RULES)
    assert s.health is Health.DOWN
    (e,) = events
    assert e.name == "wan.down"
    assert e.fields["reason"] == "lost" and e.fields["lost"] == 3
    assert e.fields["detect_ms"] == 330  # from the send of the first lost probe


def test_needed_is_fixed_when_the_run_starts() -> None:
    s = up_state()
    s, _ = run(s, Lost(1.0, 0.9, 4), Lost(1.1, 1.0, 2))
    assert s.health is Health.UP and s.run_needed == 4


def test_any_reply_ends_the_run() -> None:
    s = up_state()
    s, _ = run(s, Lost(1.0, 0.9, 3), Lost(1.1, 1.0, 3), Answered(1.12))
    assert s.run_lost == 0
    s, names = run(s, Lost(1.3, 1.15, 3), Lost(1.4, 1.2, 3))
    assert s.health is Health.UP and names == []


def test_a_loss_sent_before_the_latest_reply_does_not_count() -> None:
    s = up_state()
    s, _ = run(s, Answered(2.0))
    s, names = run(s, Lost(2.1, 1.9, 1))  # would be DOWN at once if it counted
    assert s.health is Health.UP and s.run_lost == 0 and names == []


def test_rise_after_down_needs_up_after_answers_in_a_row_then_hold() -> None:
    s = up_state()
    s, _ = run(s, *(Lost(1.0 + i / 10, 0.9 + i / 10, 3) for i in range(3)))
    assert s.health is Health.DOWN
    s, _ = run(s, Answered(5.0), Answered(5.5), Answered(6.0), Answered(6.5))
    s, _ = run(s, Lost(7.0, 6.9, 3))  # a loss breaks the rise
    s, names = run(s, *(Answered(7.5 + i / 2) for i in range(4)))
    assert s.health is Health.DOWN and names == []
    s, names = run(s, Answered(9.5))
    assert s.health is Health.UP and names == ["wan.up"]
    assert not s.preferred and s.hold_for == 10.0
    s, names = run(s, Clock(19.4))
    assert not s.preferred and names == []
    s, names = run(s, Clock(19.5))
    assert s.preferred and names == ["wan.preferred"]


def _flap(s: HealthState, at: float) -> HealthState:
    s, _ = run(s, *(Lost(at + i / 10, at - 0.1 + i / 10, 3) for i in range(3)))
    assert s.health is Health.DOWN
    s, _ = run(s, *(Answered(at + 1 + i / 2) for i in range(5)))
    assert s.health is Health.UP
    return s


def test_flap_damping_doubles_hold_up_to_max_and_decays() -> None:
    s = up_state()
    holds = []
    for k in range(8):
        s = _flap(s, 10.0 + 20 * k)
        holds.append(s.hold_for)
    assert holds == [10, 20, 40, 80, 160, 300, 300, 300]
    s = _flap(s, 10.0 + 20 * 7 + RULES.flap_window + 1)  # the old downs are forgotten
    assert s.hold_for == 10.0


def test_carrier_loss_is_down_at_once_and_carrier_back_lets_probes_decide() -> None:
    s = up_state()
    s, events = step(s, CarrierChange(3.0, False), RULES)
    assert s.health is Health.DOWN and not s.carrier
    assert [e.name for e in events] == ["wan.carrier", "wan.down"]
    assert events[1].fields["reason"] == "carrier" and events[1].fields["detect_ms"] == 0
    s, names = run(s, Answered(3.1))  # a stray reply while the link is down
    assert s.health is Health.DOWN and names == []
    s, names = run(s, CarrierChange(4.0, True))
    assert s.health is Health.UNKNOWN and names == ["wan.carrier"]
    s, names = run(s, *(Answered(4.1 + i / 2) for i in range(4)))
    assert s.health is Health.UNKNOWN
    s, names = run(s, Answered(6.1))
    assert s.health is Health.UP and "wan.up" in names and not s.preferred


def test_degraded_on_significant_loss_and_recovered_with_hysteresis() -> None:
    s = up_state()
    s, names = run(s, Quality(5.0, 45.0, False, 0.05))  # high but not significant
    assert s.health is Health.UP and names == []
    s, names = run(s, Quality(6.0, 55.0, True, 0.05))
    assert s.health is Health.DEGRADED and names == ["wan.degraded"]
    s, names = run(s, Quality(7.0, 30.0, False, 0.05))  # below 40 but not below 20
    assert s.health is Health.DEGRADED and names == []
    s, names = run(s, Quality(8.0, 19.0, False, 0.05))
    assert s.health is Health.UP and names == ["wan.recovered"]


def test_degraded_on_rtt() -> None:
    s = up_state()
    s, events = step(s, Quality(5.0, 0.0, False, 1.2), RULES)
    assert s.health is Health.DEGRADED and events[0].fields["reason"] == "rtt"
    s, names = run(s, Quality(6.0, 0.0, False, 0.9))  # above 0.8 s: still degraded
    assert s.health is Health.DEGRADED and names == []
    s, names = run(s, Quality(7.0, 0.0, False, 0.7))
    assert s.health is Health.UP and names == ["wan.recovered"]


def test_degraded_can_go_down() -> None:
    s = up_state()
    s, _ = run(s, Quality(5.0, 60.0, True, 0.05))
    s, names = run(s, *(Lost(6 + i / 10, 5.9 + i / 10, 3) for i in range(3)))
    assert s.health is Health.DOWN and names == ["wan.down"]


# --------------------------------------------------------------------------- figures


def test_rtt_estimator_follows_rfc6298() -> None:
    r = RttEstimator()
    assert r.timeout(0.15, None) == 1.0  # RFC 6298 2.1 before any sample
    r.add(0.1)
    assert r.srtt == pytest.approx(0.1) and r.rttvar == pytest.approx(0.05)
    r.add(0.2)
    assert r.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.1)
    assert r.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.2)
    srtt = 0.875 * 0.1 + 0.125 * 0.2
    assert r.timeout(0.15, None) == pytest.approx(srtt + 4 * r.rttvar)
    assert r.timeout(0.15, 0.3) == 0.3
    fast = RttEstimator()
    for _ in range(50):
        fast.add(0.01)
    assert fast.timeout(0.15, None) == 0.15


def test_loss_window_prunes_unloses_and_drops() -> None:
    w = LossWindow(10.0, 100.0)
    a = ProbeSample(1.0, "x", True)
    w.add(a)
    w.add(ProbeSample(2.0, "y", False))
    w.add(ProbeSample(15.0, "y", True))
    assert w.counts(15.0) == ((1, 1), (3, 2))
    w.unlose(a)  # a late reply: only the long window still holds it
    assert w.counts(15.0) == ((1, 1), (3, 1))
    w.drop(lambda s: s.target != "y")
    assert w.counts(15.0) == ((0, 0), (1, 0))


def _predictive(n: int, lost: int, k: int) -> float:
    a, total, p = lost + LOSS_FLOOR * PRIOR_SAMPLES, n + PRIOR_SAMPLES, 1.0
    for i in range(k):
        p *= max(LOSS_FLOOR, (a + i) / (total + i))
    return p


@pytest.mark.parametrize(("n", "lost"), [(0, 0), (60, 0), (600, 0), (60, 12), (600, 120), (60, 30)])
def test_needed_losses_is_the_smallest_k_below_alpha(n: int, lost: int) -> None:
    k = needed_losses(n, lost, ALPHA, 1)
    assert _predictive(n, lost, k) <= ALPHA
    assert _predictive(n, lost, k - 1) > ALPHA


def test_needed_losses_grows_with_loss_and_respects_the_minimum() -> None:
    clean = needed_losses(600, 0, ALPHA, 3)
    assert 4 <= clean <= 6  # a clean link: few losses, fast
    at20 = needed_losses(600, 120, ALPHA, 3)
    assert at20 >= 11  # 0.2 ** 11 = 2e-8 < alpha; fewer would fail over daily
    assert 0.2**at20 <= ALPHA
    assert needed_losses(600, 0, ALPHA, 9) == 9
    ks = [needed_losses(100, lost, ALPHA, 1) for lost in range(0, 60, 5)]
    assert ks == sorted(ks)


def test_a_young_clean_record_asks_what_a_full_clean_one_asks() -> None:
    full = 60  # loss_window 30 s / interval 0.5 s
    settled = losses_to_down((60, 1), (600, 1), ALPHA, 3, full)
    assert settled == 6
    assert needed_losses(6, 1, ALPHA, 3) == 10  # the test as it stands: ignorance
    for n in (1, 6, 30, 59):
        assert losses_to_down((n, 1), (n, 1), ALPHA, 3, full) == settled
        assert losses_to_down((n, 0), (n, 0), ALPHA, 3, full) == needed_losses(full, 0, ALPHA, 3)
    assert losses_to_down((6, 1), (6, 1), ALPHA, 9, full) == 9  # down_after still holds


def test_a_young_record_with_a_second_loss_or_not_risen_gets_the_full_test() -> None:
    full = 60
    for short, long in (((6, 2), (6, 2)), ((20, 3), (20, 3))):
        assert losses_to_down(short, long, ALPHA, 3, full) == max(
            needed_losses(*short, ALPHA, 3), needed_losses(*long, ALPHA, 3)
        )
    assert losses_to_down((6, 2), (6, 2), ALPHA, 3, full) == 12
    assert losses_to_down((6, 1), (6, 1), ALPHA, 3, 0) == 10  # full 0: never young


def test_binomial_tail_exact_values() -> None:
    assert binomial_tail(4, 2, 0.5) == pytest.approx(11 / 16)
    assert binomial_tail(10, 0, 0.3) == 1.0
    assert binomial_tail(10, 11, 0.3) == 0.0
    assert binomial_tail(10, 10, 0.5) == pytest.approx(0.5**10)
    assert binomial_tail(60, 24, 0.2) == pytest.approx(
        sum(math.comb(60, j) * 0.2**j * 0.8 ** (60 - j) for j in range(24, 61))
    )


# --------------------------------------------------------------------------- monitor

A, B = icmp("198.51.100.1"), icmp("198.51.100.2")


def monitor(**overrides: object) -> UplinkMonitor:
    return UplinkMonitor("W", [A, B], validate(Monitor, overrides), 0.0)


def test_healthy_cadence_rotates_over_targets() -> None:
    m = monitor()
    sent = []
    t = 0.0
    while t < 5.0:
        for target, seq in m.due(t):
            sent.append((round(t, 3), target))
            m.reply(seq, 0.02, t + 0.02)
        m.expire(t)
        t = round(t + 0.01, 3)
    assert [s[0] for s in sent] == [round(0.5 * i, 3) for i in range(10)]
    assert [s[1] for s in sent] == [A, B] * 5
    assert m.state.health is Health.UP


def test_suspicion_probes_fast_and_never_more_than_could_count() -> None:
    m = monitor(fast_interval="25ms")
    ((_, seq),) = m.due(0.0)
    m.reply(seq, 0.02, 0.02)
    ((_, seq),) = m.due(0.5)
    m.reply(seq, 0.02, 0.52)  # UP, RTT 20 ms: timeout floored at 150 ms
    assert len(m.due(1.0)) == 1  # this one will go unanswered
    assert m.expire(1.149) == [] and m.due(1.149) == []
    m.expire(1.15)
    needed = m.state.run_needed
    assert m.state.run_lost == 1 and needed >= 3
    sends = []
    t = 1.15
    while t < 1.6:
        m.expire(t)
        if m.state.health is Health.DOWN:
            break
        sends += [t for _ in m.due(t)]
        t = round(t + 0.005, 3)
    assert m.state.health is Health.DOWN
    assert len(sends) == needed - 1  # exactly the probes the test needed
    rise = max(t, m.next_wakeup())
    assert rise >= 1.5  # then the healthy cadence (from the 1.0 s probe) probes for the rise
    assert len(m.due(rise)) == 1
    gaps = {round(b - a, 3) for a, b in itertools.pairwise(sends)}
    assert gaps == {0.025}


def test_late_reply_cancels_suspicion_and_unknown_seq_is_ignored() -> None:
    m = monitor()
    for t in (0.0, 0.5):
        ((_, seq),) = m.due(t)
        m.reply(seq, 0.02, t + 0.02)
    ((_, seq),) = m.due(1.0)
    m.expire(1.2)
    assert m.state.suspicious
    assert m.reply(4242, 0.01, 1.21) == []
    m.reply(seq, 0.21, 1.21)
    assert not m.state.suspicious
    assert m.loss_pct(1.21) == 0.0  # the late reply turned the loss back into an answer


def test_sequence_numbers_wrap_at_16_bits() -> None:
    m = monitor(interval="100ms")
    m._seq = 65534  # white box: skip 65k probes
    seqs = []
    t = 0.0
    for _ in range(4):
        for _, seq in m.due(t):
            seqs.append(seq)
            m.reply(seq, 0.01, t + 0.01)
        t += 0.1
    assert seqs == [65534, 65535, 0, 1]


def test_no_probes_while_carrier_is_down() -> None:
    m = monitor()
    m.carrier(False, 0.0)
    assert m.due(0.0) == [] and m.due(10.0) == []
    assert m.next_wakeup() == math.inf
    m.carrier(True, 11.0)
    assert len(m.due(11.0)) == 1


# --------------------------------------------------------------------------- traffic trigger


def up_monitor(**overrides: object) -> UplinkMonitor:
    """UP at t=0.52 with a 20 ms RTT (timeouts floored at 150 ms)."""
    m = monitor(**overrides)
    for t in (0.0, 0.5):
        ((_, seq),) = m.due(t)
        m.reply(seq, 0.02, t + 0.02)
    assert m.state.health is Health.UP
    return m


def _down_after_cut(m: UplinkMonitor, start: float, cut: float) -> tuple[float, int]:
    """Answer every probe (20 ms) from ``start`` until ``cut``, then none; on a 5 ms grid."""
    t = start
    while m.state.health is not Health.DOWN:
        m.expire(t)
        for _, seq in m.due(t):
            if t < cut:
                m.reply(seq, 0.02, round(t + 0.02, 3))
        t = round(t + 0.005, 3)
    return m.state.since, m.state.run_needed


def test_a_cut_three_seconds_after_start_is_found_as_fast_as_one_after_minutes() -> None:
    # Healthy probes every 0.5 s; the one at the cut is the first loss (150 ms floor),
    # then 5 fast probes leave from 3.15 every 25 ms; the last times out 150 ms later.
    # One floor for both (clean_min_timeout = min_timeout): the losses needed decide.
    one_floor = {"fast_interval": "25ms", "clean_min_timeout": "150ms"}
    young, young_needed = _down_after_cut(monitor(**one_floor), 0.0, 3.0)
    assert young_needed == 6
    assert young == pytest.approx(3.0 + 0.15 + 4 * 0.025 + 0.15, abs=0.006)
    settled, settled_needed = _down_after_cut(monitor(**one_floor), 0.0, 600.0)
    assert settled_needed == young_needed
    assert settled - 600.0 == pytest.approx(young - 3.0, abs=0.006)


# --------------------------------------------------------------------------- timeout floor


def _answered_for(m: UplinkMonitor, start: float, end: float, rtt: float = 0.0005) -> float:
    """Answer every probe after ``rtt`` from ``start`` to ``end``, on a 1 ms grid."""
    t = start
    while t < end:
        m.expire(t)
        for _, seq in m.due(t):
            m.reply(seq, rtt, t + rtt)
        t = round(t + 0.001, 3)
    return t


def _lost_after(m: UplinkMonitor, sent: float) -> float:
    """Send the probe due at ``sent`` into a blackhole: seconds until it is lost."""
    assert len(m.due(sent)) == 1
    t = sent
    while not m.state.suspicious:
        t = round(t + 0.001, 3)
        m.expire(t)
    return round(t - sent, 3)


def test_a_measured_clean_path_times_out_at_the_clean_floor() -> None:
    m = monitor(fast_interval="25ms")  # clean_min_timeout 50 ms, min_timeout 150 ms
    _answered_for(m, 0.0, (PROVEN_RTTS - 1) * 0.5 - 0.1)
    assert _lost_after(m, (PROVEN_RTTS - 1) * 0.5) == 0.15  # 19 RTTs: not yet measured
    m = monitor(fast_interval="25ms")
    _answered_for(m, 0.0, PROVEN_RTTS * 0.5 - 0.1)
    cut = PROVEN_RTTS * 0.5
    assert _lost_after(m, cut) == 0.05
    # The burst keeps the clean floor although its own losses (5 of 25 samples) would
    # make the record lossy: 5 probes 25 ms apart, the last lost 50 ms after it left.
    t = cut + 0.05
    while m.state.health is not Health.DOWN:
        m.due(t)
        t = max(t, m.next_wakeup())
        m.expire(t)
    assert m.state.run_needed == 6
    assert m.state.since == pytest.approx(cut + 0.05 + 4 * 0.025 + 0.05)


def _next(m: UplinkMonitor) -> float:
    """The monitor's next wakeup, on the 1 ms grid."""
    return math.ceil(round(m.next_wakeup() * 1000, 6)) / 1000


def _late_reply_at_15s() -> UplinkMonitor:
    """A measured clean path whose probe at 15 s is answered 60 ms later, past its 50 ms."""
    m = monitor(fast_interval="25ms")
    _answered_for(m, 0.0, 15.0)
    ((_, seq),) = m.due(15.0)
    m.expire(15.05)
    m.reply(seq, 0.06, 15.06)
    assert m.state.health is Health.UP and m.loss_pct(15.06) == 0.0
    return m


def test_a_late_reply_keeps_the_conservative_floor_for_a_long_window() -> None:
    long_window = 30.0 * 10  # loss_window * LONG_WINDOW_FACTOR
    m = _late_reply_at_15s()
    _answered_for(m, 15.06, 15.06 + long_window - 1)
    assert _lost_after(m, _next(m)) == 0.15
    m = _late_reply_at_15s()
    _answered_for(m, 15.06, 15.06 + long_window + 1)
    assert _lost_after(m, _next(m)) == 0.05  # forgotten after the long window


def test_a_lossy_record_keeps_the_conservative_floor() -> None:
    m = monitor(fast_interval="25ms")
    t = 0.0
    while t < 30.0:  # every tenth probe lost: 10 % loss, above LOSS_FLOOR
        m.expire(t)
        for _, seq in m.due(t):
            if m.sent % 10:
                m.reply(seq, 0.0005, t + 0.0005)
        t = round(t + 0.001, 3)
    t = _answered_for(m, t, t + 1.0)  # the last loss's suspicion ended by answers
    assert m.state.health is Health.UP and not m.state.suspicious
    assert m.loss_pct(t) > 100 * LOSS_FLOOR and m.rtt.count >= PROVEN_RTTS
    assert _lost_after(m, _next(m)) == 0.15


def test_one_floor_when_clean_min_timeout_is_not_below_min_timeout() -> None:
    m = monitor(min_timeout="80ms", clean_min_timeout="100ms")
    _answered_for(m, 0.0, 15.0)
    assert _lost_after(m, 15.0) == 0.08


def test_a_young_record_that_already_lost_a_probe_needs_more() -> None:
    m = up_monitor(fast_interval="25ms")
    ((_, seq),) = m.due(1.0)
    m.expire(1.15)  # lost; its suspicion episode is ended by the next answer
    for _, seq in m.due(1.15):
        m.reply(seq, 0.02, 1.17)
    assert m.state.health is Health.UP and not m.state.suspicious
    _, needed = _down_after_cut(m, 1.17, 1.5)
    assert needed > 6  # two losses in a record of a few probes: a lossy start


def test_a_stall_on_an_answering_link_costs_one_probe_and_changes_nothing() -> None:
    m = up_monitor()
    before = (m.state, m.sent)
    events = m.traffic_stall(0.7)
    assert [(e.name, e.fields) for e in events] == [
        ("wan.suspect", {"wan": "W", "trigger": "traffic"})
    ]
    ((_, seq),) = m.due(0.7)  # at once, not at the 1.0 s healthy slot
    assert m.due(0.7) == []
    assert m.reply(seq, 0.02, 0.72) == []
    assert m.due(0.725) == [] and m.due(0.9) == []  # the burst ended with the answer
    assert m.sent == before[1] + 1
    assert m.state.health is Health.UP and not m.state.suspicious
    assert m.state.downs == before[0].downs and m.triggers == 1


def test_a_stall_on_a_dead_link_starts_the_burst_and_probes_decide() -> None:
    def down_at(trigger: bool) -> tuple[float, int]:
        m = up_monitor(fast_interval="25ms")
        cut = 0.6  # nothing answers from here on; next healthy probe at 1.0
        t = cut
        if trigger:
            t = 0.675
            assert m.traffic_stall(t)
        while m.state.health is not Health.DOWN:
            m.expire(t)
            m.due(t)
            t = round(t + 0.005, 3)
        return m.state.since, m.state.run_needed

    early, needed = down_at(trigger=True)
    late, late_needed = down_at(trigger=False)
    # burst probes from 0.675 every 25 ms (on this 5 ms grid); the needed-th times out
    # 150 ms after it left, instead of starting after the 1.0 s probe's own timeout
    assert early == pytest.approx(0.675 + (needed - 1) * 0.025 + 0.15, abs=0.015)
    # (the 1.0 s probe is the first loss; the fast ones start when it times out)
    assert late == pytest.approx(1.15 + (late_needed - 2) * 0.025 + 0.15, abs=0.015)


def test_stalls_are_refused_unless_up_and_not_already_probing_fast() -> None:
    m = monitor()
    assert m.traffic_stall(0.0) == []  # UNKNOWN: the rise decides
    m = up_monitor()
    m.due(1.0)
    m.expire(1.2)  # a lost healthy probe: suspicion is already under way
    assert m.state.suspicious and m.traffic_stall(1.2) == []
    m = up_monitor()
    m.carrier(False, 1.0)
    assert m.traffic_stall(1.1) == [] and m.due(1.1) == []


def test_a_one_way_flow_cannot_keep_an_uplink_probing_fast() -> None:
    """Stalls reported every 10 ms for 10 minutes on a link that answers every probe."""
    m = up_monitor()
    start_sent, t = m.sent, 0.6
    bursts = []
    while t < 600.6:
        if m.traffic_stall(t):
            bursts.append(t)
        for _, seq in m.due(t):
            m.reply(seq, 0.02, t + 0.001)
        m.expire(t)
        t = round(t + 0.01, 2)
    rate = (m.sent - start_sent) / 600
    assert rate <= 2.0 + 0.01  # the <= 2 probes/s budget of the healthy cadence
    assert min(b - a for a, b in itertools.pairwise(bursts)) >= 0.5 - 1e-9  # one per interval
    assert len(bursts) == m.triggers < 600 / 0.5  # and some refused for the budget
    assert m.state.health is Health.UP and m.state.downs == ()


def test_a_stall_after_a_burst_waits_for_the_next_interval() -> None:
    m = up_monitor()
    assert m.traffic_stall(0.7)
    ((_, seq),) = m.due(0.7)
    m.reply(seq, 0.02, 0.72)
    assert m.traffic_stall(1.1) == []  # within one interval of the last burst
    assert m.traffic_stall(1.2) != []


# --------------------------------------------------------------------------- captive portal

TOPUP = "http://portal.example/topup"


def test_two_portal_verdicts_in_a_row_make_portal_one_stray_does_not() -> None:
    s = up_state()
    s, names = run(s, Web(3.0, TOPUP), Answered(3.0), Web(13.0, None), Answered(13.0))
    assert s.health is Health.UP and names == [] and s.portal_run == 0
    s, names = run(s, Web(20.0, TOPUP), Answered(20.0))
    assert s.health is Health.UP and names == [] and s.portal_run == 1
    s, events = step(s, Web(20.1, TOPUP), RULES)
    assert s.health is Health.PORTAL and not s.preferred
    (e,) = events
    assert (e.name, e.fields) == (
        "wan.portal",
        {"wan": "W", "url": TOPUP, "detect_ms": 100, "prev": "up"},
    )


def test_a_portal_still_answers_so_losses_can_take_it_down() -> None:
    s = up_state()
    s, _ = run(s, Web(3.0, TOPUP), Web(3.1, TOPUP))
    s, names = run(s, Answered(3.5), *(Lost(4 + i / 10, 3.9 + i / 10, 3) for i in range(3)))
    assert s.health is Health.DOWN and names == ["wan.down"]
    s, names = run(s, CarrierChange(9.0, False))
    assert s.health is Health.DOWN and names == ["wan.carrier"]


def test_leaving_a_portal_needs_two_good_verdicts_then_a_hold_like_after_a_down() -> None:
    s = up_state()
    s, _ = run(s, Web(3.0, TOPUP), Web(3.1, TOPUP), Answered(4.0))
    s, names = run(s, Web(10.0, None), Answered(10.0))
    assert s.health is Health.PORTAL and names == [] and s.web_good == 1
    s, events = step(s, Web(10.1, None), RULES)
    assert s.health is Health.UP and not s.preferred and s.hold_for == RULES.hold
    seen = [(e.name, e.fields["prev"], e.fields["good"]) for e in events]
    assert seen == [("wan.up", "portal", 2)]
    s, names = run(s, Clock(10.1 + RULES.hold))
    assert s.preferred and names == ["wan.preferred"]
    # a second portal within the flap window doubles the next hold
    s, _ = run(s, Web(30.0, TOPUP), Web(30.1, TOPUP), Web(40.0, None), Web(40.1, None))
    assert s.health is Health.UP and s.hold_for == 2 * RULES.hold


def test_a_rise_waits_for_an_unconfirmed_portal_and_rises_into_it() -> None:
    s = initial_state(5, 0.0)
    s, names = run(s, Web(0.1, TOPUP), Answered(0.1), Answered(0.5))
    assert s.health is Health.UNKNOWN and names == []  # two answers, but a portal may follow
    s, events = step(s, Web(0.15, TOPUP), RULES)
    assert s.health is Health.PORTAL and events[0].fields["prev"] == "unknown"
    s = initial_state(5, 0.0)
    s, _ = run(s, Web(0.1, TOPUP), Answered(0.1), Answered(0.5))
    s, names = run(s, Web(0.55, None))  # the confirming probe says the web works
    assert s.health is Health.UP and names == ["wan.up", "wan.preferred"]


# --------------------------------------------------------------------------- methods and standby

TCP = TcpTarget(address=IPv4Address("198.51.100.3"), port=443)
WEB = HttpTarget(address=IPv4Address("198.51.100.4"), url="http://check.example/generate_204")


def drive(
    m: UplinkMonitor,
    until: float,
    answers: Callable[[Target, float], str | bool],
    t: float = 0.0,
    rtt: float = 0.02,
) -> list[tuple[float, Target]]:
    """Run ``m`` on a 5 ms grid; ``answers(target, sent)`` is True (answer), a portal URL
    (an HTTP redirect) or False (no answer). The probes sent, with their times."""
    sent: list[tuple[float, Target]] = []
    pending: list[tuple[float, int, str | None]] = []
    while t < until:
        for at, seq, portal in [p for p in pending if p[0] <= t]:
            pending.remove((at, seq, portal))
            m.reply(seq, rtt, at, portal)
        m.expire(t)
        m.clock(t)
        for target, seq in m.due(t):
            sent.append((t, target))
            verdict = answers(target, t)
            if verdict is not False:
                pending.append((t + rtt, seq, verdict if isinstance(verdict, str) else None))
        t = round(t + 0.005, 3)
    return sent


def test_icmp_shares_the_interval_and_slower_methods_keep_their_own() -> None:
    m = UplinkMonitor("W", [A, TCP, B, WEB], validate(Monitor, {}), 0.0)
    sent = drive(m, 20.0, lambda target, at: True)
    by = {k: [round(t, 3) for t, x in sent if x is k] for k in (A, B, TCP, WEB)}
    assert by[A] == [round(1.0 * i, 3) for i in range(20)]  # A, B in turn every 500 ms
    assert by[B] == [round(0.5 + 1.0 * i, 3) for i in range(20)]
    assert by[TCP] == [round(2.0 * i, 3) for i in range(10)]  # tcp's own 2 s
    assert by[WEB] == [0.0, 10.0]  # http's own 10 s
    assert m.state.health is Health.UP and m.rtt.srtt == pytest.approx(0.02)


def test_icmp_filtered_is_set_aside_while_tcp_answers_and_the_uplink_stays_up() -> None:
    m = UplinkMonitor("W", [A, B, TCP], validate(Monitor, {}), 0.0)
    sent = drive(m, 60.0, lambda target, at: target is TCP or at < 10)
    assert m.state.health is Health.UP and m.state.downs == ()
    assert m.target_states() == {str(A.address): "silent", str(B.address): "silent",
                                 TCP.label: "answering"}  # fmt: skip
    late = [x for t, x in sent if t > 30]
    # only the 5 s rechecks of the silent targets besides tcp's own cadence
    assert late.count(TCP) == 15 and late.count(A) == late.count(B) == 6
    assert m.loss_pct(60.0) == 0.0  # the filtered method's misses are not the link's loss


def test_a_suspicion_burst_probes_every_method() -> None:
    m = UplinkMonitor("W", [A, TCP, WEB], validate(Monitor, {}), 0.0)
    drive(m, 3.0, lambda target, at: True)
    sent = drive(m, 4.5, lambda target, at: False, t=3.0)  # the uplink dies at 3.0
    assert m.state.health is Health.DOWN
    burst = {x.method for t, x in sent if t > 3.2}
    assert burst == {"icmp", "tcp", "http"}


def test_an_http_portal_verdict_is_confirmed_at_once_not_after_its_interval() -> None:
    m = UplinkMonitor("W", [A, WEB], validate(Monitor, {}), 0.0)
    sent = drive(m, 15.0, lambda target, at: TOPUP if target is WEB and at >= 10 else True)
    assert [t for t, x in sent if x is WEB] == [0.0, 10.0, 10.045]
    # sent at 10.0, redirected at 10.02; the confirming probe 25 ms later, its answer 20 ms on
    assert m.state.health is Health.PORTAL and m.state.since == pytest.approx(10.065)
    assert m.state.portal_url == TOPUP


def test_a_metered_standby_probes_at_the_standby_interval_and_wakes_at_once() -> None:
    m = UplinkMonitor("W", [A, B, TCP], validate(Monitor, {}), 0.0)
    drive(m, 1.0, lambda target, at: True)
    m.standby(True, 1.0)
    sent = drive(m, 101.0, lambda target, at: True, t=1.0)
    assert 19 <= len(sent) <= 22  # one probe of each cadence every 10 s, not 2.5 per second
    m.standby(False, 101.0)
    ((_, first),) = [(t, x) for t, x in drive(m, 101.02, lambda target, at: True, t=101.0)]
    assert first in (A, B)  # carrying again: probed at once
