"""Waiting for a state, bounded: the one poll loop of the lab, its tests and its benches.

A change in the lab takes effect in another process -- the daemon, a worker,
the kernel behind a command -- so whoever needs it to have happened polls for
the state itself, with a deadline, instead of sleeping a guess (:func:`until`).
A state that must *stay* true for a while (nothing fails over while a one-way
flow runs) is watched for that while, every poll checked (:func:`holds`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from wanwatch.errors import LabError

T = TypeVar("T")
POLL = 0.02  # seconds between two looks: far below any lab deadline, light on the CPU
What = str | Callable[[], str]  # a callable says, at the deadline, what was seen last


def _timed_out(timeout: float, what: What) -> LabError:
    said = what() if callable(what) else what
    return LabError(f"timed out after {timeout:g} s waiting for {said}")


def until(check: Callable[[], T], timeout: float, what: What, *, every: float = POLL) -> T:
    """Call ``check`` every ``every`` seconds until it returns something true; that value.

    LabError naming ``what`` once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while not (got := check()):
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what)
        time.sleep(every)
    return got


async def until_async(
    check: Callable[[], T], timeout: float, what: What, *, every: float = POLL
) -> T:
    """:func:`until` for a caller on an asyncio loop (the loop runs while it waits)."""
    deadline = time.monotonic() + timeout
    while not (got := check()):
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what)
        await asyncio.sleep(every)
    return got


def holds(check: Callable[[], object], seconds: float, what: What, *, every: float = POLL) -> int:
    """Check that ``check`` stays true for ``seconds``: at once, every ``every`` seconds
    and once more at the end; how many times it was checked.

    LabError naming ``what`` at the first check that is false (a ``check`` may also
    raise for itself, with a better message).
    """
    end = time.monotonic() + seconds
    checks = 0
    while True:
        last = time.monotonic() >= end
        checks += 1
        if not check():
            said = what() if callable(what) else what
            raise LabError(f"no longer {said} after {checks} checks")
        if last:
            return checks
        time.sleep(max(0.0, min(every, end - time.monotonic())))
