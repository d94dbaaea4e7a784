"""LAN services: DHCP and DNS for every LAN through one supervised dnsmasq.

Three layers, each callable alone (render, check, run), one module each:

- :func:`render` - pure: config -> dnsmasq.conf text (golden-tested), and
  :func:`check` - ``dnsmasq --test`` on a file, before it is ever used
  (``dnsmasq_conf``);
- :func:`log_event` - a dnsmasq log line as an event (``dnsmasq_log``);
- :class:`Dnsmasq` - here: runs dnsmasq in the foreground as our child through
  the generic :class:`~wanwatch.linux.supervisor.Supervisor` (log turned into
  events, restarts with bounded backoff) and reloads it without ever leaving a
  rejected configuration in charge.

Everything dnsmasq touches lives in the state directory (namespaces share one
filesystem): ``dnsmasq.conf``, ``dnsmasq.pid`` and ``dnsmasq.leases``. The
lease file outlives dnsmasq and wanwatch restarts, so a client renewing keeps
its address.

dnsmasq does not run at all (:func:`idle_reason`) when there is no LAN, or when
no LAN has DHCP and ``dns.upstream`` is empty: a forwarder with nowhere to
forward would answer every query REFUSED, which is worse than not listening.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from wanwatch.engine.events import Event, FieldValue, event
from wanwatch.errors import DnsmasqError
from wanwatch.linux.dnsmasq_conf import (
    CONF_FILE,
    LEASE_FILE,
    PID_FILE,
    DnsmasqFiles,
    check,
    command,
    idle_reason,
    render,
)
from wanwatch.linux.dnsmasq_log import log_event, strip_prefix
from wanwatch.linux.supervisor import STABLE_AFTER, Program, Supervisor, backoff

# The whole dnsmasq surface stays importable from here.
__all__ = [
    "CONF_FILE",
    "LEASE_FILE",
    "PID_FILE",
    "STABLE_AFTER",
    "Dnsmasq",
    "DnsmasqFiles",
    "backoff",
    "check",
    "command",
    "idle_reason",
    "log_event",
    "render",
]

if TYPE_CHECKING:
    from wanwatch.config import Config

# dnsmasq logs this once its sockets are bound (dnsmasq.c: after the listeners
# and the DHCP socket are created, before the main loop).
_STARTED = "started, version "


class Dnsmasq:
    """Supervises one dnsmasq serving the LANs of a config.

    ``emit`` receives every event (dnsmasq.start/exit/restart/reload/reject/
    stop/idle/stale, dhcp.*, dnsmasq.log). ``now`` is the monotonic clock used
    for event times and for judging whether a child ran stably.
    """

    def __init__(
        self,
        config: Config,
        state_dir: Path,
        emit: Callable[[Event], None],
        binary: str = "dnsmasq",
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._files = DnsmasqFiles.under(state_dir)
        self._emit_event = emit
        self._binary = binary
        self._now = now
        self._lock = asyncio.Lock()
        self._active = False  # between start() and stop()
        self._idle: str | None = None
        self._rendered: str | None = None  # text of the config the child runs
        self._sup = Supervisor(
            Program(
                name="dnsmasq",
                argv=tuple(command(binary, self._files.conf)),
                marker=f"--conf-file={self._files.conf}",
                pid_file=self._files.pid,
                ready=lambda line: _STARTED in line,
                log_event=lambda line, at: log_event(line, self._config, at),
                last_words=strip_prefix,
                error=DnsmasqError,
                start_fields={"conf": str(self._files.conf)},
            ),
            emit,
            now,
        )

    @property
    def files(self) -> DnsmasqFiles:
        return self._files

    @property
    def lease_file(self) -> Path:
        """dnsmasq's lease file (kept across restarts; read it with leases.read_leases)."""
        return self._files.leases

    # ------------------------------------------------------------------ public

    async def start(self) -> None:
        """Render, validate and start dnsmasq; raise DnsmasqError if it will not run.

        After a failure nothing runs, and the next reload() tries again with its
        config (an operator fixes a rejected config by reloading); stop() still
        cleans up.
        """
        async with self._lock:
            if self._active:
                raise DnsmasqError("dnsmasq is already started")
            self._active = True
            await self._apply(self._config)

    async def reload(self, config: Config) -> None:
        """Serve ``config``. If dnsmasq rejects it, raise DnsmasqError; the old one keeps serving.

        An unchanged rendering is a no-op. A config that passes ``--test`` but on
        which dnsmasq still will not start (an address it cannot bind) is rolled
        back: the previous config is started again before the error is raised.
        Before start() or after stop() it only records ``config``.
        """
        async with self._lock:
            if not self._active:
                self._config = config
                return
            await self._apply(config)

    async def validate(self, config: Config) -> None:
        """Raise DnsmasqError if dnsmasq would refuse ``config``; changes nothing running.

        The daemon calls this before applying a reloaded config anywhere, so a
        config dnsmasq refuses is refused as a whole (not half applied).
        """
        if idle_reason(config) is not None:
            return
        text = render(config, self._files.state_dir)
        if text == self._rendered:
            return
        self._files.state_dir.mkdir(parents=True, exist_ok=True)
        probe = self._files.candidate.with_suffix(".check")
        probe.write_text(text, encoding="utf-8")
        try:
            await check(probe, self._binary)
        finally:
            probe.unlink(missing_ok=True)

    async def stop(self) -> None:
        """Stop our dnsmasq (by its PID) and remove its runtime files; keep the leases."""
        async with self._lock:
            self._active = False
            await self._sup.halt()
            for path in (self._files.conf, self._files.candidate, self._files.pid):
                path.unlink(missing_ok=True)

    def status(self) -> dict[str, object]:
        pid = self._sup.pid
        return {
            "running": pid is not None,
            "pid": pid,
            "restarts": self._sup.restarts,
            "last_error": self._sup.last_error,
            "idle": self._idle,
            "leases": str(self._files.leases),
        }

    # ------------------------------------------------------------------ internals

    def _emit(self, name: str, **fields: FieldValue) -> None:
        self._emit_event(event(self._now(), name, **fields))

    async def _apply(self, config: Config) -> None:
        sup = self._sup
        reason = idle_reason(config)
        if reason is not None:
            await sup.halt()
            self._files.conf.unlink(missing_ok=True)
            self._config, self._rendered, self._idle = config, None, reason
            self._emit("dnsmasq.idle", reason=reason)
            return
        text = render(config, self._files.state_dir)
        if text == self._rendered and sup.supervising:
            self._config = config  # same dnsmasq.conf: nothing to restart
            return
        self._files.state_dir.mkdir(parents=True, exist_ok=True)
        self._files.candidate.write_text(text, encoding="utf-8")
        try:
            await check(self._files.candidate, self._binary)
        except DnsmasqError as exc:
            self._files.candidate.unlink(missing_ok=True)
            sup.last_error = str(exc)
            self._emit("dnsmasq.reject", error=str(exc))
            raise
        previous = self._rendered
        await sup.halt()
        await sup.kill_stale()
        os.replace(self._files.candidate, self._files.conf)
        try:
            child = await sup.start_child()
        except DnsmasqError as exc:
            sup.last_error = str(exc)
            if previous is None:
                raise
            # It passed --test but will not run (say, an address it cannot bind):
            # put the previous config back under supervision before reporting.
            self._files.conf.write_text(previous, encoding="utf-8")
            self._emit("dnsmasq.rollback", error=str(exc))
            try:
                sup.supervise(await sup.spawn())
            except DnsmasqError as again:
                sup.supervise(None)  # retried with backoff from here
                raise DnsmasqError(f"{exc}; restoring the previous one failed: {again}") from None
            raise DnsmasqError(f"{exc}; the previous configuration is serving again") from None
        was_running = previous is not None
        self._config, self._rendered, self._idle = config, text, None
        sup.supervise(child)
        self._emit("dnsmasq.reload" if was_running else "dnsmasq.ready", pid=child.pid)
