"""IPv6 in the config: what ``auto`` means, and the checks of the IPv6 fields (docs/ipv6.md).

- An uplink's ``address6: auto`` is learned from the ISP's router advertisements
  (SLAAC address, default router; RFC 4861, RFC 4862): the kernel does it, so
  there is no ``gateway6`` to give.
- A LAN's ``address6: auto`` is a ULA /64 derived from the LAN's name. RFC 4193
  section 3.2.2 builds the 40-bit Global ID from a SHA-1 digest and keeps its
  low 40 bits; we digest the LAN's name instead of a time stamp and an EUI-64,
  so the prefix is stable across restarts, reloads and a rebuilt router without
  any state to keep. Two offices whose LANs share a name get the same prefix:
  give a prefix of your own where such networks are joined (a VPN).
- An uplink's ``dhcp6`` asks the ISP for a delegated prefix (RFC 8415 IA_PD,
  through dhcpcd: linux/dhcp6_client.py). The prefix is known at run time only:
  it is the uplink's ``prefix6`` once bound (:func:`nat66`), so the two fields
  exclude each other; until then the LANs are masqueraded to the uplink's address.

Items may be partial (a field is None where its value was rejected and reported),
so every check skips what it cannot see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from ipaddress import IPv6Address, IPv6Interface, IPv6Network

from wanwatch.config.fields import AUTO, Path_, format_path
from wanwatch.config.model import Config, Lan, Wan

Report = Callable[[Path_, str], None]

ULA = IPv6Network("fd00::/8")  # RFC 4193 3.1: L = 1, locally assigned
# SLAAC forms addresses in a /64 only (RFC 4862 5.5.3 with RFC 4291 2.5.1; RFC 7421).
LAN_PREFIXLEN = 64


def derived_ula(name: str) -> IPv6Interface:
    """The router's address on a LAN named ``name``: ``fdXX:XXXX:XXXX::1/64``, where
    the 40-bit Global ID is the low 40 bits of SHA-1(name) (RFC 4193 3.2.2), subnet 0."""
    global_id = int.from_bytes(hashlib.sha1(name.encode()).digest()[-5:], "big")
    prefix = (0xFD << 120) | (global_id << 80)
    return IPv6Interface((prefix | 1, LAN_PREFIXLEN))


def lan_address6(lan: Lan) -> IPv6Interface | None:
    """The router's IPv6 address on ``lan`` (``auto`` resolved); None: no IPv6 there."""
    if lan.address6 == AUTO:
        return derived_ula(lan.name)
    return lan.address6 if isinstance(lan.address6, IPv6Interface) else None


def has_ipv6(wan: Wan) -> bool:
    """The uplink carries IPv6 (a static address or one learned from RAs)."""
    return wan.address6 is not None


def static_address6(wan: Wan) -> IPv6Interface | None:
    return wan.address6 if isinstance(wan.address6, IPv6Interface) else None


def ipv6_lans(config: Config) -> list[tuple[Lan, IPv6Interface]]:
    """The LANs with IPv6 and the router's address on each, in config order."""
    return [(lan, a) for lan in config.lans if (a := lan_address6(lan)) is not None]


def translated_prefix(wan: Wan, lan_index: int) -> IPv6Network | None:
    """The /64 of ``wan.prefix6`` that the ``lan_index``-th IPv6 LAN is translated into
    (RFC 6296: one LAN prefix to one external prefix of the same length); None:
    the uplink has no routed prefix, the LAN is masqueraded to its address."""
    if wan.prefix6 is None:
        return None
    subnets = wan.prefix6.subnets(new_prefix=LAN_PREFIXLEN)
    return next((s for i, s in enumerate(subnets) if i == lan_index), None)


def _unusable(a: IPv6Address) -> str | None:
    if a.is_multicast:
        return "is a multicast address"
    if a.is_loopback or a.is_unspecified:
        return "is not a unicast address"
    if a.is_link_local:
        return "is link-local"
    return None


