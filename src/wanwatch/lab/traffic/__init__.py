"""Client-side measurement in the lab: new connections, long-lived flows, first hop, DNS, ping.

Every measurement runs as a worker process (``wanwatch.lab.worker``) inside a
lab namespace (a LAN client, usually), started through :meth:`Lab.spawn` so the
lab stops it by PID whatever happens, and bounded in attempts and time. Workers
write one JSON object per line with ``time.monotonic()`` timestamps:
CLOCK_MONOTONIC is one clock for all namespaces, so a worker's timestamps
compare directly with a fault's (faults.FaultEvent) or a bench's own.

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
TCP flows against the lab's source/sink server (worker/servers.py) and reports the
bytes of each flow and its ISP, the throughput read from the kernel's TCP
counters at the two ends of a measurement window.

This package is the controller side, one module per kind of measurement:
``connect`` (new connections), ``flow`` (a long-lived one), ``bulk`` (throughput),
``probes`` (first hop, DNS, ping, lone resets), ``stream`` (steady background
load, two-way or one-way), over ``spawn`` (starting workers).
"""

from wanwatch.lab.traffic.bulk import BulkFlow, BulkResult, bulk, bulk_server
from wanwatch.lab.traffic.connect import (
    Attempt,
    ConnectLoop,
    add_client_addresses,
    connections,
    first_new_connection,
    predicted_uplink,
)
from wanwatch.lab.traffic.flow import Flow, FlowReport
from wanwatch.lab.traffic.probes import (
    DnsAnswer,
    Hop,
    PingStats,
    dns_lookup,
    first_hop,
    lone_resets,
    ping,
)
from wanwatch.lab.traffic.stream import Stream, udp_sink

__all__ = [
    "Attempt",
    "BulkFlow",
    "BulkResult",
    "ConnectLoop",
    "DnsAnswer",
    "Flow",
    "FlowReport",
    "Hop",
    "PingStats",
    "Stream",
    "add_client_addresses",
    "bulk",
    "bulk_server",
    "connections",
    "dns_lookup",
    "first_hop",
    "first_new_connection",
    "lone_resets",
    "ping",
    "predicted_uplink",
    "udp_sink",
]
