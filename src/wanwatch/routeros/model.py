"""The typed model of what the reader understood of one RouterOS export."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


@dataclass(frozen=True)
class InterfaceSet:
    """The interfaces of an interface list: ``names``, or with ``all_but`` every
    interface except ``names`` (the built-in list ``all``, and lists that include it)."""

    names: frozenset[str] = frozenset()
    all_but: bool = False

    def __contains__(self, iface: object) -> bool:
        return (iface in self.names) != self.all_but

    def __or__(self, other: InterfaceSet) -> InterfaceSet:
        a, b = self, other
        if a.all_but and b.all_but:
            return InterfaceSet(a.names & b.names, all_but=True)
        if a.all_but or b.all_but:
            co, fin = (a, b) if a.all_but else (b, a)
            return InterfaceSet(co.names - fin.names, all_but=True)
        return InterfaceSet(a.names | b.names)

    def __sub__(self, other: InterfaceSet) -> InterfaceSet:
        a, b = self, other
        if a.all_but and b.all_but:
            return InterfaceSet(b.names - a.names)
        if a.all_but:
            return InterfaceSet(a.names | b.names, all_but=True)
        if b.all_but:
            return InterfaceSet(a.names & b.names)
        return InterfaceSet(a.names - b.names)


@dataclass(frozen=True)
class Gateway:
    """One gateway of a route, as written: ``8.8.8.8``, ``10.0.0.1%ether1``, ``x@main``,
    or an interface name (``pppoe-out1``)."""

    text: str  # the address or interface, without %interface / @table
    address: IPAddress | None
    interface: str | None  # from ``%iface``, or the interface itself
    table: str | None  # from ``@table``


@dataclass(frozen=True)
class Address:
    line: int
    address: IPv4Interface | IPv6Interface
    interface: str


@dataclass(frozen=True)
class Route:
    line: int
    dst: IPNetwork
    gateways: tuple[Gateway, ...]
    distance: int
    scope: int
    target_scope: int
    check: str | None  # ping | arp | bfd ...; None: no check
    table: str
    kind: str  # unicast | blackhole | unreachable | prohibit
    disabled: bool
    comment: str
    raw: Mapping[str, str]  # properties as written, for ``find`` in scripts
    # static, or the client section that adds it at run time ("ip dhcp-client",
    # "interface pppoe-client", "interface lte", ...)
    origin: str = "static"

    @property
    def is_default(self) -> bool:
        return self.dst.prefixlen == 0

    @property
    def gateway_text(self) -> str:
        if self.kind != "unicast":
            return self.kind
        return ",".join(g.text for g in self.gateways)


@dataclass(frozen=True)
class RoutingTable:
    line: int
    name: str
    fib: bool


@dataclass(frozen=True)
class RoutingRule:
    line: int
    routing_mark: str | None
    action: str
    table: str
    other_matchers: bool  # src/dst/interface matchers: not a pure mark rule
    disabled: bool
    src_address: str | None = None
    interface: str | None = None


@dataclass(frozen=True)
class NatRule:
    line: int
    chain: str
    action: str
    out_interface: str | None
    out_interface_list: str | None
    disabled: bool


@dataclass(frozen=True)
class MangleRule:
    line: int
    chain: str
    action: str
    new_connection_mark: str | None
    new_routing_mark: str | None
    pcc: str | None
    in_interface: str | None
    connection_mark: str | None
    disabled: bool
    in_interface_list: str | None = None


@dataclass(frozen=True)
class FilterRule:
    """One ``/ip firewall filter`` rule, as far as verify judges what it lets in."""

    line: int
    chain: str
    action: str
    jump_target: str | None
    in_interface: str | None  # as written: may start with "!"
    in_interface_list: str | None
    connection_state: str | None  # "established,related", ...; None: any
    connection_nat_state: str | None
    # Other matchers (protocol, ports, addresses, marks, limits...): the rule takes only
    # some of the packets from where it matches.
    narrowed: bool
    disabled: bool


@dataclass(frozen=True)
class Pool:
    line: int
    name: str
    ranges: str


@dataclass(frozen=True)
class DhcpServer:
    line: int
    name: str
    interface: str
    pool: str | None
    lease_time: float | None
    disabled: bool


@dataclass(frozen=True)
class DhcpNetwork:
    line: int
    address: IPv4Network
    gateway: str | None
    dns: tuple[str, ...]


@dataclass(frozen=True)
class Lease:
    line: int
    address: str
    mac: str
    server: str | None


@dataclass(frozen=True)
class Netwatch:
    line: int
    host: IPAddress  # where its probes go: type=dns asks dns-server for a name
    type: str  # simple (v6 and the v7 default) | icmp | tcp-conn | http-get | dns | ...
    interval: float | None
    timeout: float | None
    thr_avg: float | None  # explicit value; None: RouterOS default
    up_script: str
    down_script: str
    disabled: bool


@dataclass(frozen=True)
class Export:
    """What the reader understood of one export."""

    source: str
    version: int | None  # 6 or 7 when the file says or implies it
    addresses: tuple[Address, ...]
    routes: tuple[Route, ...]  # static routes, then dhcp/pppoe default routes
    tables: tuple[RoutingTable, ...]
    rules: tuple[RoutingRule, ...]
    nat: tuple[NatRule, ...]
    mangle: tuple[MangleRule, ...]
    interface_lists: Mapping[str, InterfaceSet]  # include=/exclude= resolved
    pools: tuple[Pool, ...]
    dhcp_servers: tuple[DhcpServer, ...]
    dhcp_networks: tuple[DhcpNetwork, ...]
    leases: tuple[Lease, ...]
    netwatch: tuple[Netwatch, ...]
    scripts: Mapping[str, str]  # /system script name -> source
    dns_servers: tuple[str, ...]
    skipped_lines: int
    dynamic_addresses: bool  # DHCP/PPP clients give interfaces addresses not in the file
    # Interfaces that exist only while their peer answers (PPPoE, L2TP, ... sessions,
    # LTE): a dead first hop takes them, and every route through them, down.
    peer_links: frozenset[str] = frozenset()
    # Client interfaces over a radio (LTE, PPP over a modem): a loaded link's round
    # trip reaches hundreds of ms.
    radio_links: frozenset[str] = frozenset()
    # Tunnel clients (L2TP, PPTP, SSTP, OVPN) -> connect-to, as written: a tunnel is
    # carried by whichever uplink reaches its server.
    tunnels: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[tuple[int, str], ...] = ()  # (line, why) for statements not modelled
    filters: tuple[FilterRule, ...] = ()  # /ip firewall filter, in order
    # The IPv6 side (/ipv6 address, route, firewall; Netwatch of IPv6 hosts), and the
    # line of ``/ipv6 settings accept-router-advertisements=yes``: IPv6 defaults are
    # learned from router advertisements (modelled as one unchecked route).
    addresses6: tuple[Address, ...] = ()
    routes6: tuple[Route, ...] = ()
    netwatch6: tuple[Netwatch, ...] = ()
    filters6: tuple[FilterRule, ...] = ()
    nat6: tuple[NatRule, ...] = ()
    mangle6: tuple[MangleRule, ...] = ()  # /ipv6 firewall mangle: the IPv6 routing marks
    ra_line: int | None = None
    family: int = 4  # 6: the IPv6 view verify simulates (its addresses and routes are IPv6)
