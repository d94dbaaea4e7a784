"""The config model: a tree of frozen msgspec Structs, each field typed and bounded."""

from __future__ import annotations

from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
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
    dnsmasq_can_name,
    domain_name,
    host_name,
    http_url,
    mac_address,
    parse_address6,
    parse_domains,
    parse_ip_address,
    parse_ip_addresses,
    parse_off,
    parse_port_range,
    parse_ports,
    parse_prefixes,
    parse_share,
    parse_size,
    parse_sources,
    parse_sticky,
    parse_via,
    parse_wan_address,
    probe_targets,
    some_uplink,
    whole_seconds,
)


class Model(Struct, frozen=True):
    """A frozen, typed config section. msgspec passes ``frozen`` on to subclasses;
    they repeat it for mypy. Fields named in ``_internal`` are not read from YAML.

    Sections of a union (``TcpTarget | HttpTarget``) carry a ``_tag``, (key, value):
    the loader picks the member whose value the item's key holds; a ``_shorthand``
    member takes a plain value for that one field (``8.8.8.8`` for ``address:``)."""

    _internal: ClassVar[tuple[str, ...]] = ()
    _tag: ClassVar[tuple[str, str] | None] = None
    _shorthand: ClassVar[str | None] = None

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
    "clean_min_timeout": (
        0.05,
        0.01,
        30,
        "the floor once the path is measured clean (never above min_timeout)",
    ),
    "fast_interval": (0.025, 0.005, 5, "probe cadence while a loss is unconfirmed"),
    "degraded_loss": (40.0, 1, 100, "% loss over loss_window that marks an uplink degraded"),
    "degraded_rtt": (1.0, 0.001, 60, "smoothed RTT that marks an uplink degraded"),
    "loss_window": (30.0, 1, 3600, "window of the loss and RTT figures"),
    "standby_interval": (
        10.0,
        0.1,
        3600,
        "time between probes of a metered uplink while it carries no traffic",
    ),
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
_CleanMinTimeout = Annotated[Duration, _mon("clean_min_timeout")]
_FastInterval = Annotated[Duration, _mon("fast_interval")]
_DegradedLoss = Annotated[float, _mon("degraded_loss")]
_DegradedRtt = Annotated[Duration, _mon("degraded_rtt")]
_LossWindow = Annotated[Duration, _mon("loss_window")]
_StandbyInterval = Annotated[Duration, _mon("standby_interval")]


class Monitor(Model, frozen=True):
    """How an uplink is judged. Defaults are meant to be right for an LTE primary."""

    interval: _Interval = MONITOR_FIELDS["interval"][0]
    down_after: _DownAfter = MONITOR_FIELDS["down_after"][0]
    up_after: _UpAfter = MONITOR_FIELDS["up_after"][0]
    hold: _Hold = MONITOR_FIELDS["hold"][0]
    max_hold: _MaxHold = MONITOR_FIELDS["max_hold"][0]
    timeout: _Timeout | None = MONITOR_FIELDS["timeout"][0]
    min_timeout: _MinTimeout = MONITOR_FIELDS["min_timeout"][0]
    clean_min_timeout: _CleanMinTimeout = MONITOR_FIELDS["clean_min_timeout"][0]
    fast_interval: _FastInterval = MONITOR_FIELDS["fast_interval"][0]
    degraded_loss: _DegradedLoss = MONITOR_FIELDS["degraded_loss"][0]
    degraded_rtt: _DegradedRtt = MONITOR_FIELDS["degraded_rtt"][0]
    loss_window: _LossWindow = MONITOR_FIELDS["loss_window"][0]
    standby_interval: _StandbyInterval = MONITOR_FIELDS["standby_interval"][0]


# --- probe targets (docs/probes.md): one small section per method

ProbeMethod = Literal["icmp", "tcp", "http", "dns"]
# Healthy cadence of one target of the slower methods, declared once: ICMP targets
# share the uplink's ``interval``; these run beside it (docs/probes.md, "Budget").
METHOD_INTERVALS: dict[ProbeMethod, float] = {"tcp": 2.0, "dns": 5.0, "http": 10.0}
_TargetInterval = Annotated[
    Duration, Meta(ge=0.5, le=3600, description="time between probes of this target")
]


if TYPE_CHECKING:
    TargetAddress = IpAddress
    IpAddresses = tuple[IpAddress, ...]
else:  # msgspec cannot convert a union of two custom types: Parse does it all
    TargetAddress = Annotated[Any, Parse(parse_ip_address)]
    IpAddresses = Annotated[tuple[Any, ...], Parse(parse_ip_addresses)]


