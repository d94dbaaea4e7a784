"""A DHCP uplink's lease after a carrier flap: when the client re-verifies it (on carrier up
after a loss, only) and what each answer does (linux/dhcp_client.py).

udhcpc is stood in for by a fake Supervisor that is fed the lines our script
prints, in busybox 1.35.0's order (networking/udhcp/dhcpc.c); the SIGUSR1 goes
to a real child. The real udhcpc is in tests/lab/test_dynamic.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from wanwatch.config import load
from wanwatch.engine.events import Event
from wanwatch.linux import dhcp_client as dhcp_client_mod
from wanwatch.linux import uplinks as uplinks_mod
from wanwatch.linux.dhcp_client import MARK, DhcpClient, Lease
from wanwatch.linux.supervisor import Program
from wanwatch.linux.uplinks import DynamicUplinks

DYNAMIC = Path(__file__).resolve().parents[2] / "examples" / "office-dynamic.yaml"
DHCP, PPP = "LTE-DHCP", "PPP-BACKUP"


class FakeClient:
    """Stands in for DhcpClient: records what DynamicUplinks asks of it."""

    made: ClassVar[list[FakeClient]] = []

    def __init__(self, wan: str, ifname: str, *_: Any, **__: Any) -> None:
        self.wan, self.ifname = wan, ifname
        self.asked: list[str] = []
        FakeClient.made.append(self)

    @property
    def running(self) -> bool:
        return "start" in self.asked

    def start(self) -> None:
        self.asked.append("start")

    def reverify(self) -> bool:
        self.asked.append("reverify")
        return True


@pytest.fixture
def dyn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DynamicUplinks:
    FakeClient.made.clear()
    monkeypatch.setattr(uplinks_mod, "DhcpClient", FakeClient)
    d = DynamicUplinks(load(DYNAMIC), tmp_path, lambda _e: None, lambda *_a: None, lambda *_a: None)
    for w in load(DYNAMIC).wans:
        d.link(w.interface, True)
    return d


def iface(wan: str) -> str:
    return load(DYNAMIC).wan(wan).interface


def asked() -> list[str]:
    (client,) = FakeClient.made
    return client.asked


def test_carrier_back_after_a_loss_reverifies_the_lease(dyn: DynamicUplinks) -> None:
    dyn.carrier(iface(DHCP), False)
    assert asked() == ["start"]
    dyn.carrier(iface(DHCP), True)
    assert asked() == ["start", "reverify"]
    dyn.carrier(iface(DHCP), True)  # a repeated "up" (a resync) is no new flap
    assert asked() == ["start", "reverify"]


def test_the_first_carrier_heard_is_no_flap(dyn: DynamicUplinks) -> None:
    dyn.carrier(iface(DHCP), True)
    assert asked() == ["start"]


def test_another_uplinks_flap_leaves_the_dhcp_client_alone(dyn: DynamicUplinks) -> None:
    dyn.carrier(iface(PPP), False)
    dyn.carrier(iface(PPP), True)
    assert asked() == ["start"]


def test_a_client_without_a_lease_has_nothing_to_reverify(tmp_path: Path) -> None:
    events: list[Event] = []
    client = DhcpClient(
        DHCP, "wan1", tmp_path, emit=events.append, on_lease=lambda *_a: None, now=lambda: 0.0
    )
    assert client.reverify() is False  # no lease, no process: no signal sent to anyone
    assert events == []


# Stands in for udhcpc's process: prints a line for every SIGUSR1 it is sent.
COUNTS_USR1 = """
import signal
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
print("ready", flush=True)
for _ in range(10):
    signal.sigwait([signal.SIGUSR1])
    print("usr1", flush=True)
"""


@pytest.fixture
def udhcpc() -> Iterator[subprocess.Popen[str]]:
    """A child standing in for udhcpc's pid (ready to be signalled); killed after the test."""
    argv = [sys.executable, "-c", COUNTS_USR1]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
            yield child
        finally:
            child.kill()


class FakeSupervisor:
    """Stands in for udhcpc's Supervisor: records start and halt; ``say`` is udhcpc's
    script printing one line (``kind`` and, with ``ip``, a lease)."""

    pid: ClassVar[int | None] = None  # the stand-in process of the test

    def __init__(self, program: Program, *_: Any) -> None:
        self.program = program
        self.calls: list[str] = []
        self.supervising = False
        self.restarts = 0
        self.last_error: str | None = None

    async def keep_running(self) -> None:
        self.calls.append("start")
        self.supervising = True

    async def halt(self) -> None:
        self.calls.append("halt")
        self.supervising = False
        await asyncio.sleep(0)  # the real one waits for the child to exit

    def say(self, kind: str, now: float, ip: str = "", lease_s: int = 120) -> None:
        fields = (kind, ip, "255.255.255.0", "10.100.0.1", "", str(lease_s), "10.100.0.1")
        self.program.log_event("\t".join((MARK, *fields)), now)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


Heard = list[tuple[str | None, str]]  # on_lease: (the lease's address, None when lost; why)
Body = Callable[[DhcpClient, FakeSupervisor, Clock], Awaitable[None]]


def run_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pid: int, body: Body
) -> tuple[Heard, list[str]]:
    """Run ``body`` with a client holding a lease of 10.100.0.127 (120 s); what on_lease
    heard after that lease, and the names of the events."""
    monkeypatch.setattr(dhcp_client_mod, "Supervisor", FakeSupervisor)
    monkeypatch.setattr(FakeSupervisor, "pid", pid)
    events: list[Event] = []
    heard: Heard = []
    clock = Clock()

    def on_lease(_wan: str, lease: Lease | None, why: str) -> None:
        heard.append((str(lease.address) if lease is not None else None, why))

    async def main() -> None:
        client = DhcpClient(
            DHCP, "wan1", tmp_path, emit=events.append, on_lease=on_lease, now=clock
        )
        client.start()
        sup = client._supervisor
        assert isinstance(sup, FakeSupervisor)
        await until(lambda: sup.calls == ["start"])
        sup.say("deconfig", clock())  # busybox runs it at start
        sup.say("bound", clock(), "10.100.0.127")
        assert heard == [("10.100.0.127/24", "bound")]
        heard.clear()
        await body(client, sup, clock)

    asyncio.run(main())
    return heard, [e.name for e in events]


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the loop run until ``check`` holds (the deadline bounds a broken run only)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.005)


