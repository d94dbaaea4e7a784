"""Steady-rate workers: a packet stream out of a client, and a UDP sink that never answers."""

from __future__ import annotations

import argparse
import random
import select
import socket
import time

from wanwatch.lab.worker.report import emit
from wanwatch.lab.worker.stop import stop_flag
from wanwatch.probe.icmp import build_echo

_PAYLOAD = b"wanwatch-lab-stream" + bytes(16)  # non-empty: some networks drop empty echoes


def _socket(proto: str) -> socket.socket:
    if proto == "icmp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a new source port
    sock.setblocking(False)
    return sock


def stream(args: argparse.Namespace) -> None:
    """``--rate`` packets per second to ``--dst`` for ``--seconds``; answers only counted."""
    stopped = stop_flag()
    sock = _socket(args.proto)
    ident = random.randrange(1, 0xFFFF)
    gap = 1.0 / args.rate
    t0 = time.monotonic()
    end = t0 + args.seconds
    count = int(args.rate * args.seconds)
    sent = received = flows = 0
    next_send, next_flow = t0, t0 + args.rotate
    emit({"ev": "started", "t": t0})
    while not stopped() and sent < count and (now := time.monotonic()) < end:
        if now >= next_flow:
            next_flow, flows = now + args.rotate, flows + 1
            ident = ident % 0xFFFE + 1
            if args.proto == "udp":
                sock.close()
                sock = _socket(args.proto)
        if now >= next_send:
            next_send += gap
            try:
                if args.proto == "icmp":
                    sock.sendto(build_echo(ident, sent & 0xFFFF, _PAYLOAD), (args.dst, 0))
                else:
                    sock.sendto(_PAYLOAD, (args.dst, args.port))
            except OSError:
                continue  # no route or a full buffer while the uplink changes: not sent
            sent += 1
            continue
        ready, _, _ = select.select([sock], [], [], max(0.0, next_send - now))
        while ready:
            try:
                sock.recv(65535)  # any ICMP the raw socket sees: a rough figure
            except BlockingIOError:
                break
            received += 1
    sock.close()
    emit({"ev": "end", "t": time.monotonic(), "sent": sent, "received": received, "flows": flows})


def sink(args: argparse.Namespace) -> None:
    """Read UDP datagrams on ``--port`` for ``--seconds`` and answer none."""
    stopped = stop_flag()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", args.port))
    end = time.monotonic() + args.seconds
    emit({"ev": "listening", "port": args.port})
    n = 0
    while not stopped() and (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], min(left, 0.2))
        if ready:
            sock.recv(65535)
            n += 1
    emit({"ev": "end", "received": n})