def check_ipv6(report: Report, config: Config) -> None:
    """Uplinks' and LANs' IPv6 fields, IPv6 probe targets, subnets that overlap."""
    nets: list[tuple[Path_, IPv6Network]] = []
    v6_lans = sum(1 for lan in config.lans or () if lan is not None and lan.address6 is not None)
    for i, w in enumerate(config.wans or ()):
        if w is not None:
            _check_wan(report, ("wans", i), w, v6_lans, nets)
    for i, lan in enumerate(config.lans or ()):
        if lan is not None:
            _check_lan(report, ("lans", i, "address6"), lan, nets)
    for a_i, (a_at, a) in enumerate(nets):
        for b_at, b in nets[a_i + 1 :]:
            if a.overlaps(b):
                report(b_at, f"subnet {b} overlaps {a} of {format_path(a_at[:-1])}")
    for i, w in enumerate(config.wans or ()):
        if w is not None and w.probe is not None:
            _check_targets(report, ("wans", i, "probe", "targets"), w, nets)


def _check_lan(report: Report, at: Path_, lan: Lan, nets: list[tuple[Path_, IPv6Network]]) -> None:
    if lan.name is None and lan.address6 == AUTO:
        return  # its name was rejected: nothing to derive from
    address = lan_address6(lan)
    if address is None:
        return
    if problem := _unusable(address.ip):
        report(at, f"{address.ip} {problem}")
    elif (length := address.network.prefixlen) != LAN_PREFIXLEN:
        report(at, f"a LAN's IPv6 prefix is a /64 (SLAAC, RFC 4862), not /{length}")
    elif address.ip == address.network.network_address:
        report(at, f"{address.ip} is the subnet-router anycast address (RFC 4291 2.6.1)")
    nets.append((at, address.network))


def _check_wan(
    report: Report, path: Path_, w: Wan, v6_lans: int, nets: list[tuple[Path_, IPv6Network]]
) -> None:
    address = static_address6(w)
    if w.address6 is None:
        for key in ("gateway6", "prefix6", "dhcp6"):
            if getattr(w, key) is not None:
                report((*path, key), f"{key} needs address6 (a static IPv6 address or auto)")
        return
    if w.address6 == AUTO and w.gateway6 is not None:
        report(
            (*path, "gateway6"),
            f"{w.gateway6}: an uplink with address6: auto learns its router from router "
            "advertisements; remove gateway6, or give a static address6",
        )
    if address is not None:
        if problem := _unusable(address.ip):
            report((*path, "address6"), f"{address.ip} {problem}: an uplink needs a global one")
        else:
            nets.append(((*path, "address6"), address.network))
        if w.gateway6 is not None:
            _check_gateway6(report, (*path, "gateway6"), w.gateway6, address)
    if w.prefix6 is not None and w.dhcp6 is not None:
        report(
            (*path, "prefix6"),
            f"{w.prefix6}: with dhcp6 the uplink's prefix is the one the ISP delegates; "
            "remove prefix6 (a static delegation) or dhcp6",
        )
    elif w.prefix6 is not None:
        _check_prefix6(report, (*path, "prefix6"), w.prefix6, v6_lans, nets)
    elif (
        w.dhcp6 is not None
        and (length := w.dhcp6.prefix_length) is not None
        and v6_lans > 2 ** (LAN_PREFIXLEN - length)
    ):
        report(
            (*path, "dhcp6", "prefix_length"),
            f"a /{length} holds {2 ** (LAN_PREFIXLEN - length)} /64(s), and {v6_lans} "
            "LANs have IPv6: each is translated into a /64 of its own (RFC 6296)",
        )


def _check_gateway6(report: Report, at: Path_, g: IPv6Address, address: IPv6Interface) -> None:
    if g.is_multicast or g.is_unspecified or g.is_loopback:
        report(at, f"{g} is not a unicast address")
    elif g == address.ip:
        report(at, f"{g} is the uplink's own address")
    elif not g.is_link_local and g not in address.network:
        report(
            at,
            f"{g} is outside the uplink's subnet {address.network} (a router's "
            "link-local address such as fe80::1 is the usual gateway)",
        )


def _check_prefix6(
    report: Report, at: Path_, p: IPv6Network, v6_lans: int, nets: list[tuple[Path_, IPv6Network]]
) -> None:
    if p.prefixlen > LAN_PREFIXLEN:
        report(at, f"{p} is longer than a /64: a LAN's prefix cannot fit in it")
    elif v6_lans > 2 ** (LAN_PREFIXLEN - p.prefixlen):
        report(
            at,
            f"{p} holds {2 ** (LAN_PREFIXLEN - p.prefixlen)} /64(s), and {v6_lans} LANs "
            "have IPv6: each is translated into a /64 of its own (RFC 6296)",
        )
    elif problem := _unusable(p.network_address):
        report(at, f"{p} {problem}")
    else:
        nets.append((at, p))


