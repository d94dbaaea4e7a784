"""The office's own traffic as an early sign of a silent uplink.

When packets keep leaving an uplink and nothing comes back for a few of its
RTTs, the daemon tells the engine (``Engine.traffic_stall``), which may start its
confirmation burst at once instead of waiting for the next healthy probe. It is
only a trigger: the pinned probes and the engine's sequential test still decide.

Where the signal comes from: the uplink interface's own packet counters
(``struct rtnl_link_stats64``, <linux/if_link.h>), read with one RTM_GETSTATS
request per uplink asking for IFLA_STATS_LINK_64 only (net/core/rtnetlink.c,
rtnl_stats_get): a 200-byte answer that pyroute2 decodes (``ifstatsmsg``). The
kernel counts every packet; Python reads two numbers per uplink per POLL,
whatever the packet rate. Measured against the other candidates with ~1,400
packets/s through the lab router (``bench/stall_signal.py``,
bench/results/stall-signal-2026-12-05.json): these reads 0.61 % of a core;
conntrack's NEW/UPDATE/DESTROY events 2.7 % (their cost grows with new
connections, and a flow established before the cut sends no event at all, so
they cannot see the office's long-lived traffic stop); ``nft list table`` every
50 ms 6.4 % (a new nft process each time). NFLOG has no decoder in pyroute2.

What the counters cannot tell apart: rx counts every packet that arrives, so an
uplink that keeps receiving unsolicited packets (scans, broadcasts) after it
stopped answering shows no stall, and the probes find it as before; a one-way
flow (a UDP stream nobody answers) stalls all the time, which the engine's rate
limit makes harmless (at most one burst per ``interval``, within the probe
budget).
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pyroute2.netlink import NLM_F_REQUEST, NLMSG_ERROR
from pyroute2.netlink.rtnl import RTM_GETSTATS, RTM_NEWSTATS
from pyroute2.netlink.rtnl.ifstatsmsg import ifstatsmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from wanwatch.engine.events import Event, event
from wanwatch.errors import NetlinkError
from wanwatch.linux.netlink import NetlinkSocket

# Counters are read this often. A stall is reported POLL + WINDOW_MIN to
# 2 * POLL + WINDOW_MIN after the last packet came back (125 ms on average in the
# lab). The cost is mostly the wakeup itself (bench/stall_signal.py: an empty
# asyncio timer at 40 /s already took 0.4 % of a core on the lab VM), hence one
# wakeup per read and not a faster one.
POLL = 0.05
# "A few RTTs": nothing back for STALL_RTTS smoothed RTTs, and never less than
# WINDOW_MIN (one POLL: the stall must show in two reads in a row).
STALL_RTTS = 3.0
WINDOW_MIN = 0.05
# Packets that must have left unanswered: more than an idle line's own probes
# send in the window (one per ``interval``), so a quiet office never triggers.
MIN_PACKETS = 4
# An uplink is read every IDLE_POLL only while nothing but its own probes leaves
# it (fewer than BUSY_PACKETS in the last read, none waiting for an answer): a
# quiet office then costs a fifth of the wakeups. The test used to be
# MIN_PACKETS in the last read, so an office opening 50 connections/s (about
# 2.5 packets out per POLL, and only SYNs once the uplink is cut) fell back to
# IDLE_POLL at the cut itself, and its stall showed up to 250 ms late.
BUSY_PACKETS = 2
IDLE_POLL = 0.25
_IFLA_STATS_LINK_64 = 1  # filter_mask bit: 1 << (IFLA_STATS_LINK_64 - 1), <linux/if_link.h>


class StallDetector:
    """One uplink's counters in, "stalled" out: packets left for a window, none came back.

    Pure: ``sample(now, tx, rx, srtt)`` with the counters as read. It reports
    each poll while the stall lasts (the engine rate-limits), and starts over
    when anything arrives.
    """

    __slots__ = ("_last_tx", "_quiet_tx", "_rx", "_tx_since", "busy")

    def __init__(self) -> None:
        self._rx: int | None = None
        self._quiet_tx = 0  # tx when rx last moved
        self._tx_since: float | None = None  # first read that saw tx move after that
        self._last_tx: int | None = None
        self.busy = False  # read every POLL: traffic leaves, or waits for an answer

    def sample(self, now: float, tx: int, rx: int, srtt: float | None) -> bool:
        self.busy = self._last_tx is not None and tx - self._last_tx >= BUSY_PACKETS
        self._last_tx = tx
        if self._rx is None or rx != self._rx or tx < self._quiet_tx:
            # something came back (or the counters restarted): a new quiet spell
            self._rx, self._quiet_tx, self._tx_since = rx, tx, None
            return False
        if tx == self._quiet_tx:
            return False
        self.busy = True  # packets wait for an answer: a stall may be forming
        if self._tx_since is None:
            self._tx_since = now  # these packets left after the previous read
            return False
        window = max(WINDOW_MIN, STALL_RTTS * srtt) if srtt is not None else WINDOW_MIN
        return tx - self._quiet_tx >= MIN_PACKETS and now - self._tx_since >= window


@dataclass(frozen=True, slots=True)
class _Uplink:
    wan: str
    ifname: str
    request: bytes


class TrafficWatch:
    """Reads the uplinks' counters every POLL (IDLE_POLL if idle) on the running loop.

    ``on_stall(wan, now)`` is called for each read that finds one. The socket
    lives in the network namespace of the thread that calls :meth:`start`. A
    socket error stops the watch and is reported as ``traffic.watch_failed``;
    an uplink whose interface is missing is skipped until it appears.

    The kernel answers an rtnetlink request inside the sender's ``send()``
    (net/netlink/af_netlink.c, netlink_unicast_kernel calls rtnetlink_rcv
    synchronously), so the answers are read right after sending, in the same
    wakeup; one that is somehow not there yet is read on the next one.
    """

    def __init__(
        self,
        on_stall: Callable[[str, float], None],
        rtt: Callable[[str], float | None],
        emit: Callable[[Event], None],
        now: Callable[[], float],
    ) -> None:
        self._on_stall = on_stall
        self._rtt = rtt
        self._emit = emit
        self._now = now
        self._sock: NetlinkSocket | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._uplinks: dict[int, _Uplink] = {}  # by ifindex
        self._names: dict[str, str] = {}  # wan -> ifname
        self._detectors: dict[str, StallDetector] = {}
        self._read_at: dict[str, float] = {}
        self._marshal = MarshalRtnl()

    def start(self, uplinks: Mapping[str, str]) -> None:
        """Watch ``uplinks`` (wan name -> interface name) from now on."""
        loop = asyncio.get_running_loop()
        sock = NetlinkSocket(socket.NETLINK_ROUTE, what="interface counters")
        try:
            sock.open()
        except NetlinkError as exc:
            self._fail(exc)
            return
        self._sock = sock
        self.watch(uplinks)
        self._timer = loop.call_later(POLL, self._poll)

    def watch(self, uplinks: Mapping[str, str]) -> None:
        """A new set of uplinks (config reload); detectors of kept ones go on."""
        self._names = dict(uplinks)
        self._detectors = {w: self._detectors.get(w) or StallDetector() for w in uplinks}
        self._uplinks = {}
        self._read_at = {}

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _resolve(self) -> None:
        """ifindex of each watched interface (if_nametoindex(3), this namespace)."""
        known = {u.wan for u in self._uplinks.values()}
        for wan, ifname in self._names.items():
            if wan in known:
                continue
            try:
                index = socket.if_nametoindex(ifname)
            except OSError:
                continue  # not there (yet): the carrier watch reports it
            msg = ifstatsmsg()
            msg["header"]["type"] = RTM_GETSTATS
            msg["header"]["flags"] = NLM_F_REQUEST
            msg["header"]["sequence_number"] = index
            msg["ifindex"] = index
            msg["filter_mask"] = _IFLA_STATS_LINK_64
            msg.encode()
            self._uplinks[index] = _Uplink(wan, ifname, bytes(msg.data))

    def _poll(self) -> None:
        if self._sock is None:
            return
        if len(self._uplinks) < len(self._names):
            self._resolve()
        now = self._now()
        due = now - IDLE_POLL + POLL / 2
        try:
            for u in self._uplinks.values():
                if self._detectors[u.wan].busy or self._read_at.get(u.wan, -math.inf) <= due:
                    self._read_at[u.wan] = now
                    self._sock.send(u.request)
            self._read(self._sock)
        except NetlinkError as exc:
            self._fail(exc)
            return
        busy = any(d.busy for d in self._detectors.values())
        self._timer = asyncio.get_running_loop().call_later(POLL if busy else IDLE_POLL, self._poll)

    def _read(self, sock: NetlinkSocket) -> None:
        for data in sock.receive():
            if data is None:  # answers lost (ENOBUFS): those uplinks are read on the next poll
                continue
            now = self._now()
            for msg in self._marshal.parse(data):
                kind = msg["header"]["type"]
                if kind == NLMSG_ERROR:  # ENODEV: the interface went; resolve it again
                    self._uplinks.pop(msg["header"]["sequence_number"], None)
                    continue
                u = self._uplinks.get(msg["ifindex"]) if kind == RTM_NEWSTATS else None
                stats = msg.get_attr("IFLA_STATS_LINK_64") if u is not None else None
                if u is None or stats is None:
                    continue
                d = self._detectors[u.wan]
                if d.sample(now, stats["tx_packets"], stats["rx_packets"], self._rtt(u.wan)):
                    self._on_stall(u.wan, now)

    def _fail(self, exc: NetlinkError) -> None:
        self.stop()
        self._emit(event(self._now(), "traffic.watch_failed", error=str(exc)))
