"""A long-lived TCP connection from a lab client: when it stalls, resumes or breaks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from wanwatch.errors import LabError
from wanwatch.lab.traffic.spawn import POLL
from wanwatch.lab.worker import worker_argv
from wanwatch.lab.worker.servers import WHOAMI_PORT

if TYPE_CHECKING:
    from wanwatch.lab.procs import Proc
    from wanwatch.lab.topology import Lab


@dataclass
class FlowReport:
    """What happened to one long-lived TCP connection."""

    connected_at: float | None = None
    peer: str | None = None
    isp: str | None = None
    exchanges: int = 0
    last_ok: float | None = None
    stalls: list[tuple[float, float | None]] = field(default_factory=list)  # (start, end)
    broken_at: float | None = None
    reason: str | None = None  # "reset", "eof", "timeout", "connect: ..."

    @property
    def alive(self) -> bool:
        return self.connected_at is not None and self.broken_at is None


class Flow:
    """A long-lived TCP connection from a client to the whoami server, exchanging bytes.

    Every ``interval`` it sends a line and waits for its echo; a wait longer
    than ``stall_after`` is reported as a stall (and its end when the echo
    comes); a reset or close ends the flow. Bounded by ``max_seconds``.
    """

    def __init__(
        self,
        lab: Lab,
        client: str,
        *,
        dst: IPv4Address | None = None,
        port: int = WHOAMI_PORT,
        interval: float = 0.1,
        stall_after: float = 1.0,
        max_seconds: float = 600.0,
        source: IPv4Address | None = None,
    ) -> None:
        self.lab = lab
        self.client = client
        self.source = source  # bind to this client address (default: the kernel's choice)
        self.argv = worker_argv(
            "flow",
            "--dst",
            str(dst or lab.topology.whoami[0]),
            "--port",
            str(port),
            "--interval",
            str(interval),
            "--stall-after",
            str(stall_after),
            "--max-seconds",
            str(max_seconds),
        )
        if source is not None:
            self.argv += ["--source", str(source)]
        self.proc: Proc | None = None

    def start(self) -> Flow:
        self.proc = self.lab.spawn(self.lab.ns_for(self.client), self.argv, "flow")
        return self

    def __enter__(self) -> Flow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def report(self) -> FlowReport:
        if self.proc is None:
            raise LabError("Flow not started")
        rep = FlowReport()
        for r in self.proc.records():
            ev = r.get("ev")
            if ev == "connected":
                rep.connected_at, rep.peer = float(r["t"]), r["peer"]
                rep.isp = self.lab.isp_of(r["peer"])
            elif ev == "ok":
                rep.exchanges += 1
                rep.last_ok = float(r["t"])
            elif ev == "stall":
                rep.stalls.append((float(r["since"]), None))
            elif ev == "resume" and rep.stalls:
                rep.stalls[-1] = (rep.stalls[-1][0], float(r["t"]))
            elif ev == "broken":
                rep.broken_at, rep.reason = float(r["t"]), str(r["reason"])
        return rep

    def wait_connected(self, deadline: float) -> FlowReport:
        """Wait until the flow is connected and has exchanged once; LabError otherwise."""
        while True:
            rep = self.report()
            if rep.exchanges > 0:
                return rep
            if rep.broken_at is not None or time.monotonic() >= deadline:
                raise LabError(f"flow from {self.client} did not come up: {rep}")
            time.sleep(POLL)

    def stop(self) -> FlowReport:
        if self.proc is not None:
            self.lab.stop_proc(self.proc)
        return self.report()
