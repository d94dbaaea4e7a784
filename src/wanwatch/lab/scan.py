"""What a segment can reach: listeners and a TCP/UDP port scan in lab namespaces.

The firewall's lab proof (tests/lab/test_firewall.py) starts listeners where a
LAN client and the router really listen, then scans them from each uplink's
segment and from a LAN. A port is

* ``open``: a TCP connection was accepted, or a UDP datagram was answered
  (our listeners echo every datagram);
* ``closed``: the host answered that nothing listens (TCP reset, or ICMP port
  unreachable for UDP): the packet got through the firewall;
* ``unreachable``: an ICMP error other than port unreachable came back;
* ``filtered``: no answer before the timeout: dropped on the way (for UDP this
  is also what a silent service looks like, so only our echoing listeners
  prove a UDP port open).

Both run as ``python -m wanwatch.lab.scan listen|probe`` inside a namespace,
started through :meth:`Lab.spawn` (stopped by PID) and bounded in time; each
prints JSON lines. Dual-stack sockets, so a listener answers on IPv4 and IPv6
(a link-local ``fe80::..%if`` destination works too).
"""

from __future__ import annotations

import argparse
import errno
import json
import selectors
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from wanwatch.errors import LabError
from wanwatch.lab import netns

if TYPE_CHECKING:
    from wanwatch.lab.procs import Proc
    from wanwatch.lab.topology import Lab

MAX_PORTS = 64  # per scan, per protocol
MAX_LISTEN_SECONDS = 900.0
PAYLOAD = b"wanwatch-scan\n"
_POLL = 0.01


@dataclass(frozen=True)
class Port:
    proto: str  # "tcp" | "udp"
    port: int

    def __str__(self) -> str:
        return f"{self.port}/{self.proto}"


# --------------------------------------------------------------------------- controller side


def _argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "wanwatch.lab.scan", *args]


def _ports(flag: str, ports: Sequence[int]) -> list[str]:
    if len(ports) > MAX_PORTS:
        raise LabError(f"at most {MAX_PORTS} {flag} ports at once")
    return [x for p in ports for x in (f"--{flag}", str(p))]


def listen(
    lab: Lab,
    who: str,
    *,
    tcp: Sequence[int] = (),
    udp: Sequence[int] = (),
    seconds: float = 300.0,
) -> Proc:
    """Listeners on every address of ``who``'s namespace; returns once they are bound."""
    argv = _argv("listen", "--max-seconds", str(seconds), *_ports("tcp", tcp), *_ports("udp", udp))
    proc = lab.spawn(lab.ns_for(who), argv, "listen")
    deadline = time.monotonic() + 10
    while not any(r.get("ev") == "listening" for r in proc.records()):
        if not proc.alive() or time.monotonic() > deadline:
            lab.stop_proc(proc)
            raise LabError(f"listeners in {who} did not start: {proc.stderr()[-800:]}")
        time.sleep(_POLL)
    return proc


def scan(
    lab: Lab,
    who: str,
    dst: str,
    *,
    tcp: Sequence[int] = (),
    udp: Sequence[int] = (),
    timeout: float = 1.0,
) -> dict[Port, str]:
    """The state of each port of ``dst`` seen from ``who``'s namespace (all probed at once)."""
    argv = _argv(
        "probe", "--dst", dst, "--timeout", str(timeout), *_ports("tcp", tcp), *_ports("udp", udp)
    )
    proc = lab.spawn(lab.ns_for(who), argv, "scan")
    try:
        if proc.wait(timeout + 20) is None:
            raise LabError(f"the scan from {who} did not finish")
        found = {Port(r["proto"], int(r["port"])): str(r["state"]) for r in proc.records()}
    finally:
        lab.stop_proc(proc)
    if len(found) != len(tcp) + len(udp):
        raise LabError(f"the scan from {who} reported {len(found)} ports: {proc.stderr()[-800:]}")
    return found


def listening(lab: Lab, who: str) -> set[Port]:
    """Every TCP and UDP port something listens on in ``who``'s namespace (``ss -lntu``)."""
    out = netns.nsrun(lab.ns_for(who), "ss", "-H", "-l", "-n", "-t", "-u").stdout
    found: set[Port] = set()
    for line in out.splitlines():
        fields = line.split()  # Netid State Recv-Q Send-Q Local:Port Peer:Port
        if len(fields) >= 5 and fields[0] in ("tcp", "udp"):
            found.add(Port(fields[0], int(fields[4].rsplit(":", 1)[1])))
    return found


