"""DHCP on an uplink (``address: dhcp``): one supervised busybox udhcpc per uplink.

udhcpc runs in the foreground (``-f``) as our child, on the uplink's interface
only, with *our* event script (``-s``). The script changes nothing on the
machine -- not an address, not the main routing table, not resolv.conf; it
prints the lease as one line on udhcpc's stdout (the script inherits it, and
udhcpc itself logs to stderr), which the daemon reads in order. The daemon
applies the lease through the backend like any other desired state.

busybox udhcpc runs the script with ``$1`` one of (networking/udhcp/dhcpc.c,
and the udhcpc section of busybox(1)): ``deconfig`` (at start, and when a
lease is lost: NAK, expiry), ``bound`` / ``renew`` (a lease, in the variables
``ip``, ``mask``, ``router``, ``dns``, ``lease``, ``serverid``),
``leasefail`` (no answer) and ``nak``.

Supervision is the generic one (supervisor.py): foreground child, its output
turned into events, restarts with bounded exponential backoff.

After a carrier flap the lease is re-verified at once (:meth:`DhcpClient.reverify`),
as RFC 2131 3.2 asks of a client that may have moved ("INIT-REBOOT") and as dhcpcd
and systemd-networkd do on carrier up: a modem that rebooted may hand out another
address, which udhcpc itself would only learn at its renewal (T1, half the lease).
What busybox 1.35.0 udhcpc does on SIGUSR1 (networking/udhcp/dhcpc.c, ``case
SIGUSR1`` and ``got_SIGUSR1``): from BOUND or RENEWING one unicast REQUEST for the
held address to the lease's server (from INIT_SELECTING, REQUESTING or REBINDING
the signal is ignored). Then one of three:

- an ACK: ``renew``, the same lease; its address and routes never left;
- a NAK: ``nak``, ``deconfig``, then ``sleep(3)`` before its DISCOVER ("avoid
  excessive network traffic"). A NAK answering our re-verify restarts udhcpc at
  once instead, whose DISCOVER goes out at start (the new lease 0.2-0.7 s after
  the NAK in the lab, bench/dhcp_flap.py, instead of 3 s more). Only that NAK:
  one restart per carrier return, while udhcpc's own NAKs keep its pause;
- no answer within ``-T``: the signal capped the lease to 30 s, so udhcpc
  rebinds (three broadcast REQUESTs, ``-T`` apart) and then runs ``deconfig``
  ("lease lost", 3.5-4.2 s after carrier up in the lab) and discovers again. That is
  no verdict of the server: the lease is kept until its own end, as RFC 2131
  3.2 allows a client that heard neither ACK nor NAK ("MAY choose to use the
  previously allocated network address ... for the remainder of the unexpired
  lease"), while udhcpc's DISCOVERs (asking for the same address) go on; a
  modem whose DHCP server is slower to return than its data path keeps a
  working uplink.

Not a restart on every flap (``-r <address>``, closer to INIT-REBOOT): a start
runs ``deconfig`` first and our ``-R`` releases the lease on the way out, so a
flap that kept the address would drop it and its routes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Generic, TypeVar

from wanwatch.engine.events import Event, FieldValue, event
from wanwatch.linux.statefile import replace_file
from wanwatch.linux.supervisor import Program, Supervisor

SCRIPT_FILE = "udhcpc-script"
MARK = "wanwatch-lease"

L = TypeVar("L")

# Discover 3 times, 1 s apart, then wait 2 s and start over (udhcpc -t, -T, -A):
# an ISP that stops answering is retried for ever, a returning one found in ~3 s.
DISCOVER_TRIES = 3
DISCOVER_TIMEOUT = 1
RETRY_AFTER = 2

# Prints the lease as tab-separated fields; the values are addresses and numbers
# that udhcpc formats itself, so no quoting is needed.
SCRIPT = f"""#!/bin/sh
# wanwatch's udhcpc script: hands the lease to the daemon on stdout, changes nothing.
printf '{MARK}\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' \\
    "$1" "$ip" "$mask" "$router" "$dns" "$lease" "$serverid"
