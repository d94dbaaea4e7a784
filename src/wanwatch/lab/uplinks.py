"""Uplinks that are not static, in the lab: an ISP that serves DHCP, a point-to-point link,
an uplink interface that is unplugged and comes back.

- ``address: dhcp``: the ISP runs its own dnsmasq (own conf, pid and lease
  files in the lab's state dir) on its customer port, handing out addresses of
  ``10.<100+k>.0.0/24`` with itself (``.1``) as the router. :func:`renumber`
  moves its pool and makes the client renew (dnsmasq NAKs the old address,
  RFC 2131 section 4.3.2), :func:`stop_dhcp` makes it stop answering.
- point-to-point (no ``gateway``): the customer link is a veth with a /32 and a
  peer address on each end, as pppd sets up (``ip address add A peer B``); the
  lab plays pppd on the router's side. :func:`ptp_reconnect` gives both ends
  new addresses, like a PPP reconnect.
- :func:`unplug` deletes the router's end of an uplink (a USB modem pulled);
  :func:`replug` creates it again (a new device: new ifindex, new MAC).
"""

from __future__ import annotations

import json
import os
import signal
import time
from ipaddress import IPv6Address
from pathlib import Path

from wanwatch.lab import netns, poll, services
from wanwatch.lab.plan import ISP_LINK_LOCAL, Isp, ptp_pair
from wanwatch.lab.procs import Proc, Runner

POOLS = ((100, 149), (150, 199))  # host numbers of the ISP's DHCP pool: first, renumbered
LEASE_TIME = 120  # dnsmasq's shortest lease (dnsmasq(8), --dhcp-range)
DHCP_READY = 10.0
LINK_LOCAL_READY = 5.0  # the kernel makes it as the link comes up (addrconf.c); ~at once
RA_INTERVAL = 10  # seconds between unsolicited RAs (dnsmasq(8), --ra-param)
RA_ROUTER_LIFETIME = 1800  # seconds (RFC 4861 6.2.1: AdvDefaultLifetime's default)
RA_PREFIX_LIFETIME = 3600  # valid lifetime of the advertised prefix (seconds)


def cust_commands(isp: Isp) -> list[str]:
    """``ip -batch`` lines addressing the ISP's customer port (and, point-to-point, the
    router's end: the lab plays pppd there), both families."""
    if isp.kind == "point-to-point":
        return [*_ptp_commands(isp, 0), *_cust_commands6(isp)]
    return [f"addr add {isp.gateway} dev {isp.cust_if}", *_cust_commands6(isp)]


def _cust_commands6(isp: Isp) -> list[str]:
    # Its global ::1 and fe80::1 (what a static gateway6 usually names), usable at once
    # (nodad: duplicate detection on a link only we built would only cost a second).
    return [
        f"addr add {isp.gateway6} dev {isp.cust_if} nodad",
        f"addr add {ISP_LINK_LOCAL} dev {isp.cust_if} nodad",
    ]


def restore6(lab: Runner, wan: str) -> None:
    """Give the ISP's customer port back, once it is up again, the IPv6 its going down
    took: its addresses, the route of the customer's prefix6, its router advertisements.

    Taking an interface down flushes its IPv6 addresses and the routes through it
    (addrconf_ifdown, net/ipv6/addrconf.c) while its IPv4 addresses stay;
    ``keep_addr_on_down`` (ip-sysctl.rst) would keep the global address but never a
    link-local one such as fe80::1, the router the customer learned from the RAs.
    The RA server is started again, as on a replug: it advertises at once (RFC 4861
    6.2.4), so the customer need not wait for the next periodic RA.
    """
    isp = lab.topology.isp(wan)
    netns.batch(isp.ns, _cust_commands6(isp))
    route_prefix6(lab, isp)
    if isp.advertises:
        stop_ra(lab, wan)
        start_ra(lab, wan)


def router_link_local(lab: Runner, isp: Isp, ifname: str | None = None) -> list[IPv6Address]:
    """The link-local addresses of the router's end of the uplink (none until the kernel
    made one)."""
    shown = netns.ip(
        "-j", "-6", "-n", lab.topology.router_ns, "addr", "show", "dev", ifname or isp.router_if,
        "scope", "link",
    ).stdout  # fmt: skip
    # iproute2's JSON keeps an empty object for each address of the other family.
    infos = [a for link in json.loads(shown) for a in link["addr_info"] if "local" in a]
    return [IPv6Address(a["local"]) for a in infos]


def route_prefix6(lab: Runner, isp: Isp, ifname: str | None = None) -> IPv6Address:
    """The ISP routes the prefix it gives its customer (prefix6) to the router's
    link-local address, as an ISP routes a prefix it delegates (RFC 8415 section 6.3);
    the router address it goes through."""
    router = poll.until(
        lambda: router_link_local(lab, isp, ifname),
        LINK_LOCAL_READY,
        f"a link-local address on the router's {ifname or isp.router_if}",
    )[0]
    netns.batch(isp.ns, [f"route replace {isp.routed6} via {router} dev {isp.cust_if}"])
    return router


