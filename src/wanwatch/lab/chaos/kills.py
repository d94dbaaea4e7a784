"""Signals to the processes of the lab's router namespace (the daemon's children)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from wanwatch.errors import LabError
from wanwatch.lab import netns
from wanwatch.lab.chaos.injected import Injected, Timer
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def kill_in_router(lab: Lab, pid: int, name: str, sig: signal.Signals) -> Injected:
    """Send ``sig`` to ``pid`` only if it runs in the lab's router namespace as ``name``
    (the daemon's children are the lab's: nothing else runs there)."""
    pids = netns.sh(["ip", "netns", "pids", lab.router_ns]).stdout.split()
    if str(pid) not in pids or _comm(pid) != name:
        raise LabError(f"pid {pid} is not {name} in {lab.router_ns}: not ours to signal")
    t = Timer(f"{name}_{sig.name}", str(pid))
    os.kill(pid, sig)
    return t.done()


def kill_dnsmasq(lab: Lab, office: Office) -> Injected:
    """SIGKILL the dnsmasq the daemon supervises (its pid from ``status``)."""
    pid = office.status()["dnsmasq"]["pid"]
    if not isinstance(pid, int):
        raise LabError(f"the daemon reports no dnsmasq pid: {pid!r}")
    return kill_in_router(lab, pid, "dnsmasq", signal.SIGKILL)