def _check_targets(
    report: Report, path: Path_, w: Wan, nets: list[tuple[Path_, IPv6Network]]
) -> None:
    targets = w.probe.targets or ()
    if targets and not any(t.address.version == 4 for t in targets if t is not None):
        report(path, "needs an IPv4 target too: the uplink's IPv4 is judged by its IPv4 targets")
    for t_i, target in enumerate(targets):
        if target is None or not isinstance(target.address, IPv6Address):
            continue
        t = target.address
        at = (*path, t_i)
        if w.address6 is None:
            report(
                at,
                f"{t} is IPv6 and {w.name} has no IPv6 (address6): it could never answer "
                "through this uplink",
            )
        elif t.is_link_local:  # multicast and the like: checks.py says so for both families
            report(at, f"{t} is link-local: it cannot be probed through an uplink")
        elif inside := next((n_at for n_at, n in nets if t in n), None):
            report(
                at,
                f"{t} is inside {format_path(inside[:-1])}'s IPv6 subnet: a probe target "
                "must be beyond the uplink",
            )


def describe_ipv6(config: Config) -> list[str]:
    """What ``check`` and ``plan`` say about each uplink's and LAN's IPv6, in words."""
    out: list[str] = []
    for w in config.wans:
        if w.address6 == AUTO:
            out.append(
                f"{w.name}: IPv6 address and router from router advertisements on {w.interface}"
            )
        if w.dhcp6 is not None:
            length = w.dhcp6.prefix_length
            asked = f"a /{length}" if length else "the ISP's choice of length"
            out.append(
                f"{w.name}: IPv6 prefix delegated by DHCPv6 on {w.interface} (dhcpcd, "
                f"supervised; asking for {asked}): the LANs are translated into it once "
                "bound, masqueraded to the uplink's address until then"
            )
        if has_ipv6(w) and not w.probe.family(6):
            out.append(f"{w.name}: no IPv6 probe target: its IPv6 is judged by its IPv4 probes")
    for lan in config.lans:
        if lan.address6 == AUTO:
            out.append(f"{lan.name}: IPv6 {derived_ula(lan.name)} (a ULA derived from its name)")
    return out


def ipv4_only(config: Config) -> Config:
    """``config`` without its IPv6 (for a backend that carries IPv4 only)."""
    return config.replace(
        wans=tuple(
            w.replace(
                address6=None,
                gateway6=None,
                prefix6=None,
                dhcp6=None,
                probe=w.probe.replace(targets=w.probe.family(4)),
            )
            for w in config.wans
        ),
        lans=tuple(lan.replace(address6=None) for lan in config.lans),
    )


def nat66(
    config: Config, delegated: Mapping[str, IPv6Network] | None = None
) -> list[tuple[str, dict[IPv6Network, IPv6Network] | None]]:
    """How each IPv6 uplink translates the LANs' prefixes, in config order: its
    interface and a map LAN /64 -> its /64 of ``prefix6`` (RFC 6296's one prefix to one
    prefix), or None: masquerade to the uplink's address (docs/ipv6.md).

    ``delegated``: the prefix each ``dhcp6`` uplink holds now (uplink name -> prefix),
    its ``prefix6`` at run time. A delegation too small for every LAN is not used:
    the uplink masquerades, so no LAN is left untranslated (the config cannot check
    what a server will give)."""
    lans = [a.network for _, a in ipv6_lans(config)]
    out: list[tuple[str, dict[IPv6Network, IPv6Network] | None]] = []
    for w in config.wans:
        if not has_ipv6(w):
            continue
        runtime = w
        if w.dhcp6 is not None and delegated and w.name in delegated:
            runtime = w.replace(prefix6=delegated[w.name])
        if runtime.prefix6 is None:
            out.append((w.interface, None))
            continue
        mapping = {net: p for i, net in enumerate(lans) if (p := translated_prefix(runtime, i))}
        out.append((w.interface, mapping if len(mapping) == len(lans) else None))
    return out