class _Target(Model, frozen=True, kw_only=True):
    """One probe target: the address every probe of it is pinned to, through its uplink.
    IPv4 or IPv6: each family's targets are the evidence for that family (docs/ipv6.md)."""

    method: ClassVar[ProbeMethod] = "icmp"
    address: TargetAddress

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._tag = ("method", cls.method)

    @property
    def label(self) -> str:
        """How status and events name it; unique within one uplink."""
        return str(self.address)

    def own_interval(self) -> float | None:
        """Its own healthy cadence; None: it shares the uplink's ``interval`` (ICMP)."""
        return None

    def to_data(self, *, drop_none: bool = False, drop_defaults: bool = False) -> dict[str, Any]:
        data = super().to_data(drop_none=drop_none, drop_defaults=drop_defaults)
        return {"method": self.method, **data}


class IcmpTarget(_Target, frozen=True, kw_only=True):
    """An echo request (the default; a plain address in ``targets`` is one)."""

    _shorthand: ClassVar[str | None] = "address"
    method: ClassVar[ProbeMethod] = "icmp"


class TcpTarget(_Target, frozen=True, kw_only=True):
    """A TCP connect: a SYN-ACK or a RST proves the path, silence is a loss."""

    method: ClassVar[ProbeMethod] = "tcp"
    port: Annotated[int, Meta(ge=1, le=65535)]
    interval: _TargetInterval = METHOD_INTERVALS["tcp"]

    @property
    def label(self) -> str:
        return f"tcp {self.address}:{self.port}"

    def own_interval(self) -> float | None:
        return self.interval


class HttpTarget(_Target, frozen=True, kw_only=True):
    """A GET of ``url`` from ``address`` (its Host header sent as is): ``expect`` is
    success; a redirect, or a 200 page where a 204 was expected, is a captive portal."""

    method: ClassVar[ProbeMethod] = "http"
    url: Annotated[str, Check(http_url)]
    expect: Annotated[int, Meta(ge=200, le=299)] = 204
    interval: _TargetInterval = METHOD_INTERVALS["http"]

    @property
    def label(self) -> str:
        return f"http {self.address} {self.url}"

    def own_interval(self) -> float | None:
        return self.interval


class DnsTarget(_Target, frozen=True, kw_only=True):
    """An A query for ``name`` to the server at ``address`` (UDP 53); with ``answer``,
    a reply without that address does not count."""

    method: ClassVar[ProbeMethod] = "dns"
    name: Annotated[str, Check(domain_name)]
    answer: IPv4Address | None = None
    interval: _TargetInterval = METHOD_INTERVALS["dns"]

    @property
    def label(self) -> str:
        return f"dns {self.address} {self.name}"

    def own_interval(self) -> float | None:
        return self.interval


Target = IcmpTarget | TcpTarget | HttpTarget | DnsTarget


def icmp(address: IpAddress | str) -> IcmpTarget:
    """An ICMP target (for code and tests; the loader reads YAML)."""
    return IcmpTarget(address=ip_address(address))


class Probe(Model, frozen=True):
    """Where an uplink's health is measured, and per-uplink monitor overrides."""

    targets: Annotated[tuple[Target, ...], Check(probe_targets)]
    # A captive portal (docs/probes.md): routed like a dead uplink, or used only
    # when no other uplink is usable.
    portal: Literal["down", "last_resort"] = "down"
    interval: _Interval | None = None
    down_after: _DownAfter | None = None
    up_after: _UpAfter | None = None
    hold: _Hold | None = None
    max_hold: _MaxHold | None = None
    timeout: _Timeout | None = None
    min_timeout: _MinTimeout | None = None
    clean_min_timeout: _CleanMinTimeout | None = None
    fast_interval: _FastInterval | None = None
    degraded_loss: _DegradedLoss | None = None
    degraded_rtt: _DegradedRtt | None = None
    loss_window: _LossWindow | None = None
    standby_interval: _StandbyInterval | None = None

    def overrides(self) -> dict[str, Any]:
        return {k: v for k in MONITOR_FIELDS if (v := getattr(self, k)) is not None}

    def family(self, version: int) -> tuple[Target, ...]:
        """The targets of one address family (4 or 6), in config order."""
        return tuple(t for t in self.targets if t.address.version == version)

    @property
    def addresses(self) -> tuple[IpAddress, ...]:
        """Each target address once, in order (what a route pins to the uplink)."""
        return tuple(dict.fromkeys(t.address for t in self.targets))


if TYPE_CHECKING:
    WanAddress = IPv4Interface | Literal["dhcp"]
else:  # msgspec cannot convert a union of a custom type and a literal: Parse does it all
    WanAddress = Annotated[Any, Parse(parse_wan_address)]
if TYPE_CHECKING:
    Address6 = IPv6Interface | Literal["auto"]
