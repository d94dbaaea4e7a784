"""Faults on the router itself: what an admin, a firewall reload or a crash does to wanwatch.

(Over 600 lines on purpose: one injection and its read-back per fault, shared
by tests/lab/test_selfheal.py and bench/faults.py; each is short and alone.)

faults.py breaks the world around the router (the ISPs); this module breaks
the router's own state in the lab's router namespace, as a real office sees it
happen: its nft table deleted, ``nft flush ruleset``, its routes and rules
flushed, forwarding turned off, dnsmasq killed, garbage on the control socket,
a broken config under SIGHUP, a wall-clock jump. Every injection touches only
the lab's router namespace, the daemon's own files, or processes the lab
started (checked by namespace and name before a signal is sent).

:class:`Footprint` reads back what wanwatch owns in the kernel (by its marks:
route protocol, rule protocol, its nft table, the forwarding sysctl), so a
test or bench can tell when the state is whole again, not only when the
daemon says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from wanwatch.config import load
from wanwatch.daemon.control import ControlError, request
from wanwatch.errors import LabError
from wanwatch.footprint import NFT_FAMILY, NFT_TABLE, RT_PROTO
from wanwatch.lab import netns
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import Attempt, ConnectLoop, Flow, FlowReport

FORWARD_SYSCTL = "net.ipv4.ip_forward"
JUNK_BYTES = 1 << 20
# libfaketime (Debian package libfaketime, pulled in by faketime) lives under the
# multiarch directory; FAKETIME_TIMESTAMP_FILE with FAKETIME_NO_CACHE=1 makes every
# clock read look at the file again, so the offset changes while the process runs
# (faketime(1), libfaketime README "Changing the 'specified fake time' while running").
FAKETIME_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"
_SLEEP_SHIM = """\
#define _GNU_SOURCE
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req,
                    struct timespec *rem) {
    return syscall(SYS_clock_nanosleep, clock, flags, req, rem) == -1 ? errno : 0;
}
"""


@dataclass(frozen=True)
class Injected:
    """One fault on the router; the kernel (or process) took it between the two times."""

    fault: str
    t_start: float  # monotonic, before the command: never flatters a recovery time
    t_done: float  # monotonic, once the command returned: the fault is in place
    detail: str = ""


class _Timer:
    def __init__(self, fault: str, detail: str = "") -> None:
        self.fault, self.detail = fault, detail
        self.t_start = time.monotonic()

    def done(self) -> Injected:
        return Injected(self.fault, self.t_start, time.monotonic(), self.detail)


# --------------------------------------------------------------------------- what we own


@dataclass(frozen=True)
class Footprint:
    """wanwatch's objects in the router namespace, as comparable values."""

    nft: str | None  # `nft list table inet wanwatch` (no handles), None if absent
    routes: frozenset[str]  # every route with our protocol, any table
    rules: frozenset[str]  # every policy rule with our protocol
    forwarding: bool

    @classmethod
    def read(cls, lab: Lab) -> Footprint:
        return cls(nft_table(lab), our_routes(lab), our_rules(lab), forwarding(lab))

    def missing(self, now: Footprint) -> list[str]:
        """What of this footprint ``now`` lacks (or has changed), by kind."""
        gone = []
        if self.nft is not None and now.nft != self.nft:
            gone.append("nft table" if now.nft is None else "nft table content")
        gone += [f"route {r}" for r in sorted(self.routes - now.routes)]
        gone += [f"rule {r}" for r in sorted(self.rules - now.rules)]
        if self.forwarding and not now.forwarding:
            gone.append(FORWARD_SYSCTL)
        return gone


def nft_table(lab: Lab) -> str | None:
    res = netns.nsrun(lab.router_ns, "nft", "list", "table", NFT_FAMILY, NFT_TABLE, check=False)
    return res.stdout if res.returncode == 0 else None


def _ip_json(lab: Lab, *args: str) -> list[dict[str, object]]:
    out = netns.sh(["ip", "-j", "-n", lab.router_ns, *args]).stdout.strip()
    found: list[dict[str, object]] = json.loads(out) if out else []
    return found


def _key(obj: Mapping[str, object]) -> str:
    # "flags" (linkdown, onlink...) follow the carrier, not what we asked for.
    return json.dumps({k: v for k, v in obj.items() if k != "flags"}, sort_keys=True)


def our_routes(lab: Lab) -> frozenset[str]:
    rows = _ip_json(lab, "route", "show", "table", "all", "proto", str(RT_PROTO))
    return frozenset(_key(r) for r in rows)


def our_rules(lab: Lab) -> frozenset[str]:
    rows = _ip_json(lab, "rule", "show")
    return frozenset(_key(r) for r in rows if r.get("protocol") == str(RT_PROTO))


