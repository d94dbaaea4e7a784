"""The daemon's wall clock moved (libfaketime, its processes only); the host's is untouched."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wanwatch.daemon.control import request
from wanwatch.errors import LabError
from wanwatch.lab import netns
from wanwatch.lab.chaos.injected import Injected, Timer
from wanwatch.lab.office import Office

# libfaketime (Debian package libfaketime, pulled in by faketime) lives under the
# multiarch directory; FAKETIME_TIMESTAMP_FILE with FAKETIME_NO_CACHE=1 makes every
# clock read look at the file again, so the offset changes while the process runs
# (faketime(1), libfaketime README "Changing the 'specified fake time' while running").
FAKETIME_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"
_SLEEP_SHIM = """\
#define _GNU_SOURCE
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req,
                    struct timespec *rem) {
    return syscall(SYS_clock_nanosleep, clock, flags, req, rem) == -1 ? errno : 0;
}
"""


class WallClock:
    """A wall-clock offset for one process tree, through libfaketime; the host's clock
    (not namespaced) is never touched. Monotonic time stays real.

    libfaketime 0.9.10 (Debian 12) shifts the deadline of ``clock_nanosleep(
    CLOCK_MONOTONIC, TIMER_ABSTIME)`` by the wall clock even when monotonic time is
    not faked, and the kernel refuses it (EINVAL); Python 3.11's ``time.sleep``
    makes exactly that call (libfaketime issue #426, wolfcw/libfaketime on GitHub).
    A shim loaded first passes that one call straight to the kernel.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.shim = path.with_name("monotonic-sleep.so")
        self.library: Path | None = None

    def prepare(self) -> None:
        """Find libfaketime, build the shim, start at offset +0 (once)."""
        if self.library is not None:
            return
        found = sorted(Path("/").glob(FAKETIME_GLOB.lstrip("/")))
        if not found:
            raise LabError(f"libfaketime not found ({FAKETIME_GLOB}): install faketime")
        netns.sh(["gcc", "-O2", "-shared", "-fPIC", "-o", str(self.shim), "-x", "c", "-"],
                 input=_SLEEP_SHIM)  # fmt: skip
        self.set("+0")
        self.library = found[0]

    def env(self) -> dict[str, str]:
        self.prepare()
        return {
            "LD_PRELOAD": f"{self.shim}:{self.library}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
        }

    def set(self, offset: str) -> Injected:
        """Shift the faked wall clock to ``offset`` from the real one ("+1h", "-1h", "+0")."""
        t = Timer("wall_clock", offset)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(offset + "\n")
        tmp.replace(self.path)
        return t.done()

    @contextlib.contextmanager
    def children(self) -> Iterator[None]:
        """Processes started inside this block (e.g. ``Office.start``) run on the faked clock."""
        saved = {k: os.environ.get(k) for k in self.env()}
        os.environ.update(self.env())
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@dataclass(frozen=True)
class ClockSpell:
    """What ``status`` said, polled every 100 ms, while the wall clock sat at one offset."""

    offset: str
    jump: Injected
    states: frozenset[str]  # every uplink state seen
    actives: frozenset[tuple[str, ...]]  # every set of carrying uplinks seen
    max_rtt_ms: float | None  # None: some uplink had no RTT at some poll
    max_loss_pct: float
    replies: dict[str, int]  # probe replies per uplink over the spell


def clock_spells(
    office: Office, clock: WallClock, offsets: tuple[str, ...], seconds: float
) -> list[ClockSpell]:
    """Move the wall clock of ``office``'s daemon (running on ``clock``) to each offset in
    turn and watch its status for ``seconds`` at each."""
    out = []
    for offset in offsets:
        jump = clock.set(offset)
        first = office.status()
        states: set[str] = set()
        actives: set[tuple[str, ...]] = set()
        rtts: list[float | None] = []
        losses: list[float] = []
        end = time.monotonic() + seconds
        while True:
            # Generous: under the preload a Python process's loop wakes late (a bare
            # asyncio loop with one busy thread: up to ~50 ms under libfaketime 0.9.10,
            # ~15 ms without; bench/README.md, faults), and right after a jump the
            # daemon has answered `status` more than 2 s late. A slow answer is judged
            # by the bench, not here.
            st = request(office.socket, "status", timeout=10.0)
            for w in st["wans"]:
                states.add(str(w["state"]))
                rtts.append(w["rtt_ms"])
                losses.append(float(w["loss_pct"]))
            actives.add(tuple(st["active"]))
            if time.monotonic() >= end:
                break
            time.sleep(0.1)
        replies = {
            w["name"]: int(w["probes"]["replies"]) - int(v["probes"]["replies"])
            for w, v in zip(st["wans"], first["wans"], strict=True)
        }
        worst = None if None in rtts else max(float(r) for r in rtts if r is not None)
        out.append(
            ClockSpell(
                offset,
                jump,
                frozenset(states),
                frozenset(actives),
                worst,
                max(losses),
                replies,
            )
        )
    return out
