"""The config model: a tree of frozen msgspec Structs, each field typed and bounded."""

from __future__ import annotations

from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self

import msgspec
from msgspec import Meta, Struct

from wanwatch.config.fields import (
    Argv,
    Check,
    Duration,
    IfName,
    IpAddress,
    Name,
    Parse,
    PortRange,
    Prefix,
    dhcp_range,
    distinct_names,
    distinct_targets,
    dnsmasq_can_name,
    domain_name,
    host_name,
    mac_address,
    parse_address6,
    parse_ip_address,
    parse_port_range,
    parse_ports,
    parse_prefixes,
    parse_wan_address,
    some_uplink,
    whole_seconds,
)


class Model(Struct, frozen=True):
    """A frozen, typed config section. msgspec passes ``frozen`` on to subclasses;
    they repeat it for mypy. Fields named in ``_internal`` are not read from YAML."""

    _internal: ClassVar[tuple[str, ...]] = ()

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (not validated: for code and tests, not user input)."""
        return msgspec.structs.replace(self, **changes)

    def to_data(self, *, drop_none: bool = False, drop_defaults: bool = False) -> dict[str, Any]:
        """Plain data for YAML or JSON: lists for tuples, addresses as text."""
        out: dict[str, Any] = {}
        for f in msgspec.structs.fields(self):
            if f.name in self._internal:
                continue
            value = getattr(self, f.name)
            if (drop_none and value is None) or (drop_defaults and value == _default(f)):
                continue
            out[f.encode_name] = _plain(value, drop_none, drop_defaults)
        return out


def _default(f: msgspec.structs.FieldInfo) -> Any:
    if f.default is not msgspec.NODEFAULT:
        return f.default
    if f.default_factory is not msgspec.NODEFAULT:
        return f.default_factory()
    return msgspec.NODEFAULT


def _plain(value: Any, drop_none: bool, drop_defaults: bool) -> Any:
    if isinstance(value, Model):
        return value.to_data(drop_none=drop_none, drop_defaults=drop_defaults)
    if isinstance(value, PortRange):  # as the loader reads it: 443 or "8000-8100"
        return value.first if value.size == 1 else str(value)
    if isinstance(value, tuple):
        return [_plain(v, drop_none, drop_defaults) for v in value]
    if isinstance(
        value, IPv4Address | IPv4Interface | IPv4Network | IPv6Address | IPv6Interface | IPv6Network
    ):
        return str(value)
    return value


# Each default, bound and meaning of the monitor settings is declared once, here;
# the model, `wanwatch check --explain` and the docs derive from this table.
#   key: (default, low, high, meaning)
MONITOR_FIELDS: dict[str, tuple[Any, float, float, str]] = {
    "interval": (0.5, 0.1, 60, "time between probes while healthy"),
    "down_after": (3, 1, 50, "fewest lost probes in a row that can mark an uplink down"),
    "up_after": (5, 1, 100, "good probes in a row that mark it up again"),
    "hold": (10.0, 0, 86400, "an uplink must stay up this long before it is preferred again"),
    "max_hold": (300.0, 0, 86400, "flap damping: the longest hold after repeated flaps"),
    "timeout": (None, 0.01, 30, "fixed probe timeout; unset: derived from the measured RTT"),
    "min_timeout": (0.15, 0.01, 30, "floor of the RTT-derived probe timeout"),
    "fast_interval": (0.025, 0.005, 5, "probe cadence while a loss is unconfirmed"),
    "degraded_loss": (40.0, 1, 100, "% loss over loss_window that marks an uplink degraded"),
    "degraded_rtt": (1.0, 0.001, 60, "smoothed RTT that marks an uplink degraded"),
    "loss_window": (30.0, 1, 3600, "window of the loss and RTT figures"),
}


def _mon(key: str) -> Meta:
    _, lo, hi, meaning = MONITOR_FIELDS[key]
    return Meta(ge=lo, le=hi, description=meaning)


_Interval = Annotated[Duration, _mon("interval")]
_DownAfter = Annotated[int, _mon("down_after")]
_UpAfter = Annotated[int, _mon("up_after")]
_Hold = Annotated[Duration, _mon("hold")]
_MaxHold = Annotated[Duration, _mon("max_hold")]
_Timeout = Annotated[Duration, _mon("timeout")]
_MinTimeout = Annotated[Duration, _mon("min_timeout")]
_FastInterval = Annotated[Duration, _mon("fast_interval")]
_DegradedLoss = Annotated[float, _mon("degraded_loss")]
_DegradedRtt = Annotated[Duration, _mon("degraded_rtt")]
_LossWindow = Annotated[Duration, _mon("loss_window")]


class Monitor(Model, frozen=True):
    """How an uplink is judged. Defaults are meant to be right for an LTE primary."""

    interval: _Interval = MONITOR_FIELDS["interval"][0]
    down_after: _DownAfter = MONITOR_FIELDS["down_after"][0]
    up_after: _UpAfter = MONITOR_FIELDS["up_after"][0]
    hold: _Hold = MONITOR_FIELDS["hold"][0]
    max_hold: _MaxHold = MONITOR_FIELDS["max_hold"][0]
    timeout: _Timeout | None = MONITOR_FIELDS["timeout"][0]
    min_timeout: _MinTimeout = MONITOR_FIELDS["min_timeout"][0]
    fast_interval: _FastInterval = MONITOR_FIELDS["fast_interval"][0]
    degraded_loss: _DegradedLoss = MONITOR_FIELDS["degraded_loss"][0]
    degraded_rtt: _DegradedRtt = MONITOR_FIELDS["degraded_rtt"][0]
    loss_window: _LossWindow = MONITOR_FIELDS["loss_window"][0]


if TYPE_CHECKING:
    ProbeTarget = IpAddress
else:  # msgspec cannot convert a union of two custom types: Parse does it all
    ProbeTarget = Annotated[Any, Parse(parse_ip_address)]


class Probe(Model, frozen=True):
    """Where an uplink's health is measured, and per-uplink monitor overrides."""

    # IPv4 and IPv6 addresses; each family's are the evidence for that family (docs/ipv6.md)
    targets: Annotated[tuple[ProbeTarget, ...], Meta(min_length=1), Check(distinct_targets)]
    interval: _Interval | None = None
    down_after: _DownAfter | None = None
    up_after: _UpAfter | None = None
    hold: _Hold | None = None
    max_hold: _MaxHold | None = None
    timeout: _Timeout | None = None
    min_timeout: _MinTimeout | None = None
    fast_interval: _FastInterval | None = None
    degraded_loss: _DegradedLoss | None = None
    degraded_rtt: _DegradedRtt | None = None
    loss_window: _LossWindow | None = None

    def overrides(self) -> dict[str, Any]:
        return {k: v for k in MONITOR_FIELDS if (v := getattr(self, k)) is not None}

    def family(self, version: int) -> tuple[IpAddress, ...]:
        """The targets of one address family (4 or 6), in config order."""
        return tuple(t for t in self.targets if t.version == version)


