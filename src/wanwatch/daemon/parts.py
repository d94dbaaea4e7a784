"""What the daemon needs from each part it is built from: small Protocols, no implementation.

The daemon (loop.py) is handed every part that touches the kernel or another
process (assemble.py builds the real ones: LinuxBackend, the netlink watchers,
ProbeHub, TrafficWatch, DynamicUplinks, a LAN role, the hooks, sd_notify), so a
test builds a daemon on fakes and calls it as the loop would. A part that needs
to call the daemon back (a probe reply, a traffic stall, a lease) is handed in
as a function that builds it from that callback; nothing is built with I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from wanwatch.config import Config, Hooks
from wanwatch.config.fields import IpAddress
from wanwatch.config.model import Target
from wanwatch.engine.core import WanStatus
from wanwatch.engine.events import Event
from wanwatch.engine.intent import Intent
from wanwatch.status import FirewallStatus, Usage

if TYPE_CHECKING:
    from wanwatch.daemon.servers import Endpoint
    from wanwatch.linux.dhcp_client import Lease

Resolved = tuple[IPv4Interface | None, IPv4Address | None]  # an uplink's address, next hop
# (wan, seq, rtt seconds, received at, where a captive portal sent an HTTP probe or
# None, the address family it was sent in)
OnReply = Callable[[str, int, float, float, str | None, int], None]
OnStall = Callable[[str, float], None]  # (wan, at)
OnLease = Callable[[str, "Lease | None", str], None]  # (wan, lease or None when lost, why)
RttOf = Callable[[str], float | None]  # an uplink's smoothed RTT (the engine's)


class Backend(Protocol):
    """Reconciles the kernel to the config and to each Intent (linux/apply.py)."""

    def start(self) -> list[Event]: ...
    def apply(self, intent: Intent, *, full: bool = False) -> list[Event]: ...
    def apply_soon(self, intent: Intent, *, full: bool = False) -> Future[list[Event]]: ...
    def prepare(self, intent: Intent) -> list[Event]: ...
    def reload(self, config: Config) -> list[Event]: ...
    def stop(self) -> list[Event]: ...
    def carrier(self) -> dict[str, bool]: ...
    def counters(self) -> tuple[float | None, dict[str, Usage]]: ...
    def firewall(self) -> FirewallStatus: ...
    def resolved(self) -> Mapping[str, Resolved]: ...


class Links(Protocol):
    """Carrier and presence of the uplink interfaces, heard as they change (linux/netlink.py)."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def fileno(self) -> int: ...
    def read(self) -> list[tuple[str, bool]]: ...
    def present(self, name: str) -> bool: ...
    def state(self) -> dict[str, bool]: ...
    def watch(self, interfaces: Iterable[str]) -> None: ...


class Drift(Protocol):
    """Kernel notifications about objects we own (linux/watch.py)."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def filenos(self) -> tuple[int, ...]: ...
    def read(self, fd: int) -> set[str]: ...


class Probes(Protocol):
    """The uplinks' probes of every method (probe/hub.py); replies reach the daemon's OnReply."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def add_uplink(
        self, wan: str, ifname: str, mark: int, source: IpAddress | None, *, family: int = 4
    ) -> None: ...
    def reopen(self, wan: str) -> None: ...
    def remove_uplink(self, wan: str, family: int | None = None) -> None: ...
    def send(self, wan: str, target: Target, seq: int) -> None: ...
    def stats(self, family: int = 4) -> dict[str, dict[str, int]]: ...


class Traffic(Protocol):
    """The uplinks' own traffic, which may start a probe burst early (linux/traffic.py)."""

    def start(self, uplinks: Mapping[str, str]) -> None: ...
    def watch(self, uplinks: Mapping[str, str]) -> None: ...
    def stop(self) -> None: ...


class Uplinks(Protocol):
    """Interface presence and DHCP leases of the uplinks (linux/uplinks.py)."""

    def link(self, ifname: str, present: bool) -> list[str]: ...
    async def reload(self, config: Config) -> None: ...
    async def stop(self) -> None: ...
    def usable_link(self, wan: str, carrier: bool) -> bool: ...
    def probe_source(self, wan: str) -> IPv4Address | None: ...
    def overlay(self, intent: Intent) -> Intent: ...
    def status(self, wan: str, carrier: bool, resolved: Resolved | None) -> dict[str, Any]: ...


class LanServices(Protocol):
    """DHCP and DNS for the LANs: dnsmasq alone, or following a router pair (lan.py).

    Each call reports its own failures as events; only :meth:`check` raises.
    """

    async def start(self) -> None: ...
    async def check(self, old: Config, new: Config) -> None: ...
    async def reload(self, new: Config) -> None: ...
    async def follow(self, uplinks: Callable[[], Iterable[WanStatus]], in_force: bool) -> None:
        """Each turn of the loop; ``uplinks()`` gives the engine's view when one is needed,
        ``in_force``: the kernel holds the dataplane the engine wants now."""

    async def stop(self) -> None: ...
    def dnsmasq_status(self) -> dict[str, Any]: ...
    def ha_status(self) -> dict[str, Any] | None: ...
    def leases(self, config: Config) -> list[dict[str, Any]]: ...


class EventHooks(Protocol):
    """The admin's commands run on events (hooks.py)."""

    hooks: Hooks

    def on_event(self, ev: Event) -> None: ...
    async def drain(self, timeout: float) -> None: ...


class Watchdog(Protocol):
    """The service manager's side: readiness and the watchdog (sdnotify.py)."""

    def on_event(self, ev: Event) -> None: ...
    def pet(self, now: float) -> float: ...


@dataclass(frozen=True, slots=True)
class Paths:
    config: Path
    socket: Path
    state_dir: Path


@dataclass(frozen=True, slots=True)
class Parts:
    """Everything the daemon is built from that reaches outside the process."""

    backend: Backend
    links: Links
    drift: Drift
    lan: LanServices
    hooks: EventHooks
    watchdog: Watchdog
    probes: Callable[[OnReply], Probes]
    traffic: Callable[[OnStall, RttOf], Traffic]
    uplinks: Callable[[OnLease], Uplinks]
    endpoints: Sequence[Endpoint] = ()  # metrics, the status page: only those asked for
