"""The control socket: one JSON request line in, one JSON answer line out.

The socket is created mode 0600 (root only): status shows addresses and leases,
and ``disable``/``enable`` change state; the handler also gets the caller's uid
(SO_PEERCRED, unix(7)) so a command that changes state can insist on root even
if someone loosens the socket's mode. ``wanwatch status`` is the client.

A client can never hurt the daemon: a request is at most MAX_REQUEST bytes and
must arrive within REQUEST_TIMEOUT; junk, malformed JSON and oversized lines get
an error answer; at most MAX_CLIENTS are served at once (the rest are told the
daemon is busy), so a flood cannot run it out of descriptors; and answers leave
at most ANSWER_RATE a second, so a crowd asking as fast as it can waits for its
turn instead of taking the loop (and the probes' timers) for itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wanwatch.errors import WanwatchError

MAX_REQUEST = 64 * 1024
MAX_CLIENTS = 64
REQUEST_TIMEOUT = 5.0
# Answers per second, and how many may leave at once after a quiet spell. A
# dashboard or a scraper asks a few times a second; 50 scripts polling `status` in
# a loop kept the daemon's loop so busy that every probe timer ran late and a
# failover took 7 % longer (bench/failover.py --load). Over the rate,
# a client's connection stays open with its answer queued, costing nothing until
# its turn: a closed-loop crowd slows down to the rate instead of taking the loop.
ANSWER_RATE = 1000.0
ANSWER_BURST = 20
# Connections the kernel queues while the loop is not accepting (a loaded machine). A
# unix socket with a full backlog refuses a non-blocking connect at once with EAGAIN
# (connect(2)), which is what request() does; asyncio's default of 100 did that to
# the 102nd of a crowd that arrived while the loop was late. Past MAX_CLIENTS they
# are accepted and told busy; asyncio accepts up to a backlog's worth per wakeup, so
# this also bounds the descriptors a crowd holds at once (well under the usual 1024).
BACKLOG = 4 * MAX_CLIENTS
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ControlError(WanwatchError):
    """The daemon could not be reached or answered nonsense."""


# (request, peer uid) -> answer, or an answer already encoded with encode()
Handler = Callable[[dict[str, Any], int | None], dict[str, Any] | bytes]


async def serve(path: Path, handler: Handler) -> asyncio.Server:
    """Listen on ``path``; refuse to steal the socket of a daemon that is alive."""
    if path.exists() or path.is_symlink():
        if _alive(path):
            raise ControlError(f"{path}: another wanwatch daemon is listening there")
        path.unlink()  # stale socket of a daemon that died
    path.parent.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    clients = [0]
    pacer = _Pacer(loop, ANSWER_RATE, ANSWER_BURST)
    old = os.umask(0o177)  # the socket is born 0600: no window where others can connect
    try:
        server = await loop.create_unix_server(
            lambda: _Session(handler, clients, loop, pacer), path=str(path), backlog=BACKLOG
        )
    except OSError as exc:  # e.g. a path longer than sun_path (108 bytes), a read-only dir
        raise ControlError(f"{path}: cannot listen: {exc.strerror or exc}") from None
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return server


def encode(answer: dict[str, Any]) -> bytes:
    """One answer line; a handler may return it already encoded (shared by many readers)."""
    return json.dumps(answer).encode() + b"\n"


class _Pacer:
    """A token bucket on the loop's clock: a send runs now if a token is left, else
    in its turn. Queued sends are released in batches (at most every MIN_WAIT), so
    pacing costs a few timer wakeups a second, not one per answer."""

    MIN_WAIT = 0.01

    def __init__(self, loop: asyncio.AbstractEventLoop, rate: float, burst: int) -> None:
        self._loop = loop
        self._rate = rate
        self._burst = float(burst)
        self._tokens = self._burst
        self._at = loop.time()
        self._queue: deque[Callable[[], None]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def submit(self, send: Callable[[], None]) -> None:
        if not self._queue and self._take():
            send()
            return
        self._queue.append(send)
        if self._timer is None:
            wait = max((1.0 - self._tokens) / self._rate, self.MIN_WAIT)
            self._timer = self._loop.call_later(wait, self._release)

    def _take(self) -> bool:
        now = self._loop.time()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1.0 - 1e-9:  # not a float's rounding short of a whole token
            return False
        self._tokens -= 1.0
        return True

    def _release(self) -> None:
        self._timer = None
        while self._queue and self._take():
            self._queue.popleft()()
        if self._queue:
            self._timer = self._loop.call_later(self.MIN_WAIT, self._release)


class _Session(asyncio.Protocol):
    """One client: a request line in, an answer line out, then close.

    A bare protocol rather than asyncio streams: no task and no reader object per
    client, so a crowd of readers costs the daemon's loop as little as possible.
    """

    def __init__(
        self,
        handler: Handler,
        clients: list[int],
        loop: asyncio.AbstractEventLoop,
        pacer: _Pacer,
    ) -> None:
        self._handler = handler
        self._clients = clients
        self._loop = loop
        self._pacer = pacer
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False
        self._answered = False  # one answer per connection, even while it waits its turn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream socket
        self._transport = transport
        self._clients[0] += 1
        # Over the cap a client is still read (its request is one short line), then
        # told it is busy: answering before reading would close a socket with unread
        # data, which unix(7) turns into a reset and the answer would be lost.
        self._busy = self._clients[0] > MAX_CLIENTS
        self._timer = self._loop.call_later(
            REQUEST_TIMEOUT,
            self._reply,
            {"error": f"bad request: no complete line within {REQUEST_TIMEOUT:.0f} s"},
        )

    def data_received(self, data: bytes) -> None:
        if self._answered or self._transport is None or self._transport.is_closing():
            return
        self._buf += data
        end = self._buf.find(b"\n")
        if end >= 0:
            self._answer(bytes(self._buf[:end]))
        elif len(self._buf) > MAX_REQUEST:
            self._reply({"error": f"bad request: longer than {MAX_REQUEST} bytes"})

    def eof_received(self) -> bool:
        # The client closed its side after the request: answer what it sent.
        if not self._answered and self._transport is not None and not self._transport.is_closing():
            self._answer(bytes(self._buf))
        return True  # keep our side open until the answer is written

    def connection_lost(self, exc: Exception | None) -> None:
        self._clients[0] -= 1
        if self._timer is not None:
            self._timer.cancel()

    def _answer(self, line: bytes) -> None:
        if self._busy:
            self._reply({"error": "busy: too many clients, try again"})
            return
        try:
            request = json.loads(line or b"{}")
        except ValueError as exc:  # includes UnicodeDecodeError
            self._reply({"error": f"bad request: not JSON ({exc})"})
            return
        if not isinstance(request, dict):
            self._reply({"error": "bad request: not a JSON object"})
            return
        self._reply(self._handler(request, self._peer_uid()))

    def _reply(self, answer: dict[str, Any] | bytes) -> None:
        if self._answered:
            return
        self._answered = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        data = answer if isinstance(answer, bytes) else encode(answer)
        self._pacer.submit(lambda: self._send(data))

    def _send(self, data: bytes) -> None:
        t = self._transport
        if t is None or t.is_closing():
            return  # the client left while its answer waited for its turn
        t.write(data)
        t.close()

    def _peer_uid(self) -> int | None:
        sock = self._transport.get_extra_info("socket") if self._transport else None
        if sock is None:
            return None
        try:
            _pid, uid, _gid = _UCRED.unpack(
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
            )
        except OSError:
            return None
        return int(uid)


def _alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def request(path: Path, cmd: str, timeout: float = 3.0, **args: Any) -> dict[str, Any]:
    """Ask the daemon; raise ControlError with a readable reason if it cannot answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
            s.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except FileNotFoundError:
            raise ControlError(f"{path}: no such socket (is `wanwatch run` running?)") from None
        except PermissionError:
            raise ControlError(f"{path}: permission denied (the socket is root-only)") from None
        except OSError as exc:
            raise ControlError(f"{path}: {exc.strerror or exc}") from None
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        raise ControlError(f"{path}: the daemon's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise ControlError(f"{path}: unexpected answer")
    if "error" in answer:
        raise ControlError(str(answer["error"]))
    return answer
