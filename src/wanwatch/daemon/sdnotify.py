"""The systemd notification protocol: one datagram per message, no library needed.

sd_notify(3): the service manager passes ``NOTIFY_SOCKET`` (a path, or an abstract
socket written with a leading ``@``) and the daemon sends newline-separated
``KEY=VALUE`` assignments in one AF_UNIX datagram: ``READY=1`` once it serves,
``STOPPING=1`` as it begins to stop, ``STATUS=...`` for `systemctl status`,
``WATCHDOG=1`` at least every ``WATCHDOG_USEC`` (sd_watchdog_enabled(3)
recommends half of it). Outside systemd ``NOTIFY_SOCKET`` is unset and every call
is a no-op. A send that fails is logged once and never stops the daemon.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from wanwatch.engine.events import Event

log = logging.getLogger("wanwatch.sdnotify")


class Notifier:
    """Sends sd_notify messages; follows the daemon's events to say when it is ready."""

    def __init__(self, env: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + addr[1:] if addr.startswith("@") else addr
        self.watchdog_s = _watchdog_seconds(env, os.getpid() if pid is None else pid)
        self._next_pet = 0.0
        self._ready = False
        self._failed = False

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; False when not under systemd or on error."""
        if not self._address:
            return False
        data = "\n".join(assignments).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.setblocking(False)  # never wait on the manager from the event loop
            try:
                s.sendto(data, self._address)
            except OSError as exc:
                if not self._failed:
                    log.warning("sd_notify to %s failed: %s", self._address, exc)
                self._failed = True
                return False
        return True

    def on_event(self, ev: Event) -> None:
        """READY=1 after the first dataplane is applied, STOPPING=1 as the daemon stops."""
        if ev.name == "dataplane.applied":
            status = f"STATUS=carrying: {ev.fields.get('active') or '-'}"
            if self._ready:
                self.send(status)
            else:
                self._ready = self.send("READY=1", status) or self._ready
        elif ev.name == "daemon.stopping":
            self.send("STOPPING=1", "STATUS=stopping: removing what wanwatch added")
        elif ev.name == "config.reloaded":
            self.send("STATUS=config reloaded")

    def pet(self, now: float) -> float:
        """Send WATCHDOG=1 when due (every half watchdog period); seconds until the next one.

        Called from the daemon's loop itself, so a loop that stops turning stops
        the pings and systemd restarts the service (WatchdogSec=, systemd.service(5)).
        """
        if self.watchdog_s is None:
            return float("inf")
        half = self.watchdog_s / 2
        if now >= self._next_pet:
            self.send("WATCHDOG=1")
            self._next_pet = now + half
        return max(0.0, self._next_pet - now)


def _watchdog_seconds(env: Mapping[str, str], pid: int) -> float | None:
    """WATCHDOG_USEC in seconds when it is meant for this process (WATCHDOG_PID), else None."""
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and owner != str(pid):
        return None
    return int(usec) / 1_000_000