else:  # as WanAddress
    Address6 = Annotated[Any, Parse(parse_address6)]


class Quota(Model, frozen=True, kw_only=True):
    """A data quota (docs/probes.md, "Quotas"): the bytes both ways a carrier allows."""

    limit: Annotated[int, Parse(parse_size), Meta(ge=1)]
    # monthly: starts again on reset_day; prepaid: a total, until `wanwatch quota reset`
    period: Literal["monthly", "prepaid"] = "monthly"
    # monthly only (default 1); 29-31 mean the month's last day in a shorter month
    reset_day: Annotated[int, Meta(ge=1, le=31)] | None = None
    warn: Annotated[float, Parse(parse_share), Meta(ge=0.01, le=1.0)] = 0.8
    # used up: only when no other uplink is usable, or never until the period's reset
    exhausted: Annotated[Literal["last_resort", "off"], Parse(parse_off)] = "last_resort"

    @property
    def day(self) -> int:
        """The monthly reset day."""
        return self.reset_day or 1


class Dhcp6(Model, frozen=True):
    """DHCPv6 prefix delegation on an uplink (config/ipv6.py, linux/dhcp6_client.py)."""

    # The length to ask for: a hint the server may ignore (RFC 8415 18.2.1); None: its choice
    prefix_length: Annotated[int, Meta(ge=32, le=64)] | None = None


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
    # A prefix the ISP delegates by DHCPv6 (RFC 8415 IA_PD): prefix6 at run time.
    dhcp6: Dhcp6 | None = None
    priority: Annotated[int, Meta(ge=1, le=255)] = 1  # lower is preferred (RouterOS distance)
    weight: Annotated[int, Meta(ge=1, le=100)] = 1  # share of new connections in loadbalance
    # Paid by the byte (a backup SIM): probed every monitor.standby_interval while
    # it carries no traffic (docs/probes.md, "Metered standby").
    metered: bool = False
    probe: Probe
    quota: Quota | None = None


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
    # Where the router's forwarder asks, over IPv4 or IPv6 (docs/ipv6.md).
    upstream: IpAddresses = ()
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


# --- policy rules (docs/rules.md; engine/rules.py decides paths, linux/rules_nft.py renders)

if TYPE_CHECKING:
    Sources = tuple[str | Prefix, ...]
else:  # LAN names and prefixes mixed: Parse does it all
    Sources = Annotated[Any, Parse(parse_sources)]
Domains = Annotated[tuple[str, ...], Parse(parse_domains)]


class ViaUplink(Model, frozen=True):
    name: Name
    weight: Annotated[int, Meta(ge=1, le=100)] | None = None  # None: the uplink's own weight


class Via(Model, frozen=True):
    """The uplinks a rule's traffic may use: in preference order, or balanced by weight."""

    uplinks: Annotated[tuple[ViaUplink, ...], Meta(min_length=1)]
    mode: Literal["failover", "loadbalance"] = "failover"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(u.name for u in self.uplinks)


class Sticky(Model, frozen=True):
    """Keep a source (and destination) on the uplink its first connection took."""

    by: Literal["none", "src", "src-dst"] = "none"
    timeout: Annotated[Duration, Meta(ge=1, le=7 * 86400)] = 600.0


class Rule(Model, frozen=True, kw_only=True, rename={"from_": "from"}):
    """Which traffic uses which uplinks; the first rule that matches a new connection wins."""

    name: Name
    from_: Sources | None = None  # LAN names and/or source prefixes; None: any source
    to: Prefixes | None = None  # destination prefixes; None: anywhere (or domains)
    domains: Domains | None = None  # destinations the router's dnsmasq resolves
    proto: Proto | None = None  # None: any protocol
    ports: Ports | None = None  # destination ports (tcp, udp, tcp+udp only)
    via: Annotated[Via, Parse(parse_via)]
    sticky: Annotated[Sticky, Parse(parse_sticky)] = Sticky()
    when_down: Annotated[
        Literal["block", "default"],
        Meta(description="block (fail closed) or default (follow the policy) when via is down"),
    ]


class Hooks(Model, frozen=True):
    """Commands run on uplink events, as argv lists (never a shell)."""

    on_down: Argv | None = None
    on_up: Argv | None = None
    on_failover: Argv | None = None
    on_failback: Argv | None = None
    on_admin: Argv | None = None  # wanwatch disable / enable
    on_portal: Argv | None = None  # a captive portal took the uplink (docs/probes.md); {url}
    on_quota: Argv | None = None  # a quota's warning level or its limit; {used}, {limit}
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
    rules: tuple[Rule, ...] = ()  # first match wins; the rest follows policy
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
