"""ICMP echo probes pinned to their uplink, on asyncio (``loop.add_reader``, no threads).

A probe for uplink X must leave through X even when X is not the active route,
and must fail - never succeed through another uplink - when X is dead
(docs/lab-notes.md, "Routing and probes"). Each uplink gets its own raw socket with:

- ``SO_MARK`` = the uplink's fwmark: the backend's rule ``fwmark M/FWMARK_MASK
  lookup <uplink table>`` sends it via the uplink's gateway, whatever the main
  table says;
- ``SO_BINDTODEVICE`` = the uplink's interface, a second guard. When the uplink
  table has no usable route - the kernel deletes a device's routes when it goes
  admin down, and skips them on carrier loss with ignore_routes_with_linkdown=1
  - rule lookup falls through to the main table, and a mark-only probe (even
  with a bound source address) leaves through the other uplink, is masqueraded
  there and comes back: the dead uplink reported healthy (measured in
  tests/lab/test_probe.py). Bound to its device, the lookup may only use that
  device, so the send fails (ENETUNREACH) or the packet dies on the dead link.
  It also makes the socket receive only ICMP that arrived on that interface;
- optionally a bound source address, matching the backend's
  ``from <address> lookup <uplink table>`` rule.

Device binding alone, with no mark, fails safely: the kernel treats the target
as on-link and ARPs for it. So pass the uplink's real fwmark, never 0.

Why raw sockets and not ``SOCK_DGRAM``/``IPPROTO_ICMP`` ("ping sockets"): those
need ``net.ipv4.ping_group_range`` opened inside the namespace (even root gets
EACCES otherwise: docs/lab-notes.md), and the kernel rewrites the echo identifier to
the socket's local port, so the identifier is not ours to choose. The daemon
runs as root, so raw sockets cost nothing. A raw ICMP socket sees every ICMP
packet delivered to its namespace (narrowed here to its device and to echo
replies), so replies are matched by identifier, sequence *and* source address;
anything else is counted as ignored.

IPv6 is the same with a second raw socket per uplink (``AF_INET6``,
``IPPROTO_ICMPV6``), pinned the same way (the backend's IPv6 fwmark and source
rules, ``ip -6 rule``). Two things differ, both by the kernel's choice:
an ICMPv6 raw socket gets the message without the IPv6 header (the source comes
with ``recvmsg``), and the kernel computes the ICMPv6 checksum on send and
checks it on receive, since it covers a pseudo-header only the kernel knows
(RFC 3542 3.1; ``rawv6_init_sk`` in net/ipv6/raw.c sets the offset 2).
"""

from __future__ import annotations

import asyncio
import errno
import secrets
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from wanwatch.errors import ProbeError

# As config.fields.IpAddress: this module is loaded by lab workers, which load no config.
IpAddress = IPv4Address | IPv6Address

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ICMP6_ECHO_REQUEST = 128  # RFC 4443 4.1
ICMP6_ECHO_REPLY = 129  # RFC 4443 4.2

# <linux/in.h> and <linux/icmp.h>; Python's socket module does not export them.
SOL_RAW = 255
ICMP_FILTER = 1
# <linux/icmpv6.h>: ICMPV6_FILTER on level IPPROTO_ICMPV6; a set bit blocks that
# type (icmpv6_filter() in net/ipv6/raw.c), 256 bits as 8 words.
ICMP6_FILTER = 1

# 8 bytes of send time then a fixed pattern, 56 bytes like iputils ping: some
# ISPs and LTE gateways drop echo requests with an empty payload.
PAYLOAD_SIZE = 56
_PATTERN = bytes(range(0x10, 0x10 + PAYLOAD_SIZE - 8))

_ICMP_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_TIMESTAMP = struct.Struct("!Q")

# Unanswered probes remembered per uplink. At the fastest cadence the config
# allows (5 ms) this is 5 s of history, far beyond any probe timeout (<= 30 s
# only at slow cadences); older entries are evicted, oldest first.
MAX_PENDING = 1024

# Datagrams read per readiness callback, so one busy socket cannot starve the
# loop; the selector calls us again while more are queued.
_READ_BATCH = 64
_RECV_SIZE = 4096