def forwarding(lab: Lab) -> bool:
    res = netns.nsrun(lab.router_ns, "sysctl", "-n", FORWARD_SYSCTL)
    return res.stdout.strip() == "1"


def wait_whole(lab: Lab, baseline: Footprint, deadline: float, poll: float = 0.01) -> float | None:
    """Poll the kernel until nothing of ``baseline`` is missing; the monotonic time it
    was first seen whole (the end of the read that saw it), or None at ``deadline``."""
    while True:
        now = Footprint.read(lab)
        seen = time.monotonic()
        if not baseline.missing(now):
            return seen
        if seen >= deadline:
            return None
        time.sleep(poll)


# --------------------------------------------------------------------------- kernel drift


def delete_nft_table(lab: Lab) -> Injected:
    """``nft delete table inet wanwatch``: NAT and our forward filter are gone."""
    t = _Timer("nft_table_deleted")
    netns.nsrun(lab.router_ns, "nft", "delete", "table", NFT_FAMILY, NFT_TABLE)
    return t.done()


def flush_ruleset(lab: Lab) -> Injected:
    """``nft flush ruleset``: every table of the router namespace, ours included."""
    t = _Timer("nft_flush_ruleset")
    netns.nsrun(lab.router_ns, "nft", "flush", "ruleset")
    return t.done()


def flush_routes(lab: Lab) -> Injected:
    """Every route with our protocol, from every table (ip-route(8) ``flush proto``)."""
    t = _Timer("routes_flushed")
    netns.ip("-n", lab.router_ns, "route", "flush", "proto", str(RT_PROTO), "table", "all")
    return t.done()


def delete_rules(lab: Lab) -> Injected:
    """Every policy rule with our protocol (ip-rule(8) ``flush protocol``)."""
    t = _Timer("rules_deleted")
    netns.ip("-n", lab.router_ns, "rule", "flush", "protocol", str(RT_PROTO))
    return t.done()


def forwarding_off(lab: Lab) -> Injected:
    """``net.ipv4.ip_forward = 0`` in the router namespace (per namespace: sysctl.py)."""
    t = _Timer("ip_forward_off")
    netns.sysctl(lab.router_ns, {FORWARD_SYSCTL: 0})
    return t.done()


# --------------------------------------------------------------------------- processes


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
    t = _Timer(f"{name}_{sig.name}", str(pid))
    os.kill(pid, sig)
    return t.done()


def kill_dnsmasq(lab: Lab, office: Office) -> Injected:
    """SIGKILL the dnsmasq the daemon supervises (its pid from ``status``)."""
    pid = office.status()["dnsmasq"]["pid"]
    if not isinstance(pid, int):
        raise LabError(f"the daemon reports no dnsmasq pid: {pid!r}")
    return kill_in_router(lab, pid, "dnsmasq", signal.SIGKILL)


# --------------------------------------------------------------------------- control socket


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


# --------------------------------------------------------------------------- config and clock


def broken_config(good: str) -> str:
    """``good`` with one invalid value: the second uplink's gateway is no address."""
    marker = "gateway: 192.168.18.1"
    if marker not in good:
        raise LabError("the config has no second uplink gateway to break")
    return good.replace(marker, "gateway: 192.168.18.300", 1)


def sighup_broken(office: Office) -> tuple[Injected, str]:
    """Write a broken config over the daemon's file and SIGHUP it; the good text, to restore."""
    if office.daemon is None:
        raise LabError("the daemon is not running")
    path = office.config_path
    good = path.read_text()
    path.write_text(broken_config(good))
    t = _Timer("sighup_broken_config", str(path))
    office.daemon.send_signal(signal.SIGHUP)
    return t.done(), good


