"""The daemon's self-healing against a fake backend: retries, drift repair, tug-of-war.

No root and no kernel: the backend records what it is asked and fails on cue;
the clock is a variable. What is checked is what an operator sees: status and events.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from daemon_fakes import Backend, DriftWatch, fake_parts

from wanwatch.config import load
from wanwatch.daemon.admin import AdminChoices
from wanwatch.daemon.clock import Clock
from wanwatch.daemon.eventlog import EventLog
from wanwatch.daemon.loop import Daemon
from wanwatch.daemon.parts import Paths
from wanwatch.daemon.repair import (
    CONTEST_REPAIRS,
    DRIFT_DEBOUNCE,
    FULL_PASS_INTERVAL,
    RETRY_BACKOFF,
    Healer,
)
from wanwatch.engine.core import Engine
from wanwatch.engine.events import Event, event
from wanwatch.engine.intent import Admin, Intent

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"


class FakeBackend(Backend):
    def __init__(self) -> None:
        super().__init__([], fail_start=False)
        self.fail: dict[str, str] = {}  # step -> error, while set
        self.changes: list[tuple[str, dict[str, Any]]] = []  # what the next pass repairs
        self.passes: list[tuple[Intent, bool]] = []

    def _pass(self, intent: Intent, full: bool) -> list[Event]:
        self.passes.append((intent, full))
        out = [event(0.0, "backend.error", step=s, error=e) for s, e in self.fail.items()]
        out += [event(0.0, name, **fields) for name, fields in self.changes]
        self.changes = []
        return out

    def apply(self, intent: Intent, *, full: bool = False) -> list[Event]:
        return self._pass(intent, full)

    def apply_soon(self, intent: Intent, *, full: bool = False) -> Future[list[Event]]:
        f: Future[list[Event]] = Future()
        f.set_result(self._pass(intent, full))
        return f


class FakeWatcher(DriftWatch):
    """Every read says our nft table changed."""

    def read(self, fd: int) -> set[str]:
        return {"nft"}


class FakeClock:
    t = 990.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def daemon(tmp_path: Path) -> tuple[Daemon, FakeBackend, FakeClock]:
    clock = FakeClock()
    cfg = load(OFFICE)
    engine = Engine(cfg, clock.t)
    backend = FakeBackend()
    parts = fake_parts([], backend, FakeWatcher([], "drift"))
    paths = Paths(OFFICE, tmp_path / "s.sock", tmp_path / "state")
    d = Daemon(cfg, paths, engine, parts, clock=Clock(clock), events=EventLog())
    clock.t += 10  # past the startup grace: the engine decides
    engine.tick(clock.t)
    d.steering.heal = Healer(clock.t)  # as run() sets it once the parts are started
    return d, backend, clock


def ask(d: Daemon, request: dict[str, Any], uid: int) -> dict[str, Any]:
    """The control socket's answer to ``request`` (bytes only for the status)."""
    got = d.answer(request, uid)
    assert isinstance(got, dict), got
    return got


def names(d: Daemon) -> list[str]:
    return [e.name for e in d.events]


async def settle() -> None:
    for _ in range(3):  # let wrap_future's done callbacks run
        await asyncio.sleep(0)


def test_a_failed_step_is_shown_retried_with_backoff_and_cleared(
    daemon: tuple[Daemon, FakeBackend, FakeClock],
) -> None:
    d, backend, clock = daemon

    async def go() -> None:
        backend.fail = {"nft": "nft -f failed: Operation not permitted"}
        d.steering.steer()
        st = d.status()
        assert not st.applied and st.failed_steps == {"nft": backend.fail["nft"]}
        assert st.backend_error == backend.fail["nft"]
        assert st.retry_in_s == RETRY_BACKOFF.first
        assert names(d).count("backend.error") == 1 and "backend.retry" in names(d)
        clock.t += RETRY_BACKOFF.first / 2
        d.steering.maybe_repair()
        assert len(backend.passes) == 1  # not yet
        clock.t += RETRY_BACKOFF.first / 2
        d.steering.maybe_repair()
        await settle()
        assert len(backend.passes) == 2 and backend.passes[-1][1] is True  # a full pass
        assert names(d).count("backend.error") == 1  # same error: not logged again
        assert d.status().retry_in_s == RETRY_BACKOFF.delay(2)  # backing off
        backend.fail = {}
        clock.t += RETRY_BACKOFF.delay(2)
        d.steering.maybe_repair()
        await settle()
        st = d.status()
        assert st.applied and st.failed_steps == {} and st.backend_error is None
        assert names(d)[-1] == "backend.recovered"

    asyncio.run(go())


