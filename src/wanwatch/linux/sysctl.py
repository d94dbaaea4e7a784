"""The kernel settings a multi-uplink router needs, set in the network namespace we run in.

``net.*`` sysctls are per network namespace: /proc/sys/net shows the namespace
of the thread that opens the file, so this touches only the router's own
namespace (or host). What we changed is returned, so the daemon can report it;
it may stay after we stop (docs/architecture.md).

* ``net.ipv4.ip_forward = 1``: we route between LANs and uplinks.
* ``rp_filter`` loose on every uplink: replies of a connection pinned to the
  backup arrive there while the main default points at the primary; strict
  reverse-path filtering would drop them (docs/lab-notes.md: 0 or 2 on a policy-routing
  router). The kernel uses max(all, interface), so the interface is set to 2
  only when the effective value is 1 (strict); ``all`` is never lowered.
* ``ignore_routes_with_linkdown = 1`` on every uplink: once the carrier is gone
  the kernel skips that uplink's routes (our main default included) and uses the
  next default before the daemon reacts (docs/lab-notes.md). The kernel ORs all with the
  interface, so the interface alone is enough.

IPv6 (docs/ipv6.md), where the config has any:

* ``net.ipv6.conf.all.forwarding = 1``, like ``ip_forward``;
* ``ignore_routes_with_linkdown = 1`` on every uplink with IPv6, as for IPv4;
* ``accept_ra = 2`` on an ``address6: auto`` uplink: a forwarding interface
  ignores router advertisements unless it is 2 (ip-sysctl.rst, accept_ra), and
  turning ``all.forwarding`` on deletes every RA-learned default route except
  those of interfaces at 2 (``rt6_purge_dflt_routers``, net/ipv6/route.c), so
  it is set before forwarding. Set on those uplinks only: elsewhere a router
  must not take a default from whoever advertises one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wanwatch.errors import SysctlError

PROC_SYS = Path("/proc/sys")


@dataclass(frozen=True)
class SysctlChange:
    key: str  # as sysctl(8) spells it, e.g. net.ipv4.conf.ether1.rp_filter
    old: str
    new: str


def _key(parts: tuple[str, ...]) -> str:
    # sysctl(8) writes a '.' inside a component (eth0.100) as '/'.
    return ".".join(p.replace(".", "/") for p in parts)


def _read(root: Path, parts: tuple[str, ...]) -> str | None:
    try:
        return root.joinpath(*parts).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SysctlError(f"cannot read {_key(parts)}: {exc.strerror}") from None


def _write(root: Path, parts: tuple[str, ...], value: str) -> None:
    try:
        root.joinpath(*parts).write_text(value + "\n", encoding="ascii")
    except OSError as exc:
        raise SysctlError(f"cannot set {_key(parts)}={value}: {exc.strerror}") from None


def _ensure(root: Path, parts: tuple[str, ...], value: str, out: list[SysctlChange]) -> None:
    old = _read(root, parts)
    if old is None or old == value:
        return
    _write(root, parts, value)
    out.append(SysctlChange(_key(parts), old, value))


def uplink_interfaces_present(interfaces: Iterable[str], root: Path = PROC_SYS) -> list[str]:
    """Those of ``interfaces`` the kernel knows in this namespace now."""
    return [i for i in interfaces if root.joinpath("net", "ipv4", "conf", i).is_dir()]


def ensure_forwarding(root: Path = PROC_SYS) -> list[SysctlChange]:
    out: list[SysctlChange] = []
    _ensure(root, ("net", "ipv4", "ip_forward"), "1", out)
    return out


def ensure_forwarding6(root: Path = PROC_SYS) -> list[SysctlChange]:
    out: list[SysctlChange] = []
    _ensure(root, ("net", "ipv6", "conf", "all", "forwarding"), "1", out)
    return out


def ensure_uplink6(interface: str, *, accept_ra: bool, root: Path = PROC_SYS) -> list[SysctlChange]:
    """ignore_routes_with_linkdown on one IPv6 uplink, and accept_ra=2 on an ``auto`` one
    (module docstring). Nothing happens for an interface without IPv6 (yet)."""
    out: list[SysctlChange] = []
    conf = ("net", "ipv6", "conf", interface)
    if accept_ra:
        _ensure(root, (*conf, "accept_ra"), "2", out)
    _ensure(root, (*conf, "ignore_routes_with_linkdown"), "1", out)
    return out


def ensure_uplink(interface: str, root: Path = PROC_SYS) -> list[SysctlChange]:
    """Loose rp_filter and ignore_routes_with_linkdown on one uplink interface.

    Nothing happens for an interface that does not exist (yet).
    """
    out: list[SysctlChange] = []
    conf = ("net", "ipv4", "conf")
    dev = _read(root, (*conf, interface, "rp_filter"))
    if dev is None:
        return out
    every = _read(root, (*conf, "all", "rp_filter")) or "0"
    if max(int(every), int(dev)) == 1:
        _write(root, (*conf, interface, "rp_filter"), "2")
        out.append(SysctlChange(_key((*conf, interface, "rp_filter")), dev, "2"))
    _ensure(root, (*conf, interface, "ignore_routes_with_linkdown"), "1", out)
    return out


def ensure_pair(root: Path = PROC_SYS) -> list[SysctlChange]:
    """``nf_conntrack_tcp_be_liberal = 1`` on a router of a pair.

    A connection that comes back to this router (failback) meets its own old
    conntrack entry, whose TCP window stopped while the peer carried it; strict
    window tracking calls the next segments INVALID, which NAT skips and our
    forward chain drops. Liberal tracking marks only out-of-window RSTs invalid
    (the kernel's nf_conntrack-sysctl documentation).
    """
    out: list[SysctlChange] = []
    _ensure(root, ("net", "netfilter", "nf_conntrack_tcp_be_liberal"), "1", out)
    return out
