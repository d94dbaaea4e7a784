"""One-shot measurements from a lab namespace: first hop, DNS lookup, ping, lone resets."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Literal

from wanwatch.lab.traffic.spawn import run_worker
from wanwatch.lab.worker import worker_argv
from wanwatch.lab.worker.limits import RST_GAP

if TYPE_CHECKING:
    from wanwatch.lab.topology import Lab


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
    argv = worker_argv(
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
    r = run_worker(lab, client, argv, "hop", timeout * tries + 10)[-1]
    if not r.get("ok"):
        return None
    return Hop(r["hop"], lab.isp_of(r["hop"]), int(r["type"]), float(r["rtt_ms"]))


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
    # ``connect``: the TCP connection opened the moment the answer came
    connect_t0: float | None = None
    isp: str | None = None  # the uplink it left by (the whoami server saw its address)
    connect_error: str | None = None


def dns_lookup(
    lab: Lab,
    client: str,
    name: str,
    server: IPv4Address | IPv6Address | None = None,
    *,
    timeout: float = 1.0,
    tries: int = 3,
    connect: int | None = None,
    qtype: Literal["A", "AAAA"] = "A",
) -> DnsAnswer:
    """Ask ``server`` (default: the fake internet's DNS) for ``name``'s A (or AAAA) records;
    with ``connect``, then at once open a connection to that port of the first address."""
    srv = server or lab.topology.dns_servers[0]
    argv = worker_argv(
        "dns",
        "--server",
        str(srv),
        "--name",
        name,
        "--type",
        qtype,
        "--timeout",
        str(timeout),
        "--tries",
        str(tries),
        *(["--connect", str(connect)] if connect is not None else []),
    )
    r = run_worker(lab, client, argv, "dns", timeout * (tries + 1) + 10)[-1]
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
        connect_t0=r.get("connect_t0"),
        isp=lab.isp_of(r["peer"]) if "peer" in r else None,
        connect_error=r.get("connect_error"),
    )


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
    argv = worker_argv(
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
    r = run_worker(lab, who, argv, "ping", count * interval + timeout + 10)[-1]
    return PingStats(
        int(r["sent"]),
        int(r["received"]),
        tuple(r["rtts_ms"]),
        float(r["t0"]),
        float(r["t1"]),
        r.get("first_lost_sent"),
    )


def lone_resets(lab: Lab, who: str, dst: IPv4Address | str, count: int = 20) -> int:
    """TCP resets that belong to no connection, from ``who`` to ``dst``'s whoami port:
    conntrack calls each one invalid, so NAT never sees it. How many were sent."""
    argv = worker_argv("rst", "--dst", str(dst), "--count", str(count))
    return int(run_worker(lab, who, argv, "rst", count * RST_GAP + 10)[-1]["sent"])
