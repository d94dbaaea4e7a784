"""The daemon's whole life on fake parts: start order, the control socket, SIGTERM, shutdown.

No root and no kernel: every part records what it is asked into one list, so the
order in which the daemon starts and stops its parts is what is checked, and
that a part which never started is never stopped.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from daemon_fakes import Backend, fake_parts

from wanwatch.config import load
from wanwatch.daemon.clock import Clock
from wanwatch.daemon.control import ControlError, request
from wanwatch.daemon.eventlog import EventLog
from wanwatch.daemon.lan import Paired, Standalone
from wanwatch.daemon.loop import Daemon
from wanwatch.daemon.parts import Parts, Paths
from wanwatch.engine.core import Engine, WanStatus
from wanwatch.errors import NetlinkError
from wanwatch.lab.poll import until
from wanwatch.linux.dnsmasq import Dnsmasq
from wanwatch.linux.pair import Pair

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"


def build(tmp_path: Path, parts: Parts, config: Path = OFFICE) -> Daemon:
    cfg = load(config)
    clock = Clock()
    paths = Paths(config, tmp_path / "s.sock", tmp_path / "state")
    return Daemon(cfg, paths, Engine(cfg, clock()), parts, clock=clock, events=EventLog())


def status_when(sock: Path, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """From another thread: the daemon's status once it answers and ``ready`` holds for it."""

    def look() -> dict[str, Any] | None:
        try:
            answer = request(sock, "status", timeout=1.0)
        except ControlError:  # not listening yet
            return None
        return answer if ready(answer) else None

    found = until(look, 10, "the daemon's status")
    assert found is not None
    return found


def ask_status_then_stop(sock: Path) -> dict[str, Any]:
    """From another thread: the status once the daemon answers, then SIGTERM to it."""
    answer = status_when(sock, lambda st: True)
    os.kill(os.getpid(), signal.SIGTERM)  # the loop's handler only enqueues "stop"
    return answer


def test_run_starts_serves_and_stops_the_parts_in_order(tmp_path: Path) -> None:
    calls: list[str] = []
    d = build(tmp_path, fake_parts(calls, Backend(calls, fail_start=False)))

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
    d = build(tmp_path, fake_parts(calls, Backend(calls, fail_start=True)))
    with pytest.raises(NetlinkError, match="Operation not permitted"):
        asyncio.run(d.run())
    assert "links.open" not in calls and "lan.start" not in calls
    assert calls[-3:] == ["lan.stop", "backend.stop", "hooks.drain"]
    assert [e.name for e in d.events][-1] == "daemon.stopped"
    assert not d.paths.socket.exists()


def test_a_reload_is_checked_first_then_given_to_every_part(tmp_path: Path) -> None:
    calls: list[str] = []
    config = tmp_path / "office.yaml"
    text = OFFICE.read_text()
    config.write_text(text)
    parts = fake_parts(calls, Backend(calls, fail_start=False))
    d = build(tmp_path, parts, config)

    def reload_one_uplink_then_stop() -> dict[str, Any]:
        status_when(d.paths.socket, lambda st: True)
        config.write_text(text[: text.index("  - name: BACKUP-INET")] + text[text.index("lans:") :])
        os.kill(os.getpid(), signal.SIGHUP)
        status = status_when(d.paths.socket, lambda st: len(st["wans"]) == 1)
        os.kill(os.getpid(), signal.SIGTERM)
        return status

    async def go() -> tuple[int, dict[str, Any]]:
        asker = asyncio.create_task(asyncio.to_thread(reload_one_uplink_then_stop))
        code = await d.run()
        return code, await asker

    code, status = asyncio.run(go())
    assert code == 0
    assert [w["name"] for w in status["wans"]] == ["INET-UTAMA"]
    assert "config.reloaded" in [e.name for e in d.events]
    assert calls[calls.index("lan.start") + 1 : calls.index("traffic.stop")] == [
        "lan.check",  # every part that can refuse the new config is asked before any applies it
        "backend.reload",
        "links.watch ether1",
        "uplinks.reload",
        "probes.remove BACKUP-INET",
        "probes.add INET-UTAMA",
        "traffic.watch INET-UTAMA",
        "lan.reload",
    ]
    assert parts.hooks.hooks == load(config).hooks  # the next event runs the new commands


class FakeDnsmasq(Dnsmasq):
    """The real supervisor's bookkeeping, no child: a start or stop is only recorded."""

    def __init__(self, calls: list[str], state_dir: Path) -> None:
        super().__init__(load(OFFICE), state_dir, EventLog().emit)
        self.calls = calls

    async def start(self) -> None:
        self.calls.append("dnsmasq.start")

    async def stop(self) -> None:
        self.calls.append("dnsmasq.stop")


class FakePair(Pair):
    """keepalived + conntrackd as lan.py drives them, no child: each step recorded."""

    def __init__(self, calls: list[str], dnsmasq: Dnsmasq, state_dir: Path) -> None:
        super().__init__(load(OFFICE), dnsmasq, state_dir, EventLog().emit)
        self.calls = calls

    async def start(self) -> None:
        self.calls.append("pair.start")

    async def stop(self) -> None:
        self.calls.append("pair.stop")

    async def follow(self, uplinks: Iterable[WanStatus], in_force: bool) -> None:
        self.calls.append(f"pair.follow {len(list(uplinks))} in force {in_force}")


def test_the_lan_roles_stop_only_what_they_started(tmp_path: Path) -> None:
    calls: list[str] = []
    dnsmasq = FakeDnsmasq(calls, tmp_path)
    pair = FakePair(calls, dnsmasq, tmp_path)
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
