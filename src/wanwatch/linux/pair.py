"""The router pair at run time: keepalived and conntrackd supervised, fed and stopped.

conntrackd starts first, so that the first VRRP transition's notify script
finds it. The uplink count that keepalived tracks is written by
:meth:`Pair.uplinks_down` (atomically: keepalived re-reads the file on every
inotify event). On stop keepalived goes first: on SIGTERM it removes the shared
addresses it added (keepalived(8)) and its VRRP priority-0 advert hands the
master role over at once (RFC 5798 section 6.4.3).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from wanwatch.engine.events import Event, event
from wanwatch.errors import DnsmasqError, HaError, SysctlError
from wanwatch.linux import conntrackd, keepalived, sysctl
from wanwatch.linux.statefile import replace_file
from wanwatch.linux.supervisor import Program, Supervisor

if TYPE_CHECKING:
    from collections.abc import Iterable

    from wanwatch.config import Config
    from wanwatch.engine.core import WanStatus
    from wanwatch.linux.dnsmasq import Dnsmasq

# keepalived --log-console: "Sat Dec  5 12:13:27 2026: Startup complete"
_KEEPALIVED_PREFIX = re.compile(r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}:\s*")
# conntrackd in the foreground: "[Sat Dec  5 12:13:06 2026] (pid=21507) [notice] ..."
_CONNTRACKD_PREFIX = re.compile(r"^\[[^]]*\] \(pid=\d+\) (?:\[(?P<level>\w+)\] )?")
_STATE_RE = re.compile(r"^\((?P<instance>[^)]+)\) Entering (?P<state>[A-Z]+) STATE")


def keepalived_words(line: str) -> str:
    return _KEEPALIVED_PREFIX.sub("", line.strip(), count=1)


def conntrackd_words(line: str) -> str:
    return _CONNTRACKD_PREFIX.sub("", line.strip(), count=1)


def keepalived_event(line: str, at: float) -> Event | None:
    """A keepalived log line: ``vrrp.state instance= state=`` or ``keepalived.log``."""
    text = keepalived_words(line)
    if not text:
        return None
    m = _STATE_RE.match(text)
    if m:
        return event(at, "vrrp.state", instance=m.group("instance"), state=m.group("state"))
    return event(at, "keepalived.log", msg=text)


def conntrackd_event(line: str, at: float) -> Event | None:
    m = _CONNTRACKD_PREFIX.match(line.strip())
    text = conntrackd_words(line)
    if not text:
        return None
    level = m.group("level") if m else None
    return event(at, "conntrackd.log", level=level, msg=text)


class Pair:
    """keepalived and conntrackd for this router of a pair, supervised like dnsmasq."""

    def __init__(
        self,
        config: Config,
        state_dir: Path,
        emit: Callable[[Event], None],
        now: Callable[[], float] = time.monotonic,
        *,
        keepalived_bin: str = "keepalived",
        conntrackd_bin: str = "/usr/sbin/conntrackd",
    ) -> None:
        self._config = config
        self._state_dir = state_dir
        self._emit = emit
        self._now = now
        self._keepalived_bin = keepalived_bin
        self._conntrackd_bin = conntrackd_bin
        self.kfiles = keepalived.KeepalivedFiles.under(state_dir)
        self.cfiles = conntrackd.ConntrackdFiles.under(state_dir)
        self._down: int | None = None
        self._serving = False  # dnsmasq started by follow()
        self._keepalived = Supervisor(
            Program(
                name="keepalived",
                argv=tuple(keepalived.command(keepalived_bin, self.kfiles)),
                marker=f"--use-file={self.kfiles.conf}",
                pid_file=self.kfiles.pid,
                ready=lambda line: "Startup complete" in line,
                log_event=keepalived_event,
                last_words=keepalived_words,
                error=HaError,
                start_fields={"conf": str(self.kfiles.conf)},
            ),
            emit,
            now,
        )
        self._conntrackd = Supervisor(
            Program(
                name="conntrackd",
                argv=tuple(conntrackd.command(conntrackd_bin, self.cfiles)),
                marker=str(self.cfiles.conf),
                pid_file=None,  # conntrackd writes none
                ready=lambda line: "-- starting in console mode --" in line,
                log_event=conntrackd_event,
                last_words=conntrackd_words,
                error=HaError,
                start_fields={"conf": str(self.cfiles.conf)},
                merge_stdout=True,  # conntrackd logs to stdout in the foreground
                leftovers=(self.cfiles.lock, self.cfiles.socket),
            ),
            emit,
            now,
        )

    async def start(self) -> None:
        """Render, check and start conntrackd, then keepalived; raise HaError if either fails."""
        cfg, d = self._config, self._state_dir
        d.mkdir(parents=True, exist_ok=True)
        try:
            changes = sysctl.ensure_pair()
        except SysctlError as exc:
            raise HaError(str(exc)) from None
        for c in changes:
            self._emit(event(self._now(), "sysctl.set", key=c.key, old=c.old, new=c.new))
        self.cfiles.conf.write_text(conntrackd.render(cfg, d), encoding="utf-8")
        self.kfiles.conf.write_text(keepalived.render(cfg, d), encoding="utf-8")
        await keepalived.check(self.kfiles.conf, self._keepalived_bin)
        notify = keepalived.render_notify(d, self._conntrackd_bin, self.cfiles.conf)
        replace_file(self.kfiles.notify, notify, 0o700)
        # Until the probes speak, count every uplink as not up: a router that has
        # just started must not take the master role from one that knows its uplinks.
        self.uplinks_down(len(cfg.wans))
        self.kfiles.role.unlink(missing_ok=True)
        await self._conntrackd.start()
        try:
            await self._keepalived.start()
        except HaError:
            await self._conntrackd.halt()
            raise

    async def reload(self, config: Config) -> None:
        """Serve a reloaded config: restart keepalived and conntrackd if their files change.

        keepalived's SIGTERM hands the master role over for the restart (a
        priority-0 advert), and the better router takes it back once this one
        advertises again; conntrackd's state travels with it.
        """
        d = self._state_dir
        before = (keepalived.render(self._config, d), conntrackd.render(self._config, d))
        if (keepalived.render(config, d), conntrackd.render(config, d)) == before:
            self._config = config
            return
        await self._keepalived.halt()
        await self._conntrackd.halt()
        self._config = config
        self._down = None
        await self.start()

    def uplinks_down(self, count: int) -> None:
        """Tell keepalived how many uplinks are not up (a no-op when unchanged)."""
        if count == self._down:
            return
        replace_file(self.kfiles.track, f"{count}\n", 0o600)
        self._down = count
        self._emit(event(self._now(), "ha.track", uplinks_down=count))

    async def follow(self, uplinks: Iterable[WanStatus], dnsmasq: Dnsmasq) -> None:
        """Feed keepalived the uplink states; run dnsmasq only while this router is master.

        One DHCP server follows the master, rather than both routers serving
        split pools: a split pool would NAK a client renewing an address from
        the other half (RFC 2131 4.3.2) and move it to a new address. The new
        master's dnsmasq is authoritative, so it acknowledges the renewal of an
        address it has no lease for and rebuilds its lease file from the
        clients (dnsmasq(8), --dhcp-authoritative): clients keep their addresses.
        """
        self.uplinks_down(sum(1 for s in uplinks if s.state.value not in ("up", "degraded")))
        master = self.role() == "MASTER"
        if master == self._serving:
            return
        self._serving = master
        try:
            await (dnsmasq.start() if master else dnsmasq.stop())
        except DnsmasqError as exc:  # DHCP/DNS degraded, the pair goes on
            self._emit(event(self._now(), "dnsmasq.failed", error=str(exc)))

    def role(self) -> str | None:
        """MASTER, BACKUP, FAULT or STOP as keepalived last announced; None before that."""
        try:
            return self.kfiles.role.read_text(encoding="ascii").strip() or None
        except FileNotFoundError:
            return None

    async def stop(self) -> None:
        """Stop keepalived (it removes the shared addresses), then conntrackd; remove our files."""
        await self._keepalived.halt()
        await self._conntrackd.halt()
        for path in (
            self.kfiles.conf,
            self.kfiles.pid,
            self.kfiles.vrrp_pid,
            self.kfiles.track,
            self.kfiles.notify,
            self.kfiles.role,
            self.cfiles.conf,
            self.cfiles.lock,
            self.cfiles.socket,
        ):
            path.unlink(missing_ok=True)

    def status(self) -> dict[str, object]:
        return {
            "role": self.role(),
            "uplinks_down": self._down,
            "keepalived": {
                "pid": self._keepalived.pid,
                "restarts": self._keepalived.restarts,
                "last_error": self._keepalived.last_error,
            },
            "conntrackd": {
                "pid": self._conntrackd.pid,
                "restarts": self._conntrackd.restarts,
                "last_error": self._conntrackd.last_error,
            },
        }


async def validate_reload(old: Config, new: Config, state_dir: Path) -> None:
    """Raise HaError if ``new`` cannot replace ``old`` by a reload; changes nothing.

    Joining or leaving a pair changes which addresses this router applies
    itself: that takes a restart. A pair's new keepalived.conf must pass
    keepalived's own config test.
    """
    if (old.ha is None) != (new.ha is None):
        raise HaError("an ha: section cannot be added or removed by a reload; restart wanwatch")
    if new.ha is None:
        return
    probe = state_dir / (keepalived.CONF_FILE + ".check")
    probe.write_text(keepalived.render(new, state_dir), encoding="utf-8")
    try:
        await keepalived.check(probe)
    finally:
        probe.unlink(missing_ok=True)
