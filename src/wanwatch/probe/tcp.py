"""TCP connect probes: a SYN-ACK or a RST from the target proves the path.

Either answer comes from beyond the uplink (a RST from a closed port is the
target's kernel speaking), so both count; silence is a loss, decided by the
engine's timeout like an unanswered echo. The HTTP probe (http.py) opens its
connection here too.

A probe is one SYN, as an echo is one request: a connect the kernel completed
only by retransmitting its SYN (initial RTO 1 s, RFC 6298 2.1) lost that SYN or
its answer, and its round trip (1 s, 3 s, ...) says nothing of the path's delay.
It counts as unanswered (TimeoutError), read from ``tcpi_total_retrans``
(TCP_INFO, tcp(7)); otherwise a blackhole's late connects, answered once it
clears, would inflate the method's RTT and with it every later timeout (seen in
bench/probe_methods.py: failover after a second cut took 5-15 s instead of
0.9 s). A connect refused after a retransmitted SYN cannot be told this way
(the kernel's reset clears the count) and still counts.

The probe closes with a RST (``SO_LINGER`` 0, socket(7)) instead of a FIN:
one 40-byte packet instead of a FIN/ACK exchange, no TIME_WAIT socket left on
the router per probe, and the server's kernel frees the connection at once.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from wanwatch.config.model import TcpTarget
from wanwatch.probe.pin import IpAddress, UplinkSpec, pinned_socket

_LINGER_RESET = struct.pack("ii", 1, 0)  # struct linger {l_onoff = 1, l_linger = 0}
# struct tcp_info (<linux/tcp.h>): eight u8 fields, then u32s; tcpi_total_retrans
# is the 24th u32 (bytes 100-103), there since Linux 2.6.
_TCP_INFO_LEN = 104
_TOTAL_RETRANS = 100


@dataclass(frozen=True, slots=True)
class Answer:
    """A probe that counts as answered: its round trip, and for HTTP the portal it
    was sent to instead (None: the expected answer)."""

    rtt_ns: int
    portal: str | None = None


async def open_stream(spec: UplinkSpec, address: IpAddress, port: int) -> socket.socket:
    """A TCP connection to ``address:port`` through the uplink; raises OSError
    (ConnectionRefusedError: the target answered with a RST; TimeoutError: only a
    retransmitted SYN was answered)."""
    sock = pinned_socket(spec, socket.SOCK_STREAM)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (str(address), port))
        if _syn_retransmitted(sock):
            raise TimeoutError(f"{address}:{port}: the first SYN got no answer")
    except BaseException:
        sock.close()
        raise
    return sock


def _syn_retransmitted(sock: socket.socket) -> bool:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    retrans: int = struct.unpack_from("I", info, _TOTAL_RETRANS)[0]
    return retrans > 0


def reset(sock: socket.socket) -> None:
    """Close with a RST (see the module docstring)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    sock.close()


async def probe(spec: UplinkSpec, target: TcpTarget, clock_ns: Callable[[], int]) -> Answer:
    """Connect and reset; raises OSError when the connect fails otherwise than by RST."""
    start = clock_ns()
    try:
        sock = await open_stream(spec, target.address, target.port)
    except ConnectionRefusedError:
        return Answer(clock_ns() - start)
    rtt = clock_ns() - start
    reset(sock)
    return Answer(rtt)
