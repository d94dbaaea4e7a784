"""Hear, as it happens, what changes in the kernel: uplink carrier, and what wanwatch owns.

Netlink multicast subscriptions on plain non-blocking sockets
(:class:`~wanwatch.linux.netlink.NetlinkSocket`) for the daemon's asyncio
loop; pyroute2 decodes the messages. Each watcher lives in the network
namespace of the thread that calls its ``open()``.

:class:`LinkWatcher` follows the carrier of the uplink interfaces
(RTMGRP_LINK). :class:`DriftWatcher` says which kind of object of ours may
have drifted:

* rtnetlink (rtnetlink(7)) groups RTMGRP_IPV4_ROUTE, RTMGRP_IPV4_RULE and
  RTMGRP_IPV4_IFADDR: a route of one of our tables or a default route of the
  main table changed, a rule carrying our protocol was deleted, an address
  was removed or added (a point-to-point uplink renumbered). Also
  RTNLGRP_IPV4_NETCONF: the kernel sends RTM_NEWNETCONF when forwarding,
  rp_filter or ignore_routes_with_linkdown change (net/ipv4/devinet.c,
  inet_netconf_notify_devconf), so a sysctl turned back is heard too. The same
  for IPv6 (docs/ipv6.md): RTMGRP_IPV6_ROUTE, RTMGRP_IPV6_RULE and
  RTNLGRP_IPV6_NETCONF (net/ipv6/addrconf.c, inet6_netconf_notify_devconf); its
  addresses are not followed (each router advertisement renews an ``auto``
  uplink's lifetimes, RTM_NEWADDR every time), the periodic pass reads them;
* nfnetlink group NFNLGRP_NFTABLES (the group ``nft monitor`` listens to):
  the kernel announces every committed nftables transaction there, ours and
  everybody else's. Its messages are only counted, never decoded: whether our
  table is still ours is settled by comparing its fingerprint (nft.py), which
  the daemon does in the reconcile pass this triggers.

The drift watcher only says *which kind* of object may have drifted; the
reconcile pass reads the kernel and diffs (reconcile.py), so a spurious hint
costs one no-op pass and a lost one is caught by the daemon's periodic pass. A
receive buffer overrun (ENOBUFS: notifications were dropped) reports every kind.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR
from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV4_RULE,
    RTMGRP_IPV6_ROUTE,
    RTMGRP_IPV6_RULE,
    RTMGRP_LINK,
)
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from wanwatch.errors import NetlinkError
from wanwatch.footprint import RT_PROTO
from wanwatch.linux.desired import OUR_TABLES
from wanwatch.linux.netlink import RT_TABLE_MAIN, NetlinkSocket, carrier

ROUTE, RULE, ADDRESS, NFT, SYSCTL = "route", "rule", "address", "nft", "sysctl"
ALL_KINDS = frozenset({ROUTE, RULE, ADDRESS, NFT, SYSCTL})

_NETLINK_NETFILTER = 12  # <linux/netlink.h>
_NFNLGRP_NFTABLES = 7  # <linux/netfilter/nfnetlink.h>
_RTNLGRP_IPV4_NETCONF = 24  # <linux/rtnetlink.h>
_RTNLGRP_IPV6_NETCONF = 25
_RTM_NEWNETCONF = 80


# --------------------------------------------------------------------------- carrier


class LinkWatcher(NetlinkSocket):
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
    """

    def __init__(self, interfaces: Iterable[str]) -> None:
        super().__init__(socket.NETLINK_ROUTE, RTMGRP_LINK, what="link events")
        self._watch = set(interfaces)
        self._state: dict[str, bool] = {}
        self._index: dict[str, int] = {}  # name -> ifindex of interfaces that exist
        self._seq = 0
        self._marshal = MarshalRtnl()

    def open(self) -> None:
        """Subscribe, then read the current state (so no change between the two is lost)."""
        if self.is_open:
            return
        super().open()
        self._state = {}
        self._index = {}
        self._resync()

    def watch(self, interfaces: Iterable[str]) -> None:
        """Change the watched set (after a reload). New names start from their current state."""
        self._watch = set(interfaces)
        if self.is_open:
            self._resync()

    def present(self, name: str) -> bool:
        """Whether interface ``name`` exists now (as last heard)."""
        return name in self._index

    def state(self) -> dict[str, bool]:
        """Last known carrier of every watched interface (missing ones read as down)."""
        return {name: self._state.get(name, False) for name in sorted(self._watch)}

    def read(self) -> list[tuple[str, bool]]:
        """Changes since the last call; never blocks."""
        changes: list[tuple[str, bool]] = []
        for data in self.receive():
            if data is None:  # notifications were dropped: read the whole state again
                before = {n: (up, self.present(n)) for n, up in self.state().items()}
                self._resync()
                after = {n: (up, self.present(n)) for n, up in self.state().items()}
                changes.extend((n, now[0]) for n, now in after.items() if before.get(n) != now)
                continue
            for item in self._parse(data):
                if isinstance(item, tuple):
                    self._note(*item, changes)
        return changes

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
                new = kind == RTM_NEWLINK
                yield name, new and carrier(msg["flags"]), msg["index"], new

    def _resync(self) -> None:
        """Blocking RTM_GETLINK dump on our socket (non-blocking again after); sets the
        state without reporting."""
        sock = self._sock
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
            sock.setblocking(False)
        for name in self._watch:
            self._state[name] = seen.get(name, False)
        self._index = index


