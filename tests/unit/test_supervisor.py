"""The generic supervisor with what keepalived and conntrackd need beyond dnsmasq.

A stand-in program logs like conntrackd (to stdout, no pid file, a lock file it
refuses to start over); tests/unit/test_dnsmasq_supervisor.py covers restarts,
backoff and reloads through dnsmasq, tests/lab/test_ha.py the real programs.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from wanwatch.engine.events import Event, event
from wanwatch.errors import HaError
from wanwatch.linux.pair import conntrackd_event, keepalived_event
from wanwatch.linux.supervisor import Program, Supervisor

FAKE = """\
import os, signal, sys, time
lock = sys.argv[2]
if os.path.exists(lock):
    print("[Sat Dec  5 12:13:06 2026] (pid=%d) [ERROR] lockfile `%s' exists" % (os.getpid(), lock))
    sys.exit(1)
def bye(signum, frame):
    os.unlink(lock)
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
open(lock, "w").close()
print("[Sat Dec  5 12:13:06 2026] (pid=%d) [notice] -- starting in console mode --" % os.getpid(),
      flush=True)
time.sleep(60)
"""


def _program(tmp_path: Path, conf: Path) -> Program:
    fake = tmp_path / "fake-conntrackd"
    fake.write_text(f"#!{sys.executable}\n" + FAKE, encoding="utf-8")
    fake.chmod(0o755)
    lock = tmp_path / "ct.lock"
    return Program(
        name="conntrackd",
        argv=(str(fake), str(conf), str(lock)),
        marker=str(conf),
        pid_file=None,
        ready=lambda line: "-- starting in console mode --" in line,
        log_event=conntrackd_event,
        error=HaError,
        merge_stdout=True,
        leftovers=(lock,),
    )


def test_stale_copy_found_by_command_line_and_stopped(tmp_path: Path) -> None:
    conf = tmp_path / "ct.conf"
    conf.write_text("")
    events: list[Event] = []
    program = _program(tmp_path, conf)
    lock = program.leftovers[0]
    # A copy left running by a wanwatch that was killed: no pid file to find it by.
    stale = subprocess.Popen([*program.argv], stdout=subprocess.DEVNULL)

    async def body() -> None:
        while not lock.exists():
            assert stale.poll() is None, "the stand-in did not start"
            await asyncio.sleep(0.02)
        sup = Supervisor(program, events.append)
        await sup.start()
        assert stale.wait(timeout=5) == 0  # SIGTERM, by its PID
        assert sup.pid is not None and sup.pid != stale.pid
        await sup.halt()

    try:
        asyncio.run(body())
    finally:
        if stale.poll() is None:
            stale.kill()
    names = [e.name for e in events]
    assert names[:2] == ["conntrackd.stale", "conntrackd.start"], names
    assert events[0].fields["pid"] == stale.pid
    assert names[-1] == "conntrackd.stop"
    assert not lock.exists()


def test_leftover_lock_is_cleared_and_stdout_is_the_log(tmp_path: Path) -> None:
    conf = tmp_path / "ct.conf"
    conf.write_text("")
    events: list[Event] = []
    program = _program(tmp_path, conf)
    program.leftovers[0].write_text("")  # a copy was SIGKILLed: its lock stayed behind

    async def body() -> None:
        sup = Supervisor(program, events.append)
        await sup.start()  # the stand-in refuses to start over a lock file
        await sup.halt()

    asyncio.run(body())
    log = [e for e in events if e.name == "conntrackd.log"]
    assert log and log[0].fields == {"level": "notice", "msg": "-- starting in console mode --"}


def test_keepalived_lines_become_events() -> None:
    ev = keepalived_event("Sat Dec  5 12:13:28 2026: (lan-ether3) Entering MASTER STATE", 1.0)
    assert ev == event(1.0, "vrrp.state", instance="lan-ether3", state="MASTER")
    ev = keepalived_event("Sat Dec  5 12:13:27 2026: Startup complete", 2.0)
    assert ev == event(2.0, "keepalived.log", msg="Startup complete")
    assert keepalived_event("Sat Dec  5 12:13:27 2026: ", 3.0) is None


@pytest.mark.parametrize(
    ("line", "level", "msg"),
    [
        (
            "[Sat Dec  5 12:13:06 2026] (pid=1) [notice] Committed 6 new entries",
            "notice",
            "Committed 6 new entries",
        ),
        (
            "[Sat Dec  5 12:13:06 2026] (pid=1) [ERROR] can't open lockfile",
            "ERROR",
            "can't open lockfile",
        ),
        ("something else", None, "something else"),
    ],
)
def test_conntrackd_lines_become_events(line: str, level: str | None, msg: str) -> None:
    assert conntrackd_event(line, 1.0) == event(1.0, "conntrackd.log", level=level, msg=msg)


def test_keep_running_retries_a_program_that_cannot_start_then_one_that_exits(
    tmp_path: Path,
) -> None:
    """Without a ready line (the DHCP clients): a missing program is an error event and a
    retry, not an exception; every exit calls on_exit; every event names the uplink."""
    program_path = tmp_path / "late"
    exits: list[int] = []
    events: list[Event] = []
    program = Program(
        name="dhcp_client",
        argv=(str(program_path), "--marker"),
        marker="--marker",
        pid_file=tmp_path / "late.pid",
        ready=lambda _line: True,
        log_event=lambda line, now: event(now, "dhcp_client.log", msg=line),
        fields={"wan": "W"},
        merge_stdout=True,
        on_exit=lambda: exits.append(1),
    )

    async def body() -> None:
        sup = Supervisor(program, events.append)
        await sup.keep_running()  # the program is not there yet
        assert sup.supervising and sup.pid is None and "cannot run" in (sup.last_error or "")
        program_path.write_text("#!/bin/sh\necho hello\nexit 3\n", encoding="utf-8")
        program_path.chmod(0o755)
        for _ in range(250):  # retries after 0.2 s, then runs, exits, is restarted
            if len(exits) >= 2:
                break
            await asyncio.sleep(0.02)
        await sup.halt()

    asyncio.run(body())
    names = [e.name for e in events]
    assert names[0] == "dhcp_client.error" and "dhcp_client.start" in names, names
    assert len(exits) >= 2 and names.count("dhcp_client.exit") == len(exits), names
    assert any(e.name == "dhcp_client.log" and e.fields["msg"] == "hello" for e in events)
    ours = [e for e in events if e.name != "dhcp_client.log"]
    assert all(e.fields["wan"] == "W" for e in ours), ours