# --------------------------------------------------------------------------- worker side


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _dual(kind: int) -> socket.socket:
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setblocking(False)
    return s


def _listen(tcp: list[int], udp: list[int], seconds: float) -> None:
    sel = selectors.DefaultSelector()
    for port in tcp:
        s = _dual(socket.SOCK_STREAM)
        s.bind(("::", port))
        s.listen(64)
        sel.register(s, selectors.EVENT_READ, "tcp")
    for port in udp:
        s = _dual(socket.SOCK_DGRAM)
        s.bind(("::", port))
        sel.register(s, selectors.EVENT_READ, "udp")
    _emit({"ev": "listening", "tcp": tcp, "udp": udp})
    until = time.monotonic() + min(seconds, MAX_LISTEN_SECONDS)
    while time.monotonic() < until:
        for key, _ in sel.select(timeout=0.2):
            ready = cast(socket.socket, key.fileobj)
            try:
                if key.data == "tcp":
                    conn, peer = ready.accept()
                    conn.setblocking(True)
                    conn.settimeout(1.0)
                    conn.sendall(PAYLOAD)
                    conn.close()
                    _emit({"ev": "tcp", "port": ready.getsockname()[1], "peer": peer[0]})
                else:
                    data, peer = ready.recvfrom(2048)
                    ready.sendto(data, peer)
                    _emit({"ev": "udp", "port": ready.getsockname()[1], "peer": peer[0]})
            except OSError as exc:  # a peer that went away: the next one is served
                _emit({"ev": "error", "error": exc.strerror})


def _target(dst: str, port: int, kind: int) -> tuple[int, Any]:
    family, _, _, _, addr = socket.getaddrinfo(dst, port, type=kind)[0]
    return family, addr


def _probe(dst: str, tcp: list[int], udp: list[int], timeout: float) -> None:
    sel = selectors.DefaultSelector()
    state: dict[tuple[str, int], str] = {}
    for proto, kind, ports in (("tcp", socket.SOCK_STREAM, tcp), ("udp", socket.SOCK_DGRAM, udp)):
        for port in ports:
            family, addr = _target(dst, port, kind)
            s = socket.socket(family, kind)
            s.setblocking(False)
            if proto == "tcp":
                s.connect_ex(addr)
                sel.register(s, selectors.EVENT_WRITE, (proto, port))
            else:
                s.connect(addr)  # connected: an ICMP error comes back as ECONNREFUSED
                s.send(PAYLOAD)
                sel.register(s, selectors.EVENT_READ, (proto, port))
    until = time.monotonic() + timeout
    while sel.get_map() and (left := until - time.monotonic()) > 0:
        for key, _ in sel.select(timeout=left):
            ready = cast(socket.socket, key.fileobj)
            proto, port = key.data
            if proto == "tcp":
                err = ready.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            else:
                try:
                    ready.recv(2048)
                    err = 0
                except OSError as exc:
                    err = exc.errno or errno.EIO
            state[(proto, port)] = (
                "open" if err == 0 else "closed" if err == errno.ECONNREFUSED else "unreachable"
            )
            sel.unregister(ready)
            ready.close()
    for key in list(sel.get_map().values()):
        proto, port = key.data
        state[(proto, port)] = "filtered"
        cast(socket.socket, key.fileobj).close()
    for (proto, port), st in sorted(state.items()):
        _emit({"proto": proto, "port": port, "state": st})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wanwatch.lab.scan")
    sub = parser.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("listen", help="accept TCP, echo UDP, on every address")
    lp.add_argument("--max-seconds", type=float, default=300.0)
    pp = sub.add_parser("probe", help="the state of each port of one destination")
    pp.add_argument("--dst", required=True)
    pp.add_argument("--timeout", type=float, default=1.0)
    for p in (lp, pp):
        p.add_argument("--tcp", type=int, action="append", default=[])
        p.add_argument("--udp", type=int, action="append", default=[])
    args = parser.parse_args(argv)
    if args.cmd == "listen":
        _listen(args.tcp, args.udp, args.max_seconds)
    else:
        _probe(args.dst, args.tcp, args.udp, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
