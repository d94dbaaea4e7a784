"""LAN services: DHCP and DNS for every LAN through one supervised dnsmasq.

Three layers, each callable alone (STYLE.md, point 3):

- :func:`render` - pure: config -> dnsmasq.conf text (golden-tested);
- :func:`check` - ``dnsmasq --test`` on a file, before it is ever used;
- :class:`Dnsmasq` - runs dnsmasq in the foreground as our child, turns its log
  into events, restarts it with bounded backoff, reloads it without ever
  leaving a rejected configuration in charge.

Everything dnsmasq touches lives in the state directory (namespaces share one
filesystem, LAB-NOTES): ``dnsmasq.conf``, ``dnsmasq.pid`` and
``dnsmasq.leases``. The lease file outlives dnsmasq and wanwatch restarts, so a
client renewing keeps its address.

dnsmasq does not run at all (:func:`idle_reason`) when there is no LAN, or when
no LAN has DHCP and ``dns.upstream`` is empty: a forwarder with nowhere to
forward would answer every query REFUSED, which is worse than not listening.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING

from wanwatch.engine.events import Event, FieldValue, event
from wanwatch.errors import DnsmasqError

if TYPE_CHECKING:
    from wanwatch.config import Config, Lan

# --------------------------------------------------------------------------- files and tunables

CONF_FILE = "dnsmasq.conf"
LEASE_FILE = "dnsmasq.leases"
PID_FILE = "dnsmasq.pid"

# Names cached by the forwarder. dnsmasq's default of 150 is sized for one host;
# an office of a few dozen clients browsing asks for thousands of names.
CACHE_SIZE = 1000

# Restart backoff: 0.2 s, 0.4 s, ... capped at 30 s; back to 0.2 s once a child
# has run STABLE_AFTER seconds. DHCP clients retransmit for tens of seconds
# (RFC 2131 section 4.1), so a quick first restart loses nobody.
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0

READY_TIMEOUT = 10.0  # from exec to dnsmasq's "started" line
STOP_GRACE = 5.0  # SIGTERM -> SIGKILL
TEST_TIMEOUT = 10.0  # dnsmasq --test
DRAIN_TIMEOUT = 1.0  # log lines after exit; forked TCP children may hold stderr open

# dnsmasq logs this once its sockets are bound (dnsmasq.c: after the listeners
# and the DHCP socket are created, before the main loop).
_STARTED = "started, version "


@dataclass(frozen=True)
class DnsmasqFiles:
    """Where dnsmasq's files live inside the state directory."""

    state_dir: Path
    conf: Path
    candidate: Path  # a new config waiting for `dnsmasq --test`
    leases: Path
    pid: Path

    @classmethod
    def under(cls, state_dir: Path) -> DnsmasqFiles:
        return cls(
            state_dir=state_dir,
            conf=state_dir / CONF_FILE,
            candidate=state_dir / (CONF_FILE + ".new"),
            leases=state_dir / LEASE_FILE,
            pid=state_dir / PID_FILE,
        )


# --------------------------------------------------------------------------- rendering


def idle_reason(config: Config) -> str | None:
    """Why dnsmasq has nothing to serve for ``config``, or None when it should run."""
    if not config.lans:
        return "no LAN"
    if not config.dns.upstream and all(lan.dhcp is None for lan in config.lans):
        return "no LAN has dhcp and dns.upstream is empty"
    return None


def lan_tag(lan: Lan) -> str:
    """The dnsmasq tag of a LAN's pool. Prefixed: "known" is a tag dnsmasq sets itself."""
    return f"lan-{lan.name}"


