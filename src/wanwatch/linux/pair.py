"""The router pair at run time: keepalived and conntrackd supervised, fed, followed and stopped.

One truth for the role: keepalived's own sequence of transitions, read from its
notify FIFO (keepalived.py). :class:`Handover` keeps the newest role and what is
still owed to it (conntrackd's resyncs, dnsmasq started or stopped),
and one task runs those steps one at a time, so a transition that arrives while
an older one is being served drops the older one's remaining steps: dnsmasq
runs where the role is MASTER now, and ``status`` says what keepalived said last.

Readiness: the uplink count that keepalived tracks starts at "every uplink
down" and falls only once the engine has proven an uplink up *and* the kernel
holds the dataplane for it (:meth:`Pair.follow`), so a router that has just
started, or has no working uplink, never preempts one that carries the office.
A count that rises (an uplink lost) is written at once. The file is replaced
atomically: keepalived re-reads it on every inotify event.

conntrackd starts first, so that the first transition's commands find it. On
stop keepalived goes first: on SIGTERM it removes the shared addresses it added
(keepalived(8)) and its VRRP priority-0 advert hands the master role over at
once (RFC 5798 section 6.4.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wanwatch.engine.events import Event, event
from wanwatch.errors import HaError, SysctlError, WanwatchError
from wanwatch.linux import conntrackd, keepalived, sysctl
from wanwatch.linux.statefile import replace_file
from wanwatch.linux.supervisor import Program, Supervisor, config_test

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
CONTROL_TIMEOUT = 10.0  # one conntrackd -R/-n/...: a resync of a large table takes seconds
FIFO_READ = 65536  # a pipe's whole buffer (pipe(7))


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


def uplinks_down(uplinks: Iterable[WanStatus]) -> int:
    """Uplinks the engine has not proven up (unknown, down)."""
    return sum(1 for s in uplinks if s.state.value not in ("up", "degraded"))


@dataclass(frozen=True)
class Step:
    """One thing owed to a role: a conntrackd option, or dnsmasq ``start``/``stop``."""

    program: str  # conntrackd | dnsmasq
    action: str
    role: str | None
    turn: int  # the announcement it serves (1, 2, ...)


class Handover:
    """The sync group's role as keepalived announced it last, and the steps still owed to it.

    Pure: announcements go in (:meth:`announce`), steps come out one at a time
    (:meth:`next_step`), and the end of each goes back in (:meth:`done`). Only
    the newest role is served: a new announcement drops the older one's steps
    not yet started; dnsmasq is stopped first whenever the role is not MASTER
    and started last once it is (after conntrackd's resync and bulk update,
    which keep the peer ready to take the flows back).
    """

    def __init__(self) -> None:
        self.role: str | None = None  # None until keepalived has announced one
        self.turn = 0
        self.serving = False  # dnsmasq started and not stopped since
        self._todo: deque[str] = deque()
        self._reported = 0  # the last turn :meth:`served` returned

    def announce(self, role: str) -> tuple[str, ...] | None:
        """keepalived says the group is ``role`` now; the older steps dropped, None if no news."""
        if role == self.role:
            return None
        dropped = tuple(self._todo)
        self.role = role
        self.turn += 1
        self._todo = deque(conntrackd.steps(role))
        return dropped

    def next_step(self) -> Step | None:
        """The step to run now for the newest role, or None when it is served."""
        master = self.role == "MASTER"
        if self.serving and not master:
            return Step("dnsmasq", "stop", self.role, self.turn)
        if self._todo:
            return Step("conntrackd", self._todo.popleft(), self.role, self.turn)
        if master and not self.serving:
            return Step("dnsmasq", "start", self.role, self.turn)
        return None

    def done(self, step: Step) -> None:
        """``step`` has ended, a failure too (a failed dnsmasq start must still be stopped)."""
        if step.program == "dnsmasq":
            self.serving = step.action == "start"

    def served(self) -> int | None:
        """The newest turn, once, when nothing more is owed to it; else None."""
        if self._todo or self.serving != (self.role == "MASTER") or self.turn == self._reported:
            return None
        self._reported = self.turn
        return self.turn


class Pair:
    """keepalived and conntrackd for this router of a pair; dnsmasq follows the role."""

    def __init__(
        self,
        config: Config,
        dnsmasq: Dnsmasq,
        state_dir: Path,
        emit: Callable[[Event], None],
        now: Callable[[], float] = time.monotonic,
        *,
        keepalived_bin: str = "keepalived",
        conntrackd_bin: str = "/usr/sbin/conntrackd",
    ) -> None:
        self._config = config
        self._dnsmasq = dnsmasq
        self._state_dir = state_dir
        self._emit = emit
        self._now = now
        self._keepalived_bin = keepalived_bin
        self._conntrackd_bin = conntrackd_bin
        self.kfiles = keepalived.KeepalivedFiles.under(state_dir)
        self.cfiles = conntrackd.ConntrackdFiles.under(state_dir)
        self._down: int | None = None  # the count in the track file; None before the first
        self.handover = Handover()
        self._announced_at = 0.0
        self._news = asyncio.Event()
        self._fifo: int | None = None  # our end of keepalived's notify FIFO
        self._partial = b""
        self._runner: asyncio.Task[None] | None = None
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
                # Killed, it wrote no STOP: whatever it held, this router is master no more.
                on_exit=lambda: self._announce("STOP"),
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
        """Open the notify FIFO, then start conntrackd and keepalived; HaError if either fails."""
        self._state_dir.mkdir(parents=True, exist_ok=True)
        try:
            changes = sysctl.ensure_pair()
        except SysctlError as exc:
            raise HaError(str(exc)) from None
        for c in changes:
            self._emit(event(self._now(), "sysctl.set", key=c.key, old=c.old, new=c.new))
        self.listen()
        await self._start_children()

    def listen(self) -> None:
        """Open keepalived's notify FIFO and serve each role it announces, from now on."""
        self._open_fifo()
        self._runner = asyncio.create_task(self._serve())

    async def _start_children(self) -> None:
        cfg, d = self._config, self._state_dir
        self.cfiles.conf.write_text(conntrackd.render(cfg, d), encoding="utf-8")
        self.kfiles.conf.write_text(keepalived.render(cfg, d), encoding="utf-8")
        await keepalived.check(self.kfiles.conf, self._keepalived_bin)
        # Until the probes have spoken and the dataplane is applied, every uplink
        # counts as down: a router that has just started must not take the
        # master role from one that carries the office. A reload keeps the count.
        self._write_track(len(cfg.wans) if self._down is None else self._down)
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
        await self._start_children()

    async def follow(self, uplinks: Iterable[WanStatus], in_force: bool) -> None:
        """Tell keepalived how many uplinks are not up; a fall only once ``in_force``.

        ``in_force``: the kernel holds the dataplane the engine wants now. An
        uplink the engine has just proven up carries nothing until then, so it
        may not yet count for mastership; one that failed counts at once.
        """
        down = uplinks_down(uplinks)
        current = len(self._config.wans) if self._down is None else self._down
        if down < current and not in_force:
            return
        if down != self._down:
            self._write_track(down)

    def role(self) -> str | None:
        """MASTER, BACKUP, FAULT or STOP as keepalived last announced; None before that."""
        return self.handover.role

    async def stop(self) -> None:
        """Stop keepalived (it removes the shared addresses), then conntrackd; remove our files.

        dnsmasq is the LAN role's to stop (daemon/lan.py), after this.
        """
        await self._keepalived.halt()
        self._read_fifo()  # keepalived's last words: STOP
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.wait({runner})
        self._close_fifo()
        await self._conntrackd.halt()
        for path in (
            self.kfiles.conf,
            self.kfiles.pid,
            self.kfiles.vrrp_pid,
            self.kfiles.track,
            self.kfiles.fifo,
            self.cfiles.conf,
            self.cfiles.lock,
            self.cfiles.socket,
        ):
            path.unlink(missing_ok=True)

    def status(self) -> dict[str, object]:
        h = self.handover
        return {
            "role": h.role,
            "serving_dhcp": h.serving,
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

    # ------------------------------------------------------------------ internals

    def _write_track(self, count: int) -> None:
        replace_file(self.kfiles.track, f"{count}\n", 0o600)
        self._down = count
        self._emit(event(self._now(), "ha.track", uplinks_down=count))

    def _open_fifo(self) -> None:
        """A new FIFO for keepalived's notices (it opens an existing one: notify.c, fifo_open()).

        A fresh one each start: a stale keepalived still holds only the old one.
        Opened read-write, so that a writer always exists: between two runs of
        keepalived a read finds no data instead of end-of-file (fifo(7)).
        """
        path = self.kfiles.fifo
        path.unlink(missing_ok=True)
        try:
            os.mkfifo(path, 0o600)
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise HaError(f"{path}: cannot make keepalived's notify FIFO: {exc.strerror}") from None
        self._fifo = fd
        asyncio.get_running_loop().add_reader(fd, self._read_fifo)

    def _close_fifo(self) -> None:
        fd, self._fifo = self._fifo, None
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    def _read_fifo(self) -> None:
        """Every whole line keepalived has written; the sync group's roles announced in order."""
        if self._fifo is None:
            return
        data = self._partial
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self._fifo, FIFO_READ):
                data += chunk
        *lines, self._partial = data.split(b"\n")
        for raw in lines:
            notice = keepalived.read_notice(raw.decode(errors="replace"))
            role = None if notice is None else keepalived.group_role(notice)
            if role is not None:
                self._announce(role)

    def _announce(self, role: str) -> None:
        was = self.handover.role
        dropped = self.handover.announce(role)
        if dropped is None:
            return
        self._announced_at = self._now()
        self._emit(event(self._announced_at, "ha.role", role=role, was=was, dropped=len(dropped)))
        self._news.set()

    async def _serve(self) -> None:
        """Run the newest role's steps one at a time, for as long as the pair runs."""
        h = self.handover
        while True:
            await self._news.wait()
            self._news.clear()
            while (step := h.next_step()) is not None:
                await self._run(step)
                h.done(step)
            turn = h.served()
            if turn is not None:
                ms = round((self._now() - self._announced_at) * 1000, 1)
                self._emit(event(self._now(), "ha.served", role=h.role, turn=turn, ms=ms))

    async def _run(self, step: Step) -> None:
        """One step; a failure is an event (and the next transition tries afresh)."""
        try:
            if step.program == "dnsmasq":
                await (self._dnsmasq.start() if step.action == "start" else self._dnsmasq.stop())
            else:
                argv = conntrackd.control(self._conntrackd_bin, self.cfiles, step.action)
                what = f"conntrackd {step.action} (for {step.role})"
                await config_test(argv, what, HaError, CONTROL_TIMEOUT, conntrackd_words)
        except WanwatchError as exc:  # DHCP/DNS or the state handover degraded; the pair goes on
            name = "dnsmasq.failed" if step.program == "dnsmasq" else "conntrackd.failed"
            self._emit(event(self._now(), name, action=step.action, role=step.role, error=str(exc)))


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
