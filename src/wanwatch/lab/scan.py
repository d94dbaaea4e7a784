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

Both run as lab workers (``python -m wanwatch.lab.worker listen|scan``, the
worker side in lab/worker/scan.py) inside a namespace, started through
:meth:`Lab.spawn` (stopped by PID) and bounded in ports and time there
(lab/worker/limits.py); this module is the controller side.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wanwatch.errors import LabError
from wanwatch.lab import netns
from wanwatch.lab.worker import worker_argv
from wanwatch.lab.worker.limits import MAX_SCAN_PORTS

if TYPE_CHECKING:
    from wanwatch.lab.procs import Proc
    from wanwatch.lab.topology import Lab

_POLL = 0.01


@dataclass(frozen=True)
class Port:
    proto: str  # "tcp" | "udp"
    port: int

    def __str__(self) -> str:
        return f"{self.port}/{self.proto}"


# --------------------------------------------------------------------------- controller side


def _ports(flag: str, ports: Sequence[int]) -> list[str]:
    if len(ports) > MAX_SCAN_PORTS:
        raise LabError(f"at most {MAX_SCAN_PORTS} {flag} ports at once")
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
    argv = worker_argv(
        "listen", "--max-seconds", str(seconds), *_ports("tcp", tcp), *_ports("udp", udp)
    )
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
    argv = worker_argv(
        "scan", "--dst", dst, "--timeout", str(timeout), *_ports("tcp", tcp), *_ports("udp", udp)
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
