"""The probe hub: every probe of the daemon, each pinned to its uplink, on asyncio.

The daemon hands it requests (uplink, target, seq) and gets a callback per
answer; the engine owns every timeout, so a probe that gets no answer is simply
never reported. How a target is asked follows its method:

- ``icmp``: one raw socket per uplink, kept open and read with
  ``loop.add_reader`` (icmp.py);
- ``tcp``, ``http``, ``dns``: one task per probe with a socket of its own,
  pinned the same way (pin.py), bounded in time (PROBE_LIMIT) and in number per
  uplink (MAX_IN_FLIGHT). The http and dns modules are imported on the first
  probe of that method, so a config without them loads neither h11 nor dnspython.

``on_reply(wan, seq, rtt_seconds, recv_monotonic, portal, family)`` is called
from the loop for every answer; ``recv_monotonic`` is on the ``time.monotonic()``
scale; ``portal`` is where a captive portal sent an HTTP probe (http.py), else
None; ``family`` is the address family of the target (4 or 6). Failures to send
are counted, never raised.

IPv6 (docs/ipv6.md): each address family of an uplink is a hub uplink of its own,
with its own pinning, raw socket, identifier and sequence space; a target is sent
on the one of its family.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from wanwatch.config.model import DnsTarget, HttpTarget, IcmpTarget, Target, TcpTarget
from wanwatch.errors import ProbeError
from wanwatch.probe import tcp
from wanwatch.probe.icmp import (
    CMSG_SPACE,
    ICMP6_ECHO_REQUEST,
    Pending,
    PendingProbes,
    arrival_wall_ns,
    build_echo,
    kernel_rtt_ns,
    make_payload,
    open_socket,
    parse_reply,
    parse_reply6,
    raw_socket,
)
from wanwatch.probe.pin import IpAddress, UplinkSpec
from wanwatch.probe.tcp import Answer

ReplyCallback = Callable[[str, int, float, float, str | None, int], None]

# Datagrams read per readiness callback, so one busy socket cannot starve the
# loop; the selector calls us again while more are queued.
_READ_BATCH: Final = 64
_RECV_SIZE: Final = 4096

# After a failed socket open (interface missing, address not there yet), retry
# at most this often: an interface such as ppp0 may appear later.
REOPEN_INTERVAL_NS: Final = 1_000_000_000

# Send errors that mean the socket's device binding is stale (the interface was
# deleted, maybe re-created with a new index): reopen the socket.
_STALE_ERRNOS = frozenset({errno.ENODEV, errno.ENXIO})

# A TCP/HTTP/DNS probe is given up after this long. The engine has long timed it
# out by then (its timeouts are RTT-derived, <= 30 s only at slow cadences), and
# a late answer within it still counts; a connect to a dead path would otherwise
# wait out the kernel's SYN retries (~2 min, tcp(7) tcp_syn_retries).
PROBE_LIMIT: Final = 10.0
# Probes of those methods in flight per uplink at most (a burst on a dead uplink
# sends ~10); beyond it a send is refused and counted as a send error.
MAX_IN_FLIGHT: Final = 64


@dataclass(slots=True)
class _Uplink:
    spec: UplinkSpec
    ident: int
    sock: socket.socket | None = None
    last_open_ns: int | None = None
    pending: PendingProbes = field(default_factory=PendingProbes)
    tasks: set[asyncio.Task[Answer | None]] = field(default_factory=set)  # tcp, http, dns
    sent: int = 0
    replies: int = 0
    send_errors: int = 0
    ignored: int = 0
    last_errno: int = 0


class ProbeHub:
    """All probes of one daemon (see the module docstring)."""

    def __init__(
        self,
        on_reply: ReplyCallback,
        *,
        ident_base: int | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._on_reply = on_reply
        self._clock_ns = clock_ns
        # Random per daemon instance: two daemons in one namespace (a restart
        # overlapping the old one) then almost never share an identifier.
        self._ident_base = secrets.randbelow(0x10000) if ident_base is None else ident_base
        self._next_ident = 0
        self._uplinks: dict[tuple[str, int], _Uplink] = {}  # (name, family)
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---------------------------------------------------------------- configuration

    def add_uplink(
        self,
        wan: str,
        ifname: str,
        mark: int,
        source: IpAddress | None,
        *,
        family: int = 4,
        bind_device: bool = True,
    ) -> None:
        """Add or reconfigure one address family of uplink ``wan``; a changed one gets
        a fresh socket.

        ``mark`` is the uplink's fwmark (footprint.fwmark); ``bind_device=False``
        exists for tests and measurements only (see the module docstring).
        """
        if family not in (4, 6) or (source is not None and source.version != family):
            raise ProbeError(f"{wan}: source {source} is not an IPv{family} address")
        spec = UplinkSpec(ifname, mark, source, bind_device, family)
        key = (wan, family)
        up = self._uplinks.get(key)
        if up is not None:
            if up.spec == spec:
                return
            self._close_socket(up)
            # Replies to probes sent the old way would arrive on the old socket.
            self._forget(up)
            up.spec = spec
            up.last_open_ns = None
        else:
            up = _Uplink(spec, self._allocate_ident())
            self._uplinks[key] = up
        if self._loop is not None:
            self._open(wan, up)

    def reopen(self, wan: str) -> None:
        """Fresh sockets for ``wan``: its interface was re-created, and SO_BINDTODEVICE
        holds the ifindex of the old one (socket(7))."""
        ups = [up for (name, _), up in self._uplinks.items() if name == wan]
        if not ups:
            raise ProbeError(f"no uplink {wan!r} in the probe hub")
        for up in ups:
            self._close_socket(up)
            self._forget(up)
            if self._loop is not None:
                self._open(wan, up)

    def remove_uplink(self, wan: str, family: int | None = None) -> None:
        """Stop probing ``wan`` (one family, or both) and forget it (no error if unknown)."""
        for f in (4, 6) if family is None else (family,):
            up = self._uplinks.pop((wan, f), None)
            if up is not None:
                self._close_socket(up)
                self._forget(up)

    def ident(self, wan: str, family: int = 4) -> int:
        """The ICMP identifier of ``wan``'s probes of one family."""
        return self._get(wan, family).ident

    def _allocate_ident(self) -> int:
        used = {u.ident for u in self._uplinks.values()}
        while True:
            ident = (self._ident_base + self._next_ident) & 0xFFFF
            self._next_ident += 1
            if ident not in used:
                return ident

    def _get(self, wan: str, family: int) -> _Uplink:
        up = self._uplinks.get((wan, family))
        if up is None:
            raise ProbeError(f"no uplink {wan!r} in the probe hub (IPv{family})")
        return up

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Open every uplink's socket; raises ProbeError if raw sockets are refused."""
        if self._loop is not None:
            return
        self._check_raw_allowed()
        self._loop = asyncio.get_running_loop()
        for (wan, _), up in self._uplinks.items():
            self._open(wan, up)

    async def close(self) -> None:
        """Close every socket; the hub can be started again."""
        for up in self._uplinks.values():
            self._close_socket(up)
            self._forget(up)
        self._loop = None

    @staticmethod
    def _check_raw_allowed() -> None:
        # Fail loudly once, at start, for the one error no retry will fix.
        try:
            raw_socket().close()
        except PermissionError as exc:
            raise ProbeError(
                "raw ICMP sockets need root (CAP_NET_RAW); wanwatch run must run as root"
            ) from exc

    def _open(self, wan: str, up: _Uplink) -> None:
        """Open ``up``'s socket; on failure leave it closed, to be retried by ``send``."""
        up.last_open_ns = self._clock_ns()
        try:
            sock = open_socket(up.spec)
        except OSError as exc:
            # ENODEV (interface not there yet), EADDRNOTAVAIL (address not yet
            # assigned): the uplink cannot be probed now; sends count as errors.
            up.last_errno = exc.errno or 0
            return
        up.sock = sock
        if self._loop is not None:
            self._loop.add_reader(sock.fileno(), self._on_readable, wan, up)

    def _close_socket(self, up: _Uplink) -> None:
        if up.sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(up.sock.fileno())
        up.sock.close()
        up.sock = None

    @staticmethod
    def _forget(up: _Uplink) -> None:
        """Drop every probe in flight: none of them can be answered the way it was sent."""
        up.pending.clear()
        for task in up.tasks:
            task.cancel()
        up.tasks.clear()

    # ---------------------------------------------------------------- probing

    def send(self, wan: str, target: Target, seq: int) -> None:
        """Send one probe of ``target`` for ``wan`` (through the uplink's pinning of the
        target's family); a failure is counted, not raised."""
        up = self._get(wan, target.address.version)
        if self._loop is None:
            raise ProbeError("ProbeHub.send before start()")
        if isinstance(target, IcmpTarget):
            self._echo(wan, up, target.address, seq)
        elif len(up.tasks) >= MAX_IN_FLIGHT:
            up.send_errors += 1
        else:
            task = self._loop.create_task(_ask(up.spec, target, self._clock_ns))
            up.tasks.add(task)
            up.sent += 1
            task.add_done_callback(functools.partial(self._answered, wan, up, seq))

    def _answered(self, wan: str, up: _Uplink, seq: int, task: asyncio.Task[Answer | None]) -> None:
        up.tasks.discard(task)
        if task.cancelled() or self._uplinks.get((wan, up.spec.family)) is not up:
            return
        exc = task.exception()
        if isinstance(exc, TimeoutError):
            return  # no answer: the engine has timed it out (or will)
        if isinstance(exc, OSError):
            # ENETUNREACH (uplink down), ECONNREFUSED (a RST to an HTTP probe),
            # EHOSTUNREACH (an ICMP error on the way): not an answer of the target.
            up.send_errors += 1
            up.last_errno = exc.errno or 0
            return
        answer = task.result()  # any other exception is a bug: raised to the loop's handler
        if answer is None:
            up.ignored += 1  # answered, but not as the target should (http.py, dns.py)
            return
        up.replies += 1
        now = self._clock_ns()
        self._on_reply(wan, seq, answer.rtt_ns / 1e9, now / 1e9, answer.portal, up.spec.family)

    def _echo(self, wan: str, up: _Uplink, target: IpAddress, seq: int) -> None:
        now = self._clock_ns()
        if up.sock is None and (
            up.last_open_ns is None or now - up.last_open_ns >= REOPEN_INTERVAL_NS
        ):
            self._open(wan, up)
        if up.sock is None:
            up.send_errors += 1
            return
        wire_seq = up.pending.add(Pending(seq, target, now, time.time_ns()))
        if target.version == 6:  # the kernel fills in the checksum (icmp.py)
            packet = build_echo(up.ident, wire_seq, make_payload(now), ICMP6_ECHO_REQUEST)
        else:
            packet = build_echo(up.ident, wire_seq, make_payload(now))
        try:
            up.sock.sendto(packet, (str(target), 0))
        except OSError as exc:
            # ENETUNREACH/ENETDOWN (uplink down), EPERM (an nft drop in output),
            # ENOBUFS/EAGAIN (queue full): the probe is lost, the engine times it out.
            up.pending.discard(seq)
            up.send_errors += 1
            up.last_errno = exc.errno or 0
            if exc.errno in _STALE_ERRNOS:
                self._close_socket(up)
            return
        up.sent += 1

    def _on_readable(self, wan: str, up: _Uplink) -> None:
        sock = up.sock
        if sock is None:
            return
        for _ in range(_READ_BATCH):
            try:
                data, ancillary, _flags, addr = sock.recvmsg(_RECV_SIZE, CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # An asynchronous error queued on the socket (e.g. ENETUNREACH
                # from an ICMP error); it belongs to no particular probe.
                up.last_errno = exc.errno or 0
                return
            now = self._clock_ns()
            reply = parse_reply(data) if up.spec.family == 4 else parse_reply6(data, addr[0])
            probe = None if reply is None else up.pending.take(reply, up.ident)
            if probe is None:
                up.ignored += 1
                continue
            up.replies += 1
            rtt_ns = kernel_rtt_ns(probe, now, arrival_wall_ns(ancillary))
            at = (probe.sent_ns + rtt_ns) / 1e9
            self._on_reply(wan, probe.seq, rtt_ns / 1e9, at, None, up.spec.family)
            if up.sock is not sock:
                return  # the callback reconfigured or removed this uplink

    def stats(self, family: int = 4) -> dict[str, dict[str, int]]:
        """Per uplink, of one address family, every method together: sent, replies,
        send_errors, ignored (plus ident, pending, last_errno); the keys of
        status.ProbeStats."""
        return {
            wan: {
                "sent": up.sent,
                "replies": up.replies,
                "send_errors": up.send_errors,
                "ignored": up.ignored,
                "pending": len(up.pending) + len(up.tasks),
                "evicted": up.pending.evicted,
                "ident": up.ident,
                "last_errno": up.last_errno,
            }
            for (wan, f), up in self._uplinks.items()
            if f == family
        }


async def _ask(
    spec: UplinkSpec, target: TcpTarget | HttpTarget | DnsTarget, clock_ns: Callable[[], int]
) -> Answer | None:
    """One probe of a task method, bounded by PROBE_LIMIT (TimeoutError: no answer)."""
    async with asyncio.timeout(PROBE_LIMIT):
        if isinstance(target, TcpTarget):
            return await tcp.probe(spec, target, clock_ns)
        if isinstance(target, HttpTarget):
            from wanwatch.probe import http

            return await http.probe(spec, target, clock_ns)
        from wanwatch.probe import dns

        return await dns.probe(spec, target, clock_ns)
