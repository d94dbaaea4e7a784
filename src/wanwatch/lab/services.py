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

bulk protocol (TCP, port 5201): a source/sink for throughput. On a new
connection the server sends the same JSON hello line, then reads one JSON
request line ``{"mode": "source"|"sink", "until": T}`` (T is CLOCK_MONOTONIC,
one clock for every namespace). ``source``: it sends zeros until ``T`` and
closes. ``sink``: it counts what arrives until the client shuts its side down,
then answers ``{"bytes": N}`` and closes. Every connection ends by
``MAX_BULK_SECONDS`` whatever the client asked. (The client measures
throughput itself, from its kernel's TCP counters.)

Run as ``python -m wanwatch.lab.services whoami|bulk --listen ADDR ... [--port N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address
from pathlib import Path

WHOAMI_PORT = 8080
BULK_PORT = 5201  # iperf's port: what an admin would expect a throughput test on
DNS_PORT = 53

# Bounds: a stray client loop cannot pile up connections or keep one open forever.
MAX_CONNECTIONS = 4000
IDLE_TIMEOUT = 900.0
MAX_BULK_SECONDS = 300.0
BULK_CHUNK = 1 << 16
# Send buffer of a bulk socket (the kernel doubles it). Autotuned buffers grow to
# tcp_wmem's 4 MiB: seconds of backlog on a shaped link, sent after the run ends.
# 256 KiB is still many times a lab path's bandwidth-delay product.
BULK_SNDBUF = 256 * 1024
BULK_GRACE = 15.0  # how long a sink waits past ``until`` for the client's last bytes
_REQUEST_TIMEOUT = 10.0


# --------------------------------------------------------------------------- launch helpers


def whoami_argv(
    listen: Sequence[IPv4Address], port: int = WHOAMI_PORT, max_seconds: float = 24 * 3600
) -> list[str]:
    """argv of a whoami server on ``listen`` (run it inside the internet namespace)."""
    argv = [sys.executable, "-m", "wanwatch.lab.services", "whoami", "--port", str(port)]
    for a in listen:
        argv += ["--listen", str(a)]
    return [*argv, "--max-seconds", str(max_seconds)]


def bulk_argv(
    listen: Sequence[IPv4Address], port: int = BULK_PORT, max_seconds: float = 24 * 3600
) -> list[str]:
    """argv of a bulk source/sink server on ``listen`` (run it inside the internet namespace)."""
    argv = [sys.executable, "-m", "wanwatch.lab.services", "bulk", "--port", str(port)]
    for a in listen:
        argv += ["--listen", str(a)]
    return [*argv, "--max-seconds", str(max_seconds)]


def dns_conf(listen: Sequence[IPv4Address], records: Mapping[str, IPv4Address]) -> str:
    """dnsmasq configuration of the fake internet's DNS server: our names, nothing else.

    ``no-resolv``/``no-hosts`` keep it from reading the host's resolv.conf and
    /etc/hosts (namespaces share the filesystem); ``bind-interfaces`` with
    explicit ``listen-address`` lets it coexist with other dnsmasq instances
    (docs/lab-notes.md). Names outside ``records`` under the same zones get NXDOMAIN,
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


class _Server:
    """One lab server: bounded connections, a JSON hello line naming the peer as the
    server saw it (so a client can tell which ISP NATed it), then ``serve``."""

    # A peer that vanished (reset after a NAT change, idle, a cut) or sent nonsense
    # ends its own connection: the flow tests provoke it, so it is counted, not a fault.
    ENDS_CONNECTION: tuple[type[BaseException], ...] = (TimeoutError, ConnectionError, OSError)

    def __init__(self, max_connections: int) -> None:
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
            self.prepare(writer)
            hello = {"peer": peer[0], "port": peer[1], "local": local[0], "t": time.monotonic()}
            writer.write(json.dumps(hello).encode() + b"\n")
            await writer.drain()
            await self.serve(reader, writer)
        except self.ENDS_CONNECTION:
            self.broken += 1
        finally:
            self.open -= 1
            writer.close()

    def prepare(self, writer: asyncio.StreamWriter) -> None:
        """Socket options before the hello."""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class _Whoami(_Server):
    """Echoes whatever the client sends until it is idle for ``idle_timeout``."""

    def __init__(self, idle_timeout: float, max_connections: int) -> None:
        super().__init__(max_connections)
        self.idle_timeout = idle_timeout

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await asyncio.wait_for(reader.read(65536), self.idle_timeout):
            writer.write(data)
            await writer.drain()


class _Bulk(_Server):
    """Throughput source/sink; after the hello, one request line, then bytes."""

    ENDS_CONNECTION = (*_Server.ENDS_CONNECTION, ValueError, KeyError, TypeError)

    def prepare(self, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BULK_SNDBUF)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await asyncio.wait_for(reader.readline(), _REQUEST_TIMEOUT)
        req = json.loads(line)
        # Never longer than MAX_BULK_SECONDS, whatever the client asked.
        until = min(float(req["until"]), time.monotonic() + MAX_BULK_SECONDS)
        if req.get("mode") == "source":
            await self._source(writer, until)
        else:
            await self._sink(reader, writer, until)

    @staticmethod
    async def _source(writer: asyncio.StreamWriter, until: float) -> None:
        chunk = bytes(BULK_CHUNK)
        while time.monotonic() < until:
            writer.write(chunk)
            # A link that stops taking data (a cut) must not hold the connection forever.
            await asyncio.wait_for(writer.drain(), max(1.0, until - time.monotonic() + 1.0))

    @staticmethod
    async def _sink(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        until: float,
    ) -> None:
        total = 0
        # The client shuts down its side at ``until``; its send buffer still drains.
        deadline = until + BULK_GRACE
        while (left := deadline - time.monotonic()) > 0:
            data = await asyncio.wait_for(reader.read(BULK_CHUNK), left)
            if not data:
                break
            total += len(data)
        writer.write(json.dumps({"bytes": total}).encode() + b"\n")
        await writer.drain()


async def _serve(
    listen: Sequence[str],
    port: int,
    max_seconds: float,
    idle_timeout: float,
    max_conn: int,
    *,
    kind: str = "whoami",
) -> None:
    state: _Server = _Whoami(idle_timeout, max_conn) if kind == "whoami" else _Bulk(max_conn)
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
    b = sub.add_parser("bulk", help="TCP throughput source/sink")
    b.add_argument("--listen", action="append", required=True)
    b.add_argument("--port", type=int, default=BULK_PORT)
    b.add_argument("--max-seconds", type=float, default=24 * 3600)
    b.add_argument("--max-connections", type=int, default=256)
    args = parser.parse_args(argv)
    idle = getattr(args, "idle_timeout", IDLE_TIMEOUT)
    asyncio.run(
        _serve(args.listen, args.port, args.max_seconds, idle, args.max_connections, kind=args.cmd)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
