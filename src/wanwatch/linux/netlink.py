"""The one netlink adapter: pyroute2 inside, plain frozen dataclasses outside.

Every kernel request names the errnos it tolerates (docs/architecture.md): an
``add`` may meet EEXIST (it is already there), a ``del`` may meet ENOENT /
ESRCH (already gone; routes answer ESRCH, rules ENOENT) or EADDRNOTAVAIL (the
kernel's "no such address"). Anything else becomes a :class:`NetlinkError` that
names the request. No pyroute2 message leaves this module.

Routes and rules have an address family (4 or 6, docs/ipv6.md): a route's is its
destination's, a rule says its own. Addresses are read per family too.

pyroute2's synchronous API runs a private asyncio loop per call, so it cannot be
called from a thread whose own loop is running; the backend calls
:class:`Netlink` from one worker thread of its own (apply.py). What lives in the
daemon's loop (the watchers of watch.py, the counters of traffic.py) uses a
:class:`NetlinkSocket` instead: a plain non-blocking socket, whose requests
pyroute2 still builds and whose messages it decodes. Both are a
:class:`Session`: opened once, closed once, or both around a ``with`` block.
"""

from __future__ import annotations

import errno
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
    ip_network,
)
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from pyroute2.iproute.linux import IPRoute
from pyroute2.netlink.exceptions import NetlinkError as _PyrNetlinkError

from wanwatch.errors import NetlinkError
from wanwatch.footprint import RT_PROTO

RT_TABLE_MAIN = 254
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTN_UNICAST = 1
RTN_UNREACHABLE = 7
FR_ACT_TO_TBL = 1
# An IPv6 route added with no metric gets this one (IP6_RT_PRIO_USER, <net/ip6_route.h>;
# ip6_route_info_create in net/ipv6/route.c): IPv6 routes are asked for with it, so
# what is read back equals what was asked.
IP6_RT_PRIO_USER = 1024

_IFF_UP = 0x1
_IFF_LOWER_UP = 0x10000
_IFA_F_SECONDARY = 0x01  # for IPv6 the same bit is IFA_F_TEMPORARY (RFC 4941 addresses)
_IFA_F_NODAD = 0x02
_IFA_F_DEPRECATED = 0x20
_IFA_F_TENTATIVE = 0x40
_IFA_F_PERMANENT = 0x80
_UNSET32 = 0xFFFFFFFF  # rules report an unset suppress_prefixlength as -1

_ADD_OK = frozenset({errno.EEXIST})
_ROUTE_DEL_OK = frozenset({errno.ESRCH, errno.ENOENT})
_RULE_DEL_OK = frozenset({errno.ENOENT})
_ADDR_DEL_OK = frozenset({errno.EADDRNOTAVAIL, errno.ENOENT})
_NONE: frozenset[int] = frozenset()

DEFAULT_DST = IPv4Network("0.0.0.0/0")
DEFAULT_DST6 = IPv6Network("::/0")

IpAddress = IPv4Address | IPv6Address
IpNetwork = IPv4Network | IPv6Network

_RCVBUF = 1 << 20
_SOL_NETLINK = 270  # <linux/socket.h>
_NETLINK_ADD_MEMBERSHIP = 1  # <linux/netlink.h>


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    admin_up: bool  # IFF_UP
    carrier: bool  # IFF_UP and IFF_LOWER_UP: packets can leave


@dataclass(frozen=True)
class Address:
    index: int
    ifname: str
    interface: IPv4Interface
    proto: int  # IFA_PROTO; 0 when the kernel reports none
    secondary: bool
    # The far end of a point-to-point address (``ip address add A peer B``): the
    # kernel reports it as IFA_ADDRESS when it differs from IFA_LOCAL (rtnetlink(7)).
    peer: IPv4Address | None = None


@dataclass(frozen=True)
class Address6:
    """An IPv6 address: static, or formed from router advertisements (SLAAC)."""

    index: int
    ifname: str
    interface: IPv6Interface
    proto: int
    dynamic: bool  # not permanent: formed by SLAAC (or DHCPv6), it has lifetimes
    usable: bool  # neither tentative (DAD running), deprecated nor temporary (RFC 4941)


