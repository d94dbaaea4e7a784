"""The dnsmasq supervisor against a stand-in binary: restarts, backoff, reloads, cleanup.

The stand-in speaks dnsmasq's argv and log format (``dnsmasq[PID]: started,
version ...`` on stderr, ``--test`` with dnsmasq's messages, a pid file), so the
supervisor's own logic is tested here without root; tests/lab/test_dnsmasq.py
runs the real dnsmasq with real DHCP clients.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from wanwatch.config import Config, load, loads
from wanwatch.engine.events import Event
from wanwatch.errors import DnsmasqError
from wanwatch.linux import dnsmasq as dm
from wanwatch.linux.dnsmasq import STABLE_AFTER, Dnsmasq, command

OFFICE = Path(__file__).parents[2] / "examples" / "office.yaml"

FAKE = """\
import os, signal, sys, time
conf = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--conf-file="))
text = open(conf).read()
if "--test" in sys.argv:
    for n, line in enumerate(text.splitlines(), 1):
        if line == "bad-option-for-test":
            print(f"dnsmasq: bad option at line {n} of {conf}", file=sys.stderr)
            sys.exit(1)
    print("dnsmasq: syntax check OK.", file=sys.stderr)
    sys.exit(0)
mode_file = os.path.join(os.path.dirname(conf), "fake-mode")
mode = open(mode_file).read().strip() if os.path.exists(mode_file) else "serve"
if "# fail-at-start" in text:
    print("", file=sys.stderr)
    print("dnsmasq: failed to create listening socket for 192.168.19.1: Address already in use",
          file=sys.stderr)
    sys.exit(2)
for line in text.splitlines():
    if line.startswith("pid-file="):
        with open(line.split("=", 1)[1], "w") as f:
            f.write(f"{os.getpid()}\\n")
pid = os.getpid()
print(f"dnsmasq[{pid}]: started, version fake cachesize 1000", file=sys.stderr, flush=True)
if mode == "crash":
    sys.exit(3)
if mode == "chatty":  # far more than a pipe holds (64 KiB)
    for n in range(3000):
        print(f"dnsmasq[{pid}]: chatter {n} " + "x" * 40, file=sys.stderr)
    print(f"dnsmasq[{pid}]: chatter done", file=sys.stderr, flush=True)
print(f"dnsmasq-dhcp[{pid}]: DHCPACK(ether3) 192.168.19.5 02:00:00:00:19:01 laptop",
      file=sys.stderr, flush=True)
