"""`wanwatch lab demo` on the dual-stack office: the paper's test shown for both families."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanwatch.config import load
from wanwatch.lab.demo import run

pytestmark = pytest.mark.lab

DUAL = Path(__file__).resolve().parents[2] / "examples" / "office-dual-stack.yaml"


def test_demo_on_a_dual_stack_office_times_both_families() -> None:
    said: list[str] = []
    figures = run(load(DUAL), said.append)
    for key in ("blackhole_failover", "carrier_failover"):
        assert isinstance(figures[f"{key}_ms"], int), figures
        assert isinstance(figures[f"{key}6_ms"], int), figures
    assert isinstance(figures["slaac_ms"], int) and figures["daemon_exit"] == 0
    text = "\n".join(said)
    assert text.startswith("Lab "), text  # the same first lines as the IPv4 demo
    assert "formed fd" in text and "by SLAAC from the router's RAs" in text, text
    assert text.count("IPv6: first new connection through BACKUP-INET") == 2, text
