"""``python -m wanwatch.lab.worker connect|flow|bulk|hop|dns|ping|rst``: one traffic worker."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from wanwatch.lab.services import BULK_PORT, WHOAMI_PORT
from wanwatch.lab.worker import bulk, dns, raw, tcp
from wanwatch.lab.worker.limits import (
    DEFAULT_MAX_SECONDS,
    MAX_ATTEMPTS,
    MAX_BULK_FLOWS,
    MAX_BULK_SECONDS,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wanwatch.lab.worker")
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("connect", help="new TCP connections to whoami every --interval")
    c.add_argument("--dst", required=True)
    c.add_argument("--port", type=int, default=WHOAMI_PORT)
    c.add_argument("--interval", type=float, default=0.02)
    c.add_argument("--timeout", type=float, default=1.0)
    c.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS)
    c.add_argument("--max-attempts", type=int, default=MAX_ATTEMPTS)
    c.add_argument("--until-peer", default=None, help="stop at the first success seen from this")
    c.add_argument("--until-after", type=float, default=0.0, help="...started at/after this")
    c.add_argument("--source", action="append", help="bind attempt n to the n-th (cycling)")
    f = sub.add_parser("flow", help="one long-lived echo connection")
    f.add_argument("--dst", required=True)
    f.add_argument("--port", type=int, default=WHOAMI_PORT)
    f.add_argument("--interval", type=float, default=0.1)
    f.add_argument("--stall-after", type=float, default=1.0)
    f.add_argument("--max-seconds", type=float, default=600.0)
    f.add_argument("--source", default=None, help="bind to this client address")
    b = sub.add_parser("bulk", help="parallel bulk TCP flows to the bulk server")
    b.add_argument("--dst", required=True)
    b.add_argument("--port", type=int, default=BULK_PORT)
    b.add_argument("--flows", type=int, default=1)
    b.add_argument("--seconds", type=float, default=5.0)
    b.add_argument("--warmup", type=float, default=1.0)
    b.add_argument("--direction", choices=["down", "up"], default="down")
    b.add_argument("--source", action="append", help="bind flow n to the n-th (cycling)")
    h = sub.add_parser("hop", help="who answers a TTL-limited UDP probe")
    h.add_argument("--dst", required=True)
    h.add_argument("--ttl", type=int, default=2)
    h.add_argument("--timeout", type=float, default=1.0)
    h.add_argument("--tries", type=int, default=3)
    d = sub.add_parser("dns", help="one A query over UDP")
    d.add_argument("--server", required=True)
    d.add_argument("--name", required=True)
    d.add_argument("--timeout", type=float, default=1.0)
    d.add_argument("--tries", type=int, default=3)
    p = sub.add_parser("ping", help="ICMP echo, summary of RTTs")
    p.add_argument("--dst", required=True)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--source", default=None)
    r = sub.add_parser("rst", help="TCP resets of no connection (conntrack: invalid)")
    r.add_argument("--dst", required=True)
    r.add_argument("--port", type=int, default=WHOAMI_PORT)
    r.add_argument("--count", type=int, default=20)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the worker the arguments name, within its bounds; 0 when it has reported."""
    args = _parser().parse_args(argv)
    if args.cmd == "connect":
        args.max_attempts = min(args.max_attempts, MAX_ATTEMPTS)
        asyncio.run(tcp.connect_loop(args))
    elif args.cmd == "flow":
        tcp.flow(args)
    elif args.cmd == "bulk":
        args.flows = max(1, min(args.flows, MAX_BULK_FLOWS))
        args.seconds = min(args.seconds, MAX_BULK_SECONDS)
        bulk.bulk(args)
    elif args.cmd == "hop":
        raw.hop(args)
    elif args.cmd == "dns":
        dns.dns(args)
    elif args.cmd == "rst":
        args.count = min(args.count, MAX_ATTEMPTS)
        raw.rst(args)
    else:
        args.count = min(args.count, MAX_ATTEMPTS)
        raw.ping(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