def render(config: Config, state_dir: Path) -> str:
    """The dnsmasq.conf for ``config``: pure text, no I/O.

    Raises DnsmasqError when the state directory cannot be written into
    dnsmasq's config syntax (a quote or whitespace in its path).
    """
    files = DnsmasqFiles.under(state_dir)
    for path in (files.pid, files.leases):
        if any(c == '"' or c.isspace() for c in str(path)):
            raise DnsmasqError(f"{path}: dnsmasq's config cannot name a path with quotes or spaces")
    out = [
        "# dnsmasq for wanwatch: generated, rewritten on every start and reload.",
        "# Run as: dnsmasq --keep-in-foreground --log-facility=- --conf-file=<this file>",
        "",
        "# Our files only, in the state directory (never /etc/dnsmasq.conf, /run).",
        f"pid-file={files.pid}",
        f"dhcp-leasefile={files.leases}",
        "",
        "# Serve the LANs only: never an uplink, never lo (a host resolver may own",
        "# 127.0.0.1:53). bind-dynamic binds each LAN address (several instances can",
        "# share a machine), follows addresses and interfaces that appear later, and",
        "# drops queries that arrive on any other interface, even when addressed to a",
        "# LAN address (bind-interfaces answered those in the lab).",
        "bind-dynamic",
        *(f"interface={lan.interface}" for lan in config.lans),
        "except-interface=lo",
        "",
        "# DNS: a caching forwarder to dns.upstream only, through whichever uplink",
        "# carries traffic (the main routing table). Never the host's resolv.conf or",
        "# /etc/hosts: the router's own names and resolvers are not the LAN's.",
        "no-resolv",
        "no-hosts",
        "domain-needed",
        "bogus-priv",
        f"cache-size={CACHE_SIZE}",
        *(f"server={server}" for server in config.dns.upstream),
    ]
    if config.dns.domain is not None:
        out += [
            "",
            "# DHCP clients' names resolve as NAME and NAME.DOMAIN; the domain is",
            "# answered here only, never asked upstream.",
            f"domain={config.dns.domain}",
            f"local=/{config.dns.domain}/",
        ]
    dhcp_lans = [lan for lan in config.lans if lan.dhcp is not None]
    if dhcp_lans:
        out += [
            "",
            "# DHCP. Authoritative: the only DHCP server on these LANs, so a client",
            "# renewing a lease we lost is answered instead of ignored. no-ping: the",
            "# ping before each offer makes the first lease take ~3 s (LAB-NOTES);",
            "# clients check the address themselves (RFC 2131 4.4.1, DHCPDECLINE).",
            "dhcp-authoritative",
            "no-ping",
            f"dhcp-lease-max={_lease_max(dhcp_lans)}",
        ]
    for lan in dhcp_lans:
        out += ["", *_render_lan(lan)]
    return "\n".join(out) + "\n"


def _render_lan(lan: Lan) -> list[str]:
    dhcp = lan.dhcp
    if dhcp is None:
        return []
    tag = lan_tag(lan)
    lo, hi = dhcp.range
    # Without a configured address the LAN uses whatever its interface has:
    # dnsmasq then takes the netmask from the interface, and 0.0.0.0 in an
    # option means "this server's address on that interface" (man dnsmasq).
    own = str(lan.address.ip) if lan.address is not None else "0.0.0.0"
    mask = f",{lan.address.netmask}" if lan.address is not None else ""
    dns = own if dhcp.dns is None else ",".join(str(a) for a in dhcp.dns)
    lines = [
        f"# LAN {lan.name} on {lan.interface}",
        f"dhcp-range=set:{tag},{lo},{hi}{mask},{int(dhcp.lease_time)}",
        f"dhcp-option=tag:{tag},option:router,{own}",
        # An empty list renders as an option without data: no DNS option is sent.
        f"dhcp-option=tag:{tag},option:dns-server" + (f",{dns}" if dns else ""),
    ]
    for s in dhcp.static:
        lines.append(f"dhcp-host={s.mac},{s.address}" + (f",{s.hostname}" if s.hostname else ""))
    return lines


def _lease_max(lans: list[Lan]) -> int:
    """Every pool address plus every static lease (dnsmasq's default cap is 1000)."""
    total = 0
    for lan in lans:
        if lan.dhcp is not None:
            lo, hi = lan.dhcp.range
            total += max(int(hi) - int(lo) + 1, 0) + len(lan.dhcp.static)
    return total


# --------------------------------------------------------------------------- validation