class WallClock:
    """A wall-clock offset for one process tree, through libfaketime; the host's clock
    (not namespaced) is never touched. Monotonic time stays real.

    libfaketime 0.9.10 (Debian 12) shifts the deadline of ``clock_nanosleep(
    CLOCK_MONOTONIC, TIMER_ABSTIME)`` by the wall clock even when monotonic time is
    not faked, and the kernel refuses it (EINVAL); Python 3.11's ``time.sleep``
    makes exactly that call (libfaketime issue #426, wolfcw/libfaketime on GitHub).
    A shim loaded first passes that one call straight to the kernel.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.shim = path.with_name("monotonic-sleep.so")
        self.library: Path | None = None

    def prepare(self) -> None:
        """Find libfaketime, build the shim, start at offset +0 (once)."""
        if self.library is not None:
            return
        found = sorted(Path("/").glob(FAKETIME_GLOB.lstrip("/")))
        if not found:
            raise LabError(f"libfaketime not found ({FAKETIME_GLOB}): install faketime")
        netns.sh(["gcc", "-O2", "-shared", "-fPIC", "-o", str(self.shim), "-x", "c", "-"],
                 input=_SLEEP_SHIM)  # fmt: skip
        self.set("+0")
        self.library = found[0]

    def env(self) -> dict[str, str]:
        self.prepare()
        return {
            "LD_PRELOAD": f"{self.shim}:{self.library}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
        }

    def set(self, offset: str) -> Injected:
        """Shift the faked wall clock to ``offset`` from the real one ("+1h", "-1h", "+0")."""
        t = _Timer("wall_clock", offset)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(offset + "\n")
        tmp.replace(self.path)
        return t.done()

    @contextlib.contextmanager
    def children(self) -> Iterator[None]:
        """Processes started inside this block (e.g. ``Office.start``) run on the faked clock."""
        saved = {k: os.environ.get(k) for k in self.env()}
        os.environ.update(self.env())
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


# --------------------------------------------------------------------------- the LAN's view


@dataclass(frozen=True)
class Outcome:
    """What a LAN client saw across a fault: new connections and one long-lived flow."""

    attempts: tuple[Attempt, ...]
    flow: FlowReport | None  # None: no flow was kept (no uplink carried when it began)

    def failed(self, start: float, end: float = float("inf")) -> list[Attempt]:
        """Connections started in [start, end) that failed."""
        return [a for a in self.attempts if start <= a.t0 < end and not a.ok]

    def errors(self, start: float, end: float = float("inf")) -> dict[str, int]:
        """How the connections started in [start, end) failed: error -> count."""
        return dict(Counter(str(a.error) for a in self.failed(start, end)))

    def first_ok(self, after: float, via: str | None = None) -> Attempt | None:
        """The first connection started at/after ``after`` that was answered (via ``via``)."""
        hits = [a for a in self.attempts if a.ok and a.t0 >= after and via in (None, a.isp)]
        return min(hits, key=lambda a: a.t1, default=None)

    @property
    def flow_survived(self) -> bool | None:
        return None if self.flow is None else self.flow.alive

    @property
    def longest_stall(self) -> float:
        """Seconds of the flow's longest wait for an echo (0 if it never stalled)."""
        stalls = self.flow.stalls if self.flow is not None else []
        ends = [(b if b is not None else time.monotonic()) - a for a, b in stalls]
        return max(ends, default=0.0)


class Watch:
    """A LAN client across a fault: one long-lived flow through the uplink carrying now,
    and a new TCP connection every ``interval`` (each bounded by ``timeout``).

    ``with Watch(lab, "ether3") as w: inject...; w.loop.first_success(...)``; then
    :meth:`outcome` (or leaving the block) stops both and reports.
    """

    def __init__(
        self,
        lab: Lab,
        client: str,
        *,
        interval: float = 0.02,
        timeout: float = 1.0,
        max_seconds: float = 120.0,
        flow: bool = True,
    ) -> None:
        self.flow: Flow | None = None
        if flow:
            self.flow = Flow(lab, client, interval=0.05, stall_after=0.5, max_seconds=max_seconds)
        self.loop = ConnectLoop(
            lab, client, interval=interval, timeout=timeout, max_seconds=max_seconds
        )
        self._outcome: Outcome | None = None

    def __enter__(self) -> Watch:
        try:
            if self.flow is not None:
                self.flow.start()
                self.flow.wait_connected(time.monotonic() + 10)
            self.loop.start()
            self.loop.wait_started(time.monotonic() + 10)
        except BaseException:
            self.outcome()
            raise
        return self

    def exchanges(self) -> int:
        """Echoes the flow has had so far (0 without a flow)."""
        return 0 if self.flow is None else self.flow.report().exchanges

    def flow_broken(self) -> bool:
        """Whether the flow has been reset or closed by now."""
        return self.flow is not None and self.flow.report().broken_at is not None

    def __exit__(self, *exc: object) -> None:
        self.outcome()

    def outcome(self) -> Outcome:
        if self._outcome is None:
            attempts = self.loop.stop() if self.loop.proc is not None else []
            flow = self.flow.stop() if self.flow is not None else None
            self._outcome = Outcome(tuple(attempts), flow)
        return self._outcome


# --------------------------------------------------------------------------- the test bed


def office_config(lab: Lab, name: str, **monitor: float) -> Path:
    """The lab's config with ``monitor`` overrides and no hooks (the office's ``logger``
    hooks would write to the host's syslog), validated, in the lab's state dir."""
    data = yaml.safe_load(lab.config_text)
    data["monitor"] = {**data.get("monitor", {}), **monitor}
    data["hooks"] = {}
    path = lab.state_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load(path)
    return path


