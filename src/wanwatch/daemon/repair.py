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

:class:`Healer` puts both together with the drift schedule the daemon follows:
when to run the next reconcile pass, and what a pass's events mean (failed
steps, repaired objects). No clock of its own: every call takes ``now``
(monotonic seconds); no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from wanwatch.engine.events import Event, event

CONTEST_WINDOW = 60.0  # seconds over which repairs of one object are counted
CONTEST_REPAIRS = 5  # more repairs than this within the window: a tug-of-war
# A burst of kernel notifications (a whole table flushed) is repaired in one pass
# this long after the first of them.
DRIFT_DEBOUNCE = 0.05
# A full reconcile pass this often whatever was heard: the safety net for changes
# that send no notification (e.g. a sysctl such as ip_forward).
FULL_PASS_INTERVAL = 10.0
RT_TABLE_MAIN = 254  # <linux/rtnetlink.h> (repair.py stays free of pyroute2)
# Reconcile events that changed a kernel object, named in drift.repaired.
_CHANGES = frozenset(
    {
        "route.switch",
        "route.set",
        "route.withdraw",
        "route.remove",
        "rule.add",
        "rule.remove",
        "address.add",
        "address.remove",
        "nft.apply",
        "sysctl.set",
    }
)


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


class Healer:
    """When the daemon runs its next reconcile pass, and what a pass's events mean."""

    def __init__(self, now: float) -> None:
        self.retry = Retry()
        self.tug = TugOfWar()
        self.repairs = 0  # objects repaired since start
        self.error: str | None = None  # the latest failure, until a pass succeeds
        self.running = False  # a pass is under way off the loop
        self._drift_at: float | None = None  # a drift pass is due then
        self._drift_since: float | None = None  # first notice of the drift it repairs
        self._next_full = now + FULL_PASS_INTERVAL

    def noticed(self, now: float) -> None:
        """Something we own may have changed: a pass soon (debounced, or backed off)."""
        if self._drift_since is None:
            self._drift_since = now
        due = max(now + DRIFT_DEBOUNCE, self.tug.hold_until(now))
        if self._drift_at is None or due < self._drift_at:
            self._drift_at = due

    def wake_at(self) -> float | None:
        """When :meth:`start` will next say yes (None while a pass runs or none is due)."""
        if self.running:
            return None
        times = [t for t in (self._drift_at, self.retry.due, self._next_full) if t is not None]
        return min(times)

    def start(self, now: float) -> float | bool | None:
        """If a pass is due, mark it running and return the first notice of its drift
        (None if it repairs none heard); False if no pass is due."""
        if self.running:
            return False
        drift = self._drift_at is not None and now >= self._drift_at
        if not (drift or self.retry.is_due(now) or now >= self._next_full):
            return False
        self._drift_at = None
        self._next_full = now + FULL_PASS_INTERVAL
        since, self._drift_since = self._drift_since, None
        self.running = True
        return since

    def outcome(self, evs: list[Event], now: float) -> list[Event]:
        """Note a pass's failed steps (retried with backoff); the events worth logging.

        A failure is logged when it first happens or its error changes, not on
        every retry; ``status`` shows it until a pass succeeds.
        """
        failed = {
            str(e.fields.get("step")): str(e.fields.get("error"))
            for e in evs
            if e.name == "backend.error"
        }
        before = self.retry.failed
        self.retry.record(failed, now)
        self.error = next(iter(failed.values()), None)
        out = [
            e
            for e in evs
            if e.name != "backend.error"
            or before.get(str(e.fields.get("step"))) != e.fields.get("error")
        ]
        if self.retry.due is not None:
            out.append(
                event(
                    now,
                    "backend.retry",
                    steps=",".join(sorted(failed)),
                    attempt=self.retry.attempts,
                    in_s=round(self.retry.due - now, 2),
                )
            )
        elif before:
            out.append(event(now, "backend.recovered", steps=",".join(sorted(before))))
        return out

    def finished(self, evs: list[Event], since: float | None, now: float) -> list[Event]:
        """A drift/retry pass ended: each object it changed is one drift.repaired event."""
        self.running = False
        out: list[Event] = []
        for e in self.outcome(evs, now):
            obj = object_of(e)
            if obj is None:
                out.append(e)
                continue
            self.repairs += 1
            after = None if since is None else round((now - since) * 1000, 1)
            out.append(event(now, "drift.repaired", object=obj, action=e.name, after_ms=after))
            out += self.tug.repaired(obj, now)
        return out + self.tug.settle(now)


def object_of(e: Event) -> str | None:
    """The kernel object a reconcile event changed, as drift.repaired names it; else None."""
    if e.name not in _CHANGES:
        return None
    f = e.fields
    if e.name == "route.switch":
        return "route main default (active uplink)"
    if e.name.startswith("route."):
        table = "main" if f.get("table") == RT_TABLE_MAIN else f.get("table")
        return f"route table {table} {f.get('dst')} metric {f.get('metric')}"
    if e.name.startswith("rule."):
        return f"rule {f.get('rule')}"
    if e.name.startswith("address."):
        return f"address {f.get('address')} dev {f.get('interface')}"
    if e.name == "sysctl.set":
        return f"sysctl {f.get('key')}"
    return "nft table inet wanwatch"