async def settle() -> None:
    """Wait until every other task of the loop is done (a restart asked, its start)."""
    while others := asyncio.all_tasks() - {asyncio.current_task()}:
        await asyncio.wait(others)


def test_reverify_sends_udhcpc_sigusr1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, udhcpc: subprocess.Popen[str]
) -> None:
    async def body(client: DhcpClient, _sup: FakeSupervisor, _clock: Clock) -> None:
        assert client.reverify() is True

    heard, names = run_client(monkeypatch, tmp_path, udhcpc.pid, body)
    assert udhcpc.stdout is not None and udhcpc.stdout.readline() == "usr1\n"
    assert names[-1] == "dhcp_client.reverify", names
    assert heard == []  # asking changes nothing yet


def test_a_nak_answering_the_reverify_restarts_udhcpc_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, udhcpc: subprocess.Popen[str]
) -> None:
    async def body(client: DhcpClient, sup: FakeSupervisor, clock: Clock) -> None:
        assert client.reverify() is True
        sup.say("nak", clock())
        sup.say("deconfig", clock())  # then busybox would sleep 3 s before its DISCOVER
        await until(lambda: sup.calls == ["start", "halt", "start"])
        assert client.running and client.lease is None
        sup.say("deconfig", clock())  # the new udhcpc's start
        sup.say("bound", clock(), "10.100.0.160")

    heard, names = run_client(monkeypatch, tmp_path, udhcpc.pid, body)
    assert heard == [(None, "deconfig"), ("10.100.0.160/24", "bound")]
    assert names.count("dhcp_client.nak") == 1, names


def test_udhcpcs_own_nak_keeps_its_pause(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, udhcpc: subprocess.Popen[str]
) -> None:
    async def body(client: DhcpClient, sup: FakeSupervisor, clock: Clock) -> None:
        sup.say("nak", clock())  # its renewal at T1 refused: no re-verify of ours
        sup.say("deconfig", clock())
        await settle()  # a restart, had one been asked, done
        assert sup.calls == ["start"] and client.lease is None

    heard, _ = run_client(monkeypatch, tmp_path, udhcpc.pid, body)
    assert heard == [(None, "deconfig")]


def test_a_stop_during_the_restart_leaves_udhcpc_stopped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, udhcpc: subprocess.Popen[str]
) -> None:
    async def body(client: DhcpClient, sup: FakeSupervisor, clock: Clock) -> None:
        assert client.reverify() is True
        sup.say("nak", clock())
        await client.stop("daemon stopping")  # the restart task has not run yet
        await settle()  # whatever the restart would still do, done
        assert sup.calls[-1] == "halt" and not sup.supervising and not client.running

    run_client(monkeypatch, tmp_path, udhcpc.pid, body)


def test_an_ack_to_the_reverify_keeps_the_lease(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, udhcpc: subprocess.Popen[str]
) -> None:
    async def body(client: DhcpClient, sup: FakeSupervisor, clock: Clock) -> None:
        assert client.reverify() is True
        clock.t += 1
        sup.say("renew", clock(), "10.100.0.127")
        assert client.lease is not None and client.lease.bound_at == clock()

    heard, names = run_client(monkeypatch, tmp_path, udhcpc.pid, body)
    assert heard == []  # the same address and router: nothing to apply
    assert names[-2:] == ["dhcp_client.reverify", "dhcp_client.renew"], names


def test_an_unanswered_reverify_keeps_the_lease_until_it_ends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, udhcpc: subprocess.Popen[str]
) -> None:
    async def body(client: DhcpClient, sup: FakeSupervisor, clock: Clock) -> None:
        assert client.reverify() is True
        clock.t += 119.9  # the lease (120 s) ends 0.1 s from now
        sup.say("deconfig", clock())  # busybox: no answer to renew nor rebind, "lease lost"
        assert client.lease is not None and sup.calls == ["start"]
        sup.say("leasefail", clock())  # its DISCOVERs unanswered too
        assert client.lease is not None
        await until(lambda: client.lease is None)  # the kept lease's own end

    heard, names = run_client(monkeypatch, tmp_path, udhcpc.pid, body)
    assert heard == [(None, "expired")]
    assert names.index("dhcp_client.kept") < names.index("dhcp_client.lost"), names


def test_a_kept_lease_follows_the_next_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, udhcpc: subprocess.Popen[str]
) -> None:
    async def body(client: DhcpClient, sup: FakeSupervisor, clock: Clock) -> None:
        assert client.reverify() is True
        clock.t += 119.9
        sup.say("deconfig", clock())
        sup.say("bound", clock(), "10.100.0.127")  # the server is back: the same lease, anew
        await asyncio.sleep(0.2)  # past the kept lease's end, which must not fire now
        assert client.lease is not None and client.lease.bound_at == clock()
        assert client.reverify() is True
        sup.say("deconfig", clock())
        sup.say("nak", clock())  # a NAK ends a kept lease at once (RFC 2131 3.2)
        assert client.lease is None

    heard, names = run_client(monkeypatch, tmp_path, udhcpc.pid, body)
    assert heard == [(None, "nak")]
    assert names.count("dhcp_client.kept") == 2, names
