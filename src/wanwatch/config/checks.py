"""Checks across config items: unique names, subnets, gateways, probe targets, DHCP pools.

Items may be partial (a field is None where its value was rejected and reported), so
every check skips what it cannot see. Each problem goes to ``report(path, message)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, TypeVar

from wanwatch.config import dynamic
from wanwatch.config.fields import Path_, format_path
from wanwatch.config.model import Dns, Lan, Wan

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
    dynamic.check_wans(report, wans)
    pools = check_pools(report, lans)
    check_static_leases(report, lans, pools)
    if dns is not None:
        check_upstream_dns(report, dns, nets)


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
    target_owner: dict[IPv4Address, Path_] = {}
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


def _check_target(report: Report, tpath: Path_, t: IPv4Address, nets: list[_Net]) -> None:
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


def check_upstream_dns(report: Report, dns: Dns, nets: list[_Net]) -> None:
    """Upstream DNS servers are beyond the uplinks, not on a LAN."""
    for u_i, u in enumerate(dns.upstream or ()):
        for n in nets:
            if u in n.network and n.path[0] == "lans":
                report(
                    ("dns", "upstream", u_i),
                    f"{u} is inside {format_path(n.path[:-1])}: upstream DNS is beyond the uplinks",
                )
