"""Conntrack flush at office scale; prints ONE JSON object (progress on stderr).

    python bench/scale.py [--sizes 0,10000,50000,100000] [--unmarked-pct P] [--cuts N]

Root. Two parts, each row a table of that many UDP conntrack entries injected
through ctnetlink (IPCTNL_MSG_CT_NEW, batched, each request patched from one
encoded template; generating real flows from a LAN namespace took longer than
the bench itself), all of them the failed uplink's: all but ``P`` % carry its ct
mark, the unmarked ones (flows older than our nft table) are NATed to its
address; the marked ones alternate between that address and another (the mark
decides).

- ``rows`` (a bare lab namespace, prefix ``ww``, deleted by name): where the
  flush's time goes, each step timed alone on a fresh table: ``count_ms`` (the
  table's size, one stats request), ``mark_delete_ms`` (the kernel-side delete
  by mark), ``sweep_ms`` (the dump of entries whose reply goes to the address,
  CTA_FILTER), then ``conntrack.flush_uplink`` as the backend calls it on an
  uplink's first failover after start (``flush_first_ms``: with the sweep) and on
  later ones (``flush_ms``: without), entries deleted and left, this process's
  RSS before and after.
- ``failover`` (``--cuts`` > 0; the reference office in the lab, ``wanwatch run``
  as its router): per size, ``--cuts`` blackhole cuts of the primary, each on a
  freshly started daemon with the entries injected into the router namespace just
  before the cut; the cut -> the first new connection of the LAN client through
  the backup (``failover_ms``, CLOCK_MONOTONIC), the daemon's ``conntrack.flush``
  (``flush_ms``, ``deleted``, ``flush_done_after_cut_ms``), the daemon's CPU from
  the cut to the end of its flush, and its RSS before the entries, with them,
  and after the flush.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import random
import socket
import struct
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from _common import host_info, lab_main, say, summary
from pyroute2.conntrack import Conntrack
from pyroute2.netlink import NETLINK_NETFILTER, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.marshal import Marshal
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_CTNETLINK
from pyroute2.netlink.nfnetlink.nfctsocket import IPCTNL_MSG_CT_NEW, NFCTAttrTuple, nfct_msg

from wanwatch.errors import LabError, WanwatchError
from wanwatch.footprint import FWMARK_MASK, fwmark
from wanwatch.lab import netns
from wanwatch.linux import conntrack

FAILED = "203.0.113.2"  # the failed uplink's address (its masquerade source)
OTHER = "203.0.113.99"
SERVER = "198.51.100.10"
MARK = fwmark(0)
BATCH = 200
# SEEN_REPLY, ASSURED, CONFIRMED, SRC_NAT (IPS_* in <linux/netfilter/nf_conntrack_common.h>)
STATUS = 0x2 | 0x4 | 0x8 | 0x10
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """This thread in namespace ``ns`` for a while (setns(2) is per thread)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, 0x40000000) != 0:
            raise LabError(f"setns {ns}: errno {ctypes.get_errno()}")
        yield
    finally:
        back = _libc.setns(home, 0x40000000)
        os.close(target)
        os.close(home)
        if back != 0:  # never carry on in the wrong namespace
            os._exit(70)


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class _Template:
    """One encoded IPCTNL_MSG_CT_NEW, patched per entry: encoding each through pyroute2
    cost ~0.7 ms, which made the injection, not the flush, the slow part of the bench."""

    _SRC = "10.251.252.253"  # placeholders, each found once (ports twice: both tuples)
    _SPORT, _DPORT = 0xFEED, 0xBEEF

    def __init__(self, nat: str, mark: int) -> None:
        msg = nfct_msg.create_from(
            tuple_orig=NFCTAttrTuple(
                saddr=self._SRC, daddr=SERVER, proto=17, sport=self._SPORT, dport=self._DPORT
            ),
            tuple_reply=NFCTAttrTuple(
                saddr=SERVER, daddr=nat, proto=17, sport=self._DPORT, dport=self._SPORT
            ),
            status=STATUS,
            timeout=600,
            mark=mark,
        )
        msg["nfgen_family"] = socket.AF_INET
        msg["header"]["type"] = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK
        msg.encode()
        self.raw = bytes(msg.data)
        self.src_at = self._find(socket.inet_aton(self._SRC), 1)[0]
        self.sport_at = self._find(struct.pack(">H", self._SPORT), 2)
        self.dport_at = self._find(struct.pack(">H", self._DPORT), 2)

    def _find(self, needle: bytes, count: int) -> list[int]:
        found, at = [], self.raw.find(needle)
        while at >= 0:
            found.append(at)
            at = self.raw.find(needle, at + 1)
        if len(found) != count:
            raise LabError(f"template: {needle.hex()} found {len(found)} times, not {count}")
        return found

    def make(self, i: int) -> bytes:
        out = bytearray(self.raw)
        struct.pack_into("<I", out, 8, i + 1)  # nlmsg_seq
        src = (10 << 24) | ((1 + (i >> 16) % 200) << 16) | (i & 0xFFFF)
        struct.pack_into(">I", out, self.src_at, src)
        for at in self.sport_at:
            struct.pack_into(">H", out, at, 1024 + i % 60000)
        for at in self.dport_at:
            struct.pack_into(">H", out, at, 53 + i // 60000)
        return bytes(out)


def inject(n: int, marked: Callable[[int], bool], failed: str = FAILED, mark: int = MARK) -> int:
    """Create ``n`` entries (reply to ``failed`` or OTHER, ``mark`` when marked); how many
    the kernel refused."""
    templates = {
        (m, odd): _Template(failed if odd else OTHER, mark if m else 0)
        for m in (True, False)
        for odd in (True, False)
    }
    marshal = Marshal()
    refused = 0
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        s.bind((0, 0))
        for start in range(0, n, BATCH):
            end = min(n, start + BATCH)
            s.send(
                b"".join(
                    templates[m, not m or i % 2 == 1].make(i)
                    for i in range(start, end)
                    for m in (marked(i),)
                )
            )
            acks = 0
            while acks < end - start:
                for msg in marshal.parse(s.recv(1 << 20)):
                    acks += 1
                    refused += msg["header"].get("error") is not None
    return refused


def count() -> int:
    with Conntrack(nfgen_family=socket.AF_INET) as ct:
        return ct.count() or 0


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return round((time.perf_counter() - t0) * 1000, 1)


def row(size: int, unmarked_pct: float) -> dict[str, Any]:
    """The flush's steps, each on a fresh table of ``size`` entries in a bare namespace."""
    ns = f"{netns.PREFIX}scale{netns.run_tag()}"
    every = round(100 / unmarked_pct) if unmarked_pct > 0 else 0

    def fill() -> int:
        return inject(size, lambda i: not (every and i % every == 1))

    def mark_delete() -> None:
        with Conntrack(nfgen_family=socket.AF_INET) as ct:
            ct.flush(mark=MARK, mark_mask=FWMARK_MASK)

    def sweep() -> None:
        with Conntrack(nfgen_family=socket.AF_INET) as ct:
            list(ct.dump_entries(tuple_reply=NFCTAttrTuple(daddr=FAILED)))

    out: dict[str, Any] = {}
    with netns.namespaces(ns), inside(ns):
        t0 = time.perf_counter()
        out["refused"] = fill()
        out["inject_s"] = round(time.perf_counter() - t0, 1)
        out["entries"] = count()
        out["count_ms"] = timed(count)
        out["sweep_ms"] = timed(sweep)
        out["mark_delete_ms"] = timed(mark_delete)
        for key, first in (("flush_first", True), ("flush", False)):
            conntrack.flush_uplink(IPv4Address(FAILED), MARK, FWMARK_MASK)  # empty it
            fill()
            rss0 = rss_mb()
            t0 = time.perf_counter()
            n = conntrack.flush_uplink(IPv4Address(FAILED), MARK, FWMARK_MASK, sweep=first)
            out[f"{key}_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            out[f"{key}_deleted"] = n
            out[f"{key}_left"] = count()
            out[f"{key}_rss_mb"] = [rss0, rss_mb()]
    say(f"  {size}: {out}")
    return out


# --------------------------------------------------------------------------- the daemon


def failover(sizes: list[int], cuts: int, unmarked_pct: float, warmup: float) -> dict[str, Any]:
    """Blackhole cuts of the reference office's primary with ``size`` entries on it."""
    from failover import FAILOVER_DEADLINE, Bench, EventLog, cpu_pct, mb, proc_sample

    from wanwatch.config import load
    from wanwatch.config.dynamic import static_address
    from wanwatch.engine.intent import intent_from_config
    from wanwatch.lab import faults
    from wanwatch.lab.topology import Lab

    config = load(Path(__file__).resolve().parent.parent / "examples" / "office.yaml")
    every = round(100 / unmarked_pct) if unmarked_pct > 0 else 0
    out: dict[str, Any] = {}
    with Lab(config, client_dns="router") as lab:
        bench = Bench(lab, config, random.Random(1))
        wan = next(w for w in lab.lab_config.wans if w.name == bench.primary)
        address = static_address(wan)
        if address is None:
            raise LabError(f"{bench.primary}: the scale bench needs a static primary")
        slot = next(
            u.slot for u in intent_from_config(lab.lab_config).uplinks if u.name == wan.name
        )
        bench.start(5.0)
        lab.dhcp_lease(bench.client, timeout=15)
        bench.stop()
        for size in sizes:
            recs = []
            for i in range(cuts):
                bench.start(warmup)
                pid = bench.daemon_pid()
                p_empty = proc_sample(pid)
                with inside(lab.router_ns):
                    inject(
                        size,
                        lambda k: not (every and k % every == 1),
                        str(address.ip),
                        fwmark(slot),
                    )
                    entries = count()
                events = EventLog(bench.office)
                events.poll()
                p0 = proc_sample(pid)
                took, fault, _ = bench.switch(
                    lambda: faults.blackhole(lab, bench.primary),
                    bench.backup,
                    interval=0.02,
                    deadline=FAILOVER_DEADLINE,
                )
                flush = bench.office.wait_event(
                    "conntrack.flush",
                    since=fault.t_start,
                    where=lambda e: e.get("wan") == bench.primary,
                )
                p1 = proc_sample(pid)
                with inside(lab.router_ns):
                    left = count()
                faults.clear(lab, bench.primary, "blackhole")
                bench.stop()
                rec = {
                    "cut": i + 1,
                    "entries": entries,
                    "failover_ms": None if took is None else round(took * 1000, 1),
                    "flush_ms": flush.get("flush_ms"),
                    "deleted": flush.get("deleted"),
                    "left": left,
                    "flush_done_after_cut_ms": round((flush["at"] - fault.t_start) * 1000, 1),
                    "cpu_pct_cut_to_flushed": cpu_pct(p0, p1),
                    "rss_mb": [mb(p_empty.rss_kb), mb(p0.rss_kb), mb(p1.rss_kb)],
                }
                say(f"  {size} cut {i + 1}: {rec}")
                recs.append(rec)
            out[str(size)] = {
                "failover_ms": summary([r["failover_ms"] for r in recs if r["failover_ms"]]),
                "flush_ms": summary([r["flush_ms"] for r in recs if r["flush_ms"] is not None]),
                "per_cut": recs,
            }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", default="0,10000,50000,100000")
    ap.add_argument("--unmarked-pct", type=float, default=0.0, help="entries without our mark")
    ap.add_argument("--cuts", type=int, default=5, help="failover cuts per size (0: none)")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds a fresh daemon runs")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    def run() -> dict[str, Any]:
        out: dict[str, Any] = {
            "bench": "scale",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": host_info(),
            "unmarked_pct": args.unmarked_pct,
            "entries_from": "injected through ctnetlink",
            "rows": {str(n): row(n, args.unmarked_pct) for n in sizes},
        }
        if args.cuts:
            out["warmup_s"] = args.warmup
            out["failover"] = failover(sizes, args.cuts, args.unmarked_pct, args.warmup)
        out["host"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        return out

    return lab_main(run, (WanwatchError, OSError))


if __name__ == "__main__":
    raise SystemExit(main())
