"""DNS probes: an A query over UDP to the target server, through a pinned socket.

dnspython builds and parses the messages and matches the reply to the query
(``Message.is_response``: same id and question). The socket is ours, pinned
like every probe (pin.py) and connected to the server, so the kernel passes us
only the server's datagrams (udp(7)); one that does not parse or does not
answer our query is skipped, so a stray or forged datagram cannot end the probe.

An answer counts when its rcode is NOERROR and, with ``answer:`` set, it holds
that address: a resolver that answers every name with a portal's address, or
SERVFAIL because its own upstream is gone, does not prove the internet works.

Memory (the daemon's budget is 40 MB, docs/architecture.md): dnspython is
imported only when a config has a dns target, and then only the message layer.
``dns.asyncquery`` is not used: with ``dns.query`` it added 0.4-0.6 MB for an
exchange of one datagram each way, which the loop's own ``sock_sendto`` and
``sock_recvfrom`` do. ``dns._features`` is replaced before dnspython loads (see
:data:`_FEATURES`): dnspython's own one imports ``importlib.metadata`` (with
``email``, ``zipfile`` and ``csv``) and scans every installed distribution to
learn whether optional packages (cryptography, httpx, aioquic, trio, idna) are
there, for DNSSEC, DoH, DoQ, trio and IDNA 2008 names: features a probe does
not use. That cost 1.3 MB resident (RSS after importing the daemon and this
module, 2026-12-07); the three changes together took this module's import from
3.2 MB to about 1.5 MB.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import types
from collections.abc import Callable
from typing import Final

from wanwatch.config.model import DnsTarget
from wanwatch.probe.pin import UplinkSpec, pinned_socket
from wanwatch.probe.tcp import Answer


def _no_optional_features() -> types.ModuleType:
    """``dns._features`` as dnspython sees it when none of its optional packages is
    installed: ``have()`` False for every feature, ``force()`` as dnspython's."""
    mod = types.ModuleType("dns._features", "dnspython's optional features, all off (dns.py)")
    cache: dict[str, bool] = {}

    def have(feature: str) -> bool:
        return cache.get(feature, False)

    def force(feature: str, enabled: bool) -> None:
        cache[feature] = enabled

    mod.have = have  # type: ignore[attr-defined]
    mod.force = force  # type: ignore[attr-defined]
    return mod


# dnspython asks ``dns._features.have()`` (dns/_features.py, dnspython 2.4-2.x;
# pyproject bounds it below 3) before importing an optional package; with every
# answer False, dns.name encodes names with the standard library's IDNA 2003
# codec, which is exact for the ASCII names a probe asks.
_FEATURES: Final = "dns._features"
if _FEATURES not in sys.modules:
    sys.modules[_FEATURES] = _no_optional_features()

import dns  # noqa: E402  (the package alone imports nothing else)

# An import finds a module already in sys.modules without binding it to its
# package, and dnspython's modules read it as the attribute ``dns._features``.
dns._features = sys.modules[_FEATURES]

import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

DNS_PORT: Final = 53
# No reply is awaited longer than this; the hub's own limit on a probe is longer.
QUERY_TIMEOUT: Final = 10.0
_MAX_REPLY: Final = 65535  # a UDP datagram's largest payload


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
    loop = asyncio.get_running_loop()
    with pinned_socket(spec, socket.SOCK_DGRAM) as sock:
        sock.connect((str(target.address), DNS_PORT))
        start = clock_ns()
        await loop.sock_sendall(sock, query.to_wire())
        try:
            async with asyncio.timeout(QUERY_TIMEOUT):
                reply = await _reply_to(loop, sock, query)
        except TimeoutError:
            raise TimeoutError(f"no answer from {target.address}") from None
        rtt = clock_ns() - start
    return Answer(rtt) if answered(reply, target) else None


async def _reply_to(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, query: dns.message.Message
) -> dns.message.Message:
    """The first datagram that parses as the answer to ``query``."""
    while True:
        data = await loop.sock_recv(sock, _MAX_REPLY)
        try:
            reply = dns.message.from_wire(data)
        except dns.exception.DNSException:
            continue  # garbled or truncated: not our answer
        if query.is_response(reply):
            return reply
