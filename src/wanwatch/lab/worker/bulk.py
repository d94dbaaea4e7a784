"""The bulk worker: N parallel TCP flows against the bulk server, bytes read from TCP_INFO."""

from __future__ import annotations

import argparse
import json
import socket
import struct
import threading
import time
from typing import Any

from wanwatch.lab.worker.report import emit, errname
from wanwatch.lab.worker.servers import BULK_SNDBUF
from wanwatch.lab.worker.tcp import read_json_line

# struct tcp_info (linux/tcp.h): tcpi_bytes_acked and tcpi_bytes_received, u64 each.
_TCPI_BYTES_ACKED = 120
_TCPI_BYTES_RECEIVED = 128
_TCP_INFO_LEN = 136


def _tcp_bytes(sock: socket.socket, direction: str) -> int | None:
    """Bytes the kernel has delivered on ``sock`` so far: received ("down") or acked ("up").

    Read from TCP_INFO, so it counts what crossed the network at this instant,
    however late the reading thread gets to its data.
    """
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except OSError:
        return None
    off = _TCPI_BYTES_RECEIVED if direction == "down" else _TCPI_BYTES_ACKED
    if len(info) < off + 8:
        return None
    value: int = struct.unpack_from("=Q", info, off)[0]
    return value


def _bulk_flow(args: argparse.Namespace, sock: socket.socket, start: float, until: float) -> int:
    """One flow of the bulk worker, once connected: wait for ``start``, run until ``until``;
    the payload bytes it moved, as counted by the receiving end."""
    time.sleep(max(0.0, start - time.monotonic()))
    mode = "source" if args.direction == "down" else "sink"
    sock.sendall(json.dumps({"mode": mode, "until": until}).encode() + b"\n")
    sock.settimeout(max(1.0, until - time.monotonic()) + 20.0)
    total = 0
    if args.direction == "down":
        while chunk := sock.recv(1 << 16):
            total += len(chunk)
        return total
    data = bytes(1 << 16)
    while time.monotonic() < until:
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
    return int(read_json_line(sock, "the byte count")["bytes"])


def bulk(args: argparse.Namespace) -> None:
    sources = args.source or [None]
    socks: list[socket.socket | None] = []
    recs: list[dict[str, Any]] = []
    for i in range(args.flows):
        src = sources[i % len(sources)]
        rec: dict[str, Any] = {"flow": i, "src": src}
        try:
            sock = socket.create_connection(
                (args.dst, args.port), timeout=5.0, source_address=(src, 0) if src else None
            )
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BULK_SNDBUF)
            rec["src"], rec["sport"] = sock.getsockname()[:2]
            rec["peer"] = read_json_line(sock, "the hello")["peer"]
            socks.append(sock)
        except (OSError, ValueError, KeyError) as exc:
            rec["error"] = "connect: " + errname(exc)
            socks.append(None)
        recs.append(rec)
    # All flows start together, a little after the last one connected.
    start = time.monotonic() + 0.05
    w0, w1 = start + args.warmup, start + args.seconds

    def run(i: int, sock: socket.socket) -> None:
        try:
            recs[i]["bytes"] = _bulk_flow(args, sock, start, w1)
        except (OSError, ValueError, KeyError) as exc:
            recs[i]["error"] = errname(exc)

    threads = [
        threading.Thread(target=run, args=(i, sock), daemon=True)
        for i, sock in enumerate(socks)
        if sock is not None
    ]
    for t in threads:
        t.start()
    # The window is read from the kernel's counters at its two ends (not from when
    # the flows' threads happen to read their data), and timed when it was read: on
    # a busy machine this thread may wake tens of ms late.
    marks: list[list[int | None]] = []
    read_at: list[float] = []
    for at in (w0, w1):
        time.sleep(max(0.0, at - time.monotonic()))
        before = time.monotonic()
        marks.append([_tcp_bytes(s, args.direction) if s else None for s in socks])
        read_at.append((before + time.monotonic()) / 2)
    for t in threads:
        t.join(timeout=max(0.0, w1 + 10 - time.monotonic()))
    for i, maybe in enumerate(socks):
        a, b = marks[0][i], marks[1][i]
        recs[i]["window_bytes"] = b - a if a is not None and b is not None else 0
        if maybe is not None:
            maybe.close()
    for rec in recs:
        emit(rec)
    emit({"ev": "end", "start": start, "w0": read_at[0], "w1": read_at[1], "t": time.monotonic()})