def command(binary: str, conf: Path) -> list[str]:
    """argv of the supervised dnsmasq: foreground, log to stderr, only our config file.

    Not ``--log-dhcp``: it adds ~20 lines per DHCP message (measured: 80 for one
    lease), which would flush the daemon's bounded event ring; the plain log
    already names every DISCOVER/OFFER/REQUEST/ACK with address, MAC and name.
    Not ``--log-async`` either: measured here, it does not stop dnsmasq from
    blocking on a full stderr pipe (DNS stopped answering after ~630 unread
    lines, with or without it), so the supervisor reads stderr without pause.
    """
    return [
        binary,
        "--keep-in-foreground",
        "--log-facility=-",
        f"--conf-file={conf}",
    ]


async def check(conf: Path, binary: str = "dnsmasq") -> None:
    """``dnsmasq --test`` on ``conf``; raise DnsmasqError with dnsmasq's own words."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *command(binary, conf),
            "--test",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        raise DnsmasqError(f"cannot run {binary}: {exc.strerror}") from None
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), TEST_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise DnsmasqError(f"{binary} --test did not finish in {TEST_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        lines = [_strip_prefix(s) for s in output.decode(errors="replace").splitlines()]
        message = "; ".join(s for s in lines if s) or f"exit code {proc.returncode}"
        raise DnsmasqError(f"dnsmasq rejected {conf}: {message}")


# --------------------------------------------------------------------------- log -> events

_PREFIX_RE = re.compile(r"^(dnsmasq(?:-[a-z]+)?)(?:\[\d+\])?: ")
_DHCP_RE = re.compile(
    r"^(?:(?P<xid>\d+) )?DHCP(?P<kind>[A-Z]+)\((?P<iface>[^)]*)\)\s*(?P<rest>.*)$"
)
_MAC_RE = re.compile(r"^[0-9a-f]{2}(?:[:-][0-9a-f]{2})+$", re.IGNORECASE)


def _strip_prefix(line: str) -> str:
    return _PREFIX_RE.sub("", line.strip(), count=1)


def log_event(line: str, config: Config, at: float) -> Event | None:
    """One dnsmasq log line as an event; None for a blank line.

    DHCP messages become ``dhcp.<message>`` (an ACK is ``dhcp.lease``) with the
    LAN, address, MAC and host name; anything else is ``dnsmasq.log msg=...``.
    """
    line = line.strip()
    if not line:
        return None
    m = _PREFIX_RE.match(line)
    source = m.group(1) if m else "dnsmasq"
    text = line[m.end() :] if m else line
    d = _DHCP_RE.match(text) if source == "dnsmasq-dhcp" else None
    if d is None:
        return event(at, "dnsmasq.log", source=source, msg=text)
    kind = d.group("kind").lower()
    words = d.group("rest").split()
    address = _ipv4(words[0]) if words else None
    if address is not None:
        words.pop(0)
    mac = words.pop(0).lower() if words and _MAC_RE.match(words[0]) else None
    rest = " ".join(words) or None
    iface = d.group("iface")
    lan = next((lan.name for lan in config.lans if lan.interface == iface), None)
    fields: dict[str, FieldValue] = {
        "lan": lan,
        "interface": iface,
        "address": address,
        "mac": mac,
    }
    # dnsmasq writes the client's name after an ACK, a reason after anything else.
    fields["hostname" if kind == "ack" else "detail"] = rest
    fields["xid"] = d.group("xid")
    return event(at, "dhcp.lease" if kind == "ack" else f"dhcp.{kind}", **fields)


def _ipv4(word: str) -> str | None:
    try:
        return str(IPv4Address(word))
    except AddressValueError:
        return None


# --------------------------------------------------------------------------- supervision


async def terminate(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM a child of ours by its PID, SIGKILL after STOP_GRACE; reap it.
    Also for the DHCP clients of uplinks (dhcp_client.py)."""
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