# --------------------------------------------------------------------------- drift


def route_is_ours_to_watch(kind: int, msg: Any) -> bool:
    """A route message about a slot we manage: any route of our tables, a main default."""
    if kind not in (RTM_NEWROUTE, RTM_DELROUTE):
        return False
    table = msg.get_attr("RTA_TABLE") or msg["table"]
    return table in OUR_TABLES or (table == RT_TABLE_MAIN and msg["dst_len"] == 0)


class DriftWatcher:
    """``filenos()`` for ``loop.add_reader``; ``read(fd)``: the kinds that may have drifted."""

    def __init__(self) -> None:
        self._rt = NetlinkSocket(
            socket.NETLINK_ROUTE,
            RTMGRP_IPV4_ROUTE
            | RTMGRP_IPV4_RULE
            | RTMGRP_IPV4_IFADDR
            | RTMGRP_IPV6_ROUTE
            | RTMGRP_IPV6_RULE,
            (_RTNLGRP_IPV4_NETCONF, _RTNLGRP_IPV6_NETCONF),
            what="kernel change events",
        )
        self._nf = NetlinkSocket(
            _NETLINK_NETFILTER, 0, (_NFNLGRP_NFTABLES,), what="nftables change events"
        )
        self._marshal = MarshalRtnl()

    def open(self) -> None:
        self._rt.open()
        try:
            self._nf.open()
        except NetlinkError:
            self._rt.close()
            raise

    def close(self) -> None:
        self._rt.close()
        self._nf.close()

    def filenos(self) -> tuple[int, int]:
        return self._rt.fileno(), self._nf.fileno()

    def read(self, fd: int) -> set[str]:
        """Drain the socket ``fd``; never blocks."""
        if self._rt.is_open and fd == self._rt.fileno():
            return _drain(self._rt, self._route_kinds)
        if self._nf.is_open and fd == self._nf.fileno():
            return _drain(self._nf, lambda data: {NFT})
        return set()

    def _route_kinds(self, data: bytes) -> set[str]:
        out: set[str] = set()
        for msg in self._marshal.parse(data):
            kind = msg["header"]["type"]
            if route_is_ours_to_watch(kind, msg):
                out.add(ROUTE)
            elif kind == RTM_DELRULE and msg.get_attr("FRA_PROTOCOL") == RT_PROTO:
                out.add(RULE)
            elif kind in (RTM_DELADDR, RTM_NEWADDR):  # also an uplink's new address (PPP)
                out.add(ADDRESS)
            elif kind == _RTM_NEWNETCONF:
                out.add(SYSCTL)
        return out


def _drain(sock: NetlinkSocket, kinds: Callable[[bytes], set[str]]) -> set[str]:
    out: set[str] = set()
    for data in sock.receive():
        out |= ALL_KINDS if data is None else kinds(data)  # None: some were lost, anything may have
    return out