def _ptp_commands(isp: Isp, n: int) -> list[str]:
    near, far = ptp_pair(isp, n)
    return [f"addr replace {near}/32 peer {far}/32 dev {isp.cust_if}"]


def _router_ptp(lab: Runner, isp: Isp, n: int, ifname: str | None = None) -> None:
    """The router's end of the point-to-point link (``ifname``: default the config's)."""
    near, far = ptp_pair(isp, n)
    dev = ifname or isp.router_if
    netns.batch(lab.topology.router_ns, [f"addr replace {far}/32 peer {near}/32 dev {dev}"])


def build(lab: Runner) -> None:
    """After the lab's links exist: the routes of the prefixes the ISPs give, the router's
    point-to-point addresses, the DHCP servers and router advertisements."""
    for isp in lab.topology.isps:
        route_prefix6(lab, isp)
        if isp.advertises:
            start_ra(lab, isp.wan)
        if isp.kind == "point-to-point":
            _router_ptp(lab, isp, 0)
        elif isp.kind == "dhcp":
            start_dhcp(lab, isp.wan)


# --------------------------------------------------------------------------- DHCP at the ISP


def _isp_dnsmasq(isp: Isp, what: str, lines: list[str]) -> str:
    """A dnsmasq config of the ISP's on its customer port only, with no DNS (port=0)."""
    head = [
        f"# wanwatch lab: the ISP's {what} (written by wanwatch.lab.uplinks)",
        "port=0",
        "no-resolv",
        "no-hosts",
        "bind-interfaces",
        f"interface={isp.cust_if}",
        "log-facility=-",
    ]
    return "\n".join([*head, *lines]) + "\n"


def _start_isp_dnsmasq(lab: Runner, isp: Isp, role: str, text: str) -> Proc:
    """Start one dnsmasq of the ISP's (``role``: its files and name); wait until it serves."""
    conf, pid_file, leases = _isp_files(lab, isp, role)
    conf.write_text(text, encoding="utf-8")
    pid_file.unlink(missing_ok=True)
    proc = lab.spawn(isp.ns, services.dnsmasq_argv(conf, pid_file, leases), f"{role}-{isp.wan}")
    proc.wait_ready(pid_file.exists, DHCP_READY, "its pid file")  # written once it listens
    return proc


def dhcp_conf(lab: Runner, isp: Isp, pool: int) -> str:
    """The ISP's dnsmasq: DHCP on its customer port only, no DNS (port=0)."""
    net = isp.gateway.network
    lo, hi = (net.network_address + h for h in POOLS[pool])
    dns = lab.topology.dns_servers[isp.index % len(lab.topology.dns_servers)]
    return _isp_dnsmasq(
        isp,
        "DHCP server",
        [
            "log-dhcp",
            # Authoritative: a REQUEST for an address outside the pool is NAKed at
            # once (dnsmasq(8), --dhcp-authoritative), which is how it renumbers.
            "dhcp-authoritative",
            "no-ping",  # the ping before an offer costs ~3 s (dnsmasq(8), --no-ping)
            f"dhcp-range={lo},{hi},{net.netmask},{LEASE_TIME}",
            f"dhcp-option=option:router,{isp.gateway.ip}",
            f"dhcp-option=option:dns-server,{dns}",
        ],
    )


def _isp_files(lab: Runner, isp: Isp, role: str) -> tuple[Path, Path, Path]:
    base = lab.state_dir / f"isp{isp.index + 1}-{role}"
    return base.with_suffix(".conf"), base.with_suffix(".pid"), base.with_suffix(".leases")


def _dhcp_proc(lab: Runner, wan: str) -> Proc | None:
    return next((p for p in lab.procs if p.name == f"dhcp-{wan}"), None)


def start_dhcp(lab: Runner, wan: str, pool: int = 0) -> Proc:
    """Start the ISP's DHCP server (pool 0, or 1: renumbered); wait until it serves."""
    isp = lab.topology.isp(wan)
    return _start_isp_dnsmasq(lab, isp, "dhcp", dhcp_conf(lab, isp, pool))


def stop_dhcp(lab: Runner, wan: str) -> None:
    """The ISP stops answering DHCP (its server is stopped, by PID)."""
    proc = _dhcp_proc(lab, wan)
    if proc is not None:
        lab.stop_proc(proc)


def move_pool(lab: Runner, wan: str, pool: int = 1) -> None:
    """The ISP's server now hands out ``pool`` and has forgotten every lease (a modem
    that rebooted); the client learns of it only when it next asks."""
    stop_dhcp(lab, wan)
    isp = lab.topology.isp(wan)
    _, _, leases = _isp_files(lab, isp, "dhcp")
    leases.unlink(missing_ok=True)  # forget the old lease: the client's address is no longer ours
    start_dhcp(lab, wan, pool=pool)