@dataclass(frozen=True)
class Route:
    """A route (IPv4 or IPv6, by its destination). Equality covers every field we set, so
    desired == actual means done."""

    table: int
    dst: IpNetwork
    metric: int = 0
    gateway: IpAddress | None = None
    oif: int | None = None
    proto: int = RT_PROTO
    scope: int = RT_SCOPE_UNIVERSE
    prefsrc: IpAddress | None = None
    kind: int = RTN_UNICAST  # rtm_type

    @property
    def family(self) -> int:
        return self.dst.version

    @property
    def key(self) -> tuple[int, IpNetwork, int]:
        """What makes two routes the same slot: ``replace`` swaps the one with this key."""
        return (self.table, self.dst, self.metric)

    def __str__(self) -> str:
        kind = "unreachable " if self.kind == RTN_UNREACHABLE else ""
        via = f" via {self.gateway}" if self.gateway else ""
        dev = f" oif {self.oif}" if self.oif is not None else ""
        return (
            f"{kind}{self.dst}{via}{dev} table {self.table} metric {self.metric} proto {self.proto}"
        )


@dataclass(frozen=True)
class Rule:
    """A policy rule of one family (4 or 6) that looks up a table (FR_ACT_TO_TBL)."""

    priority: int
    table: int
    proto: int = RT_PROTO
    fwmark: int | None = None
    fwmask: int | None = None
    src: IpNetwork | None = None
    suppress_prefixlen: int | None = None
    family: int = 4

    def __str__(self) -> str:
        sel = "from all"
        if self.src is not None:
            sel = f"from {self.src}"
        if self.fwmark is not None:
            sel += f" fwmark {self.fwmark:#x}/{(self.fwmask or _UNSET32):#x}"
        tail = (
            f" suppress_prefixlength {self.suppress_prefixlen}"
            if self.suppress_prefixlen is not None
            else ""
        )
        table = "main" if self.table == RT_TABLE_MAIN else str(self.table)
        six = " (IPv6)" if self.family == 6 else ""
        return f"{self.priority}: {sel} lookup {table}{tail} proto {self.proto}{six}"


@contextmanager
def named_errors(op: str) -> Iterator[None]:
    """Raise pyroute2's and the socket's errors inside as one NetlinkError naming ``op``."""
    try:
        yield
    except _PyrNetlinkError as exc:
        raise NetlinkError(f"{op}: {os.strerror(exc.code)} (errno {exc.code})") from None
    except OSError as exc:
        raise NetlinkError(f"{op}: {exc.strerror or exc}") from None


def _wrap(op: str, allowed: frozenset[int], fn: Callable[..., Any], *args: Any, **kw: Any) -> bool:
    """Run one request. True if done, False if it met an allowed errno."""
    with named_errors(op):
        try:
            fn(*args, **kw)
        except _PyrNetlinkError as exc:
            if exc.code in allowed:
                return False
            raise
    return True


class _Closable(Protocol):
    def close(self) -> None: ...


_H = TypeVar("_H", bound=_Closable)


