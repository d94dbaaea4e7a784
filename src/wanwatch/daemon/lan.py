"""The LANs' DHCP and DNS, in one of two roles, chosen once from the config.

- :class:`Standalone`: this router serves the LANs; dnsmasq runs all along.
- :class:`Paired`: one router of a pair (``ha:``); keepalived and conntrackd run,
  and dnsmasq runs only while this router is the VRRP master (linux/pair.py).

Either way a failure degrades DHCP/DNS (or leaves the office to the peer) and is
reported as an event; routing goes on. A part is stopped only if it was started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from wanwatch.config import Config
from wanwatch.daemon.clock import Clock
from wanwatch.engine.core import WanStatus
from wanwatch.engine.events import Event, event
from wanwatch.errors import DnsmasqError, HaError, WanwatchError
from wanwatch.linux.dnsmasq import Dnsmasq
from wanwatch.linux.leases import read_leases
from wanwatch.linux.pair import Pair, validate_reload

log = logging.getLogger("wanwatch")


class Standalone:
    """dnsmasq serves the LANs (the supervisor stays idle, and says why, with no LAN to serve)."""

    def __init__(
        self, dnsmasq: Dnsmasq, state_dir: Path, emit: Callable[[Event], None], clock: Clock
    ) -> None:
        self._dnsmasq = dnsmasq
        self._state_dir = state_dir
        self._emit = emit
        self._clock = clock
        self._started = False

    async def start(self) -> None:
        self._started = True
        try:
            await self._dnsmasq.start()
        except DnsmasqError as exc:  # DHCP/DNS degraded, routing goes on
            self._emit(event(self._clock(), "dnsmasq.failed", error=str(exc)))

    async def check(self, old: Config, new: Config) -> None:
        """Raise DnsmasqError or HaError if ``new`` cannot replace ``old``; changes nothing."""
        await self._dnsmasq.validate(new)
        await validate_reload(old, new, self._state_dir)

    async def reload(self, new: Config) -> None:
        try:
            await self._dnsmasq.reload(new)
        except DnsmasqError as exc:  # the old dnsmasq keeps serving
            self._emit(event(self._clock(), "dnsmasq.reload_rejected", error=str(exc)))

    async def follow(self, uplinks: Callable[[], Iterable[WanStatus]], in_force: bool) -> None:
        """Nothing to follow: dnsmasq serves whatever the uplinks do."""

    async def stop(self) -> None:
        if self._started:
            await self._dnsmasq.stop()

    def dnsmasq_status(self) -> dict[str, Any]:
        return self._dnsmasq.status()

    def ha_status(self) -> dict[str, Any] | None:
        return None

    def leases(self, config: Config) -> list[dict[str, Any]]:
        """The DHCP leases dnsmasq holds for ``config``'s LANs ([] if unreadable, logged)."""
        try:
            leases = read_leases(self._dnsmasq.lease_file, config, self._clock.time())
        except (OSError, WanwatchError) as exc:
            log.warning("leases: %s", exc)
            return []
        return [lease.to_json() for lease in leases]


class Paired(Standalone):
    """keepalived and conntrackd for this router; dnsmasq follows the role (linux/pair.py)."""

    def __init__(
        self,
        pair: Pair,
        dnsmasq: Dnsmasq,
        state_dir: Path,
        emit: Callable[[Event], None],
        clock: Clock,
    ) -> None:
        super().__init__(dnsmasq, state_dir, emit, clock)
        self._pair = pair

    async def start(self) -> None:
        self._started = True
        try:
            await self._pair.start()
        except HaError as exc:  # the peer carries the office
            self._emit(event(self._clock(), "ha.failed", error=str(exc)))

    async def reload(self, new: Config) -> None:
        await super().reload(new)
        try:
            await self._pair.reload(new)
        except HaError as exc:  # the peer carries the office
            self._emit(event(self._clock(), "ha.failed", error=str(exc)))

    async def follow(self, uplinks: Callable[[], Iterable[WanStatus]], in_force: bool) -> None:
        await self._pair.follow(uplinks(), in_force)

    async def stop(self) -> None:
        if self._started:
            await self._pair.stop()
        await super().stop()

    def ha_status(self) -> dict[str, Any] | None:
        return self._pair.status()
