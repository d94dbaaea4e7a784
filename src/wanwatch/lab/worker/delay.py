"""Delay and jitter without netem: a userspace NFQUEUE releaser.

This kernel has no ``tc netem`` and nft's own ``queue`` statement is missing,
but the iptables ``NFQUEUE`` target works (docs/lab-notes.md). The fault code sends an
ISP's packets to a queue; this process, started inside that ISP's namespace,
holds each packet for ``delay ± jitter`` (uniform, drawn per packet like
netem's default, so packets may be reordered when jitter exceeds their
spacing) and then accepts it. The rule uses ``--queue-bypass``, so with no
releaser bound packets pass undelayed instead of being dropped.

On SIGTERM/SIGINT every held packet is released at once, so clearing a delay
never turns into a burst of loss. Bounded: it exits after ``--max-seconds``,
and never holds more than ``MAX_HELD`` packets (beyond that it passes them
on undelayed).

Run as the worker ``delay --queue N --delay-ms D [--jitter-ms J]`` (faults.py
starts it; needs pip ``NetfilterQueue``, built against ``libnetfilter-queue-dev``).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import random
import selectors
import signal
import socket
import time
from typing import Any

from wanwatch.lab.worker.report import emit
from wanwatch.lab.worker.stop import stop_flag

MAX_HELD = 20000
# Kernel-side queue length (packets waiting for our verdict, held ones included).
QUEUE_MAXLEN = 30000


def hold_time(delay: float, jitter: float, rng: random.Random) -> float:
    """Seconds one packet is held: ``delay ± jitter`` uniformly, never negative."""
    return max(0.0, delay + rng.uniform(-jitter, jitter)) if jitter else delay


class _Held:
    """Packets held until due, released in due order; beyond ``MAX_HELD`` passed at once."""

    def __init__(self, delay: float, jitter: float) -> None:
        self.delay = delay
        self.jitter = jitter
        self.rng = random.Random()
        self.heap: list[tuple[float, int, Any]] = []
        self.order = itertools.count()
        self.stats = {"packets": 0, "max_held": 0, "overflow": 0}

    def on_packet(self, pkt: Any) -> None:
        self.stats["packets"] += 1
        if len(self.heap) >= MAX_HELD:
            self.stats["overflow"] += 1
            pkt.accept()
            return
        due = time.monotonic() + hold_time(self.delay, self.jitter, self.rng)
        heapq.heappush(self.heap, (due, next(self.order), pkt))
        self.stats["max_held"] = max(self.stats["max_held"], len(self.heap))

    def next_due(self) -> float | None:
        return self.heap[0][0] if self.heap else None

    def release(self, until: float) -> None:
        """Accept every packet due at or before ``until``."""
        while self.heap and self.heap[0][0] <= until:
            heapq.heappop(self.heap)[2].accept()


def run(queue: int, delay: float, jitter: float, max_seconds: float) -> dict[str, Any]:
    """Hold and release packets of ``queue`` until signalled or ``max_seconds`` pass."""
    from netfilterqueue import COPY_META, NetfilterQueue

    held = _Held(delay, jitter)
    # A signal only writes a byte to this pair (signal.set_wakeup_fd), which
    # wakes the select below at once; the loop does the work.
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    stopped = stop_flag()
    signal.set_wakeup_fd(wake_w.fileno())

    nfq = NetfilterQueue()
    # COPY_META: we never look at the payload, only hold and release.
    nfq.bind(queue, held.on_packet, max_len=QUEUE_MAXLEN, mode=COPY_META)
    sel = selectors.DefaultSelector()
    sel.register(nfq.get_fd(), selectors.EVENT_READ, "nfq")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    emit({"ev": "bound", "queue": queue, "t": time.monotonic()})
    end = time.monotonic() + max_seconds
    try:
        while not stopped():
            now = time.monotonic()
            if now >= end:
                break
            due = held.next_due()
            timeout = min(end - now, due - now if due is not None else 0.5)
            for key, _ in sel.select(max(0.0, timeout)):
                if key.data == "nfq":
                    nfq.run(block=False)
                else:
                    wake_r.recv(64)
            held.release(time.monotonic())
    finally:
        held.release(math.inf)
        nfq.unbind()
        sel.close()
        signal.set_wakeup_fd(-1)
        wake_r.close()
        wake_w.close()
    return held.stats


def delay(args: argparse.Namespace) -> None:
    """The releaser of ``--queue``; reports what it held once it stops."""
    stats = run(args.queue, args.delay_ms / 1000, args.jitter_ms / 1000, args.max_seconds)
    emit({"ev": "stopped", **stats, "t": time.monotonic()})
