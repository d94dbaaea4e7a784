"""Field rules of the config: how one value is parsed and checked, and how a field is named.

A model field is ``Annotated[type, Meta(bounds), Parse(fn), Check(fn)]``: the loader
(``wanwatch.config.load``) runs ``Parse`` on the raw YAML value, lets msgspec check
type and bounds, then runs ``Check``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlsplit

from wanwatch.footprint import MAX_UPLINKS


@dataclass(frozen=True)
class Parse:
    """``Annotated`` marker: turns the raw YAML value into the field's type before
    the type and bounds are checked (raise ValueError to reject it)."""

    fn: Callable[[Any], Any]


@dataclass(frozen=True)
class Check:
    """``Annotated`` marker: checks (and may normalise) the value once it has the
    field's type and is within bounds (raise ValueError to reject it)."""

    fn: Callable[[Any], Any]


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """``500ms``, ``10s``, ``5m``, ``1h``, ``1d`` or plain seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("not a duration (use 500ms, 10s, 5m, 1h, 1d or seconds)")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    else:
        raise ValueError(f"not a duration: {value!r} (use 500ms, 10s, 5m, 1h, 1d or seconds)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Shortest exact spelling of ``seconds`` in the units above."""
    if seconds == 0:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


Duration = Annotated[float, Parse(parse_duration)]


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kMGT]i?B|[KB])?\s*$")
# Carriers sell decimal gigabytes (a "10 GB" plan is 10**10 bytes); KiB and the
# like are there for whoever means powers of two.
_UNIT_BYTES = {None: 1, "B": 1, "K": 1000, "kB": 1000, "MB": 1000**2, "GB": 1000**3}
_UNIT_BYTES |= {"TB": 1000**4, "kiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


def parse_size(value: object) -> int:
    """``10GB`` (decimal, as carriers count), ``512MiB``, ``800kB`` or plain bytes -> bytes."""
    if isinstance(value, bool):
        raise ValueError("not a size (use 10GB, 500MB, 2GiB or bytes)")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and (m := _SIZE_RE.match(value)) and m.group(2) in _UNIT_BYTES:
        return round(float(m.group(1)) * _UNIT_BYTES[m.group(2)])
    raise ValueError(f"not a size: {value!r} (use 10GB, 500MB, 2GiB or bytes)")


def parse_off(value: object) -> object:
    """YAML 1.1 reads a bare ``off`` as false: take it as the word the field means."""
    return "off" if value is False else value


def parse_share(value: object) -> float:
    """``80%`` or a fraction (``0.8``) -> the fraction."""
    if isinstance(value, bool):
        raise ValueError("not a share (use 80% or 0.8)")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and (m := re.match(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$", value)):
        return float(m.group(1)) / 100
    raise ValueError(f"not a share: {value!r} (use 80% or 0.8)")


# Linux dev_valid_name(): 1..15 bytes (IFNAMSIZ 16 with the NUL), not "." or "..",
# and no "/", ":" or whitespace.
_IFNAME_RE = re.compile(r"^[^/:\s]{1,15}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# dnsmasq's dhcp-host takes digits with an optional w/d/h/m/s suffix as a lease
# time, and "infinite" / "ignore" as keywords, wherever they appear (option.c).
_LEASE_TIME_WORD_RE = re.compile(r"^[0-9]+[wdhmsWDHMS]?$")
_DHCP_HOST_KEYWORDS = ("infinite", "ignore")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
MAX_DOMAIN = 253  # RFC 1035 2.3.4: 255 octets on the wire = 253 characters as text


def _ifname(value: str) -> str:
    if value in (".", "..") or not _IFNAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a Linux interface name (1-15 characters, no '/', ':' or spaces)"
        )
    return value


def _name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid name (letters, digits, '_', '.', '-'; at most 32)"
        )
    return value


IfName = Annotated[str, Check(_ifname)]
Name = Annotated[str, Check(_name)]


def _argv(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(
            'a hook is a non-empty argv list, e.g. ["logger", "-t", "wanwatch", "{wan} down"]'
        )
    if not all(isinstance(a, str) for a in value):
        raise ValueError("every argv item must be a string")
    return tuple(value)


Argv = Annotated[tuple[str, ...], Parse(_argv)]


def probe_targets(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """At least one target, none twice (items the loader rejected are None here)."""
    if not values:
        raise ValueError("must not be empty")
    labels = [t.label for t in values if t is not None]
    if len(set(labels)) != len(labels):
        raise ValueError("a probe target is listed twice")
    return values


def http_url(value: str) -> str:
    """An ``http://host[:port]/path`` URL; its host is sent as the Host header only."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a URL: {exc}") from None
    if parts.scheme == "https":
        # A captive portal intercepts plain HTTP; it cannot answer for an https host
        # without a certificate error (docs/probes.md, "Why http only").
        raise ValueError("only http:// is probed: a captive portal shows itself on plain HTTP")
    if parts.scheme != "http" or not parts.hostname or port == 0:
        raise ValueError(
            f"{value!r} is not an http:// URL (e.g. http://connectivitycheck.gstatic.com/generate_204)"
        )
    if parts.username is not None or any(c.isspace() or ord(c) < 0x20 for c in value):
        raise ValueError(f"{value!r}: no credentials, spaces or control characters in the URL")
    return value


def mac_address(value: str) -> str:
    if not _MAC_RE.match(value):
        raise ValueError(f"{value!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    return value.lower()


def host_name(value: str) -> str:
    if not _HOSTNAME_RE.match(value):
        raise ValueError(f"{value!r} is not a host name (letters, digits, '-')")
    if _LEASE_TIME_WORD_RE.match(value) or value.lower() in _DHCP_HOST_KEYWORDS:
        # dnsmasq's dhcp-host reads such a field as a lease time or a keyword,
        # not a name ("45m" became a 2700 s lease in the lab; "ignore" drops the host).
        raise ValueError(
            f"{value!r} reads as a lease time or keyword to dnsmasq; pick another host name"
        )
    return value


def dhcp_range(value: object) -> tuple[IPv4Address, IPv4Address]:
    if isinstance(value, str) and value.count("-") == 1:
        a, b = (s.strip() for s in value.split("-"))
        try:
            return IPv4Address(a), IPv4Address(b)
        except ipaddress.AddressValueError:
            pass
    raise ValueError(f"{value!r} is not a range (first-last, e.g. 192.168.19.2-192.168.19.254)")


def whole_seconds(value: float) -> float:
    if value != int(value):
        raise ValueError("a DHCP lease time is a whole number of seconds (RFC 2132 option 51)")
    return value


def dnsmasq_can_name(value: str) -> str:
    # dnsmasq serves every LAN: in its config '"' opens a quote, ',' splits a
    # list and a trailing '*' is a wildcard, so such a name would be refused
    # or silently mean other interfaces.
    if bad := next((c for c in value if c in '",*'), None):
        raise ValueError(f"{value!r}: dnsmasq cannot name a LAN interface containing {bad!r}")
    return value


def domain_name(value: str) -> str:
    if not _DOMAIN_RE.match(value):
        raise ValueError(f"{value!r} is not a domain name (labels of letters, digits, '-')")
    if len(value) > MAX_DOMAIN:
        raise ValueError(f"a domain name has at most {MAX_DOMAIN} characters, not {len(value)}")
    return value


def some_uplink(wans: tuple[Any, ...]) -> tuple[Any, ...]:
    if not wans:
        raise ValueError("must list at least one uplink")
    if len(wans) > MAX_UPLINKS:
        raise ValueError(
            f"lists {len(wans)} uplinks; at most {MAX_UPLINKS} (each has a routing table "
            "and mark of its own)"
        )
    return wans


Path_ = tuple[str | int, ...]  # where a field is: ("wans", 0, "probe", "targets", 1)


def format_path(path: Sequence[str | int]) -> str:
    """``wans[0].probe.targets[1]``; ``(top)`` for the empty path."""
    s = ""
    for part in path:
        s += f"[{part}]" if isinstance(part, int) else (f".{part}" if s else str(part))
    return s or "(top)"


DHCP: Literal["dhcp"] = "dhcp"  # an uplink whose address a DHCP client learns (config/dynamic.py)


def parse_wan_address(value: object) -> IPv4Interface | Literal["dhcp"]:
    """``dhcp`` or an IPv4 address with prefix, from YAML."""
    if value == DHCP:
        return DHCP
    if isinstance(value, str):
        try:
            return IPv4Interface(value)
        except ValueError:
            pass
    raise ValueError("not an IPv4 address with prefix (e.g. 192.168.0.2/24) or 'dhcp'")


# --- IPv6 (docs/ipv6.md)

IpAddress = IPv4Address | IPv6Address
AUTO: Literal["auto"] = "auto"  # an uplink's learned from RAs, a LAN's derived from its name


def parse_ip_address(value: object) -> IpAddress:
    """An IPv4 or IPv6 address, from YAML (a probe target, an upstream DNS server)."""
    if isinstance(value, str):
        try:
            return ipaddress.ip_address(value.strip())
        except ValueError:
            pass
    raise ValueError("not an IPv4 or IPv6 address")


def parse_ip_addresses(value: object) -> tuple[IpAddress, ...]:
    """A list of IPv4 and IPv6 addresses, from YAML (``dns.upstream``)."""
    if not isinstance(value, list):
        raise ValueError("must be a list")
    found = []
    for i, item in enumerate(value):
        try:
            found.append(parse_ip_address(item))
        except ValueError:
            raise ValueError(f"[{i}]: {item!r} is not an IPv4 or IPv6 address") from None
    return tuple(found)


def parse_address6(value: object) -> IPv6Interface | Literal["auto"]:
    """``auto`` or an IPv6 address with prefix, from YAML (config/ipv6.py says what
    ``auto`` means for an uplink and for a LAN)."""
    if value == AUTO:
        return AUTO
    if isinstance(value, str):
        try:
            return IPv6Interface(value.strip())
        except ValueError:
            pass
    raise ValueError("not an IPv6 address with prefix (e.g. 2001:db8:1::2/64) or 'auto'")


# --- the firewall's values (config/model.py: Firewall, Allow, Forward)

PORT_MIN, PORT_MAX = 1, 65535  # TCP and UDP ports a rule can name (port 0 is reserved)


class PortRange(NamedTuple):
    """Ports ``first`` to ``last``, both included (one port: ``first == last``)."""

    first: int
    last: int

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def overlaps(self, other: PortRange) -> bool:
        return self.first <= other.last and other.first <= self.last


_PORT_RANGE_RE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_PORT_HINT = "a port (443), a range (8000-8100)"


def parse_port_range(value: object) -> PortRange:
    """``443`` or ``"8000-8100"`` -> PortRange, within PORT_MIN..PORT_MAX and in order."""
    if isinstance(value, int) and not isinstance(value, bool):
        first = last = value
    elif isinstance(value, str) and (m := _PORT_RANGE_RE.match(value)):
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
    else:
        raise ValueError(f"{value!r} is not {_PORT_HINT}")
    for p in (first, last):
        if not PORT_MIN <= p <= PORT_MAX:
            raise ValueError(f"port {p} is outside {PORT_MIN}-{PORT_MAX}")
    if first > last:
        raise ValueError(f"{first}-{last} is reversed (the first port is above the last)")
    return PortRange(first, last)


def parse_ports(value: object) -> tuple[PortRange, ...]:
    """One port or range, or a list of them; a port listed twice (or overlapping) is refused."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError(f"must name {_PORT_HINT} or a list of them")
    ranges = tuple(parse_port_range(v) for v in items)
    for i, r in enumerate(ranges):
        for earlier in ranges[:i]:
            if r.overlaps(earlier):
                raise ValueError(f"{r} overlaps {earlier} in the same list")
    return ranges


Prefix = IPv4Network | IPv6Network


def parse_prefixes(value: object) -> tuple[Prefix, ...]:
    """Source prefixes (``203.0.113.0/24``, ``2001:db8::/32``; an address alone is one host),
    one or a list; host bits set are refused (a typo for another prefix, often)."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("must list at least one prefix (omit the key for: from anywhere)")
    out: list[Prefix] = []
    for v in items:
        if not isinstance(v, str):
            raise ValueError(f"{v!r} is not an address prefix (e.g. 203.0.113.0/24)")
        try:
            net = ipaddress.ip_network(v.strip())
        except ValueError:
            try:
                meant = ipaddress.ip_network(v.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{v!r} is not an address prefix (e.g. 203.0.113.0/24)") from None
            raise ValueError(f"{v} has host bits set: did you mean {meant}?") from None
        if net in out:
            raise ValueError(f"{net} is listed twice")
        out.append(net)
    return tuple(out)


def distinct_names(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(set(values)) != len(values):
        raise ValueError("a name is listed twice")
    return values


# --- policy rules' values (config/model.py: Rule; docs/rules.md)


def parse_sources(value: object) -> tuple[str | Prefix, ...]:
    """``from`` of a rule: LAN names and/or prefixes (either family), one or a list."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("must list at least one LAN name or prefix (omit the key: from anywhere)")
    out: list[str | Prefix] = []
    for v in items:
        if isinstance(v, str) and _NAME_RE.match(v) and not _looks_numeric(v):
            item: str | Prefix = v
        else:
            (item,) = parse_prefixes(v)
        if item in out:
            raise ValueError(f"{item} is listed twice")
        out.append(item)
    return tuple(out)


def _looks_numeric(v: str) -> bool:
    # "10.0.0.1" matches the name pattern too; a name is never an address
    return all(part.isdigit() for part in v.split("."))


def parse_via(value: object) -> object:
    """``via: [A, B]`` (failover, in order) is short for ``{mode: failover, uplinks: [A, B]}``;
    an uplink is a name or ``{name: A, weight: 2}``."""
    if isinstance(value, list):
        value = {"uplinks": value}
    if isinstance(value, dict) and isinstance(value.get("uplinks"), list):
        members = [{"name": m} if isinstance(m, str) else m for m in value["uplinks"]]
        value = {**value, "uplinks": members}
    return value


def parse_sticky(value: object) -> object:
    """``sticky: src`` is short for ``{by: src}``."""
    return {"by": value} if isinstance(value, str) else value


def parse_domains(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("must list at least one domain name")
    out: list[str] = []
    for v in items:
        if not isinstance(v, str):
            raise ValueError(f"{v!r} is not a domain name")
        name = domain_name(v.strip().lower().rstrip("."))
        if name in out:
            raise ValueError(f"{name} is listed twice")
        out.append(name)
    return tuple(out)
