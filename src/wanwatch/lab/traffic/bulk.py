"""Bulk TCP throughput between a lab client and the fake internet, per uplink."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from wanwatch.errors import LabError
from wanwatch.lab import services
from wanwatch.lab.traffic.spawn import run_worker
from wanwatch.lab.worker import worker_argv
from wanwatch.lab.worker.limits import MAX_BULK_FLOWS, MAX_BULK_SECONDS
from wanwatch.lab.worker.servers import BULK_PORT

if TYPE_CHECKING:
    from wanwatch.lab.procs import Proc
    from wanwatch.lab.topology import Lab


@dataclass(frozen=True)
class BulkFlow:
    """One bulk TCP flow: where it came from, which uplink carried it, what it moved."""

    index: int
    src: str | None
    sport: int | None
    peer: str | None  # the flow's address as the server saw it (an ISP's public address)
    isp: str | None
    bytes: int  # over the whole run
    window_bytes: int  # inside the measurement window (kernel TCP counters at its ends)
    error: str | None


@dataclass(frozen=True)
class BulkResult:
    """N parallel flows for a while; throughput is what was delivered inside the window."""

    direction: str  # "down": internet -> office; "up": office -> internet
    flows: tuple[BulkFlow, ...]
    window: tuple[float, float]  # monotonic start and end of the measurement window

    @property
    def seconds(self) -> float:
        return self.window[1] - self.window[0]

    @property
    def bits_per_second(self) -> float:
        """Aggregate goodput (TCP payload) in the window."""
        return sum(f.window_bytes for f in self.flows) * 8 / self.seconds

    def by_isp(self) -> dict[str, float]:
        """Goodput per uplink (bit/s) in the window; flows of no known uplink under ``"?"``."""
        out: dict[str, float] = {}
        for f in self.flows:
            key = f.isp or "?"
            out[key] = out.get(key, 0.0) + f.window_bytes * 8 / self.seconds
        return out

    def flows_by_isp(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.flows:
            key = f.isp or "?"
            out[key] = out.get(key, 0) + 1
        return out

    @property
    def errors(self) -> list[str]:
        return [f"flow {f.index}: {f.error}" for f in self.flows if f.error]


def bulk_server(lab: Lab) -> Proc:
    """The lab's bulk source/sink server (worker/servers.py) on the whoami addresses; started on
    first use inside the internet namespace, stopped by the lab like its other processes."""
    for proc in lab.procs:
        if proc.name == "bulk" and proc.alive():
            return proc
    argv = services.bulk_argv(lab.topology.whoami, BULK_PORT)
    proc = lab.spawn(lab.inet_ns, argv, "bulk")
    try:
        proc.wait_ready(lambda: proc.reported("listening"), 10, "listening")
    except LabError:
        lab.stop_proc(proc)
        raise
    return proc


def bulk(
    lab: Lab,
    client: str,
    *,
    flows: int,
    seconds: float,
    direction: str = "down",
    warmup: float = 1.0,
    sources: Sequence[IPv4Address] = (),
    dst: IPv4Address | None = None,
) -> BulkResult:
    """Run ``flows`` parallel bulk TCP flows between ``client`` and the fake internet.

    ``direction="down"`` has the server send (a download, the office's usual
    bulk), ``"up"`` the client. Every flow connects first; then all start
    together and run ``seconds``; the throughput is what the receiving end's
    TCP delivered from ``warmup`` on, read from the client kernel's counters
    (acked bytes for "up"). TCP counts bytes delivered in order, so data held
    behind a loss at either end of the window moves across it: up to one
    congestion window of noise per flow, less the longer the window. The
    warm-up keeps slow start and its burst of losses out (a 0.5 s warm-up read
    2 % over the shaped link's goodput ceiling here; 1 s reads it).
    Flow n binds ``sources[n % len]`` when given.
    """
    if not 1 <= flows <= MAX_BULK_FLOWS:
        raise LabError(f"bulk flows must be 1-{MAX_BULK_FLOWS}")
    if not 0 <= warmup < seconds <= MAX_BULK_SECONDS:
        raise LabError(f"bulk needs 0 <= warmup < seconds <= {MAX_BULK_SECONDS:.0f}")
    if direction not in ("down", "up"):
        raise LabError(f"bulk direction is 'down' or 'up', not {direction!r}")
    bulk_server(lab)
    argv = worker_argv(
        "bulk",
        "--dst",
        str(dst or lab.topology.whoami[0]),
        "--port",
        str(BULK_PORT),
        "--flows",
        str(flows),
        "--seconds",
        str(seconds),
        "--warmup",
        str(warmup),
        "--direction",
        direction,
    )
    for src in sources:
        argv += ["--source", str(src)]
    records = run_worker(lab, client, argv, "bulk", seconds + 30)
    end = next((r for r in records if r.get("ev") == "end"), None)
    if end is None:
        raise LabError(f"bulk from {client} did not report its end")
    out = []
    for r in records:
        if "flow" not in r:
            continue
        peer = r.get("peer")
        out.append(
            BulkFlow(
                index=int(r["flow"]),
                src=r.get("src"),
                sport=r.get("sport"),
                peer=peer,
                isp=lab.isp_of(peer) if peer else None,
                bytes=int(r.get("bytes", 0)),
                window_bytes=int(r.get("window_bytes", 0)),
                error=r.get("error"),
            )
        )
    return BulkResult(direction, tuple(out), (float(end["w0"]), float(end["w1"])))