"""


@dataclass(frozen=True)
class Lease:
    """What a DHCP server gave an uplink."""

    address: IPv4Interface
    router: IPv4Address | None  # the first router option (RFC 2132 3.5)
    dns: tuple[IPv4Address, ...]
    lease_s: int
    server: IPv4Address | None
    bound_at: float  # monotonic

    def to_json(self, now: float) -> dict[str, FieldValue]:
        return {
            "address": str(self.address),
            "router": str(self.router) if self.router else None,
            "dns": ",".join(str(d) for d in self.dns) or None,
            "lease_s": self.lease_s,
            "server": str(self.server) if self.server else None,
            "age_s": round(now - self.bound_at, 1),
        }


def parse_line(line: str, now: float) -> tuple[str, Lease | None] | None:
    """One line of udhcpc's stdout: (event, lease or None); None if it is not our script's."""
    parts = line.rstrip("\n").split("\t")
    if parts[0] != MARK or len(parts) > 8:
        return None
    parts += [""] * (8 - len(parts))  # empty trailing fields may have been stripped
    _, kind, ip, mask, router, dns, lease_s, server = parts
    if kind not in ("bound", "renew") or not ip:
        return kind, None
    try:
        address = IPv4Interface(f"{ip}/{mask or 32}")
        routers = [IPv4Address(r) for r in router.split()]
        servers = tuple(IPv4Address(d) for d in dns.split())
        return kind, Lease(
            address=address,
            router=routers[0] if routers else None,
            dns=servers,
            lease_s=int(lease_s or 0),
            server=IPv4Address(server) if server else None,
            bound_at=now,
        )
    except ValueError:
        return "malformed", None


def command(ifname: str, script: Path, pid_file: Path) -> list[str]:
    """argv of one uplink's udhcpc: foreground, our script, that interface only."""
    return [
        "busybox",
        "udhcpc",
        "-f",
        "-i",
        ifname,
        "-s",
        str(script),
        "-p",
        str(pid_file),
        "-t",
        str(DISCOVER_TRIES),
        "-T",
        str(DISCOVER_TIMEOUT),
        "-A",
        str(RETRY_AFTER),
        "-R",  # release the lease when we stop it (SIGTERM)
    ]


OnLease = Callable[[str, Lease | None, str], None]  # (wan, lease or None when lost, why)


