"""The pair follows keepalived's notify FIFO: lines written as keepalived writes them, a
stand-in conntrackd that takes its time, a recording dnsmasq (linux/pair.py).

No root and no keepalived: the FIFO is a real one in a temporary directory, and
this test is its writer.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from wanwatch.config import load
from wanwatch.daemon.eventlog import EventLog
from wanwatch.lab.poll import until_async
from wanwatch.linux.pair import Pair

EXAMPLE = Path(__file__).parents[2] / "examples" / "office-ha-a.yaml"


class Dhcp:
    """What Pair asks of dnsmasq, recorded."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def start(self) -> None:
        self.calls.append("dnsmasq start")

    async def stop(self) -> None:
        self.calls.append("dnsmasq stop")


def fake_conntrackd(tmp_path: Path, calls: Path) -> Path:
    """A conntrackd that records its option and takes 50 ms to flush its caches (-f)."""
    script = tmp_path / "conntrackd"
    script.write_text(
        "#!/bin/sh\n"
        "for last; do :; done\n"
        f'echo "start $last" >> {calls}\n'
        '[ "$last" = -f ] && sleep 0.05\n'
        f'echo "end $last" >> {calls}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def make_pair(tmp_path: Path) -> tuple[Pair, EventLog, list[str], Path]:
    """A Pair on the stand-ins; its events, dnsmasq's calls, the file of conntrackd's."""
    events = EventLog()
    ct_calls = tmp_path / "calls"
    calls: list[str] = []
    conntrackd_bin = str(fake_conntrackd(tmp_path, ct_calls))
    dhcp = Dhcp(calls)
    pair = Pair(load(EXAMPLE), dhcp, tmp_path, events.emit, conntrackd_bin=conntrackd_bin)  # type: ignore[arg-type]
    return pair, events, calls, ct_calls


def test_a_flip_during_the_masters_first_step_ends_as_backup_without_dnsmasq(
    tmp_path: Path,
) -> None:
    pair, events, calls, ct_calls = make_pair(tmp_path)

    def served() -> list[object]:
        return [
            (e.fields["role"], e.fields["turn"]) for e in events.recent(50) if e.name == "ha.served"
        ]

    def ct() -> list[str]:
        return ct_calls.read_text().split("\n")[:-1] if ct_calls.exists() else []

    async def go() -> None:
        pair.listen()
        assert stat.S_ISFIFO(pair.kfiles.fifo.stat().st_mode)
        fd = os.open(pair.kfiles.fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, b'INSTANCE "lan-ether3" BACKUP 150\nGROUP "wanwatch" BACKUP 0\n')
            await until_async(lambda: ct() == ["start -n", "end -n"], 5, "the backup's resync")
            os.write(fd, b'GROUP "wanwatch" MASTER 0\n')
            await until_async(lambda: "start -f" in ct(), 5, "the master's first step")
            # 5 ms later: the better peer's advert; keepalived writes BACKUP, in
            # two writes that split a line (a reader must join them)
            os.write(fd, b'GROUP "wanwatch" BAC')
            os.write(fd, b'KUP 0\nINSTANCE "wan-X" MASTER_RX_LOWER_PRI 150\n')
            await until_async(lambda: len(served()) == 2, 5, "the second resync")
            assert ct()[-1:] == ["end -n"] and pair.role() == "BACKUP"
            os.write(fd, b'GROUP "wanwatch" STOP 0\n')
            await until_async(lambda: pair.role() == "STOP", 5, "keepalived's STOP")
        finally:
            os.close(fd)
            await pair.stop()

    asyncio.run(go())
    # the step in flight finished; the rest of the master's steps were dropped
    assert ct() == ["start -n", "end -n", "start -f", "end -f", "start -n", "end -n"]
    assert calls == []  # never master long enough to start dnsmasq
    roles = [
        (e.fields["role"], e.fields["dropped"]) for e in events.recent(50) if e.name == "ha.role"
    ]
    assert roles == [("BACKUP", 0), ("MASTER", 0), ("BACKUP", 2), ("STOP", 0)]
    assert served() == [("BACKUP", 1), ("BACKUP", 3), ("STOP", 4)]  # MASTER's turn 2 never was
    assert not pair.kfiles.fifo.exists()


def test_master_starts_dnsmasq_after_conntrackd_and_a_killed_keepalived_stops_it(
    tmp_path: Path,
) -> None:
    pair, _, calls, ct_calls = make_pair(tmp_path)

    async def go() -> None:
        pair.listen()
        fd = os.open(pair.kfiles.fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, b'GROUP "wanwatch" MASTER 0\n')
            await until_async(lambda: calls == ["dnsmasq start"], 5, "dnsmasq started")
            steps = ct_calls.read_text().split()
            assert steps == ["start", "-f", "end", "-f", "start", "-R", "end", "-R",
                             "start", "-B", "end", "-B"]  # fmt: skip
            # keepalived killed: no STOP from it; its supervisor says it exited
            pair._keepalived.program.on_exit()  # type: ignore[misc]
            await until_async(lambda: calls[-1:] == ["dnsmasq stop"], 5, "dnsmasq stopped")
            assert pair.status()["role"] == "STOP" and pair.status()["serving_dhcp"] is False
        finally:
            os.close(fd)
            await pair.stop()

    asyncio.run(go())