# After a failed socket open (interface missing, address not there yet), retry
# at most this often: an interface such as ppp0 may appear later.
REOPEN_INTERVAL_NS = 1_000_000_000

# socket(7): SO_TIMESTAMPNS makes the kernel attach each datagram's arrival time
# (CLOCK_REALTIME, struct timespec) as an SCM_TIMESTAMPNS control message. Python's
# socket module does not export the constant; 35 is its value in
# <asm-generic/socket.h> (SO_TIMESTAMPNS_OLD, also SCM_TIMESTAMPNS).
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
_CMSG_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)

# Send errors that mean the socket's device binding is stale (the interface was
# deleted, maybe re-created with a new index): reopen the socket.
_STALE_ERRNOS = frozenset({errno.ENODEV, errno.ENXIO})

ReplyCallback = Callable[[str, int, float, float, int], None]  # wan, seq, rtt, at, family


# --------------------------------------------------------------------------- packets


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    # The one's-complement sum of 16-bit words is the number mod 0xFFFF, since
    # 2**16 == 1 (mod 0xFFFF) (RFC 1071 section 2). A non-zero number whose sum
    # is 0xFFFF would give 0 here; one's complement has no non-zero sum of 0.
    number = int.from_bytes(data, "big")
    total = number % 0xFFFF
    if total == 0 and number:
        total = 0xFFFF
    return ~total & 0xFFFF


def make_payload(sent_ns: int) -> bytes:
    """The 56-byte echo payload: send time (ns, informational) and a non-zero pattern."""
    return _TIMESTAMP.pack(sent_ns & 0xFFFF_FFFF_FFFF_FFFF) + _PATTERN


def build_echo(ident: int, seq: int, payload: bytes, icmp_type: int = ICMP_ECHO_REQUEST) -> bytes:
    """An ICMP echo message (request by default) with a valid checksum."""
    if not (0 <= ident <= 0xFFFF and 0 <= seq <= 0xFFFF):
        raise ValueError(f"ICMP identifier and sequence are 16-bit: {ident}, {seq}")
    header = _ICMP_HEADER.pack(icmp_type, 0, 0, ident, seq)
    csum = checksum(header + payload)
    return _ICMP_HEADER.pack(icmp_type, 0, csum, ident, seq) + payload


@dataclass(frozen=True, slots=True)
class EchoReply:
    """An ICMP or ICMPv6 echo reply as read from a raw socket."""

    source: IpAddress
    ident: int
    seq: int
    payload: bytes


def parse_reply(packet: bytes) -> EchoReply | None:
    """The echo reply in an IPv4 datagram, or None if it is anything else or damaged."""
    if len(packet) < 20:
        return None
    version, ihl = packet[0] >> 4, (packet[0] & 0x0F) * 4
    if version != 4 or ihl < 20 or packet[9] != socket.IPPROTO_ICMP:
        return None
    total = int.from_bytes(packet[2:4], "big")
    if total < ihl + _ICMP_HEADER.size or total > len(packet):
        return None  # truncated by the reader or by the network
    icmp = packet[ihl:total]
    icmp_type, code, _csum, ident, seq = _ICMP_HEADER.unpack_from(icmp)
    if icmp_type != ICMP_ECHO_REPLY or code != 0 or checksum(icmp) != 0:
        return None
    return EchoReply(IPv4Address(packet[12:16]), ident, seq, icmp[_ICMP_HEADER.size :])


def parse_reply6(message: bytes, source: str) -> EchoReply | None:
    """The echo reply in an ICMPv6 message (no IPv6 header: raw(7) gives none) from
    ``source`` (as recvmsg names it, maybe with a ``%scope``), or None. The kernel
    has already checked its checksum (module docstring)."""
    if len(message) < _ICMP_HEADER.size:
        return None
    icmp_type, code, _csum, ident, seq = _ICMP_HEADER.unpack_from(message)
    if icmp_type != ICMP6_ECHO_REPLY or code != 0:
        return None
    return EchoReply(IPv6Address(source.split("%", 1)[0]), ident, seq, message[_ICMP_HEADER.size :])


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class Pending:
    """One probe sent and not yet answered."""

    seq: int  # the caller's sequence number (the wire carries its low 16 bits)
    target: IpAddress
    sent_ns: int  # the hub's (monotonic) clock
    sent_wall_ns: int = 0  # CLOCK_REALTIME at the same moment: kernel timestamps use it


