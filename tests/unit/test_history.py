"""The status page's history: bounded rings, wall-clock times, the failover timeline."""

from __future__ import annotations

from wanwatch.daemon.clock import Clock
from wanwatch.daemon.history import History
from wanwatch.engine.core import WanStatus
from wanwatch.engine.events import event
from wanwatch.engine.intent import Admin, Health


def wan(name: str, rtt: float | None, loss: float, state: Health = Health.UP) -> WanStatus:
    return WanStatus(
        name, state, rtt, loss, since=0.0, preferred=True, targets={},
        admin=Admin.ENABLED, phase=None, progress={},
    )  # fmt: skip


def test_one_sample_per_period_in_a_ring_of_fixed_size() -> None:
    mono = [1000.0]
    h = History(
        Clock(lambda: mono[0], wall=lambda: 1_700_000_000.0 + mono[0]), period=10.0, points=5
    )
    for i in range(60):  # one call a second for a minute: six samples are due
        mono[0] = 1000.0 + i
        if h.due(mono[0]):
            h.sample(mono[0], [wan("A", float(i), 0.0), wan("B", None, 100.0, Health.DOWN)])
    doc = h.to_json()
    a = doc["wans"]["A"]
    assert len(a["t"]) == 5  # the ring keeps the newest five of six
    assert a["rtt_ms"] == [10.0, 20.0, 30.0, 40.0, 50.0]
    assert a["t"] == [1_700_001_010.0 + 10 * k for k in range(5)]
    assert doc["wans"]["B"]["rtt_ms"] == [None] * 5
    assert doc["wans"]["B"]["state"] == ["down"] * 5


def test_removed_uplinks_are_forgotten() -> None:
    h = History(Clock(lambda: 0.0), period=1.0)
    h.sample(0.0, [wan("A", 1.0, 0.0), wan("B", 1.0, 0.0)])
    h.sample(1.0, [wan("A", 1.0, 0.0)])
    assert set(h.to_json()["wans"]) == {"A"}


def test_timeline_keeps_failovers_and_failbacks_in_wall_time() -> None:
    h = History(Clock(lambda: 500.0, wall=lambda: 2_000_000.0))
    h.on_event(event(400.0, "wan.down", wan="A", detect_ms=640))
    h.on_event(
        event(400.1, "policy.failover", **{"from": "A", "to": "B"}, cause="A", detect_ms=640)
    )
    h.on_event(event(480.0, "policy.failback", **{"from": "B", "to": "A"}))
    kinds = [(e["kind"], e["at"]) for e in h.timeline()]
    assert kinds == [("policy.failover", 1_999_900.1), ("policy.failback", 1_999_980.0)]
    assert h.timeline()[0]["detect_ms"] == 640
