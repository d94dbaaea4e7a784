"""New TCP connections from a lab client: a loop across a cut, a batch, the predicted uplink."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING

from wanwatch.engine.policy import plan_for
from wanwatch.errors import LabError
from wanwatch.lab import netns, poll
from wanwatch.lab.netns import Tail
from wanwatch.lab.traffic.spawn import POLL
from wanwatch.lab.worker import worker_argv
from wanwatch.lab.worker.limits import DEFAULT_MAX_SECONDS, MAX_ATTEMPTS
from wanwatch.lab.worker.servers import WHOAMI_PORT
from wanwatch.linux.nft import predict_bucket

if TYPE_CHECKING:
    from wanwatch.lab.procs import Proc
    from wanwatch.lab.topology import Lab


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
        dst: IPv4Address | IPv6Address | None = None,
        port: int = WHOAMI_PORT,
        interval: float = 0.02,
        timeout: float = 1.0,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
        sources: Sequence[IPv4Address | IPv6Address] = (),
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
        argv = worker_argv(
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
            # IPv4 arrives masqueraded to the ISP's address; IPv6 from the ISP's /48.
            isp = self.lab.isp(until_via)
            argv += ["--until-peer", str(isp.net6 if self.dst.version == 6 else isp.public.ip)]
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

    def settled(self, before: float, timeout: float) -> list[Attempt]:
        """Wait until every attempt started before monotonic ``before`` has finished; every
        attempt reported so far. LabError after ``timeout`` seconds.

        Attempts start in sequence order and report when they finish, in any order:
        all of those before are in once one started at/after ``before`` has reported
        and so has every lower sequence number.
        """

        def done() -> bool:
            self.poll()
            later = [a.seq for a in self._seen if a.t0 >= before]
            seen = {a.seq for a in self._seen}
            return self.finished or (bool(later) and seen.issuperset(range(min(later))))

        what = f"the connections from {self.client} started before {before:.3f} to finish"
        poll.until(done, timeout, what)
        return list(self._seen)

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
    dst: IPv4Address | IPv6Address | None = None,
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


def connections(
    lab: Lab,
    client: str,
    count: int,
    *,
    sources: Sequence[IPv4Address | IPv6Address] = (),
    dst: IPv4Address | IPv6Address | None = None,
    port: int = WHOAMI_PORT,
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
        port=port,
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
