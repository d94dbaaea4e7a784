"""Processes the lab starts (known by PID and start time) and its LAN clients' DHCP clients.

The modules under the Lab class (this one, uplinks.py) are handed the lab as a
:class:`Runner`: the part of it they use (its plan, its state directory, the
processes it runs), so that they need not import the Lab that calls them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any, Protocol

from wanwatch.errors import LabError
from wanwatch.lab import netns, poll
from wanwatch.lab.plan import Client, Topology

# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    """A process the lab started, known by PID and start time; stdout is JSON lines."""

    name: str
    ns: str
    pid: int
    started: int | None
    out: Path
    err: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def alive(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            return False
        return netns.alive(self.pid, self.started)

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to this process, only if it is still the one we started."""
        if not self.alive():
            raise LabError(f"{self.name} (pid {self.pid}) is not running")
        os.kill(self.pid, sig)

    def records(self) -> list[dict[str, Any]]:
        """Every JSON object its stdout holds so far (a torn last line is skipped)."""
        return list(netns.read_records(self.out))

    def reported(self, ev: str) -> bool:
        """Whether its stdout holds a record ``{"ev": ev, ...}`` yet."""
        return any(r.get("ev") == ev for r in self.records())

    def stderr(self) -> str:
        try:
            return self.err.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, ready: Callable[[], object], timeout: float, what: str) -> None:
        """Wait until ``ready()`` says it serves (``what``: its socket bound, its pid file
        written); LabError if it exits first or ``timeout`` seconds pass."""

        def check() -> object:
            if not (ok := ready()) and not self.alive():
                raise LabError(f"{self.name} exited before {what}: {self.stderr()[-1000:]}")
            return ok

        poll.until(check, timeout, lambda: f"{self.name}: {what}; {self.stderr()[-1000:]}")

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for it to exit; its exit code, or None."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        if self.popen is None:
            return None
        # Gone from /proc's point of view but maybe not reapable yet: a thread-group
        # leader stays a zombie until its other threads have exited, and waitpid()
        # reaps it only then (kernel: delay_group_leader).
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.popen.wait(max(0.1, deadline - time.monotonic()))
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ns": self.ns,
            "pid": self.pid,
            "started": self.started,
            "out": str(self.out),
            "err": str(self.err),
        }


class Runner(Protocol):
    """A lab as the modules under the Lab class see it (topology.Lab is one)."""

    @property
    def topology(self) -> Topology: ...

    @property
    def state_dir(self) -> Path: ...

    @property
    def procs(self) -> tuple[Proc, ...]: ...

    def spawn(
        self, ns: str, argv: Sequence[str], name: str, env: Mapping[str, str] | None = None
    ) -> Proc:
        """Start ``argv`` inside lab namespace ``ns``; the lab stops it by PID."""
        ...

    def stop_proc(self, proc: Proc) -> None:
        """Stop one process the lab started and forget it."""
        ...


# --------------------------------------------------------------------------- clients


@dataclass(frozen=True)
class Lease:
    """A DHCP lease as the lab's udhcpc script recorded it."""

    lan: str
    event: str  # "bound" or "renew"
    address: IPv4Interface
    router: IPv4Address | None
    dns: tuple[IPv4Address, ...]
    lease_time: int
    server: IPv4Address | None
    domain: str | None
    t: float  # CLOCK_MONOTONIC when the script ran (shared by all namespaces)
    wall: float
    asked: float | None = None  # monotonic: when the client was started or asked to renew

    @property
    def took(self) -> float | None:
        """Seconds from asking to the lease being applied."""
        return None if self.asked is None else self.t - self.asked

    @classmethod
    def from_record(cls, lan: str, rec: Mapping[str, Any]) -> Lease:
        routers = rec.get("router") or []
        return cls(
            lan=lan,
            event=str(rec["event"]),
            address=IPv4Interface(f"{rec['ip']}/{rec['mask']}"),
            router=IPv4Address(routers[0]) if routers else None,
            dns=tuple(IPv4Address(a) for a in rec.get("dns") or []),
            lease_time=int(rec.get("lease") or 0),
            server=IPv4Address(rec["server"]) if rec.get("server") else None,
            domain=rec.get("domain") or None,
            t=float(rec["t"]),
            wall=float(rec["wall"]),
        )


