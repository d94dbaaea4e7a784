"""Network namespaces for the lab and the tests: created by name, deleted by name.

Safety rules (docs/architecture.md, "Lab safety"): we only ever delete namespaces
we created, nothing is added to the root namespace, and every veth is created
inside one namespace with its peer moved straight into the other. Processes are
stopped only by the PID we recorded when we started them (checked against their
start time, so a reused PID is never hit).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from wanwatch.errors import LabError

# Every lab namespace name starts with this, then a per-run tag.
PREFIX = "ww"

# Every namespace created by this process, so a test session can prove at its end
# that none is left behind (tests/lab/conftest.py).
_created: set[str] = set()


def run_tag() -> str:
    """A short random tag that makes a run's namespace names unique."""
    return secrets.token_hex(3)


def created_here() -> frozenset[str]:
    """Names of the namespaces this process created (deleted ones included)."""
    return frozenset(_created)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh(["ip", *args], check=check)


def sh(
    argv: Sequence[str], check: bool = True, timeout: float = 30, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, input=input
    )
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def ns_argv(ns: str, argv: Sequence[str]) -> list[str]:
    """argv that runs ``argv`` inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]


def nsrun(
    ns: str, *argv: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return sh(ns_argv(ns, argv), check=check, timeout=timeout)


def create(name: str) -> None:
    if not name.startswith(PREFIX):
        raise LabError(f"refusing to create namespace {name!r}: lab names start with {PREFIX!r}")
    ip("netns", "add", name)
    _created.add(name)
    nsrun(name, "ip", "link", "set", "lo", "up")


def delete(name: str) -> None:
    """Delete one namespace we created, by name; killing only processes inside it."""
    if not name.startswith(PREFIX):
        raise LabError(f"refusing to delete namespace {name!r}: not a lab namespace")
    if name not in existing():
        return
    pids = sh(["ip", "netns", "pids", name], check=False).stdout.split()
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(int(pid), 9)
    ip("netns", "del", name, check=False)


def existing() -> set[str]:
    out = sh(["ip", "netns", "list"], check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def veth(ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
    """A veth pair with one end in each namespace; no end ever visits the root namespace."""
    ip("-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
    ip("-n", ns_a, "link", "set", if_a, "up")
    ip("-n", ns_b, "link", "set", if_b, "up")


@contextmanager
def namespaces(*names: str) -> Iterator[tuple[str, ...]]:
    """Create ``names``; delete them by name on the way out, whatever happened."""
    made: list[str] = []
    try:
        for n in names:
            create(n)
            made.append(n)
        yield tuple(made)
    finally:
        for n in reversed(made):
            delete(n)


# --------------------------------------------------------------------------- inside a namespace


def batch(ns: str, commands: Sequence[str]) -> None:
    """Run several ``ip`` commands in ``ns`` in one process (``ip -batch``)."""
    if commands:
        sh(["ip", "-n", ns, "-batch", "-"], input="\n".join(commands) + "\n")


def nft(ns: str, ruleset: str) -> None:
    """Apply an nft script in ``ns`` as one transaction (all or nothing)."""
    sh(ns_argv(ns, ["nft", "-f", "-"]), input=ruleset)


def nft_json(ns: str, *what: str) -> list[dict[str, Any]]:
    """``nft -j list <what>`` in ``ns``: the ``nftables`` array of objects."""
    out = sh(ns_argv(ns, ["nft", "-j", "list", *what])).stdout
    items: list[dict[str, Any]] = json.loads(out)["nftables"]
    return items


def sysctl(ns: str, values: Mapping[str, str | int]) -> None:
    """Set sysctls inside ``ns`` only (net.* sysctls are per namespace)."""
    args = [f"{k}={v}" for k, v in values.items()]
    if args:
        sh(ns_argv(ns, ["sysctl", "-q", "-w", *args]))


def link(ns: str, ifname: str) -> dict[str, Any]:
    """``ip -j link show`` of one interface in ``ns`` (flags, operstate, address)."""
    out = sh(["ip", "-j", "-n", ns, "link", "show", "dev", ifname]).stdout
    links: list[dict[str, Any]] = json.loads(out)
    if not links:
        raise LabError(f"{ns}: no interface {ifname}")
    return links[0]


# --------------------------------------------------------------------------- processes


def start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (/proc/PID/stat field 22), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after
    # the last ')' are fixed: state is field 3, starttime field 22.
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[19])


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()[0]


def alive(pid: int, started: int | None) -> bool:
    """True while the process we started as ``pid`` runs (a zombie counts as gone).

    A zombie still answers ``kill -0`` (docs/lab-notes.md: orphans linger as zombies
    here), so the process state is read instead.
    """
    state = _state(pid)
    if state is None or state in ("Z", "X"):
        return False
    return started is None or start_time(pid) == started


def stop(
    pid: int, started: int | None, popen: subprocess.Popen[Any] | None = None, grace: float = 3.0
) -> None:
    """Stop the process we started as ``pid``: SIGTERM, then SIGKILL after ``grace`` seconds.

    ``started`` is its start time as recorded by :func:`start_time`; a PID that
    now belongs to another process is left alone. ``popen`` (when we are the
    parent) is reaped so no zombie is left.
    """
    if alive(pid, started):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while alive(pid, started) and time.monotonic() < deadline:
            if popen is not None and popen.poll() is not None:
                break
            time.sleep(0.01)
        if alive(pid, started):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if popen is not None:
        with suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=grace)


def read_records(path: Path, offset: int = 0) -> Iterator[dict[str, Any]]:
    """JSON objects of a JSON-lines file from byte ``offset``; a torn last line is skipped."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line still being written
        if isinstance(obj, dict):
            yield obj


class Tail:
    """Follow a JSON-lines file a worker process is writing: only complete lines, each once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new(self) -> list[dict[str, Any]]:
        """Objects of the lines completed since the last call."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        out: list[dict[str, Any]] = []
        for line in data[:end].split(b"\n"):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue  # not one of the worker's JSON lines (e.g. a Python warning)
            if isinstance(obj, dict):
                out.append(obj)
        return out
