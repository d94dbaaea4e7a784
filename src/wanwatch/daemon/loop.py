"""The daemon: probes -> engine -> Linux backend, plus LAN services, hooks and the control socket.

One asyncio loop, no threads. The engine decides (pure); this module only moves
facts in (probe replies, carrier changes, leases, signals, the clock) and
decisions out (steering the kernel, hooks, the event log). Signal handlers only
enqueue; the loop acts.

A fault in one part degrades that part and is reported as an event; the loop
keeps the office online with whatever still works.

The daemon is handed its parts (parts.py; assemble.py builds the real ones), so
what stays here is the order in which they meet: start, each turn of the loop,
the callbacks, reload, shutdown. Each part's logic is elsewhere: engine/,
steer.py and repair.py (keeping the kernel at the Intent), snapshot.py
(status), admin.py, servers.py, lan.py, linux/*.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import signal
from typing import TYPE_CHECKING, Any

from wanwatch.config import Config, load
from wanwatch.config.ha import local_view
from wanwatch.config.ipv6 import has_ipv6, static_address6
from wanwatch.daemon.admin import AdminChoices
from wanwatch.daemon.clock import Clock
from wanwatch.daemon.control import serve
from wanwatch.daemon.eventlog import EventLog
from wanwatch.daemon.history import History
from wanwatch.daemon.parts import Parts, Paths
from wanwatch.daemon.quota import Quotas
from wanwatch.daemon.repair import Healer
from wanwatch.daemon.servers import Sources, serve_all
from wanwatch.daemon.snapshot import StatusSnapshot
from wanwatch.daemon.steer import Steering
from wanwatch.engine.core import Engine
from wanwatch.engine.events import event
from wanwatch.engine.intent import Admin
from wanwatch.errors import ConfigError, DnsmasqError, HaError, NetlinkError, NftError
from wanwatch.footprint import fwmark
from wanwatch.status import Status

if TYPE_CHECKING:
    from wanwatch.linux.dhcp6_client import Delegation
    from wanwatch.linux.dhcp_client import Lease

log = logging.getLogger("wanwatch")


class Daemon:
    """One router's daemon, built from its config (this router's view), engine and parts."""

    def __init__(
        self,
        config: Config,
        paths: Paths,
        engine: Engine,
        parts: Parts,
        *,
        clock: Clock,
        events: EventLog,
    ) -> None:
        self._config = config
        self.paths = paths
        self.now = clock
        self.events = events
        self._engine = engine
        self._backend = parts.backend
        self._links = parts.links
        self._drift = parts.drift
        self._lan = parts.lan
        self._hooks = parts.hooks
        self._watchdog = parts.watchdog
        self._endpoints = parts.endpoints
        self._probes = parts.probes(self.on_reply)
        self._traffic = parts.traffic(self.on_stall, engine.rtt)
        self._uplinks = parts.uplinks(self.on_lease, self.on_delegation)
        self._wake = asyncio.Event()
        self._commands: asyncio.Queue[str] = asyncio.Queue()
        self.steering = Steering(
            engine=engine,
            uplinks=self._uplinks,
            backend=self._backend,
            events=events,
            clock=clock,
            wake=self._wake.set,
        )
        self.history = History(clock)
        self._admin = AdminChoices(paths.state_dir, events.emit, clock)
        self._quotas = Quotas(paths.state_dir, events.emit, clock)
        self._snapshot = StatusSnapshot(
            config=lambda: self._config,
            engine=engine,
            steering=self.steering,
            probes=self._probes,
            backend=self._backend,
            links=self._links,
            uplinks=self._uplinks,
            lan=self._lan,
            events=events,
            clock=clock,
            quotas=lambda: self._quotas.status(self._config),
        )
        self._servers: list[asyncio.Server] = []  # metrics and the status page, if asked for
        self._readers: list[int] = []  # descriptors the loop reads for us
        for follow in (self.history.on_event, self._watchdog.on_event, self._hooks.on_event):
            events.follow(follow)

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the process exit code."""
        state_dir = self.paths.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)
        loop = asyncio.get_running_loop()
        self.steering.started_at = self.now()
        self._admin.restore(self._engine)
        self._quotas.restore(self._config, self._engine)
        for sig, cmd in (
            (signal.SIGTERM, "stop"),
            (signal.SIGINT, "stop"),
            (signal.SIGHUP, "reload"),
        ):
            loop.add_signal_handler(sig, self._signal, cmd)
        # The socket before anything else: a daemon already listening there runs this
        # router, and a second one must refuse before it touches the kernel -- it would
        # adopt the first one's routes, rules, nft table and dnsmasq, and remove them
        # all on its way out (ControlError, exit 1, nothing changed).
        server = await serve(self.paths.socket, self.answer)
        try:
            await self._start(loop)
            self.events.emit(
                event(
                    self.now(),
                    "daemon.started",
                    pid=os.getpid(),
                    config=str(self.paths.config),
                    mode=self._config.policy.mode,
                    socket=str(self.paths.socket),
                )
            )
            await self._loop()
        finally:
            await self._shutdown(server)
        return 0

    async def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        cfg = self._config
        self.events.emit_all(self._backend.start())
        self._links.open()
        for w in cfg.wans:
            self._uplinks.link(w.interface, self._links.present(w.interface))
        self._traffic.start(self._probe_uplinks(cfg))
        await self._probes.start()
        self._read(loop, self._links.fileno(), self.on_link)
        self._drift.open()
        for fd in self._drift.filenos():
            self._read(loop, fd, self.on_drift, fd)
        self.steering.heal = Healer(self.now())
        # carrier() is keyed by interface; the engine knows uplinks by name. A cable
        # already out at start is DOWN at once, as a pull later would be.
        by_iface = {w.interface: w.name for w in cfg.wans}
        for ifname, carrier in self._backend.carrier().items():
            wan = by_iface.get(ifname)
            up = wan is not None and self._uplinks.usable_link(wan, carrier)
            if wan is not None and not up:
                at = self.now()
                self.events.emit(event(at, "link.carrier", wan=wan, interface=ifname, up=up))
                self.events.emit_all(self._engine.carrier(wan, False, self.now()))
        await self._lan.start()
        sources = Sources(
            status=self._status_shared,
            events=lambda: self.events,
            counts=self.events.counts,
            history=self.history,
            clock=self.now,
        )
        self._servers = await serve_all(self._endpoints, sources, self.events)

    def _read(self, loop: asyncio.AbstractEventLoop, fd: int, *callback: Any) -> None:
        loop.add_reader(fd, *callback)
        self._readers.append(fd)

    def _unread(self, loop: asyncio.AbstractEventLoop, fds: tuple[int, ...]) -> None:
        for fd in fds:
            if fd in self._readers:
                loop.remove_reader(fd)
                self._readers.remove(fd)

    async def _shutdown(self, server: asyncio.Server) -> None:
        server.close()
        for extra in self._servers:
            extra.close()
        with contextlib.suppress(FileNotFoundError):
            self.paths.socket.unlink()
        loop = asyncio.get_running_loop()
        self._traffic.stop()
        self._unread(loop, tuple(self._readers))
        self._links.close()
        self._drift.close()
        await self._probes.close()
        await self._uplinks.stop()  # udhcpc releases its leases (-R)
        await self._lan.stop()
        try:
            self.events.emit_all(self._backend.stop())
        except (NetlinkError, NftError) as exc:
            self.events.emit(event(self.now(), "daemon.cleanup_failed", error=str(exc)))
        # The quotas as the last reading counted them: the backend's stop removed our
        # table with its counters, so what moved after that reading (at most
        # READ_EVERY s before) is not counted.
        self._quotas.save()
        await self._hooks.drain(timeout=2.0)
        self.events.emit(event(self.now(), "daemon.stopped"))

    async def _loop(self) -> None:
        engine = self._engine
        while True:
            while not self._commands.empty():
                cmd = self._commands.get_nowait()
                if cmd == "stop":
                    self.events.emit(event(self.now(), "daemon.stopping"))
                    return
                if cmd == "reload":
                    await self._reload()
            now = self.now()
            self.events.emit_all(engine.tick(now))  # timeouts first: they shape what is due
            for req in engine.due(now):
                self._probes.send(req.wan, req.target, req.seq)
            if self._quotas.due(now):
                self._count_quotas()
            self.steering.steer()
            self.steering.maybe_repair()
            await self._lan.follow(functools.partial(engine.status, now), self.steering.in_force())
            if self.history.due(now):
                self.history.sample(now, engine.status(now))
            wake = min(engine.next_wakeup(), self.steering.heal.wake_at() or math.inf)
            # WATCHDOG=1 from here: a loop that stops turning stops it (sd_watchdog_enabled(3)).
            watchdog = self._watchdog.pet(self.now())
            delay = max(0.0, min(wake - self.now(), 1.0, watchdog))
            self._wake.clear()
            if self._commands.empty():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    def _count_quotas(self) -> None:
        """The uplinks' counters against their quotas (daemon/quota.py): the backend's
        last reading, taken off the loop; bytes only, so no conntrack dump."""
        age, counters = self._backend.counters(connections=False)
        if age is not None:
            self._quotas.account(self._config, self._engine, counters)

    def _signal(self, cmd: str) -> None:
        """Signal handlers only enqueue; the loop acts (no work in a signal handler)."""
        self._commands.put_nowait(cmd)
        self._wake.set()

    # ------------------------------------------------------------------ facts in

    def on_reply(  # noqa: PLR0917 - the probe hub's callback (probe/hub.py)
        self, wan: str, seq: int, rtt: float, at: float, portal: str | None, family: int = 4
    ) -> None:
        """A probe reply (ProbeHub)."""
        self.events.emit_all(self._engine.reply(wan, seq, rtt, at, portal, family=family))
        self.steering.steer()
        self._wake.set()

    def on_stall(self, wan: str, at: float) -> None:
        """Traffic left ``wan`` and nothing came back: the engine may probe at once."""
        if evs := self._engine.traffic_stall(wan, at):
            self.events.emit_all(evs)
            self._wake.set()

    def on_link(self) -> None:
        """Carrier or presence of uplink interfaces changed (the link watcher is readable)."""
        by_iface = {w.interface: w.name for w in self._config.wans}
        adopted = False
        for ifname, carrier in self._links.read():
            wan = by_iface.get(ifname)
            if wan is None:
                continue
            present = self._links.present(ifname)
            if self._uplinks.link(ifname, present) and present:
                self._probes.reopen(wan)  # a new device: its probes bind to the new ifindex
                adopted = True
            self._uplinks.carrier(ifname, carrier and present)
            up = self._uplinks.usable_link(wan, carrier)
            at = self.now()
            self.events.emit(event(at, "link.carrier", wan=wan, interface=ifname, up=carrier))
            self.events.emit_all(self._engine.carrier(wan, up, self.now()))
        self.steering.steer(force=adopted)  # a device that appeared gets its routes and rules now
        self._wake.set()

    def on_lease(self, wan: str, lease: Lease | None, why: str) -> None:
        """A DHCP uplink gained, changed or lost its lease: apply it live."""
        if lease is None:
            self.events.emit_all(self._engine.carrier(wan, False, self.now()))
        else:
            # A new address or gateway is another path: judged afresh (engine.renumbered).
            self.events.emit_all(self._engine.renumbered(wan, self.now()))
        self.steering.renumbered()
        # After the address is on the interface: probes bind to it (re-pinned).
        w = self._config.wan(wan)
        self._probes.add_uplink(
            wan, w.interface, fwmark(self._config.wans.index(w)), self._uplinks.probe_source(wan)
        )
        self._wake.set()

    def on_delegation(self, wan: str, delegation: Delegation | None, why: str) -> None:
        """A dhcp6 uplink gained, changed or lost its delegated prefix: the LANs'
        translation follows it now (the uplink's path and health are unchanged)."""
        self.steering.renumbered()
        self._wake.set()

    def on_drift(self, fd: int) -> None:
        """Something we own may have changed in the kernel: repair it soon (debounced)."""
        try:
            kinds = self._drift.read(fd)
        except NetlinkError as exc:
            # A broken socket would wake us forever: stop listening; the periodic
            # full pass still repairs, only later.
            self.events.emit(event(self.now(), "drift.watch_failed", error=str(exc)))
            self._unread(asyncio.get_running_loop(), self._drift.filenos())
            self._drift.close()
            return
        if kinds:
            self.steering.heal.noticed(self.now())
            self._wake.set()

    def _probe_uplinks(self, cfg: Config) -> dict[str, str]:
        """Give the probes ``cfg``'s uplinks; their interfaces by name, for the traffic watch."""
        for i, wan in enumerate(cfg.wans):
            self._probes.add_uplink(
                wan.name, wan.interface, fwmark(i), self._uplinks.probe_source(wan.name)
            )
            if has_ipv6(wan):  # pinned by the same mark, through the IPv6 rules
                six = static_address6(wan)
                source = None if six is None else six.ip
                self._probes.add_uplink(wan.name, wan.interface, fwmark(i), source, family=6)
            else:
                self._probes.remove_uplink(wan.name, 6)
        # The uplinks' own traffic may start the probes' burst early (linux/traffic.py).
        return {w.name: w.interface for w in cfg.wans}

    # ------------------------------------------------------------------ reload

    async def _reload(self) -> None:
        """SIGHUP: check the whole new config first; apply it only if every part accepts it."""
        checked = await self._checked_reload()
        if checked is None:
            return
        new_shared, new = checked
        try:
            self.events.emit_all(self._backend.reload(new))
        except (NetlinkError, NftError) as exc:
            self.events.emit(event(self.now(), "config.rejected", reason="backend", error=str(exc)))
            return
        old, self._config = self._config, new
        self.events.emit_all(self._engine.reload(new, self.now()))
        self._quotas.reload(new, self._engine)
        await self._reload_uplinks(old, new)
        self._hooks.hooks = new.hooks
        await self._lan.reload(new_shared)
        self.steering.steer(force=True)
        self.events.emit(
            event(self.now(), "config.reloaded", wans=len(new.wans), lans=len(new.lans))
        )

    async def _checked_reload(self) -> tuple[Config, Config] | None:
        """The new config (shared, and this router's view), or None after saying why not."""
        try:
            new_shared = load(self.paths.config)
        except ConfigError as exc:
            self.events.emit(
                event(
                    self.now(),
                    "config.rejected",
                    problems=len(exc.problems),
                    first=exc.problems[0] if exc.problems else None,
                )
            )
            for problem in exc.problems:
                log.warning("config: %s", problem)
            return None
        try:
            await self._lan.check(self._config, new_shared)
        except DnsmasqError as exc:
            self.events.emit(event(self.now(), "config.rejected", reason="dnsmasq", error=str(exc)))
            return None
        except HaError as exc:
            self.events.emit(event(self.now(), "config.rejected", reason="ha", error=str(exc)))
            return None
        return new_shared, local_view(new_shared)

    async def _reload_uplinks(self, old: Config, new: Config) -> None:
        """Watch, lease and probe the new config's uplinks; forget the removed ones."""
        self._links.watch(w.interface for w in new.wans)
        await self._uplinks.reload(new)
        for w in new.wans:
            self._uplinks.link(w.interface, self._links.present(w.interface))
        for wan in old.wans:
            if wan.name not in {w.name for w in new.wans}:
                self._probes.remove_uplink(wan.name)
        self._traffic.watch(self._probe_uplinks(new))

    # ------------------------------------------------------------------ control socket

    def answer(self, request: dict[str, Any], uid: int | None) -> dict[str, Any] | bytes:
        """The control socket's handler (control.py): one request, one answer."""
        cmd = request.get("cmd")
        if cmd == "status":
            return self._snapshot.shared()[1]
        if cmd == "leases":
            return {"leases": self._snapshot.leases()}
        if cmd == "events":
            return {"events": [e.to_json() for e in self.events]}
        if cmd in ("disable", "enable"):
            if uid != 0:
                return {"error": f"{cmd} is for root only"}
            wan = request.get("wan")
            admin = Admin.ENABLED
            if cmd == "disable":
                admin = Admin.DRAIN if request.get("drain") is True else Admin.DISABLED
            return self._set_admin(wan, admin)
        if cmd == "quota_reset":
            if uid != 0:
                return {"error": "quota reset is for root only"}
            answer = self._quotas.reset(self._config, self._engine, str(request.get("wan")))
            self.steering.steer()
            self._wake.set()
            return answer
        return {
            "error": f"unknown command {cmd!r}"
            " (status, leases, events, disable, enable, quota_reset)"
        }

    def _set_admin(self, wan: Any, admin: Admin) -> dict[str, Any]:
        try:
            evs = self._engine.set_admin(str(wan), admin, self.now())
        except KeyError:
            return {"error": f"no uplink named {wan!r}"}
        self.events.emit_all(evs)
        saved = self._admin.save(self._engine)
        self.steering.steer()
        self._wake.set()
        return {"wan": wan, "admin": admin.value, "saved": saved}

    # ------------------------------------------------------------------ status

    def status(self) -> Status:
        """Everything ``wanwatch status`` shows; cheap: nothing here waits for the kernel."""
        return self._snapshot.status()

    def _status_shared(self) -> Status:
        return self._snapshot.shared()[0]