class Session(ABC, Generic[_H]):
    """One netlink handle: :meth:`open` (a no-op while open), :meth:`close`, or both
    around a ``with`` block. It lives in the network namespace of the thread that
    opens it. Subclasses say how it opens (:meth:`_connect`)."""

    def __init__(self) -> None:
        self._handle: _H | None = None

    @abstractmethod
    def _connect(self) -> _H: ...

    @property
    def is_open(self) -> bool:
        return self._handle is not None

    def open(self) -> None:
        if self._handle is None:
            self._handle = self._connect()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Netlink(Session[Any]):
    """Routes, rules, addresses and links of the current network namespace (pyroute2's
    IPRoute, opened by the first request if not before)."""

    def _connect(self) -> Any:
        with named_errors("cannot open a netlink socket"):
            return IPRoute()

    @property
    def _r(self) -> Any:
        self.open()
        return self._handle

    def _dump(self, op: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> list[Any]:
        with named_errors(op):
            return list(fn(*args, **kw))

    # ----------------------------------------------------------------- links

    def links(self) -> dict[str, Link]:
        out: dict[str, Link] = {}
        for m in self._dump("dump links", self._r.link, "dump"):
            link = _link(m)
            if link is not None:
                out[link.name] = link
        return out

    # ----------------------------------------------------------------- addresses

    def addresses(self, links: dict[str, Link] | None = None) -> list[Address]:
        """IPv4 addresses; pass ``links`` from a dump just made to spare another."""
        names = {link.index: link.name for link in (links or self.links()).values()}
        out: list[Address] = []
        for m in self._dump("dump addresses", self._r.addr, "dump", family=socket.AF_INET):
            local = m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS")
            if local is None:
                continue
            flags = m.get_attr("IFA_FLAGS") or m["flags"]
            far = m.get_attr("IFA_ADDRESS")
            out.append(
                Address(
                    index=m["index"],
                    ifname=names.get(m["index"], ""),
                    interface=IPv4Interface(f"{local}/{m['prefixlen']}"),
                    proto=m.get_attr("IFA_PROTO") or 0,
                    secondary=bool(flags & _IFA_F_SECONDARY),
                    peer=IPv4Address(far) if far and far != local else None,
                )
            )
        return out

    def addresses6(self, links: dict[str, Link] | None = None) -> list[Address6]:
        """IPv6 addresses of global scope (no link-local one: routers and probes use
        those of the link they are on)."""
        names = {link.index: link.name for link in (links or self.links()).values()}
        out: list[Address6] = []
        for m in self._dump("dump IPv6 addresses", self._r.addr, "dump", family=socket.AF_INET6):
            local = m.get_attr("IFA_ADDRESS")
            if local is None or m["scope"] != RT_SCOPE_UNIVERSE:
                continue
            flags = m.get_attr("IFA_FLAGS") or m["flags"]
            unusable = _IFA_F_TENTATIVE | _IFA_F_DEPRECATED | _IFA_F_SECONDARY
            out.append(
                Address6(
                    index=m["index"],
                    ifname=names.get(m["index"], ""),
                    interface=IPv6Interface(f"{local}/{m['prefixlen']}"),
                    proto=m.get_attr("IFA_PROTO") or 0,
                    dynamic=not flags & _IFA_F_PERMANENT,
                    usable=not flags & unusable,
                )
            )
        return out

    def add_address(
        self, index: int, interface: IPv4Interface | IPv6Interface, proto: int = RT_PROTO
    ) -> bool:
        """Add; False if it was already there. An IPv6 address skips duplicate address
        detection (IFA_F_NODAD): one we are told to use is usable at once, where DAD
        would hold it tentative for a second or more (RFC 4862 5.4)."""
        net = interface.network
        kw: dict[str, Any] = {
            "index": index,
            "address": str(interface.ip),
            "prefixlen": net.prefixlen,
            "proto": proto,
        }
        if isinstance(net, IPv6Network):
            kw["flags"] = _IFA_F_NODAD
        elif net.prefixlen < 31:
            kw["broadcast"] = str(net.broadcast_address)
        return _wrap(f"add address {interface} on {index}", _ADD_OK, self._r.addr, "add", **kw)

    def del_address(self, index: int, interface: IPv4Interface | IPv6Interface) -> bool:
        """Delete; False if it was not there."""
        return _wrap(
            f"delete address {interface} on {index}",
            _ADDR_DEL_OK,
            self._r.addr,
            "del",
            index=index,
            address=str(interface.ip),
            prefixlen=interface.network.prefixlen,
        )

    # ----------------------------------------------------------------- routes

    def routes(self, tables: Iterable[int] | None = None, family: int = 4) -> list[Route]:
        """Routes of one family in ``tables`` (all tables if None)."""
        want = None if tables is None else set(tables)
        out: list[Route] = []
        for m in self._dump("dump routes", self._r.route, "dump", family=_AF[family]):
            table = m.get_attr("RTA_TABLE") or m["table"]
            if want is not None and table not in want:
                continue
            out.append(_route(m, table, family))
        return out

    def replace_route(self, route: Route) -> None:
        """Create or atomically swap the route in ``route.key``'s slot."""
        _wrap(f"replace route {route}", _NONE, self._r.route, "replace", **_route_kw(route))

    def del_route(self, route: Route) -> bool:
        """Delete; False if it was not there. Matches the protocol, so never hits a foreign one."""
        return _wrap(
            f"delete route {route}", _ROUTE_DEL_OK, self._r.route, "del", **_route_kw(route)
        )

    # ----------------------------------------------------------------- rules

    def rules(self, family: int = 4) -> list[Rule]:
        out: list[Rule] = []
        for m in self._dump("dump rules", self._r.rule, "dump", family=_AF[family]):
            if m["action"] != FR_ACT_TO_TBL:
                continue
            src = m.get_attr("FRA_SRC")
            suppress = m.get_attr("FRA_SUPPRESS_PREFIXLEN")
            out.append(
                Rule(
                    priority=m.get_attr("FRA_PRIORITY") or 0,
                    table=m.get_attr("FRA_TABLE") or m["table"],
                    proto=m.get_attr("FRA_PROTOCOL") or 0,
                    fwmark=m.get_attr("FRA_FWMARK"),
                    fwmask=m.get_attr("FRA_FWMASK"),
                    src=ip_network(f"{src}/{m['src_len']}") if src else None,
                    suppress_prefixlen=None if suppress in (None, _UNSET32) else suppress,
                    family=family,
                )
            )
        return out

    def add_rule(self, rule: Rule) -> bool:
        """Add; False if an identical rule exists."""
        return _wrap(f"add rule {rule}", _ADD_OK, self._r.rule, "add", **_rule_kw(rule))

    def del_rule(self, rule: Rule) -> bool:
        """Delete; False if it was not there. Matches the protocol, so never hits a foreign one."""
        return _wrap(f"delete rule {rule}", _RULE_DEL_OK, self._r.rule, "del", **_rule_kw(rule))


def carrier(flags: int) -> bool:
    """A link's ``ifi_flags`` say packets can leave: IFF_UP and IFF_LOWER_UP."""
    return bool(flags & _IFF_UP and flags & _IFF_LOWER_UP)


def _link(m: Any) -> Link | None:
    name = m.get_attr("IFLA_IFNAME")
    if name is None:
        return None
    flags = m["flags"]
    return Link(
        index=m["index"],
        name=name,
        admin_up=bool(flags & _IFF_UP),
        carrier=carrier(flags),
    )


def _route(m: Any, table: int, family: int = 4) -> Route:
    dst = m.get_attr("RTA_DST") or ("0.0.0.0" if family == 4 else "::")
    gw = m.get_attr("RTA_GATEWAY")
    src = m.get_attr("RTA_PREFSRC")
    kind = m["type"]
    oif = m.get_attr("RTA_OIF")
    if family == 6 and kind == RTN_UNREACHABLE:
        oif = None  # the kernel puts every IPv6 reject route on lo (net/ipv6/route.c)
    return Route(
        table=table,
        dst=ip_network(f"{dst}/{m['dst_len']}"),
        metric=m.get_attr("RTA_PRIORITY") or 0,
        gateway=ip_address(gw) if gw else None,
        oif=oif,
        proto=m["proto"],
        scope=m["scope"],
        prefsrc=ip_address(src) if src else None,
        kind=kind,
    )


_AF = {4: socket.AF_INET, 6: socket.AF_INET6}


def _route_kw(r: Route) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "family": _AF[r.family],
        "dst": str(r.dst),
        "table": r.table,
        "priority": r.metric,
        "proto": r.proto,
        "scope": r.scope,
        "type": r.kind,
    }
    if r.gateway is not None:
        kw["gateway"] = str(r.gateway)
    if r.oif is not None:
        kw["oif"] = r.oif
    if r.prefsrc is not None:
        kw["prefsrc"] = str(r.prefsrc)
    return kw