if TYPE_CHECKING:
    WanAddress = IPv4Interface | Literal["dhcp"]
else:  # msgspec cannot convert a union of a custom type and a literal: Parse does it all
    WanAddress = Annotated[Any, Parse(parse_wan_address)]
if TYPE_CHECKING:
    Address6 = IPv6Interface | Literal["auto"]
else:  # as WanAddress
    Address6 = Annotated[Any, Parse(parse_address6)]


class Wan(Model, frozen=True, kw_only=True):
    """An uplink (dynamic.py: ``address: dhcp``, point-to-point without ``gateway``)."""

    name: Name
    interface: IfName
    address: WanAddress | None = None
    gateway: IPv4Address | None = None
    # IPv6 (docs/ipv6.md): a static address or "auto" (router advertisements: SLAAC
    # address and default router); None: the uplink carries no IPv6.
    address6: Address6 | None = None
    gateway6: IPv6Address | None = None  # static only; link-local (fe80::1) is usual
    # A prefix the ISP routes to us (static delegation): the LANs' ULAs are translated
    # into it (RFC 6296); None: LAN IPv6 is masqueraded to the uplink's address.
    prefix6: IPv6Network | None = None
    priority: Annotated[int, Meta(ge=1, le=255)] = 1  # lower is preferred (RouterOS distance)
    weight: Annotated[int, Meta(ge=1, le=100)] = 1  # share of new connections in loadbalance
    probe: Probe


