"""The DNS worker: one A or AAAA query over UDP, retried, with the answer's rcode and
addresses; with ``--connect PORT``, then at once a TCP connection to the first address (a
client that connects the moment its lookup returns), reporting who the whoami server saw."""

from __future__ import annotations

import argparse
import random
import select
import socket
import struct
import time
from ipaddress import ip_address
from typing import Any

from wanwatch.lab.worker.report import emit, errname
from wanwatch.lab.worker.tcp import read_json_line

# Record type -> (its number, its address family and length): RFC 1035 3.2.2, RFC 3596.
QTYPES = {"A": (1, socket.AF_INET, 4), "AAAA": (28, socket.AF_INET6, 16)}


def _dns_query(name: str, qid: int, qtype: int = 1) -> bytes:
    head = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # RD set, one question
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split("."))
    return head + labels + b"\0" + struct.pack("!HH", qtype, 1)  # class IN


def _skip_name(msg: bytes, pos: int) -> int:
    while True:
        n = msg[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:  # compression pointer: two bytes, end of name
            return pos + 2
        pos += n + 1


def _dns_parse(msg: bytes, qid: int, qtype: str = "A") -> tuple[int, list[str]] | None:
    """(rcode, addresses of ``qtype``) of a reply to ``qid``, or None if it is not one."""
    number, family, size = QTYPES[qtype]
    if len(msg) < 12:
        return None
    r_id, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    if r_id != qid or not flags & 0x8000:
        return None
    pos = 12
    for _ in range(qd):
        pos = _skip_name(msg, pos) + 4
    found = []
    for _ in range(an):
        pos = _skip_name(msg, pos)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[pos : pos + 10])
        pos += 10
        if rtype == number and rdlen == size:
            found.append(socket.inet_ntop(family, msg[pos : pos + size]))
        pos += rdlen
    return flags & 0x000F, found


def dns(args: argparse.Namespace) -> None:
    family = socket.AF_INET6 if ip_address(args.server).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.connect((args.server, 53))
    t0 = time.monotonic()
    for attempt in range(args.tries):
        qid = random.randrange(0, 0x10000)
        sent = time.monotonic()
        sock.send(_dns_query(args.name, qid, QTYPES[args.type][0]))
        until = sent + args.timeout
        while (left := until - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            try:
                reply = _dns_parse(sock.recv(4096), qid, args.type)
            except (ConnectionRefusedError, struct.error, IndexError):
                reply = None
            if reply is not None:
                now = time.monotonic()
                rec: dict[str, Any] = {
                    "ok": True,
                    "rcode": reply[0],
                    "addresses": reply[1],
                    "rtt_ms": (now - sent) * 1000,
                    "tries": attempt + 1,
                    "t0": t0,
                    "t1": now,
                }
                if args.connect is not None and reply[1]:
                    rec.update(_connect(reply[1][0], args.connect, args.timeout))
                emit(rec)
                return
    emit({"ok": False, "tries": args.tries, "t0": t0, "t1": time.monotonic()})


def _connect(address: str, port: int, timeout: float) -> dict[str, Any]:
    """One TCP connection to the whoami server at ``address``: who it saw, or the error."""
    started = time.monotonic()
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            connected = time.monotonic()
            hello = read_json_line(conn, "the whoami line")
        return {"connect_t0": started, "connected": connected, "peer": hello["peer"]}
    except (OSError, ValueError, KeyError) as exc:
        return {"connect_t0": started, "connect_error": errname(exc)}
