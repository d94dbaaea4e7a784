"""The scan workers: listeners that answer, and a TCP/UDP scan of one destination.

``listen`` binds dual-stack sockets (so one listener answers on IPv4 and IPv6,
a link-local ``fe80::..%if`` destination included), accepts every TCP
connection with one line and echoes every UDP datagram. ``scan`` probes every
port it is given at once and reports each port's state (lab/scan.py says what
the states mean): a TCP connect's result, or for UDP the echo or the ICMP error
a connected socket gets back (udp(7): ECONNREFUSED for port unreachable).
"""

from __future__ import annotations

import argparse
import errno
import selectors
import socket
import time
from typing import Any, cast

from wanwatch.lab.worker.report import emit
from wanwatch.lab.worker.stop import stop_flag

PAYLOAD = b"wanwatch-scan\n"
_TICK = 0.2  # how often a listener looks at its stop flag and deadline


def _dual(kind: int) -> socket.socket:
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setblocking(False)
    return s


def _answer(ready: socket.socket, proto: str) -> None:
    if proto == "tcp":
        conn, peer = ready.accept()
        conn.setblocking(True)
        conn.settimeout(1.0)
        conn.sendall(PAYLOAD)
        conn.close()
    else:
        data, peer = ready.recvfrom(2048)
        ready.sendto(data, peer)
    emit({"ev": proto, "port": ready.getsockname()[1], "peer": peer[0]})


def listen(args: argparse.Namespace) -> None:
    stopped = stop_flag()
    sel = selectors.DefaultSelector()
    for proto, kind, ports in (
        ("tcp", socket.SOCK_STREAM, args.tcp),
        ("udp", socket.SOCK_DGRAM, args.udp),
    ):
        for port in ports:
            s = _dual(kind)
            s.bind(("::", port))
            if proto == "tcp":
                s.listen(64)
            sel.register(s, selectors.EVENT_READ, proto)
    emit({"ev": "listening", "tcp": args.tcp, "udp": args.udp})
    until = time.monotonic() + args.max_seconds
    while not stopped() and time.monotonic() < until:
        for key, _ in sel.select(timeout=_TICK):
            try:
                _answer(cast(socket.socket, key.fileobj), key.data)
            except OSError as exc:  # a peer that went away: the next one is served
                emit({"ev": "error", "error": exc.strerror})


def _target(dst: str, port: int, kind: int) -> tuple[int, Any]:
    family, _, _, _, addr = socket.getaddrinfo(dst, port, type=kind)[0]
    return family, addr


def _open_probes(sel: selectors.BaseSelector, args: argparse.Namespace) -> None:
    for proto, kind, ports in (
        ("tcp", socket.SOCK_STREAM, args.tcp),
        ("udp", socket.SOCK_DGRAM, args.udp),
    ):
        for port in ports:
            family, addr = _target(args.dst, port, kind)
            s = socket.socket(family, kind)
            s.setblocking(False)
            if proto == "tcp":
                s.connect_ex(addr)
                sel.register(s, selectors.EVENT_WRITE, (proto, port))
            else:
                s.connect(addr)  # connected: an ICMP error comes back as ECONNREFUSED
                s.send(PAYLOAD)
                sel.register(s, selectors.EVENT_READ, (proto, port))


def _result(ready: socket.socket, proto: str) -> str:
    if proto == "tcp":
        err = ready.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    else:
        try:
            ready.recv(2048)
            err = 0
        except OSError as exc:
            err = exc.errno or errno.EIO
    return "open" if err == 0 else "closed" if err == errno.ECONNREFUSED else "unreachable"


def scan(args: argparse.Namespace) -> None:
    sel = selectors.DefaultSelector()
    _open_probes(sel, args)
    state: dict[tuple[str, int], str] = {}
    until = time.monotonic() + args.timeout
    while sel.get_map() and (left := until - time.monotonic()) > 0:
        for key, _ in sel.select(timeout=left):
            ready = cast(socket.socket, key.fileobj)
            state[key.data] = _result(ready, key.data[0])
            sel.unregister(ready)
            ready.close()
    for key in list(sel.get_map().values()):
        state[key.data] = "filtered"
        cast(socket.socket, key.fileobj).close()
    for (proto, port), st in sorted(state.items()):
        emit({"proto": proto, "port": port, "state": st})
