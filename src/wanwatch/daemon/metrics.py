"""Prometheus metrics, derived from the same status the control socket serves.

A custom collector reads the daemon's status at scrape time, so there is no
second bookkeeping path that could disagree with `wanwatch status`. The daemon's
HTTP server (httpd.py) serves the exposition on its own asyncio loop (no thread
touches engine state), alone (``--metrics``, servers.py) or as ``/metrics``
beside the status page (``--http``, web/app.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from wanwatch.engine.intent import PathKind
from wanwatch.status import FirewallStatus, RulesStatus, Status

STATES = ("unknown", "up", "degraded", "down")
ADMIN = ("enabled", "drain", "disabled")
HA_ROLES = ("MASTER", "BACKUP", "FAULT", "STOP")  # keepalived's, as the pair last announced


class StatusCollector(Collector):
    """Uplink gauges from ``status()``; event counters from ``counts()``."""

    def __init__(
        self, status: Callable[[], Status], counts: Callable[[], Mapping[str, int]]
    ) -> None:
        self._status = status
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        st = self._status()
        state = GaugeMetricFamily(
            "wanwatch_uplink_state", "1 for the uplink's current state", labels=["wan", "state"]
        )
        carrying = GaugeMetricFamily(
            "wanwatch_uplink_carrying", "1 if the uplink takes new connections", labels=["wan"]
        )
        rtt = GaugeMetricFamily("wanwatch_uplink_rtt_seconds", "smoothed probe RTT", labels=["wan"])
        loss = GaugeMetricFamily(
            "wanwatch_uplink_loss_ratio", "windowed probe loss", labels=["wan"]
        )
        # IPv6 (docs/ipv6.md): each family's own state where both are probed, and
        # whether the IPv6 policy chose the uplink (it may differ from IPv4's choice).
        family_state = GaugeMetricFamily(
            "wanwatch_uplink_family_state",
            "1 for the current state of one address family of a dual-stack uplink",
            labels=["wan", "family", "state"],
        )
        carrying6 = GaugeMetricFamily(
            "wanwatch_uplink_carrying6",
            "1 if the uplink takes new IPv6 connections",
            labels=["wan"],
        )
        admin = GaugeMetricFamily(
            "wanwatch_uplink_admin",
            "1 for the operator's choice (wanwatch disable/enable)",
            labels=["wan", "admin"],
        )
        moved = CounterMetricFamily(
            "wanwatch_uplink_bytes",
            "IP bytes through the uplink's device, as nft counted them (linux/usage.py)",
            labels=["wan", "direction"],
        )
        moved6 = CounterMetricFamily(
            "wanwatch_uplink_ipv6_bytes",
            "IPv6 bytes through the uplink's device: IPv6's share of wanwatch_uplink_bytes",
            labels=["wan", "direction"],
        )
        packets = CounterMetricFamily(
            "wanwatch_uplink_packets",
            "packets through the uplink's device, as nft counted them",
            labels=["wan", "direction"],
        )
        for name, u in st.counters.items():
            moved.add_metric([name, "in"], u.bytes_in)
            moved.add_metric([name, "out"], u.bytes_out)
            moved6.add_metric([name, "in"], u.bytes_in6)
            moved6.add_metric([name, "out"], u.bytes_out6)
            packets.add_metric([name, "in"], u.packets_in)
            packets.add_metric([name, "out"], u.packets_out)
        sent = CounterMetricFamily("wanwatch_probes_sent", "probes sent", labels=["wan"])
        replies = CounterMetricFamily("wanwatch_probe_replies", "probe replies", labels=["wan"])
        for w in st.wans:
            for s in STATES:
                state.add_metric([w.name, s], 1.0 if w.state == s else 0.0)
            for a in ADMIN:
                admin.add_metric([w.name, a], 1.0 if w.admin == a else 0.0)
            carrying.add_metric([w.name], 1.0 if w.carrying else 0.0)
            carrying6.add_metric([w.name], 1.0 if w.carrying6 else 0.0)
            for family, fs in sorted(w.families.items()):
                for s in STATES:
                    family_state.add_metric([w.name, family, s], 1.0 if fs == s else 0.0)
            if w.rtt_ms is not None:
                rtt.add_metric([w.name], w.rtt_ms / 1000)
            loss.add_metric([w.name], w.loss_pct / 100)
            sent.add_metric([w.name], w.probes.sent)
            replies.add_metric([w.name], w.probes.replies)
        applied = GaugeMetricFamily(
            "wanwatch_dataplane_applied", "1 if the kernel holds what the engine wants"
        )
        applied.add_metric([], 1.0 if st.applied else 0.0)
        failed = GaugeMetricFamily(
            "wanwatch_reconcile_failed_steps", "reconcile steps failing now (retried)"
        )
        failed.add_metric([], float(len(st.failed_steps)))
        contested = GaugeMetricFamily(
            "wanwatch_drift_contested", "kernel objects another program keeps removing"
        )
        contested.add_metric([], float(len(st.contested)))
        events = CounterMetricFamily("wanwatch_events", "events by name", labels=["event"])
        for name, value in sorted(self._counts().items()):
            events.add_metric([name], value)
        yield from (state, admin, carrying, rtt, loss, moved, moved6, packets, sent, replies)
        yield from (applied, failed, contested, family_state, carrying6)
        yield from _quotas(st)
        if st.ha is not None:
            role = GaugeMetricFamily(
                "wanwatch_ha_role", "1 for this router's VRRP role (linux/pair.py)", labels=["role"]
            )
            for r in HA_ROLES:
                role.add_metric([r], 1.0 if st.ha.get("role") == r else 0.0)
            yield role
        yield events
        if st.firewall is not None:
            yield from _firewall(st.firewall)
        if st.rules is not None:
            yield from _rules(st.rules)


def _quotas(st: Status) -> Iterator[GaugeMetricFamily]:
    """Each quota's bytes in this period and its limit (engine/quota.py)."""
    used = GaugeMetricFamily(
        "wanwatch_quota_bytes", "bytes both ways counted in the quota's period", labels=["wan"]
    )
    limit = GaugeMetricFamily("wanwatch_quota_limit_bytes", "the quota's limit", labels=["wan"])
    for w in st.wans:
        if w.quota is not None:
            used.add_metric([w.name], w.quota.used)
            limit.add_metric([w.name], w.quota.limit)
    yield from (used, limit)