class PendingProbes:
    """Unanswered probes of one uplink, keyed by wire sequence, bounded (oldest evicted)."""

    def __init__(self, limit: int = MAX_PENDING) -> None:
        self._limit = limit
        self._by_seq: OrderedDict[int, Pending] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._by_seq)

    def add(self, probe: Pending) -> int:
        """Remember ``probe``; returns the 16-bit sequence to put on the wire."""
        wire = probe.seq & 0xFFFF
        # A re-used wire sequence replaces the old probe and moves to the young end.
        self._by_seq.pop(wire, None)
        self._by_seq[wire] = probe
        while len(self._by_seq) > self._limit:
            self._by_seq.popitem(last=False)
            self.evicted += 1
        return wire

    def discard(self, seq: int) -> None:
        """Forget the probe sent with caller sequence ``seq`` (it never left)."""
        wire = seq & 0xFFFF
        probe = self._by_seq.get(wire)
        if probe is not None and probe.seq == seq:
            del self._by_seq[wire]

    def take(self, reply: EchoReply, ident: int) -> Pending | None:
        """The probe ``reply`` answers (and forget it), or None if it answers none of ours.

        A reply must carry our identifier and a pending sequence *and* come from
        the address that probe was sent to; a duplicate finds nothing pending.
        """
        if reply.ident != ident:
            return None
        probe = self._by_seq.get(reply.seq)
        if probe is None or probe.target != reply.source:
            return None
        del self._by_seq[reply.seq]
        return probe

    def clear(self) -> None:
        self._by_seq.clear()


# --------------------------------------------------------------------------- the hub


@dataclass(frozen=True, slots=True)
class UplinkSpec:
    """How one uplink's probes are pinned."""

    ifname: str
    mark: int
    source: IpAddress | None
    bind_device: bool
    family: int = 4


@dataclass(slots=True)
class _Uplink:
    spec: UplinkSpec
    ident: int
    sock: socket.socket | None = None
    last_open_ns: int | None = None
    pending: PendingProbes = field(default_factory=PendingProbes)
    sent: int = 0
    replies: int = 0
    send_errors: int = 0
    ignored: int = 0
    last_errno: int = 0


