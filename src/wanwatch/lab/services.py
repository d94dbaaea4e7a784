"""Servers of the lab's fake internet: a TCP "whoami" and an authoritative-style DNS.

Both run as processes the lab starts inside the internet namespace and stops by
PID. ICMP echo to the probe targets needs no server: the kernel answers for the
/32 addresses on ``lo``.

whoami protocol (TCP, port 8080): on every new connection the server sends one
JSON line ``{"peer": "<client address as seen here>", "port": N, "local": ...}``
and then echoes every byte it receives until the client closes. Since each ISP
masquerades its customers to its own public address, ``peer`` names the ISP a
connection came through; the echo keeps long-lived flows busy for
flow-survival tests.

Run as ``python -m wanwatch.lab.services whoami --listen ADDR ... [--port N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address
from pathlib import Path

WHOAMI_PORT = 8080
DNS_PORT = 53

# Bounds: a stray client loop cannot pile up connections or keep one open forever.
MAX_CONNECTIONS = 4000
IDLE_TIMEOUT = 900.0


# --------------------------------------------------------------------------- launch helpers


def whoami_argv(
    listen: Sequence[IPv4Address], port: int = WHOAMI_PORT, max_seconds: float = 24 * 3600
) -> list[str]:
    """argv of a whoami server on ``listen`` (run it inside the internet namespace)."""
    argv = [sys.executable, "-m", "wanwatch.lab.services", "whoami", "--port", str(port)]
    for a in listen:
        argv += ["--listen", str(a)]
    return [*argv, "--max-seconds", str(max_seconds)]


def dns_conf(listen: Sequence[IPv4Address], records: Mapping[str, IPv4Address]) -> str:
    """dnsmasq configuration of the fake internet's DNS server: our names, nothing else.

    ``no-resolv``/``no-hosts`` keep it from reading the host's resolv.conf and
    /etc/hosts (namespaces share the filesystem); ``bind-interfaces`` with
    explicit ``listen-address`` lets it coexist with other dnsmasq instances
    (LAB-NOTES). Names outside ``records`` under the same zones get NXDOMAIN,
    and nothing is forwarded anywhere.
    """
    lines = [
        "# wanwatch lab: fake-internet DNS (written by wanwatch.lab.services)",
        "no-resolv",
        "no-hosts",
        "bind-interfaces",
        f"port={DNS_PORT}",
        "log-queries",
        "log-facility=-",
    ]
    lines += [f"listen-address={a}" for a in listen]
    lines += [f"address=/{name}/{addr}" for name, addr in sorted(records.items())]
    # An empty address makes dnsmasq answer NXDOMAIN for the rest of each zone
    # (dnsmasq(8), --address), instead of REFUSED for lack of an upstream server.
    zones = sorted({name.split(".", 1)[1] for name in records if "." in name})
    lines += [f"address=/{zone}/" for zone in zones]
    return "\n".join(lines) + "\n"


def dnsmasq_argv(conf: Path, pid_file: Path, lease_file: Path) -> list[str]:
    """dnsmasq in the foreground with our own conf, pid and lease files (never the host's)."""
    return [
        "dnsmasq",
        "--keep-in-foreground",
        f"--conf-file={conf}",
        f"--pid-file={pid_file}",
        f"--dhcp-leasefile={lease_file}",
    ]


# --------------------------------------------------------------------------- whoami server


class _Whoami:
    def __init__(self, idle_timeout: float, max_connections: int) -> None:
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.open = 0
        self.served = 0
        self.refused = 0
        self.broken = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open >= self.max_connections:
            self.refused += 1
            writer.close()
            return
        self.open += 1
        self.served += 1
        peer = writer.get_extra_info("peername")
        local = writer.get_extra_info("sockname")
        try:
            hello = {"peer": peer[0], "port": peer[1], "local": local[0], "t": time.monotonic()}
            writer.write(json.dumps(hello).encode() + b"\n")
            await writer.drain()
            while data := await asyncio.wait_for(reader.read(65536), self.idle_timeout):
                writer.write(data)
                await writer.drain()
        except (TimeoutError, ConnectionError, OSError):
            # The peer vanished (reset after a NAT change, or idle): that is what
            # the flow tests provoke, so it is counted, not treated as a fault.
            self.broken += 1
        finally:
            self.open -= 1
            writer.close()


async def _serve(
    listen: Sequence[str], port: int, max_seconds: float, idle_timeout: float, max_conn: int
) -> None:
    state = _Whoami(idle_timeout, max_conn)
    servers = [await asyncio.start_server(state.handle, host, port) for host in listen]
    _emit({"ev": "listening", "listen": list(listen), "port": port, "t": time.monotonic()})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), max_seconds)
    except TimeoutError:
        _emit({"ev": "max_seconds", "t": time.monotonic()})
    for s in servers:
        s.close()
    _emit(
        {
            "ev": "stopped",
            "served": state.served,
            "broken": state.broken,
            "refused": state.refused,
            "t": time.monotonic(),
        }
    )


def _emit(obj: object) -> None:
    # This module's __main__ is a worker process: its stdout is its report.
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wanwatch.lab.services")
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("whoami", help="TCP whoami + echo server")
    w.add_argument("--listen", action="append", required=True)
    w.add_argument("--port", type=int, default=WHOAMI_PORT)
    w.add_argument("--max-seconds", type=float, default=24 * 3600)
    w.add_argument("--idle-timeout", type=float, default=IDLE_TIMEOUT)
    w.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS)
    args = parser.parse_args(argv)
    asyncio.run(
        _serve(args.listen, args.port, args.max_seconds, args.idle_timeout, args.max_connections)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
