"""The control socket under abuse: junk, malformed JSON, floods, a client that never finishes.

A real unix socket in a temporary directory, served on an asyncio loop; no root.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from wanwatch import control
from wanwatch.control import ControlError, request, serve

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


def test_a_second_daemon_may_not_take_a_live_socket(tmp_path: Path) -> None:
    sock = tmp_path / "c.sock"

    async def client() -> None:
        with pytest.raises(ControlError, match="another wanwatch daemon"):
            await serve(sock, lambda r, u: {})

    asyncio.run(with_server(sock, [], client))
