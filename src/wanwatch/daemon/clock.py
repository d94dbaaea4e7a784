"""The daemon's clock: monotonic seconds for every decision, wall time only to show people.

Every time the daemon keeps (event times, a state's ``since``) is on the
monotonic clock, which never jumps (clock_gettime(2), CLOCK_MONOTONIC). A
person reads wall time, so the few places that show a time convert through
:meth:`Clock.wall`, the one conversion in the daemon: the wall time now, less
how long ago the reading was on the monotonic clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class Clock:
    """Call it for monotonic seconds; :meth:`wall` turns one of its readings into POSIX time."""

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._monotonic = monotonic
        self._wall = wall

    def __call__(self) -> float:
        return self._monotonic()

    def time(self) -> float:
        """The wall clock now (POSIX seconds)."""
        return self._wall()

    def wall(self, mono: float) -> float:
        """A reading of this clock as POSIX seconds."""
        return self._wall() - (self._monotonic() - mono)

    def iso(self, mono: float) -> str:
        """A reading of this clock as an ISO 8601 UTC time, to the millisecond."""
        return datetime.fromtimestamp(self.wall(mono), UTC).isoformat(timespec="milliseconds")
