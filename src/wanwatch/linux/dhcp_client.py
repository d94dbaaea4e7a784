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

Supervision follows the dnsmasq supervisor (dnsmasq.py): foreground child,
stderr turned into events, restarts with its bounded exponential backoff.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from wanwatch.engine.events import Event, FieldValue, event
from wanwatch.linux.supervisor import STABLE_AFTER, backoff, terminate

SCRIPT_FILE = "udhcpc-script"
MARK = "wanwatch-lease"

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
    if len(parts) != 8 or parts[0] != MARK:
        return None
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


def command(ifname: str, script: Path) -> list[str]:
    """argv of one uplink's udhcpc: foreground, our script, that interface only."""
    return [
        "busybox",
        "udhcpc",
        "-f",
        "-i",
        ifname,
        "-s",
        str(script),
        "-t",
        str(DISCOVER_TRIES),
        "-T",
        str(DISCOVER_TIMEOUT),
        "-A",
        str(RETRY_AFTER),
        "-R",  # release the lease when we stop it (SIGTERM)
    ]


OnLease = Callable[[str, Lease | None, str], None]  # (wan, lease or None when lost, why)


class DhcpClient:
    """One uplink's supervised udhcpc; ``on_lease`` hears every lease gained, changed or lost."""

    def __init__(
        self,
        wan: str,
        ifname: str,
        script: Path,
        *,
        emit: Callable[[Event], None],
        on_lease: OnLease,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wan = wan
        self.ifname = ifname
        self._script = script
        self._emit_event = emit
        self._on_lease = on_lease
        self._now = now
        self.lease: Lease | None = None
        self.restarts = 0
        self.last_error: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def start(self) -> None:
        """Start supervising (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise())

    async def stop(self, why: str = "stopped") -> None:
        """Stop udhcpc (by its PID: SIGTERM, SIGKILL after a grace); the lease is gone."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        await self._terminate()
        self._lose(why)

    # ------------------------------------------------------------------ internals

    def _emit(self, name: str, **fields: FieldValue) -> None:
        self._emit_event(event(self._now(), name, wan=self.wan, **fields))

    def _lose(self, why: str) -> None:
        if self.lease is not None:
            self.lease = None
            self._emit("dhcp_client.lost", reason=why)
            self._on_lease(self.wan, None, why)

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            started = self._now()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *command(self.ifname, self._script),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            except OSError as exc:
                self.last_error = f"cannot run busybox udhcpc: {exc.strerror}"
                self._emit("dhcp_client.error", error=self.last_error)
            else:
                self._proc = proc
                self._emit("dhcp_client.start", pid=proc.pid, interface=self.ifname)
                code = await self._follow(proc)
                self.last_error = f"udhcpc exited with code {code}"
                self._emit("dhcp_client.exit", pid=proc.pid, code=code)
            self._lose("client exited")
            attempt = 1 if self._now() - started >= STABLE_AFTER else attempt + 1
            self.restarts += 1
            await asyncio.sleep(backoff(attempt))

    async def _follow(self, proc: asyncio.subprocess.Process) -> int:
        """Read the script's lines (stdout) and udhcpc's log (stderr) until it exits."""
        assert proc.stdout is not None and proc.stderr is not None  # asked for PIPEs
        log = asyncio.create_task(self._log(proc.stderr))
        try:
            while raw := await proc.stdout.readline():
                self._line(raw.decode(errors="replace"))
            return await proc.wait()
        finally:
            await asyncio.wait({log}, timeout=1.0)
            log.cancel()

    async def _log(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            if text := raw.decode(errors="replace").strip():
                self._emit("dhcp_client.log", msg=text)

    def _line(self, line: str) -> None:
        parsed = parse_line(line, self._now())
        if parsed is None:
            return
        kind, lease = parsed
        if lease is not None:
            old, self.lease = self.lease, lease
            self._emit("dhcp_client." + kind, **lease.to_json(lease.bound_at))
            if old is None or (old.address, old.router) != (lease.address, lease.router):
                self._on_lease(self.wan, lease, kind)
        elif kind == "deconfig":
            self._lose("deconfig")
        elif kind in ("leasefail", "nak", "malformed"):
            self._emit("dhcp_client." + kind)

    async def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            await terminate(proc)


def write_script(state_dir: Path) -> Path:
    """Our udhcpc script in the state directory (atomically, executable)."""
    path = state_dir / SCRIPT_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(SCRIPT, encoding="utf-8")
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path
