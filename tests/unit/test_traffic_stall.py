"""The stall detector behind the traffic trigger, fed counter readings directly."""

from __future__ import annotations

import itertools

from wanwatch.linux.traffic import (
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


def test_a_cut_is_reported_by_the_first_read_after_the_last_answer() -> None:
    before = flowing(10)
    tx, rx = before[-1]
    after = [(tx + 25 * (i + 1), rx) for i in range(10)]
    stalls = feed(StallDetector(), before + after)
    last_answer = round(9 * POLL, 6)  # the last read that saw rx move
    # reads at the fast cadence: the packets of the next read left after that one
    assert stalls == [round(i * POLL, 6) for i in range(10, 20)]
    assert stalls[0] == round(last_answer + POLL, 6)  # then every read while it lasts


def test_the_window_is_a_few_rtts_on_a_slow_link() -> None:
    srtt = 0.1
    before = flowing(4)
    tx, rx = before[-1]
    after = [(tx + 25 * (i + 1), rx) for i in range(30)]
    stalls = feed(StallDetector(), before + after, srtt=srtt)
    last_answer = round(3 * POLL, 6)
    due = round(last_answer + STALL_RTTS * srtt, 6)
    assert due <= stalls[0] <= due + POLL


def test_after_an_idle_read_the_window_starts_at_the_read_that_saw_the_packets() -> None:
    """A new flow's first packets seen by a read IDLE_POLL after the previous one may have
    left a moment ago (their answers an RTT away): no stall before a window from there."""
    d = StallDetector()
    assert d.sample(0.0, 10, 10, 0.001) is False
    assert d.sample(IDLE_POLL, 13, 10, 0.001) is False  # 3 out, just now perhaps
    assert d.sample(IDLE_POLL + POLL / 2, 14, 10, 0.001) is False
    assert d.sample(IDLE_POLL + POLL, 15, 10, 0.001) is True


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
    readings = [(0, 0), (10, 1), (20, 2), (30, 3), (40, 4)]
    assert feed(d, readings) == []  # rx moved in every window: each read starts over
    d = StallDetector()
    assert feed(d, [(1000, 50), (1001, 50), (5, 50), (6, 50)]) == []


def test_no_reading_before_the_first_is_a_stall() -> None:
    d = StallDetector()
    assert d.sample(0.0, 100, 0, None) is False
    assert d.sample(1.0, 200, 0, None) is False  # first sight of tx moving, after a gap
    assert d.sample(1.0 + WINDOW_MIN, 300, 0, None) is True


def test_busy_only_while_packets_leave() -> None:
    """What TrafficWatch reads every POLL; an uplink sending only its probes (~2/s) is
    read every IDLE_POLL."""
    d = StallDetector()
    d.sample(0.0, 0, 0, None)
    assert not d.busy
    d.sample(IDLE_POLL, 1, 1, None)  # one probe, answered
    assert not d.busy
    d.sample(2 * IDLE_POLL, 1, 1, None)
    assert not d.busy
    d.sample(2 * IDLE_POLL + POLL, 3, 3, None)  # traffic
    assert d.busy
    d.sample(3 * IDLE_POLL, 4, 4, None)
    assert d.busy  # the traffic is still in the last IDLE_POLL
    d.sample(4 * IDLE_POLL, 4, 4, None)
    assert not d.busy
    d.sample(5 * IDLE_POLL, 5, 4, None)  # one probe, not answered yet
    assert d.busy  # read again at POLL: if it stays unanswered a stall may be forming


def test_an_office_sending_25_packets_a_second_is_read_every_poll() -> None:
    """~1.25 packets per POLL, sometimes none: the rate over IDLE_POLL keeps it busy."""
    d = StallDetector()
    t, reads = 0.0, []
    while t < 3.0:
        n = int(t * 25)  # one packet every 40 ms, each answered
        d.sample(t, n, n, 0.001)
        reads.append(t)
        t = round(t + (POLL if d.busy else IDLE_POLL), 6)
    assert all(round(b - a, 6) == POLL for a, b in itertools.pairwise(reads[2:]))


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
    # the first read after the cut sees only SYNs and says so
    assert stall == 1.0
