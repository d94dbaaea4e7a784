"""How a worker is told to stop: SIGTERM (the lab's) or SIGINT (Ctrl-C) sets a flag."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_flag() -> Callable[[], bool]:
    """Whether SIGTERM or SIGINT has arrived since this call (for a blocking worker)."""
    stop: list[bool] = []
    for sig in SIGNALS:
        signal.signal(sig, lambda signum, frame: stop.append(True))
    return lambda: bool(stop)


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (for a worker on an asyncio loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    return stop
