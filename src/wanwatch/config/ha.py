"""The router pair: the design, this router's view of the shared config, and its checks.

The ``ha:`` section's model is in config/model.py; its checks are below.

Two wanwatch routers share one config except ``ha:``. The addresses in
``lans[].address`` and ``wans[].address`` are the *shared* ones: keepalived
(VRRP, RFC 5798) puts them on whichever router is master, and every router has
its own address on each segment (``ha.lans[].address``, ``ha.wans[].address``)
for its VRRP adverts and its uplink probes. The uplink addresses move with the
LAN gateways in one VRRP sync group, as pfSense's CARP does, because a NATed
connection survives a takeover only if the new master NATs it to the same
address; conntrackd hands the connection (and NAT) state over.

:func:`local_view` is the config as this router applies it itself (its own
addresses); keepalived adds and removes the shared ones.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface

from wanwatch.config.model import Config, HaSegment, Lan, Wan


def local_view(config: Config) -> Config:
    """``config`` as this router applies it itself: its own address on every shared segment."""
    ha = config.ha
    if ha is None:
        return config
    own_lan = {hl.lan: hl.address for hl in ha.lans}
    own_wan = {hw.wan: hw.address for hw in ha.wans}
    shared = {w.name: w.address for w in config.wans}
    return config.replace(
        ha=ha.replace(wans=tuple(hw.replace(shared=shared[hw.wan]) for hw in ha.wans)),
        lans=tuple(lan.replace(address=own_lan.get(lan.name, lan.address)) for lan in config.lans),
        wans=tuple(w.replace(address=own_wan.get(w.name, w.address)) for w in config.wans),
    )


def snat(config: Config) -> list[tuple[str, IPv4Address, IPv4Address]]:
    """(interface, own address, shared address) of each uplink NATed to the pair's address.

    For a config from :func:`local_view`; empty without a pair. Forwarded
    connections leave with the shared address, so the other router can carry
    them on after a takeover (conntrackd hands over the mapping; the kernel
    keeps using it). The router's own packets (probes, DNS) keep its own address.
    """
    if config.ha is None:
        return []
    wans = {w.name: w for w in config.wans}
    out = []
    for hw in config.ha.wans:
        if hw.shared is not None and hw.address is not None:
            out.append((wans[hw.wan].interface, hw.address.ip, hw.shared.ip))
    return out


# --- checks: what cannot work in a pair (items may be partial: None where invalid)

Report = Callable[[tuple[str | int, ...], str], None]


Segment = tuple[tuple[str | int, ...], HaSegment, IPv4Interface | None]


def check_ha(report: Report, config: Config) -> None:
    """Report what cannot work in ``config.ha`` (items may be partial: None where invalid)."""
    ha = config.ha
    if ha is None:
        return
    segments = _check_names(report, config)
    _check_own_addresses(report, segments, ha.advert_interval)
    _check_everything_paired(report, config)
    _check_sync(report, config)


def _check_names(report: Report, config: Config) -> list[Segment]:
    """Each ha.lans/ha.wans entry names a LAN/uplink with an address its own one can share."""
    assert config.ha is not None
    lans: dict[str, Lan | Wan] = {x.name: x for x in config.lans or () if x is not None}
    wans: dict[str, Lan | Wan] = {x.name: x for x in config.wans or () if x is not None}
    segments: list[Segment] = []
    kinds = (
        ("lans", "lan", "LAN", lans, "the gateway the master holds"),
        ("wans", "wan", "uplink", wans, "the NAT address the master holds"),
    )
    for kind, key, what, items, role in kinds:
        entries: tuple[HaSegment | None, ...] = getattr(config.ha, kind) or ()
        for i, seg in enumerate(entries):
            if seg is None:
                continue
            path: tuple[str | int, ...] = ("ha", kind, i)
            name = getattr(seg, key)
            item = items.get(name)
            if item is None:
                report((*path, key), f"no {what} is named {name!r}")
                continue
            if item.address is None:
                report((*path, key), f"{what} {name!r} needs an address: it is {role}")
            elif seg.address is not None:
                clash = _own_clash(seg.address.ip, item)
                if clash:
                    report((*path, "address"), f"{seg.address.ip} {clash} of {what} {name!r}")
            shared = item.address if isinstance(item.address, IPv4Interface) else None
            segments.append((path, seg, shared))
    return segments


def _check_own_addresses(report: Report, segments: list[Segment], adverts: float | None) -> None:
    """This router's own address sits beside the shared one; passwords need whole seconds."""
    for path, seg, shared in segments:
        if seg.address is not None and shared is not None:
            if seg.address.network != shared.network:
                report(
                    (*path, "address"),
                    f"{seg.address} is not in the shared {shared.network}: VRRP adverts and "
                    "the shared address it guards live on one subnet",
                )
            elif seg.address.ip == shared.ip:
                report(
                    (*path, "address"),
                    f"{seg.address.ip} is the shared address; this router needs its own",
                )
        if seg.password is not None and adverts is not None and adverts != max(int(adverts), 1):
            report(
                (*path, "password"),
                "a password needs VRRPv2 (RFC 3768), whose adverts are whole seconds; "
                "drop it for sub-second VRRPv3 adverts, or set advert_interval: 1s",
            )


def _check_everything_paired(report: Report, config: Config) -> None:
    """Every LAN gateway, and every NATed uplink's address, is held by the pair."""
    assert config.ha is not None
    named = {hl.lan for hl in config.ha.lans or () if hl is not None}
    for i, lan in enumerate(config.lans or ()):
        if lan is not None and lan.name is not None and lan.name not in named:
            report(
                ("lans", i),
                f"the pair must hold this LAN's gateway: add it under ha.lans "
                f"(LAN {lan.name!r} would stay on one router)",
            )
    if config.nat is not None and config.nat.masquerade:
        named = {hw.wan for hw in config.ha.wans or () if hw is not None}
        for i, w in enumerate(config.wans or ()):
            if w is not None and w.name is not None and w.name not in named:
                report(
                    ("wans", i),
                    "add this uplink under ha.wans: a NATed connection survives a takeover "
                    "only if the new master NATs to the same, shared address",
                )


def _check_sync(report: Report, config: Config) -> None:
    """The state-sync link: a peer on its subnet, an interface of its own."""
    assert config.ha is not None
    sync = config.ha.sync
    if sync is None or sync.address is None or sync.peer is None:
        return
    if sync.peer not in sync.address.network or sync.peer == sync.address.ip:
        report(
            ("ha", "sync", "peer"),
            f"{sync.peer} must be another address in the sync subnet {sync.address.network}",
        )
    used = {lan.interface for lan in config.lans or () if lan is not None}
    used |= {w.interface for w in config.wans or () if w is not None}
    if sync.interface in used:
        report(
            ("ha", "sync", "interface"),
            f"{sync.interface} is a LAN or uplink: the state sync needs a link of its own",
        )


def _own_clash(own: IPv4Address, item: Lan | Wan) -> str | None:
    """Why a router's own address cannot be ``own`` on ``item``'s segment, if it cannot."""
    if isinstance(item, Wan) and own == item.gateway:
        return "is the gateway"
    dhcp = item.dhcp if isinstance(item, Lan) else None
    if dhcp is not None and dhcp.range is not None and dhcp.range[0] <= own <= dhcp.range[1]:
        return f"is inside the DHCP pool {dhcp.range[0]}-{dhcp.range[1]}"
    return None