class StaticLease(Model, frozen=True):
    mac: Annotated[str, Check(mac_address)]
    address: IPv4Address
    hostname: Annotated[str, Check(host_name)] | None = None


class Dhcp(Model, frozen=True):
    """A DHCP pool on a LAN."""

    range: Annotated[tuple[IPv4Address, IPv4Address], Parse(dhcp_range)]
    dns: tuple[IPv4Address, ...] | None = None  # handed to clients; None: the router itself
    lease_time: Annotated[Duration, Meta(ge=120, le=365 * 86400), Check(whole_seconds)] = (
        12 * 3600.0
    )
    static: tuple[StaticLease, ...] = ()


class Lan(Model, frozen=True):
    """A network behind the router."""

    name: Name
    interface: Annotated[IfName, Check(dnsmasq_can_name)]
    address: IPv4Interface | None = None
    # The router's IPv6 address on the LAN: a /64 given, or "auto": a ULA /64 derived
    # from the LAN's name (config/ipv6.py); None: the LAN has no IPv6.
    address6: Address6 | None = None
    dhcp: Dhcp | None = None
    # A guest network: the internet, DHCP and DNS on the router, nothing else
    # (docs/firewall.md).
    isolate: bool = False


class Dns(Model, frozen=True):
    upstream: tuple[IPv4Address, ...] = ()  # where the router's forwarder asks
    domain: Annotated[str, Check(domain_name)] | None = None  # local domain for LAN names


class Nat(Model, frozen=True):
    masquerade: bool = True


Classifier = Literal[
    "both-addresses",
    "src-address",
    "dst-address",
    "both-addresses-and-ports",
    "src-address-and-port",
    "dst-address-and-port",
]


class Policy(Model, frozen=True):
    mode: Literal["failover", "loadbalance"] = "failover"
    classifier: Classifier = "both-addresses"  # loadbalance: fields hashed per connection


# --- the firewall (docs/firewall.md; rendered by linux/firewall.py)

if TYPE_CHECKING:
    Prefixes = tuple[Prefix, ...]
else:  # msgspec cannot convert a union of two custom types: Parse does it all
    Prefixes = Annotated[Any, Parse(parse_prefixes)]
Ports = Annotated[tuple[PortRange, ...], Parse(parse_ports)]
OnePortRange = Annotated[PortRange, Parse(parse_port_range)]
WanNames = Annotated[tuple[Name, ...], Meta(min_length=1), Check(distinct_names)]

# Protocols an opening can name; "tcp+udp" is both. Only the first three take ports.
Proto = Literal["tcp", "udp", "tcp+udp", "icmp", "icmpv6", "gre", "esp", "ah"]
PortProto = Literal["tcp", "udp", "tcp+udp"]
PORT_PROTOS: tuple[str, ...] = ("tcp", "udp", "tcp+udp")
# A forward whose to_port range is shifted from its port range is one nft map
# element per port (nft 1.0.6 has no port-offset NAT); the table is rendered
# and swapped whole on every change, so the map is kept small.
MAX_SHIFTED_PORTS = 1024


class Allow(Model, frozen=True, kw_only=True, rename={"from_": "from"}):
    """An opening on the router itself, from the uplinks."""

    name: Name
    proto: Proto
    port: Ports | None = None  # tcp, udp and tcp+udp need it; the others take none
    from_: Prefixes | None = None  # source prefixes; None: from anywhere
    wans: WanNames | None = None  # uplink names; None: every uplink


class Forward(Model, frozen=True, kw_only=True, rename={"from_": "from"}):
    """A port forward (destination NAT) from the uplinks to a host on a LAN."""

    name: Name
    proto: PortProto
    port: OnePortRange  # what the internet connects to
    to: IPv4Address  # the LAN host
    to_port: OnePortRange | None = None  # None: the same port(s); a range maps 1:1
    from_: Prefixes | None = None  # source prefixes (IPv4); None: from anywhere
    wans: WanNames | None = None  # uplink names; None: every uplink


