"""docs/grafana-dashboard.json asks only for metrics and events wanwatch really exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from wanwatch.daemon import metrics
from wanwatch.status import from_json

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
STATUS = from_json(
    {
        "wans": [
            {"name": "A", "state": "up", "rtt_ms": 1.0, "loss_pct": 0.0, "since": "2026-12-05",
             "for_s": 1.0, "preferred": True, "carrying": True, "admin": "enabled",
             "phase": None, "progress": {}, "targets": {}, "probes": {"sent": 1, "replies": 1}},
        ],
        "active": ["A"], "mode": "failover", "stale": False, "applied": True,
        "backend_error": None, "failed_steps": {}, "retry_in_s": None, "contested": [],
        "repairs": 0, "counters": {}, "counters_age_s": None, "dnsmasq": None, "leases": [],
        "events": [], "uptime_s": 1.0, "pid": 1,
    }
)  # fmt: skip


def exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from exprs(item)


def test_every_metric_in_the_dashboard_is_exported() -> None:
    collector = metrics.StatusCollector(lambda: STATUS, lambda: {"policy.failover": 1})
    text = generate_latest(metrics.registry_for(collector)).decode()
    exported = set(re.findall(r"^(wanwatch_\w+?)[{ ]", text, re.MULTILINE))
    found = list(exprs(json.loads(DASHBOARD.read_text())))
    assert len(found) >= 8
    used = {m for e in found for m in re.findall(r"wanwatch_\w+", e)}
    assert used and used <= exported, used - exported


def test_every_event_in_the_dashboard_is_emitted_somewhere() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "wanwatch").rglob("*.py"))
    for expr in exprs(json.loads(DASHBOARD.read_text())):
        for group in re.findall(r'event=~?"([^"]+)"', expr):
            for name in group.split("|"):
                # A supervised child's events are "<program>.<what>" with only <what>
                # spelled out (linux/supervisor.py), e.g. dnsmasq.restart.
                program, _, what = name.partition(".")
                supervised = program == "dnsmasq" and f'_emit("{what}"' in source
                assert f'"{name}"' in source or supervised, name