class LeaseClient(Generic[L]):
    """One uplink's supervised DHCP client holding at most one lease of type ``L``.

    The process is run by a :class:`Supervisor` (start, log, restart with backoff,
    stop by PID, and a copy a killed wanwatch left behind found by its pid file);
    the client's stdout (our script's lines) and stderr (its log) are read as one
    stream. A subclass turns each line into events and lease changes (:meth:`_line`),
    calling :meth:`_gain` and :meth:`_lose`; ``on_change`` hears every lease gained,
    changed or lost.
    """

    name = "dhcp_client"  # the program's name: the prefix of its events

    def __init__(
        self,
        wan: str,
        ifname: str,
        argv: list[str],
        pid_file: Path,
        marker: str,
        *,
        emit: Callable[[Event], None],
        on_change: Callable[[str, L | None, str], None],
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wan = wan
        self.ifname = ifname
        self._emit_event = emit
        self._on_change = on_change
        self._now = now
        self.lease: L | None = None
        self._supervisor = Supervisor(
            Program(
                name=self.name,
                argv=tuple(argv),
                marker=marker,
                pid_file=pid_file,
                ready=lambda _line: True,  # never waited for: no client has a "ready" line
                log_event=self._line,
                fields={"wan": wan},
                start_fields={"interface": ifname},
                merge_stdout=True,
                on_exit=lambda: self._lose("client exited"),
            ),
            emit,
            now,
        )
        self._starting: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._starting is not None or self._supervisor.supervising

    def supervision(self) -> dict[str, FieldValue]:
        """The ``dhcp_client`` fields of ``wanwatch status``."""
        s = self._supervisor
        return {
            "running": self.running,
            "pid": s.pid,
            "restarts": s.restarts,
            "last_error": s.last_error,
        }

    def start(self) -> None:
        """Start supervising (idempotent)."""
        if not self.running:
            self._starting = asyncio.create_task(self._supervisor.keep_running())
            self._starting.add_done_callback(self._started)

    async def stop(self, why: str = "stopped") -> None:
        """Stop the client (by its PID: SIGTERM, SIGKILL after a grace); the lease is gone."""
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.cancel()
            await asyncio.wait({starting})
        await self._supervisor.halt()
        self._lose(why)

    # ------------------------------------------------------------------ internals

    def _started(self, task: asyncio.Task[None]) -> None:
        if self._starting is task:
            self._starting = None

    def _emit(self, name: str, **fields: FieldValue) -> None:
        self._emit_event(event(self._now(), f"{self.name}.{name}", wan=self.wan, **fields))

    def _gain(self, lease: L, changed: bool, why: str) -> None:
        self.lease = lease
        if changed:
            self._on_change(self.wan, lease, why)

    def _lose(self, why: str) -> None:
        if self.lease is not None:
            self.lease = None
            self._emit("lost", reason=why)
            self._on_change(self.wan, None, why)

    def _line(self, line: str, now: float) -> None:
        raise NotImplementedError


class DhcpClient(LeaseClient[Lease]):
    """One uplink's supervised udhcpc; ``on_lease`` hears every lease gained, changed or lost."""

    def __init__(
        self,
        wan: str,
        ifname: str,
        state_dir: Path,
        *,
        emit: Callable[[Event], None],
        on_lease: OnLease,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        pid_file = state_dir / f"udhcpc-{wan}.pid"
        argv = command(ifname, state_dir / SCRIPT_FILE, pid_file)
        super().__init__(
            wan, ifname, argv, pid_file, str(pid_file), emit=emit, on_change=on_lease, now=now
        )
        self._reverifying = False  # a re-verify asked, not yet answered
        self._restarting: asyncio.Task[None] | None = None  # held: asyncio keeps weak refs
        self._expiry: asyncio.TimerHandle | None = None  # the end of a lease udhcpc gave up

    async def stop(self, why: str = "stopped") -> None:
        restarting = self._restarting
        if restarting is not None and restarting is not asyncio.current_task():
            # Let a restart finish rather than cancel its halt half-way; what it
            # started is stopped below.
            await asyncio.wait({restarting})
        await super().stop(why)

    def reverify(self) -> bool:
        """Carrier came back: have udhcpc confirm the lease it holds now (SIGUSR1); whether asked.

        Nothing to confirm without a lease: a client still discovering is answered as
        soon as the link carries its next DISCOVER (``-t``/``-T``/``-A`` above).
        """
        pid = self._supervisor.pid
        if self.lease is None or pid is None:
            return False
        try:
            os.kill(pid, signal.SIGUSR1)  # our child, by its PID
        except ProcessLookupError:
            return False  # it has just exited: the supervisor restarts it, which discovers
        self._reverifying = True
        self._emit("reverify", address=str(self.lease.address))
        return True

    def _line(self, line: str, now: float) -> None:
        """One line of udhcpc's output: our script's (a lease event) or its log."""
        parsed = parse_line(line, now)
        if parsed is None:
            self._emit("log", msg=line)
            return
        kind, lease = parsed
        reverifying, self._reverifying = self._reverifying, False
        if lease is not None:
            self._end_keep()  # the server answered: its lease now, not one we keep
            old = self.lease
            self._emit(kind, **lease.to_json(lease.bound_at))
            changed = old is None or (old.address, old.router) != (lease.address, lease.router)
            self._gain(lease, changed, kind)
        elif kind == "nak":
            self._emit("nak")
            if reverifying:
                self._restart()
            elif self._expiry is not None:
                self._lose("nak")  # RFC 2131 3.2 keeps a lease only while neither ACK nor NAK
        elif kind == "deconfig":
            if reverifying and self.lease is not None:
                self._keep(self.lease)
            else:
                self._lose("deconfig")
        elif kind in ("leasefail", "malformed"):
            self._emit(kind)

    def _lose(self, why: str) -> None:
        self._end_keep()
        super()._lose(why)

    def _keep(self, lease: Lease) -> None:
        """udhcpc gave up a lease nobody answered for: keep it until it ends (RFC 2131 3.2)."""
        self._end_keep()  # kept again (a second flap): one end, not two timers
        left = max(0.0, lease.bound_at + lease.lease_s - self._now())
        self._emit("kept", address=str(lease.address), left_s=round(left, 1))
        self._expiry = asyncio.get_running_loop().call_later(left, self._lose, "expired")

    def _end_keep(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _restart(self) -> None:
        """Stop udhcpc and start another now (its own DISCOVER would wait 3 s after a NAK)."""
        if self._restarting is None:
            self._restarting = asyncio.create_task(self._restarted())

    async def _restarted(self) -> None:
        try:
            await self.stop("nak")
            self.start()
        finally:
            self._restarting = None


def write_script(state_dir: Path) -> Path:
    """Our udhcpc script in the state directory (atomically, executable)."""
    path = state_dir / SCRIPT_FILE
    replace_file(path, SCRIPT, 0o755)
    return path
