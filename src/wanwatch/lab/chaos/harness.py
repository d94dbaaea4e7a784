"""The test bed of the fault matrix: a LAN client's view across a fault, and a daemon kept
healthy (running, settled, its footprint whole) between faults."""

from __future__ import annotations

import contextlib
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from wanwatch.config import load
from wanwatch.errors import LabError
from wanwatch.lab.chaos.clock import WallClock
from wanwatch.lab.chaos.readback import Footprint, wait_whole
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import Attempt, ConnectLoop, Flow, FlowReport


@dataclass(frozen=True)
class Outcome:
    """What a LAN client saw across a fault: new connections and one long-lived flow."""

    attempts: tuple[Attempt, ...]
    flow: FlowReport | None  # None: no flow was kept (no uplink carried when it began)

    def failed(self, start: float, end: float = float("inf")) -> list[Attempt]:
        """Connections started in [start, end) that failed."""
        return [a for a in self.attempts if start <= a.t0 < end and not a.ok]

    def errors(self, start: float, end: float = float("inf")) -> dict[str, int]:
        """How the connections started in [start, end) failed: error -> count."""
        return dict(Counter(str(a.error) for a in self.failed(start, end)))

    def first_ok(self, after: float, via: str | None = None) -> Attempt | None:
        """The first connection started at/after ``after`` that was answered (via ``via``)."""
        hits = [a for a in self.attempts if a.ok and a.t0 >= after and via in (None, a.isp)]
        return min(hits, key=lambda a: a.t1, default=None)

    @property
    def flow_survived(self) -> bool | None:
        return None if self.flow is None else self.flow.alive

    @property
    def longest_stall(self) -> float:
        """Seconds of the flow's longest wait for an echo (0 if it never stalled)."""
        stalls = self.flow.stalls if self.flow is not None else []
        ends = [(b if b is not None else time.monotonic()) - a for a, b in stalls]
        return max(ends, default=0.0)


class Watch:
    """A LAN client across a fault: one long-lived flow through the uplink carrying now,
    and a new TCP connection every ``interval`` (each bounded by ``timeout``).

    ``with Watch(lab, "ether3") as w: inject...; w.loop.first_success(...)``; then
    :meth:`outcome` (or leaving the block) stops both and reports.
    """

    def __init__(
        self,
        lab: Lab,
        client: str,
        *,
        interval: float = 0.02,
        timeout: float = 1.0,
        max_seconds: float = 120.0,
        flow: bool = True,
    ) -> None:
        self.flow: Flow | None = None
        if flow:
            self.flow = Flow(lab, client, interval=0.05, stall_after=0.5, max_seconds=max_seconds)
        self.loop = ConnectLoop(
            lab, client, interval=interval, timeout=timeout, max_seconds=max_seconds
        )
        self._outcome: Outcome | None = None

    def __enter__(self) -> Watch:
        try:
            if self.flow is not None:
                self.flow.start()
                self.flow.wait_connected(time.monotonic() + 10)
            self.loop.start()
            self.loop.wait_started(time.monotonic() + 10)
        except BaseException:
            self.outcome()
            raise
        return self

    def exchanges(self) -> int:
        """Echoes the flow has had so far (0 without a flow)."""
        return 0 if self.flow is None else self.flow.report().exchanges

    def flow_broken(self) -> bool:
        """Whether the flow has been reset or closed by now."""
        return self.flow is not None and self.flow.report().broken_at is not None

    def __exit__(self, *exc: object) -> None:
        self.outcome()

    def outcome(self) -> Outcome:
        if self._outcome is None:
            attempts = self.loop.stop() if self.loop.proc is not None else []
            flow = self.flow.stop() if self.flow is not None else None
            self._outcome = Outcome(tuple(attempts), flow)
        return self._outcome


def office_config(lab: Lab, name: str, **monitor: float) -> Path:
    """The lab's config with ``monitor`` overrides and no hooks (the office's ``logger``
    hooks would write to the host's syslog), validated, in the lab's state dir."""
    data = yaml.safe_load(lab.config_text)
    data["monitor"] = {**data.get("monitor", {}), **monitor}
    data["hooks"] = {}
    path = lab.state_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load(path)
    return path


FAULTHANDLER = {"PYTHONFAULTHANDLER": "1"}  # tracebacks of every thread on SIGABRT
STOP_TIMEOUT = 10.0  # the unit file's TimeoutStopSec is longer; this is the lab's bound


@dataclass(frozen=True)
class Stopped:
    """One daemon stopped by SIGTERM: on the faked clock or not, seconds to exit, code."""

    faked: bool
    seconds: float
    code: int | None
    shutdown: tuple[str, ...]  # its log from daemon.stopping on: where the seconds went


