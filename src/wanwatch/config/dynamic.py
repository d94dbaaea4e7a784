"""Uplinks that are not static: what the config says about them, and what only run time knows.

Three kinds of uplink (:func:`kind`):

- ``static``: ``address`` and ``gateway`` given (or the interface's own address
  and the given gateway);
- ``dhcp``: ``address: dhcp``: a DHCP client learns address, gateway and DNS
  (linux/dhcp_client.py); ``gateway`` must not be given (the lease's router
  option, RFC 2132 section 3.5, is the gateway);
- ``point-to-point``: no ``gateway``: the link has no broadcast layer (PPP,
  raw-IP wwan, tun, WireGuard: IFF_POINTOPOINT or IFF_NOARP in netdevice(7)),
  so routes go via the interface itself, or via the peer address the kernel
  holds for it (``ip address add A peer B``, RTM_NEWADDR's IFA_ADDRESS).

Any uplink's interface may be absent at start, disappear and come back (USB
modems): that is run time only, and never a config error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Interface
from typing import Literal

from wanwatch.config.fields import DHCP
from wanwatch.config.ipv6 import describe_ipv6
from wanwatch.config.model import Config, Wan

Kind = Literal["static", "dhcp", "point-to-point"]


def kind(wan: Wan) -> Kind:
    if wan.address == DHCP:
        return "dhcp"
    return "static" if wan.gateway is not None else "point-to-point"


def static_address(wan: Wan) -> IPv4Interface | None:
    """The address the config fixes for ``wan``; None for dhcp or the interface's own."""
    return wan.address if isinstance(wan.address, IPv4Interface) else None


def check_wans(
    add: Callable[[tuple[str | int, ...], str], None], wans: Sequence[Wan | None]
) -> None:
    """Config errors of dynamic uplinks (items may be partial: None where invalid)."""
    for i, w in enumerate(wans):
        if w is None:
            continue
        path: tuple[str | int, ...] = ("wans", i)
        if w.address == DHCP and w.gateway is not None:
            add(
                (*path, "gateway"),
                f"{w.gateway}: a DHCP uplink takes its gateway from the lease (the router "
                "option); remove gateway, or give a static address",
            )
        address = static_address(w)
        if address is not None and w.gateway is not None and address.network.prefixlen == 32:
            add(
                (*path, "gateway"),
                f"{w.gateway} cannot be reached from {address}: a /32 address is "
                "point-to-point; omit gateway and routes go via the interface",
            )


def runtime_facts(cfg: Config) -> list[str]:
    """What ``check`` and ``plan`` cannot know for each dynamic uplink, in words."""
    out: list[str] = []
    for w in cfg.wans:
        k = kind(w)
        if k == "dhcp":
            out.append(
                f"{w.name}: address, gateway and DNS come from a DHCP lease on {w.interface} "
                "(udhcpc, supervised); a new lease is applied live, a lost one makes it down"
            )
        elif k == "point-to-point":
            addr = static_address(w) or "the interface's own address (followed as it changes)"
            out.append(
                f"{w.name}: point-to-point on {w.interface}: routes via the interface "
                f"(or its peer address), source {addr}"
            )
    if out:
        out.append(
            "any uplink whose interface is absent starts down (link absent) and is "
            "adopted when it appears"
        )
    return out + describe_ipv6(cfg)


def plan_gateway(gateway: IPv4Address | None, wan_kind: Kind) -> str:
    """How ``plan`` names an uplink's next hop."""
    if gateway is not None:
        return f"via {gateway}"
    return "via (DHCP lease)" if wan_kind == "dhcp" else "dev (point-to-point)"
