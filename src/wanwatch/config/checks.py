"""Checks across config items: unique names, subnets, gateways, probe targets, DHCP pools,
the firewall's openings and forwards.

Items may be partial (a field is None where its value was rejected and reported), so
every check skips what it cannot see. Each problem goes to ``report(path, message)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Network
from typing import Any, TypeVar

from wanwatch.config import dynamic, matches
from wanwatch.config.fields import IpAddress, Path_, PortRange, format_path
from wanwatch.config.ipv6 import has_ipv6
from wanwatch.config.model import (
    MAX_SHIFTED_PORTS,
    PORT_PROTOS,
    Config,
    Dns,
    Lan,
    Rule,
    Wan,
)
from wanwatch.footprint import MAX_RULES

Report = Callable[[Path_, str], None]


@dataclass(frozen=True)
class _Net:
    path: Path_
    network: IPv4Network
    own: IPv4Address


_Pool = tuple[Path_, IPv4Address, IPv4Address]
_T = TypeVar("_T")


def _enumerate_valid(items: list[_T | None]) -> Iterator[tuple[int, _T]]:
    for i, item in enumerate(items):
        if item is not None:
            yield i, item


def _once(report: Report, seen: dict[Any, Path_], key: Any, at: Path_, *, used: str) -> None:
    """Report field ``at`` if an earlier item already has ``key`` ("``used`` <that
    item>"); a None key was already reported as invalid."""
    if key is None:
        return
    if key in seen:
        report(at, f"{used} {format_path(seen[key])}")
    else:
        seen[key] = at[:-1]


def cross_check(report: Report, wans: list[Any], lans: list[Any], dns: Dns | None) -> None:
    """Every check across items, in the order their problems are listed."""
    nets = check_members(report, wans, lans)
    check_overlaps(report, nets)
    check_uplinks(report, wans, nets)
    check_quotas(report, wans)
    dynamic.check_wans(report, wans)
    pools = check_pools(report, lans)
    check_static_leases(report, lans, pools)
    if dns is not None:
        check_upstream_dns(report, dns, nets, wans)


def check_members(report: Report, wans: list[Any], lans: list[Any]) -> list[_Net]:
    """Names and interfaces used once over uplinks and LANs; usable addresses.

    Returns the subnet of every item that has an address.
    """
    names: dict[str, Path_] = {}
    ifaces: dict[str, Path_] = {}
    nets: list[_Net] = []
    members: list[tuple[Path_, Wan | Lan]] = [(("wans", i), w) for i, w in _enumerate_valid(wans)]
    members += [(("lans", i), lan) for i, lan in _enumerate_valid(lans)]
    for path, item in members:
        _once(report, names, item.name, (*path, "name"), used=f"name {item.name!r} already used by")
        _once(
            report,
            ifaces,
            item.interface,
            (*path, "interface"),
            used=f"interface {item.interface!r} already used by",
        )
        if isinstance(item.address, IPv4Interface):
            if problem := _address_problem(item.address, is_lan=isinstance(item, Lan)):
                report((*path, "address"), problem)
            nets.append(_Net((*path, "address"), item.address.network, item.address.ip))
    return nets


def _address_problem(address: IPv4Interface, *, is_lan: bool) -> str | None:
    network = address.network
    if network.prefixlen >= 31 and is_lan:
        return "a LAN needs a prefix of /30 or shorter"
    if (
        address.ip in (network.network_address, network.broadcast_address)
        and network.prefixlen < 31
    ):
        return f"{address.ip} is the network or broadcast address"
    return None


def check_overlaps(report: Report, nets: list[_Net]) -> None:
    """No two subnets overlap (the later one is reported)."""
    for a_i, a in enumerate(nets):
        for b in nets[a_i + 1 :]:
            if a.network.overlaps(b.network):
                report(
                    b.path, f"subnet {b.network} overlaps {a.network} of {format_path(a.path[:-1])}"
                )


def check_uplinks(report: Report, wans: list[Any], nets: list[_Net]) -> None:
    """Each uplink's gateway is on its subnet; its probe targets are beyond it and its own."""
    target_owner: dict[IpAddress, Path_] = {}
    for i, w in _enumerate_valid(wans):
        path: Path_ = ("wans", i)
        if (
            isinstance(w.address, IPv4Interface)
            and w.gateway is not None
            and w.address.network.prefixlen < 32  # dynamic.check_wans says why not
        ):
            if w.gateway not in w.address.network:
                report(
                    (*path, "gateway"),
                    f"{w.gateway} is outside the uplink's subnet {w.address.network}",
                )
            elif w.gateway == w.address.ip:
                report((*path, "gateway"), f"{w.gateway} is the uplink's own address")
        targets = w.probe.targets if w.probe is not None and w.probe.targets else ()
        for t_i, target in _enumerate_valid(list(targets)):
            tpath = (*path, "probe", "targets", t_i)
            t = target.address
            _check_target(report, tpath, t, nets)
            # Methods of one uplink may share an address (ping and ask 1.1.1.1); a
            # route pins an address to one uplink, so two uplinks may not.
            owner = target_owner.setdefault(t, path)
            if owner != path:
                report(
                    tpath,
                    f"{t} is already a probe target of {format_path(owner)}: "
                    "each target must be pinned to one uplink (RouterOS cannot pin it twice)",
                )


def check_quotas(report: Report, wans: list[Any]) -> None:
    """A prepaid quota has no reset day: only `wanwatch quota reset` starts it again."""
    for i, w in _enumerate_valid(wans):
        q = w.quota
        if q is not None and q.period == "prepaid" and q.reset_day is not None:
            report(
                ("wans", i, "quota", "reset_day"),
                "a prepaid quota has no reset day (`wanwatch quota reset` starts it again)",
            )


def _check_target(report: Report, tpath: Path_, t: IpAddress, nets: list[_Net]) -> None:
    """A probe target is outside our subnets and a unicast address."""
    for n in nets:
        if t in n.network:
            report(
                tpath,
                f"{t} is inside {format_path(n.path[:-1])}'s subnet {n.network}: "
                "a probe target must be beyond the uplink",
            )
            return
    if t.is_loopback or t.is_multicast or t.is_unspecified or t == IPv4Address("255.255.255.255"):
        report(tpath, f"{t} cannot be probed through an uplink")


def check_pools(report: Report, lans: list[Any]) -> list[_Pool]:
    """Each DHCP range is in order, inside its LAN, clear of the router and the edges.

    Returns every LAN's pool.
    """
    pools: list[_Pool] = []
    for i, lan in _enumerate_valid(lans):
        if lan.dhcp is None or lan.dhcp.range is None:
            continue
        path = ("lans", i, "dhcp", "range")
        lo, hi = lan.dhcp.range
        if lo > hi:
            report(path, f"{lo}-{hi} is reversed (first address is above the last)")
        elif lan.address is not None:
            net = lan.address.network
            if lo not in net or hi not in net:
                report(path, f"{lo}-{hi} is outside the LAN {net}")
            elif lo <= lan.address.ip <= hi:
                report(path, f"{lo}-{hi} contains the router's own address {lan.address.ip}")
            elif lo == net.network_address or hi == net.broadcast_address:
                report(path, f"{lo}-{hi} includes the network or broadcast address")
        pools.append((("lans", i), lo, hi))
    return pools


def check_static_leases(report: Report, lans: list[Any], pools: list[_Pool]) -> None:
    """MACs, host names (one DNS name space for every LAN: dnsmasq) and addresses once;
    each address on its LAN, not the router's, not in another LAN's pool."""
    macs: dict[str, Path_] = {}
    fixed: dict[IPv4Address, Path_] = {}
    hostnames: dict[str, Path_] = {}
    for i, lan in _enumerate_valid(lans):
        if lan.dhcp is None:
            continue
        for s_i, s in _enumerate_valid(list(lan.dhcp.static or ())):
            spath: Path_ = ("lans", i, "dhcp", "static", s_i)
            _once(
                report, macs, s.mac, (*spath, "mac"), used=f"{s.mac} already has a static lease at"
            )
            hostname = s.hostname.lower() if s.hostname is not None else None
            _once(
                report,
                hostnames,
                hostname,
                (*spath, "hostname"),
                used=f"{s.hostname} already names",
            )
            _once(
                report, fixed, s.address, (*spath, "address"), used=f"{s.address} already given to"
            )
            if s.address is not None:
                _check_static_address(report, (*spath, "address"), s.address, lan, pools)


def _check_static_address(
    report: Report, at: Path_, address: IPv4Address, lan: Lan, pools: list[_Pool]
) -> None:
    lan_path = at[:2]
    if lan.address is not None:
        if address not in lan.address.network:
            report(at, f"{address} is outside the LAN {lan.address.network}")
        elif address == lan.address.ip:
            report(at, f"{address} is the router's own address")
    for ppath, lo, hi in pools:
        if ppath != lan_path and lo <= address <= hi:
            report(at, f"{address} is inside the pool of {format_path(ppath)}")


def check_upstream_dns(report: Report, dns: Dns, nets: list[_Net], wans: list[Any]) -> None:
    """Upstream DNS servers are beyond the uplinks, not on a LAN; an IPv6 one is asked
    through an uplink that has IPv6."""
    six = any(getattr(w, "address6", None) is not None for w in wans)
    for u_i, u in enumerate(dns.upstream or ()):
        if isinstance(u, IPv6Address):
            if not six:
                report(
                    ("dns", "upstream", u_i),
                    f"{u} is IPv6 and no uplink has IPv6 (address6): it could never be asked",
                )
            elif u.is_link_local:
                report(("dns", "upstream", u_i), f"{u} is link-local: it is beyond no uplink")
        for n in nets:
            if u in n.network and n.path[0] == "lans":
                report(
                    ("dns", "upstream", u_i),
                    f"{u} is inside {format_path(n.path[:-1])}: upstream DNS is beyond the uplinks",
                )


# --- the firewall (docs/firewall.md)


def protocols(proto: str) -> frozenset[str]:
    """The protocols a ``proto`` value stands for: ``tcp+udp`` is both."""
    return frozenset(proto.split("+"))


def check_firewall(report: Report, config: Config) -> None:
    """Openings and forwards name known uplinks and usable ports; forwards reach a LAN host,
    and no port is forwarded twice on one uplink (items may be partial: None where invalid)."""
    wan_names = [w.name for w in config.wans or () if w is not None and w.name is not None]
    lans = [lan for lan in config.lans or () if lan is not None]
    fw = config.firewall
    if fw is not None and fw.enabled is False:
        for i, lan in enumerate(config.lans or ()):
            if lan is not None and lan.isolate:
                report(
                    ("lans", i, "isolate"),
                    "isolating a LAN needs the firewall, and firewall.enabled is false",
                )
    openings = _check_allow(report, fw.allow or () if fw is not None else (), wan_names)
    forwarded = _check_forwards(report, list(config.forwards or ()), wan_names, lans)
    for at, name, wans, protos, ports in openings:
        for f_at, f_name, f_wans, f_protos, f_ports in forwarded:
            shared = [w for w in wans if w in f_wans]
            if shared and protos & f_protos and _overlap(ports, f_ports):
                report(
                    (*at, "port"),
                    f"{name}: {format_path(f_at)} ({f_name}) forwards this port on {shared[0]}, "
                    "and destination NAT comes first: the opening would never reach the router",
                )
                break


# (path, name, uplinks, protocols, port ranges) of one opening or forward
_Ports = tuple[Path_, str, list[str], frozenset[str], tuple[PortRange, ...]]


def _overlap(a: tuple[PortRange, ...], b: tuple[PortRange, ...]) -> bool:
    return any(x.overlaps(y) for x in a for y in b)


def _uplinks(
    report: Report, at: Path_, wans: tuple[str, ...] | None, known: list[str]
) -> list[str]:
    """The uplinks an item names (all when it names none); unknown names are reported."""
    if wans is None:
        return known
    for j, name in enumerate(wans):
        if name is not None and name not in known:
            report((*at, "wans", j), f"no uplink is named {name!r}")
    return [w for w in wans if w in known]


def _check_allow(report: Report, allow: tuple[Any, ...], known: list[str]) -> list[_Ports]:
    names: dict[str, Path_] = {}
    out: list[_Ports] = []
    for i, a in _enumerate_valid(list(allow)):
        at: Path_ = ("firewall", "allow", i)
        _once(report, names, a.name, (*at, "name"), used=f"name {a.name!r} already used by")
        wans = _uplinks(report, at, a.wans, known)
        if a.proto is None:
            continue
        if a.proto in PORT_PROTOS and a.port is None:
            report((*at, "port"), f"{a.proto} needs ports to open (e.g. 22, 8000-8100, [80, 443])")
        elif a.proto not in PORT_PROTOS and a.port is not None:
            report((*at, "port"), f"{a.proto} has no ports: remove port")
        for j, net in enumerate(a.from_ or ()):
            family = {"icmp": 4, "icmpv6": 6}.get(a.proto)
            if family is not None and net.version != family:
                report(
                    (*at, "from", j), f"{net} is IPv{net.version}; {a.proto} is IPv{family} only"
                )
        if a.port:
            out.append((at, a.name, wans, protocols(a.proto), a.port))
    return out


def _check_forwards(
    report: Report, forwards: list[Any], known: list[str], lans: list[Lan]
) -> list[_Ports]:
    names: dict[str, Path_] = {}
    out: list[_Ports] = []
    for i, f in _enumerate_valid(forwards):
        at: Path_ = ("forwards", i)
        _once(report, names, f.name, (*at, "name"), used=f"name {f.name!r} already used by")
        wans = _uplinks(report, at, f.wans, known)
        for j, net in enumerate(f.from_ or ()):
            if net.version != 4:
                report((*at, "from", j), f"{net} is IPv6: a forward reaches an IPv4 LAN host")
        if f.to is not None:
            _check_target_host(report, (*at, "to"), f.to, lans)
        if f.port is not None and f.to_port is not None:
            _check_to_port(report, (*at, "to_port"), f.port, f.to_port)
        if f.port is None or f.proto is None:
            continue
        mine = (at, f.name, wans, protocols(f.proto), (f.port,))
        for e_at, e_name, e_wans, e_protos, e_ports in out:
            shared = [w for w in wans if w in e_wans]
            if shared and mine[3] & e_protos and _overlap(mine[4], e_ports):
                report(
                    (*at, "port"),
                    f"{f.port}/{f.proto} on {shared[0]} is already forwarded by "
                    f"{format_path(e_at)} ({e_name})",
                )
                break
        out.append(mine)
    return out


def _check_target_host(report: Report, at: Path_, to: IPv4Address, lans: list[Lan]) -> None:
    """A forward's target is a host on a LAN: not the router, not the subnet's edges."""
    for lan in lans:
        if lan.address is None or to not in lan.address.network:
            continue
        net = lan.address.network
        if to == lan.address.ip:
            report(at, f"{to} is the router's own address on LAN {lan.name!r}")
        elif to in (net.network_address, net.broadcast_address):
            report(at, f"{to} is the network or broadcast address of LAN {lan.name!r}")
        return
    report(at, f"{to} is outside every LAN: a forward reaches a host on a LAN")


def _check_to_port(report: Report, at: Path_, port: PortRange, to_port: PortRange) -> None:
    """One port maps to one port, a range to a range of the same length."""
    if to_port.size != port.size:
        report(
            at,
            f"{to_port} has {to_port.size} port(s) and port {port} has {port.size}: "
            "a range maps 1:1 to a range of the same length",
        )
    elif to_port.first != port.first and port.size > MAX_SHIFTED_PORTS:
        report(
            at,
            f"a shifted range maps at most {MAX_SHIFTED_PORTS} ports; {port} has {port.size} "
            "(forward to the same ports, or split it)",
        )


# --- policy rules (docs/rules.md)


def check_rules(report: Report, config: Config, *, clean: bool) -> None:
    """Rules name known uplinks and LANs, match something, and can each match some
    connection no earlier rule takes (only when ``clean``: no rule field was rejected,
    or a missing field would read as "anything")."""
    rules: list[Rule] = list(config.rules or ())
    wans = [w.name for w in config.wans or () if w is not None and w.name is not None]
    lans = {lan.name: lan for lan in config.lans or () if lan is not None}
    if len(rules) > MAX_RULES:
        report(("rules",), f"lists {len(rules)} rules; at most {MAX_RULES} (each has a ct mark)")
        return
    names: dict[str, Path_] = {}
    sound: list[tuple[int, Rule]] = []
    families = matches.families(config)
    for i, r in _enumerate_valid(list[Rule | None](rules)):
        at: Path_ = ("rules", i)
        _once(report, names, r.name, (*at, "name"), used=f"name {r.name!r} already used by")
        ok = _check_rule(report, at, r, wans, lans, families=families, clean=clean)
        if ok and r.name is not None and r.via is not None and r.when_down is not None:
            sound.append((i, r))
    _check_domain_lookups(report, config, rules, lans)
    if not clean or len(sound) != len(rules):
        return
    if 6 in families:
        _check_via6(report, config, sound)
    lan_list = list(lans.values())
    try:
        by_family = {f: matches.matches(rules, lan_list, f) for f in families}
        reach = {f: matches.reachable(ms, f) for f, ms in by_family.items()}
    except OverflowError:
        report(
            ("rules",),
            f"these rules cut the address space into more than {matches.MAX_REGIONS} "
            "regions: merge rules that differ in one field only",
        )
        return
    for i, r in sound:
        mine = {f: m for f, ms in by_family.items() for m in ms if m.rule == i}
        if not mine:
            report(("rules", i), f"{r.name}: matches no connection of either family")
            continue
        earlier = next(
            (
                j
                for j in range(i)
                if all(
                    any(e.rule == j and matches.covers(e, m) for e in by_family[f])
                    for f, m in mine.items()
                )
            ),
            None,
        )
        if earlier is not None:
            by = f"{format_path(('rules', earlier))} ({rules[earlier].name})"
        elif not any(i in reach[f] for f in mine):
            by = "the rules before it together"
        else:
            continue
        report(("rules", i), f"{r.name} can never match: {by} already takes all its traffic")


def _check_domain_lookups(
    report: Report, config: Config, rules: list[Rule], lans: dict[str, Lan]
) -> None:
    """A domains rule matches only what the router's dnsmasq resolved: it must be the
    forwarder, and the rule's LANs' clients must ask it."""
    for i, r in _enumerate_valid(list[Rule | None](rules)):
        if not r.domains:
            continue
        if config.dns is not None and not config.dns.upstream:
            report(
                ("rules", i, "domains"), "needs dns.upstream: the router's dnsmasq resolves them"
            )
        named = [x for x in r.from_ or () if isinstance(x, str)]
        for lan in [lans[n] for n in named if n in lans] if r.from_ else lans.values():
            if lan.dhcp is not None and lan.dhcp.dns:
                report(
                    ("rules", i, "domains"),
                    f"LAN {lan.name!r} hands out dhcp.dns {', '.join(map(str, lan.dhcp.dns))}: "
                    "its clients would not ask the router, so the rule could not see their "
                    "lookups (drop dhcp.dns)",
                )


def _check_rule(
    report: Report,
    at: Path_,
    r: Rule,
    wans: list[str],
    lans: dict[str, Lan],
    *,
    families: tuple[int, ...],
    clean: bool,
) -> bool:
    """One rule's own problems; False if it had any."""
    problems: list[tuple[Path_, str]] = []
    if r.via is not None:
        problems += _via_problems((*at, "via"), r, wans)
    for j, item in enumerate(r.from_ or ()):
        if isinstance(item, str):
            if item not in lans:
                problems.append(
                    ((*at, "from", j), f"no LAN is named {item!r} (nor is it a prefix)")
                )
            elif not matches.lan_prefixes(lans[item]):
                problems.append(((*at, "from", j), f"LAN {item!r} has no address to match"))
    problems += _ipv6_problems(at, r, families)
    if r.to is not None and r.domains is not None:
        problems.append(((*at, "domains"), "give to or domains, not both (two rules match either)"))
    if r.ports is not None and r.proto is not None and r.proto not in PORT_PROTOS:
        problems.append(((*at, "ports"), f"{r.proto} has no ports: remove ports"))
    elif r.ports is not None and r.proto is None:
        problems.append(((*at, "ports"), "ports need proto: tcp, udp or tcp+udp"))
    if clean and all(v is None for v in (r.from_, r.to, r.domains, r.proto, r.ports)):
        problems.append(
            (at, f"{r.name}: matches every connection: that is the policy's job; add a match")
        )
    for path, message in problems:
        report(path, message)
    return not problems


def _ipv6_problems(at: Path_, r: Rule, families: tuple[int, ...]) -> list[tuple[Path_, str]]:
    """Without a LAN with IPv6 and an uplink that carries it no IPv6 connection
    reaches the rules (matches.families): an IPv6 match would be accepted and never hold."""
    if 6 in families:
        return []
    why = "no IPv6 connection leaves by an uplink (no LAN and uplink both have address6)"
    out: list[tuple[Path_, str]] = [
        ((*at, key, j), f"{item}: IPv6, and {why}")
        for key, items in (("from", r.from_), ("to", r.to))
        for j, item in enumerate(items or ())
        if isinstance(item, IPv6Network)
    ]
    if r.proto == "icmpv6":
        out.append(((*at, "proto"), f"icmpv6: {why}"))
    return out


def _check_via6(report: Report, config: Config, sound: list[tuple[int, Rule]]) -> None:
    """A rule that matches IPv6 traffic needs an uplink in via that carries IPv6: with none
    its IPv6 would take when_down at every moment (refused, or the policy's uplinks: the
    leak the rule was written against), which no admin means by naming uplinks."""
    six = {w.name for w in config.wans or () if w is not None and has_ipv6(w)}
    lans = [lan for lan in config.lans or () if lan is not None]
    for i, r in sound:
        if any(u.name in six for u in r.via.uplinks) or matches.match(i, r, lans, 6) is None:
            continue
        report(
            ("rules", i, "via"),
            f"{r.name} matches IPv6 traffic, but no uplink of via has IPv6 (address6): "
            f"its IPv6 would always be {_WHEN_DOWN6[r.when_down]}; add an uplink with IPv6 "
            "to via, or match IPv4 only (IPv4 prefixes in from or to)",
        )


_WHEN_DOWN6 = {
    "block": "refused (when_down block)",
    "default": "left to the policy (when_down default)",
}


def _via_problems(at: Path_, r: Rule, wans: list[str]) -> list[tuple[Path_, str]]:
    out: list[tuple[Path_, str]] = []
    members = [u for u in r.via.uplinks or () if u is not None]
    for j, u in enumerate(members):
        if u.name is not None and u.name not in wans:
            out.append(((*at, "uplinks", j), f"no uplink is named {u.name!r}"))
    if len({u.name for u in members}) != len(members):
        out.append(((*at, "uplinks"), "an uplink is listed twice"))
    if r.via.mode == "failover" and any(u.weight is not None for u in members):
        out.append(((*at, "mode"), "weights need mode: loadbalance"))
    return out
