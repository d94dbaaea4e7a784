"""The fake internet's TCP servers, run inside the internet namespace: whoami and bulk.

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

The lab starts them through services.py; they stop on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from collections.abc import Sequence

from wanwatch.lab.worker.report import emit
from wanwatch.lab.worker.stop import stop_event

WHOAMI_PORT = 8080
BULK_PORT = 5201  # iperf's port: what an admin would expect a throughput test on

# Bounds: a stray client loop cannot pile up connections or keep one open forever.
MAX_CONNECTIONS = 4000
MAX_BULK_CONNECTIONS = 256
IDLE_TIMEOUT = 900.0
MAX_BULK_SECONDS = 300.0
BULK_CHUNK = 1 << 16
# Send buffer of a bulk socket (the kernel doubles it). Autotuned buffers grow to
# tcp_wmem's 4 MiB: seconds of backlog on a shaped link, sent after the run ends.
# 256 KiB is still many times a lab path's bandwidth-delay product.
BULK_SNDBUF = 256 * 1024
BULK_GRACE = 15.0  # how long a sink waits past ``until`` for the client's last bytes
_REQUEST_TIMEOUT = 10.0


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


async def _serve(state: _Server, listen: Sequence[str], port: int, max_seconds: float) -> None:
    servers = [await asyncio.start_server(state.handle, host, port) for host in listen]
    emit({"ev": "listening", "listen": list(listen), "port": port, "t": time.monotonic()})
    stop = stop_event()
    try:
        await asyncio.wait_for(stop.wait(), max_seconds)
    except TimeoutError:
        emit({"ev": "max_seconds", "t": time.monotonic()})
    for s in servers:
        s.close()
    emit(
        {
            "ev": "stopped",
            "served": state.served,
            "broken": state.broken,
            "refused": state.refused,
            "t": time.monotonic(),
        }
    )


def whoami(args: argparse.Namespace) -> None:
    """The whoami + echo server on every ``--listen`` address, for ``--max-seconds``."""
    state = _Whoami(args.idle_timeout, args.max_connections)
    asyncio.run(_serve(state, args.listen, args.port, args.max_seconds))


def bulk_server(args: argparse.Namespace) -> None:
    """The bulk source/sink server on every ``--listen`` address, for ``--max-seconds``."""
    state = _Bulk(args.max_connections)
    asyncio.run(_serve(state, args.listen, args.port, args.max_seconds))
