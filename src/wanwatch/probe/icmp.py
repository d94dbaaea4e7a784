"""ICMP echo probes: packets, matching replies to probes, and the pinned raw socket.

The hub (hub.py) opens one raw socket per uplink, pinned like every probe socket
(pin.py), and reads it on the event loop.

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

import socket
import struct
from collections import OrderedDict
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from wanwatch.probe.pin import IpAddress, UplinkSpec, pinned_socket

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

# socket(7): SO_TIMESTAMPNS makes the kernel attach each datagram's arrival time
# (CLOCK_REALTIME, struct timespec) as an SCM_TIMESTAMPNS control message. Python's
# socket module does not export the constant; 35 is its value in
# <asm-generic/socket.h> (SO_TIMESTAMPNS_OLD, also SCM_TIMESTAMPNS).
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
CMSG_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)


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


def arrival_wall_ns(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return int(sec) * 1_000_000_000 + int(nsec)
    return None


def raw_socket() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)


def icmp6_filter(allowed: int) -> bytes:
    """The ICMPV6_FILTER value that passes only type ``allowed``."""
    words = [0xFFFF_FFFF] * 8
    words[allowed >> 5] ^= 1 << (allowed & 31)
    return struct.pack("=8I", *words)


def open_socket(spec: UplinkSpec) -> socket.socket:
    """The uplink's raw echo socket of its family: pinned, echo replies only, kernel
    timestamps on."""
    six = spec.family == 6
    sock = pinned_socket(
        spec, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if six else socket.IPPROTO_ICMP
    )
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # Only echo replies reach us (raw(7) ICMP_FILTER: a set bit filters that type).
        if six:
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter(ICMP6_ECHO_REPLY))
        else:
            sock.setsockopt(
                SOL_RAW, ICMP_FILTER, struct.pack("=I", 0xFFFF_FFFF ^ (1 << ICMP_ECHO_REPLY))
            )
    except OSError:
        sock.close()
        raise
    return sock
