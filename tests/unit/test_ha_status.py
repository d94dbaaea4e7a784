"""What a router of a pair reports of its role: /metrics says what status says."""

from __future__ import annotations

from msgspec.structs import replace
from prometheus_client import generate_latest

from wanwatch.daemon.metrics import StatusCollector, registry_for
from wanwatch.status import Status

BASE = Status(
    wans=[], active=[], mode="failover", stale=False, applied=True, backend_error=None,
    failed_steps={}, retry_in_s=None, contested=[], repairs=0, counters={},
    counters_age_s=None, dnsmasq=None, leases=[], events=[], uptime_s=1.0, pid=1,
)  # fmt: skip


def scrape(status: Status) -> str:
    registry = registry_for(StatusCollector(lambda: status, lambda: {}))
    return generate_latest(registry).decode()


def test_metrics_carry_the_role_status_reports() -> None:
    text = scrape(replace(BASE, ha={"role": "BACKUP"}))
    assert 'wanwatch_ha_role{role="BACKUP"} 1.0' in text
    assert 'wanwatch_ha_role{role="MASTER"} 0.0' in text
    before = scrape(replace(BASE, ha={"role": None}))
    assert 'wanwatch_ha_role{role="MASTER"} 0.0' in before  # nothing announced yet: no role


def test_a_router_alone_has_no_role_metric() -> None:
    assert "wanwatch_ha_role" not in scrape(BASE)


def test_the_status_table_names_the_role() -> None:
    from wanwatch.cli.router import format_status
    from wanwatch.status import to_json

    ha = {"role": "MASTER", "serving_dhcp": True, "uplinks_down": 0}
    text = format_status(to_json(replace(BASE, ha=ha)))
    assert "pair: MASTER, serving DHCP, uplinks down for VRRP: 0" in text.splitlines()
    assert "pair:" not in format_status(to_json(BASE))
