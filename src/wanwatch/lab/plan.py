"""The lab's addressing plan, pure: which namespaces, links and addresses an office gets.

:func:`plan` turns an office config and a tag into a :class:`Topology`; the lab
(topology.py) builds it, and uplinks.py changes it at run time (a renumbered
lease, a PPP reconnect). No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from pathlib import Path
from typing import Any, Literal

import yaml

from wanwatch.config import Config, Wan, format_duration
from wanwatch.config.dynamic import Kind, kind, static_address
from wanwatch.config.fields import AUTO
from wanwatch.config.ipv6 import lan_address6, static_address6
from wanwatch.errors import LabError
from wanwatch.lab import netns

DEFAULT_STATE_ROOT = Path("/run/wanwatch-lab")

# The fake internet: uplink k (config order) reaches it through ISP k on its own
# documentation range (RFC 5737). Never 192.0.2.0/24: the host's own uplink
# lives there (docs/lab-notes.md). With more uplinks than ranges, each ISP gets
# half of one (:func:`public_nets`): every host number below is under 128.
ISP_PUBLIC_NETS = (IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"))
MAX_UPLINKS = 2 * len(ISP_PUBLIC_NETS)
# Host numbers inside each range.
_INET_SIDE = 1  # the internet's address on the ISP link (x.x.x.1/30)
_ISP_PUBLIC = 2  # the ISP's own public address (x.x.x.2/30): customers are NATed to it
_TARGET_BASE = 10  # probe targets of uplink k: .10, .11, ...
_MAX_TARGETS = 40
_DNS_BASE = 53  # DNS servers: .53 in each range, then .54, ...
_WHOAMI = 80  # the whoami server
# The lab DNS's name of whoami[k], the web server of ISP k's range.
WEB_NAMES = ("www.lab.test", "server.lab.test", "www3.lab.test", "www4.lab.test")
_LINK_PREFIX = 30
# IPv6 in the documentation prefix only (RFC 3849). ISP k owns a /48 of it, as a
# real ISP owns its allocation: its customer link is the first /64 (the ISP at
# ::1, and fe80::1, the usual static gateway6), the prefix it routes to its
# customer (prefix6) the /56 at :100::, its link to the internet the /64 at
# :ffff::. The ISPs do not translate IPv6 (real ones do not), so a server tells
# the uplink a connection came through by the /48 its source lies in. The fake
# internet's own hosts (servers, probe targets) are in a /48 of no ISP.
ISP_PUBLIC_NETS6 = tuple(IPv6Network(f"2001:db8:{k + 1}::/48") for k in range(MAX_UPLINKS))
INET_NET6 = IPv6Network("2001:db8:ffff::/48")
DOC_NET6 = IPv6Network("2001:db8::/32")
ISP_LINK_LOCAL = IPv6Interface("fe80::1/64")
_CUST_SUBNET6 = 0  # the /64 index of the customer link inside the ISP's /48
_ROUTED6 = 0x100  # the first /64 index of the routed /56 inside the ISP's /48
_ROUTED6_PREFIXLEN = 56
DELEGATED_PREFIXLEN = 60  # what an ISP of the lab delegates when dhcp6 gives no length
_UPLINK_SUBNET6 = 0xFFFF  # the /64 index of the ISP's link to the internet
# Point-to-point customer links (uplinks.py): (ISP, router) host numbers of the
# peer addresses, first and after a reconnect.
PTP_HOSTS = ((1, 2), (5, 6))

# Interface names inside the lab namespaces (the router's come from the config).
CUST_IF = "cust"  # ISP side of the customer link
UPLINK_IF = "uplink"  # ISP side of its link to the internet
CLIENT_IF = "eth0"  # LAN client's interface

ISP_TABLE = "ww_isp"  # nft table of an ISP's BCP38 filter and NAT (not a fault)
BCP38_COUNTER = "bcp38_drops"


# --------------------------------------------------------------------------- the plan (pure)


@dataclass(frozen=True)
class Isp:
    """The ISP behind one uplink."""

    wan: str
    index: int
    ns: str
    router_if: str  # the uplink's interface in the router namespace (config name)
    gateway: IPv4Interface  # the ISP's address toward the router (config gateway)
    public: IPv4Interface  # the ISP's address in the fake internet
    inet_side: IPv4Interface  # the internet's address on that link
    inet_if: str  # the internet namespace's interface toward this ISP
    net: IPv4Network  # the ISP's range of the fake internet (public_nets)
    targets: tuple[IPv4Address, ...]  # this uplink's probe targets (fake-internet hosts)
    net6: IPv6Network  # the ISP's own /48 (its customers' sources lie in it)
    gateway6: IPv6Interface  # the ISP's global address toward the router (::1 of the link)
    routed6: IPv6Network  # the prefix the ISP routes to the router (prefix6)
    public6: IPv6Interface  # the ISP's address in the fake internet
    inet_side6: IPv6Interface  # the internet's address on that link
    targets6: tuple[IPv6Address, ...] = ()  # this uplink's IPv6 probe targets
    advertises: bool = False  # the ISP sends RAs (the uplink's address6 is auto)
    # The length of the prefixes the ISP delegates by DHCPv6 (the uplink has dhcp6),
    # carved out of routed6; None: no DHCPv6 server (topology.py: Lab.start_pd)
    delegates: int | None = None
    kind: Kind = "static"  # dhcp: the ISP serves DHCP; point-to-point: peer addresses (uplinks.py)
    cust_if: str = CUST_IF
    uplink_if: str = UPLINK_IF

    @property
    def customer_net(self) -> IPv4Network:
        return self.gateway.network

    @property
    def customer_net6(self) -> IPv6Network:
        return self.gateway6.network


@dataclass(frozen=True)
class Client:
    """The client on one LAN."""

    lan: str
    index: int
    ns: str
    router_if: str  # the LAN's interface in the router namespace (config name)
    network: IPv4Network | None  # the LAN's subnet (None: the config gives no address)
    gateway: IPv4Address | None  # the router's LAN address
    gateway6: IPv6Interface | None = None  # the router's IPv6 address there (None: no IPv6)
    ifname: str = CLIENT_IF

    @property
    def hostname(self) -> str:
        """The DHCP host name this client sends (letters, digits, '-')."""
        return "client-" + re.sub(r"[^a-z0-9-]", "-", self.lan.lower())


@dataclass(frozen=True)
class Topology:
    """Every name and address of one lab, derived from a config; no I/O."""

    tag: str
    inet_ns: str
    router_ns: str
    isps: tuple[Isp, ...]
    clients: tuple[Client, ...]
    whoami: tuple[IPv4Address, ...]  # whoami server addresses, one per ISP range
    dns_servers: tuple[IPv4Address, ...]  # fake-internet DNS server addresses
    dns_records: tuple[tuple[str, IPv4Address], ...]
    dns_map: tuple[tuple[IPv4Address, IPv4Address], ...]  # config DNS address -> lab server
    whoami6: tuple[IPv6Address, ...]  # the whoami server's IPv6 addresses, one per ISP
    dns_servers6: tuple[IPv6Address, ...]  # the fake-internet DNS server's IPv6 addresses

    @property
    def namespaces(self) -> tuple[str, ...]:
        """All namespaces, in creation order."""
        return (
            self.inet_ns,
            *(i.ns for i in self.isps),
            self.router_ns,
            *(c.ns for c in self.clients),
        )

    @property
    def hosts(self) -> tuple[IPv4Address, ...]:
        """Every fake-internet host address (a /32 on the internet's ``lo``)."""
        found = [*self.whoami, *self.dns_servers]
        for isp in self.isps:
            found += isp.targets
        return tuple(dict.fromkeys(found))

    @property
    def hosts6(self) -> tuple[IPv6Address, ...]:
        """Every fake-internet IPv6 host address (a /128 on the internet's ``lo``)."""
        found = [*self.whoami6, *self.dns_servers6]
        for isp in self.isps:
            found += isp.targets6
        return tuple(dict.fromkeys(found))

    @property
    def dns_records6(self) -> tuple[tuple[str, IPv6Address], ...]:
        """The AAAA records beside :attr:`dns_records`: the same names, IPv6 addresses."""
        six = dict(zip(self.whoami, self.whoami6, strict=True))
        six.update(zip(self.dns_servers[:1], self.dns_servers6[:1], strict=True))
        return tuple((name, six[a]) for name, a in self.dns_records if a in six)

    def isp(self, wan: str) -> Isp:
        for i in self.isps:
            if i.wan == wan:
                return i
        raise LabError(f"no uplink named {wan!r} (have: {', '.join(i.wan for i in self.isps)})")

    def client(self, lan: str) -> Client:
        for c in self.clients:
            if c.lan == lan:
                return c
        names = ", ".join(c.lan for c in self.clients)
        raise LabError(f"no LAN named {lan!r} (have: {names})")


def _host(net: IPv4Network, n: int) -> IPv4Address:
    return net.network_address + n


def _subnet6(net: IPv6Network, index: int, prefixlen: int = 64) -> IPv6Network:
    """The prefix of length ``prefixlen`` that starts at the ``index``-th /64 of ``net``."""
    return IPv6Network((int(net.network_address) + (index << 64), prefixlen))


def _host6(net: IPv6Network, n: int) -> IPv6Interface:
    return IPv6Interface(f"{net.network_address + n}/{net.prefixlen}")


def _inet_host6(isp_index: int, n: int) -> IPv6Address:
    """Host ``n`` of the fake internet's /64 for uplink ``isp_index`` (its servers, targets)."""
    return _subnet6(INET_NET6, isp_index + 1).network_address + n


def _is_lab_host(addr: IPv4Address) -> bool:
    return any(addr in n for n in ISP_PUBLIC_NETS)


def isp_side(wan: Wan, k: int) -> IPv4Interface:
    """The address of uplink ``k``'s ISP toward the router; its network is the ISP's
    customer net (BCP38). An ISP that serves DHCP hands out ``10.<100+k>.0.0/24``."""
    if kind(wan) == "dhcp":
        return IPv4Interface(f"10.{100 + k}.0.1/24")
    if kind(wan) == "point-to-point":
        return IPv4Interface(f"10.{200 + k}.255.{PTP_HOSTS[0][0]}/24")
    a = static_address(wan)
    return IPv4Interface(f"{wan.gateway}/{a.network.prefixlen if a is not None else 24}")


def ptp_pair(isp: Isp, n: int = 0) -> tuple[IPv4Address, IPv4Address]:
    """(ISP, router) point-to-point addresses; ``n`` = 1 after a reconnect."""
    base = isp.gateway.network.network_address
    return base + PTP_HOSTS[n][0], base + PTP_HOSTS[n][1]


def ptp_router_address(isp: Isp, n: int = 0) -> IPv4Address:
    """The router's point-to-point address (``n`` = 1 after a reconnect)."""
    return ptp_pair(isp, n)[1]


def public_nets(uplinks: int) -> tuple[IPv4Network, ...]:
    """The ISPs' public ranges for an office of ``uplinks``: one per ISP, in order.

    Up to two uplinks, each ISP has a whole range of ISP_PUBLIC_NETS (every lab
    before four uplinks keeps its addresses); with three or four, each has a /25.
    """
    if uplinks > MAX_UPLINKS:
        raise LabError(
            f"the lab has fake-internet ranges for {MAX_UPLINKS} uplinks; the config has {uplinks}"
        )
    if uplinks <= len(ISP_PUBLIC_NETS):
        return ISP_PUBLIC_NETS
    return tuple(half for net in ISP_PUBLIC_NETS for half in net.subnets(prefixlen_diff=1))


def plan(cfg: Config, tag: str) -> Topology:
    """The lab's topology for ``cfg``. Pure; the same for the office and its lab config."""
    nets = public_nets(len(cfg.wans))
    pre = f"{netns.PREFIX}{tag}-"
    isps = []
    for k, wan in enumerate(cfg.wans):
        net, net6 = nets[k], ISP_PUBLIC_NETS6[k]
        link6 = _subnet6(net6, _UPLINK_SUBNET6)
        v4, v6 = wan.probe.family(4), wan.probe.family(6)
        if wan.prefix6 is not None and wan.prefix6.prefixlen < _ROUTED6_PREFIXLEN:
            raise LabError(
                f"{wan.name}: the lab routes at most a /{_ROUTED6_PREFIXLEN} to an uplink "
                f"(prefix6 is a /{wan.prefix6.prefixlen})"
            )
        delegates = None
        if wan.dhcp6 is not None:
            delegates = wan.dhcp6.prefix_length or DELEGATED_PREFIXLEN
            if delegates < _ROUTED6_PREFIXLEN:
                raise LabError(
                    f"{wan.name}: the lab delegates at most a /{_ROUTED6_PREFIXLEN} "
                    f"(dhcp6.prefix_length is {delegates})"
                )
        if len(wan.probe.targets) > _MAX_TARGETS:
            raise LabError(f"{wan.name}: the lab maps at most {_MAX_TARGETS} probe targets")
        isps.append(
            Isp(
                wan=wan.name,
                index=k,
                ns=f"{pre}isp{k + 1}",
                router_if=wan.interface,
                gateway=isp_side(wan, k),
                public=IPv4Interface(f"{_host(net, _ISP_PUBLIC)}/{_LINK_PREFIX}"),
                inet_side=IPv4Interface(f"{_host(net, _INET_SIDE)}/{_LINK_PREFIX}"),
                inet_if=f"isp{k + 1}",
                net=net,
                # Positional, so planning the lab config again gives the same lab.
                targets=tuple(_host(net, _TARGET_BASE + j) for j in range(len(v4))),
                kind=kind(wan),
                net6=net6,
                gateway6=_host6(_subnet6(net6, _CUST_SUBNET6), 1),
                routed6=_subnet6(net6, _ROUTED6, _ROUTED6_PREFIXLEN),
                public6=_host6(link6, _ISP_PUBLIC),
                inet_side6=_host6(link6, _INET_SIDE),
                targets6=tuple(_inet_host6(k, _TARGET_BASE + j) for j in range(len(v6))),
                advertises=wan.address6 == AUTO,
                delegates=delegates,
            )
        )
    clients = tuple(
        Client(
            lan=lan.name,
            index=j,
            ns=f"{pre}lan{j + 1}",
            router_if=lan.interface,
            network=lan.address.network if lan.address is not None else None,
            gateway=lan.address.ip if lan.address is not None else None,
            gateway6=lan_address6(lan),
        )
        for j, lan in enumerate(cfg.lans)
    )
    dns_map = _dns_map(cfg, nets)
    dns_servers = tuple(
        dict.fromkeys(
            [_host(n, _DNS_BASE) for n in nets]
            + [lab for _, lab in dns_map]
            + [a for a in _dns_addresses(cfg) if _is_lab_host(a)]
        )
    )
    whoami = tuple(_host(n, _WHOAMI) for n in nets)
    whoami6 = tuple(_inet_host6(k, _WHOAMI) for k in range(len(nets)))
    records = (
        ("server.lab.test", whoami[1]),
        ("www.lab.test", whoami[0]),
        ("dns.lab.test", dns_servers[0]),
        *((WEB_NAMES[k], whoami[k]) for k in range(2, len(nets))),
    )
    return Topology(
        tag=tag,
        inet_ns=f"{pre}inet",
        router_ns=f"{pre}rtr",
        isps=tuple(isps),
        clients=clients,
        whoami=whoami,
        dns_servers=dns_servers,
        dns_records=records,
        dns_map=dns_map,
        whoami6=whoami6,
        dns_servers6=(_inet_host6(0, _DNS_BASE),),
    )


def add_uplinks(data: dict[str, Any], count: int) -> dict[str, Any]:
    """Office config ``data`` (plain YAML) grown to ``count`` uplinks: static copies of its
    last one, each on an interface, subnet and priority of its own, probing as many
    targets as it does, on the lab's own hosts of its range (a target is pinned to one
    uplink). For a lab of more uplinks than an example has."""
    wans = data["wans"]
    last, nets = wans[-1], public_nets(count)
    for k in range(len(wans), count):
        subnet = IPv4Network(f"10.{50 + k}.0.0/24")
        targets = [
            str(_host(nets[k], _TARGET_BASE + j)) for j in range(len(last["probe"]["targets"]))
        ]
        wans.append(
            {
                **last,
                "name": f"WAN{k + 1}",
                "interface": f"wan{k + 1}",
                "address": f"{subnet[2]}/{subnet.prefixlen}",
                "gateway": str(subnet[1]),
                "priority": k + 1,
                "probe": {**last["probe"], "targets": targets},
            }
        )
    return data


def _dns_addresses(cfg: Config) -> list[IPv4Address]:
    """The config's IPv4 DNS addresses (an IPv6 upstream: :func:`_dns6`)."""
    found = [a for a in cfg.dns.upstream if isinstance(a, IPv4Address)]
    for lan in cfg.lans:
        if lan.dhcp is not None and lan.dhcp.dns is not None:
            found += lan.dhcp.dns
    return list(dict.fromkeys(found))


def _dns_map(
    cfg: Config, nets: tuple[IPv4Network, ...]
) -> tuple[tuple[IPv4Address, IPv4Address], ...]:
    """Each DNS address of the config that lies outside the office and the lab -> a lab server.

    Addresses inside the config's own subnets (the router, a LAN server) and
    fake-internet addresses are kept as they are.
    """
    own = [a.network for w in cfg.wans if (a := static_address(w)) is not None]
    own += [lan.address.network for lan in cfg.lans if lan.address is not None]
    outside = [
        a for a in _dns_addresses(cfg) if not _is_lab_host(a) and not any(a in n for n in own)
    ]
    servers = [_host(nets[i % len(nets)], _DNS_BASE + i // len(nets)) for i in range(len(outside))]
    return tuple(zip(outside, servers, strict=True))


def _lab_ipv6(wan: dict[str, Any], cfg: Wan, isp: Isp) -> None:
    """An uplink's IPv6 in the lab: a static address6 becomes host ::2 of its ISP's
    customer /64 (gateway6 the ISP's ::1, or fe80::1 when the office names a
    link-local router), prefix6 a prefix of the same length at the start of what the
    ISP routes to it. ``auto`` stays: the ISP advertises its /64 (uplinks.py)."""
    if static_address6(cfg) is not None:
        wan["address6"] = f"{isp.customer_net6[2]}/{isp.customer_net6.prefixlen}"
    if cfg.gateway6 is not None:
        wan["gateway6"] = str(ISP_LINK_LOCAL.ip if cfg.gateway6.is_link_local else isp.gateway6.ip)
    if cfg.prefix6 is not None:
        wan["prefix6"] = str(IPv6Network((isp.routed6.network_address, cfg.prefix6.prefixlen)))


def _dns6(address: str, topo: Topology) -> str:
    """An IPv6 upstream of the config in the lab: the fake internet's DNS server for a
    public address; one in the documentation prefix (a lab host) is kept."""
    if IPv6Address(address) in DOC_NET6:
        return address
    return str(topo.dns_servers6[0])


ClientDns = Literal["lab", "router"]


def lab_config_data(cfg: Config, topo: Topology, client_dns: ClientDns = "lab") -> dict[str, Any]:
    """The lab's config as plain YAML data: ``cfg`` with every public address replaced.

    Probe targets become fake-internet hosts of their own ISP's range;
    ``dns.upstream`` and ``lans[].dhcp.dns`` point at the lab's DNS server
    (``client_dns="router"`` drops ``dhcp.dns`` so clients are told to ask the
    router). Everything else, hooks included, is kept.
    """
    data: dict[str, Any] = cfg.to_data(drop_none=True)
    dns_map = {str(a): str(b) for a, b in topo.dns_map}
    for wan, isp, w in zip(data["wans"], topo.isps, cfg.wans, strict=True):
        # Each family's targets in order, on its own hosts of the fake internet.
        by_family: dict[int, Iterator[IPv4Address | IPv6Address]] = {
            4: iter(isp.targets),
            6: iter(isp.targets6),
        }
        wan["probe"]["targets"] = [str(next(by_family[t.address.version])) for t in w.probe.targets]
        _lab_ipv6(wan, w, isp)
    if "dns" in data:
        data["dns"]["upstream"] = [
            _dns6(a, topo) if ":" in a else dns_map.get(a, a)
            for a in data["dns"].get("upstream", [])
        ]
    for lan in data.get("lans", []):
        dhcp = lan.get("dhcp")
        if dhcp is None:
            continue
        # The loader reads a pool as "first-last" and durations in our units.
        dhcp["range"] = "-".join(dhcp["range"])
        dhcp["lease_time"] = format_duration(dhcp["lease_time"])
        if client_dns == "router":
            dhcp.pop("dns", None)
        elif "dns" in dhcp:
            dhcp["dns"] = [dns_map.get(a, a) for a in dhcp["dns"]]
    monitor = cfg.monitor.to_data(drop_none=True, drop_defaults=True)
    if monitor:
        data["monitor"] = monitor
    else:
        data.pop("monitor", None)
    return data


def lab_config_text(cfg: Config, topo: Topology, client_dns: ClientDns = "lab") -> str:
    ranges = "198.51.100.0/24 via the first uplink's ISP, 203.0.113.0/24 via the second"
    if len(topo.isps) > len(ISP_PUBLIC_NETS):
        ranges = ", ".join(str(isp.net) for isp in topo.isps) + f" via ISPs 1 to {len(topo.isps)}"
    header = (
        f"# wanwatch lab {topo.tag}: derived from {cfg.source}.\n"
        "# Same uplinks, LANs and addresses; public addresses replaced by fake-internet\n"
        f"# hosts ({ranges};\n"
        "# IPv6 in 2001:db8::/32: a /48 per ISP, the internet's hosts in 2001:db8:ffff::/48).\n"
    )
    body = yaml.safe_dump(lab_config_data(cfg, topo, client_dns), sort_keys=False)
    return header + body


def isp_ruleset(isp: Isp) -> str:
    """nft table of one ISP: BCP38 on the customer port for both families, masquerade of
    IPv4 toward the internet (IPv6 is routed untranslated, as real ISPs do)."""
    net = isp.customer_net
    # The customer's IPv6 sources: its link and the prefix routed to it. Link-local
    # sources never reach the forward hook (RFC 4291 2.5.6: never forwarded).
    own6 = f"{{ {isp.customer_net6}, {isp.routed6} }}"
    return f"""\
table inet {ISP_TABLE}
delete table inet {ISP_TABLE}
table inet {ISP_TABLE} {{
    counter {BCP38_COUNTER} {{ }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{isp.cust_if}" ip saddr != {net} counter name "{BCP38_COUNTER}" drop
        iifname "{isp.cust_if}" ip6 saddr != {own6} counter name "{BCP38_COUNTER}" drop
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{isp.uplink_if}" ip saddr {net} masquerade
    }}
}}
"""
