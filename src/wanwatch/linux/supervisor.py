"""Supervised children: one program in the foreground, its log read, its respawn bounded.

The generic half of running a daemon as our child, shared by dnsmasq, keepalived,
conntrackd and the uplinks' DHCP clients. A :class:`Program` says how to run one
and how to read its log; a :class:`Supervisor` starts it, waits until it says it
is ready, turns every log line into an event, restarts it with exponential
backoff when it dies, stops it by its PID, and stops a stale copy a killed
wanwatch left behind (only one whose command line names our own file).

Events are ``<name>.start/exit/restart/stop/stale/error`` with the program's name.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from wanwatch.engine.events import Event, FieldValue, event
from wanwatch.errors import WanwatchError

# Restart backoff: 0.2 s, 0.4 s, ... capped at 30 s; back to 0.2 s once a child
# has run STABLE_AFTER seconds. DHCP clients retransmit for tens of seconds
# (RFC 2131 section 4.1), and a VRRP peer takes over within its master-down
# interval (RFC 5798 section 6.1), so a quick first restart loses nobody.
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0

READY_TIMEOUT = 10.0  # from exec to the program's "ready" line
STOP_GRACE = 5.0  # SIGTERM -> SIGKILL
DRAIN_TIMEOUT = 1.0  # log lines after exit; forked children may hold stderr open


async def config_test(
    argv: Sequence[str],
    rejected: str,
    error: type[WanwatchError],
    timeout: float,
    words: Callable[[str], str] = str.strip,
) -> None:
    """Run a program's own config test (``argv``); raise ``error`` unless it exits 0.

    The message is ``rejected`` followed by the program's own words (each output
    line through ``words``).
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        raise error(f"cannot run {argv[0]}: {exc.strerror}") from None
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise error(f"{argv[0]} {argv[-1]} did not finish in {timeout:g} s") from None
    if proc.returncode != 0:
        lines = [words(s) for s in output.decode(errors="replace").splitlines()]
        message = "; ".join(s for s in lines if s) or f"exit code {proc.returncode}"
        raise error(f"{rejected}: {message}")


