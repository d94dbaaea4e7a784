"""The flapper: one fault of an ISP set and cleared in turn, inside the ISP's namespace.

faults.py starts it with the very commands its own functions use: the nft text
that sets the blackhole and the one that removes it (``--nft-on``, ``--nft-off``),
or the interface to take down for a carrier loss (``--link``). Bounded by
``--cycles``; on SIGTERM, and at the end, it clears the fault before it exits.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from wanwatch.errors import LabError
from wanwatch.lab import netns
from wanwatch.lab.worker.report import emit
from wanwatch.lab.worker.stop import stop_flag

POLL = 0.01  # how often a period checks for SIGTERM


def _apply(args: argparse.Namespace, on: bool) -> None:
    if args.link is not None:
        netns.sh(["ip", "link", "set", args.link, "down" if on else "up"])
    else:
        netns.sh(["nft", "-f", "-"], input=args.nft_on if on else args.nft_off)


def flap(args: argparse.Namespace) -> int:
    """``--cycles`` of (fault set ``--down`` s, cleared ``--up`` s); 1 if a command failed."""
    stopped = stop_flag()
    try:
        try:
            for cycle in range(args.cycles):
                for on, period in ((True, args.down), (False, args.up)):
                    t0 = time.monotonic()
                    _apply(args, on)
                    ev = {"ev": "down" if on else "up", "cycle": cycle, "t_start": t0}
                    emit({**ev, "t_done": time.monotonic()})
                    end = t0 + period
                    while not stopped() and time.monotonic() < end:
                        time.sleep(min(POLL, max(0.0, end - time.monotonic())))
                    if stopped():
                        return 0
        finally:
            _apply(args, False)
            emit({"ev": "finished", "t": time.monotonic()})
    except (LabError, subprocess.TimeoutExpired) as exc:
        sys.stderr.write(f"flap: {exc}\n")
        return 1
    return 0