class Firewall(Model, frozen=True):
    """What may reach the router and the LANs from the uplinks (docs/firewall.md)."""

    enabled: bool = True  # false: wanwatch filters nothing (an admin's own ruleset)
    allow: tuple[Allow, ...] = ()


class Hooks(Model, frozen=True):
    """Commands run on uplink events, as argv lists (never a shell)."""

    on_down: Argv | None = None
    on_up: Argv | None = None
    on_failover: Argv | None = None
    on_failback: Argv | None = None
    on_admin: Argv | None = None  # wanwatch disable / enable
    timeout: Annotated[Duration, Meta(ge=0.1, le=600)] = 10.0


# --- a router pair (config/ha.py explains the design)

# RFC 5798 5.2.7: the advertisement interval is 12 bits of centiseconds.
ADVERT_MIN = 0.01
ADVERT_MAX = 40.95
# RFC 3768 5.3.6: simple-text authentication data is 8 octets.
PASSWORD_MAX = 8


def _password(value: str) -> str:
    if not 1 <= len(value.encode()) <= PASSWORD_MAX or any(c.isspace() for c in value):
        raise ValueError(f"a VRRP password is 1-{PASSWORD_MAX} bytes without spaces")
    return value


class HaSegment(Model, frozen=True, kw_only=True):
    """One VRRP instance: this router's own address on a segment and the instance id."""

    address: IPv4Interface  # this router's own address; the section's address is the shared one
    # RFC 5798 5.2.3; one per segment, so the same id may serve several segments
    vrid: Annotated[int, Meta(ge=1, le=255)]
    # VRRPv2 simple-text authentication (RFC 3768 5.3.6); VRRPv3 has none.
    password: Annotated[str, Check(_password)] | None = None


class HaLan(HaSegment, frozen=True, kw_only=True):
    lan: Name  # the lans[] entry whose address is the shared gateway


class HaWan(HaSegment, frozen=True, kw_only=True):
    _internal: ClassVar[tuple[str, ...]] = ("shared",)

    wan: Name  # the wans[] entry whose address is the shared NAT address
    shared: IPv4Interface | None = None  # set by local_view(): the pair's NAT address


class HaSync(Model, frozen=True):
    """The link between the two routers that carries conntrackd's state."""

    interface: IfName
    address: IPv4Interface  # this router's address on it
    peer: IPv4Address  # the other router's address on it


class Ha(Model, frozen=True, kw_only=True):
    """This router's part of a pair."""

    # RFC 5798 5.2.4: 255 is reserved for the owner of the address, 0 for resigning.
    priority: Annotated[int, Meta(ge=1, le=254)]
    preempt: bool = True  # the higher priority takes the master role back
    advert_interval: Annotated[Duration, Meta(ge=ADVERT_MIN, le=ADVERT_MAX)] = 0.1
    sync: HaSync
    lans: Annotated[tuple[HaLan, ...], Meta(min_length=1)]
    wans: tuple[HaWan, ...] = ()


class Config(Model, frozen=True):
    _internal: ClassVar[tuple[str, ...]] = ("source",)

    wans: Annotated[tuple[Wan, ...], Meta(description="at least one uplink"), Check(some_uplink)]
    lans: tuple[Lan, ...] = ()
    dns: Dns = Dns()
    nat: Nat = Nat()
    policy: Policy = Policy()
    monitor: Monitor = Monitor()
    hooks: Hooks = Hooks()
    firewall: Firewall = Firewall()
    forwards: tuple[Forward, ...] = ()
    ha: Ha | None = None  # a router pair (config/ha.py)
    source: str = "<memory>"  # the file it came from

    def wan(self, name: str) -> Wan:
        for w in self.wans:
            if w.name == name:
                return w
        raise KeyError(name)

    def monitor_for(self, wan: Wan) -> Monitor:
        """The monitor settings of one uplink: defaults, then global, then its probe block."""
        return self.monitor.replace(**wan.probe.overrides())
