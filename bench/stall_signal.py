"""What each candidate source of the traffic-stall signal costs; prints ONE JSON object.

    python bench/stall_signal.py [--seconds S] [--pps N] > bench/results/stall-signal-DATE.json

Root. Builds the reference office in the namespace lab with ``wanwatch run`` as
its router, sends LAN traffic through it (a LAN client's ICMP echo stream of
``--pps`` / 2 echoes per second, answered, so ``--pps`` packets per second cross
the router, a new flow every second; plus a new TCP connection every 20 ms, as
an office opens them), and runs each candidate for ``--seconds`` as its own
process in the router namespace. Each reports the CPU it used (utime + stime,
its children included) while the traffic flowed:

- ``stats``: what the daemon uses (wanwatch.linux.traffic.TrafficWatch):
  RTM_GETSTATS for each uplink every 50 ms, pyroute2 decoding the answers;
- ``conntrack``: a socket on the conntrack event groups NEW, UPDATE and
  DESTROY (what a "new flow out, no reply within k RTTs" detector needs),
  pyroute2 decoding every event;
- ``nft``: ``nft list table inet wanwatch`` every 50 ms (reading rule counters
  of our own table the only way nft offers: a new nft process each time).

NFLOG is not measured: pyroute2 has no decoder for nfnetlink_log messages, and
wanwatch writes no netlink parser of its own.

Fields: ``candidates.<name>``: ``cpu_pct`` (of one core), ``cpu_ms_per_s``,
``messages`` (conntrack events decoded, reads of the counters, or nft runs), ``seconds``;
``forwarded_pps``: packets per second the primary uplink carried (tx + rx, from
its counters) during the ``stats`` run; ``host``: as in bench/failover.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import select
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import ROOT, host_info, say

from wanwatch.linux.traffic import POLL

OFFICE = ROOT / "examples" / "office.yaml"
CANDIDATES = ("stats", "conntrack", "nft")
_NETLINK_NETFILTER = 12  # <linux/netlink.h>
_SOL_NETLINK = 270
_NETLINK_ADD_MEMBERSHIP = 1


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# --------------------------------------------------------------------------- workers


def _stats(seconds: float, uplinks: dict[str, str]) -> dict[str, Any]:
    from wanwatch.linux.traffic import TrafficWatch

    counts = {"stalls": 0}
    first: dict[str, tuple[int, int]] = {}

    async def main() -> None:
        watch = TrafficWatch(
            lambda wan, at: counts.__setitem__("stalls", counts["stalls"] + 1),
            lambda wan: None,
            lambda ev: None,
            time.monotonic,
        )
        watch.start(uplinks)
        await asyncio.sleep(seconds)
        watch.stop()

    c0 = _cpu()
    t0 = time.monotonic()
    first.update(_link_packets(uplinks))
    asyncio.run(main())
    t1 = time.monotonic()
    c1 = _cpu()
    last = _link_packets(uplinks)
    pps = {w: round(sum(last[w]) - sum(first[w])) / (t1 - t0) for w in uplinks}
    # every uplink that carries traffic is read every POLL (wakeups, not messages)
    polls = int((t1 - t0) / POLL)
    return {"cpu_s": c1 - c0, "seconds": t1 - t0, "messages": polls, "pps": pps, **counts}


def _link_packets(uplinks: dict[str, str]) -> dict[str, tuple[int, int]]:
    out = {}
    for wan, ifname in uplinks.items():
        base = Path("/sys/class/net") / ifname / "statistics"
        out[wan] = (
            int((base / "tx_packets").read_text()),
            int((base / "rx_packets").read_text()),
        )
    return out


def _conntrack(seconds: float) -> dict[str, Any]:
    from pyroute2.netlink.nfnetlink.nfctsocket import AsyncNFCTSocket
    from pyroute2.netlink.nlsocket import Marshal

    marshal = Marshal()
    marshal.msg_map = dict(AsyncNFCTSocket.policy)
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind((0, 0))
    for group in (1, 2, 3):  # NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY
        sock.setsockopt(_SOL_NETLINK, _NETLINK_ADD_MEMBERSHIP, group)
    n = overruns = 0
    c0, t0 = _cpu(), time.monotonic()
    end = t0 + seconds
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            continue
        try:
            data = sock.recv(1 << 16)
        except OSError:  # ENOBUFS: events were dropped
            overruns += 1
            continue
        for msg in marshal.parse(data):
            msg.get_attr("CTA_MARK")  # what a detector would read: the uplink's ct mark
            n += 1
    t1, c1 = time.monotonic(), _cpu()
    return {"cpu_s": c1 - c0, "seconds": t1 - t0, "messages": n, "overruns": overruns}


def _nft(seconds: float) -> dict[str, Any]:
    n = 0
    c0, t0 = _cpu(), time.monotonic()
    end = t0 + seconds
    nxt = t0
    while time.monotonic() < end:
        subprocess.run(
            ["nft", "list", "table", "inet", "wanwatch"], capture_output=True, check=False
        )
        n += 1
        nxt += POLL
        time.sleep(max(0.0, nxt - time.monotonic()))
    t1, c1 = time.monotonic(), _cpu()
    return {"cpu_s": c1 - c0, "seconds": t1 - t0, "messages": n}


def worker(name: str, seconds: float, uplinks: dict[str, str]) -> dict[str, Any]:
    if name == "stats":
        return _stats(seconds, uplinks)
    if name == "conntrack":
        return _conntrack(seconds)
    return _nft(seconds)


# --------------------------------------------------------------------------- driver


def run(args: argparse.Namespace) -> dict[str, Any]:
    from wanwatch.config import load
    from wanwatch.lab.office import Office
    from wanwatch.lab.topology import Lab
    from wanwatch.lab.traffic import ConnectLoop, Stream

    config = load(OFFICE)
    out: dict[str, Any] = {
        "bench": "stall_signal",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": host_info(),
        "pps": args.pps,
        "seconds": args.seconds,
        "candidates": {},
    }
    with Lab(config) as lab:
        client = config.lans[0].name
        lab.client_static(client)
        office = Office(lab)
        office.start(wait_active=config.wans[0].name, timeout=30)
        uplinks = {w.name: w.interface for w in lab.lab_config.wans}
        whoami = lab.topology.whoami[0]
        budget = (args.seconds + 20) * len(CANDIDATES)
        with (
            Stream(lab, client, whoami, rate=args.pps / 2, seconds=budget),
            ConnectLoop(lab, client, interval=0.02, timeout=1.0, max_seconds=budget),
        ):
            time.sleep(3.0)
            for name in CANDIDATES:
                argv = [sys.executable, __file__, "--worker", name, "--seconds",
                        str(args.seconds), "--uplinks", json.dumps(uplinks)]  # fmt: skip
                proc = lab.spawn(lab.router_ns, argv, f"signal-{name}")
                code = proc.wait(args.seconds + 30)
                records = proc.records()
                if code != 0 or not records:
                    raise RuntimeError(f"{name}: exit {code}: {proc.stderr()[-2000:]}")
                r = records[-1]
                say(f"{name}: {json.dumps(r)}")
                out["candidates"][name] = {
                    "cpu_pct": round(100 * r["cpu_s"] / r["seconds"], 2),
                    "cpu_ms_per_s": round(1000 * r["cpu_s"] / r["seconds"], 2),
                    "messages": r["messages"],
                    "seconds": round(r["seconds"], 1),
                    **{k: r[k] for k in ("overruns",) if k in r},
                }
                if name == "stats":
                    out["forwarded_pps"] = r["pps"]
        office.stop()
    out["host"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--pps", type=float, default=1000.0)
    ap.add_argument("--worker", choices=CANDIDATES, help=argparse.SUPPRESS)
    ap.add_argument("--uplinks", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        rec = worker(args.worker, args.seconds, json.loads(args.uplinks))
        sys.stdout.write(json.dumps(rec) + "\n")
        return 0
    if os.geteuid() != 0:
        say("needs root: it builds network namespaces")
        return 2
    out = run(args)
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
