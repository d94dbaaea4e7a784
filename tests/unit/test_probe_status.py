"""A captive portal as ``wanwatch status`` shows it: the state and where the web is sent."""

from __future__ import annotations

from typing import Any

from wanwatch import status as st
from wanwatch.cli.router import format_status

PORTAL = "http://portal.example/topup"


def uplink(name: str, **extra: object) -> dict[str, Any]:
    return {
        "name": name, "state": "up", "rtt_ms": 1.0, "loss_pct": 0.0,
        "since": "2026-12-07T09:00:00+00:00", "for_s": 1.0, "preferred": True,
        "carrying": False, "admin": "enabled", "phase": None, "progress": {},
        "targets": {}, "probes": {}, **extra,
    }  # fmt: skip


def answer(*wans: dict[str, Any]) -> dict[str, Any]:
    return {
        "wans": list(wans), "active": ["B"], "mode": "failover", "stale": False,
        "applied": True, "backend_error": None, "failed_steps": {}, "retry_in_s": None,
        "contested": [], "repairs": 0, "counters": {}, "counters_age_s": None,
        "dnsmasq": None, "leases": [], "events": [], "uptime_s": 1.0, "pid": 1,
    }  # fmt: skip


def test_a_portal_uplink_shows_its_state_and_url() -> None:
    text = format_status(answer(uplink("P", state="portal", portal_url=PORTAL), uplink("B")))
    row = next(line for line in text.splitlines() if line.startswith("P "))
    assert row.split()[1] == "portal"
    assert f"P: captive portal, web sent to {PORTAL}" in text
    assert "B: captive portal" not in text


def test_an_older_answer_without_the_field_reads_as_no_portal() -> None:
    decoded = st.from_json(answer(uplink("P"), uplink("B")))
    assert [w.portal_url for w in decoded.wans] == [None, None]
    assert "captive portal" not in format_status(answer(uplink("P"), uplink("B")))
