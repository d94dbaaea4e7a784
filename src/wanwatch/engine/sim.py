"""A link and probe simulator with a virtual clock, for tests and bench/engine.py.

It drives an :class:`Engine` exactly as the daemon does (tick, due, reply,
carrier at the times they happen) against modelled uplinks: base RTT, normal
jitter, iid loss per probe round trip, spans of a higher RTT (a queue filled
by an upload), silent outages, carrier loss, per-target silence, a probe method
filtered (ICMP dropped by a carrier) and a captive portal (HTTP probes
redirected, the rest answered). An HTTP probe takes
two round trips (connect, then request). Seeded, so every run of a scenario is
identical.

Traffic model (the daemon's kernel stall watcher, linux/traffic.py): while LAN
traffic flows both ways (``traffic``), a silent outage is reported to the engine
``stall_after`` seconds after it starts; a one-way flow (``one_way``: packets
leave, nothing comes back, the link itself is fine) is reported as a stall every
``stall_after`` seconds, the most the watcher could ever say.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from wanwatch.config import Config
from wanwatch.config.fields import IpAddress
from wanwatch.config.model import Target
from wanwatch.engine.core import Engine
from wanwatch.engine.events import Event
from wanwatch.engine.intent import Intent

Span = tuple[float, float]  # [start, end) in virtual seconds
PORTAL_URL = "http://portal.example/topup"  # where a modelled captive portal redirects


def _covers(spans: Sequence[Span], start: float, end: float) -> bool:
    """Does any span overlap [start, end]?"""
    return any(a <= end and start < b for a, b in spans)


@dataclass(frozen=True)
class LinkModel:
    """What lies beyond one uplink."""

    rtt: float = 0.03  # base round trip, seconds
    jitter: float = 0.0  # standard deviation of the RTT (normal), seconds
    loss: float = 0.0  # iid chance that a probe or its reply is lost
    # (span, rtt): the base round trip during that span instead of ``rtt``, as when
    # an upload fills the modem's queue (bufferbloat); a probe takes the RTT of
    # the moment it leaves
    slow: Sequence[tuple[Span, float]] = ()
    # (time, loss) from that time on, overriding ``loss``; sorted
    loss_changes: Sequence[tuple[float, float]] = ()
    outages: Sequence[Span] = ()  # silent blackhole: carrier up, nothing answers
    outages6: Sequence[Span] = ()  # the same for IPv6 alone (IPv4 still answers)
    carrier_down: Sequence[Span] = ()  # the Ethernet link itself is down
    silent_targets: Mapping[IpAddress, Sequence[Span]] = field(default_factory=dict)
    filtered: Mapping[str, Sequence[Span]] = field(default_factory=dict)  # method -> no answer
    portal: Sequence[Span] = ()  # HTTP probes are redirected to PORTAL_URL
    traffic: Sequence[Span] = ()  # LAN traffic through this uplink, both ways
    one_way: Sequence[Span] = ()  # LAN traffic out only, nothing ever answers it
    stall_after: float = 0.075  # the stall watcher's latency (poll + window)

    def stalls(self) -> list[float]:
        """When the stall watcher reports this uplink (see the module docstring)."""
        out = [
            a + self.stall_after
            for a, b in self.outages
            if a + self.stall_after < b and any(t0 <= a < t1 for t0, t1 in self.traffic)
        ]
        for t0, t1 in self.one_way:
            n = int((t1 - t0) / self.stall_after)
            out += [t0 + i * self.stall_after for i in range(1, n + 1)]
        return sorted(out)

    def rtt_at(self, t: float) -> float:
        return next((rtt for (a, b), rtt in self.slow if a <= t < b), self.rtt)

    def loss_at(self, t: float) -> float:
        if not self.loss_changes:
            return self.loss
        i = bisect.bisect_right([c[0] for c in self.loss_changes], t)
        return self.loss if i == 0 else self.loss_changes[i - 1][1]


class SimulationError(RuntimeError):
    """The engine asked to be woken in the past over and over (an engine bug)."""


@dataclass
class Simulator:
    """Virtual time, modelled links, one Engine."""

    config: Config
    links: Mapping[str, LinkModel]
    seed: int = 0
    start: float = 0.0
    events: list[Event] = field(default_factory=list)
    intents: list[tuple[float, Intent]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.now = self.start
        self.engine = Engine(self.config, self.start)
        self.intents.append((self.start, self.engine.intent()))
        self._replies: list[tuple[float, int, str, int, float, str | None, int]] = []
        self._order = 0
        carrier: list[tuple[float, str, bool]] = []
        for name, link in self.links.items():
            for a, b in link.carrier_down:
                carrier += [(a, name, False), (b, name, True)]
        carrier.sort(key=lambda c: (c[0], c[1], c[2]))
        self._carrier = carrier
        self._carrier_i = 0
        self._stalls = sorted((t, name) for name, link in self.links.items() for t in link.stalls())
        self._stall_i = 0

    def run_until(self, end: float) -> None:
        """Advance virtual time to ``end``, feeding the engine as the daemon would."""
        spins = 0
        while True:
            t = self.engine.next_wakeup()
            if self._replies:
                t = min(t, self._replies[0][0])
            if self._carrier_i < len(self._carrier):
                t = min(t, self._carrier[self._carrier_i][0])
            if self._stall_i < len(self._stalls):
                t = min(t, self._stalls[self._stall_i][0])
            if t > end:
                break
            if t <= self.now:
                spins += 1
                if spins > 10_000:
                    raise SimulationError(f"engine keeps asking for t={t} at now={self.now}")
            else:
                spins = 0
            self.now = max(self.now, t)
            self._step()
        self.now = end
        self._step()

    def _step(self) -> None:
        now = self.now
        engine = self.engine
        out = self.events
        while self._carrier_i < len(self._carrier) and self._carrier[self._carrier_i][0] <= now:
            _, name, up = self._carrier[self._carrier_i]
            self._carrier_i += 1
            out += engine.carrier(name, up, now)
        while self._stall_i < len(self._stalls) and self._stalls[self._stall_i][0] <= now:
            _, name = self._stalls[self._stall_i]
            self._stall_i += 1
            out += engine.traffic_stall(name, now)
        while self._replies and self._replies[0][0] <= now:
            _, _, name, seq, rtt, portal, family = heapq.heappop(self._replies)
            out += engine.reply(name, seq, rtt, now, portal, family=family)
        out += engine.tick(now)
        for req in engine.due(now):
            self._fate(req.wan, req.target, req.seq, now)
        if engine.intent() is not self.intents[-1][1]:
            self.intents.append((now, engine.intent()))

    def _fate(self, wan: str, target: Target, seq: int, now: float) -> None:
        link = self.links.get(wan, LinkModel())
        rtt = link.rtt_at(now) + (self.rng.gauss(0.0, link.jitter) if link.jitter else 0.0)
        rtt = max(rtt, 0.0005) * (2 if target.method == "http" else 1)
        lost = self.rng.random() < link.loss_at(now)
        back = now + rtt
        if (
            lost
            or _covers(link.outages, now, back)
            or _covers(link.carrier_down, now, back)
            or _covers(link.silent_targets.get(target.address, ()), now, back)
            or (target.address.version == 6 and _covers(link.outages6, now, back))
            or _covers(link.filtered.get(target.method, ()), now, back)
        ):
            return
        portal = None
        if target.method == "http" and _covers(link.portal, now, back):
            portal = PORTAL_URL
        self._order += 1
        heapq.heappush(
            self._replies, (back, self._order, wan, seq, rtt, portal, target.address.version)
        )

    # ----------------------------------------------------------------- reading results

    def named(self, name: str, wan: str | None = None) -> list[Event]:
        return [
            e for e in self.events if e.name == name and (wan is None or e.fields.get("wan") == wan)
        ]

    def primary_at(self, t: float) -> str | None:
        """Which uplink carried new connections at virtual time ``t``."""
        best: Intent | None = None
        for at, intent in self.intents:
            if at > t:
                break
            best = intent
        return None if best is None else best.primary


def first_after(events: Sequence[Event], name: str, t: float, **fields: object) -> Event | None:
    """The first event called ``name`` at or after ``t`` whose fields match."""
    for e in events:
        if e.name == name and e.at >= t and all(e.fields.get(k) == v for k, v in fields.items()):
            return e
    return None


def poisson_upper(count: int, exposure: float) -> float:
    """95 % upper confidence bound on a rate from ``count`` events in ``exposure``.

    Exact for 0 events (-ln 0.05 = 3.0); otherwise the Wilson-Hilferty
    approximation of the chi-square quantile with 2 * count + 2 degrees of freedom.
    """
    if exposure <= 0:
        return math.inf
    if count == 0:
        return -math.log(0.05) / exposure
    df = 2 * count + 2
    z95 = 1.6448536269514722
    chi = df * (1 - 2 / (9 * df) + z95 * math.sqrt(2 / (9 * df))) ** 3
    return chi / 2 / exposure
