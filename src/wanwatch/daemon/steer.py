"""Steering: keep the kernel at the engine's Intent, and repair it when it drifts.

The daemon calls :meth:`Steering.steer` whenever the engine may have changed its
mind (a reply, a carrier change, a lease, an operator's choice, each turn of the
loop): the backend is asked only when the Intent differs from the last one
applied. Repair passes (drift heard, a failed step's retry, the periodic safety
net; repair.py decides when) run off the loop on the backend's worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from wanwatch.daemon.eventlog import EventLog
from wanwatch.daemon.parts import Backend, Uplinks
from wanwatch.daemon.repair import Healer
from wanwatch.engine.core import Engine
from wanwatch.engine.events import Event, event
from wanwatch.engine.intent import Intent
from wanwatch.errors import NetlinkError, NftError

STARTUP_VERDICT_WAIT = 4.0  # longest wait for first probe verdicts before steering routes


class Steering:
    """The last Intent applied, and the self-healing schedule (``heal``) of later passes."""

    def __init__(
        self,
        *,
        engine: Engine,
        uplinks: Uplinks,
        backend: Backend,
        events: EventLog,
        clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self._engine = engine
        self._uplinks = uplinks
        self._backend = backend
        self._events = events
        self._now = clock
        self._wake = wake
        self.applied: Intent | None = None  # None until the first pass: the kernel as found
        self.started_at = clock()  # the daemon's start, for STARTUP_VERDICT_WAIT
        self.heal = Healer(clock())

    def intent(self) -> Intent:
        """The engine's Intent, DHCP uplinks with the address and gateway of their lease."""
        return self._uplinks.overlay(self._engine.intent())

    def steer(self, force: bool = False) -> None:
        """Reconcile the kernel to the engine's Intent when it changed (or when forced)."""
        intent = self.intent()
        if intent == self.applied and not force:
            return
        if self.applied is None and not self._verdicts_ready(intent):
            return  # first start: do not steer on no evidence (a restart may be adopting)
        started = self._now()
        try:
            evs = self._backend.apply(intent)
        except (NetlinkError, NftError) as exc:
            evs = [event(self._now(), "backend.error", step="apply", error=str(exc))]
        self._events.emit_all(self.heal.outcome(evs, self._now()))
        if self.applied is None or intent.active != self.applied.active:
            self._events.emit(
                event(
                    self._now(),
                    "dataplane.applied",
                    active=",".join(intent.active),
                    stale=intent.stale,
                    apply_ms=round((self._now() - started) * 1000, 2),
                )
            )
        self.applied = intent

    def in_force(self, intent: Intent | None = None) -> bool:
        """The kernel holds ``intent`` (default: the engine's now), no step of it failing."""
        want = self.intent() if intent is None else intent
        return self.applied == want and not self.heal.retry.failed

    def renumbered(self) -> None:
        """An uplink's address or gateway changed (a lease): apply it now."""
        if self.applied is None:
            # Before the first verdicts only the uplink's own address, table and rules
            # are set (prepare): which uplink carries traffic waits, as at any start.
            evs = self._backend.prepare(self.intent())
            self._events.emit_all(self.heal.outcome(evs, self._now()))
        else:
            self.steer(force=True)

    def maybe_repair(self) -> None:
        """Start a reconcile pass off the loop when drift, a retry or the safety net is due."""
        if self.applied is None:
            return
        since = self.heal.start(self._now())
        if since is False:
            return
        # The worker runs passes in order: a steer submitted after this one lands last.
        job = asyncio.wrap_future(self._backend.apply_soon(self.applied, full=True))
        job.add_done_callback(lambda j: self._repaired(j, since))

    def _repaired(self, job: asyncio.Future[list[Event]], since: float | None) -> None:
        try:
            evs = job.result()
        except (NetlinkError, NftError) as exc:
            evs = [event(self._now(), "backend.error", step="apply", error=str(exc))]
        except asyncio.CancelledError:
            return
        self._events.emit_all(self.heal.finished(evs, since, self._now()))
        self._wake()

    def _verdicts_ready(self, intent: Intent) -> bool:
        """At start the engine's first Intent is a stale guess until probes speak.

        Applying that guess would undo a failover a killed predecessor made (a restart
        must adopt without dropping traffic), so wait for a real verdict, bounded.
        """
        return not intent.stale or self._now() - self.started_at >= STARTUP_VERDICT_WAIT
