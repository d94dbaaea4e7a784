"""The firewall's counters in the daemon's status and in ``wanwatch status`` (fake parts)."""

from __future__ import annotations

from pathlib import Path

from daemon_fakes import Backend, fake_parts

from wanwatch.cli.router import format_status
from wanwatch.config import load
from wanwatch.daemon.clock import Clock
from wanwatch.daemon.eventlog import EventLog
from wanwatch.daemon.loop import Daemon
from wanwatch.daemon.parts import Paths
from wanwatch.engine.core import Engine
from wanwatch.status import Drops, FirewallStatus, from_json, to_json

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"
COUNTED = FirewallStatus(
    enabled=True,
    dropped={"INET-UTAMA": Drops(input=12, forward=3), "BACKUP-INET": Drops(0, 1)},
    guests={"WIFI": 4},
    forwards={"nas": 7},
    age_s=0.4,
)


def daemon(tmp_path: Path, fw: FirewallStatus) -> Daemon:
    cfg = load(OFFICE)
    clock = Clock()
    calls: list[str] = []
    backend = Backend(calls, fail_start=False)
    backend.firewall_status = fw
    paths = Paths(OFFICE, tmp_path / "s.sock", tmp_path / "state")
    return Daemon(
        cfg, paths, Engine(cfg, clock()), fake_parts(calls, backend), clock=clock, events=EventLog()
    )


def test_status_carries_the_backends_firewall_counters(tmp_path: Path) -> None:
    st = daemon(tmp_path, COUNTED).status()
    assert st.firewall == COUNTED
    doc = to_json(st)
    assert doc["firewall"]["dropped"]["INET-UTAMA"] == {"input": 12, "forward": 3}
    assert doc["firewall"]["forwards"] == {"nas": 7}
    assert from_json(doc).firewall == COUNTED  # the contract round-trips


def test_wanwatch_status_prints_a_firewall_line(tmp_path: Path) -> None:
    text = format_status(to_json(daemon(tmp_path, COUNTED).status()))
    line = next(x for x in text.splitlines() if x.startswith("firewall"))
    assert line == (
        "firewall on, dropped: INET-UTAMA 12 in 3 fwd, BACKUP-INET 0 in 1 fwd, guest WIFI 4;"
        " forwarded: nas 7"
    )


def test_wanwatch_status_says_when_the_firewall_is_off(tmp_path: Path) -> None:
    off = FirewallStatus(enabled=False, dropped={}, guests={}, forwards={}, age_s=None)
    text = format_status(to_json(daemon(tmp_path, off).status()))
    assert "firewall off" in text.splitlines()


def test_an_older_daemons_status_has_no_firewall_line(tmp_path: Path) -> None:
    doc = to_json(daemon(tmp_path, COUNTED).status())
    del doc["firewall"]
    assert from_json(doc).firewall is None
    assert not any(x.startswith("firewall") for x in format_status(doc).splitlines())
