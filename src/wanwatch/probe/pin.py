"""A socket pinned to one uplink: the same pinning for every probe method.

A probe for uplink X must leave through X even when X is not the active route,
and must fail - never succeed through another uplink - when X is dead
(docs/lab-notes.md, "Routing and probes"). Every probe socket, ICMP, TCP or
UDP, gets:

- ``SO_MARK`` = the uplink's fwmark: the backend's rule ``fwmark M/FWMARK_MASK
  lookup <uplink table>`` sends it via the uplink's gateway, whatever the main
  table says;
- ``SO_BINDTODEVICE`` = the uplink's interface, a second guard. When the uplink
  table has no usable route - the kernel deletes a device's routes when it goes
  admin down, and skips them on carrier loss with ignore_routes_with_linkdown=1
  - rule lookup falls through to the main table, and a mark-only probe (even
  with a bound source address) leaves through the other uplink, is masqueraded
  there and comes back: the dead uplink reported healthy (measured in
  tests/lab/test_probe.py). Bound to its device, the lookup may only use that
  device, so the send fails (ENETUNREACH) or the packet dies on the dead link.
  It also makes the socket receive only what arrived on that interface;
- optionally a bound source address, matching the backend's
  ``from <address> lookup <uplink table>`` rule.

An IPv6 probe (``family`` 6) is pinned the same way, through the backend's IPv6
rules (the same marks and tables, ``ip -6 rule``).

Device binding alone, with no mark, fails safely: the kernel treats the target
as on-link and ARPs for it. So pass the uplink's real fwmark, never 0.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

# As config.fields.IpAddress: the lab workers load this module and no config.
IpAddress = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class UplinkSpec:
    """How one uplink's probes are pinned."""

    ifname: str
    mark: int
    source: IpAddress | None
    bind_device: bool
    family: int = 4


def pinned_socket(spec: UplinkSpec, kind: int, proto: int = 0) -> socket.socket:
    """A non-blocking socket of ``kind`` and the spec's family pinned to the uplink;
    raises OSError (ENODEV: no such interface yet, EADDRNOTAVAIL: its address is not
    there yet)."""
    sock = socket.socket(socket.AF_INET6 if spec.family == 6 else socket.AF_INET, kind, proto)
    try:
        sock.setblocking(False)
        if spec.mark:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, spec.mark)
        if spec.bind_device:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, spec.ifname.encode())
        if spec.source is not None:
            sock.bind((str(spec.source), 0))  # a 2-tuple is enough for AF_INET6 too
    except OSError:
        sock.close()
        raise
    return sock
