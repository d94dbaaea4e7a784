"""Conntrack flush at office scale; prints ONE JSON object (progress on stderr).

    python bench/scale.py [--sizes 0,10000,50000,100000] [--unmarked-pct P]

Root. For each size, a fresh lab namespace (prefix ``ww``, deleted by name) gets
that many UDP conntrack entries injected through ctnetlink (IPCTNL_MSG_CT_NEW,
batched; generating real flows from a LAN namespace took longer than the bench
itself), all of them the failed uplink's: all but ``P`` % carry its ct mark,
and the unmarked ones (flows older than our nft table) are NATed to its address
(reply destination 203.0.113.2); the marked ones alternate between that address
and another (the mark decides). Then ``conntrack.flush_uplink`` runs exactly as
the backend calls it, in this process, and the figures are: flush time, entries
deleted and left, this process's RSS before and after.

Not measured here: the daemon's failover median with that table (the flush
follows the route switch in one pass, bench/failover.py times the switch).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Address
from typing import Any

from _common import host_info, lab_main, say
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


def _new(i: int, marked: bool) -> bytes:
    sport, srv = 1024 + i % 60000, 53 + i // 60000
    src = f"10.{1 + (i >> 16) % 200}.{(i >> 8) & 255}.{i & 255}"
    nat = FAILED if i % 2 else OTHER
    msg = nfct_msg.create_from(
        tuple_orig=NFCTAttrTuple(saddr=src, daddr=SERVER, proto=17, sport=sport, dport=srv),
        tuple_reply=NFCTAttrTuple(saddr=SERVER, daddr=nat, proto=17, sport=srv, dport=sport),
        status=STATUS,
        timeout=600,
        mark=MARK if marked else 0,
    )
    msg["nfgen_family"] = socket.AF_INET
    msg["header"]["type"] = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK
    msg["header"]["sequence_number"] = i + 1
    msg.encode()
    return bytes(msg.data)


def inject(n: int, marked: Callable[[int], bool]) -> int:
    """Create ``n`` entries; how many the kernel refused."""
    marshal = Marshal()
    refused = 0
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        s.bind((0, 0))
        for start in range(0, n, BATCH):
            end = min(n, start + BATCH)
            s.send(b"".join(_new(i, marked(i)) for i in range(start, end)))
            acks = 0
            while acks < end - start:
                for msg in marshal.parse(s.recv(1 << 20)):
                    acks += 1
                    refused += msg["header"].get("error") is not None
    return refused


def row(size: int, unmarked_pct: float) -> dict[str, Any]:
    ns = f"{netns.PREFIX}scale{netns.run_tag()}"
    every = round(100 / unmarked_pct) if unmarked_pct > 0 else 0
    with netns.namespaces(ns), inside(ns):
        t0 = time.perf_counter()
        refused = inject(size, lambda i: not (every and i % every == 1))
        inject_s = time.perf_counter() - t0
        with Conntrack(nfgen_family=socket.AF_INET) as ct:
            before = ct.count() or 0
        rss0 = rss_mb()
        t0 = time.perf_counter()
        deleted = conntrack.flush_uplink(IPv4Address(FAILED), MARK, FWMARK_MASK)
        flush_ms = (time.perf_counter() - t0) * 1000
        rss1 = rss_mb()
        with Conntrack(nfgen_family=socket.AF_INET) as ct:
            left = ct.count() or 0
    out = {
        "entries": before,
        "refused": refused,
        "inject_s": round(inject_s, 1),
        "flush_ms": round(flush_ms, 1),
        "deleted": deleted,
        "left": left,
        "rss_mb_before": rss0,
        "rss_mb_after": rss1,
    }
    say(f"  {size}: {out}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", default="0,10000,50000,100000")
    ap.add_argument("--unmarked-pct", type=float, default=0.0, help="entries without our mark")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    def run() -> dict[str, Any]:
        rows = {str(n): row(n, args.unmarked_pct) for n in sizes}
        return {
            "bench": "scale",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": host_info(),
            "unmarked_pct": args.unmarked_pct,
            "entries_from": "injected through ctnetlink",
            "rows": rows,
        }

    return lab_main(run, (WanwatchError, OSError))


if __name__ == "__main__":
    raise SystemExit(main())