class _Child:
    """One dnsmasq process we started, and the task that reads its log."""

    def __init__(self, proc: asyncio.subprocess.Process, started_at: float) -> None:
        self.proc = proc
        self.started_at = started_at
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.last_line = "(no output)"
        self.reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def last_words(self) -> str:
        return _strip_prefix(self.last_line)


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
        self._child: _Child | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._restarts = 0
        self._last_error: str | None = None

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
            await self._halt()
            for path in (self._files.conf, self._files.candidate, self._files.pid):
                path.unlink(missing_ok=True)

    def status(self) -> dict[str, object]:
        child = self._child
        running = child is not None and child.proc.returncode is None
        return {
            "running": running,
            "pid": child.pid if running and child is not None else None,
            "restarts": self._restarts,
            "last_error": self._last_error,
            "idle": self._idle,
            "leases": str(self._files.leases),
        }

    # ------------------------------------------------------------------ internals

    def _emit(self, name: str, **fields: FieldValue) -> None:
        self._emit_event(event(self._now(), name, **fields))

    async def _apply(self, config: Config) -> None:
        reason = idle_reason(config)
        if reason is not None:
            await self._halt()
            self._files.conf.unlink(missing_ok=True)
            self._config, self._rendered, self._idle = config, None, reason
            self._emit("dnsmasq.idle", reason=reason)
            return
        text = render(config, self._files.state_dir)
        if text == self._rendered and self._supervisor is not None:
            self._config = config  # same dnsmasq.conf: nothing to restart
            return
        self._files.state_dir.mkdir(parents=True, exist_ok=True)
        self._files.candidate.write_text(text, encoding="utf-8")
        try:
            await check(self._files.candidate, self._binary)
        except DnsmasqError as exc:
            self._files.candidate.unlink(missing_ok=True)
            self._last_error = str(exc)
            self._emit("dnsmasq.reject", error=str(exc))
            raise
        previous = self._rendered
        await self._halt()
        await self._kill_stale()
        os.replace(self._files.candidate, self._files.conf)
        try:
            child = await self._start_child()
        except DnsmasqError as exc:
            self._last_error = str(exc)
            if previous is None:
                raise
            # It passed --test but will not run (say, an address it cannot bind):
            # put the previous config back under supervision before reporting.
            self._files.conf.write_text(previous, encoding="utf-8")
            self._emit("dnsmasq.rollback", error=str(exc))
            try:
                self._supervise_child(await self._spawn())
            except DnsmasqError as again:
                self._supervise_child(None)  # retried with backoff from here
                raise DnsmasqError(f"{exc}; restoring the previous one failed: {again}") from None
            raise DnsmasqError(f"{exc}; the previous configuration is serving again") from None
        was_running = previous is not None
        self._config, self._rendered, self._idle = config, text, None
        self._supervise_child(child)
        self._emit("dnsmasq.reload" if was_running else "dnsmasq.ready", pid=child.pid)

    def _supervise_child(self, child: _Child | None) -> None:
        self._supervisor = asyncio.create_task(self._supervise(child))
        self._supervisor.add_done_callback(self._supervisor_done)

    async def _spawn(self) -> _Child:
        try:
            proc = await asyncio.create_subprocess_exec(
                *command(self._binary, self._files.conf),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise DnsmasqError(f"cannot run {self._binary}: {exc.strerror}") from None
        child = _Child(proc, self._now())
        child.reader = asyncio.create_task(self._read_log(child))
        self._child = child
        self._emit("dnsmasq.start", pid=proc.pid, conf=str(self._files.conf))
        return child

    async def _start_child(self) -> _Child:
        """Spawn and wait until dnsmasq has bound its sockets, or raise DnsmasqError."""
        child = await self._spawn()
        try:
            ready = await asyncio.wait_for(asyncio.shield(child.ready), READY_TIMEOUT)
        except TimeoutError:
            await self._terminate(child)
            self._child = None
            raise DnsmasqError(f"dnsmasq was not ready within {READY_TIMEOUT:g} s") from None
        if not ready:
            code = await child.proc.wait()
            await self._drain(child)
            self._child = None
            raise DnsmasqError(f"dnsmasq exited with code {code}: {child.last_words()}")
        return child

    async def _read_log(self, child: _Child) -> None:
        stream = child.proc.stderr
        if stream is None:  # pragma: no cover - we always ask for a pipe
            raise DnsmasqError("dnsmasq was started without a stderr pipe")
        try:
            while raw := await stream.readline():
                line = raw.decode(errors="replace").strip()
                if not line:
                    continue
                child.last_line = line
                if not child.ready.done() and _STARTED in line:
                    child.ready.set_result(True)
                ev = log_event(line, self._config, self._now())
                if ev is None:
                    continue
                try:
                    self._emit_event(ev)
                except Exception as exc:  # noqa: BLE001
                    # Whatever the callback does, keep draining: dnsmasq blocks,
                    # DHCP and DNS included, once its stderr pipe is full.
                    self._last_error = f"event callback failed: {exc!r}"
        finally:
            if not child.ready.done():
                child.ready.set_result(False)

    async def _drain(self, child: _Child) -> None:
        """Let the reader finish the exited child's last lines, within DRAIN_TIMEOUT."""
        if child.reader is None:
            return
        await asyncio.wait({child.reader}, timeout=DRAIN_TIMEOUT)
        if not child.reader.done():
            child.reader.cancel()
            await asyncio.wait({child.reader})

    async def _terminate(self, child: _Child) -> None:
        """SIGTERM our child by its PID, SIGKILL after STOP_GRACE; reap it."""
        await terminate(child.proc)
        await self._drain(child)

    async def _halt(self) -> None:
        """Stop supervising and stop the child, if any."""
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        child, self._child = self._child, None
        if child is not None:
            await self._terminate(child)
            self._emit("dnsmasq.stop", pid=child.pid, code=child.proc.returncode)

    async def _supervise(self, child: _Child | None) -> None:
        """Wait for the child to die; restart it with bounded exponential backoff."""
        attempt = 0
        while True:
            if child is not None:
                code = await child.proc.wait()
                await self._drain(child)
                ran = self._now() - child.started_at
                self._last_error = f"dnsmasq exited with code {code}: {child.last_words()}"
                self._emit(
                    "dnsmasq.exit",
                    pid=child.pid,
                    code=code,
                    signal=_signal_name(code),
                    ran_ms=round(ran * 1000),
                    last=child.last_words(),
                )
                if ran >= STABLE_AFTER:
                    attempt = 0
            attempt += 1
            delay = backoff(attempt)
            self._restarts += 1
            self._emit("dnsmasq.restart", attempt=attempt, delay_ms=round(delay * 1000))
            await asyncio.sleep(delay)
            try:
                child = await self._spawn()
            except DnsmasqError as exc:
                child = None
                self._last_error = str(exc)
                self._emit("dnsmasq.error", error=str(exc))

    def _supervisor_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._last_error = f"supervisor failed: {exc!r}"
            self._emit("dnsmasq.error", error=self._last_error)

    async def _kill_stale(self) -> None:
        """Stop a dnsmasq left running on our config by a wanwatch that died.

        Only a process whose command line names our own config file is touched,
        so another dnsmasq on the machine is never hit.
        """
        try:
            pid = int(self._files.pid.read_text(encoding="ascii").strip())
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            self._files.pid.unlink(missing_ok=True)
            return
        if not _runs_our_conf(pid, self._files.conf):
            return
        self._emit("dnsmasq.stale", pid=pid)
        # It may exit on its own between the check and the signal.
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while _runs_our_conf(pid, self._files.conf):
            if time.monotonic() > deadline:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            await asyncio.sleep(0.02)
        self._files.pid.unlink(missing_ok=True)


def _signal_name(code: int) -> str | None:
    """``SIGKILL`` for an exit code of -9 (asyncio's "killed by signal 9")."""
    if code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _runs_our_conf(pid: int, conf: Path) -> bool:
    """True while ``pid`` is a live (not zombie) process started with ``--conf-file=conf``."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    state = stat[stat.rfind(")") + 2 :].split()[:1]
    return state not in (["Z"], ["X"]) and f"--conf-file={conf}".encode() in argv
