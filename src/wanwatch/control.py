"""The control socket: one JSON request line in, one JSON answer line out.

The socket is created mode 0600 (root only): status shows addresses and leases,
and ``disable``/``enable`` change state; the handler also gets the caller's uid
(SO_PEERCRED, unix(7)) so a command that changes state can insist on root even
if someone loosens the socket's mode. ``wanwatch status`` is the client.

A client can never hurt the daemon: a request is at most MAX_REQUEST bytes and
must arrive within REQUEST_TIMEOUT; junk, malformed JSON and oversized lines get
an error answer; at most MAX_CLIENTS are served at once (the rest are told the
daemon is busy), so a flood cannot starve the loop or run it out of descriptors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wanwatch.errors import WanwatchError

MAX_REQUEST = 64 * 1024
MAX_CLIENTS = 64
REQUEST_TIMEOUT = 5.0
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ControlError(WanwatchError):
    """The daemon could not be reached or answered nonsense."""


Handler = Callable[[dict[str, Any], int | None], dict[str, Any]]  # (request, peer uid)


async def serve(path: Path, handler: Handler) -> asyncio.Server:
    """Listen on ``path``; refuse to steal the socket of a daemon that is alive."""
    if path.exists() or path.is_symlink():
        if _alive(path):
            raise ControlError(f"{path}: another wanwatch daemon is listening there")
        path.unlink()  # stale socket of a daemon that died
    path.parent.mkdir(parents=True, exist_ok=True)

    clients = 0

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal clients
        clients += 1
        try:
            if clients > MAX_CLIENTS:
                answer: dict[str, Any] = {"error": "busy: too many clients, try again"}
            else:
                answer = await _serve_one(reader, writer, handler)
            writer.write(json.dumps(answer).encode() + b"\n")
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        except (TimeoutError, ConnectionError):
            pass  # a client that went away or never read its answer is not our problem
        finally:
            clients -= 1
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    old = os.umask(0o177)  # the socket is born 0600: no window where others can connect
    try:
        server = await asyncio.start_unix_server(on_client, path=str(path), limit=MAX_REQUEST)
    except OSError as exc:  # e.g. a path longer than sun_path (108 bytes), a read-only dir
        raise ControlError(f"{path}: cannot listen: {exc.strerror or exc}") from None
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return server


async def _serve_one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler
) -> dict[str, Any]:
    """Read one request line and answer it (an error answer for anything malformed)."""
    try:
        line = await asyncio.wait_for(reader.readuntil(b"\n"), REQUEST_TIMEOUT)
    except TimeoutError:
        return {"error": f"bad request: no complete line within {REQUEST_TIMEOUT:.0f} s"}
    except asyncio.LimitOverrunError:
        return {"error": f"bad request: longer than {MAX_REQUEST} bytes"}
    except asyncio.IncompleteReadError as exc:
        line = exc.partial  # the client closed its side after the request: fine
    try:
        request = json.loads(line or b"{}")
    except ValueError as exc:  # includes UnicodeDecodeError
        return {"error": f"bad request: not JSON ({exc})"}
    if not isinstance(request, dict):
        return {"error": "bad request: not a JSON object"}
    return handler(request, _peer_uid(writer))


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
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
