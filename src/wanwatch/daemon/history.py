"""What the status page draws: each uplink's last hour, and the timeline of failovers.

Fixed-size rings (collections.deque with maxlen), so the daemon's memory does not
grow with uptime: one sample per uplink every ``period`` seconds (10 s x 360 = one
hour), and the last ``TIMELINE`` failovers and failbacks. Times are kept as wall
clock (POSIX seconds, clock.py) because the page shows them to people.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from wanwatch.daemon.clock import Clock
from wanwatch.engine.core import WanStatus
from wanwatch.engine.events import Event, FieldValue

PERIOD = 10.0  # seconds between samples
POINTS = 360  # samples kept per uplink: one hour at PERIOD
TIMELINE = 50  # failovers and failbacks kept
_TIMELINE_EVENTS = ("policy.failover", "policy.failback")

Sample = tuple[float, float | None, float, str]  # wall time, RTT ms, loss %, state


class History:
    """Rings of per-uplink samples and of failover events, fed by the daemon's loop."""

    def __init__(self, clock: Clock, period: float = PERIOD, points: int = POINTS) -> None:
        self._clock = clock
        self.period = period
        self.points = points
        self._samples: dict[str, deque[Sample]] = {}
        self._timeline: deque[dict[str, FieldValue]] = deque(maxlen=TIMELINE)
        self._next = 0.0

    def due(self, now: float) -> bool:
        return now >= self._next

    def sample(self, now: float, status: Iterable[WanStatus]) -> None:
        """Record one point per uplink (call when :meth:`due`); forget removed uplinks."""
        self._next = now + self.period
        at = round(self._clock.wall(now), 1)
        seen = set()
        for s in status:
            seen.add(s.name)
            ring = self._samples.setdefault(s.name, deque(maxlen=self.points))
            ring.append((at, s.rtt_ms, s.loss_pct, s.state.value))
        for gone in set(self._samples) - seen:
            del self._samples[gone]

    def on_event(self, ev: Event) -> None:
        if ev.name in _TIMELINE_EVENTS:
            at = round(self._clock.wall(ev.at), 3)
            self._timeline.append({"at": at, "kind": ev.name, **ev.fields})

    def timeline(self) -> list[dict[str, FieldValue]]:
        return list(self._timeline)

    def to_json(self) -> dict[str, Any]:
        return {
            "period_s": self.period,
            "points": self.points,
            "wans": {
                name: {
                    "t": [p[0] for p in ring],
                    "rtt_ms": [p[1] for p in ring],
                    "loss_pct": [p[2] for p in ring],
                    "state": [p[3] for p in ring],
                }
                for name, ring in self._samples.items()
            },
        }