def bye(signum, frame):
    print(f"dnsmasq[{pid}]: exiting on receipt of SIGTERM", file=sys.stderr, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
time.sleep(60)
"""


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def fake(tmp_path: Path) -> str:
    path = tmp_path / "fake-dnsmasq"
    path.write_text(f"#!{sys.executable}\n" + FAKE, encoding="utf-8")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def office() -> Config:
    return load(OFFICE)


async def until(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def named(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e.name == name]


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


def test_start_serves_logs_and_stop_cleans_up(office: Config, fake: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "dnsmasq.leases").write_text("0 02:00:00:00:19:01 192.168.19.5 laptop *\n")
    events: list[Event] = []

    async def body() -> None:
        sup = Dnsmasq(office, state, events.append, binary=fake, now=Clock())
        await sup.start()
        try:
            st = sup.status()
            pid = st["pid"]
            assert st["running"] is True and isinstance(pid, int) and alive(pid)
            assert (state / "dnsmasq.conf").read_text() == dm.render(office, state)
            assert (state / "dnsmasq.pid").read_text().strip() == str(pid)
            await until(lambda: bool(named(events, "dhcp.lease")), "the ACK as an event")
            (lease,) = named(events, "dhcp.lease")
            assert lease.fields["lan"] == "ether3" and lease.fields["hostname"] == "laptop"
        finally:
            await sup.stop()
        assert not alive(pid)
        assert sup.status()["running"] is False
        assert sorted(p.name for p in state.iterdir()) == ["dnsmasq.leases"]
        assert named(events, "dnsmasq.stop")[0].fields["code"] == 0  # SIGTERM handled
        assert named(events, "dnsmasq.exit") == []  # a stop is not a crash

    run(body)


def test_crash_loop_backs_off_exponentially(office: Config, fake: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "fake-mode").write_text("crash")
    events: list[Event] = []

    async def body() -> None:
        sup = Dnsmasq(office, state, events.append, binary=fake, now=Clock())
        await sup.start()
        try:
            await until(lambda: len(named(events, "dnsmasq.restart")) >= 3, "3 restarts")
            restarts = named(events, "dnsmasq.restart")[:3]
            assert [e.fields["attempt"] for e in restarts] == [1, 2, 3]
            assert [e.fields["delay_ms"] for e in restarts] == [200, 400, 800]
            exits = named(events, "dnsmasq.exit")
            assert exits[0].fields["code"] == 3
            assert exits[0].fields["last"] == "started, version fake cachesize 1000"
            st = sup.status()
            assert isinstance(st["restarts"], int) and st["restarts"] >= 3
            assert "exited with code 3" in str(st["last_error"])
        finally:
            await sup.stop()

    run(body)


def test_backoff_is_capped() -> None:
    assert [dm.backoff(n) for n in (1, 2, 3, 8, 9, 50)] == [0.2, 0.4, 0.8, 25.6, 30.0, 30.0]


def test_backoff_resets_after_a_stable_run(office: Config, fake: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    mode = state / "fake-mode"
    mode.write_text("crash")
    events: list[Event] = []
    clock = Clock()

    async def body() -> None:
        sup = Dnsmasq(office, state, events.append, binary=fake, now=clock)
        await sup.start()
        try:
            await until(lambda: len(named(events, "dnsmasq.restart")) >= 2, "2 restarts")
            mode.write_text("serve")
            await until(lambda: sup.status()["running"] is True, "a child that stays up")
            await asyncio.sleep(0.3)  # it really stays up
            pid = sup.status()["pid"]
            assert isinstance(pid, int) and alive(pid)
            clock.t += STABLE_AFTER + 1
            seen = len(named(events, "dnsmasq.restart"))
            os.kill(pid, signal.SIGKILL)  # our supervisor's child, by its PID
            await until(lambda: len(named(events, "dnsmasq.restart")) > seen, "a restart")
            last_exit = named(events, "dnsmasq.exit")[-1]
            assert last_exit.fields["signal"] == "SIGKILL" and last_exit.fields["code"] == -9
            again = named(events, "dnsmasq.restart")[seen]
            assert (again.fields["attempt"], again.fields["delay_ms"]) == (1, 200)
            await until(lambda: sup.status()["pid"] not in (None, pid), "the new child")
        finally:
            await sup.stop()

    run(body)


def test_a_failing_event_callback_does_not_stop_the_log_reader(
    office: Config, fake: str, tmp_path: Path
) -> None:
    (tmp_path / "fake-mode").write_text("chatty")
    seen: list[str] = []

    def emit(ev: Event) -> None:
        if ev.name == "dnsmasq.log":  # a callback that chokes on every log line
            seen.append(str(ev.fields["msg"]))
            raise RuntimeError("callback bug")

    async def body() -> None:
        sup = Dnsmasq(office, tmp_path, emit, binary=fake, now=Clock())
        await sup.start()
        try:
            # unread, dnsmasq would block after ~64 KiB and never log "done"
            await until(lambda: "chatter done" in seen, "the last log line")
            assert "event callback failed" in str(sup.status()["last_error"])
        finally:
            await sup.stop()

    run(body)


def test_start_failure_raises_with_dnsmasqs_words(
    office: Config, fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render = dm.render
    monkeypatch.setattr(dm, "render", lambda c, s: render(c, s) + "# fail-at-start\n")
    events: list[Event] = []

    async def body() -> None:
        sup = Dnsmasq(office, tmp_path, events.append, binary=fake, now=Clock())
        with pytest.raises(DnsmasqError, match="code 2: failed to create listening socket"):
            await sup.start()
        assert sup.status()["running"] is False
        assert named(events, "dnsmasq.restart") == []  # no supervision left behind
        # the next reload tries again, with its config
        monkeypatch.setattr(dm, "render", render)
        await sup.reload(office)
        assert sup.status()["running"] is True
        await sup.stop()
        assert not (tmp_path / "dnsmasq.conf").exists()

    run(body)


def test_missing_binary(office: Config, tmp_path: Path) -> None:
    async def body() -> None:
        sup = Dnsmasq(office, tmp_path, lambda e: None, binary=str(tmp_path / "nope"))
        with pytest.raises(DnsmasqError, match="cannot run"):
            await sup.start()

    run(body)


def test_rejected_reload_keeps_the_old_one_serving(
    office: Config, fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[Event] = []

    async def body() -> None:
        sup = Dnsmasq(office, tmp_path, events.append, binary=fake, now=Clock())
        await sup.start()
        try:
            pid = sup.status()["pid"]
            before = (tmp_path / "dnsmasq.conf").read_text()
            render = dm.render
            monkeypatch.setattr(dm, "render", lambda c, s: render(c, s) + "bad-option-for-test\n")
            with pytest.raises(DnsmasqError, match=r"bad option at line \d+ of .*dnsmasq.conf.new"):
                await sup.reload(office)
            assert sup.status()["pid"] == pid and isinstance(pid, int) and alive(pid)
            assert (tmp_path / "dnsmasq.conf").read_text() == before
            assert not (tmp_path / "dnsmasq.conf.new").exists()
            assert "bad option" in str(named(events, "dnsmasq.reject")[0].fields["error"])
        finally:
            await sup.stop()

    run(body)


def test_validate_rejects_without_touching_the_running_one(
    office: Config, fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[Event] = []

    async def body() -> None:
        sup = Dnsmasq(office, tmp_path, events.append, binary=fake, now=Clock())
        await sup.start()
        try:
            pid = sup.status()["pid"]
            before = (tmp_path / "dnsmasq.conf").read_text()
            await sup.validate(office)  # the running config: accepted, nothing happens
            render = dm.render
            monkeypatch.setattr(dm, "render", lambda c, s: render(c, s) + "bad-option-for-test\n")
            with pytest.raises(DnsmasqError, match="bad option"):
                await sup.validate(office)
            assert sup.status()["pid"] == pid and isinstance(pid, int) and alive(pid)
            assert (tmp_path / "dnsmasq.conf").read_text() == before
            assert sorted(p.name for p in tmp_path.glob("dnsmasq.conf*")) == ["dnsmasq.conf"]
            assert not named(events, "dnsmasq.reload")
        finally:
            await sup.stop()

    run(body)


def test_reload_restarts_only_on_a_change(office: Config, fake: str, tmp_path: Path) -> None:
    events: list[Event] = []
    longer = loads(OFFICE.read_text().replace("lease_time: 1h", "lease_time: 2h"))

    async def body() -> None:
        sup = Dnsmasq(office, tmp_path, events.append, binary=fake, now=Clock())
        await sup.start()
        try:
            pid = sup.status()["pid"]
            await sup.reload(load(OFFICE))  # same rendering: nothing to do
            assert sup.status()["pid"] == pid
            await sup.reload(longer)
            new_pid = sup.status()["pid"]
            assert new_pid != pid and isinstance(pid, int) and not alive(pid)
            assert "255.255.255.0,7200" in (tmp_path / "dnsmasq.conf").read_text()
            assert named(events, "dnsmasq.reload")[0].fields["pid"] == new_pid
        finally:
            await sup.stop()

    run(body)


def test_reload_that_cannot_start_rolls_back(
    office: Config, fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[Event] = []

    async def body() -> None:
        sup = Dnsmasq(office, tmp_path, events.append, binary=fake, now=Clock())
        await sup.start()
        try:
            before = (tmp_path / "dnsmasq.conf").read_text()
            render = dm.render
            monkeypatch.setattr(dm, "render", lambda c, s: render(c, s) + "# fail-at-start\n")
            with pytest.raises(DnsmasqError, match="previous configuration is serving again"):
                await sup.reload(office)
            assert (tmp_path / "dnsmasq.conf").read_text() == before
            await until(lambda: sup.status()["running"] is True, "the old config running")
            assert len(named(events, "dnsmasq.rollback")) == 1
        finally:
            await sup.stop()

    run(body)


def test_nothing_to_serve_runs_nothing(fake: str, tmp_path: Path) -> None:
    bare = loads(
        "wans:\n  - {name: ISP, interface: wan0, gateway: 198.51.100.1,"
        " probe: {targets: [203.0.113.1]}}\n"
    )
    events: list[Event] = []

    async def body() -> None:
        sup = Dnsmasq(bare, tmp_path, events.append, binary=fake, now=Clock())
        await sup.start()
        assert sup.status()["running"] is False and sup.status()["idle"] == "no LAN"
        assert [e.name for e in events] == ["dnsmasq.idle"]
        await sup.stop()

    run(body)


def test_leftover_dnsmasq_on_our_config_is_stopped(
    office: Config, fake: str, tmp_path: Path
) -> None:
    """A dnsmasq left by a wanwatch that died would hold the LAN sockets."""
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(dm.render(office, tmp_path))
    leftover = subprocess.Popen(command(fake, conf), stderr=subprocess.DEVNULL)
    stranger = subprocess.Popen(["sleep", "30"])
    events: list[Event] = []

    async def body() -> None:
        pid_file = tmp_path / "dnsmasq.pid"
        await until(pid_file.exists, "the leftover's pid file")
        sup = Dnsmasq(office, tmp_path, events.append, binary=fake, now=Clock())
        await sup.start()
        try:
            assert named(events, "dnsmasq.stale")[0].fields["pid"] == leftover.pid
            await until(lambda: leftover.poll() is not None, "the leftover to exit")
            # a pid file naming a process that is not on our config is left alone
            pid_file.write_text(f"{stranger.pid}\n")
            await sup.reload(loads(OFFICE.read_text().replace("1h", "2h")))
            assert stranger.poll() is None
        finally:
            await sup.stop()

    try:
        run(body)
    finally:
        for proc in (leftover, stranger):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=5)
