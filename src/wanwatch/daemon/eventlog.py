"""The daemon's events: one bounded ring, counts by name, the log line, and who follows them.

Every part reports through :meth:`EventLog.emit` (it is the ``emit`` the parts
are built with), so `wanwatch status`, the log, the metrics' counters, the
status page, sd_notify and the hooks all see the same events in the same order.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator

from wanwatch.engine.events import Event

log = logging.getLogger("wanwatch")

EVENT_RING = 500  # events kept for `wanwatch status`


class EventLog:
    """The last EVENT_RING events, every name's count, and the observers called for each."""

    def __init__(self, ring: int = EVENT_RING) -> None:
        self._ring: deque[Event] = deque(maxlen=ring)
        self._counts: Counter[str] = Counter()
        self._observers: list[Callable[[Event], None]] = []

    def follow(self, observer: Callable[[Event], None]) -> None:
        """Call ``observer`` with every event from now on, after those already following."""
        self._observers.append(observer)

    def emit(self, ev: Event) -> None:
        self._ring.append(ev)
        self._counts[ev.name] += 1
        log.info("%s", ev, extra={"event": ev})
        for observe in self._observers:
            observe(ev)

    def emit_all(self, evs: Iterable[Event]) -> None:
        for ev in evs:
            self.emit(ev)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._ring)

    def recent(self, n: int) -> list[Event]:
        return list(self._ring)[-n:]

    def counts(self) -> dict[str, int]:
        return dict(self._counts)
