"""Fake parts for unit tests of the daemon (parts.py says what each must do).

Each records the steps the daemon asks of it into a shared ``calls`` list, so a
test can check the order in which the daemon starts, reloads and stops its parts.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from ipaddress import IPv4Address
from typing import Any

from wanwatch.config import Config
from wanwatch.config import Hooks as HookCommands
from wanwatch.config.model import Target
from wanwatch.daemon.parts import Backend as BackendPart
from wanwatch.daemon.parts import Drift, Parts, Resolved
from wanwatch.engine.core import WanStatus
from wanwatch.engine.events import Event
from wanwatch.engine.intent import Intent
from wanwatch.errors import NetlinkError
from wanwatch.status import FirewallStatus, RuleTraffic, Usage


class Part:
    """A fake part; each step the daemon asks of it is appended to ``calls``."""

    def __init__(self, calls: list[str], name: str) -> None:
        self.calls = calls
        self.name = name

    def record(self, step: str) -> None:
        self.calls.append(f"{self.name}.{step}")


class Backend(Part):
    def __init__(self, calls: list[str], fail_start: bool) -> None:
        super().__init__(calls, "backend")
        self.fail_start = fail_start
        self.flush_jobs: list[Future[list[Event]]] = []  # started by the next apply
        self.firewall_status = FirewallStatus(
            enabled=True, dropped={}, guests={}, forwards={}, age_s=None
        )
        self.rule_traffic: tuple[float | None, dict[str, RuleTraffic]] = (None, {})

    def start(self) -> list[Event]:
        self.record("start")
        if self.fail_start:
            raise NetlinkError("RTM_NEWRULE: Operation not permitted")
        return []

    def stop(self) -> list[Event]:
        self.record("stop")
        return []

    def apply(self, intent: Intent, *, full: bool = False) -> list[Event]:
        return []

    def apply_soon(self, intent: Intent, *, full: bool = False) -> Future[list[Event]]:
        f: Future[list[Event]] = Future()
        f.set_result([])
        return f

    def flushes(self) -> list[Future[list[Event]]]:
        jobs, self.flush_jobs = self.flush_jobs, []
        return jobs

    def prepare(self, intent: Intent) -> list[Event]:
        return []

    def reload(self, config: Config) -> list[Event]:
        self.record("reload")
        return []

    def carrier(self) -> dict[str, bool]:
        return {}

    def counters(
        self, max_age: float = 1.0, *, connections: bool = True
    ) -> tuple[float | None, dict[str, Usage]]:
        return None, {}

    def firewall(self) -> FirewallStatus:
        return self.firewall_status

    def rules(self) -> tuple[float | None, dict[str, RuleTraffic]]:
        return self.rule_traffic

    def resolved(self) -> dict[str, Resolved]:
        return {}


class Watcher(Part):
    """Links or drift: a socket pair stands in for the netlink socket the loop reads."""

    def __init__(self, calls: list[str], name: str) -> None:
        super().__init__(calls, name)
        self.sockets: tuple[socket.socket, socket.socket] | None = None

    def open(self) -> None:
        self.record("open")
        self.sockets = socket.socketpair()

    def close(self) -> None:
        self.record("close")
        for s in self.sockets or ():
            s.close()

    def fileno(self) -> int:
        assert self.sockets is not None, "read before open"
        return self.sockets[0].fileno()


class Links(Watcher):
    """Every uplink interface present; no carrier change (nothing writes to the socket)."""

    def read(self) -> list[tuple[str, bool]]:
        return []

    def present(self, name: str) -> bool:
        return True

    def state(self) -> dict[str, bool]:
        return {}

    def watch(self, interfaces: Iterable[str]) -> None:
        self.record(f"watch {','.join(interfaces)}")


class DriftWatch(Watcher):
    """No drift unless a test's subclass says so."""

    def filenos(self) -> tuple[int, ...]:
        return (self.fileno(),)

    def read(self, fd: int) -> set[str]:
        return set()


class Probes(Part):
    async def start(self) -> None:
        self.record("start")

    async def close(self) -> None:
        self.record("close")

    def add_uplink(self, wan: str, *args: Any, family: int = 4) -> None:
        self.record(f"add {wan}" if family == 4 else f"add {wan} IPv{family}")

    def remove_uplink(self, wan: str, family: int | None = None) -> None:
        if family != 6:  # every IPv4-only uplink is told it has no IPv6 probes
            self.record(f"remove {wan}")

    def reopen(self, wan: str) -> None:
        self.record(f"reopen {wan}")

    def send(self, wan: str, target: Target, seq: int) -> None:
        pass

    def stats(self, family: int = 4) -> dict[str, dict[str, int]]:
        return {}


class Traffic(Part):
    def start(self, uplinks: Mapping[str, str]) -> None:
        self.record("start")

    def watch(self, uplinks: Mapping[str, str]) -> None:
        self.record(f"watch {','.join(uplinks)}")

    def stop(self) -> None:
        self.record("stop")


class Uplinks(Part):
    def link(self, ifname: str, present: bool) -> list[str]:
        return []

    def carrier(self, ifname: str, up: bool) -> None:
        self.record(f"carrier {ifname} {'up' if up else 'down'}")

    async def reload(self, config: Config) -> None:
        self.record("reload")

    async def stop(self) -> None:
        self.record("stop")

    def usable_link(self, wan: str, carrier: bool) -> bool:
        return True

    def probe_source(self, wan: str) -> IPv4Address | None:
        return None

    def overlay(self, intent: Intent) -> Intent:
        return intent

    def status(self, wan: str, carrier: bool, resolved: Resolved | None) -> dict[str, Any]:
        return {}


class Lan(Part):
    async def start(self) -> None:
        self.record("start")

    async def check(self, old: Config, new: Config) -> None:
        self.record("check")

    async def reload(self, new: Config) -> None:
        self.record("reload")

    async def follow(self, uplinks: Callable[[], Iterable[WanStatus]], in_force: bool) -> None:
        pass

    async def stop(self) -> None:
        self.record("stop")

    def dnsmasq_status(self) -> dict[str, Any]:
        return {}

    def ha_status(self) -> dict[str, Any] | None:
        return None

    def leases(self, config: Config) -> list[dict[str, Any]]:
        return []


class Hooks(Part):
    """The hooks and the watchdog: the commands the daemon gives them are kept, none run."""

    def __init__(self, calls: list[str], name: str) -> None:
        super().__init__(calls, name)
        self.hooks = HookCommands()

    def on_event(self, ev: Event) -> None:
        pass

    async def drain(self, timeout: float) -> None:
        self.record("drain")

    def pet(self, now: float) -> float:  # as sd_notify outside systemd: no watchdog
        return float("inf")


def fake_parts(calls: list[str], backend: BackendPart, drift: Drift | None = None) -> Parts:
    """Every part a fake recording into ``calls``; ``backend`` (and ``drift``) the test's own."""
    hooks = Hooks(calls, "hooks")
    return Parts(
        backend=backend,
        links=Links(calls, "links"),
        drift=DriftWatch(calls, "drift") if drift is None else drift,
        lan=Lan(calls, "lan"),
        hooks=hooks,
        watchdog=hooks,
        probes=lambda on_reply: Probes(calls, "probes"),
        traffic=lambda on_stall, rtt: Traffic(calls, "traffic"),
        uplinks=lambda on_lease, on_delegation: Uplinks(calls, "uplinks"),
    )