def renumber(lab: Runner, wan: str, udhcpc_pid: int, pool: int = 1) -> float:
    """Move the ISP's pool (to ``pool``: 1, or 0 to move back) and make the client renew
    now; CLOCK_MONOTONIC of the renew.

    The client (``udhcpc_pid``, wanwatch's child: its status names it) renews on
    SIGUSR1 (busybox udhcpc); the server NAKs the old address, the client starts
    over and is offered one of the new pool.
    """
    move_pool(lab, wan, pool)
    at = time.monotonic()
    os.kill(udhcpc_pid, signal.SIGUSR1)
    return at


# --------------------------------------------------------------------------- IPv6 RAs at the ISP


def ra_conf(lab: Runner, isp: Isp) -> str:
    """The ISP's router advertisements: its customer link's /64 for SLAAC, itself as the
    default router, the lab's DNS server (RDNSS, RFC 8106); no DHCPv6, no DNS (port=0)."""
    return _isp_dnsmasq(
        isp,
        "router advertisements",
        [
            "enable-ra",
            # constructor: the prefix is the one on the port; ra-only: SLAAC, no
            # DHCPv6 (dnsmasq(8), --dhcp-range).
            f"dhcp-range=::,constructor:{isp.cust_if},ra-only,{RA_PREFIX_LIFETIME}",
            # An RA at most every RA_INTERVAL s, so a router that starts listening
            # late (forwarding routers take RAs only with accept_ra=2) learns soon.
            f"ra-param={isp.cust_if},{RA_INTERVAL},{RA_ROUTER_LIFETIME}",
            f"dhcp-option=option6:dns-server,[{lab.topology.dns_servers6[0]}]",
        ],
    )


def _ra_proc(lab: Runner, wan: str) -> Proc | None:
    return next((p for p in lab.procs if p.name == f"ra-{wan}"), None)


def start_ra(lab: Runner, wan: str) -> Proc:
    """Start the ISP's router advertisements on its customer port; wait until it serves."""
    isp = lab.topology.isp(wan)
    return _start_isp_dnsmasq(lab, isp, "ra", ra_conf(lab, isp))


def stop_ra(lab: Runner, wan: str) -> None:
    """The ISP stops advertising (its server is stopped, by PID)."""
    proc = _ra_proc(lab, wan)
    if proc is not None:
        lab.stop_proc(proc)


# --------------------------------------------------------------------------- point-to-point


def ptp_reconnect(lab: Runner, wan: str) -> float:
    """A PPP reconnect: both ends get new addresses; CLOCK_MONOTONIC of the change."""
    isp = lab.topology.isp(wan)
    old_near, old_far = ptp_pair(isp, 0)
    at = time.monotonic()
    # A peer address is named with its peer to delete it (the kernel matches both).
    netns.batch(
        lab.topology.router_ns, [f"addr del {old_far}/32 peer {old_near} dev {isp.router_if}"]
    )
    netns.batch(
        isp.ns, [f"addr del {old_near}/32 peer {old_far} dev {isp.cust_if}", *_ptp_commands(isp, 1)]
    )
    _router_ptp(lab, isp, 1)
    return at


# --------------------------------------------------------------------------- unplug, replug


def unplug(lab: Runner, wan: str) -> float:
    """Delete the router's end of the uplink (the ISP's end goes with it); its time."""
    isp = lab.topology.isp(wan)
    at = time.monotonic()
    netns.ip("-n", lab.topology.router_ns, "link", "del", isp.router_if)
    return at


def replug(lab: Runner, wan: str, name: str | None = None) -> float:
    """Create the uplink's link again (a new device), under ``name`` (default: the
    config's); the ISP side is addressed as at start. CLOCK_MONOTONIC when it is up."""
    isp = lab.topology.isp(wan)
    ifname = name or isp.router_if
    netns.veth(isp.ns, isp.cust_if, lab.topology.router_ns, ifname)
    at = time.monotonic()
    netns.batch(isp.ns, cust_commands(isp))
    route_prefix6(lab, isp, ifname)  # the new device has a new link-local address
    if isp.kind == "point-to-point":
        _router_ptp(lab, isp, 0, ifname)
    elif isp.kind == "dhcp":
        stop_dhcp(lab, wan)  # bound to the old port: serve the new one
        start_dhcp(lab, wan)
    if isp.advertises:
        stop_ra(lab, wan)
        start_ra(lab, wan)
    return at


def rename(lab: Runner, wan: str, new: str, old: str | None = None) -> None:
    """Rename the router's end of the uplink from ``old`` (default: the config's name) to
    ``new`` (down, rename, up: the kernel renames only an interface that is down)."""
    old = old or lab.topology.isp(wan).router_if
    for args in (("set", old, "down"), ("set", old, "name", new), ("set", new, "up")):
        netns.ip("-n", lab.topology.router_ns, "link", *args)
