"""Abuse of the daemon's control socket: junk, a bad line, half requests, a crowd."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from wanwatch.daemon.control import ControlError, request
from wanwatch.lab.office import Office

JUNK_BYTES = 1 << 20


def _connect(path: Path, timeout: float) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    return s


def _answer(s: socket.socket) -> str:
    """What the daemon did with a request: its answer line, "closed" or the error."""
    chunks = []
    try:
        while chunk := s.recv(65536):
            chunks.append(chunk)
    except OSError as exc:
        # A peer that closes with our unread bytes queued resets the connection after
        # its answer (unix(7)): the answer, if it came, is what counts.
        if not chunks:
            return f"error: {exc.strerror or exc}"
    return b"".join(chunks).decode(errors="replace").strip() or "closed"


def send_junk(path: Path, size: int = JUNK_BYTES, timeout: float = 10.0) -> str:
    """``size`` bytes without a newline on one connection; what came back."""
    with _connect(path, timeout) as s:
        # A daemon that stops reading at its limit answers and closes: our send then
        # fails (EPIPE, unix(7)) or times out, while its answer waits in our queue.
        with contextlib.suppress(OSError):
            s.sendall(b"x" * size)
        return _answer(s)


def send_malformed(path: Path, timeout: float = 5.0) -> str:
    """One line that is not JSON; what came back."""
    with _connect(path, timeout) as s:
        s.sendall(b'{"cmd": "status",,\n')
        return _answer(s)


@contextlib.contextmanager
def stalled_client(path: Path) -> Iterator[socket.socket]:
    """A client that connects, sends half a request and never finishes it."""
    s = _connect(path, 5.0)
    try:
        s.sendall(b'{"cmd": "sta')
        yield s
    finally:
        s.close()


def status_storm(path: Path, clients: int, timeout: float = 10.0) -> list[float | str]:
    """``clients`` concurrent ``status`` requests; for each, its seconds if status was
    answered, else the daemon's error answer (e.g. "busy: ...") or what went wrong."""
    start = threading.Barrier(clients)

    def one(_: int) -> float | str:
        start.wait(timeout)
        t0 = time.monotonic()
        try:
            request(path, "status", timeout=timeout)
        except ControlError as exc:
            return str(exc)
        return time.monotonic() - t0

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(one, range(clients)))


def busy(answer: float | str) -> bool:
    """An explicit "busy" answer: the daemon's control socket caps concurrent clients."""
    return isinstance(answer, str) and answer.startswith("busy")


@dataclass(frozen=True)
class Abuse:
    """What the control socket answered while abused, and what a normal client got."""

    junk: str  # to 1 MiB without a newline
    malformed: str  # to a line that is not JSON
    storm: list[float | str]  # each concurrent caller: seconds to its status, or the error
    answered: list[float]  # the normal client: seconds to each status it got
    active: list[list[str]]  # ... and the uplinks each of those said carried traffic
    busy: list[str]  # ... the polls told "busy"
    failures: list[str]  # ... the polls that got no answer or another error


def abuse_control_socket(office: Office, storm: int, interval: float = 0.05) -> Abuse:
    """A normal client polls ``status`` every ``interval`` while one client sends half a
    request and never finishes, one sends 1 MiB of junk, one malformed JSON, and
    ``storm`` clients ask ``status`` at once; returns when the normal client has had five
    more answers after all that (or 10 s passed)."""
    answered: list[float] = []
    active: list[list[str]] = []
    busy_polls: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def normal_client() -> None:
        while not stop.is_set():
            t = time.monotonic()
            try:
                st = request(office.socket, "status", timeout=5.0)
            except ControlError as exc:
                (busy_polls if busy(str(exc)) else failures).append(str(exc))
            else:
                answered.append(time.monotonic() - t)
                active.append(list(st["active"]))
            stop.wait(interval)

    poller = threading.Thread(target=normal_client, daemon=True)
    poller.start()
    try:
        with stalled_client(office.socket):
            junk = send_junk(office.socket)
            bad = send_malformed(office.socket)
            callers = status_storm(office.socket, storm)
            n, deadline = len(answered), time.monotonic() + 10
            while len(answered) < n + 5 and time.monotonic() < deadline:
                time.sleep(interval)
    finally:
        stop.set()
        poller.join(10)
    return Abuse(junk, bad, callers, answered, active, busy_polls, failures)
