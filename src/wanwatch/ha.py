"""The router pair: the design, and this router's view of the shared config.

The ``ha:`` section's model is in config/model.py, its checks in config/ha.py.

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

from ipaddress import IPv4Address

from wanwatch.config import Config


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
