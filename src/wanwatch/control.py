"""The control socket: one JSON request line in, one JSON answer line out.

The socket is created mode 0600 (root only): status shows addresses and leases,
and a later command may change state. ``wanwatch status`` is the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wanwatch.errors import WanwatchError

MAX_REQUEST = 64 * 1024


class ControlError(WanwatchError):
    """The daemon could not be reached or answered nonsense."""


Handler = Callable[[dict[str, Any]], dict[str, Any]]


async def serve(path: Path, handler: Handler) -> asyncio.Server:
    """Listen on ``path``; refuse to steal the socket of a daemon that is alive."""
    if path.exists() or path.is_symlink():
        if _alive(path):
            raise ControlError(f"{path}: another wanwatch daemon is listening there")
        path.unlink()  # stale socket of a daemon that died
    path.parent.mkdir(parents=True, exist_ok=True)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            try:
                request = json.loads(line[:MAX_REQUEST] or b"{}")
                if not isinstance(request, dict):
                    raise ValueError("not an object")
                answer = handler(request)
            except ValueError as exc:
                answer = {"error": f"bad request: {exc}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass  # a client that went away or never spoke is not our problem
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    old = os.umask(0o177)  # the socket is born 0600: no window where others can connect
    try:
        server = await asyncio.start_unix_server(on_client, path=str(path))
    except OSError as exc:  # e.g. a path longer than sun_path (108 bytes), a read-only dir
        raise ControlError(f"{path}: cannot listen: {exc.strerror or exc}") from None
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return server


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