class ProbeHub:
    """All ICMP probes of one daemon: one raw socket per uplink and address family,
    read on the event loop.

    ``on_reply(wan, seq, rtt_seconds, recv_monotonic, family)`` is called from the
    loop for every matched reply; ``recv_monotonic`` is on the ``time.monotonic()``
    scale. Send failures are counted, never raised: the engine times the probe out.
    Each family of an uplink has its own identifier and sequence space.
    """

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
        self._uplinks: dict[tuple[str, int], _Uplink] = {}
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
            up.pending.clear()
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
        ups = self._families(wan)
        if not ups:
            raise ProbeError(f"no uplink {wan!r} in the probe hub")
        for up in ups:
            self._close_socket(up)
            up.pending.clear()
            if self._loop is not None:
                self._open(wan, up)

    def remove_uplink(self, wan: str, family: int | None = None) -> None:
        """Stop probing ``wan`` (one family, or both) and forget it (no error if unknown)."""
        for f in (4, 6) if family is None else (family,):
            up = self._uplinks.pop((wan, f), None)
            if up is not None:
                self._close_socket(up)

    def ident(self, wan: str, family: int = 4) -> int:
        """The ICMP identifier of ``wan``'s probes of one family."""
        return self._get(wan, family).ident

    def _families(self, wan: str) -> list[_Uplink]:
        return [up for (name, _), up in self._uplinks.items() if name == wan]

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
            up.pending.clear()
        self._loop = None

    @staticmethod
    def _check_raw_allowed() -> None:
        # Fail loudly once, at start, for the one error no retry will fix.
        try:
            _raw_socket(4).close()
        except PermissionError as exc:
            raise ProbeError(
                "raw ICMP sockets need root (CAP_NET_RAW); wanwatch run must run as root"
            ) from exc

    def _open(self, wan: str, up: _Uplink) -> None:
        """Open ``up``'s socket; on failure leave it closed, to be retried by ``send``."""
        up.last_open_ns = self._clock_ns()
        try:
            sock = _open_socket(up.spec)
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

    # ---------------------------------------------------------------- probing

    def send(self, wan: str, target: IpAddress, seq: int) -> None:
        """Send one echo request for ``wan`` (on the socket of the target's family);
        a failure is counted, not raised."""
        up = self._get(wan, target.version)
        if self._loop is None:
            raise ProbeError("ProbeHub.send before start()")
        now = self._clock_ns()
        if up.sock is None and (
            up.last_open_ns is None or now - up.last_open_ns >= REOPEN_INTERVAL_NS
        ):
            self._open(wan, up)
        if up.sock is None:
            up.send_errors += 1
            return
        wire_seq = up.pending.add(Pending(seq, target, now, time.time_ns()))
        if target.version == 6:  # the kernel fills in the checksum (module docstring)
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
                data, ancillary, _flags, addr = sock.recvmsg(_RECV_SIZE, _CMSG_SPACE)
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
            rtt_ns = kernel_rtt_ns(probe, now, _arrival_wall_ns(ancillary))
            at = (probe.sent_ns + rtt_ns) / 1e9
            self._on_reply(wan, probe.seq, rtt_ns / 1e9, at, up.spec.family)
            if up.sock is not sock:
                return  # the callback reconfigured or removed this uplink

    def stats(self, family: int = 4) -> dict[str, dict[str, int]]:
        """Per uplink, of one family: sent, replies, send_errors, ignored (plus ident,
        pending, last_errno)."""
        return {
            wan: {
                "sent": up.sent,
                "replies": up.replies,
                "send_errors": up.send_errors,
                "ignored": up.ignored,
                "pending": len(up.pending),
                "evicted": up.pending.evicted,
                "ident": up.ident,
                "last_errno": up.last_errno,
            }
            for (wan, f), up in self._uplinks.items()
            if f == family
        }


def kernel_rtt_ns(probe: Pending, read_ns: int, arrival_wall_ns: int | None) -> int:
    """The probe's round trip up to the kernel's receive timestamp, in ns.

    The time we read the reply at (``read_ns``, monotonic) also counts however
    long the event loop was busy elsewhere; the kernel's timestamp does not. But
    it is wall-clock time: if the clock was stepped (NTP, an admin) between send
    and arrival the difference is meaningless, so it is used only when it is
    non-negative and no longer than the monotonic measurement (plus 1 ms for the
    two clocks being read at slightly different moments); otherwise the
    monotonic figure stands.
    """
    user = read_ns - probe.sent_ns
    if arrival_wall_ns is None or not probe.sent_wall_ns:
        return user
    kernel = arrival_wall_ns - probe.sent_wall_ns
    return kernel if 0 <= kernel <= user + 1_000_000 else user


def _arrival_wall_ns(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return int(sec) * 1_000_000_000 + int(nsec)
    return None


def _raw_socket(family: int) -> socket.socket:
    if family == 6:
        return socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)


def icmp6_filter(allowed: int) -> bytes:
    """The ICMPV6_FILTER value that passes only type ``allowed``."""
    words = [0xFFFF_FFFF] * 8
    words[allowed >> 5] ^= 1 << (allowed & 31)
    return struct.pack("=8I", *words)


def _open_socket(spec: UplinkSpec) -> socket.socket:
    sock = _raw_socket(spec.family)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # Only echo replies reach us (raw(7) ICMP_FILTER: a set bit filters that type).
        if spec.family == 6:
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter(ICMP6_ECHO_REPLY))
        else:
            sock.setsockopt(
                SOL_RAW, ICMP_FILTER, struct.pack("=I", 0xFFFF_FFFF ^ (1 << ICMP_ECHO_REPLY))
            )
        if spec.mark:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, spec.mark)
        if spec.bind_device:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, spec.ifname.encode())
        if spec.source is not None:
            sock.bind((str(spec.source), 0))  # a 2-tuple is enough for AF_INET6 too
    except OSError:
        sock.close()
        raise
    return sock