def test_drift_is_repaired_after_a_short_debounce_and_named(
    daemon: tuple[Daemon, FakeBackend, FakeClock],
) -> None:
    d, backend, clock = daemon

    async def go() -> None:
        d.steering.steer()
        d.on_drift(3)
        d.steering.maybe_repair()
        assert len(backend.passes) == 1  # debounced: not at once
        backend.changes = [("nft.apply", {"mode": "failover"})]
        clock.t += DRIFT_DEBOUNCE
        d.steering.maybe_repair()
        await settle()
        repaired = [e for e in d.events if e.name == "drift.repaired"]
        assert len(repaired) == 1
        assert repaired[0].fields["object"] == "nft table inet wanwatch"
        assert repaired[0].fields["after_ms"] == pytest.approx(DRIFT_DEBOUNCE * 1000)
        assert d.status().repairs == 1

    asyncio.run(go())


def test_a_tug_of_war_is_detected_and_repairs_back_off(
    daemon: tuple[Daemon, FakeBackend, FakeClock],
) -> None:
    d, backend, clock = daemon

    async def go() -> None:
        d.steering.steer()
        for _ in range(CONTEST_REPAIRS + 1):  # someone deletes our table again and again
            d.on_drift(3)
            backend.changes = [("nft.apply", {})]
            clock.t = max(clock.t, d.steering.heal.wake_at() or clock.t)
            d.steering.maybe_repair()
            await settle()
            clock.t += 1.0
        assert "drift.contested" in names(d)
        assert d.status().contested == ["nft table inet wanwatch"]
        d.on_drift(3)
        wake = d.steering.heal.wake_at()
        assert wake is not None and wake >= clock.t + 4.0  # backed off

    asyncio.run(go())


def test_the_safety_net_pass_runs_without_any_notification(
    daemon: tuple[Daemon, FakeBackend, FakeClock],
) -> None:
    d, backend, clock = daemon

    async def go() -> None:
        d.steering.steer()
        clock.t += FULL_PASS_INTERVAL
        backend.changes = [("sysctl.set", {"key": "net.netfilter.nf_conntrack_acct"})]
        d.steering.maybe_repair()
        await settle()
        [e] = [e for e in d.events if e.name == "drift.repaired"]
        assert e.fields["object"] == "sysctl net.netfilter.nf_conntrack_acct"

    asyncio.run(go())


def test_disable_is_root_only_kept_in_the_state_dir_and_restored(
    daemon: tuple[Daemon, FakeBackend, FakeClock], tmp_path: Path
) -> None:
    d, backend, clock = daemon
    d.paths.state_dir.mkdir(parents=True)
    assert "root only" in ask(d, {"cmd": "disable", "wan": "INET-UTAMA"}, 1000)["error"]
    assert "no uplink" in ask(d, {"cmd": "disable", "wan": "NOPE"}, 0)["error"]
    answer = ask(d, {"cmd": "disable", "wan": "INET-UTAMA", "drain": True}, 0)
    assert answer == {"wan": "INET-UTAMA", "admin": "drain", "saved": True}
    st = d.status()
    assert st.active == ["BACKUP-INET"] and st.wans[0].admin == "drain"
    assert backend.passes[-1][0].active == ("BACKUP-INET",)

    again = Engine(load(OFFICE), clock.t)  # the next run's engine, on the same state dir
    AdminChoices(d.paths.state_dir, EventLog().emit, clock).restore(again)
    assert again.admin() == {"INET-UTAMA": Admin.DRAIN}
    assert ask(d, {"cmd": "enable", "wan": "INET-UTAMA"}, 0)["admin"] == "enabled"