# udhcpc calls this with the event as $1 and the lease in the environment
# (busybox networking/udhcp/dhcpc.c). Unlike the stock scripts it never
# touches /etc/resolv.conf -- namespaces share the host's filesystem -- and
# writes only the file named by WW_LEASE_FILE (and its ".events" log).
_UDHCPC_SCRIPT = '''\
#!{python} -I
"""udhcpc event script of the wanwatch lab: configure the interface, record the lease."""
import dataclasses
import json
import os
import subprocess
import sys
import time

event = sys.argv[1] if len(sys.argv) > 1 else ""
env = os.environ
iface = env.get("interface", "")
out = env["WW_LEASE_FILE"]
rec = {{"event": event, "t": time.monotonic(), "wall": time.time(), "interface": iface}}


def ip(*args):
    subprocess.run(["ip", *args], check=True)


if event == "deconfig":
    ip("-4", "addr", "flush", "dev", iface)
    ip("link", "set", iface, "up")
elif event in ("bound", "renew"):
    addr, mask = env["ip"], env.get("mask", "24")
    routers = env.get("router", "").split()
    rec.update(
        ip=addr,
        mask=int(mask),
        router=routers,
        dns=env.get("dns", "").split(),
        lease=int(env.get("lease") or 0),
        server=env.get("serverid"),
        domain=env.get("domain"),
    )
    have = json.loads(
        subprocess.run(
            ["ip", "-j", "-4", "addr", "show", "dev", iface],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    for link in have:
        for a in link.get("addr_info", []):
            if a.get("local") != addr:
                ip("addr", "del", "%s/%s" % (a["local"], a["prefixlen"]), "dev", iface)
    ip("addr", "replace", "%s/%s" % (addr, mask), "dev", iface)
    if routers:
        ip("route", "replace", "default", "via", routers[0], "dev", iface)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f)
    os.replace(tmp, out)
with open(out + ".events", "a") as f:
    f.write(json.dumps(rec) + "\\n")
'''


class DhcpClient:
    """A running busybox udhcpc in a LAN client's namespace (renews until stopped)."""

    def __init__(
        self, runner: Runner, lan: str, proc: Proc, lease_file: Path, started: float
    ) -> None:
        self.runner = runner
        self.lan = lan
        self.proc = proc
        self.lease_file = lease_file
        self.started = started  # monotonic, just before udhcpc was started

    @classmethod
    def start(cls, runner: Runner, client: Client, *, once: bool, tries: int) -> DhcpClient:
        """Start busybox udhcpc in ``client``'s namespace with our script.

        ``once``: exit after the first lease (``-q``), else keep renewing until
        stopped. Gives up after ``tries`` discovers one second apart.
        """
        script = runner.state_dir / "udhcpc-script"
        if not script.exists():
            script.write_text(_UDHCPC_SCRIPT.format(python=sys.executable))
            script.chmod(0o755)
        lease_file = runner.state_dir / "dhcp" / f"{client.lan}.json"
        argv = [
            "busybox",
            "udhcpc",
            "-f",  # foreground: we hold its PID
            "-i",
            client.ifname,
            "-s",
            str(script),
            "-t",
            str(tries),
            "-T",
            "1",
            "-n",  # exit when no lease after the tries, instead of retrying for ever
            "-x",
            f"hostname:{client.hostname}",
        ]
        if once:
            argv.append("-q")
        started = time.monotonic()
        env = {"WW_LEASE_FILE": str(lease_file)}
        proc = runner.spawn(client.ns, argv, f"udhcpc-{client.lan}", env=env)
        return cls(runner, client.lan, proc, lease_file, started)

    def lease(self) -> Lease | None:
        """The latest lease recorded, or None."""
        try:
            rec = json.loads(self.lease_file.read_text())
        except FileNotFoundError:
            return None
        return Lease.from_record(self.lan, rec)

    def wait_lease(self, deadline: float, after: float | None = None) -> Lease:
        """The first lease recorded after monotonic ``after`` (default: since this client
        started); LabError at monotonic ``deadline`` or if udhcpc exits without one."""
        after = self.started if after is None else after
        while True:
            running = self.proc.alive()  # read before the lease: it may exit right after
            lease = self.lease()
            if lease is not None and lease.t > after:
                return dataclasses.replace(lease, asked=after)
            if not running:
                raise LabError(f"{self.lan}: udhcpc exited: {self.proc.stderr()[-500:]}")
            if time.monotonic() >= deadline:
                raise LabError(
                    f"{self.lan}: no DHCP lease recorded by the deadline; "
                    f"udhcpc says: {self.proc.stderr()[-500:]}"
                )
            time.sleep(0.01)

    def events(self) -> list[dict[str, Any]]:
        """Every event the script saw (deconfig, bound, renew, nak, leasefail)."""
        return list(netns.read_records(Path(str(self.lease_file) + ".events")))

    def renew(self) -> float:
        """Ask for a renewal now (udhcpc SIGUSR1); returns when it was asked.

        Only once bound: before udhcpc installs its handler, SIGUSR1 kills it.
        """
        lease = self.lease()
        if lease is None or lease.t <= self.started:
            raise LabError(f"{self.lan}: no lease yet, nothing to renew (wait_lease first)")
        t = time.monotonic()
        self.proc.send_signal(signal.SIGUSR1)
        return t

    def stop(self) -> None:
        self.runner.stop_proc(self.proc)
