"""Network namespaces for the lab and the tests: created by name, deleted by name.

Safety rules (DESIGN.md): we only ever delete namespaces we created, nothing is
added to the root namespace, and every veth is created inside one namespace with
its peer moved straight into the other.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from wanwatch.errors import LabError

# Every lab namespace name starts with this, then a per-run tag.
PREFIX = "ww"


def run_tag() -> str:
    """A short random tag that makes a run's namespace names unique."""
    return secrets.token_hex(3)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh(["ip", *args], check=check)


def sh(
    argv: Sequence[str], check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
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
