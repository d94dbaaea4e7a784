"""The one netlink adapter: pyroute2 inside, plain frozen dataclasses outside.

Every kernel request names the errnos it tolerates (docs/architecture.md): an
``add`` may meet EEXIST (it is already there), a ``del`` may meet ENOENT /
ESRCH (already gone; routes answer ESRCH, rules ENOENT) or EADDRNOTAVAIL (the
kernel's "no such address"). Anything else becomes a :class:`NetlinkError` that
names the request. No pyroute2 message leaves this module.

IPv4 only, like the rest of wanwatch.

pyroute2's synchronous API runs a private asyncio loop per call, so it cannot be
called from a thread whose own loop is running; the backend calls this module
from one worker thread of its own (apply.py). :class:`LinkWatcher` uses a plain
non-blocking netlink socket instead, so it can live in the daemon's loop;
pyroute2 still builds its request and decodes what it reads.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from types import TracebackType
from typing import Any, Self

from pyroute2.iproute.linux import IPRoute
from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR
from pyroute2.netlink.exceptions import NetlinkError as _PyrNetlinkError
from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, RTMGRP_LINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from wanwatch.errors import NetlinkError
from wanwatch.footprint import RT_PROTO

RT_TABLE_MAIN = 254
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTN_UNICAST = 1
RTN_UNREACHABLE = 7
FR_ACT_TO_TBL = 1

_IFF_UP = 0x1
_IFF_LOWER_UP = 0x10000
_IFA_F_SECONDARY = 0x01
_UNSET32 = 0xFFFFFFFF  # rules report an unset suppress_prefixlength as -1

_ADD_OK = frozenset({errno.EEXIST})
_ROUTE_DEL_OK = frozenset({errno.ESRCH, errno.ENOENT})
_RULE_DEL_OK = frozenset({errno.ENOENT})
_ADDR_DEL_OK = frozenset({errno.EADDRNOTAVAIL, errno.ENOENT})
_NONE: frozenset[int] = frozenset()

DEFAULT_DST = IPv4Network("0.0.0.0/0")


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
class Route:
    """An IPv4 route. Equality covers every field we set, so desired == actual means done."""

    table: int
    dst: IPv4Network
    metric: int = 0
    gateway: IPv4Address | None = None
    oif: int | None = None
    proto: int = RT_PROTO
    scope: int = RT_SCOPE_UNIVERSE
    prefsrc: IPv4Address | None = None
    kind: int = RTN_UNICAST  # rtm_type

    @property
    def key(self) -> tuple[int, IPv4Network, int]:
        """What makes two IPv4 routes the same slot: ``replace`` swaps the one with this key."""
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
    """An IPv4 policy rule that looks up a table (FR_ACT_TO_TBL)."""

    priority: int
    table: int
    proto: int = RT_PROTO
    fwmark: int | None = None
    fwmask: int | None = None
    src: IPv4Network | None = None
    suppress_prefixlen: int | None = None

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
        return f"{self.priority}: {sel} lookup {table}{tail} proto {self.proto}"


def _wrap(op: str, allowed: frozenset[int], fn: Callable[..., Any], *args: Any, **kw: Any) -> bool:
    """Run one request. True if done, False if it met an allowed errno."""
    try:
        fn(*args, **kw)
    except _PyrNetlinkError as exc:
        if exc.code in allowed:
            return False
        raise NetlinkError(f"{op}: {os.strerror(exc.code)} (errno {exc.code})") from None
    except OSError as exc:
        raise NetlinkError(f"{op}: {exc.strerror or exc}") from None
    return True


class Netlink:
    """Routes, rules, addresses and links of the current network namespace."""

    def __init__(self) -> None:
        self._ipr: Any = None

    def open(self) -> None:
        if self._ipr is None:
            try:
                self._ipr = IPRoute()
            except OSError as exc:
                raise NetlinkError(f"cannot open a netlink socket: {exc.strerror}") from None

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

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

    @property
    def _r(self) -> Any:
        if self._ipr is None:
            self.open()
        return self._ipr

    def _dump(self, op: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> list[Any]:
        try:
            return list(fn(*args, **kw))
        except _PyrNetlinkError as exc:
            raise NetlinkError(f"{op}: {os.strerror(exc.code)} (errno {exc.code})") from None
        except OSError as exc:
            raise NetlinkError(f"{op}: {exc.strerror or exc}") from None

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

    def add_address(self, index: int, interface: IPv4Interface, proto: int = RT_PROTO) -> bool:
        """Add; False if it was already there."""
        net = interface.network
        kw: dict[str, Any] = {
            "index": index,
            "address": str(interface.ip),
            "prefixlen": net.prefixlen,
            "proto": proto,
        }
        if net.prefixlen < 31:
            kw["broadcast"] = str(net.broadcast_address)
        return _wrap(f"add address {interface} on {index}", _ADD_OK, self._r.addr, "add", **kw)

    def del_address(self, index: int, interface: IPv4Interface) -> bool:
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

    def routes(self, tables: Iterable[int] | None = None) -> list[Route]:
        """IPv4 routes of ``tables`` (all tables if None)."""
        want = None if tables is None else set(tables)
        out: list[Route] = []
        for m in self._dump("dump routes", self._r.route, "dump", family=socket.AF_INET):
            table = m.get_attr("RTA_TABLE") or m["table"]
            if want is not None and table not in want:
                continue
            out.append(_route(m, table))
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

    def rules(self) -> list[Rule]:
        out: list[Rule] = []
        for m in self._dump("dump rules", self._r.rule, "dump", family=socket.AF_INET):
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
                    src=IPv4Network(f"{src}/{m['src_len']}") if src else None,
                    suppress_prefixlen=None if suppress in (None, _UNSET32) else suppress,
                )
            )
        return out

    def add_rule(self, rule: Rule) -> bool:
        """Add; False if an identical rule exists."""
        return _wrap(f"add rule {rule}", _ADD_OK, self._r.rule, "add", **_rule_kw(rule))

    def del_rule(self, rule: Rule) -> bool:
        """Delete; False if it was not there. Matches the protocol, so never hits a foreign one."""
        return _wrap(f"delete rule {rule}", _RULE_DEL_OK, self._r.rule, "del", **_rule_kw(rule))


def _link(m: Any) -> Link | None:
    name = m.get_attr("IFLA_IFNAME")
    if name is None:
        return None
    flags = m["flags"]
    return Link(
        index=m["index"],
        name=name,
        admin_up=bool(flags & _IFF_UP),
        carrier=bool(flags & _IFF_UP and flags & _IFF_LOWER_UP),
    )


def _route(m: Any, table: int) -> Route:
    dst = m.get_attr("RTA_DST") or "0.0.0.0"
    gw = m.get_attr("RTA_GATEWAY")
    src = m.get_attr("RTA_PREFSRC")
    return Route(
        table=table,
        dst=IPv4Network(f"{dst}/{m['dst_len']}"),
        metric=m.get_attr("RTA_PRIORITY") or 0,
        gateway=IPv4Address(gw) if gw else None,
        oif=m.get_attr("RTA_OIF"),
        proto=m["proto"],
        scope=m["scope"],
        prefsrc=IPv4Address(src) if src else None,
        kind=m["type"],
    )


def _route_kw(r: Route) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "family": socket.AF_INET,
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
        "family": socket.AF_INET,
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


# --------------------------------------------------------------------------- link events

_RCVBUF = 1 << 20


class LinkWatcher:
    """Carrier changes of chosen interfaces, heard over netlink as they happen.

    ``fileno()`` is for ``loop.add_reader``; when it is readable, ``read()``
    returns the changes since the last call as ``(ifname, carrier_up)``, only
    for watched interfaces and only when the state really changed (the kernel
    sends RTM_NEWLINK for every flag or statistics change). A deleted interface
    reads as carrier down; :meth:`present` says whether it exists at all (an
    interface appearing, disappearing or renamed away is a change too: a rename
    is an RTM_NEWLINK of the same ifindex under its new name). If the kernel
    dropped notifications (ENOBUFS), the state is read again in full and the
    differences are returned. Carrier loss reaches this socket about 12 ms
    after the link drops (docs/lab-notes.md).

    The socket lives in the network namespace of the thread that calls
    :meth:`open`. It is plain non-blocking I/O, safe inside an asyncio loop.
    """

    def __init__(self, interfaces: Iterable[str]) -> None:
        self._watch = set(interfaces)
        self._sock: socket.socket | None = None
        self._state: dict[str, bool] = {}
        self._index: dict[str, int] = {}  # name -> ifindex of interfaces that exist
        self._seq = 0
        self._marshal = MarshalRtnl()

    def open(self) -> None:
        """Subscribe, then read the current state (so no change between the two is lost)."""
        if self._sock is not None:
            return
        sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
        )
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            sock.bind((0, RTMGRP_LINK))
        except OSError as exc:
            sock.close()
            raise NetlinkError(f"cannot listen for link events: {exc.strerror}") from None
        self._sock = sock
        self._state = {}
        self._index = {}
        self._resync()
        sock.setblocking(False)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

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

    def fileno(self) -> int:
        if self._sock is None:
            raise NetlinkError("LinkWatcher is not open")
        return self._sock.fileno()

    def watch(self, interfaces: Iterable[str]) -> None:
        """Change the watched set (after a reload). New names start from their current state."""
        self._watch = set(interfaces)
        if self._sock is not None:
            self._sock.setblocking(True)
            try:
                self._resync()
            finally:
                self._sock.setblocking(False)

    def present(self, name: str) -> bool:
        """Whether interface ``name`` exists now (as last heard)."""
        return name in self._index

    def state(self) -> dict[str, bool]:
        """Last known carrier of every watched interface (missing ones read as down)."""
        return {name: self._state.get(name, False) for name in sorted(self._watch)}

    def read(self) -> list[tuple[str, bool]]:
        """Changes since the last call; never blocks."""
        if self._sock is None:
            raise NetlinkError("LinkWatcher is not open")
        changes: list[tuple[str, bool]] = []
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return changes
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise NetlinkError(f"link events: {exc.strerror}") from None
                # Notifications were dropped: read the whole state again.
                before = {n: (up, self.present(n)) for n, up in self.state().items()}
                self._sock.setblocking(True)
                try:
                    self._resync()
                finally:
                    self._sock.setblocking(False)
                after = {n: (up, self.present(n)) for n, up in self.state().items()}
                changes.extend((n, now[0]) for n, now in after.items() if before.get(n) != now)
                continue
            for item in self._parse(data):
                if isinstance(item, tuple):
                    self._note(*item, changes)

    def _note(
        self, name: str, up: bool, index: int, exists: bool, changes: list[tuple[str, bool]]
    ) -> None:
        old = next((n for n, i in self._index.items() if i == index and n != name), None)
        if old is not None:  # renamed: the old name is gone
            self._note(old, False, index, False, changes)
        was = name in self._index
        if exists:
            self._index[name] = index
        else:
            self._index.pop(name, None)
        if name not in self._watch:
            return
        if self._state.get(name, False) != up or was != exists:
            changes.append((name, up))
        self._state[name] = up

    def _parse(self, data: bytes) -> Iterator[tuple[str, bool, int, bool] | int]:
        """pyroute2 splits and decodes what one recv() returned: (ifname, carrier up,
        ifindex, exists) for each link message, the sequence number of an end of dump."""
        for msg in self._marshal.parse(data):
            kind = msg["header"]["type"]
            if kind in (NLMSG_DONE, NLMSG_ERROR):
                yield msg["header"]["sequence_number"]
            elif kind in (RTM_NEWLINK, RTM_DELLINK) and (name := msg.get_attr("IFLA_IFNAME")):
                flags = msg["flags"]
                new = kind == RTM_NEWLINK
                up = new and bool(flags & _IFF_UP and flags & _IFF_LOWER_UP)
                yield name, up, msg["index"], new

    def _resync(self) -> None:
        """Blocking RTM_GETLINK dump on our socket; sets the state without reporting."""
        sock = self._sock
        if sock is None:
            raise NetlinkError("LinkWatcher is not open")
        self._seq += 1
        request = ifinfmsg()
        request["family"] = socket.AF_UNSPEC
        request["header"]["type"] = RTM_GETLINK
        request["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
        request["header"]["sequence_number"] = self._seq
        request.encode()
        sock.settimeout(5.0)
        seen: dict[str, bool] = {}
        index: dict[str, int] = {}
        try:
            sock.send(request.data)
            done = False
            while not done:
                for item in self._parse(sock.recv(65536)):
                    if isinstance(item, tuple):
                        seen[item[0]] = item[1]
                        index[item[0]] = item[2]
                    elif item == self._seq:
                        done = True
        except OSError as exc:
            raise NetlinkError(f"link dump: {exc.strerror or exc}") from None
        finally:
            sock.settimeout(None)
        for name in self._watch:
            self._state[name] = seen.get(name, False)
        self._index = index
