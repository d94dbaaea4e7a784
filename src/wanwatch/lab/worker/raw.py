"""Raw-socket workers: ICMP echo (ping), TTL-limited first hop, lone TCP resets.

Echo requests are built and replies read by ``wanwatch.probe.icmp``, the daemon's own
prober code.
"""

from __future__ import annotations

import argparse
import random
import select
import socket
import struct
import time

from wanwatch.lab.worker.limits import RST_GAP
from wanwatch.lab.worker.report import emit
from wanwatch.probe.icmp import build_echo, checksum, parse_reply


def rst(args: argparse.Namespace) -> None:
    """TCP resets of no connection to ``--dst``; reports how many were sent."""
    # A raw TCP socket: the kernel writes the IP header, we write the TCP one. Its
    # checksum is the Internet checksum over a pseudo-header and the segment (RFC 793 3.1).
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    sock.connect((args.dst, args.port))  # picks the route, hence the source address
    src = sock.getsockname()[0]
    pseudo = socket.inet_aton(src) + socket.inet_aton(args.dst) + struct.pack("!BBH", 0, 6, 20)
    for i in range(args.count):
        # sport, dport, seq, ack, data offset 5 words, flags RST, window, checksum, urgent
        head = struct.pack(
            "!HHIIBBHHH", 40000 + i, args.port, random.getrandbits(32), 0, 5 << 4, 0x04, 0, 0, 0
        )
        sock.send(head[:16] + struct.pack("!H", checksum(pseudo + head)) + head[18:])
        time.sleep(RST_GAP)
    emit({"sent": args.count, "src": src})


def _recv(sock: socket.socket, until: float) -> tuple[bytes, str] | None:
    """One IPv4 datagram (header included) and its source, or None at ``until``."""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return None
        pkt, (src, _) = sock.recvfrom(65535)
        return pkt, src


def ping(args: argparse.Namespace) -> None:
    """Echo requests every ``--interval``; replies matched by identifier, sequence, source."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    if args.source:
        sock.bind((args.source, 0))
    ident = random.randrange(1, 0xFFFF)
    sent_at: dict[int, float] = {}
    rtts: dict[int, float] = {}
    payload = b"wanwatch-lab-ping" + bytes(16)  # non-empty: some networks drop empty echoes
    t0 = time.monotonic()
    next_send = t0
    seq = 0
    last_deadline = t0
    while seq < args.count or (time.monotonic() < last_deadline and len(rtts) < len(sent_at)):
        now = time.monotonic()
        if seq < args.count and now >= next_send:
            msg = build_echo(ident, seq, payload)
            sent_at[seq] = time.monotonic()
            sock.sendto(msg, (args.dst, 0))
            last_deadline = sent_at[seq] + args.timeout
            seq += 1
            next_send += args.interval
            continue
        until = next_send if seq < args.count else last_deadline
        got = _recv(sock, until)
        reply = parse_reply(got[0]) if got is not None else None
        if reply is None or str(reply.source) != args.dst:
            continue
        r_id, r_seq = reply.ident, reply.seq
        arrived = time.monotonic()
        if (
            r_id == ident
            and r_seq in sent_at
            and r_seq not in rtts
            and arrived - sent_at[r_seq] <= args.timeout
        ):
            rtts[r_seq] = (arrived - sent_at[r_seq]) * 1000
    lost = set(sent_at) - set(rtts)
    emit(
        {
            "sent": len(sent_at),
            "received": len(rtts),
            "rtts_ms": [rtts[s] for s in sorted(rtts)],
            "lost": sorted(lost),
            "first_lost_sent": sent_at[min(lost)] if lost else None,
            "t0": t0,
            "t1": time.monotonic(),
        }
    )


def hop(args: argparse.Namespace) -> None:
    """A UDP probe with ``--ttl``; who sent the ICMP error that quotes it."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, args.ttl)
    udp.bind(("0.0.0.0", 0))
    sport = udp.getsockname()[1]
    for attempt in range(args.tries):
        dport = 33434 + attempt  # the traceroute convention: an unlikely open port
        sent = time.monotonic()
        udp.sendto(b"wanwatch-lab-hop", (args.dst, dport))
        until = sent + args.timeout
        while (got := _recv(raw, until)) is not None:
            pkt, src = got
            icmp = pkt[(pkt[0] & 0x0F) * 4 :]
            if len(icmp) < 8 + 20 + 8 or icmp[0] not in (3, 11):
                continue
            inner = icmp[8:]
            ihl = (inner[0] & 0x0F) * 4
            if inner[9] != socket.IPPROTO_UDP or len(inner) < ihl + 4:
                continue
            i_sport, i_dport = struct.unpack("!HH", inner[ihl : ihl + 4])
            if (i_sport, i_dport) != (sport, dport):
                continue
            rtt = (time.monotonic() - sent) * 1000
            emit({"ok": True, "hop": src, "type": icmp[0], "rtt_ms": rtt, "tries": attempt + 1})
            return
    emit({"ok": False, "tries": args.tries})
