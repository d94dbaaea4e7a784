"""Build the daemon from the real parts: the one module that knows which they are.

``wanwatch run`` calls :func:`assemble`; tests build a :class:`Daemon` from fakes
instead (parts.py says what each part must do). Everything here only builds:
nothing is opened, started or written until ``Daemon.run()``.
"""

from __future__ import annotations

from pathlib import Path

from wanwatch.config import load
from wanwatch.config.ha import local_view
from wanwatch.daemon.clock import Clock
from wanwatch.daemon.eventlog import EventLog
from wanwatch.daemon.hooks import HookRunner
from wanwatch.daemon.lan import Paired, Standalone
from wanwatch.daemon.loop import Daemon
from wanwatch.daemon.parts import LanServices, Parts, Paths
from wanwatch.daemon.sdnotify import Notifier
from wanwatch.daemon.servers import Endpoint, MetricsEndpoint, PageEndpoint
from wanwatch.engine.core import Engine
from wanwatch.linux.apply import LinkWatcher, LinuxBackend
from wanwatch.linux.dnsmasq import Dnsmasq
from wanwatch.linux.pair import Pair
from wanwatch.linux.traffic import TrafficWatch
from wanwatch.linux.uplinks import DynamicUplinks
from wanwatch.linux.watch import DriftWatcher
from wanwatch.probe.hub import ProbeHub


def assemble(
    config_path: Path,
    socket_path: Path,
    state_dir: Path,
    *,
    metrics: tuple[str, int] | None = None,
    http: tuple[str, int] | None = None,
) -> Daemon:
    """The daemon for the config at ``config_path``; raises ConfigError, building nothing."""
    shared = load(config_path)
    cfg = local_view(shared)  # a pair: own addresses here, shared ones in VRRP
    clock = Clock()
    events = EventLog()
    emit = events.emit
    dnsmasq = Dnsmasq(shared, state_dir, emit, now=clock)
    lan: LanServices = (
        Standalone(dnsmasq, state_dir, emit, clock)
        if shared.ha is None
        else Paired(
            Pair(shared, dnsmasq, state_dir, emit, now=clock), dnsmasq, state_dir, emit, clock
        )
    )
    endpoints: list[Endpoint] = []
    if metrics is not None:
        endpoints.append(MetricsEndpoint(*metrics))
    if http is not None:
        endpoints.append(PageEndpoint(*http))
    parts = Parts(
        backend=LinuxBackend(cfg, state_dir, now=clock),
        links=LinkWatcher(w.interface for w in cfg.wans),
        drift=DriftWatcher(),
        lan=lan,
        hooks=HookRunner(cfg.hooks, emit, clock),
        watchdog=Notifier(),  # systemd's NOTIFY_SOCKET, if any
        probes=ProbeHub,
        traffic=lambda on_stall, rtt: TrafficWatch(on_stall, rtt, emit, clock),
        uplinks=lambda on_lease, on_delegation: DynamicUplinks(
            cfg, state_dir, emit, on_lease, on_delegation, now=clock
        ),
        endpoints=endpoints,
    )
    paths = Paths(config=config_path, socket=socket_path, state_dir=state_dir)
    return Daemon(cfg, paths, Engine(cfg, clock()), parts, clock=clock, events=events)
