"""The daemon's whole life on fake parts: start order, the control socket, SIGTERM, shutdown.

No root and no kernel: every part records what it is asked into one list, so the
order in which the daemon starts and stops its parts is what is checked, and
that a part which never started is never stopped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from daemon_fakes import Backend, Part, fake_parts

from wanwatch.config import load
from wanwatch.daemon.clock import Clock
from wanwatch.daemon.control import ControlError, request
from wanwatch.daemon.eventlog import EventLog
from wanwatch.daemon.lan import Paired, Standalone
from wanwatch.daemon.loop import Daemon
from wanwatch.daemon.parts import Paths
from wanwatch.engine.core import Engine
from wanwatch.errors import NetlinkError

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"


def build(tmp_path: Path, calls: list[str], fail_start: bool = False) -> Daemon:
    cfg = load(OFFICE)
    clock = Clock()
    parts = fake_parts(calls, Backend(calls, fail_start))
    paths = Paths(OFFICE, tmp_path / "s.sock", tmp_path / "state")
    return Daemon(cfg, paths, Engine(cfg, clock()), parts, clock=clock, events=EventLog())


def ask_status_then_stop(sock: Path) -> dict[str, Any]:
    """From another thread: the status once the daemon answers, then SIGTERM to it."""
    deadline = time.monotonic() + 10
    while True:
        try:
            answer = request(sock, "status", timeout=1.0)
            break
        except ControlError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)  # the loop's handler only enqueues "stop"
    return answer


def test_run_starts_serves_and_stops_the_parts_in_order(tmp_path: Path) -> None:
    calls: list[str] = []
    d = build(tmp_path, calls)

    async def go() -> tuple[int, dict[str, Any]]:
        asker = asyncio.create_task(asyncio.to_thread(ask_status_then_stop, d.paths.socket))
        code = await d.run()
        return code, await asker

    code, status = asyncio.run(go())
    assert code == 0
    assert [w["name"] for w in status["wans"]] == ["INET-UTAMA", "BACKUP-INET"]
    names = [e.name for e in d.events]
    assert names.index("daemon.started") < names.index("daemon.stopping")
    assert names[-1] == "daemon.stopped"
    assert not d.paths.socket.exists()
    assert (d.paths.state_dir.stat().st_mode & 0o777) == 0o700
    assert calls == [
        "backend.start",
        "links.open",
        "probes.add INET-UTAMA",
        "probes.add BACKUP-INET",
        "traffic.start",
        "probes.start",
        "drift.open",
        "lan.start",
        "traffic.stop",
        "links.close",
        "drift.close",
        "probes.close",
        "uplinks.stop",
        "lan.stop",
        "backend.stop",
        "hooks.drain",
    ]


def test_a_backend_that_cannot_start_is_cleaned_up_and_nothing_else_starts(
    tmp_path: Path,
) -> None:
    calls: list[str] = []
    d = build(tmp_path, calls, fail_start=True)
    with pytest.raises(NetlinkError, match="Operation not permitted"):
        asyncio.run(d.run())
    assert "links.open" not in calls and "lan.start" not in calls
    assert calls[-3:] == ["lan.stop", "backend.stop", "hooks.drain"]
    assert [e.name for e in d.events][-1] == "daemon.stopped"
    assert not d.paths.socket.exists()


class Supervised(Part):
    """dnsmasq or the pair's keepalived + conntrackd, as lan.py drives them."""

    async def start(self) -> None:
        self.record("start")

    async def stop(self) -> None:
        self.record("stop")

    async def follow(self, uplinks: Any, in_force: bool) -> None:
        self.record(f"follow {len(list(uplinks))} in force {in_force}")


def test_the_lan_roles_stop_only_what_they_started(tmp_path: Path) -> None:
    calls: list[str] = []
    dnsmasq, pair = Supervised(calls, "dnsmasq"), Supervised(calls, "pair")
    events = EventLog()
    alone = Standalone(dnsmasq, tmp_path, events.emit, Clock())
    paired = Paired(pair, dnsmasq, tmp_path, events.emit, Clock())
    uplinks = Engine(load(OFFICE), 0.0).status(0.0)

    async def go() -> None:
        await alone.stop()  # a start that never came: a predecessor's dnsmasq is not ours
        await paired.stop()
        assert calls == []
        await alone.start()
        await alone.follow(lambda: uplinks, True)
        await alone.stop()
        await paired.start()  # dnsmasq follows the master: the pair starts it, not the role
        await paired.follow(lambda: uplinks, False)
        await paired.stop()

    asyncio.run(go())
    assert calls == [
        "dnsmasq.start",
        "dnsmasq.stop",
        "pair.start",
        "pair.follow 2 in force False",
        "pair.stop",
        "dnsmasq.stop",
    ]