class Testbed:
    """A lab with the daemon as its router (on a wall clock we can move, when asked), and
    the kernel footprint it builds when healthy (the baseline every repair is checked
    against)."""

    def __init__(self, lab: Lab, config: Path, primary: str) -> None:
        self.lab = lab
        self.office = Office(lab, config)
        self.clock = WallClock(lab.state_dir / "faketime")
        self.primary = primary
        self.baseline: Footprint | None = None
        # Only the clock fault runs the daemon under libfaketime: the preload itself
        # stalls threaded Python processes when the clock moves (see clock_spells).
        self.faked = False

    def start(self, timeout: float = 30.0, active: str | None = None) -> None:
        """Start the daemon (on the faked clock if :attr:`faked`); return once ``active``
        (default: the primary) carries traffic."""
        with self.clock.children() if self.faked else contextlib.nullcontext():
            self.office.start(wait_active=active or self.primary, timeout=timeout)

    def restart(self, *, faked: bool, timeout: float) -> None:
        """Stop the daemon (SIGTERM) and start it again, on the faked clock or not."""
        if self.office.daemon is not None:
            self.office.stop()
        self.faked = faked
        if faked:
            self.clock.set("+0")
        self.heal(timeout)

    def settled(self, timeout: float) -> dict[str, object]:
        """Wait until the primary carries (applied), is preferred and every uplink is up."""

        def ok(st: dict[str, object]) -> bool:
            wans = st["wans"]
            return isinstance(wans, list) and (
                st["active"] == [self.primary]
                and bool(st.get("applied"))
                and all(w["state"] == "up" for w in wans)
                and any(w["name"] == self.primary and w["preferred"] for w in wans)
            )

        return self.office.wait_for(ok, timeout, f"{self.primary} carrying, every uplink up")

    def whole(self, timeout: float) -> bool:
        if self.baseline is None:
            raise LabError("no baseline yet: call heal() once the daemon is healthy")
        return wait_whole(self.lab, self.baseline, time.monotonic() + timeout) is not None

    def heal(self, timeout: float) -> bool:
        """Back to healthy: the daemon running, settled, its footprint whole. Restarts it
        (SIGTERM removes what it added) if that does not happen by itself within
        ``timeout``; returns whether a restart was needed."""
        daemon = self.office.daemon
        if daemon is not None and daemon.alive():
            try:
                self.settled(timeout)
                if self.baseline is None:
                    self.baseline = Footprint.read(self.lab)
                    return False
                if self.whole(min(timeout, 5.0)):
                    return False
            except LabError:
                pass
            self.office.stop()
        self.start()
        self.settled(timeout)
        if self.baseline is None:
            self.baseline = Footprint.read(self.lab)
        elif not self.whole(10.0):
            raise LabError("a freshly started daemon did not build its footprint")
        return True


@dataclass(frozen=True)
class ClockSpell:
    """What ``status`` said, polled every 100 ms, while the wall clock sat at one offset."""

    offset: str
    jump: Injected
    states: frozenset[str]  # every uplink state seen
    actives: frozenset[tuple[str, ...]]  # every set of carrying uplinks seen
    max_rtt_ms: float | None  # None: some uplink had no RTT at some poll
    max_loss_pct: float
    replies: dict[str, int]  # probe replies per uplink over the spell


def clock_spells(bed: Testbed, offsets: tuple[str, ...], seconds: float) -> list[ClockSpell]:
    """Move the daemon's wall clock to each offset in turn and watch it ``seconds``."""
    out = []
    for offset in offsets:
        jump = bed.clock.set(offset)
        first = bed.office.status()
        states: set[str] = set()
        actives: set[tuple[str, ...]] = set()
        rtts: list[float | None] = []
        losses: list[float] = []
        end = time.monotonic() + seconds
        while True:
            # Generous: libfaketime 0.9.10 also rewrites the deadlines of
            # pthread_cond_timedwait (nm -D shows it intercepted), which CPython's GIL
            # waits on, so right after a jump any threaded Python process can stall
            # about a second -- measured here with a bare asyncio server under the same
            # preload (up to 1.3 s; 0.05 s without it). A slow answer is the tool's.
            st = request(bed.office.socket, "status", timeout=10.0)
            for w in st["wans"]:
                states.add(str(w["state"]))
                rtts.append(w["rtt_ms"])
                losses.append(float(w["loss_pct"]))
            actives.add(tuple(st["active"]))
            if time.monotonic() >= end:
                break
            time.sleep(0.1)
        replies = {
            w["name"]: int(w["probes"]["replies"]) - int(v["probes"]["replies"])
            for w, v in zip(st["wans"], first["wans"], strict=True)
        }
        worst = None if None in rtts else max(float(r) for r in rtts if r is not None)
        out.append(
            ClockSpell(
                offset,
                jump,
                frozenset(states),
                frozenset(actives),
                worst,
                max(losses),
                replies,
            )
        )
    return out
