"""The router pair: the ``ha:`` config section, its checks and this router's view.

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

from ipaddress import IPv4Address, IPv4Interface
from typing import TYPE_CHECKING, Annotated, ClassVar

from msgspec import Meta

from wanwatch.config import Check, Duration, IfName, Lan, Name, Wan, _Model

if TYPE_CHECKING:
    from wanwatch.config import Config, _Walker

# RFC 5798 5.2.7: the advertisement interval is 12 bits of centiseconds.
ADVERT_MIN = 0.01
ADVERT_MAX = 40.95
# RFC 3768 5.3.6: simple-text authentication data is 8 octets.
PASSWORD_MAX = 8


def _password(value: str) -> str:
    if not 1 <= len(value.encode()) <= PASSWORD_MAX or any(c.isspace() for c in value):
        raise ValueError(f"a VRRP password is 1-{PASSWORD_MAX} bytes without spaces")
    return value


class HaSegment(_Model, frozen=True, kw_only=True):
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


class HaSync(_Model, frozen=True):
    """The link between the two routers that carries conntrackd's state."""

    interface: IfName
    address: IPv4Interface  # this router's address on it
    peer: IPv4Address  # the other router's address on it


class Ha(_Model, frozen=True, kw_only=True):
    """This router's part of a pair."""

    # RFC 5798 5.2.4: 255 is reserved for the owner of the address, 0 for resigning.
    priority: Annotated[int, Meta(ge=1, le=254)]
    preempt: bool = True  # the higher priority takes the master role back
    advert_interval: Annotated[Duration, Meta(ge=ADVERT_MIN, le=ADVERT_MAX)] = 0.1
    sync: HaSync
    lans: Annotated[tuple[HaLan, ...], Meta(min_length=1)]
    wans: tuple[HaWan, ...] = ()


def check(col: _Walker, config: Config) -> None:
    """Report what cannot work in ``config.ha`` (items may be partial: None where invalid)."""
    ha = config.ha
    if ha is None:
        return
    lans: dict[str, Lan | Wan] = {x.name: x for x in config.lans or () if x is not None}
    wans: dict[str, Lan | Wan] = {x.name: x for x in config.wans or () if x is not None}
    segments: list[tuple[tuple[str | int, ...], HaSegment, IPv4Interface | None]] = []
    kinds = (
        ("lans", "lan", "LAN", lans, "the gateway the master holds"),
        ("wans", "wan", "uplink", wans, "the NAT address the master holds"),
    )
    for kind, key, what, items, role in kinds:
        entries: tuple[HaSegment | None, ...] = getattr(ha, kind) or ()
        for i, seg in enumerate(entries):
            if seg is None:
                continue
            path: tuple[str | int, ...] = ("ha", kind, i)
            name = getattr(seg, key)
            item = items.get(name)
            if item is None:
                col.add((*path, key), f"no {what} is named {name!r}")
                continue
            if item.address is None:
                col.add((*path, key), f"{what} {name!r} needs an address: it is {role}")
            elif seg.address is not None:
                clash = _own_clash(seg.address.ip, item)
                if clash:
                    col.add((*path, "address"), f"{seg.address.ip} {clash} of {what} {name!r}")
            segments.append((path, seg, item.address))
    for path, seg, shared in segments:
        if seg.address is not None and shared is not None:
            if seg.address.network != shared.network:
                col.add(
                    (*path, "address"),
                    f"{seg.address} is not in the shared {shared.network}: VRRP adverts and "
                    "the shared address it guards live on one subnet",
                )
            elif seg.address.ip == shared.ip:
                col.add(
                    (*path, "address"),
                    f"{seg.address.ip} is the shared address; this router needs its own",
                )
        adverts = ha.advert_interval
        if seg.password is not None and adverts is not None and adverts != max(int(adverts), 1):
            col.add(
                (*path, "password"),
                "a password needs VRRPv2 (RFC 3768), whose adverts are whole seconds; "
                "drop it for sub-second VRRPv3 adverts, or set advert_interval: 1s",
            )
    named = {hl.lan for hl in ha.lans or () if hl is not None}
    for i, lan in enumerate(config.lans or ()):
        if lan is not None and lan.name is not None and lan.name not in named:
            col.add(
                ("lans", i),
                f"the pair must hold this LAN's gateway: add it under ha.lans "
                f"(LAN {lan.name!r} would stay on one router)",
            )
    if config.nat is not None and config.nat.masquerade:
        named = {hw.wan for hw in ha.wans or () if hw is not None}
        for i, w in enumerate(config.wans or ()):
            if w is not None and w.name is not None and w.name not in named:
                col.add(
                    ("wans", i),
                    "add this uplink under ha.wans: a NATed connection survives a takeover "
                    "only if the new master NATs to the same, shared address",
                )
    sync = ha.sync
    if sync is not None and sync.address is not None and sync.peer is not None:
        if sync.peer not in sync.address.network or sync.peer == sync.address.ip:
            col.add(
                ("ha", "sync", "peer"),
                f"{sync.peer} must be another address in the sync subnet {sync.address.network}",
            )
        used = {lan.interface for lan in config.lans or () if lan is not None}
        used |= {w.interface for w in config.wans or () if w is not None}
        if sync.interface in used:
            col.add(
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