def _firewall(fw: FirewallStatus) -> Iterator[CounterMetricFamily]:
    """The firewall's counters (docs/firewall.md): totals while the daemon runs."""
    dropped = CounterMetricFamily(
        "wanwatch_firewall_dropped_packets",
        "packets the firewall dropped from an uplink (chain: to the router, or through it)",
        labels=["wan", "chain"],
    )
    for wan, d in fw.dropped.items():
        dropped.add_metric([wan, "input"], d.input)
        dropped.add_metric([wan, "forward"], d.forward)
    guests = CounterMetricFamily(
        "wanwatch_firewall_guest_dropped_packets",
        "packets the firewall dropped from or to an isolated LAN",
        labels=["lan"],
    )
    for lan, packets in fw.guests.items():
        guests.add_metric([lan], packets)
    forwards = CounterMetricFamily(
        "wanwatch_forward_packets",
        "connections a port forward took (the first packet of each: the dstnat chain's count)",
        labels=["forward"],
    )
    for name, packets in fw.forwards.items():
        forwards.add_metric([name], packets)
    yield from (dropped, guests, forwards)


def _rules(rs: RulesStatus) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Each policy rule's path per family and its counters (docs/rules.md): totals while
    the daemon runs."""
    path = GaugeMetricFamily(
        "wanwatch_rule_path",
        "1 for the policy rule's current path for new connections of the family",
        labels=["rule", "family", "path"],
    )
    via = GaugeMetricFamily(
        "wanwatch_rule_uplink",
        "1 if the rule's new connections of the family leave by the uplink now"
        " (when_down default: the policy's)",
        labels=["rule", "family", "wan"],
    )
    opened = CounterMetricFamily(
        "wanwatch_rule_connections",
        "new connections the rule decided: the first packet of each, each refused attempt too",
        labels=["rule"],
    )
    moved = CounterMetricFamily(
        "wanwatch_rule_bytes",
        "bytes of the rule's connections (out: from the LAN; in: the replies)",
        labels=["rule", "direction"],
    )
    for r in rs.rules:
        for family in r.families:
            # the status names IPv6's path only where it differs from the first family's
            second = family != r.families[0]
            kind = (r.path6 or r.path) if second else r.path
            uplinks = r.uplinks6 if second and r.uplinks6 is not None else r.uplinks
            for p in PathKind:
                path.add_metric([r.name, str(family), p.value], 1.0 if kind == p.value else 0.0)
            for wan in uplinks:
                via.add_metric([r.name, str(family), wan], 1.0)
        opened.add_metric([r.name], r.traffic.connections)
        moved.add_metric([r.name, "out"], r.traffic.bytes_out)
        moved.add_metric([r.name, "in"], r.traffic.bytes_in)
    yield from (path, via, opened, moved)


def registry_for(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(collector: Collector) -> Callable[[], tuple[bytes, str]]:
    """A function returning the exposition text of ``collector`` and its content type."""
    registry = registry_for(collector)
    return lambda: (generate_latest(registry), CONTENT_TYPE_LATEST)
