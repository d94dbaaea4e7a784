"""Hear, as it happens, when something may have changed what wanwatch owns in the kernel.

Two netlink multicast subscriptions, plain non-blocking sockets for the
daemon's asyncio loop:

* rtnetlink (rtnetlink(7)) groups RTMGRP_IPV4_ROUTE, RTMGRP_IPV4_RULE and
  RTMGRP_IPV4_IFADDR: a route of one of our tables or a default route of the
  main table changed, a rule carrying our protocol was deleted, an address
  was removed or added (a point-to-point uplink renumbered). pyroute2
  decodes the messages. Also RTNLGRP_IPV4_NETCONF: the
  kernel sends RTM_NEWNETCONF when forwarding, rp_filter or
  ignore_routes_with_linkdown change (net/ipv4/devinet.c,
  inet_netconf_notify_devconf), so a sysctl turned back is heard too;
* nfnetlink group NFNLGRP_NFTABLES (the group ``nft monitor`` listens to):
  the kernel announces every committed nftables transaction there, ours and
  everybody else's. Its messages are only counted, never decoded: whether our
  table is still ours is settled by comparing its fingerprint (nft.py), which
  the daemon does in the reconcile pass this triggers.

The watcher only says *which kind* of object may have drifted; the reconcile
pass reads the kernel and diffs (apply.py), so a spurious hint costs one no-op
pass and a lost one is caught by the daemon's periodic pass. A receive buffer
overrun (ENOBUFS: notifications were dropped) reports every kind.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_NEWADDR,
    RTM_NEWROUTE,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV4_RULE,
)
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from wanwatch.errors import NetlinkError
from wanwatch.footprint import MAX_UPLINKS, RT_PROTO, TABLE_BASE

ROUTE, RULE, ADDRESS, NFT, SYSCTL = "route", "rule", "address", "nft", "sysctl"
ALL_KINDS = frozenset({ROUTE, RULE, ADDRESS, NFT, SYSCTL})

_NETLINK_NETFILTER = 12  # <linux/netlink.h>
_SOL_NETLINK = 270
_NETLINK_ADD_MEMBERSHIP = 1
_NFNLGRP_NFTABLES = 7  # <linux/netfilter/nfnetlink.h>
_RTNLGRP_IPV4_NETCONF = 24  # <linux/rtnetlink.h>
_RTM_NEWNETCONF = 80
_RT_TABLE_MAIN = 254
_RCVBUF = 1 << 20
_OUR_TABLES = range(TABLE_BASE + 1, TABLE_BASE + MAX_UPLINKS + 1)


def route_is_ours_to_watch(kind: int, msg: Any) -> bool:
    """A route message about a slot we manage: any route of our tables, a main default."""
    if kind not in (RTM_NEWROUTE, RTM_DELROUTE):
        return False
    table = msg.get_attr("RTA_TABLE") or msg["table"]
    return table in _OUR_TABLES or (table == _RT_TABLE_MAIN and msg["dst_len"] == 0)


class DriftWatcher:
    """``fileno()``s for ``loop.add_reader``; ``read(fd)`` returns the kinds that may have drifted.

    The sockets live in the network namespace of the thread that calls :meth:`open`.
    """

    def __init__(self) -> None:
        self._rt: socket.socket | None = None
        self._nf: socket.socket | None = None
        self._marshal = MarshalRtnl()

    def open(self) -> None:
        if self._rt is not None:
            return
        rt = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
        )
        nf = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_NETFILTER
        )
        try:
            for s in (rt, nf):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
                s.setblocking(False)
            rt.bind((0, RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE | RTMGRP_IPV4_IFADDR))
            rt.setsockopt(_SOL_NETLINK, _NETLINK_ADD_MEMBERSHIP, _RTNLGRP_IPV4_NETCONF)
            nf.bind((0, 0))
            nf.setsockopt(_SOL_NETLINK, _NETLINK_ADD_MEMBERSHIP, _NFNLGRP_NFTABLES)
        except OSError as exc:
            rt.close()
            nf.close()
            raise NetlinkError(f"cannot listen for kernel changes: {exc.strerror}") from None
        self._rt, self._nf = rt, nf

    def close(self) -> None:
        for s in (self._rt, self._nf):
            if s is not None:
                s.close()
        self._rt = self._nf = None

    def filenos(self) -> tuple[int, int]:
        if self._rt is None or self._nf is None:
            raise NetlinkError("DriftWatcher is not open")
        return self._rt.fileno(), self._nf.fileno()

    def read(self, fd: int) -> set[str]:
        """Drain the socket ``fd``; never blocks."""
        if self._rt is not None and fd == self._rt.fileno():
            return self._drain(self._rt, self._route_kinds)
        if self._nf is not None and fd == self._nf.fileno():
            return self._drain(self._nf, lambda data: {NFT})
        return set()

    @staticmethod
    def _drain(sock: socket.socket, kinds: Any) -> set[str]:
        out: set[str] = set()
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # notifications were lost: anything may have
                    out |= ALL_KINDS
                    continue
                raise NetlinkError(f"kernel change events: {exc.strerror}") from None
            out |= kinds(data)

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
