"""The control socket under abuse: junk, malformed JSON, floods, a client that never finishes.

A real unix socket in a temporary directory, served on an asyncio loop; no root.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVarTuple

import pytest

from wanwatch.daemon import control
from wanwatch.daemon.control import ControlError, request, serve

Calls = list[tuple[dict[str, Any], int | None]]


async def with_server(path: Path, calls: Calls, client: Any) -> Any:
    def handler(req: dict[str, Any], uid: int | None) -> dict[str, Any]:
        calls.append((req, uid))
        return {"ok": True, "cmd": req.get("cmd")}

    server = await serve(path, handler)
    try:
        return await client()
    finally:
        server.close()
        await server.wait_closed()


async def ask(path: Path, payload: bytes, eof: bool = True) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(payload)
        await writer.drain()
        if eof:
            writer.write_eof()
        line = await asyncio.wait_for(reader.readline(), 10)
    except (ConnectionResetError, BrokenPipeError):
        # The server answered and closed while our junk was still unread: unix(7)
        # then resets the connection, and the answer may be lost with it.
        return {"error": "reset"}
    finally:
        writer.close()
    answer: dict[str, Any] = json.loads(line)
    return answer


def test_a_request_is_answered_with_the_callers_uid(tmp_path: Path) -> None:
    calls: Calls = []
    sock = tmp_path / "c.sock"

    async def client() -> dict[str, Any]:
        return await asyncio.to_thread(request, sock, "status")

    answer = asyncio.run(with_server(sock, calls, client))
    assert answer == {"ok": True, "cmd": "status"}
    assert calls == [({"cmd": "status"}, os.geteuid())]
    assert sock.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"x" * (1 << 20), "longer than"),  # 1 MiB of junk, no newline
        (b'{"cmd": "status"\n', "not JSON"),
        (b"\xff\xfe\n", "not JSON"),
        (b'["status"]\n', "not a JSON object"),
    ],
    ids=["1MiB-junk", "malformed", "not-utf8", "not-object"],
)
def test_garbage_gets_an_error_and_the_server_keeps_serving(
    tmp_path: Path, payload: bytes, error: str
) -> None:
    calls: Calls = []
    sock = tmp_path / "c.sock"

    async def client() -> tuple[dict[str, Any], dict[str, Any]]:
        bad = await ask(sock, payload, eof=False)
        good = await ask(sock, b'{"cmd": "status"}\n')
        return bad, good

    bad, good = asyncio.run(with_server(sock, calls, client))
    assert error in bad["error"] or (len(payload) > control.MAX_REQUEST and bad["error"] == "reset")
    assert good == {"ok": True, "cmd": "status"}
    assert [c[0] for c in calls] == [{"cmd": "status"}]  # the junk never reached the handler


def test_many_clients_at_once_and_one_that_never_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "REQUEST_TIMEOUT", 1.0)
    calls: Calls = []
    sock = tmp_path / "c.sock"

    async def client() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        stuck_r, stuck_w = await asyncio.open_unix_connection(str(sock))
        stuck_w.write(b'{"cmd": "sta')  # ... and never more
        await stuck_w.drain()
        answers = await asyncio.gather(*(ask(sock, b'{"cmd": "status"}\n') for _ in range(100)))
        stuck = json.loads(await asyncio.wait_for(stuck_r.readline(), 10))
        stuck_w.close()
        return stuck, list(answers)

    stuck, answers = asyncio.run(with_server(sock, calls, client))
    assert "no complete line" in stuck["error"]
    served = [a for a in answers if a.get("ok")]
    busy = [a for a in answers if "busy" in a.get("error", "")]
    assert len(served) + len(busy) == 100 and len(served) >= control.MAX_CLIENTS - 1
    assert len(calls) == len(served)


Ts = TypeVarTuple("Ts")


class FakeLoop(asyncio.SelectorEventLoop):
    """A loop never run, whose clock and timers the test drives: the two things the
    pacer asks of a loop."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Callable[[], object]]] = []
        super().__init__()

    def time(self) -> float:
        return self.now

    def call_later(
        self,
        delay: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        when = self.now + delay
        self.timers.append((when, functools.partial(callback, *args)))
        return asyncio.TimerHandle(when, callback, args, self, context)

    def run_until(self, t: float) -> None:
        while self.timers and min(at for at, _ in self.timers) <= t:
            due = min(self.timers, key=lambda x: x[0])
            self.timers.remove(due)
            self.now = due[0]
            due[1]()
        self.now = t


@pytest.fixture
def loop() -> Iterator[FakeLoop]:
    loop = FakeLoop()
    yield loop
    loop.close()


def test_the_pacer_sends_a_burst_at_once_then_at_its_rate_in_order(loop: FakeLoop) -> None:
    pacer = control._Pacer(loop, rate=100.0, burst=5)
    sent: list[tuple[int, float]] = []

    def send(i: int) -> None:
        sent.append((i, loop.now))

    for i in range(25):
        pacer.submit(functools.partial(send, i))
    assert [i for i, _ in sent] == [0, 1, 2, 3, 4]  # the burst, at once
    assert len(loop.timers) == 1  # one timer for the whole queue, not one per answer
    loop.run_until(0.105)
    assert [i for i, _ in sent] == list(range(15))  # 10 more in ~0.1 s at 100/s
    loop.run_until(1.0)
    assert [i for i, _ in sent] == list(range(25)) and not loop.timers
    # Never faster than the rate after the burst: the k-th queued send waits k / rate.
    for k, (_, at) in enumerate(sent[5:], start=1):
        assert at >= k / 100.0 - 1e-9
    # A quiet spell refills the bucket: the next send goes at once.
    loop.run_until(2.0)
    pacer.submit(functools.partial(send, 25))
    assert sent[-1] == (25, 2.0)


def test_a_crowd_beyond_the_answer_rate_is_answered_once_each_in_its_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "ANSWER_RATE", 200.0)
    monkeypatch.setattr(control, "ANSWER_BURST", 10)
    calls: Calls = []
    sock = tmp_path / "c.sock"

    async def client() -> tuple[float, list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        answers = await asyncio.gather(*(ask(sock, b'{"cmd": "status"}\n') for _ in range(50)))
        return loop.time() - t0, list(answers)

    took, answers = asyncio.run(with_server(sock, calls, client))
    assert answers == [{"ok": True, "cmd": "status"}] * 50
    assert len(calls) == 50  # each request handled once, though answered later
    assert took >= (50 - 10) / 200.0 - 0.01  # paced: no faster than the rate allows


def test_a_second_daemon_may_not_take_a_live_socket(tmp_path: Path) -> None:
    sock = tmp_path / "c.sock"

    async def client() -> None:
        with pytest.raises(ControlError, match="another wanwatch daemon"):
            await serve(sock, lambda r, u: {})

    asyncio.run(with_server(sock, [], client))


def test_a_crowd_that_connects_while_the_loop_is_busy_is_queued_not_refused(
    tmp_path: Path,
) -> None:
    """Three times MAX_CLIENTS callers connect while the loop cannot accept (a loaded
    machine): each connect succeeds -- a full listen backlog would refuse it at once
    with EAGAIN, connect(2) on a unix socket -- and each is then answered or told busy."""
    calls: Calls = []
    sock = tmp_path / "c.sock"
    crowd = 3 * control.MAX_CLIENTS

    async def client() -> list[dict[str, Any]]:
        conns = []
        try:
            for _ in range(crowd):  # the loop does not turn meanwhile: nothing is accepted
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conns.append(s)
                s.settimeout(5.0)  # as request() does: a non-blocking connect underneath
                s.connect(str(sock))
                s.sendall(b'{"cmd": "status"}\n')
                s.setblocking(False)
            loop = asyncio.get_running_loop()
            lines = await asyncio.gather(*(_read_all(loop, s) for s in conns))
        finally:
            for s in conns:
                s.close()
        return [json.loads(line) for line in lines]

    answers = asyncio.run(with_server(sock, calls, client))
    served = [a for a in answers if a.get("ok")]
    busy = [a for a in answers if "busy" in a.get("error", "")]
    assert len(served) + len(busy) == crowd and len(served) == len(calls) > 0


async def _read_all(loop: asyncio.AbstractEventLoop, s: socket.socket) -> bytes:
    chunks = []
    while chunk := await asyncio.wait_for(loop.sock_recv(s, 65536), 10):
        chunks.append(chunk)
    return b"".join(chunks)
