"""Retry of failed reconcile steps and the tug-of-war guard, on a virtual clock."""

from __future__ import annotations

import pytest

from wanwatch.daemon.repair import CONTEST_REPAIRS, CONTEST_WINDOW, Backoff, Retry, TugOfWar


def test_backoff_grows_and_is_capped() -> None:
    b = Backoff(first=0.2, factor=2.0, cap=1.0)
    assert [b.delay(n) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_retry_is_due_after_a_growing_delay_and_clears_on_success() -> None:
    r = Retry(Backoff(first=0.5, factor=2.0, cap=4.0))
    assert not r.is_due(0.0) and r.due is None
    r.record({"nft": "nft -f failed"}, 10.0)
    assert r.failed == {"nft": "nft -f failed"} and r.due == 10.5
    assert not r.is_due(10.4) and r.is_due(10.5)
    r.record({"nft": "nft -f failed"}, 10.5)
    assert r.due == 11.5 and r.attempts == 2
    for _ in range(3, 10):
        r.record({"nft": "still"}, 20.0)
    assert r.due == 24.0  # capped
    r.record({}, 30.0)
    assert r.failed == {} and r.due is None and r.attempts == 0 and not r.is_due(99.0)


def test_a_few_repairs_are_no_fight() -> None:
    tug = TugOfWar()
    for i in range(CONTEST_REPAIRS):
        assert tug.repaired("nft table inet wanwatch", float(i)) == []
    assert tug.contested() == [] and tug.hold_until(10.0) == 10.0


def test_the_same_object_removed_again_and_again_is_contested_and_backs_off() -> None:
    tug = TugOfWar(window=60.0, limit=5, backoff=Backoff(first=5.0, factor=2.0, cap=40.0))
    obj = "route main default (active uplink)"
    events = [e for i in range(6) for e in tug.repaired(obj, float(i))]
    assert [e.name for e in events] == ["drift.contested"]
    assert events[0].fields["object"] == obj and events[0].fields["repairs"] == 6
    assert tug.contested() == [obj]
    assert tug.hold_until(5.0) == 10.0  # 5 s after the 6th repair
    assert tug.repaired(obj, 10.0) == []  # announced once
    assert tug.hold_until(10.0) == 20.0  # then 10 s, 20 s, ... up to the cap
    for t in (20.0, 40.0, 80.0, 120.0):
        tug.repaired(obj, t)
    assert tug.hold_until(120.0) == 160.0
    # another object is not contested by association, but waits for the same pass
    assert tug.repaired("rule x", 121.0) == []
    assert tug.contested() == [obj]


def test_contested_object_left_alone_for_a_window_is_settled() -> None:
    tug = TugOfWar(window=CONTEST_WINDOW)
    for i in range(CONTEST_REPAIRS + 1):
        tug.repaired("sysctl net.ipv4.ip_forward", float(i))
    assert tug.settle(30.0) == []  # repairs still inside the window
    settled = tug.settle(CONTEST_REPAIRS + CONTEST_WINDOW)
    assert [e.name for e in settled] == ["drift.settled"]
    assert tug.contested() == [] and tug.hold_until(500.0) == 500.0


@pytest.mark.parametrize("gap", [CONTEST_WINDOW / 5, CONTEST_WINDOW / 4])
def test_repairs_spread_over_more_than_a_window_never_contest(gap: float) -> None:
    tug = TugOfWar()
    events = [e for i in range(50) for e in tug.repaired("obj", i * gap)]
    assert events == [] and tug.contested() == []
