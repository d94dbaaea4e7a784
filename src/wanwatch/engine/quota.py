"""Data quotas: an uplink's bytes counted against what its carrier allows. Pure.

The kernel counts each uplink's bytes in and out (linux/usage.py); a carrier
bills both directions, so a quota counts their sum. :func:`account` takes one
reading of that total and the wall time, and returns the uplink's new
:class:`Ledger` and its events:

* the bytes since the last reading are added to the period. A counter that went
  backwards was started again from zero (our table was created anew: a reboot,
  or the daemon's own stop removed it), so its whole new value is new bytes. A
  counter of another boot (the kernel's boot id) is one too, whatever its value;
* a monthly quota starts a new period at local midnight of ``reset_day`` (the
  month's last day when it has fewer days), with ``wan.quota_reset``; the bytes
  of the reading that crosses the boundary still count to the old period (at
  most one reading's worth). A prepaid quota has one period, ended only by
  ``wanwatch quota reset`` (a top-up);
* ``wan.quota_warning`` once per period when the bytes reach ``warn`` of the
  limit, ``wan.quota_exhausted`` once when they reach the limit. From then on the
  uplink is routed by ``quota.exhausted`` (policy.py): ``last_resort`` or ``off``.

The ledger is all a restart needs (the daemon keeps it in the state directory):
with the counter's last reading beside the bytes counted, a restart adds only
what the counter moved since, so nothing is counted twice, and what the kernel
counted while the daemon was not running is not lost.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from wanwatch.config.model import Quota
from wanwatch.engine.events import Event, event


@dataclass(frozen=True)
class Ledger:
    """One uplink's quota bookkeeping, as kept across restarts."""

    start: float  # POSIX time the period began
    used: int  # bytes counted in this period
    last: int  # the counter's total (in + out) at the last reading
    boot: str  # the kernel's boot id at that reading ("" before the first)
    warned: bool = False
    exhausted: bool = False


def period_start(now: float, reset_day: int) -> float:
    """The start of the monthly period holding ``now``: local midnight of the latest
    ``reset_day`` (or the month's last day, if it has fewer) at or before ``now``."""
    today = datetime.fromtimestamp(now).date()
    start = _reset_in(today.year, today.month, reset_day)
    if start > today:
        first = today.replace(day=1) - timedelta(days=1)
        start = _reset_in(first.year, first.month, reset_day)
    return datetime(start.year, start.month, start.day).timestamp()


def period_end(start: float, reset_day: int) -> float:
    """When the monthly period that began at ``start`` ends."""
    d = datetime.fromtimestamp(start).date()
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    end = _reset_in(year, month, reset_day)
    return datetime(end.year, end.month, end.day).timestamp()


def _reset_in(year: int, month: int, reset_day: int) -> date:
    return date(year, month, min(reset_day, calendar.monthrange(year, month)[1]))


def opened(quota: Quota, now: float) -> Ledger:
    """A new ledger: the period holding ``now``, nothing counted, no reading yet."""
    start = now if quota.period == "prepaid" else period_start(now, quota.day)
    return Ledger(start=start, used=0, last=0, boot="")


def ends(quota: Quota, ledger: Ledger) -> float | None:
    """When the ledger's period ends; None for a prepaid quota (until a top-up)."""
    return None if quota.period == "prepaid" else period_end(ledger.start, quota.day)


def account(
    wan: str, quota: Quota, ledger: Ledger, *, total: int, boot: str, now: float, mono: float
) -> tuple[Ledger, list[Event]]:
    """Count one reading (``total``: the counter's bytes in + out, ``boot``: the kernel's
    boot id) at wall time ``now``; events are stamped with ``mono`` (the daemon's clock)."""
    if ledger.boot == "":
        moved = 0  # the first reading: what the counter held before the quota is not its
    elif total < ledger.last or boot != ledger.boot:
        moved = total  # started again from zero
    else:
        moved = total - ledger.last
    s = replace(ledger, used=ledger.used + moved, last=total, boot=boot)
    events: list[Event] = []
    end = ends(quota, s)
    if end is not None and now >= end:
        events.append(event(mono, "wan.quota_reset", wan=wan, used=s.used, reason="period"))
        s = replace(s, start=period_start(now, quota.day), used=0)
        s = replace(s, warned=False, exhausted=False)
    return _levels(wan, quota, s, events, mono)


def reset(wan: str, quota: Quota, ledger: Ledger, now: float, mono: float) -> tuple[Ledger, Event]:
    """``wanwatch quota reset``: a new period from now (a prepaid top-up, or a carrier that
    reset early), the counter's last reading kept so nothing before counts."""
    fresh = replace(opened(quota, now), last=ledger.last, boot=ledger.boot)
    return fresh, event(mono, "wan.quota_reset", wan=wan, used=ledger.used, reason="operator")


def judged(wan: str, quota: Quota, ledger: Ledger, mono: float) -> tuple[Ledger, list[Event]]:
    """``ledger`` against a (possibly new) ``quota``: a level no longer reached is
    cleared, so a raised limit lifts an exhaustion, and a level newly reached fires."""
    s = replace(
        ledger,
        warned=ledger.warned and ledger.used >= quota.warn * quota.limit,
        exhausted=ledger.exhausted and ledger.used >= quota.limit,
    )
    return _levels(wan, quota, s, [], mono)


def _levels(
    wan: str, quota: Quota, s: Ledger, events: list[Event], mono: float
) -> tuple[Ledger, list[Event]]:
    if not s.warned and s.used >= quota.warn * quota.limit:
        s = replace(s, warned=True)
        events.append(event(mono, "wan.quota_warning", wan=wan, used=s.used, limit=quota.limit))
    if not s.exhausted and s.used >= quota.limit:
        s = replace(s, exhausted=True)
        events.append(
            event(
                mono,
                "wan.quota_exhausted",
                wan=wan,
                used=s.used,
                limit=quota.limit,
                policy=quota.exhausted,
            )
        )
    return s, events
