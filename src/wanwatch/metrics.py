"""Prometheus metrics, derived from the same status the control socket serves.

A custom collector reads the daemon's status at scrape time, so there is no
second bookkeeping path that could disagree with `wanwatch status`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

STATES = ("unknown", "up", "degraded", "down")


class StatusCollector(Collector):
    def __init__(
        self, status: Callable[[], dict[str, Any]], counters: Callable[[], dict[str, int]]
    ):
        self._status = status
        self._counters = counters

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
        yield from (state, carrying, rtt, loss, sent, replies)
        for name, value in self._counters().items():
            c = CounterMetricFamily(f"wanwatch_{name}", f"{name.replace('_', ' ')} since start")
            c.add_metric([], value)
            yield c
