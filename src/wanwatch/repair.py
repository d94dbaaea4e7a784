"""Self-healing bookkeeping, pure: retries of failed steps and the tug-of-war guard.

The daemon reconciles the kernel to the Intent whenever something it owns
changes (drift) and whenever a pass failed. Two things keep that from going
wrong on a real box:

* :class:`Retry` -- a failed reconcile step is tried again after a bounded,
  growing delay, and stays visible (``status``: ``failed_steps``) until a pass
  succeeds;
* :class:`TugOfWar` -- when another program removes the same object again and
  again (a firewall service that reloads its own ruleset with ``nft flush
  ruleset``, a network manager that flushes routes), repairing it at once every
  time would make the two fight forever, each change triggering the other. After
  CONTEST_REPAIRS repairs of one object within CONTEST_WINDOW, repairs of it
  wait with an exponential backoff and the object is reported as contested
  until it stays put for a whole window.

No clock of its own: every call takes ``now`` (monotonic seconds).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from wanwatch.engine.events import Event, event

CONTEST_WINDOW = 60.0  # seconds over which repairs of one object are counted
CONTEST_REPAIRS = 5  # more repairs than this within the window: a tug-of-war


@dataclass(frozen=True)
class Backoff:
    """Delays ``first * factor**(n-1)`` for attempt ``n``, capped at ``cap``."""

    first: float
    factor: float
    cap: float

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.first * self.factor ** max(attempt - 1, 0))


RETRY_BACKOFF = Backoff(first=0.2, factor=2.0, cap=10.0)
CONTEST_BACKOFF = Backoff(first=5.0, factor=2.0, cap=120.0)


@dataclass
class Retry:
    """The failed steps of the last reconcile pass and when to run the next one."""

    backoff: Backoff = RETRY_BACKOFF
    failed: dict[str, str] = field(default_factory=dict)  # step -> error
    attempts: int = 0  # failed passes in a row
    due: float | None = None  # when to try again; None while nothing failed

    def record(self, failed: dict[str, str], now: float) -> None:
        """The outcome of one pass: its failed steps ({} when it all worked)."""
        if not failed:
            self.failed, self.attempts, self.due = {}, 0, None
            return
        self.failed = dict(failed)
        self.attempts += 1
        self.due = now + self.backoff.delay(self.attempts)

    def is_due(self, now: float) -> bool:
        return self.due is not None and now >= self.due


@dataclass
class _Object:
    repairs: deque[float] = field(default_factory=deque)
    contested: bool = False
    strikes: int = 0  # repairs made while contested (drives the backoff)
    hold_until: float = 0.0


class TugOfWar:
    """Counts repairs per object; decides when the next repair of drift may run."""

    def __init__(
        self,
        window: float = CONTEST_WINDOW,
        limit: int = CONTEST_REPAIRS,
        backoff: Backoff = CONTEST_BACKOFF,
    ) -> None:
        self._window = window
        self._limit = limit
        self._backoff = backoff
        self._objects: dict[str, _Object] = {}

    def repaired(self, obj: str, now: float) -> list[Event]:
        """Note one repair of ``obj``; returns ``drift.contested`` when a fight starts."""
        o = self._objects.setdefault(obj, _Object())
        self._prune(o, now)
        o.repairs.append(now)
        if not o.contested and len(o.repairs) <= self._limit:
            return []
        o.strikes += 1
        o.hold_until = now + self._backoff.delay(o.strikes)
        if o.contested:
            return []
        o.contested = True
        return [
            event(
                now,
                "drift.contested",
                object=obj,
                repairs=len(o.repairs),
                window_s=self._window,
                backoff_s=round(o.hold_until - now, 1),
            )
        ]

    def hold_until(self, now: float) -> float:
        """The earliest time the next drift repair may run (``now`` if no fight is on)."""
        holds = [o.hold_until for o in self._objects.values() if o.contested]
        return max([now, *holds])

    def settle(self, now: float) -> list[Event]:
        """Call now and then: a contested object left alone for a whole window is at peace."""
        out: list[Event] = []
        for obj, o in list(self._objects.items()):
            self._prune(o, now)
            if o.repairs:
                continue
            if o.contested:
                out.append(event(now, "drift.settled", object=obj))
            del self._objects[obj]
        return out

    def contested(self) -> list[str]:
        return sorted(obj for obj, o in self._objects.items() if o.contested)

    def _prune(self, o: _Object, now: float) -> None:
        while o.repairs and now - o.repairs[0] >= self._window:
            o.repairs.popleft()
