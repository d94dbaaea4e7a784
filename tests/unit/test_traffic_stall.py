"""The stall detector behind the traffic trigger, fed counter readings directly."""

from __future__ import annotations

import itertools

from wanwatch.linux.traffic import (
    BUSY_PACKETS,
    IDLE_POLL,
    MIN_PACKETS,
    POLL,
    STALL_RTTS,
    WINDOW_MIN,
    StallDetector,
)


def feed(
    d: StallDetector, readings: list[tuple[int, int]], srtt: float | None = 0.001
) -> list[float]:
    """Readings (tx, rx) one POLL apart from t=0; the times a stall was reported."""
    out = []
    for i, (tx, rx) in enumerate(readings):
        t = round(i * POLL, 6)
        if d.sample(t, tx, rx, srtt):
            out.append(t)
    return out


def flowing(n: int, per_poll: int = 25) -> list[tuple[int, int]]:
    return [(i * per_poll, i * per_poll) for i in range(n)]


def test_two_way_traffic_never_stalls() -> None:
    assert feed(StallDetector(), flowing(400)) == []


def test_a_cut_is_reported_one_window_after_tx_was_first_seen_unanswered() -> None:
    before = flowing(10)
    tx, rx = before[-1]
    after = [(tx + 25 * (i + 1), rx) for i in range(10)]
    stalls = feed(StallDetector(), before + after)
    first_unanswered = round(10 * POLL, 6)  # the read that first saw tx move without rx
    times = [round(i * POLL, 6) for i in range(20)]
    due = [t for t in times if t - first_unanswered >= WINDOW_MIN]
    assert due[0] <= first_unanswered + WINDOW_MIN + POLL
    assert stalls == due  # the first read a window later, then every read while it lasts


def test_the_window_is_a_few_rtts_on_a_slow_link() -> None:
    srtt = 0.1
    before = flowing(4)
    tx, rx = before[-1]
    after = [(tx + 25 * (i + 1), rx) for i in range(30)]
    stalls = feed(StallDetector(), before + after, srtt=srtt)
    first_unanswered = round(4 * POLL, 6)
    assert (
        first_unanswered + STALL_RTTS * srtt
        <= stalls[0]
        <= (first_unanswered + STALL_RTTS * srtt + POLL)
    )


def test_an_idle_line_with_its_probes_never_stalls() -> None:
    """One probe per 500 ms leaves; one in five goes unanswered."""
    readings = []
    tx = rx = 0
    for i in range(400):
        if i % 20 == 0:
            tx += 1
            if i % 100:
                rx += 1
        readings.append((tx, rx))
    assert feed(StallDetector(), readings) == []
    assert MIN_PACKETS > 1


def test_anything_coming_back_starts_over_and_a_counter_reset_is_not_a_stall() -> None:
    d = StallDetector()
    readings = [(0, 0), (10, 0), (20, 1), (30, 1), (40, 2)]
    assert feed(d, readings) == []  # rx moved before each window was over: it starts over
    d = StallDetector()
    assert feed(d, [(1000, 50), (1010, 50), (5, 50), (6, 50)]) == []


def test_no_reading_before_the_first_is_a_stall() -> None:
    d = StallDetector()
    assert d.sample(0.0, 100, 0, None) is False
    assert d.sample(1.0, 200, 0, None) is False  # first sight of tx moving
    assert d.sample(1.0 + WINDOW_MIN, 300, 0, None) is True


def test_busy_only_while_packets_leave() -> None:
    """What TrafficWatch reads every POLL; an idle uplink is read every IDLE_POLL."""
    d = StallDetector()
    d.sample(0.0, 0, 0, None)
    assert not d.busy
    d.sample(0.05, BUSY_PACKETS, 2, None)
    assert d.busy
    d.sample(0.1, BUSY_PACKETS + 1, 3, None)  # one probe, answered: idle again
    assert not d.busy
    d.sample(0.35, BUSY_PACKETS + 2, 3, None)  # one probe, not answered yet
    assert d.busy  # read again at POLL: if it stays unanswered a stall may be forming


def test_light_traffic_keeps_the_fast_reads_through_a_cut() -> None:
    """50 new connections/s: ~5 packets out and in per POLL, then only SYNs (one per
    20 ms) leave. Every read stays at POLL, and the stall shows as with heavy traffic."""
    d = StallDetector()
    t, tx, rx = 0.0, 0, 0
    reads = []
    stall = None
    while t < 2.0 and stall is None:
        cut = t >= 1.0
        tx += 2 if cut and round(t / POLL) % 2 else 3 if cut else 5
        rx += 0 if cut else 5
        if d.sample(t, tx, rx, 0.001):
            stall = t
        reads.append(t)
        t = round(t + (POLL if d.busy else IDLE_POLL), 6)
    # (the first read has nothing to compare with: the second comes IDLE_POLL later)
    assert all(round(b - a, 6) == POLL for a, b in itertools.pairwise(reads[1:]))
    assert stall is not None
    # the first read after the cut sees packets without answers; a window later it says so
    assert stall == round(1.0 + WINDOW_MIN, 6)