async def terminate(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM a child of ours by its PID, SIGKILL after STOP_GRACE; reap it.

    Also for children supervised elsewhere (the uplinks' DHCP clients).
    """
    if proc.returncode is not None:
        return
    # ProcessLookupError: it died on its own and is not reaped yet.
    with suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), STOP_GRACE)
    except TimeoutError:
        with suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def backoff(attempt: int) -> float:
    """Seconds before restart number ``attempt`` (1-based) of a crash series."""
    return float(min(BACKOFF_FIRST * 2 ** (attempt - 1), BACKOFF_MAX))


@dataclass(frozen=True)
class Program:
    """How to run one supervised program and read its log."""

    name: str  # event prefix and the name in messages
    argv: tuple[str, ...]
    marker: str  # an argv element naming our instance (our config file)
    # Where the program writes its PID, to find a stale copy by; None: look for
    # one by its command line.
    pid_file: Path | None
    ready: Callable[[str], bool]  # this log line says the program is serving
    log_event: Callable[[str, float], Event | None]  # a log line as an event
    last_words: Callable[[str], str] = str.strip  # a log line as an error message
    error: type[WanwatchError] = WanwatchError
    start_fields: dict[str, FieldValue] = field(default_factory=dict)
    fields: dict[str, FieldValue] = field(default_factory=dict)  # on every event of ours
    on_exit: Callable[[], None] | None = None  # after each exit, before the restart
    merge_stdout: bool = False  # read stdout and stderr (programs that log to stdout)
    # Left behind by a killed copy and refused at start (conntrackd's lock file):
    # removed before each start, once no copy of ours runs.
    leftovers: tuple[Path, ...] = ()


class Child:
    """One process we started, and the task that reads its log."""

    def __init__(self, proc: asyncio.subprocess.Process, started_at: float) -> None:
        self.proc = proc
        self.started_at = started_at
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.last_line = "(no output)"
        self.reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid


class Supervisor:
    """Runs one :class:`Program` as our child and keeps it running.

    ``emit`` receives every event; ``now`` is the monotonic clock used for event
    times and for judging whether a child ran stably. ``last_error`` is the last
    thing that went wrong (the owner may set it too).
    """

    def __init__(
        self,
        program: Program,
        emit: Callable[[Event], None],
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.program = program
        self._emit_event = emit
        self._now = now
        self._child: Child | None = None
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0
        self.last_error: str | None = None

    @property
    def supervising(self) -> bool:
        return self._task is not None

    @property
    def pid(self) -> int | None:
        """PID of the running child, or None."""
        child = self._child
        return child.pid if child is not None and child.proc.returncode is None else None

    async def start(self) -> None:
        """Start the program, wait until ready, supervise it; raise program.error if it fails."""
        await self.kill_stale()
        self.supervise(await self.start_child())

    async def keep_running(self) -> None:
        """Start the program and supervise it, without waiting for it to be ready: a
        failure to start is an event and a retry after the backoff, never an exception."""
        await self.kill_stale()
        try:
            child: Child | None = await self.spawn()
        except WanwatchError as exc:
            child = None
            self._failed(exc)
        self.supervise(child)

    def supervise(self, child: Child | None) -> None:
        """Watch ``child`` (None: start one after the first backoff) until halt()."""
        self._task = asyncio.create_task(self._supervise(child))
        self._task.add_done_callback(self._supervisor_done)

    async def spawn(self) -> Child:
        p = self.program
        for path in p.leftovers:
            path.unlink(missing_ok=True)
        try:
            proc = await asyncio.create_subprocess_exec(
                *p.argv,
                stdin=asyncio.subprocess.DEVNULL,
                # merged: stderr into the stdout pipe, read as one log
                stdout=asyncio.subprocess.PIPE if p.merge_stdout else asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.STDOUT if p.merge_stdout else asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise p.error(f"cannot run {p.argv[0]}: {exc.strerror}") from None
        child = Child(proc, self._now())
        child.reader = asyncio.create_task(self._read_log(child))
        self._child = child
        self._emit("start", pid=proc.pid, **p.start_fields)
        return child

    async def start_child(self) -> Child:
        """Spawn and wait until the program says it is ready, or raise program.error."""
        p = self.program
        child = await self.spawn()
        try:
            ready = await asyncio.wait_for(asyncio.shield(child.ready), READY_TIMEOUT)
        except TimeoutError:
            await self._terminate(child)
            self._child = None
            raise p.error(f"{p.name} was not ready within {READY_TIMEOUT:g} s") from None
        if not ready:
            code = await child.proc.wait()
            await self._drain(child)
            self._child = None
            raise p.error(f"{p.name} exited with code {code}: {self._last_words(child)}")
        return child

    async def halt(self) -> None:
        """Stop supervising and stop the child, if any."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        child, self._child = self._child, None
        if child is not None:
            await self._terminate(child)
            self._emit("stop", pid=child.pid, code=child.proc.returncode)

    async def kill_stale(self) -> None:
        """Stop a copy left running on our config by a wanwatch that died.

        Only a process whose command line names our own config file is touched,
        so another instance of the program on the machine is never hit.
        """
        for pid in self._stale_pids():
            self._emit("stale", pid=pid)
            # It may exit on its own between the check and the signal.
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE
            while self._runs_ours(pid):
                if time.monotonic() > deadline:
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    break
                await asyncio.sleep(0.02)
            if self.program.pid_file is not None:
                self.program.pid_file.unlink(missing_ok=True)

    def _stale_pids(self) -> list[int]:
        """Our program's PIDs not started by us: from its pid file, or by command line."""
        pid_file = self.program.pid_file
        if pid_file is None:
            candidates = [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit()]
        else:
            try:
                candidates = [int(pid_file.read_text(encoding="ascii").strip())]
            except FileNotFoundError:
                return []
            except (OSError, ValueError):
                pid_file.unlink(missing_ok=True)
                return []
        return [pid for pid in candidates if pid != self.pid and self._runs_ours(pid)]

    # ------------------------------------------------------------------ internals

    def _emit(self, what: str, **fields: FieldValue) -> None:
        p = self.program
        self._emit_event(event(self._now(), f"{p.name}.{what}", **p.fields, **fields))

    def _failed(self, exc: WanwatchError) -> None:
        self.last_error = str(exc)
        self._emit("error", error=str(exc))

    def _last_words(self, child: Child) -> str:
        return self.program.last_words(child.last_line)

    async def _read_log(self, child: Child) -> None:
        stream = child.proc.stdout if self.program.merge_stdout else child.proc.stderr
        if stream is None:  # pragma: no cover - we always ask for a pipe
            raise self.program.error(f"{self.program.name} was started without a log pipe")
        try:
            while raw := await stream.readline():
                line = raw.decode(errors="replace").strip()
                if not line:
                    continue
                child.last_line = line
                if not child.ready.done() and self.program.ready(line):
                    child.ready.set_result(True)
                try:
                    ev = self.program.log_event(line, self._now())
                    if ev is not None:
                        self._emit_event(ev)
                except Exception as exc:  # noqa: BLE001
                    # Whatever the callbacks do, keep draining: a program blocks
                    # (dnsmasq's DHCP and DNS included) once its stderr pipe is full.
                    self.last_error = f"event callback failed: {exc!r}"
        finally:
            if not child.ready.done():
                child.ready.set_result(False)

    async def _drain(self, child: Child) -> None:
        """Let the reader finish the exited child's last lines, within DRAIN_TIMEOUT."""
        if child.reader is None:
            return
        await asyncio.wait({child.reader}, timeout=DRAIN_TIMEOUT)
        if not child.reader.done():
            child.reader.cancel()
            await asyncio.wait({child.reader})

    async def _terminate(self, child: Child) -> None:
        await terminate(child.proc)
        await self._drain(child)

    async def _supervise(self, child: Child | None) -> None:
        """Wait for the child to die; restart it with bounded exponential backoff."""
        name = self.program.name
        attempt = 0
        while True:
            if child is not None:
                code = await child.proc.wait()
                await self._drain(child)
                ran = self._now() - child.started_at
                self.last_error = f"{name} exited with code {code}: {self._last_words(child)}"
                self._emit(
                    "exit",
                    pid=child.pid,
                    code=code,
                    signal=_signal_name(code),
                    ran_ms=round(ran * 1000),
                    last=self._last_words(child),
                )
                if self.program.on_exit is not None:
                    self.program.on_exit()
                if ran >= STABLE_AFTER:
                    attempt = 0
            attempt += 1
            delay = backoff(attempt)
            self.restarts += 1
            self._emit("restart", attempt=attempt, delay_ms=round(delay * 1000))
            await asyncio.sleep(delay)
            try:
                child = await self.spawn()
            except WanwatchError as exc:
                child = None
                self._failed(exc)

    def _supervisor_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.last_error = f"supervisor failed: {exc!r}"
            self._emit("error", error=self.last_error)

    def _runs_ours(self, pid: int) -> bool:
        """True while ``pid`` is a live (not zombie) process started with our marker."""
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            return False
        state = stat[stat.rfind(")") + 2 :].split()[:1]
        return state not in (["Z"], ["X"]) and self.program.marker.encode() in argv


def _signal_name(code: int) -> str | None:
    """``SIGKILL`` for an exit code of -9 (asyncio's "killed by signal 9")."""
    if code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"
