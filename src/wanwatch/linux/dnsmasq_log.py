"""dnsmasq's log turned into events: ``dhcp.<message>`` for DHCP, ``dnsmasq.log`` else."""

from __future__ import annotations

import re
from ipaddress import AddressValueError, IPv4Address
from typing import TYPE_CHECKING

from wanwatch.engine.events import Event, FieldValue, event

if TYPE_CHECKING:
    from wanwatch.config import Config

# --------------------------------------------------------------------------- log -> events

_PREFIX_RE = re.compile(r"^(dnsmasq(?:-[a-z]+)?)(?:\[\d+\])?: ")
_DHCP_RE = re.compile(
    r"^(?:(?P<xid>\d+) )?DHCP(?P<kind>[A-Z]+)\((?P<iface>[^)]*)\)\s*(?P<rest>.*)$"
)
_MAC_RE = re.compile(r"^[0-9a-f]{2}(?:[:-][0-9a-f]{2})+$", re.IGNORECASE)


def strip_prefix(line: str) -> str:
    return _PREFIX_RE.sub("", line.strip(), count=1)


def log_event(line: str, config: Config, at: float) -> Event | None:
    """One dnsmasq log line as an event; None for a blank line.

    DHCP messages become ``dhcp.<message>`` (an ACK is ``dhcp.lease``) with the
    LAN, address, MAC and host name; anything else is ``dnsmasq.log msg=...``.
    """
    line = line.strip()
    if not line:
        return None
    m = _PREFIX_RE.match(line)
    source = m.group(1) if m else "dnsmasq"
    text = line[m.end() :] if m else line
    d = _DHCP_RE.match(text) if source == "dnsmasq-dhcp" else None
    if d is None:
        return event(at, "dnsmasq.log", source=source, msg=text)
    kind = d.group("kind").lower()
    words = d.group("rest").split()
    address = _ipv4(words[0]) if words else None
    if address is not None:
        words.pop(0)
    mac = words.pop(0).lower() if words and _MAC_RE.match(words[0]) else None
    rest = " ".join(words) or None
    iface = d.group("iface")
    lan = next((lan.name for lan in config.lans if lan.interface == iface), None)
    fields: dict[str, FieldValue] = {
        "lan": lan,
        "interface": iface,
        "address": address,
        "mac": mac,
    }
    # dnsmasq writes the client's name after an ACK, a reason after anything else.
    fields["hostname" if kind == "ack" else "detail"] = rest
    fields["xid"] = d.group("xid")
    return event(at, "dhcp.lease" if kind == "ack" else f"dhcp.{kind}", **fields)


def _ipv4(word: str) -> str | None:
    try:
        return str(IPv4Address(word))
    except AddressValueError:
        return None
