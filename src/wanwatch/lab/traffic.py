"""Client-side measurement in the lab: new connections, long-lived flows, first hop, DNS, ping.

Every measurement runs as a worker process inside a lab namespace (a LAN
client, usually), started through :meth:`Lab.spawn` so the lab stops it by PID
whatever happens, and bounded in attempts and time. Workers write one JSON
object per line with ``time.monotonic()`` timestamps: CLOCK_MONOTONIC is one
clock for all namespaces, so a worker's timestamps compare directly with a
fault's (faults.FaultEvent) or a bench's own.

The shape a failover bench needs -- "cut at T, first successful *new*
connection via the backup at T+x" with ~10 ms resolution -- is
:class:`ConnectLoop`: started before the cut, it opens a fresh TCP connection
to the whoami server every ``interval`` (20 ms by default; attempts overlap, so
one stuck SYN does not delay the next), and :meth:`ConnectLoop.first_success`
picks the first attempt started after T that succeeded and that the whoami
server saw coming from the wanted ISP's public address; its ``t1`` is when
the client got its answer.

For load balancing: :func:`connections` opens a batch of new connections,
optionally from several client addresses (:func:`add_client_addresses`: more
office machines behind the client's one veth, so an address-hashing
classifier sees many inputs), each reporting the client address and port the
router hashed and the ISP that carried it; :func:`bulk` runs N parallel bulk
TCP flows against the lab's source/sink server (services.py) and reports the
bytes of each flow and its ISP, the throughput read from the kernel's TCP
counters at the two ends of a measurement window.

Background load: :class:`Stream` sends packets at a steady rate through the
router for a bench or a test, either ICMP echoes that the far host answers (two
ways) or UDP datagrams to a :func:`udp_sink` that never answers (one way).

Worker entry point:
``python -m wanwatch.lab.traffic connect|flow|bulk|hop|dns|ping|stream|sink``.
It imports only the standard library (and wanwatch's own small helpers), so it
starts fast.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import random
import select
import signal
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from wanwatch.engine.policy import plan_for
from wanwatch.errors import LabError
from wanwatch.lab import netns
from wanwatch.lab.netns import Tail
from wanwatch.linux.nft import predict_bucket

if TYPE_CHECKING:
    from wanwatch.lab.topology import Lab, Proc

WHOAMI_PORT = 8080
# A bound for every worker that is not told otherwise.
DEFAULT_MAX_SECONDS = 120.0
MAX_ATTEMPTS = 100_000
MAX_STREAM_RATE = 5000.0  # packets per second a Stream may send
MAX_STREAM_SECONDS = 7200.0
SINK_PORT = 9009  # udp_sink's port on the fake internet
POLL = 0.005  # how often the library side looks at a worker's output
RST_GAP = 0.01  # between two lone TCP resets


# =========================================================================== library side


def _worker(*args: str) -> list[str]:
    return [sys.executable, "-m", "wanwatch.lab.traffic", *args]


def _run(lab: Lab, who: str, argv: list[str], name: str, timeout: float) -> list[dict[str, Any]]:
    """Run one bounded worker to completion; its JSON records."""
    proc = lab.spawn(lab.ns_for(who), argv, name)
    try:
        if proc.wait(timeout) is None and proc.alive():
            raise LabError(f"{name} in {who} did not finish in {timeout:.1f} s")
        records = proc.records()
        if not records:
            raise LabError(f"{name} in {who} reported nothing: {proc.stderr()[-800:]}")
        return records
    finally:
        lab.stop_proc(proc)


# --------------------------------------------------------------------------- new connections


@dataclass(frozen=True)
class Attempt:
    """One new TCP connection attempt to the whoami server."""

    seq: int
    t0: float  # monotonic: connect() started
    t1: float  # monotonic: whoami answer received, or the attempt failed
    ok: bool
    peer: str | None  # our address as the server saw it (the ISP's public address)
    isp: str | None  # the uplink that address belongs to
    error: str | None
    src: str | None = None  # the client's own address and port (what the router hashed)
    sport: int | None = None

    @property
    def ms(self) -> float:
        return (self.t1 - self.t0) * 1000


class ConnectLoop:
    """Fresh TCP connections to the whoami server every ``interval`` from one client.

    ``with ConnectLoop(lab, "ether3") as loop: ... loop.first_success(after=cut.t_start,
    via="BACKUP-INET", deadline=...)``. Bounded by ``max_seconds`` and ``max_attempts``.
    """

    def __init__(
        self,
        lab: Lab,
        client: str,
        *,
        dst: IPv4Address | None = None,
        port: int = WHOAMI_PORT,
        interval: float = 0.02,
        timeout: float = 1.0,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
        sources: Sequence[IPv4Address] = (),
    ) -> None:
        self.lab = lab
        self.client = client
        self.dst = dst or lab.topology.whoami[0]
        self.port = port
        self.interval = interval
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.max_attempts = max_attempts
        self.sources = tuple(sources)  # attempt n binds sources[n % len]; () = the default
        self.proc: Proc | None = None
        self._tail: Tail | None = None
        self._seen: list[Attempt] = []
        self.finished = False

    def start(self, until_via: str | None = None, until_after: float | None = None) -> None:
        """Start the worker; with ``until_via`` it stops at its first success via that uplink."""
        argv = _worker(
            "connect",
            "--dst",
            str(self.dst),
            "--port",
            str(self.port),
            "--interval",
            str(self.interval),
            "--timeout",
            str(self.timeout),
            "--max-seconds",
            str(self.max_seconds),
            "--max-attempts",
            str(self.max_attempts),
        )
        for src in self.sources:
            argv += ["--source", str(src)]
        if until_via is not None:
            argv += ["--until-peer", str(self.lab.isp(until_via).public.ip)]
        if until_after is not None:
            argv += ["--until-after", repr(until_after)]
        self.proc = self.lab.spawn(self.lab.ns_for(self.client), argv, "connect")
        self._tail = Tail(self.proc.out)

    def __enter__(self) -> ConnectLoop:
        self.start()
        self.wait_started(time.monotonic() + 10)
        return self

    def wait_started(self, deadline: float) -> None:
        """Wait until the worker has reported its first attempt (it pays a Python start-up,
        ~0.1 s): cut only after this, or the first attempts measure the start-up."""
        while not self.poll() and not self._seen:
            if self.finished or time.monotonic() >= deadline:
                raise LabError(f"connect loop in {self.client} did not start")
            if self.proc is not None and not self.proc.alive():
                raise LabError(f"connect loop in {self.client} exited: {self.proc.stderr()}")
            time.sleep(POLL)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def poll(self) -> list[Attempt]:
        """Attempts finished since the last poll (also kept in :attr:`attempts`)."""
        if self._tail is None:
            raise LabError("ConnectLoop not started")
        new = []
        for r in self._tail.new():
            if r.get("ev") == "end":
                self.finished = True
            elif "seq" in r:
                peer = r.get("peer")
                new.append(
                    Attempt(
                        seq=int(r["seq"]),
                        t0=float(r["t0"]),
                        t1=float(r["t1"]),
                        ok=bool(r["ok"]),
                        peer=peer,
                        isp=self.lab.isp_of(peer) if peer else None,
                        error=r.get("error"),
                        src=r.get("src"),
                        sport=r.get("sport"),
                    )
                )
        self._seen += new
        return new

    @property
    def attempts(self) -> list[Attempt]:
        self.poll()
        return list(self._seen)

    def first_success(
        self, *, after: float, via: str | None = None, deadline: float
    ) -> Attempt | None:
        """The first connection (by when it was answered) started at/after ``after`` that
        succeeded, through ``via`` if given; waits until monotonic ``deadline``, else None.

        Matching on the start time makes it a *new* connection; the worker reports
        attempts as they finish, so the first match seen is the earliest answered.
        """
        checked = 0
        while True:
            self.poll()
            for a in self._seen[checked:]:
                if a.ok and a.t0 >= after and (via is None or a.isp == via):
                    return a
            checked = len(self._seen)
            if self.finished or time.monotonic() >= deadline:
                return None
            time.sleep(POLL)

    def stop(self) -> list[Attempt]:
        """Stop the worker; every attempt it reported."""
        if self.proc is not None:
            self.lab.stop_proc(self.proc)
        return self.attempts if self._tail is not None else []


def predicted_uplink(
    lab: Lab,
    src: IPv4Address | str,
    dst: IPv4Address,
    sport: int = 0,
    dport: int = WHOAMI_PORT,
) -> str:
    """The uplink wanwatch's ruleset gives a new TCP connection while every uplink is up
    (load balancing: the bucket nft's jhash picks, computed the same way here)."""
    buckets = plan_for(lab.lab_config, set()).buckets
    i = predict_bucket(
        lab.lab_config.policy.classifier,
        len(buckets),
        IPv4Address(str(src)),
        dst,
        proto=6,
        sport=sport,
        dport=dport,
    )
    return buckets[i]


def first_new_connection(
    lab: Lab,
    client: str,
    *,
    after: float,
    deadline: float,
    via: str | None = None,
    interval: float = 0.02,
    timeout: float = 1.0,
    dst: IPv4Address | None = None,
) -> Attempt | None:
    """Try new connections from ``client`` until one started after ``after`` succeeds.

    ``via``: only a connection that came through that uplink's ISP counts.
    Returns the successful :class:`Attempt` (``t1`` is when it was answered,
    ``isp`` which uplink carried it), or None at monotonic ``deadline``. For
    a cut you time yourself, keep a :class:`ConnectLoop` running across it
    instead: this function pays a worker start-up (~0.1 s) first.
    """
    loop = ConnectLoop(
        lab,
        client,
        dst=dst,
        interval=interval,
        timeout=timeout,
        max_seconds=max(1.0, deadline - time.monotonic() + timeout),
    )
    loop.start(until_via=via, until_after=after)
    try:
        return loop.first_success(after=after, via=via, deadline=deadline)
    finally:
        loop.stop()


# --------------------------------------------------------------------------- long-lived flow


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
        self.argv = _worker(
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


def connections(
    lab: Lab,
    client: str,
    count: int,
    *,
    sources: Sequence[IPv4Address] = (),
    dst: IPv4Address | None = None,
    interval: float = 0.005,
    timeout: float = 2.0,
) -> list[Attempt]:
    """Open ``count`` new connections from ``client`` (attempt n from ``sources[n % len]``);
    every attempt, when all have finished. Bounded by count and by time."""
    budget = count * interval + timeout + 30
    loop = ConnectLoop(
        lab,
        client,
        dst=dst,
        interval=interval,
        timeout=timeout,
        max_seconds=budget,
        max_attempts=count,
        sources=sources,
    )
    loop.start()
    try:
        deadline = time.monotonic() + budget + 10
        while not loop.finished:
            running = loop.proc is not None and loop.proc.alive()  # read before the output
            loop.poll()
            if not running and not loop.finished:
                raise LabError(f"connections from {client}: worker exited early")
            if time.monotonic() >= deadline:
                raise LabError(f"{count} connections from {client} did not finish in time")
            time.sleep(POLL * 4)
        return loop.attempts
    finally:
        loop.stop()


def add_client_addresses(lab: Lab, lan: str, count: int, *, first: int = 101) -> list[IPv4Address]:
    """Give the LAN's client ``count`` more addresses on its subnet, from host ``first`` up,
    skipping those it has; they stand for more office machines behind one veth.

    The client must already have its own address and default route (client_static,
    or a DHCP lease). Hosts beyond the subnet are refused.
    """
    c = lab.client(lan)
    if c.network is None:
        raise LabError(f"LAN {lan} has no subnet in the config")
    shown = netns.sh(["ip", "-j", "-n", c.ns, "-4", "addr", "show", "dev", c.ifname]).stdout
    have = {
        IPv4Address(a["local"]) for link in json.loads(shown) for a in link.get("addr_info", [])
    }
    hosts = list(c.network.hosts())
    picked: list[IPv4Address] = []
    for addr in hosts[first - 1 :]:
        if len(picked) == count:
            break
        if addr not in have and addr != c.gateway:
            picked.append(addr)
    if len(picked) < count:
        raise LabError(f"LAN {lan}: only {len(picked)} free addresses from host {first}")
    prefix = c.network.prefixlen
    netns.batch(c.ns, [f"addr add {a}/{prefix} dev {c.ifname}" for a in picked])
    return picked


# --------------------------------------------------------------------------- bulk throughput


BULK_PORT = 5201  # services.BULK_PORT (not imported: workers stay light)
BULK_SNDBUF = 256 * 1024  # services.BULK_SNDBUF: a bounded backlog when a run ends
MAX_BULK_FLOWS = 64
MAX_BULK_SECONDS = 120.0


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
    """The lab's bulk source/sink server (services.py) on the whoami addresses; started on
    first use inside the internet namespace, stopped by the lab like its other processes."""
    from wanwatch.lab import services

    for proc in lab.procs:
        if proc.name == "bulk" and proc.alive():
            return proc
    argv = services.bulk_argv(lab.topology.whoami, BULK_PORT)
    proc = lab.spawn(lab.inet_ns, argv, "bulk")
    deadline = time.monotonic() + 10
    while not any(r.get("ev") == "listening" for r in proc.records()):
        if not proc.alive() or time.monotonic() >= deadline:
            lab.stop_proc(proc)
            raise LabError(f"bulk server did not start: {proc.stderr()[-800:]}")
        time.sleep(POLL)
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
    argv = _worker(
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
    records = _run(lab, client, argv, "bulk", seconds + 30)
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


# --------------------------------------------------------------------------- first hop


@dataclass(frozen=True)
class Hop:
    """Who answered a TTL-limited probe: at ttl=2 from a LAN client, the ISP's gateway."""

    address: str
    isp: str | None
    icmp_type: int  # 11 time exceeded, 3 unreachable (the destination itself)
    rtt_ms: float


def first_hop(
    lab: Lab,
    client: str,
    dst: IPv4Address | None = None,
    *,
    ttl: int = 2,
    timeout: float = 1.0,
    tries: int = 3,
) -> Hop | None:
    """Traceroute-like: the hop ``ttl`` away from ``client`` toward ``dst`` (None: no answer).

    From a LAN client, hop 1 is the router and hop 2 the gateway of the ISP the
    router is using; the ISP answers even while blackholed (TTL expiry is
    handled before its forward hook), like an LTE modem without signal.
    """
    argv = _worker(
        "hop",
        "--dst",
        str(dst or lab.topology.whoami[0]),
        "--ttl",
        str(ttl),
        "--timeout",
        str(timeout),
        "--tries",
        str(tries),
    )
    r = _run(lab, client, argv, "hop", timeout * tries + 10)[-1]
    if not r.get("ok"):
        return None
    return Hop(r["hop"], lab.isp_of(r["hop"]), int(r["type"]), float(r["rtt_ms"]))


# --------------------------------------------------------------------------- DNS


@dataclass(frozen=True)
class DnsAnswer:
    name: str
    server: str
    ok: bool  # an answer arrived (whatever its rcode)
    rcode: int | None  # 0 NOERROR, 3 NXDOMAIN, ...
    addresses: tuple[str, ...]
    rtt_ms: float | None  # of the try that was answered
    tries: int
    t0: float
    t1: float


def dns_lookup(
    lab: Lab,
    client: str,
    name: str,
    server: IPv4Address | None = None,
    *,
    timeout: float = 1.0,
    tries: int = 3,
) -> DnsAnswer:
    """Ask ``server`` (default: the fake internet's DNS) for ``name``'s A records."""
    srv = server or lab.topology.dns_servers[0]
    argv = _worker(
        "dns",
        "--server",
        str(srv),
        "--name",
        name,
        "--timeout",
        str(timeout),
        "--tries",
        str(tries),
    )
    r = _run(lab, client, argv, "dns", timeout * tries + 10)[-1]
    return DnsAnswer(
        name=name,
        server=str(srv),
        ok=bool(r["ok"]),
        rcode=r.get("rcode"),
        addresses=tuple(r.get("addresses", [])),
        rtt_ms=r.get("rtt_ms"),
        tries=int(r["tries"]),
        t0=float(r["t0"]),
        t1=float(r["t1"]),
    )


# --------------------------------------------------------------------------- ping


@dataclass(frozen=True)
class PingStats:
    sent: int
    received: int
    rtts_ms: tuple[float, ...]
    t0: float
    t1: float
    first_lost_sent: float | None = None  # monotonic send time of the first unanswered echo

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 0.0

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.rtts_ms) if self.rtts_ms else None


def ping(
    lab: Lab,
    who: str,
    dst: IPv4Address | str,
    *,
    count: int = 10,
    interval: float = 0.01,
    timeout: float = 1.0,
    source: IPv4Address | None = None,
) -> PingStats:
    """ICMP echo (with a payload) from ``who``'s namespace; replies matched by id, seq, source."""
    argv = _worker(
        "ping",
        "--dst",
        str(dst),
        "--count",
        str(count),
        "--interval",
        str(interval),
        "--timeout",
        str(timeout),
    )
    if source is not None:
        argv += ["--source", str(source)]
    r = _run(lab, who, argv, "ping", count * interval + timeout + 10)[-1]
    return PingStats(
        int(r["sent"]),
        int(r["received"]),
        tuple(r["rtts_ms"]),
        float(r["t0"]),
        float(r["t1"]),
        r.get("first_lost_sent"),
    )


# --------------------------------------------------------------------------- background load


class Stream:
    """Packets from ``who`` to ``dst`` at ``rate`` per second for at most ``seconds``.

    ``proto="icmp"``: echo requests (the far host's kernel answers each, so the
    router forwards 2 * rate packets per second); ``proto="udp"``: datagrams to
    ``port`` that nothing answers when :func:`udp_sink` listens there. Every
    ``rotate`` seconds it starts a new flow (a new echo id or source port), as an
    office's new connections do, so a new conntrack entry follows the uplink
    that carries new connections. Bounded in time and in count (rate * seconds).
    """

    def __init__(
        self,
        lab: Lab,
        who: str,
        dst: IPv4Address | str,
        *,
        rate: float,
        seconds: float,
        proto: str = "icmp",
        port: int = SINK_PORT,
        rotate: float = 1.0,
    ) -> None:
        self.lab = lab
        self.who = who
        self.argv = _worker(
            "stream",
            "--dst",
            str(dst),
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--proto",
            proto,
            "--port",
            str(port),
            "--rotate",
            str(rotate),
        )
        self.proc: Proc | None = None

    def __enter__(self) -> Stream:
        self.proc = self.lab.spawn(self.lab.ns_for(self.who), self.argv, "stream")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> dict[str, Any]:
        """Stop it; its report: packets ``sent`` and answers ``received``."""
        if self.proc is None:
            return {}
        self.lab.stop_proc(self.proc)
        records = self.proc.records()
        return records[-1] if records else {}


def udp_sink(lab: Lab, seconds: float, port: int = SINK_PORT) -> Proc:
    """A UDP port on the fake internet that reads and never answers (stop it by PID)."""
    argv = _worker("sink", "--port", str(port), "--seconds", str(seconds))
    return lab.spawn(lab.inet_ns, argv, "sink")


def lone_resets(lab: Lab, who: str, dst: IPv4Address | str, count: int = 20) -> int:
    """TCP resets that belong to no connection, from ``who`` to ``dst``'s whoami port:
    conntrack calls each one invalid, so NAT never sees it. How many were sent."""
    argv = _worker("rst", "--dst", str(dst), "--count", str(count))
    return int(_run(lab, who, argv, "rst", count * RST_GAP + 10)[-1]["sent"])


# =========================================================================== worker side
# Runs inside a lab namespace; standard library only. Its stdout is its report.


def _emit(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _errname(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _connect_loop(args: argparse.Namespace) -> None:
    stop = _stop_event()
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
            rec.update(ok=False, error=_errname(exc))
        finally:
            if writer is not None:
                writer.close()
        rec["t1"] = time.monotonic()
        _emit(rec)
        if (
            rec["ok"]
            and args.until_peer is not None
            and rec["peer"] == args.until_peer
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
    _emit({"ev": "end", "attempts": seq, "t": time.monotonic()})


def _flow(args: argparse.Namespace) -> None:
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    end = time.monotonic() + args.max_seconds
    try:
        sock = socket.create_connection(
            (args.dst, args.port),
            timeout=args.stall_after * 3,
            source_address=(args.source, 0) if args.source else None,
        )
        line = b""
        while not line.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionResetError(errno.ECONNRESET, "closed before the whoami line")
            line += chunk
        hello = json.loads(line)
    except (OSError, ValueError) as exc:
        _emit({"ev": "broken", "t": time.monotonic(), "reason": "connect: " + _errname(exc)})
        return
    _emit({"ev": "connected", "t": time.monotonic(), "peer": hello["peer"]})
    sock.settimeout(0.05)
    seq = 0
    buf = b""
    try:
        while not stopping and time.monotonic() < end:
            seq += 1
            sent = time.monotonic()
            sock.sendall(f"{seq}\n".encode())
            stalled = False
            while not stopping and time.monotonic() < end:
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    if not stalled and time.monotonic() - sent > args.stall_after:
                        stalled = True
                        _emit({"ev": "stall", "since": sent, "t": time.monotonic(), "seq": seq})
                    continue
                if not chunk:
                    _emit({"ev": "broken", "t": time.monotonic(), "reason": "eof"})
                    return
                buf += chunk
                if f"{seq}\n".encode() in buf:
                    buf = b""
                    now = time.monotonic()
                    if stalled:
                        _emit({"ev": "resume", "t": now, "seq": seq})
                    _emit({"ev": "ok", "t": now, "seq": seq, "rtt_ms": (now - sent) * 1000})
                    break
            time.sleep(max(0.0, sent + args.interval - time.monotonic()))
    except OSError as exc:
        _emit({"ev": "broken", "t": time.monotonic(), "reason": _errname(exc)})
        return
    finally:
        sock.close()
    _emit({"ev": "end", "t": time.monotonic(), "exchanges": seq})


# struct tcp_info (linux/tcp.h): tcpi_bytes_acked and tcpi_bytes_received, u64 each.
_TCPI_BYTES_ACKED = 120
_TCPI_BYTES_RECEIVED = 128
_TCP_INFO_LEN = 136


def _tcp_bytes(sock: socket.socket, direction: str) -> int | None:
    """Bytes the kernel has delivered on ``sock`` so far: received ("down") or acked ("up").

    Read from TCP_INFO, so it counts what crossed the network at this instant,
    however late the reading thread gets to its data.
    """
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except OSError:
        return None
    off = _TCPI_BYTES_RECEIVED if direction == "down" else _TCPI_BYTES_ACKED
    if len(info) < off + 8:
        return None
    value: int = struct.unpack_from("=Q", info, off)[0]
    return value


def _bulk_flow(args: argparse.Namespace, sock: socket.socket, start: float, until: float) -> int:
    """One flow of the bulk worker, once connected: wait for ``start``, run until ``until``;
    the payload bytes it moved, as counted by the receiving end."""
    time.sleep(max(0.0, start - time.monotonic()))
    mode = "source" if args.direction == "down" else "sink"
    sock.sendall(json.dumps({"mode": mode, "until": until}).encode() + b"\n")
    sock.settimeout(max(1.0, until - time.monotonic()) + 20.0)
    total = 0
    if args.direction == "down":
        while chunk := sock.recv(1 << 16):
            total += len(chunk)
        return total
    data = bytes(1 << 16)
    while time.monotonic() < until:
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionResetError(errno.ECONNRESET, "closed before the byte count")
        answer += chunk
    return int(json.loads(answer)["bytes"])


def _bulk(args: argparse.Namespace) -> None:
    sources = args.source or [None]
    socks: list[socket.socket | None] = []
    recs: list[dict[str, Any]] = []
    for i in range(args.flows):
        src = sources[i % len(sources)]
        rec: dict[str, Any] = {"flow": i, "src": src}
        try:
            sock = socket.create_connection(
                (args.dst, args.port), timeout=5.0, source_address=(src, 0) if src else None
            )
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BULK_SNDBUF)
            rec["src"], rec["sport"] = sock.getsockname()[:2]
            line = b""
            while not line.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionResetError(errno.ECONNRESET, "closed before the hello")
                line += chunk
            rec["peer"] = json.loads(line)["peer"]
            socks.append(sock)
        except (OSError, ValueError, KeyError) as exc:
            rec["error"] = "connect: " + _errname(exc)
            socks.append(None)
        recs.append(rec)
    # All flows start together, a little after the last one connected.
    start = time.monotonic() + 0.05
    w0, w1 = start + args.warmup, start + args.seconds

    def run(i: int, sock: socket.socket) -> None:
        try:
            recs[i]["bytes"] = _bulk_flow(args, sock, start, w1)
        except (OSError, ValueError, KeyError) as exc:
            recs[i]["error"] = _errname(exc)

    threads = [
        threading.Thread(target=run, args=(i, sock), daemon=True)
        for i, sock in enumerate(socks)
        if sock is not None
    ]
    for t in threads:
        t.start()
    # The window is read from the kernel's counters at its two ends (not from when
    # the flows' threads happen to read their data), and timed when it was read: on
    # a busy machine this thread may wake tens of ms late.
    marks: list[list[int | None]] = []
    read_at: list[float] = []
    for at in (w0, w1):
        time.sleep(max(0.0, at - time.monotonic()))
        before = time.monotonic()
        marks.append([_tcp_bytes(s, args.direction) if s else None for s in socks])
        read_at.append((before + time.monotonic()) / 2)
    for t in threads:
        t.join(timeout=max(0.0, w1 + 10 - time.monotonic()))
    for i, maybe in enumerate(socks):
        a, b = marks[0][i], marks[1][i]
        recs[i]["window_bytes"] = b - a if a is not None and b is not None else 0
        if maybe is not None:
            maybe.close()
    for rec in recs:
        _emit(rec)
    _emit({"ev": "end", "start": start, "w0": read_at[0], "w1": read_at[1], "t": time.monotonic()})


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _rst(args: argparse.Namespace) -> None:
    # A raw TCP socket: the kernel writes the IP header, we write the TCP one.
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    sock.connect((args.dst, args.port))  # picks the route, hence the source address
    src = sock.getsockname()[0]
    pseudo = socket.inet_aton(src) + socket.inet_aton(args.dst) + struct.pack("!BBH", 0, 6, 20)
    for i in range(args.count):
        # sport, dport, seq, ack, data offset 5 words, flags RST, window, checksum, urgent
        head = struct.pack(
            "!HHIIBBHHH", 40000 + i, args.port, random.getrandbits(32), 0, 5 << 4, 0x04, 0, 0, 0
        )
        sock.send(head[:16] + struct.pack("!H", _checksum(pseudo + head)) + head[18:])
        time.sleep(RST_GAP)
    _emit({"sent": args.count, "src": src})


def _recv_icmp(sock: socket.socket, until: float) -> tuple[bytes, str] | None:
    """One ICMP message (without its IP header) and its source, or None at ``until``."""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return None
        pkt, (src, _) = sock.recvfrom(65535)
        ihl = (pkt[0] & 0x0F) * 4
        return pkt[ihl:], src


def _ping(args: argparse.Namespace) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    if args.source:
        sock.bind((args.source, 0))
    ident = random.randrange(1, 0xFFFF)
    sent_at: dict[int, float] = {}
    rtts: dict[int, float] = {}
    payload = b"wanwatch-lab-ping" + bytes(16)  # non-empty: some networks drop empty echoes
    t0 = time.monotonic()
    next_send = t0
    seq = 0
    last_deadline = t0
    while seq < args.count or (time.monotonic() < last_deadline and len(rtts) < len(sent_at)):
        now = time.monotonic()
        if seq < args.count and now >= next_send:
            head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            msg = struct.pack("!BBHHH", 8, 0, _checksum(head + payload), ident, seq) + payload
            sent_at[seq] = time.monotonic()
            sock.sendto(msg, (args.dst, 0))
            last_deadline = sent_at[seq] + args.timeout
            seq += 1
            next_send += args.interval
            continue
        until = next_send if seq < args.count else last_deadline
        got = _recv_icmp(sock, until)
        if got is None:
            continue
        icmp, src = got
        if len(icmp) < 8 or icmp[0] != 0 or src != args.dst:
            continue
        _, _, _, r_id, r_seq = struct.unpack("!BBHHH", icmp[:8])
        arrived = time.monotonic()
        if (
            r_id == ident
            and r_seq in sent_at
            and r_seq not in rtts
            and arrived - sent_at[r_seq] <= args.timeout
        ):
            rtts[r_seq] = (arrived - sent_at[r_seq]) * 1000
    lost = set(sent_at) - set(rtts)
    _emit(
        {
            "sent": len(sent_at),
            "received": len(rtts),
            "rtts_ms": [rtts[s] for s in sorted(rtts)],
            "lost": sorted(lost),
            "first_lost_sent": sent_at[min(lost)] if lost else None,
            "t0": t0,
            "t1": time.monotonic(),
        }
    )


def _stream(args: argparse.Namespace) -> None:
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def new_flow() -> socket.socket:
        if args.proto == "icmp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a new source port
        sock.setblocking(False)
        return sock

    payload = b"wanwatch-lab-stream" + bytes(16)
    sock = new_flow()
    ident = random.randrange(1, 0xFFFF)
    gap = 1.0 / args.rate
    t0 = time.monotonic()
    end = t0 + args.seconds
    count = int(args.rate * args.seconds)
    sent = received = flows = 0
    next_send = t0
    next_flow = t0 + args.rotate
    _emit({"ev": "started", "t": t0})
    while not stopping and sent < count and (now := time.monotonic()) < end:
        if now >= next_flow:
            next_flow = now + args.rotate
            flows += 1
            ident = ident % 0xFFFE + 1
            if args.proto == "udp":
                sock.close()
                sock = new_flow()
        if now >= next_send:
            try:
                if args.proto == "icmp":
                    seq = sent & 0xFFFF
                    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
                    msg = struct.pack("!BBHHH", 8, 0, _checksum(head + payload), ident, seq)
                    sock.sendto(msg + payload, (args.dst, 0))
                else:
                    sock.sendto(payload, (args.dst, args.port))
            except OSError:
                pass  # no route or buffer full while the uplink changes: counted as not sent
            else:
                sent += 1
            next_send += gap
            continue
        ready, _, _ = select.select([sock], [], [], max(0.0, next_send - now))
        while ready:
            try:
                sock.recv(65535)  # answers are only counted (any ICMP, for a rough figure)
            except BlockingIOError:
                break
            received += 1
    sock.close()
    _emit({"ev": "end", "t": time.monotonic(), "sent": sent, "received": received, "flows": flows})


def _sink(args: argparse.Namespace) -> None:
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", args.port))
    end = time.monotonic() + args.seconds
    _emit({"ev": "listening", "port": args.port})
    n = 0
    while not stopping and (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], min(left, 0.2))
        if ready:
            sock.recv(65535)
            n += 1
    _emit({"ev": "end", "received": n})


def _hop(args: argparse.Namespace) -> None:
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, args.ttl)
    udp.bind(("0.0.0.0", 0))
    sport = udp.getsockname()[1]
    for attempt in range(args.tries):
        dport = 33434 + attempt  # the traceroute convention: an unlikely open port
        sent = time.monotonic()
        udp.sendto(b"wanwatch-lab-hop", (args.dst, dport))
        until = sent + args.timeout
        while (got := _recv_icmp(raw, until)) is not None:
            icmp, src = got
            if len(icmp) < 8 + 20 + 8 or icmp[0] not in (3, 11):
                continue
            inner = icmp[8:]
            ihl = (inner[0] & 0x0F) * 4
            if inner[9] != socket.IPPROTO_UDP or len(inner) < ihl + 4:
                continue
            i_sport, i_dport = struct.unpack("!HH", inner[ihl : ihl + 4])
            if (i_sport, i_dport) != (sport, dport):
                continue
            rtt = (time.monotonic() - sent) * 1000
            _emit({"ok": True, "hop": src, "type": icmp[0], "rtt_ms": rtt, "tries": attempt + 1})
            return
    _emit({"ok": False, "tries": args.tries})


def _dns_query(name: str, qid: int) -> bytes:
    head = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # RD set, one question
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split("."))
    return head + labels + b"\0" + struct.pack("!HH", 1, 1)  # A, IN


def _skip_name(msg: bytes, pos: int) -> int:
    while True:
        n = msg[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:  # compression pointer: two bytes, end of name
            return pos + 2
        pos += n + 1


def _dns_parse(msg: bytes, qid: int) -> tuple[int, list[str]] | None:
    """(rcode, A addresses) of a reply to ``qid``, or None if it is not one."""
    if len(msg) < 12:
        return None
    r_id, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    if r_id != qid or not flags & 0x8000:
        return None
    pos = 12
    for _ in range(qd):
        pos = _skip_name(msg, pos) + 4
    found = []
    for _ in range(an):
        pos = _skip_name(msg, pos)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[pos : pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            found.append(socket.inet_ntoa(msg[pos : pos + 4]))
        pos += rdlen
    return flags & 0x000F, found


def _dns(args: argparse.Namespace) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((args.server, 53))
    t0 = time.monotonic()
    for attempt in range(args.tries):
        qid = random.randrange(0, 0x10000)
        sent = time.monotonic()
        sock.send(_dns_query(args.name, qid))
        until = sent + args.timeout
        while (left := until - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            try:
                reply = _dns_parse(sock.recv(4096), qid)
            except (ConnectionRefusedError, struct.error, IndexError):
                reply = None
            if reply is not None:
                now = time.monotonic()
                _emit(
                    {
                        "ok": True,
                        "rcode": reply[0],
                        "addresses": reply[1],
                        "rtt_ms": (now - sent) * 1000,
                        "tries": attempt + 1,
                        "t0": t0,
                        "t1": now,
                    }
                )
                return
    _emit({"ok": False, "tries": args.tries, "t0": t0, "t1": time.monotonic()})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wanwatch.lab.traffic")
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("connect", help="new TCP connections to whoami every --interval")
    c.add_argument("--dst", required=True)
    c.add_argument("--port", type=int, default=WHOAMI_PORT)
    c.add_argument("--interval", type=float, default=0.02)
    c.add_argument("--timeout", type=float, default=1.0)
    c.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS)
    c.add_argument("--max-attempts", type=int, default=MAX_ATTEMPTS)
    c.add_argument("--until-peer", default=None, help="stop at the first success seen from this")
    c.add_argument("--until-after", type=float, default=0.0, help="...started at/after this")
    c.add_argument("--source", action="append", help="bind attempt n to the n-th (cycling)")
    f = sub.add_parser("flow", help="one long-lived echo connection")
    f.add_argument("--dst", required=True)
    f.add_argument("--port", type=int, default=WHOAMI_PORT)
    f.add_argument("--interval", type=float, default=0.1)
    f.add_argument("--stall-after", type=float, default=1.0)
    f.add_argument("--max-seconds", type=float, default=600.0)
    f.add_argument("--source", default=None, help="bind to this client address")
    b = sub.add_parser("bulk", help="parallel bulk TCP flows to the bulk server")
    b.add_argument("--dst", required=True)
    b.add_argument("--port", type=int, default=BULK_PORT)
    b.add_argument("--flows", type=int, default=1)
    b.add_argument("--seconds", type=float, default=5.0)
    b.add_argument("--warmup", type=float, default=1.0)
    b.add_argument("--direction", choices=["down", "up"], default="down")
    b.add_argument("--source", action="append", help="bind flow n to the n-th (cycling)")
    h = sub.add_parser("hop", help="who answers a TTL-limited UDP probe")
    h.add_argument("--dst", required=True)
    h.add_argument("--ttl", type=int, default=2)
    h.add_argument("--timeout", type=float, default=1.0)
    h.add_argument("--tries", type=int, default=3)
    d = sub.add_parser("dns", help="one A query over UDP")
    d.add_argument("--server", required=True)
    d.add_argument("--name", required=True)
    d.add_argument("--timeout", type=float, default=1.0)
    d.add_argument("--tries", type=int, default=3)
    p = sub.add_parser("ping", help="ICMP echo, summary of RTTs")
    p.add_argument("--dst", required=True)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--source", default=None)
    r = sub.add_parser("rst", help="TCP resets of no connection (conntrack: invalid)")
    r.add_argument("--dst", required=True)
    r.add_argument("--port", type=int, default=WHOAMI_PORT)
    r.add_argument("--count", type=int, default=20)
    st = sub.add_parser("stream", help="packets at a steady rate: ICMP echo or one-way UDP")
    st.add_argument("--dst", required=True)
    st.add_argument("--rate", type=float, default=500.0)
    st.add_argument("--seconds", type=float, default=60.0)
    st.add_argument("--proto", choices=["icmp", "udp"], default="icmp")
    st.add_argument("--port", type=int, default=SINK_PORT)
    st.add_argument("--rotate", type=float, default=1.0, help="a new flow every this many s")
    sk = sub.add_parser("sink", help="a UDP port that reads and never answers")
    sk.add_argument("--port", type=int, default=SINK_PORT)
    sk.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.cmd in ("stream", "sink"):
        args.seconds = min(args.seconds, MAX_STREAM_SECONDS)
    if args.cmd == "stream":
        args.rate = max(1.0, min(args.rate, MAX_STREAM_RATE))
        args.rotate = max(0.05, args.rotate)
        _stream(args)
    elif args.cmd == "sink":
        _sink(args)
    elif args.cmd == "connect":
        args.max_attempts = min(args.max_attempts, MAX_ATTEMPTS)
        asyncio.run(_connect_loop(args))
    elif args.cmd == "flow":
        _flow(args)
    elif args.cmd == "bulk":
        args.flows = max(1, min(args.flows, MAX_BULK_FLOWS))
        args.seconds = min(args.seconds, MAX_BULK_SECONDS)
        _bulk(args)
    elif args.cmd == "hop":
        _hop(args)
    elif args.cmd == "dns":
        _dns(args)
    elif args.cmd == "rst":
        args.count = min(args.count, MAX_ATTEMPTS)
        _rst(args)
    else:
        args.count = min(args.count, MAX_ATTEMPTS)
        _ping(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
