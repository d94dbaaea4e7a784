"""``python -m wanwatch.lab.worker <command> ...``: the one entry point of every lab worker.

Each command clamps its arguments to the bounds in ``limits`` before it runs,
whatever its caller asked.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any

from wanwatch.lab.worker import bulk, delay, dns, flap, raw, scan, servers, stream, tcp, web
from wanwatch.lab.worker.limits import (
    DEFAULT_MAX_SECONDS,
    MAX_ATTEMPTS,
    MAX_BULK_FLOWS,
    MAX_BULK_SECONDS,
    MAX_FLAP_CYCLES,
    MAX_LISTEN_SECONDS,
    MAX_SCAN_PORTS,
    MAX_SCAN_TIMEOUT,
    MAX_SERVER_SECONDS,
    MAX_STREAM_RATE,
    MAX_STREAM_SECONDS,
    SINK_PORT,
)
from wanwatch.lab.worker.servers import BULK_PORT, WHOAMI_PORT

Run = Callable[[argparse.Namespace], int | None]
Subparsers = Any  # argparse's _SubParsersAction is private


# --------------------------------------------------------------------------- bounded runs


def _connect(args: argparse.Namespace) -> None:
    args.max_attempts = min(args.max_attempts, MAX_ATTEMPTS)
    asyncio.run(tcp.connect_loop(args))


def _bulk(args: argparse.Namespace) -> None:
    args.flows = max(1, min(args.flows, MAX_BULK_FLOWS))
    args.seconds = min(args.seconds, MAX_BULK_SECONDS)
    bulk.bulk(args)


def _counted(run: Callable[[argparse.Namespace], None]) -> Run:
    """``run`` with ``--count`` clamped to MAX_ATTEMPTS (ping, rst)."""

    def bounded(args: argparse.Namespace) -> None:
        args.count = min(args.count, MAX_ATTEMPTS)
        run(args)

    return bounded


def _stream(args: argparse.Namespace) -> None:
    args.rate = max(1.0, min(args.rate, MAX_STREAM_RATE))
    args.seconds = min(args.seconds, MAX_STREAM_SECONDS)
    args.rotate = max(0.05, args.rotate)
    stream.stream(args)


def _sink(args: argparse.Namespace) -> None:
    args.seconds = min(args.seconds, MAX_STREAM_SECONDS)
    stream.sink(args)


def _flap(args: argparse.Namespace) -> int:
    args.cycles = min(args.cycles, MAX_FLAP_CYCLES)
    return flap.flap(args)


def _ports(args: argparse.Namespace) -> None:
    args.tcp = args.tcp[:MAX_SCAN_PORTS]
    args.udp = args.udp[:MAX_SCAN_PORTS]


def _listen(args: argparse.Namespace) -> None:
    _ports(args)
    args.max_seconds = min(args.max_seconds, MAX_LISTEN_SECONDS)
    scan.listen(args)


def _scan(args: argparse.Namespace) -> None:
    _ports(args)
    args.timeout = max(0.01, min(args.timeout, MAX_SCAN_TIMEOUT))
    scan.scan(args)


def _web(args: argparse.Namespace) -> None:
    args.max_seconds = min(args.max_seconds, MAX_SERVER_SECONDS)
    web.web(args)


def _browser(args: argparse.Namespace) -> None:
    # Imported here: selenium costs every other worker's start-up, and only this one uses it.
    from wanwatch.lab.worker.browser import browser

    browser(args)


# --------------------------------------------------------------------------- arguments


def _command(sub: Subparsers, name: str, run: Run, help: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help)
    parser.set_defaults(run=run)
    return parser


def _client_parsers(sub: Subparsers) -> None:
    """Traffic from a lab client: tcp.py, bulk.py, raw.py, dns.py."""
    c = _command(sub, "connect", _connect, "new TCP connections to whoami every --interval")
    c.add_argument("--dst", required=True)
    c.add_argument("--port", type=int, default=WHOAMI_PORT)
    c.add_argument("--interval", type=float, default=0.02)
    c.add_argument("--timeout", type=float, default=1.0)
    c.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS)
    c.add_argument("--max-attempts", type=int, default=MAX_ATTEMPTS)
    c.add_argument(
        "--until-peer",
        default=None,
        help="stop at the first success seen from this address or network",
    )
    c.add_argument("--until-after", type=float, default=0.0, help="...started at/after this")
    c.add_argument("--source", action="append", help="bind attempt n to the n-th (cycling)")
    f = _command(sub, "flow", tcp.flow, "one long-lived echo connection")
    f.add_argument("--dst", required=True)
    f.add_argument("--port", type=int, default=WHOAMI_PORT)
    f.add_argument("--interval", type=float, default=0.1)
    f.add_argument("--stall-after", type=float, default=1.0)
    f.add_argument("--max-seconds", type=float, default=600.0)
    f.add_argument("--source", default=None, help="bind to this client address")
    b = _command(sub, "bulk", _bulk, "parallel bulk TCP flows to the bulk server")
    b.add_argument("--dst", required=True)
    b.add_argument("--port", type=int, default=BULK_PORT)
    b.add_argument("--flows", type=int, default=1)
    b.add_argument("--seconds", type=float, default=5.0)
    b.add_argument("--warmup", type=float, default=1.0)
    b.add_argument("--direction", choices=["down", "up"], default="down")
    b.add_argument("--source", action="append", help="bind flow n to the n-th (cycling)")
    h = _command(sub, "hop", raw.hop, "who answers a TTL-limited UDP probe")
    h.add_argument("--dst", required=True)
    h.add_argument("--ttl", type=int, default=2)
    h.add_argument("--timeout", type=float, default=1.0)
    h.add_argument("--tries", type=int, default=3)
    d = _command(sub, "dns", dns.dns, "one A (or AAAA) query over UDP")
    d.add_argument("--server", required=True, help="an IPv4 or IPv6 address")
    d.add_argument("--name", required=True)
    d.add_argument("--type", choices=sorted(dns.QTYPES), default="A")
    d.add_argument("--timeout", type=float, default=1.0)
    d.add_argument("--tries", type=int, default=3)
    d.add_argument("--connect", type=int, default=None, help="then at once a TCP port there")
    p = _command(sub, "ping", _counted(raw.ping), "ICMP echo, summary of RTTs")
    p.add_argument("--dst", required=True)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--source", default=None)
    r = _command(sub, "rst", _counted(raw.rst), "TCP resets of no connection (conntrack: invalid)")
    r.add_argument("--dst", required=True)
    r.add_argument("--port", type=int, default=WHOAMI_PORT)
    r.add_argument("--count", type=int, default=20)


def _stream_parsers(sub: Subparsers) -> None:
    """``stream`` and ``sink``: steady background load (stream.py)."""
    st = _command(sub, "stream", _stream, "packets at a steady rate: ICMP echo or one-way UDP")
    st.add_argument("--dst", required=True)
    st.add_argument("--rate", type=float, default=500.0)
    st.add_argument("--seconds", type=float, default=60.0)
    st.add_argument("--proto", choices=["icmp", "udp"], default="icmp")
    st.add_argument("--port", type=int, default=SINK_PORT)
    st.add_argument("--rotate", type=float, default=1.0, help="a new flow every this many s")
    sk = _command(sub, "sink", _sink, "a UDP port that reads and never answers")
    sk.add_argument("--port", type=int, default=SINK_PORT)
    sk.add_argument("--seconds", type=float, default=60.0)


def _server_parsers(sub: Subparsers) -> None:
    """The fake internet's TCP servers (servers.py) and web server or an ISP's portal (web.py)."""
    w = _command(sub, "whoami", servers.whoami, "TCP whoami + echo server")
    w.add_argument("--listen", action="append", required=True)
    w.add_argument("--port", type=int, default=WHOAMI_PORT)
    w.add_argument("--max-seconds", type=float, default=24 * 3600)
    w.add_argument("--idle-timeout", type=float, default=servers.IDLE_TIMEOUT)
    w.add_argument("--max-connections", type=int, default=servers.MAX_CONNECTIONS)
    b = _command(sub, "bulk-server", servers.bulk_server, "TCP throughput source/sink")
    b.add_argument("--listen", action="append", required=True)
    b.add_argument("--port", type=int, default=BULK_PORT)
    b.add_argument("--max-seconds", type=float, default=24 * 3600)
    b.add_argument("--max-connections", type=int, default=servers.MAX_BULK_CONNECTIONS)
    h = _command(sub, "web", _web, "HTTP: 204 on /generate_204, or a captive portal")
    h.add_argument("--listen", action="append", required=True)
    h.add_argument("--port", type=int, default=80)
    h.add_argument("--mode", choices=["ok", "portal", "page"], default="ok")
    h.add_argument("--location", default=web.PORTAL_LOCATION, help="where a portal redirects")
    h.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS)


def _scan_parsers(sub: Subparsers) -> None:
    """What a segment can reach (scan.py): listeners that answer, and a port scan."""
    ls = _command(sub, "listen", _listen, "accept TCP, echo UDP, on every address")
    ls.add_argument("--max-seconds", type=float, default=300.0)
    sc = _command(sub, "scan", _scan, "the state of each port of one destination")
    sc.add_argument("--dst", required=True)
    sc.add_argument("--timeout", type=float, default=1.0)
    for p in (ls, sc):
        p.add_argument("--tcp", type=int, action="append", default=[])
        p.add_argument("--udp", type=int, action="append", default=[])


def _isp_parsers(sub: Subparsers) -> None:
    """Faults inside an ISP's namespace (delay.py, flap.py) and the status page's browser."""
    d = _command(sub, "delay", delay.delay, "hold NFQUEUE packets for delay ± jitter")
    d.add_argument("--queue", type=int, required=True)
    d.add_argument("--delay-ms", type=float, required=True)
    d.add_argument("--jitter-ms", type=float, default=0.0)
    d.add_argument("--max-seconds", type=float, default=3600.0)
    f = _command(sub, "flap", _flap, "set and clear one fault in turn")
    f.add_argument("--down", type=float, required=True, help="seconds with the fault set")
    f.add_argument("--up", type=float, required=True, help="seconds with it cleared")
    f.add_argument("--cycles", type=int, required=True)
    fault = f.add_mutually_exclusive_group(required=True)
    fault.add_argument("--link", help="the fault: this interface down")
    fault.add_argument("--nft-on", help="the fault: this nft script (with --nft-off)")
    f.add_argument("--nft-off", help="the nft script that clears it")
    br = _command(sub, "browser", _browser, "the status page in headless chromium")
    br.add_argument("--url", required=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wanwatch.lab.worker")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _client_parsers(sub)
    _stream_parsers(sub)
    _server_parsers(sub)
    _scan_parsers(sub)
    _isp_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the worker the arguments name, within its bounds; 0 when it has reported."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.cmd == "flap" and args.nft_on is not None and args.nft_off is None:
        parser.error("flap --nft-on needs --nft-off")
    run: Run = args.run
    return run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
