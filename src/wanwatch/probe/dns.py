"""DNS probes: an A query over UDP to the target server, through a pinned socket.

dnspython builds and parses the messages and matches the reply to the query
(``dns.asyncquery.udp``: same id and question, from the server's address and
port; anything else is skipped, so a stray or forged datagram cannot end the
probe). The socket is ours, pinned like every probe (pin.py), and handed to
dnspython through its own datagram-socket interface.

An answer counts when its rcode is NOERROR and, with ``answer:`` set, it holds
that address: a resolver that answers every name with a portal's address, or
SERVFAIL because its own upstream is gone, does not prove the internet works.
dnspython is imported only when a config has a dns target: it costs ~3.4 MB
resident beside the daemon's own imports (RSS after importing
wanwatch.daemon.assemble, then this module; 2026-12-07).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, Final

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

# The public name is dns.asyncbackend.DatagramSocket, a re-export (without
# __all__) that mypy's strict mode does not follow; this is its definition.
from dns._asyncbackend import DatagramSocket

from wanwatch.config.model import DnsTarget
from wanwatch.probe.pin import UplinkSpec, pinned_socket
from wanwatch.probe.tcp import Answer

DNS_PORT: Final = 53
# No reply is awaited longer than this; the hub's own limit on a probe is longer.
QUERY_TIMEOUT: Final = 10.0


class PinnedDatagram(DatagramSocket):
    """A pinned, non-blocking UDP socket as dnspython's asyncio datagram socket."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock.family, socket.SOCK_DGRAM)
        self._sock = sock

    async def sendto(self, what: bytes, destination: Any, timeout: float | None) -> int:
        await asyncio.get_running_loop().sock_sendto(self._sock, what, destination)
        return len(what)

    async def recvfrom(self, size: int, timeout: float | None) -> tuple[bytes, Any]:
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.get_running_loop().sock_recvfrom(self._sock, size)
        except TimeoutError:
            raise dns.exception.Timeout from None

    async def close(self) -> None:
        self._sock.close()

    async def getpeername(self) -> Any:
        return self._sock.getpeername()

    async def getsockname(self) -> Any:
        return self._sock.getsockname()


def answered(reply: dns.message.Message, target: DnsTarget) -> bool:
    """Whether ``reply`` proves the server resolves (see the module docstring)."""
    if reply.rcode() != dns.rcode.NOERROR:
        return False
    if target.answer is None:
        return True
    found = {
        rdata.address
        for rrset in reply.answer
        if rrset.rdtype == dns.rdatatype.A
        for rdata in rrset
    }
    return str(target.answer) in found


async def probe(spec: UplinkSpec, target: DnsTarget, clock_ns: Callable[[], int]) -> Answer | None:
    """Ask the server; None for a reply that does not count. Raises TimeoutError when
    none came (a loss), OSError when the socket cannot send."""
    query = dns.message.make_query(target.name, dns.rdatatype.A)
    async with PinnedDatagram(pinned_socket(spec, socket.SOCK_DGRAM)) as sock:
        start = clock_ns()
        try:
            reply = await dns.asyncquery.udp(
                query,
                str(target.address),
                timeout=QUERY_TIMEOUT,
                port=DNS_PORT,
                sock=sock,
                ignore_unexpected=True,
                ignore_errors=True,
            )
        except dns.exception.Timeout:
            raise TimeoutError(f"no answer from {target.address}") from None
        rtt = clock_ns() - start
    return Answer(rtt) if answered(reply, target) else None
