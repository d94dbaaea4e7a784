"""What probing an uplink costs: probes per second and bytes per day, per method.

``wanwatch check --explain`` prints it; docs/probes.md ("Budget") explains it.
The rates are the engine's healthy cadence (engine/monitor.py): the ICMP
targets share one probe per ``interval``; every other target runs at its own
interval; a metered uplink that carries nothing runs no faster than
``standby_interval``. Suspicion bursts and rechecks of silent targets are paid
for by stretching the ICMP cadence, so on an uplink with ICMP targets the long
run stays at these figures.

Bytes are IP bytes, both directions, what a carrier counts. Per probe, with
Linux's TCP options (MSS, SACK, timestamps, window scale: a SYN is 60 bytes, a
segment 52 with timestamps, a RST 40), counted from the packets each probe
exchanges:

- ICMP: echo request and reply, 20 + 8 + 56 bytes each;
- TCP: SYN, SYN-ACK, ACK, RST;
- HTTP: a TCP connect, the request (http.py builds it, so its length is exact),
  the response head (HTTP_RESPONSE: a bare 204 like the lab's; a real server's
  head is longer, a portal's page longer still), the ACKs and FIN around it;
- DNS: an A query without EDNS and its reply with one A record, UDP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from wanwatch.config import Config, Wan
from wanwatch.config.model import DnsTarget, HttpTarget, Target, TcpTarget

DAY: Final = 86400
ICMP_BYTES: Final = 2 * (20 + 8 + 56)
_SYN: Final = 60  # IP 20 + TCP 20 + options 20
_SEGMENT: Final = 52  # IP 20 + TCP 20 + timestamps 12
_RST: Final = 40
TCP_BYTES: Final = 2 * _SYN + _SEGMENT + _RST
HTTP_RESPONSE: Final = 120  # a 204 head with Date and Content-Length (the lab's server)
# the connect's SYN, SYN-ACK and ACK; request and response segments; the ACK of
# each; the server's FIN (Connection: close) and our RST
_HTTP_PACKETS: Final = 2 * _SYN + 6 * _SEGMENT + _RST
_UDP_DNS: Final = 20 + 8 + 12 + 2 + 4  # IP, UDP, DNS header, name's end bytes, type and class
_A_RECORD: Final = 2 + 10 + 4  # a compressed name, type/class/ttl/length, the address


def probe_bytes(target: Target) -> int:
    """IP bytes, both directions, of one probe of ``target``."""
    if isinstance(target, TcpTarget):
        return TCP_BYTES
    if isinstance(target, HttpTarget):
        from wanwatch.probe.http import request_bytes

        return _HTTP_PACKETS + len(request_bytes(target)) + HTTP_RESPONSE
    if isinstance(target, DnsTarget):
        return 2 * (_UDP_DNS + len(target.name)) + _A_RECORD
    return ICMP_BYTES


@dataclass(frozen=True)
class Cost:
    """One method's share of an uplink's probing."""

    method: str
    targets: int
    per_s: float  # probes per second
    bytes_day: float


def costs(cfg: Config, wan: Wan, *, standby: bool = False) -> list[Cost]:
    """Each method's healthy cadence on ``wan`` (``standby``: a metered uplink that
    carries nothing), in config order of first appearance."""
    mon = cfg.monitor_for(wan)
    floor = mon.standby_interval if standby else 0.0
    found: dict[str, Cost] = {}
    icmp = [t for t in wan.probe.targets if t.own_interval() is None]
    if icmp:
        rate = 1 / max(mon.interval, floor)
        found["icmp"] = Cost("icmp", len(icmp), rate, rate * DAY * ICMP_BYTES)
    for t in wan.probe.targets:
        own = t.own_interval()
        if own is None:
            continue
        rate = 1 / max(own, floor)
        was = found.get(t.method, Cost(t.method, 0, 0.0, 0.0))
        found[t.method] = Cost(
            t.method,
            was.targets + 1,
            was.per_s + rate,
            was.bytes_day + rate * DAY * probe_bytes(t),
        )
    order: list[str] = [t.method for t in wan.probe.targets]
    return sorted(found.values(), key=lambda c: order.index(c.method))
