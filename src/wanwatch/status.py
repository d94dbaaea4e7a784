"""The status contract: what ``wanwatch status``, ``/metrics`` and the web page read.

One typed shape, built by the daemon and decoded by every reader, so a field
cannot mean one thing to the CLI and another to the metrics. The JSON keys are
a public contract (``wanwatch status --json``): extend, never rename.
"""

from __future__ import annotations

from typing import Any

import msgspec


class ProbeStats(msgspec.Struct, frozen=True):
    """The probe socket's counters for one uplink (probe/icmp.py)."""

    sent: int = 0
    replies: int = 0
    send_errors: int = 0
    ignored: int = 0
    pending: int = 0
    evicted: int = 0
    ident: int = 0
    last_errno: int = 0


class Usage(msgspec.Struct, frozen=True):
    """One uplink's traffic: bytes and packets through its device as the kernel counted
    them (nft counters, linux/usage.py), and the office connections open on it now
    (conntrack)."""

    connections: int
    bytes_out: int
    bytes_in: int
    packets_out: int = 0
    packets_in: int = 0
    # Of those, IPv6's (an uplink without IPv6: zero; docs/ipv6.md).
    bytes_out6: int = 0
    bytes_in6: int = 0


class LeaseStatus(msgspec.Struct, frozen=True):
    """The DHCP lease of an uplink with ``address: dhcp`` (linux/dhcp_client.py)."""

    address: str  # with prefix
    router: str | None
    dns: list[str]
    lease_s: int  # as granted
    server: str | None
    age_s: float  # since bound or last renewed


class DelegationStatus(msgspec.Struct, frozen=True):
    """The prefix delegated to an uplink with ``dhcp6`` (linux/dhcp6_client.py)."""

    prefix: str
    preferred_s: int  # lifetimes as granted
    valid_s: int
    age_s: float  # since bound or last renewed


class QuotaStatus(msgspec.Struct, frozen=True):
    """An uplink's data quota (engine/quota.py): bytes both ways in this period."""

    used: int
    limit: int
    period: str  # monthly | prepaid
    period_start: str  # ISO 8601, UTC
    period_end: str | None  # None: prepaid, until `wanwatch quota reset`
    state: str  # ok | warning | exhausted
    warn: float  # the share of ``limit`` that warns
    exhausted: str  # what a used-up quota does: last_resort | off


class UplinkStatus(msgspec.Struct, frozen=True):
    name: str
    state: str  # up | down | degraded | portal | unknown
    rtt_ms: float | None
    loss_pct: float
    since: str  # ISO 8601, UTC, when ``state`` began
    for_s: float
    preferred: bool  # past its hold after a comeback
    carrying: bool  # takes new connections now
    admin: str  # enabled | drain | disabled (wanwatch disable/enable)
    phase: str | None  # suspect | rising | hold | None: the episode under way
    progress: dict[str, float]  # {"lost", "needed"} | {"good", "needed"} | {"hold_left_s"}
    targets: dict[str, str]  # probe target -> answering | silent | unknown
    probes: ProbeStats
    # Uplinks that are not static (dynamic.py); defaults keep older readers working.
    kind: str = "static"  # static | dhcp | point-to-point
    link: str = "up"  # up | down | absent (no such interface now): ``state`` stays down then
    present: bool = True  # the interface exists
    address: str | None = None  # in use now (lease, interface's own or configured)
    gateway: str | None = None  # next hop in use; None: via the device (point-to-point)
    lease: LeaseStatus | None = None
    dhcp_client: dict[str, Any] | None = None  # running, pid, restarts, last_error
    portal_url: str | None = None  # state portal: where its HTTP probes are sent (probes.md)
    # IPv6 (docs/ipv6.md): each family's own state when both are probed ({"4": "up",
    # "6": "down"}; ``state`` is then their one model), and whether it carries IPv6.
    families: dict[str, str] = msgspec.field(default_factory=dict)
    carrying6: bool = False
    # dhcp6 uplinks: the delegated prefix (the LANs' translation target) and its client
    delegation: DelegationStatus | None = None
    dhcp6_client: dict[str, Any] | None = None  # running, pid, restarts, last_error
    quota: QuotaStatus | None = None  # None: the uplink has no quota


class Drops(msgspec.Struct, frozen=True):
    """Packets the firewall dropped from one uplink: to the router, and through it."""

    input: int
    forward: int


class FirewallStatus(msgspec.Struct, frozen=True):
    """The firewall's named counters (linux/firewall.py), totals while the daemon runs."""

    enabled: bool
    dropped: dict[str, Drops]  # uplink -> packets dropped
    guests: dict[str, int]  # isolated LAN -> packets dropped
    forwards: dict[str, int]  # port forward -> connections forwarded
    age_s: float | None  # age of the reading (read off the loop); None before the first


class RuleTraffic(msgspec.Struct, frozen=True):
    """What one policy rule carried: its named counters (linux/rules_nft.py), totals while
    the daemon runs."""

    connections: int  # new connections it decided (the first packet of each; each refused try)
    bytes_out: int  # its connections' packets from the LAN (original direction)
    bytes_in: int  # and their replies


class RuleStatus(msgspec.Struct, frozen=True):
    """One policy rule now (docs/rules.md): where its new connections go, and why."""

    name: str
    path: str  # uplink | balance | block | default
    uplinks: list[str]  # where its new connections leave now (default: the policy's); block: []
    why: str
    traffic: RuleTraffic
    # Its IPv6 connections' path, uplinks and why, where the path differs from IPv4's
    # (docs/rules.md); None: the same, or the rule matches one family only.
    path6: str | None = None
    uplinks6: list[str] | None = None
    why6: str | None = None
    # The families the rule can match (its `to` may hold one family's prefixes only): path
    # is the first one's (docs/rules.md)
    families: list[int] = msgspec.field(default_factory=lambda: [4])


class RulesStatus(msgspec.Struct, frozen=True):
    rules: list[RuleStatus]  # in config order
    age_s: float | None  # age of the counters' reading (read off the loop); None before the first
    # The families the rules have paths in: IPv6 too once a LAN's IPv6 can leave by an
    # uplink (docs/rules.md); an older daemon's answer: IPv4's
    families: list[int] = msgspec.field(default_factory=lambda: [4])


class Status(msgspec.Struct, frozen=True):
    wans: list[UplinkStatus]
    active: list[str]  # uplinks carrying new connections, best first
    mode: str
    stale: bool  # no uplink healthy: the last choice is kept on purpose
    applied: bool  # the kernel holds what the engine wants
    backend_error: str | None  # the latest failure, until a pass succeeds
    failed_steps: dict[str, str]  # reconcile step -> error, until it succeeds
    retry_in_s: float | None  # when the failed steps are tried again
    contested: list[str]  # objects another program keeps removing (repair backs off)
    repairs: int  # drift repairs since start
    counters: dict[str, Usage]
    counters_age_s: float | None  # age of the counters' reading (read off the loop)
    dnsmasq: dict[str, Any] | None
    leases: list[dict[str, Any]]
    events: list[str]  # the latest events, oldest first
    uptime_s: float
    pid: int
    ha: dict[str, Any] | None = None  # the router pair (linux/pair.py), None without one
    firewall: FirewallStatus | None = None  # None from a daemon older than the firewall
    rules: RulesStatus | None = None  # None without policy rules (or from an older daemon)
    active6: list[str] = msgspec.field(default_factory=list)  # the same for IPv6


def to_json(status: Status) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(status)
    return out


def from_json(data: Any) -> Status:
    """Decode a status answer; raises msgspec.ValidationError if it is not one."""
    return msgspec.convert(data, Status)