def _rule_kw(r: Rule) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "family": _AF[r.family],
        "priority": r.priority,
        "table": r.table,
        "protocol": r.proto,
        "action": "FR_ACT_TO_TBL",
    }
    if r.fwmark is not None:
        kw["fwmark"] = r.fwmark
        kw["fwmask"] = r.fwmask if r.fwmask is not None else _UNSET32
    if r.src is not None:
        kw["src"] = str(r.src.network_address)
        kw["src_len"] = r.src.prefixlen
    if r.suppress_prefixlen is not None:
        kw["suppress_prefixlen"] = r.suppress_prefixlen
    return kw


class NetlinkSocket(Session[socket.socket]):
    """A plain non-blocking netlink socket, safe inside an asyncio loop (``fileno()`` for
    ``loop.add_reader``).

    It hears the multicast ``groups`` (the bind(2) bit mask of groups 1 to 32)
    and each of ``more_groups`` (group numbers, NETLINK_ADD_MEMBERSHIP:
    netlink(7)), and answers to what :meth:`send` asked. ``what`` names it in
    errors.
    """

    def __init__(
        self, protocol: int, groups: int = 0, more_groups: Iterable[int] = (), *, what: str
    ) -> None:
        super().__init__()
        self._protocol = protocol
        self._groups = groups
        self._more_groups = tuple(more_groups)
        self._what = what

    def _connect(self) -> socket.socket:
        with named_errors(f"cannot open a netlink socket for {self._what}"):
            sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, self._protocol
            )
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
                sock.bind((0, self._groups))
                for group in self._more_groups:
                    sock.setsockopt(_SOL_NETLINK, _NETLINK_ADD_MEMBERSHIP, group)
            except OSError:
                sock.close()
                raise
        sock.setblocking(False)
        return sock

    @property
    def _sock(self) -> socket.socket:
        if self._handle is None:
            raise NetlinkError(f"{self._what}: the socket is not open")
        return self._handle

    def fileno(self) -> int:
        return self._sock.fileno()

    def send(self, request: bytes) -> None:
        with named_errors(self._what):
            self._sock.send(request)

    def receive(self) -> Iterator[bytes | None]:
        """What is waiting, one datagram at a time, until nothing is; never blocks. None
        where the kernel dropped messages (ENOBUFS: the receive buffer overran)."""
        sock = self._sock
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise NetlinkError(f"{self._what}: {exc.strerror or exc}") from None
                yield None
                continue
            yield data
