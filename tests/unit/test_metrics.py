"""Prometheus metrics: derived from the status answer, served on the asyncio loop."""

from __future__ import annotations

import asyncio
from typing import Any

from wanwatch import metrics

STATUS: dict[str, Any] = {
    "wans": [
        {"name": "INET-UTAMA", "state": "down", "rtt_ms": None, "loss_pct": 100.0,
         "carrying": False, "probes": {"sent": 40, "replies": 12}},
        {"name": "BACKUP-INET", "state": "up", "rtt_ms": 31.5, "loss_pct": 2.0,
         "carrying": True, "probes": {"sent": 38, "replies": 38}},
    ],
}  # fmt: skip


def scrape() -> str:
    collector = metrics.StatusCollector(lambda: STATUS, lambda: {"policy.failover": 2})
    registry = metrics.registry_for(collector)

    async def go() -> bytes:
        server = await metrics.serve("127.0.0.1", 0, registry)
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return data
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(go()).decode()


def test_metrics_follow_status() -> None:
    text = scrape()
    assert text.startswith("HTTP/1.1 200 OK")
    assert 'wanwatch_uplink_state{state="down",wan="INET-UTAMA"} 1.0' in text
    assert 'wanwatch_uplink_state{state="up",wan="INET-UTAMA"} 0.0' in text
    assert 'wanwatch_uplink_carrying{wan="BACKUP-INET"} 1.0' in text
    assert 'wanwatch_uplink_rtt_seconds{wan="BACKUP-INET"} 0.0315' in text
    assert 'wanwatch_uplink_rtt_seconds{wan="INET-UTAMA"}' not in text  # no RTT while down
    assert 'wanwatch_uplink_loss_ratio{wan="INET-UTAMA"} 1.0' in text
    assert 'wanwatch_probes_sent_total{wan="INET-UTAMA"} 40.0' in text
    assert 'wanwatch_events_total{event="policy.failover"} 2.0' in text
