"""The daemon: probes -> engine -> Linux backend, plus dnsmasq, hooks and the control socket.

One asyncio loop, no threads. The engine decides (pure); this module only moves
facts in (probe replies, carrier changes, signals, the clock) and decisions out
(kernel state, hooks, the event log). Signal handlers only enqueue; the loop acts.

A fault in one part degrades that part and is reported as an event; the loop
keeps the office online with whatever still works.

Why one module of ~700 lines: it is the one place where every part meets the
loop (start order, callbacks, reload, shutdown, status). Each part's logic is
elsewhere -- engine/, repair.py (self-healing), linux/*, web/, history.py --
and what stays here is wiring that reads best in one file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wanwatch import status as st
from wanwatch.config import Config, load
from wanwatch.config.ha import local_view
from wanwatch.daemon.control import encode, serve
from wanwatch.daemon.history import History
from wanwatch.daemon.hooks import HookRunner
from wanwatch.daemon.repair import Healer
from wanwatch.daemon.sdnotify import Notifier
from wanwatch.engine.core import Engine
from wanwatch.engine.events import Event, event
from wanwatch.engine.intent import Admin, Intent
from wanwatch.errors import (
    ConfigError,
    DnsmasqError,
    HaError,
    NetlinkError,
    NftError,
    WanwatchError,
)
from wanwatch.footprint import fwmark
from wanwatch.linux.apply import LinkWatcher, LinuxBackend
from wanwatch.linux.dhcp_client import Lease
from wanwatch.linux.dnsmasq import Dnsmasq
from wanwatch.linux.leases import read_leases
from wanwatch.linux.pair import Pair, validate_reload
from wanwatch.linux.traffic import TrafficWatch
from wanwatch.linux.uplinks import DynamicUplinks
from wanwatch.linux.watch import DriftWatcher
from wanwatch.probe.hub import ProbeHub

log = logging.getLogger("wanwatch")

EVENT_RING = 500  # events kept for `wanwatch status`
STARTUP_VERDICT_WAIT = 4.0  # longest wait for first probe verdicts before steering routes
ADMIN_FILE = "admin.json"  # the operator's disable/enable choices, kept across restarts
# Many readers at once (a dashboard, scrapers, scripts polling `status`) share one
# snapshot this young, so their number does not multiply the loop's work.
STATUS_MAX_AGE = 0.05


class Daemon:
    def __init__(
        self,
        config_path: Path,
        socket_path: Path,
        state_dir: Path,
        clock: Callable[[], float] = time.monotonic,
        *,
        metrics: tuple[str, int] | None = None,
        http: tuple[str, int] | None = None,
    ) -> None:
        self.config_path = config_path
        self.metrics_address = metrics
        self.http_address = http
        self.socket_path = socket_path
        self.state_dir = state_dir
        self.now = clock
        self.events: deque[Event] = deque(maxlen=EVENT_RING)
        self.event_counts: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._commands: asyncio.Queue[str] = asyncio.Queue()
        self._applied: Intent | None = None
        self._started_at = 0.0
        self._config: Config | None = None
        self._engine: Engine | None = None
        self._backend: LinuxBackend | None = None
        self._hub: ProbeHub | None = None
        self._dnsmasq: Dnsmasq | None = None
        self._pair: Pair | None = None  # keepalived + conntrackd of a router pair
        self._hooks: HookRunner | None = None
        self._links: LinkWatcher | None = None
        self._drift: DriftWatcher | None = None
        self._traffic: TrafficWatch | None = None
        self._dynamic: DynamicUplinks | None = None
        self._heal = Healer(clock())
        self._snapshot: tuple[float, st.Status, bytes] | None = None
        self._servers: list[asyncio.Server] = []  # metrics and the status page, if asked for
        self.history = History(clock)
        self._notify = Notifier()  # systemd's NOTIFY_SOCKET, if any
        self._observers: list[Callable[[Event], None]] = [
            self.history.on_event,
            self._notify.on_event,
        ]

    # ------------------------------------------------------------------ events

    def emit(self, ev: Event) -> None:
        self.events.append(ev)
        self.event_counts[ev.name] += 1
        log.info("%s", ev, extra={"event": ev})
        for observe in self._observers:
            observe(ev)
        if self._hooks is not None:
            self._hooks.on_event(ev)

    def _emit_all(self, evs: list[Event]) -> None:
        for ev in evs:
            self.emit(ev)

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the process exit code."""
        cfg = load(self.config_path)  # ConfigError propagates: nothing applied yet
        shared, cfg = cfg, local_view(cfg)  # a pair: own addresses here, shared ones in VRRP
        self._config = cfg
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        loop = asyncio.get_running_loop()
        self._started_at = self.now()
        self._hooks = HookRunner(cfg.hooks, self.emit, self.now)
        self._engine = Engine(cfg, self.now())
        self._restore_admin()
        self._backend = LinuxBackend(cfg, self.state_dir, now=self.now)
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
        server = await serve(self.socket_path, self._answer)
        try:
            self._emit_all(self._backend.start())
            self._links = self._backend.link_watcher()
            self._dynamic = DynamicUplinks(
                cfg, self.state_dir, self.emit, self._on_lease, now=self.now
            )
            for w in cfg.wans:
                self._dynamic.link(w.interface, self._links.present(w.interface))
            self._hub = ProbeHub(self._on_reply)
            self._configure_probes(cfg)
            await self._hub.start()
            loop.add_reader(self._links.fileno(), self._on_link)
            self._drift = self._backend.drift_watcher()
            for fd in self._drift.filenos():
                loop.add_reader(fd, self._on_drift, fd)
            self._heal = Healer(self.now())
            # carrier() is keyed by interface; the engine knows uplinks by name. A cable
            # already out at start is DOWN at once, as a pull later would be.
            by_iface = {w.interface: w.name for w in cfg.wans}
            for ifname, carrier in self._backend.carrier().items():
                wan = by_iface.get(ifname)
                up = wan is not None and self._dynamic.usable_link(wan, carrier)
                if wan is not None and not up:
                    self.emit(event(self.now(), "link.carrier", wan=wan, interface=ifname, up=up))
                    self._emit_all(self._engine.carrier(wan, False, self.now()))
            # The supervisor stays idle (and says why) when there is nothing to serve.
            self._dnsmasq = Dnsmasq(shared, self.state_dir, self.emit, now=self.now)
            try:
                if shared.ha is not None:  # dnsmasq follows the master (Pair.follow)
                    self._pair = Pair(shared, self.state_dir, self.emit, now=self.now)
                    await self._pair.start()
                else:
                    await self._dnsmasq.start()
            except HaError as exc:  # the peer carries the office
                self.emit(event(self.now(), "ha.failed", error=str(exc)))
            except DnsmasqError as exc:  # DHCP/DNS degraded, routing goes on
                self.emit(event(self.now(), "dnsmasq.failed", error=str(exc)))
            await self._serve_extras()
            self.emit(
                event(
                    self.now(),
                    "daemon.started",
                    pid=os.getpid(),
                    config=str(self.config_path),
                    mode=cfg.policy.mode,
                    socket=str(self.socket_path),
                )
            )
            await self._loop()
        finally:
            await self._shutdown(server)
        return 0

    async def _serve_metrics(self) -> asyncio.Server | None:
        """Prometheus endpoint if asked for; a port we cannot bind degrades only metrics."""
        if self.metrics_address is None:
            return None
        from wanwatch.daemon import metrics  # prometheus_client costs ~4 MB RSS: only when asked

        host, port = self.metrics_address
        registry = metrics.registry_for(
            metrics.StatusCollector(lambda: self._status_snapshot()[0], self._counts)
        )
        try:
            return await metrics.serve(host, port, registry)
        except OSError as exc:
            self.emit(
                event(self.now(), "metrics.failed", address=f"{host}:{port}", error=exc.strerror)
            )
            return None

    async def _serve_extras(self) -> None:
        """Metrics and the status page, each only when asked for; closed by _shutdown."""
        found = [await self._serve_metrics(), await self._serve_http()]
        self._servers = [srv for srv in found if srv is not None]

    async def _serve_http(self) -> asyncio.Server | None:
        """The status page if asked for; a port we cannot bind degrades only the page."""
        if self.http_address is None:
            return None
        from wanwatch.daemon.web import app, http

        host, port = self.http_address
        page = app.StatusPage(
            lambda: self._status_snapshot()[0],
            lambda: self.events,
            self.history,
            self._counts,
            self.now,
        )
        try:
            server = await http.serve(host, port, page.handle)
        except OSError as exc:
            address = f"{host}:{port}"
            self.emit(event(self.now(), "http.failed", address=address, error=exc.strerror))
            return None
        self._observers.append(page.on_event)
        return server

    def _counts(self) -> dict[str, int]:
        return dict(self.event_counts)

    async def _shutdown(self, server: asyncio.Server) -> None:
        server.close()
        for extra in self._servers:
            extra.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        loop = asyncio.get_running_loop()
        if self._traffic is not None:
            self._traffic.stop()
        if self._links is not None:
            loop.remove_reader(self._links.fileno())
            self._links.close()
        self._close_drift(loop)
        if self._hub is not None:
            await self._hub.close()
        if self._dynamic is not None:
            await self._dynamic.stop()  # udhcpc releases its leases (-R)
        if self._pair is not None:
            await self._pair.stop()
        if self._dnsmasq is not None:
            await self._dnsmasq.stop()
        if self._backend is not None:
            try:
                self._emit_all(self._backend.stop())
            except (NetlinkError, NftError) as exc:
                self.emit(event(self.now(), "daemon.cleanup_failed", error=str(exc)))
        if self._hooks is not None:
            await self._hooks.drain(timeout=2.0)
        self.emit(event(self.now(), "daemon.stopped"))

    async def _loop(self) -> None:
        assert self._engine is not None and self._hub is not None  # set by run()
        while True:
            while not self._commands.empty():
                cmd = self._commands.get_nowait()
                if cmd == "stop":
                    self.emit(event(self.now(), "daemon.stopping"))
                    return
                if cmd == "reload":
                    await self._reload()
            now = self.now()
            self._emit_all(self._engine.tick(now))  # timeouts first: they shape what is due
            for req in self._engine.due(now):
                self._hub.send(req.wan, req.target, req.seq)
            self._steer()
            self._maybe_repair()
            if self._pair is not None and self._dnsmasq is not None:
                await self._pair.follow(self._engine.status(now), self._dnsmasq)
            if self.history.due(now):
                self.history.sample(now, self._engine.status(now))
            wake = min(self._engine.next_wakeup(), self._heal.wake_at() or math.inf)
            # WATCHDOG=1 from here: a loop that stops turning stops it (sd_watchdog_enabled(3)).
            watchdog = self._notify.pet(self.now())
            delay = max(0.0, min(wake - self.now(), 1.0, watchdog))
            self._wake.clear()
            if self._commands.empty():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    def _signal(self, cmd: str) -> None:
        """Signal handlers only enqueue; the loop acts (no work in a signal handler)."""
        self._commands.put_nowait(cmd)
        self._wake.set()

    def _on_reply(self, wan: str, seq: int, rtt: float, at: float, portal: str | None) -> None:
        if self._engine is None:
            return
        self._emit_all(self._engine.reply(wan, seq, rtt, at, portal))
        self._steer()
        self._wake.set()

    def _on_stall(self, wan: str, at: float) -> None:
        """Traffic left ``wan`` and nothing came back: the engine may probe at once."""
        if self._engine is not None and (evs := self._engine.traffic_stall(wan, at)):
            self._emit_all(evs)
            self._wake.set()

    def _on_link(self) -> None:
        if (
            self._links is None
            or self._engine is None
            or self._config is None
            or self._dynamic is None
            or self._hub is None
        ):
            return
        by_iface = {w.interface: w.name for w in self._config.wans}
        adopted = False
        for ifname, carrier in self._links.read():
            wan = by_iface.get(ifname)
            if wan is None:
                continue
            present = self._links.present(ifname)
            if self._dynamic.link(ifname, present) and present:
                self._hub.reopen(wan)  # a new device: its probes bind to the new ifindex
                adopted = True
            up = self._dynamic.usable_link(wan, carrier)
            self.emit(event(self.now(), "link.carrier", wan=wan, interface=ifname, up=carrier))
            self._emit_all(self._engine.carrier(wan, up, self.now()))
        self._steer(force=adopted)  # a device that appeared gets its routes and rules now
        self._wake.set()

    def _on_lease(self, wan: str, lease: Lease | None, why: str) -> None:
        """A DHCP uplink gained, changed or lost its lease: apply it live."""
        if self._engine is None or self._hub is None or self._dynamic is None:
            return
        if lease is None:
            self._emit_all(self._engine.carrier(wan, False, self.now()))
        else:
            # A new address or gateway is another path: judged afresh (engine.renumbered).
            self._emit_all(self._engine.renumbered(wan, self.now()))
        if self._applied is None and self._backend is not None:
            # Before the first verdicts only the uplink's own address, table and rules
            # are set (prepare): which uplink carries traffic waits, as at any start.
            self._emit_all(self._heal.outcome(self._backend.prepare(self._intent()), self.now()))
        else:
            self._steer(force=True)
        # After the address is on the interface: probes bind to it (re-pinned).
        assert self._config is not None
        w = self._config.wan(wan)
        self._hub.add_uplink(
            wan, w.interface, fwmark(self._config.wans.index(w)), self._dynamic.probe_source(wan)
        )
        self._wake.set()

    # ------------------------------------------------------------------ steering

    def _steer(self, force: bool = False) -> None:
        """Reconcile the kernel to the engine's Intent when it changed (or when forced)."""
        if self._engine is None or self._backend is None:
            return
        intent = self._intent()
        if intent == self._applied and not force:
            return
        if self._applied is None and not self._verdicts_ready(intent):
            return  # first start: do not steer on no evidence (a restart may be adopting)
        started = self.now()
        try:
            evs = self._backend.apply(intent)
        except (NetlinkError, NftError) as exc:
            evs = [event(self.now(), "backend.error", step="apply", error=str(exc))]
        self._emit_all(self._heal.outcome(evs, self.now()))
        if self._applied is None or intent.active != self._applied.active:
            self.emit(
                event(
                    self.now(),
                    "dataplane.applied",
                    active=",".join(intent.active),
                    stale=intent.stale,
                    apply_ms=round((self.now() - started) * 1000, 2),
                )
            )
        self._applied = intent

    def _intent(self) -> Intent:
        """The engine's Intent, DHCP uplinks with the address and gateway of their lease."""
        assert self._engine is not None
        intent = self._engine.intent()
        return self._dynamic.overlay(intent) if self._dynamic is not None else intent

    # ------------------------------------------------------------------ drift

    def _on_drift(self, fd: int) -> None:
        """Something we own may have changed in the kernel: repair it soon (debounced)."""
        if self._drift is None:
            return
        try:
            kinds = self._drift.read(fd)
        except NetlinkError as exc:
            # A broken socket would wake us forever: stop listening; the periodic
            # full pass still repairs, only later.
            self.emit(event(self.now(), "drift.watch_failed", error=str(exc)))
            self._close_drift(asyncio.get_running_loop())
            return
        if kinds:
            self._heal.noticed(self.now())
            self._wake.set()

    def _close_drift(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._drift is not None:
            for fd in self._drift.filenos():
                loop.remove_reader(fd)
            self._drift.close()
            self._drift = None

    def _maybe_repair(self) -> None:
        """Start a reconcile pass off the loop when drift, a retry or the safety net is due."""
        if self._applied is None or self._backend is None:
            return
        since = self._heal.start(self.now())
        if since is False:
            return
        # The worker runs passes in order: a steer submitted after this one lands last.
        job = asyncio.wrap_future(self._backend.apply_soon(self._applied, full=True))
        job.add_done_callback(lambda j: self._repaired(j, since))

    def _repaired(self, job: asyncio.Future[list[Event]], since: float | None) -> None:
        try:
            evs = job.result()
        except (NetlinkError, NftError) as exc:
            evs = [event(self.now(), "backend.error", step="apply", error=str(exc))]
        except asyncio.CancelledError:
            return
        self._emit_all(self._heal.finished(evs, since, self.now()))
        self._wake.set()

    def _verdicts_ready(self, intent: Intent) -> bool:
        """At start the engine's first Intent is a stale guess until probes speak.

        Applying that guess would undo a failover a killed predecessor made (a restart
        must adopt without dropping traffic), so wait for a real verdict, bounded.
        """
        return not intent.stale or self.now() - self._started_at >= STARTUP_VERDICT_WAIT

    def _configure_probes(self, cfg: Config) -> None:
        assert self._hub is not None and self._dynamic is not None
        for i, wan in enumerate(cfg.wans):
            self._hub.add_uplink(
                wan.name, wan.interface, fwmark(i), self._dynamic.probe_source(wan.name)
            )
        # The uplinks' own traffic may start the probes' burst early (linux/traffic.py).
        uplinks = {w.name: w.interface for w in cfg.wans}
        if self._traffic is None:
            assert self._engine is not None
            self._traffic = TrafficWatch(self._on_stall, self._engine.rtt, self.emit, self.now)
            self._traffic.start(uplinks)
        else:
            self._traffic.watch(uplinks)

    # ------------------------------------------------------------------ reload

    async def _reload(self) -> None:
        """SIGHUP: check the whole new config first; apply it only if every part accepts it."""
        assert self._engine is not None and self._backend is not None
        checked = await self._checked_reload()
        if checked is None:
            return
        new_shared, new = checked
        try:
            self._emit_all(self._backend.reload(new))
        except (NetlinkError, NftError) as exc:
            self.emit(event(self.now(), "config.rejected", reason="backend", error=str(exc)))
            return
        old, self._config = self._config, new
        assert old is not None
        self._emit_all(self._engine.reload(new, self.now()))
        await self._reload_uplinks(old, new)
        if self._hooks is not None:
            self._hooks.hooks = new.hooks
        await self._reload_dnsmasq(new_shared)
        if self._pair is not None:
            try:
                await self._pair.reload(new_shared)
            except HaError as exc:  # the peer carries the office
                self.emit(event(self.now(), "ha.failed", error=str(exc)))
        self._steer(force=True)
        self.emit(event(self.now(), "config.reloaded", wans=len(new.wans), lans=len(new.lans)))

    async def _checked_reload(self) -> tuple[Config, Config] | None:
        """The new config (shared, and this router's view), or None after saying why not."""
        try:
            new_shared = load(self.config_path)
        except ConfigError as exc:
            self.emit(
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
        assert self._config is not None
        try:
            if self._dnsmasq is not None:
                await self._dnsmasq.validate(new_shared)
            await validate_reload(self._config, new_shared, self.state_dir)
        except DnsmasqError as exc:
            self.emit(event(self.now(), "config.rejected", reason="dnsmasq", error=str(exc)))
            return None
        except HaError as exc:
            self.emit(event(self.now(), "config.rejected", reason="ha", error=str(exc)))
            return None
        return new_shared, local_view(new_shared)

    async def _reload_uplinks(self, old: Config, new: Config) -> None:
        """Watch, lease and probe the new config's uplinks; forget the removed ones."""
        assert self._hub is not None
        if self._links is not None:
            self._links.watch(w.interface for w in new.wans)
        if self._dynamic is not None:
            await self._dynamic.reload(new)
            if self._links is not None:
                for w in new.wans:
                    self._dynamic.link(w.interface, self._links.present(w.interface))
        for wan in old.wans:
            if wan.name not in {w.name for w in new.wans}:
                self._hub.remove_uplink(wan.name)
        self._configure_probes(new)

    async def _reload_dnsmasq(self, new: Config) -> None:
        if self._dnsmasq is None:
            return
        try:
            await self._dnsmasq.reload(new)
        except DnsmasqError as exc:  # the old dnsmasq keeps serving
            self.emit(event(self.now(), "dnsmasq.reload_rejected", error=str(exc)))

    # ------------------------------------------------------------------ control socket

    def _answer(self, request: dict[str, Any], uid: int | None) -> dict[str, Any] | bytes:
        cmd = request.get("cmd")
        if cmd == "status":
            return self._status_snapshot()[1]
        if cmd == "leases":
            return {"leases": self._leases()}
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
        return {"error": f"unknown command {cmd!r} (status, leases, events, disable, enable)"}

    # ------------------------------------------------------------------ operator controls

    def _set_admin(self, wan: Any, admin: Admin) -> dict[str, Any]:
        assert self._engine is not None
        try:
            evs = self._engine.set_admin(str(wan), admin, self.now())
        except KeyError:
            return {"error": f"no uplink named {wan!r}"}
        self._emit_all(evs)
        saved = self._save_admin()
        self._steer()
        self._wake.set()
        return {"wan": wan, "admin": admin.value, "saved": saved}

    def _save_admin(self) -> bool:
        """Keep the operator's choices in the state directory (atomic rename)."""
        assert self._engine is not None
        path = self.state_dir / ADMIN_FILE
        data = {"version": 1, "uplinks": {n: a.value for n, a in self._engine.admin().items()}}
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            self.emit(event(self.now(), "admin.save_failed", path=str(path), error=exc.strerror))
            return False
        return True

    def _restore_admin(self) -> None:
        """Re-apply the choices of an earlier run; unreadable or unknown ones are reported."""
        assert self._engine is not None
        path = self.state_dir / ADMIN_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            choices = {str(k): Admin(v) for k, v in data["uplinks"].items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.emit(event(self.now(), "admin.unreadable", path=str(path), error=str(exc)))
            return
        for wan, admin in choices.items():
            try:
                self._emit_all(self._engine.set_admin(wan, admin, self.now()))
            except KeyError:
                self.emit(event(self.now(), "admin.unknown_wan", wan=wan, admin=admin.value))

    # ------------------------------------------------------------------ status

    def _wall(self, mono: float) -> str:
        wall = time.time() - (self.now() - mono)
        return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")

    def _status_snapshot(self) -> tuple[st.Status, bytes]:
        """The status and its encoded answer, computed at most once per STATUS_MAX_AGE."""
        now = self.now()
        snap = self._snapshot
        if snap is None or now - snap[0] >= STATUS_MAX_AGE:
            status = self.status()
            snap = self._snapshot = (now, status, encode(st.to_json(status)))
        return snap[1], snap[2]

    def status(self) -> st.Status:
        """Everything ``wanwatch status`` shows; cheap: nothing here waits for the kernel."""
        assert self._engine is not None
        now = self.now()
        intent = self._intent()
        probes = self._hub.stats() if self._hub is not None else {}
        age, counters = self._backend.counters() if self._backend else (None, {})
        extra = self._dynamic_status()
        wans = [
            st.UplinkStatus(
                name=s.name,
                state=s.state.value,
                rtt_ms=None if s.rtt_ms is None else round(s.rtt_ms, 1),
                loss_pct=round(s.loss_pct, 1),
                since=self._wall(s.since),
                for_s=round(now - s.since, 1),
                preferred=s.preferred,
                carrying=s.name in intent.active,
                admin=s.admin.value,
                phase=s.phase,
                progress=s.progress,
                targets=s.targets,
                probes=st.ProbeStats(**probes.get(s.name, {})),
                **extra.get(s.name, {}),
            )
            for s in self._engine.status(now)
        ]
        retry = self._heal.retry
        return st.Status(
            wans=wans,
            active=list(intent.active),
            mode=intent.mode,
            stale=intent.stale,
            applied=self._applied == intent and not retry.failed,
            backend_error=self._heal.error,
            failed_steps=dict(retry.failed),
            retry_in_s=None if retry.due is None else round(max(0.0, retry.due - now), 2),
            contested=self._heal.tug.contested(),
            repairs=self._heal.repairs,
            counters=counters,
            counters_age_s=None if age is None else round(age, 2),
            dnsmasq=self._dnsmasq.status() if self._dnsmasq is not None else None,
            ha=self._pair.status() if self._pair is not None else None,
            leases=self._leases(),
            events=[str(e) for e in list(self.events)[-20:]],
            uptime_s=round(now - self._started_at, 1),
            pid=os.getpid(),
        )

    def _dynamic_status(self) -> dict[str, dict[str, Any]]:
        """Per uplink: kind, link, address and gateway in use, lease (linux/uplinks.py)."""
        if self._dynamic is None or self._backend is None or self._config is None:
            return {}
        resolved = self._backend.resolved()
        carrier = self._links.state() if self._links is not None else {}
        return {
            w.name: self._dynamic.status(
                w.name, carrier.get(w.interface, False), resolved.get(w.name)
            )
            for w in self._config.wans
        }

    def _leases(self) -> list[dict[str, Any]]:
        if self._dnsmasq is None or self._config is None:
            return []
        try:
            leases = read_leases(self._dnsmasq.lease_file, self._config, time.time())
        except (OSError, WanwatchError) as exc:
            log.warning("leases: %s", exc)
            return []
        return [lease.to_json() for lease in leases]
