"""Status page benchmark in the namespace lab; prints ONE JSON object (progress on stderr).

    sudo python bench/statuspage.py [--requests N] [--pages P] [--seconds S]

Root. Builds the reference office with ``wanwatch run --http 127.0.0.1:9180`` as
its router and measures, from a client inside the router namespace (the page
listens on its loopback), in this order:

1. the daemon's RSS (and peak, VmHWM) quiet, ``--http`` on, no request yet;
2. ``--pages`` open pages, each polling /api/status every second (and
   /api/history every 10 s) over its own persistent connection as a browser
   does, for ``--seconds``: the poll latencies, then the RSS -- the figure the
   40 MB target is about;
3. per path (``/``, ``/app.js``, ``/style.css``, ``/api/status``,
   ``/api/history``) on a new connection each, ``--requests`` times, and whole
   first page loads (the five requests a browser makes, on one connection):
   the time from connect to the last byte; then the RSS and the router's
   conntrack entries, which these thousand-odd short connections leave behind
   and which the daemon's per-uplink counters walk;
4. ``/metrics`` scrapes (the first imports prometheus_client), then the RSS.

Every request is answered from memory on the daemon's own loop, so the latency
of ``/api/status`` also bounds how long a page load can hold back a probe.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from _common import ROOT, host_info, lab_main, say, summary
from failover import proc_sample

from wanwatch.config import load
from wanwatch.errors import LabError
from wanwatch.lab import netns
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab

OFFICE = ROOT / "examples" / "office.yaml"
HOST, PORT = "127.0.0.1", 9180
PATHS = ("/", "/app.js", "/style.css", "/api/status", "/api/history", "/metrics")
PAGE = ("/", "/style.css", "/app.js", "/api/history", "/api/status")  # what a browser asks
TARGET_PAGE_MS = 50.0
TARGET_RSS_MB = 40.0


def get(path: str, conn: http.client.HTTPConnection | None = None) -> float:
    """One GET, on ``conn`` (kept open) or a new connection; ms until the body is read."""
    t0 = time.perf_counter()
    own = conn is None
    conn = http.client.HTTPConnection(HOST, PORT, timeout=5) if conn is None else conn
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200 or not body:
            raise RuntimeError(f"{path}: HTTP {resp.status}")
    finally:
        if own:
            conn.close()
    return (time.perf_counter() - t0) * 1000


def page_load() -> float:
    """What a browser does on a first visit: one connection, the page's five requests."""
    conn = http.client.HTTPConnection(HOST, PORT, timeout=5)
    try:
        return sum(get(p, conn) for p in PAGE)
    finally:
        conn.close()


def poll(pages: int, seconds: float) -> dict[str, Any]:
    """``pages`` open pages polling, each over its own persistent connection (a browser's)."""
    conns = [http.client.HTTPConnection(HOST, PORT, timeout=5) for _ in range(pages)]
    polls, tick = [], 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        for conn in conns:
            polls.append(get("/api/status", conn))
            if tick % 10 == 0:
                get("/api/history", conn)
        tick += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    for conn in conns:
        conn.close()
    return {"poll_ms": summary(polls, 2)}


def latency(requests: int) -> dict[str, Any]:
    """Each path on a new connection, ``requests`` times; then whole first page loads."""
    out: dict[str, Any] = {"per_path_ms": {}}
    for path in PATHS:
        if path == "/metrics":
            continue  # last: its first scrape imports prometheus_client
        out["per_path_ms"][path] = summary([get(path) for _ in range(requests)], 2)
    out["page_load_ms"] = summary([page_load() for _ in range(requests)], 2)
    return out


def scrape(requests: int) -> dict[str, Any]:
    first = get("/metrics")
    return {
        "first_ms": round(first, 2),
        "ms": summary([get("/metrics") for _ in range(requests)], 2),
    }


def in_router(lab: Lab, *args: str, timeout: float) -> dict[str, Any]:
    argv = netns.ns_argv(lab.router_ns, [sys.executable, __file__, *args])
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    if done.returncode != 0:
        raise LabError(f"client failed: {done.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def conntrack_count(lab: Lab) -> int:
    """Entries in the router's conntrack table (conntrack(8) -C)."""
    return int(netns.nsrun(lab.router_ns, "conntrack", "-C").stdout.strip())


def mem(pid: int) -> dict[str, float]:
    s = proc_sample(pid)
    return {
        "rss_mb": round(s.rss_kb / 1024, 1),
        "peak_mb": round(s.hwm_kb / 1024, 1),
        "anon_mb": round(s.anon_kb / 1024, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "bench": "statuspage",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": host_info(),
        "requests": args.requests,
        "pages": args.pages,
        "seconds": args.seconds,
    }
    with Lab(load(args.config)) as lab:
        office = Office(lab)
        office.start(wait_active=None, timeout=30, args=("--http", f"{HOST}:{PORT}"))
        proc = office.daemon
        assert proc is not None
        wans = sorted(lab.lab_config.wans, key=lambda w: w.priority)
        office.wait_active(wans[0].name, timeout=30)
        time.sleep(args.quiet)  # the daemon settles (first history samples, dnsmasq up)
        out["rss_quiet"] = mem(proc.pid)
        say(f"quiet: {out['rss_quiet']}; {args.pages} page(s) for {args.seconds:g} s")
        out.update(in_router(lab, "--poll", str(args.pages), str(args.seconds), timeout=600))
        out["rss_after_pages"] = mem(proc.pid)
        say(f"after the pages: {out['rss_after_pages']}; {args.requests} requests per path")
        out.update(in_router(lab, "--latency", str(args.requests), timeout=600))
        out["rss_after_latency"] = mem(proc.pid)
        out["conntrack_entries_after_latency"] = conntrack_count(lab)
        out["metrics"] = in_router(lab, "--scrape", str(args.requests), timeout=300)
        out["rss_after_metrics"] = mem(proc.pid)
        say(f"after latency {out['rss_after_latency']}, /metrics {out['rss_after_metrics']}")
        code = office.stop()
        out["exit_code"] = code
    out["targets"] = {
        "page_load_max_ms": TARGET_PAGE_MS,
        "page_load_max_met": out["page_load_ms"]["max"] <= TARGET_PAGE_MS,
        "rss_mb": TARGET_RSS_MB,
        "rss_with_pages_met": out["rss_after_pages"]["peak_mb"] <= TARGET_RSS_MB,
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-c", "--config", type=os.path.abspath, default=str(OFFICE))
    ap.add_argument("--requests", type=int, default=200, help="sequential requests per path")
    ap.add_argument("--pages", type=int, default=5, help="open pages polling at once")
    ap.add_argument("--seconds", type=float, default=120.0, help="how long the pages poll")
    ap.add_argument("--quiet", type=float, default=20.0, help="settle time before measuring")
    ap.add_argument("--poll", nargs=2, metavar=("PAGES", "SECONDS"), help=argparse.SUPPRESS)
    ap.add_argument("--latency", type=int, metavar="REQUESTS", help=argparse.SUPPRESS)
    ap.add_argument("--scrape", type=int, metavar="REQUESTS", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.poll:
        print(json.dumps(poll(int(args.poll[0]), float(args.poll[1]))))
        return 0
    if args.latency:
        print(json.dumps(latency(args.latency)))
        return 0
    if args.scrape:
        print(json.dumps(scrape(args.scrape)))
        return 0
    return lab_main(lambda: run(args), (LabError,))


if __name__ == "__main__":
    sys.exit(main())
