"""TCP workers: new connections to the whoami server on a fixed grid; one long-lived echo flow."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import socket
import time
from ipaddress import ip_address, ip_network
from typing import Any

from wanwatch.lab.worker.report import emit, errname
from wanwatch.lab.worker.stop import stop_event, stop_flag


def read_json_line(sock: socket.socket, what: str) -> Any:
    """The JSON object on the next line ``sock`` sends; ECONNRESET if it closes before ``what``."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionResetError(errno.ECONNRESET, f"closed before {what}")
        line += chunk
    return json.loads(line)


async def connect_loop(args: argparse.Namespace) -> None:
    stop = stop_event()
    start = time.monotonic()
    end = start + args.max_seconds
    pending: set[asyncio.Task[None]] = set()
    # Overlapping attempts, but never more than one timeout's worth of them.
    max_pending = int(args.timeout / args.interval) + 2
    done = asyncio.Event()

    sources = args.source or [None]

    async def attempt(seq: int) -> None:
        t0 = time.monotonic()
        src = sources[seq % len(sources)]
        rec: dict[str, Any] = {"seq": seq, "t0": t0, "src": src}
        writer = None
        try:
            async with asyncio.timeout(args.timeout):
                reader, writer = await asyncio.open_connection(
                    args.dst, args.port, local_addr=(src, 0) if src else None
                )
                rec["src"], rec["sport"] = writer.get_extra_info("sockname")[:2]
                hello = json.loads(await reader.readline())
            rec.update(ok=True, peer=hello["peer"])
        except (OSError, TimeoutError, ValueError, KeyError) as exc:
            rec.update(ok=False, error=errname(exc))
        finally:
            if writer is not None:
                writer.close()
        rec["t1"] = time.monotonic()
        emit(rec)
        if (
            rec["ok"]
            and args.until_peer is not None
            and ip_address(rec["peer"]) in ip_network(args.until_peer)
            and t0 >= args.until_after
        ):
            done.set()

    seq = 0
    next_at = start
    while not stop.is_set() and not done.is_set() and seq < args.max_attempts:
        now = time.monotonic()
        if now >= end:
            break
        if now >= next_at and len(pending) < max_pending:
            task = asyncio.create_task(attempt(seq))
            pending.add(task)
            task.add_done_callback(pending.discard)
            seq += 1
            # Fixed grid, so a slow loop iteration does not shift later attempts.
            next_at += args.interval * max(1, int((now - next_at) / args.interval) + 1)
        await asyncio.sleep(max(0.0, min(next_at - time.monotonic(), 0.005)))
    if pending:
        await asyncio.wait(pending, timeout=args.timeout + 0.5)
    emit({"ev": "end", "attempts": seq, "t": time.monotonic()})


def flow(args: argparse.Namespace) -> None:
    stopped = stop_flag()
    end = time.monotonic() + args.max_seconds
    try:
        sock = socket.create_connection(
            (args.dst, args.port),
            timeout=args.stall_after * 3,
            source_address=(args.source, 0) if args.source else None,
        )
        hello = read_json_line(sock, "the whoami line")
    except (OSError, ValueError) as exc:
        emit({"ev": "broken", "t": time.monotonic(), "reason": "connect: " + errname(exc)})
        return
    emit({"ev": "connected", "t": time.monotonic(), "peer": hello["peer"]})
    sock.settimeout(0.05)
    seq = 0
    buf = b""
    try:
        while not stopped() and time.monotonic() < end:
            seq += 1
            sent = time.monotonic()
            sock.sendall(f"{seq}\n".encode())
            stalled = False
            while not stopped() and time.monotonic() < end:
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    if not stalled and time.monotonic() - sent > args.stall_after:
                        stalled = True
                        emit({"ev": "stall", "since": sent, "t": time.monotonic(), "seq": seq})
                    continue
                if not chunk:
                    emit({"ev": "broken", "t": time.monotonic(), "reason": "eof"})
                    return
                buf += chunk
                if f"{seq}\n".encode() in buf:
                    buf = b""
                    now = time.monotonic()
                    if stalled:
                        emit({"ev": "resume", "t": now, "seq": seq})
                    emit({"ev": "ok", "t": now, "seq": seq, "rtt_ms": (now - sent) * 1000})
                    break
            time.sleep(max(0.0, sent + args.interval - time.monotonic()))
    except OSError as exc:
        emit({"ev": "broken", "t": time.monotonic(), "reason": errname(exc)})
        return
    finally:
        sock.close()
    emit({"ev": "end", "t": time.monotonic(), "exchanges": seq})
