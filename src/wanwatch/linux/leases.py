"""The clients on each LAN, read from dnsmasq's lease file.

dnsmasq writes one lease per line (lease.c, ``lease_update_file``)::

    <expiry> <mac> <address> <hostname|*> <client-id|*>

``expiry`` is wall-clock epoch seconds, 0 for an infinite lease. DHCPv6 adds a
``duid ...`` line and IPv6 leases; wanwatch serves IPv4 only, so those are
skipped. The file does not name the interface, so the LAN is found from the
config: the LAN whose subnet holds the address, else whose pool or static
leases do (a LAN without ``address`` has no subnet in the config).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address
from pathlib import Path
from typing import Any

from wanwatch.config import Config
from wanwatch.errors import DnsmasqError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    """One DHCP client, as dnsmasq last recorded it."""

    address: IPv4Address
    mac: str
    hostname: str | None  # None: the client sent no name and none is configured
    lan: str | None  # LAN name; None when no configured LAN holds the address
    expires: int | None  # wall-clock epoch seconds; None: infinite lease
    remaining: float | None  # seconds left when read (negative: expired); None: infinite
    client_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "lan": self.lan,
            "address": str(self.address),
            "mac": self.mac,
            "hostname": self.hostname,
            "expires": self.expires,
            "remaining_s": None if self.remaining is None else round(self.remaining),
            "client_id": self.client_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lease:
        """The inverse of :meth:`to_json` (the CLI gets leases as JSON from the daemon)."""
        remaining = data.get("remaining_s")
        return cls(
            address=IPv4Address(data["address"]),
            mac=data["mac"],
            hostname=data.get("hostname"),
            lan=data.get("lan"),
            expires=data.get("expires"),
            remaining=None if remaining is None else float(remaining),
            client_id=data.get("client_id"),
        )


def read_leases(lease_file: Path, config: Config, now_wall: float) -> list[Lease]:
    """Leases in ``lease_file``, ordered by LAN (config order) then address.

    A missing file means dnsmasq has not run yet: no leases. ``now_wall`` is the
    wall-clock time (``time.time()``) the remaining times are counted from.
    """
    try:
        text = lease_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise DnsmasqError(f"{lease_file}: cannot read the lease file: {exc.strerror}") from None
    return parse_leases(text, config, now_wall, source=str(lease_file))


def parse_leases(
    text: str, config: Config, now_wall: float, source: str = "<leases>"
) -> list[Lease]:
    """Leases in the text of a dnsmasq lease file (see :func:`read_leases`)."""
    leases: list[Lease] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] == "duid":
            continue
        if len(fields) == 5 and ":" in fields[2]:
            continue  # a DHCPv6 lease: <expiry> <iaid> <ipv6> <name> <duid>
        lease = _parse_line(fields, config, now_wall)
        if lease is None:
            # dnsmasq itself skips such lines when it reads the file back
            # ("ignoring invalid line in lease database"); do the same, loudly.
            log.warning("%s:%d: not a dnsmasq lease line: %r", source, lineno, line)
            continue
        leases.append(lease)
    order = {lan.name: i for i, lan in enumerate(config.lans)}
    leases.sort(key=lambda le: (order.get(le.lan or "", len(order)), int(le.address)))
    return leases


def _parse_line(fields: list[str], config: Config, now_wall: float) -> Lease | None:
    if len(fields) != 5 or not fields[0].isdigit():
        return None
    try:
        address = IPv4Address(fields[2])
    except AddressValueError:
        return None
    expiry = int(fields[0])
    expires = None if expiry == 0 else expiry
    mac = fields[1].lower()
    return Lease(
        address=address,
        mac=mac,
        hostname=None if fields[3] == "*" else fields[3],
        lan=lan_of(address, mac, config),
        expires=expires,
        remaining=None if expires is None else expires - now_wall,
        client_id=None if fields[4] == "*" else fields[4],
    )


def lan_of(address: IPv4Address, mac: str, config: Config) -> str | None:
    """The LAN an address was leased on: by subnet, else by pool or static lease."""
    for lan in config.lans:
        if lan.address is not None and address in lan.address.network:
            return lan.name
    for lan in config.lans:
        if lan.dhcp is None:
            continue
        lo, hi = lan.dhcp.range
        if lo <= address <= hi or any(
            s.address == address or s.mac == mac for s in lan.dhcp.static
        ):
            return lan.name
    return None


def format_leases(leases: list[Lease]) -> str:
    """A table for people: LAN, address, MAC, host name, time left."""
    if not leases:
        return "no DHCP leases"
    rows = [("LAN", "ADDRESS", "MAC", "HOSTNAME", "EXPIRES")]
    rows += [
        (
            le.lan or "?",
            str(le.address),
            le.mac,
            le.hostname or "-",
            _expiry(le.remaining),
        )
        for le in leases
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )


def _expiry(remaining: float | None) -> str:
    if remaining is None:
        return "never"
    if remaining <= 0:
        return f"expired {_span(-remaining)} ago"
    return f"in {_span(remaining)}"


def _span(seconds: float) -> str:
    """Two largest units, e.g. ``1d2h``, ``23h59m``, ``4m05s``, ``12s``."""
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d{h}h"
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"