def kernel_waits(pid: int) -> dict[str, str]:
    """Each thread of ``pid``: its name and the kernel function it sleeps in (proc(5) wchan)."""
    out = {}
    for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
        try:
            comm = (task / "comm").read_text().strip()
            out[f"{task.name} {comm}"] = (task / "wchan").read_text().strip() or "running"
        except OSError:
            continue
    return out


class Testbed:
    """A lab with the daemon as its router (on a wall clock we can move, when asked), and
    the kernel footprint it builds when healthy (the baseline every repair is checked
    against)."""

    def __init__(self, lab: Lab, config: Path, primary: str) -> None:
        self.lab = lab
        self.office = Office(lab, config)
        self.clock = WallClock(lab.state_dir / "faketime")
        self.primary = primary
        self.baseline: Footprint | None = None
        # Only the clock fault runs the daemon under libfaketime: the preload itself
        # stalls threaded Python processes when the clock moves (see clock.clock_spells).
        self.faked = False
        self.stops: list[Stopped] = []  # every daemon stop() ended: the exit is bounded

    def start(self, timeout: float = 30.0, active: str | None = None) -> None:
        """Start the daemon (on the faked clock if :attr:`faked`); return once ``active``
        (default: the primary) carries traffic."""
        with self.clock.children() if self.faked else contextlib.nullcontext():
            # faulthandler: a daemon that will not stop is made to say where it is (stop()).
            self.office.start(wait_active=active or self.primary, timeout=timeout, env=FAULTHANDLER)

    def stop(self, timeout: float = STOP_TIMEOUT) -> Stopped | None:
        """SIGTERM the daemon and wait ``timeout`` for it to exit; how long it took. One
        that does not exit is dumped (each thread's kernel wait, then its Python stack
        through faulthandler's SIGABRT) and a LabError carries the dump."""
        proc, self.office.daemon = self.office.daemon, None
        if proc is None:
            return None
        t0 = time.monotonic()
        if proc.alive():
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout)
        took = time.monotonic() - t0
        if code is None and proc.alive():
            waits = kernel_waits(proc.pid)
            proc.send_signal(signal.SIGABRT)
            proc.wait(5.0)
            self.lab.stop_proc(proc)
            raise LabError(
                f"wanwatch did not exit within {timeout}s of SIGTERM ({self.faked=});"
                f" threads: {waits}; {proc.stderr()[-3000:]}"
            )
        log = self.office.log().splitlines()
        since = max((i for i, line in enumerate(log) if "daemon.stopping" in line), default=0)
        self.stops.append(Stopped(self.faked, round(took, 3), code, tuple(log[since:][:40])))
        return self.stops[-1]

    def restart(self, *, faked: bool, timeout: float) -> None:
        """Stop the daemon (SIGTERM) and start it again, on the faked clock or not."""
        self.stop()
        self.faked = faked
        if faked:
            self.clock.set("+0")
        self.heal(timeout)

    def settled(self, timeout: float) -> dict[str, object]:
        """Wait until the primary carries (applied), is preferred and every uplink is up."""

        def ok(st: dict[str, object]) -> bool:
            wans = st["wans"]
            return isinstance(wans, list) and (
                st["active"] == [self.primary]
                and bool(st.get("applied"))
                and all(w["state"] == "up" for w in wans)
                and any(w["name"] == self.primary and w["preferred"] for w in wans)
            )

        return self.office.wait_for(ok, timeout, f"{self.primary} carrying, every uplink up")

    def whole(self, timeout: float) -> bool:
        if self.baseline is None:
            raise LabError("no baseline yet: call heal() once the daemon is healthy")
        return wait_whole(self.lab, self.baseline, time.monotonic() + timeout) is not None

    def heal(self, timeout: float) -> bool:
        """Back to healthy: the daemon running, settled, its footprint whole. Restarts it
        (SIGTERM removes what it added) if that does not happen by itself within
        ``timeout``; returns whether a restart was needed."""
        daemon = self.office.daemon
        if daemon is not None and daemon.alive():
            try:
                self.settled(timeout)
                if self.baseline is None:
                    self.baseline = Footprint.read(self.lab)
                    return False
                if self.whole(min(timeout, 5.0)):
                    return False
            except LabError:
                pass
            self.stop()
        self.start()
        self.settled(timeout)
        if self.baseline is None:
            self.baseline = Footprint.read(self.lab)
        elif not self.whole(10.0):
            raise LabError("a freshly started daemon did not build its footprint")
        return True
