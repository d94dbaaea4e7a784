"""TCP connect probes: a SYN-ACK or a RST from the target proves the path.

Either answer comes from beyond the uplink (a RST from a closed port is the
target's kernel speaking), so both count; silence is a loss, decided by the
engine's timeout like an unanswered echo. The HTTP probe (http.py) opens its
connection here too.

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
from ipaddress import IPv4Address

from wanwatch.config.model import TcpTarget
from wanwatch.probe.pin import UplinkSpec, pinned_socket

_LINGER_RESET = struct.pack("ii", 1, 0)  # struct linger {l_onoff = 1, l_linger = 0}


@dataclass(frozen=True, slots=True)
class Answer:
    """A probe that counts as answered: its round trip, and for HTTP the portal it
    was sent to instead (None: the expected answer)."""

    rtt_ns: int
    portal: str | None = None


async def open_stream(spec: UplinkSpec, address: IPv4Address, port: int) -> socket.socket:
    """A TCP connection to ``address:port`` through the uplink; raises OSError
    (ConnectionRefusedError: the target answered with a RST)."""
    sock = pinned_socket(spec, socket.SOCK_STREAM)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (str(address), port))
    except BaseException:
        sock.close()
        raise
    return sock


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
