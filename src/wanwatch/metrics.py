"""Prometheus metrics, derived from the same status the control socket serves.

A custom collector reads the daemon's status at scrape time, so there is no
second bookkeeping path that could disagree with `wanwatch status`. The HTTP
endpoint runs on the daemon's own asyncio loop (no thread touches engine state),
alone (``--metrics``) or as ``/metrics`` beside the status page (``--http``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from wanwatch.web import http

STATES = ("unknown", "up", "degraded", "down")


class StatusCollector(Collector):
    """Uplink gauges from ``status()``; event counters from ``counts()``."""

    def __init__(
        self, status: Callable[[], dict[str, Any]], counts: Callable[[], Mapping[str, int]]
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
        sent = CounterMetricFamily("wanwatch_probes_sent", "probes sent", labels=["wan"])
        replies = CounterMetricFamily("wanwatch_probe_replies", "probe replies", labels=["wan"])
        for w in st["wans"]:
            for s in STATES:
                state.add_metric([w["name"], s], 1.0 if w["state"] == s else 0.0)
            carrying.add_metric([w["name"]], 1.0 if w.get("carrying") else 0.0)
            if w["rtt_ms"] is not None:
                rtt.add_metric([w["name"]], w["rtt_ms"] / 1000)
            loss.add_metric([w["name"]], w["loss_pct"] / 100)
            probes = w.get("probes") or {}
            sent.add_metric([w["name"]], probes.get("sent", 0))
            replies.add_metric([w["name"]], probes.get("replies", 0))
        events = CounterMetricFamily("wanwatch_events", "events by name", labels=["event"])
        for name, value in sorted(self._counts().items()):
            events.add_metric([name], value)
        yield from (state, carrying, rtt, loss, sent, replies, events)


def registry_for(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(collector: Collector) -> Callable[[], tuple[bytes, str]]:
    """A function returning the exposition text of ``collector`` and its content type."""
    registry = registry_for(collector)
    return lambda: (generate_latest(registry), CONTENT_TYPE_LATEST)


async def serve(host: str, port: int, registry: CollectorRegistry) -> asyncio.Server:
    """A minimal HTTP endpoint: any GET answers the exposition text."""
    return await http.serve(
        host,
        port,
        lambda path: http.Response(200, CONTENT_TYPE_LATEST, generate_latest(registry)),
    )
