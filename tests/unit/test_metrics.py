"""Prometheus metrics: derived from the status answer, served on the asyncio loop."""

from __future__ import annotations

import asyncio

import msgspec

from wanwatch.daemon import httpd, servers
from wanwatch.daemon.clock import Clock
from wanwatch.daemon.history import History
from wanwatch.status import Drops, FirewallStatus, ProbeStats, Status, UplinkStatus, Usage


def uplink(
    name: str,
    state: str,
    rtt_ms: float | None,
    loss: float,
    carrying: bool,
    sent: int,
    replies: int,
    admin: str = "enabled",
) -> UplinkStatus:
    return UplinkStatus(
        name=name,
        state=state,
        rtt_ms=rtt_ms,
        loss_pct=loss,
        since="2026-12-05T00:00:00+00:00",
        for_s=1.0,
        preferred=True,
        carrying=carrying,
        admin=admin,
        phase=None,
        progress={},
        targets={},
        probes=ProbeStats(sent=sent, replies=replies),
    )


STATUS = Status(
    wans=[
        uplink("INET-UTAMA", "down", None, 100.0, False, 40, 12, admin="drain"),
        uplink("BACKUP-INET", "up", 31.5, 2.0, True, 38, 38),
    ],
    active=["BACKUP-INET"], mode="failover", stale=False, applied=False, backend_error="x",
    failed_steps={"nft": "x"}, retry_in_s=0.4, contested=[], repairs=0, counters={},
    counters_age_s=None, dnsmasq=None, leases=[], events=[], uptime_s=1.0, pid=1,
)  # fmt: skip


def scrape(status: Status = STATUS) -> str:
    sources = servers.Sources(
        status=lambda: status,
        events=lambda: [],
        counts=lambda: {"policy.failover": 2},
        history=History(Clock()),
        clock=Clock(),
    )
    handle, _ = servers.MetricsEndpoint("127.0.0.1", 0).site(sources)

    async def go() -> bytes:
        server = await httpd.serve("127.0.0.1", 0, handle)
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
    assert 'wanwatch_uplink_admin{admin="drain",wan="INET-UTAMA"} 1.0' in text
    assert 'wanwatch_uplink_admin{admin="enabled",wan="INET-UTAMA"} 0.0' in text
    assert "wanwatch_dataplane_applied 0.0" in text
    assert "wanwatch_reconcile_failed_steps 1.0" in text


def test_firewall_counters_are_metrics() -> None:
    fw = FirewallStatus(
        enabled=True,
        dropped={"INET-UTAMA": Drops(input=12, forward=3), "BACKUP-INET": Drops(0, 0)},
        guests={"WIFI": 4},
        forwards={"nas": 7},
        age_s=0.3,
    )
    text = scrape(msgspec.structs.replace(STATUS, firewall=fw))
    dropped = "wanwatch_firewall_dropped_packets_total"
    assert f'{dropped}{{chain="input",wan="INET-UTAMA"}} 12.0' in text
    assert f'{dropped}{{chain="forward",wan="INET-UTAMA"}} 3.0' in text
    assert f'{dropped}{{chain="input",wan="BACKUP-INET"}} 0.0' in text
    assert 'wanwatch_firewall_guest_dropped_packets_total{lan="WIFI"} 4.0' in text
    assert 'wanwatch_forward_packets_total{forward="nas"} 7.0' in text
    assert "# TYPE wanwatch_forward_packets_total counter" in text


def test_no_firewall_metrics_from_a_status_without_the_firewall() -> None:
    assert "wanwatch_firewall" not in scrape()


def test_each_family_of_a_dual_stack_uplink_has_its_own_state_gauge() -> None:
    # docs/ipv6.md: the primary's IPv6 died, its IPv4 lives; IPv6 is carried by the backup
    primary = msgspec.structs.replace(
        uplink("INET-UTAMA", "degraded", 40.0, 0.0, True, 40, 40),
        families={"4": "up", "6": "down"},
    )
    backup = msgspec.structs.replace(
        uplink("BACKUP-INET", "up", 31.5, 0.0, False, 38, 38),
        families={"4": "up", "6": "up"},
        carrying6=True,
    )
    text = scrape(msgspec.structs.replace(STATUS, wans=[primary, backup], active6=["BACKUP-INET"]))
    assert 'wanwatch_uplink_family_state{family="6",state="down",wan="INET-UTAMA"} 1.0' in text
    assert 'wanwatch_uplink_family_state{family="4",state="up",wan="INET-UTAMA"} 1.0' in text
    assert 'wanwatch_uplink_family_state{family="6",state="up",wan="INET-UTAMA"} 0.0' in text
    assert 'wanwatch_uplink_carrying6{wan="BACKUP-INET"} 1.0' in text
    assert 'wanwatch_uplink_carrying6{wan="INET-UTAMA"} 0.0' in text
    assert 'wanwatch_uplink_carrying{wan="INET-UTAMA"} 1.0' in text
    # an IPv4-only status has no family gauge at all
    assert "wanwatch_uplink_family_state{" not in scrape()


def test_each_uplinks_bytes_and_packets_are_metrics() -> None:
    counters = {"INET-UTAMA": Usage(3, bytes_out=400, bytes_in=9000, packets_out=5, packets_in=8)}
    text = scrape(msgspec.structs.replace(STATUS, counters=counters))
    assert 'wanwatch_uplink_bytes_total{direction="in",wan="INET-UTAMA"} 9000.0' in text
    assert 'wanwatch_uplink_bytes_total{direction="out",wan="INET-UTAMA"} 400.0' in text
    assert 'wanwatch_uplink_packets_total{direction="in",wan="INET-UTAMA"} 8.0' in text
    assert 'wanwatch_uplink_packets_total{direction="out",wan="INET-UTAMA"} 5.0' in text


def test_each_uplinks_ipv6_bytes_are_a_metric_beside_the_totals() -> None:
    counters = {
        "INET-UTAMA": Usage(3, bytes_out=400, bytes_in=9000, bytes_out6=160, bytes_in6=2500)
    }
    text = scrape(msgspec.structs.replace(STATUS, counters=counters))
    assert 'wanwatch_uplink_ipv6_bytes_total{direction="in",wan="INET-UTAMA"} 2500.0' in text
    assert 'wanwatch_uplink_ipv6_bytes_total{direction="out",wan="INET-UTAMA"} 160.0' in text
    assert 'wanwatch_uplink_bytes_total{direction="in",wan="INET-UTAMA"} 9000.0' in text
