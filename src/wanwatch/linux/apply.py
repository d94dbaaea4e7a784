"""LinuxBackend: reconcile the kernel of the namespace we run in to the config and the Intent.

Every step reads the kernel, diffs it against what is wanted and changes only
the difference, so applying twice is a no-op and a restart adopts what a killed
run left (nothing is torn down first: traffic keeps flowing). Only objects that
carry our footprint are ever changed or removed: routes with our protocol
number, rules with our FRA_PROTOCOL, ``table inet wanwatch``, and addresses we
recorded in the state directory when we added them (they also carry our
IFA_PROTO). A foreign object in a slot we want is reported, never overwritten.

What the kernel holds while we run (``F`` = footprint.py):

* per uplink ``i``, table ``F.table_id(i)``: ``default via <gateway> dev <if>``,
  the uplink's subnet (``dev <if> scope link src <address>``, so the table
  resolves its gateway by itself) and, last, ``unreachable default`` at
  ``F.UNREACHABLE_METRIC``: a packet meant for a dead uplink fails instead of
  falling through to the main table and leaving, NATed, by another uplink
  (LAB-NOTES: that is how a probe reports the wrong uplink healthy);
* rules: ``lookup main suppress_prefixlength 0`` (LAN, connected and admin
  routes win), ``fwmark <mark>/<F.FWMARK_MASK> lookup <table>`` and
  ``from <uplink address> lookup <table>`` (the router's own packets leave by
  the uplink owning their source);
* main table: one default at ``F.DEFAULT_METRIC`` via the first active uplink,
  switched by ``route replace`` (one netlink message: never a moment without a
  default; about 0.3 ms), plus a fallback default per other usable uplink at
  ``F.FALLBACK_METRIC_BASE + rank``. With ignore_routes_with_linkdown the kernel
  skips a route whose carrier is gone, so a cable pull moves new connections at
  once; a silent blackhole (carrier up) keeps the dead route preferred until the
  engine says otherwise, which is what the probes are for;
* nft: see nft.py. Conntrack: a failed uplink's flows only (conntrack.py).

All kernel work runs on one private worker thread. pyroute2's synchronous API
cannot run inside a thread whose asyncio loop is running, so the daemon may call
these methods straight from a coroutine (they block for milliseconds) or via
``asyncio.to_thread``. The worker is created by the first call (normally
``start()``) and lives in the network namespace that the calling thread was in
at that moment; ``stop()`` and ``close()`` end it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, TypeVar

from wanwatch.config import Config
from wanwatch.dynamic import DHCP, Kind, static_address
from wanwatch.engine.events import Event, FieldValue, event
from wanwatch.engine.intent import Admin, Health, Intent, UplinkPlan, intent_from_config
from wanwatch.errors import WanwatchError
from wanwatch.footprint import (
    DEFAULT_METRIC,
    FALLBACK_METRIC_BASE,
    FWMARK_MASK,
    MAX_UPLINKS,
    RT_PROTO,
    RULE_PRIO_FWMARK,
    RULE_PRIO_SOURCE,
    RULE_PRIO_SUPPRESS,
    TABLE_BASE,
    UNREACHABLE_METRIC,
)
from wanwatch.linux import conntrack, nft, sysctl
from wanwatch.linux.netlink import (
    DEFAULT_DST,
    RT_SCOPE_LINK,
    RT_TABLE_MAIN,
    RTN_UNREACHABLE,
    Address,
    Link,
    LinkWatcher,
    Netlink,
    Route,
    Rule,
)
from wanwatch.linux.watch import DriftWatcher
from wanwatch.status import Usage

__all__ = ["LinkWatcher", "LinuxBackend", "Uplink", "intent_from_config"]

log = logging.getLogger("wanwatch")

STATE_FILE = "linux-backend.json"
COUNTERS_MAX_AGE = 1.0  # seconds before counters() takes a fresh reading in the background
OUR_TABLES = frozenset(range(TABLE_BASE + 1, TABLE_BASE + MAX_UPLINKS + 1))

_T = TypeVar("_T")
AddrKey = tuple[str, IPv4Interface]  # (interface name, address)


# --------------------------------------------------------------------------- desired state


@dataclass(frozen=True)
class Uplink:
    """An uplink as the kernel sees it now: its plan plus what was resolved from the kernel."""

    name: str
    interface: str
    gateway: IPv4Address | None  # None: point-to-point without a peer address (via the device)
    table: int
    mark: int
    rank: int  # 0 = best (priority, then config order)
    health: Health
    admin: Admin
    address: IPv4Interface | None  # the configured one once present, else the interface's own
    index: int | None  # ifindex; None while the interface does not exist
    kind: Kind = "static"
    peer: IPv4Address | None = None  # point-to-point: the kernel's peer address, the gateway

    @property
    def usable(self) -> bool:
        """Can carry a route: the interface exists and has an address (the gateway resolves);
        a DHCP uplink also needs the router of its lease."""
        return (
            self.index is not None
            and self.address is not None
            and (self.gateway is not None or self.kind != "dhcp")
        )

    def default(self, table: int, metric: int = 0) -> Route:
        """Its default route: via the gateway (or peer), else via the device itself."""
        if self.gateway is None:
            return Route(table, DEFAULT_DST, metric=metric, oif=self.index, scope=RT_SCOPE_LINK)
        return Route(table, DEFAULT_DST, metric=metric, gateway=self.gateway, oif=self.index)


def interface_address(
    index: int, gateway: IPv4Address | None, addresses: Iterable[Address]
) -> IPv4Interface | None:
    """The address an uplink without a configured one uses: the interface's own.

    Prefer a primary address on the gateway's subnet, then any primary one.
    """
    mine = [a for a in addresses if a.index == index]
    picks: tuple[Callable[[Address], bool], ...] = (
        lambda a: not a.secondary and gateway is not None and gateway in a.interface.network,
        lambda a: gateway is not None and gateway in a.interface.network,
        lambda a: not a.secondary,
    )
    for pick in picks:
        for a in mine:
            if pick(a):
                return a.interface
    return None


def resolve(
    plans: Sequence[UplinkPlan], links: dict[str, Link], addresses: Sequence[Address]
) -> list[Uplink]:
    order = sorted(range(len(plans)), key=lambda i: (plans[i].priority, i))
    rank = {plans[i].name: r for r, i in enumerate(order)}
    out: list[Uplink] = []
    for p in plans:
        link = links.get(p.interface)
        address: IPv4Interface | None = None
        if link is not None and p.address is not None:
            # The configured address counts once it is really there (we may have
            # failed to add it); until then nothing may route through it.
            there = any(a.index == link.index and a.interface == p.address for a in addresses)
            address = p.address if there else None
        elif link is not None and p.kind != "dhcp":  # a DHCP uplink uses its lease only
            address = interface_address(link.index, p.gateway, addresses)
        peer = None
        if p.kind == "point-to-point" and link is not None and address is not None:
            peer = next(
                (a.peer for a in addresses if a.index == link.index and a.interface == address),
                None,
            )
        out.append(
            Uplink(
                name=p.name,
                interface=p.interface,
                gateway=p.gateway if p.gateway is not None else peer,
                table=p.table,
                mark=p.mark,
                rank=rank[p.name],
                health=p.health,
                admin=p.admin,
                address=address,
                index=link.index if link is not None else None,
                kind=p.kind,
                peer=peer,
            )
        )
    return out


def table_routes(u: Uplink) -> list[Route]:
    """The routes of one uplink's table."""
    routes = [Route(u.table, DEFAULT_DST, metric=UNREACHABLE_METRIC, kind=RTN_UNREACHABLE)]
    if u.usable and u.address is not None and u.index is not None:
        if u.address.network.prefixlen < 32:
            routes.append(
                Route(
                    u.table,
                    u.address.network,
                    oif=u.index,
                    scope=RT_SCOPE_LINK,
                    prefsrc=u.address.ip,
                )
            )
        if u.peer is not None:  # the table resolves the peer by itself, as the subnet above
            routes.append(
                Route(
                    u.table,
                    IPv4Network(f"{u.peer}/32"),
                    oif=u.index,
                    scope=RT_SCOPE_LINK,
                    prefsrc=u.address.ip,
                )
            )
        routes.append(u.default(u.table))
    return routes


def rules(uplinks: Sequence[Uplink]) -> list[Rule]:
    out = [Rule(RULE_PRIO_SUPPRESS, RT_TABLE_MAIN, suppress_prefixlen=0)]
    for u in uplinks:
        n = u.table - TABLE_BASE
        out.append(Rule(RULE_PRIO_FWMARK + n, u.table, fwmark=u.mark, fwmask=FWMARK_MASK))
        if u.address is not None:
            out.append(Rule(RULE_PRIO_SOURCE + n, u.table, src=IPv4Network(f"{u.address.ip}/32")))
    return out


def main_defaults(intent: Intent, uplinks: Sequence[Uplink]) -> tuple[list[Route], bool]:
    """Our main-table defaults for ``intent``, primary first.

    The second value is True when the primary is known but cannot be routed now
    (no interface or no address): the current primary route is then kept.
    """
    by_name = {u.name: u for u in uplinks}
    primary = by_name.get(intent.primary) if intent.primary else None
    out: list[Route] = []
    keep = False
    if primary is not None:
        if primary.usable:
            out.append(primary.default(RT_TABLE_MAIN, DEFAULT_METRIC))
        else:
            keep = True
    for u in uplinks:
        if u is primary or u.health == Health.DOWN or u.admin is not Admin.ENABLED:
            continue  # a fallback default takes new connections: not for these
        if not u.usable:
            continue
        out.append(u.default(RT_TABLE_MAIN, FALLBACK_METRIC_BASE + u.rank))
    return out, keep


# --------------------------------------------------------------------------- state file


@dataclass
class _State:
    """What we added that the kernel cannot mark for us: addresses (IFA_PROTO is a hint only)."""

    path: Path
    addresses: set[AddrKey] = field(default_factory=set)
    problem: str | None = None

    @classmethod
    def load(cls, path: Path) -> _State:
        state = cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            state.addresses = {(str(i), IPv4Interface(a)) for i, a in data.get("addresses", [])}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            # Unreadable: fall back to the kernel's marks (IFA_PROTO) and say so.
            state.problem = f"{path}: {exc}"
        return state

    def save(self) -> None:
        """Write atomically (rename), so a kill mid-write leaves the old or the new file."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = {"version": 1, "addresses": sorted([i, str(a)] for i, a in self.addresses)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            # Callers save before they add: what we cannot record, we do not add.
            raise WanwatchError(f"cannot record our addresses in {self.path}: {exc}") from None

    def remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise WanwatchError(f"cannot remove {self.path}: {exc}") from None


# --------------------------------------------------------------------------- the backend


class LinuxBackend:
    """Reconciles the kernel to the config (start, reload) and to each Intent (apply)."""

    def __init__(
        self,
        config: Config,
        state_dir: Path,
        now: Callable[[], float] = time.monotonic,
        *,
        nft_binary: str = "nft",
        proc_sys: Path = sysctl.PROC_SYS,
    ) -> None:
        self._config = config
        self._state_dir = Path(state_dir)
        self._now = now
        self._nft = nft_binary
        self._proc_sys = proc_sys
        self._worker: ThreadPoolExecutor | None = None
        self._worker_lock = threading.Lock()
        self._nl: Netlink | None = None
        self._state: _State | None = None
        self._last_intent: Intent | None = None
        self._flushed: set[str] = set()
        self._sysctl_done: set[str] = set()
        self._warned: dict[str, set[str]] = {}
        self._strict = False
        # counters(): the last reading (when, counters), the one being taken, its thread,
        # and each uplink's (mark, address) as the worker last resolved them.
        self._usage: tuple[float, dict[str, Usage]] | None = None
        self._usage_job: Future[tuple[float, dict[str, Usage]]] | None = None
        self._usage_pool: ThreadPoolExecutor | None = None
        self._own: dict[str, tuple[int, IPv4Address | None]] = {}
        # DHCP uplink name -> the address of its lease, as the last Intent gave it.
        self._leased: dict[str, IPv4Interface] = {}
        self._resolved: dict[str, tuple[IPv4Interface | None, IPv4Address | None]] = {}

    # ----------------------------------------------------------------- public API

    def start(self) -> list[Event]:
        """Sysctls, addresses, per-uplink tables and rules, our nft table; adopt what exists.

        The main-table defaults and an existing table inet wanwatch are left as
        they are (a killed run's state keeps traffic flowing) until the first
        ``apply()``. Raises a WanwatchError if the kernel refuses a step.
        """
        return self._call(self._start)

    def apply(self, intent: Intent, *, full: bool = False) -> list[Event]:
        """Reconcile to ``intent``. Failures become ``backend.error`` events; never raises.

        ``full`` also checks every sysctl we set (a repair pass: someone may have
        turned forwarding off); otherwise only those of uplinks that appeared.
        """
        return self._call(self._apply, intent, full)

    def prepare(self, intent: Intent) -> list[Event]:
        """Addresses, per-uplink tables and rules for ``intent``, not which uplink carries
        traffic (main-table defaults, nft): safe before the engine's first verdict."""
        return self._call(self._prepare, intent)

    def apply_soon(self, intent: Intent, *, full: bool = False) -> Future[list[Event]]:
        """:meth:`apply` without waiting: its Future (for ``asyncio.wrap_future``)."""
        return self._submit(self._apply, intent, full)

    def reload(self, config: Config, intent: Intent | None = None) -> list[Event]:
        """Switch to a new config: add what it has, remove what only the old one had.

        Pass the engine's Intent for the new config when there is one; without it
        the last Intent is kept if the uplinks did not change, else the nft table
        falls back to the baseline (no load balancing) until the next ``apply()``.
        """
        return self._call(self._reload, config, intent)

    def stop(self) -> list[Event]:
        """Remove exactly what we added (sysctls stay), then end the worker."""
        try:
            return self._call(self._stop)
        finally:
            self._end_worker()

    def close(self) -> None:
        """Let go of sockets and the worker, leaving the kernel as it is (like a kill)."""
        if self._worker is not None:
            self._call(self._close_sockets)
        self._end_worker()

    def carrier(self) -> dict[str, bool]:
        """Carrier of each uplink interface now (a missing interface reads False)."""
        return self._call(self._carrier)

    def link_watcher(self) -> LinkWatcher:
        """An open LinkWatcher on the uplink interfaces, in the backend's namespace."""
        return self._call(self._open_watcher)

    def drift_watcher(self) -> DriftWatcher:
        """An open DriftWatcher, in the backend's namespace."""
        return self._call(self._open_drift_watcher)

    def counters(self, max_age: float = COUNTERS_MAX_AGE) -> tuple[float | None, dict[str, Usage]]:
        """The last conntrack reading per uplink and its age in seconds; never waits.

        Per uplink: open office connections and the bytes they moved (conntrack.usage:
        entries by our ct mark, bytes from conntrack accounting). The dump takes about
        0.1 ms per entry, so it runs on a thread of its own: a reading older than
        ``max_age`` starts a fresh one in the background and is returned as it is
        meanwhile (age None and {} before the first). Errors are logged; the last
        reading stays. Call it from one thread at a time (the daemon's loop).
        """
        now = self._now()
        job = self._usage_job
        if job is not None and job.done():
            self._usage_job = None
            self._collect_usage(job)
        stale = self._usage is None or now - self._usage[0] >= max_age
        if stale and self._usage_job is None:
            self._usage_job = self._submit_usage(now)
        if self._usage is None:
            return None, {}
        return now - self._usage[0], self._usage[1]

    def resolved(self) -> dict[str, tuple[IPv4Interface | None, IPv4Address | None]]:
        """Each uplink's address and next hop as the last pass found them (None: not there,
        or via the device); never waits (the worker's view, shared by assignment)."""
        return self._resolved

    @property
    def config(self) -> Config:
        return self._config

    # ----------------------------------------------------------------- worker

    def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        return self._submit(fn, *args).result()

    def _submit(self, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        with self._worker_lock:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wanwatch-nl")
            worker = self._worker
        return worker.submit(fn, *args)

    def _end_worker(self) -> None:
        with self._worker_lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(wait=True)
        pool, self._usage_pool = self._usage_pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._usage = self._usage_job = None

    def _close_sockets(self) -> None:
        if self._nl is not None:
            self._nl.close()
            self._nl = None

    @property
    def _netlink(self) -> Netlink:
        if self._nl is None:
            self._nl = Netlink()
            self._nl.open()
        return self._nl

    def _state_file(self) -> _State:
        if self._state is None:
            self._state = _State.load(self._state_dir / STATE_FILE)
        return self._state

    # ----------------------------------------------------------------- events

    def _ev(self, name: str, **fields: FieldValue) -> Event:
        return event(self._now(), name, **fields)

    def _step(self, out: list[Event], step: str, fn: Callable[..., None], *args: Any) -> None:
        """Run one reconcile step; in apply() a failure is an event and the next step runs."""
        try:
            fn(out, *args)
        except WanwatchError as exc:
            if self._strict:
                raise
            out.append(self._ev("backend.error", step=step, error=str(exc)))

    def _warn(self, out: list[Event], kind: str, now: dict[str, Event]) -> None:
        """Report the warnings of ``kind`` that are new since the last pass (not every apply)."""
        before = self._warned.get(kind, set())
        out.extend(e for k, e in now.items() if k not in before)
        self._warned[kind] = set(now)

    # ----------------------------------------------------------------- steps

    def _sysctls(self, out: list[Event], forwarding: bool) -> None:
        changes: list[sysctl.SysctlChange] = []
        if forwarding:
            changes += sysctl.ensure_forwarding(self._proc_sys)
            # counters() reads bytes from conntrack accounting, which is off by default.
            changes += conntrack.ensure_accounting(self._proc_sys)
        wanted = [w.interface for w in self._config.wans]
        if not forwarding and set(wanted) <= self._sysctl_done:
            return
        present = sysctl.uplink_interfaces_present(wanted, self._proc_sys)
        for ifname in present:
            if forwarding or ifname not in self._sysctl_done:
                changes += sysctl.ensure_uplink(ifname, self._proc_sys)
        self._sysctl_done = set(present)
        out.extend(self._ev("sysctl.set", key=c.key, old=c.old, new=c.new) for c in changes)

    def _sync_addresses(
        self, out: list[Event], links: dict[str, Link], addrs: list[Address]
    ) -> None:
        nl = self._netlink
        state = self._state_file()
        if state.problem is not None:
            out.append(self._ev("state.unreadable", error=state.problem))
            state.problem = None
        desired: list[AddrKey] = [
            (w.interface, a) for w in self._config.wans if (a := static_address(w)) is not None
        ]
        desired += [(w.interface, a) for w in self._config.wans if (a := self._leased.get(w.name))]
        desired += [(n.interface, n.address) for n in self._config.lans if n.address is not None]
        present = {(a.ifname, a.interface) for a in addrs}
        owned = set(state.addresses) | {
            (a.ifname, a.interface) for a in addrs if a.proto == RT_PROTO
        }
        dhcp_ifaces = {w.interface for w in self._config.wans if w.address == DHCP}
        missing: dict[str, Event] = {}
        for key in desired:
            ifname, iface = key
            if key in present:
                continue
            link = links.get(ifname)
            if link is None:
                missing[ifname] = self._ev("link.missing", interface=ifname, address=str(iface))
                continue
            state.addresses.add(key)  # recorded before it exists: a kill in between is harmless
            state.save()
            nl.add_address(link.index, iface)
            out.append(self._ev("address.add", interface=ifname, address=str(iface)))
        self._warn(out, "link.missing", missing)
        for key in sorted(owned - set(desired), key=str):
            ifname, iface = key
            link = links.get(ifname)
            if link is not None and key in present:
                nl.del_address(link.index, iface)
                out.append(self._ev("address.remove", interface=ifname, address=str(iface)))
            if ifname in dhcp_ifaces:
                # A lease renumbered or lost: the flows NATed to the old address are dead
                # (replies go nowhere); delete them so clients retry at once (conntrack.py).
                n = conntrack.flush_uplink(iface.ip, None)
                out.append(
                    self._ev("conntrack.flush", interface=ifname, address=str(iface.ip), deleted=n)
                )
            if key in state.addresses:
                state.addresses.discard(key)
                state.save()

    def _reconcile_routes(
        self,
        out: list[Event],
        *,
        kind: str,
        desired: Sequence[Route],
        current: Sequence[Route],
        managed: Callable[[Route], bool],
        names: dict[int | None, str],
        keep: frozenset[tuple[int, IPv4Network, int]] = frozenset(),
    ) -> None:
        """Make our routes in the managed slots equal ``desired``: replace first, delete after.

        A slot (table, dst, metric) held by a foreign route is reported and left
        alone: ``replace`` would swap whatever route sits there, ours or not.
        """
        nl = self._netlink
        foreign = {r.key: r for r in current if r.proto != RT_PROTO and managed(r)}
        ours = [r for r in current if r.proto == RT_PROTO and managed(r)]
        placed: set[tuple[int, IPv4Network, int]] = set()
        conflicts: dict[str, Event] = {}
        for d in desired:
            f = foreign.get(d.key)
            if f is not None:
                conflicts[f"{d.key}"] = self._ev(
                    "route.conflict",
                    table=d.table,
                    dst=str(d.dst),
                    metric=d.metric,
                    proto=f.proto,
                    via=str(f.gateway) if f.gateway else None,
                    wan=names.get(d.oif),
                )
                continue
            placed.add(d.key)
            if d in ours:
                continue
            before = next((r for r in ours if r.key == d.key), None)
            t0 = time.perf_counter()
            nl.replace_route(d)
            ms = round((time.perf_counter() - t0) * 1000, 3)
            if d.table == RT_TABLE_MAIN and d.metric == DEFAULT_METRIC:
                was = None
                if before is not None:
                    was = names.get(before.oif, str(before.gateway))
                fields: dict[str, FieldValue] = {"from": was}
                out.append(
                    self._ev(
                        "route.switch",
                        **fields,
                        to=names.get(d.oif),
                        via=str(d.gateway) if d.gateway else None,
                        switch_ms=ms,
                    )
                )
            else:
                out.append(
                    self._ev(
                        "route.set",
                        table=d.table,
                        dst=str(d.dst),
                        metric=d.metric,
                        via=str(d.gateway) if d.gateway else None,
                        wan=names.get(d.oif),
                        kind="unreachable" if d.kind == RTN_UNREACHABLE else None,
                    )
                )
        self._warn(out, f"{kind}.conflict", conflicts)
        for r in ours:
            if r.key in placed or r.key in keep:
                continue  # kept as it is, or already swapped by the replace above
            nl.del_route(r)
            primary = r.table == RT_TABLE_MAIN and r.metric == DEFAULT_METRIC
            out.append(
                self._ev(
                    "route.withdraw" if primary else "route.remove",
                    table=r.table,
                    dst=str(r.dst),
                    metric=r.metric,
                    via=str(r.gateway) if r.gateway else None,
                    wan=names.get(r.oif),
                )
            )

    def _sync_main(
        self, out: list[Event], intent: Intent, ups: list[Uplink], routes: list[Route]
    ) -> None:
        desired, keep_primary = main_defaults(intent, ups)
        main = [r for r in routes if r.table == RT_TABLE_MAIN and r.dst == DEFAULT_DST]
        # A foreign default with a lower metric carries the LAN's traffic instead of
        # ours; we may not touch it, so we say so.
        shadow = {
            f"{r.gateway}/{r.metric}": self._ev(
                "route.shadowed",
                via=str(r.gateway) if r.gateway else None,
                metric=r.metric,
                proto=r.proto,
            )
            for r in main
            if r.proto != RT_PROTO and r.metric < DEFAULT_METRIC
        }
        self._warn(out, "route.shadowed", shadow)
        keep = (
            frozenset({(RT_TABLE_MAIN, DEFAULT_DST, DEFAULT_METRIC)})
            if keep_primary
            else frozenset()
        )
        self._reconcile_routes(
            out,
            kind="main",
            desired=desired,
            current=main,
            managed=lambda r: r.dst == DEFAULT_DST,
            names=_names(ups),
            keep=keep,
        )

    def _prune_main(self, out: list[Event], ups: list[Uplink], routes: list[Route]) -> None:
        """Without an Intent: drop our main defaults through uplinks the config no longer has."""
        known = {(u.gateway, u.index) for u in ups if u.usable}
        for r in routes:
            if r.table == RT_TABLE_MAIN and r.proto == RT_PROTO and (r.gateway, r.oif) not in known:
                self._netlink.del_route(r)
                out.append(
                    self._ev(
                        "route.withdraw" if r.metric == DEFAULT_METRIC else "route.remove",
                        table=r.table,
                        dst=str(r.dst),
                        metric=r.metric,
                        via=str(r.gateway) if r.gateway else None,
                    )
                )

    def _sync_tables(self, out: list[Event], ups: list[Uplink], routes: list[Route]) -> None:
        desired = [r for u in ups for r in table_routes(u)]
        current = [r for r in routes if r.table in OUR_TABLES]
        self._reconcile_routes(
            out,
            kind="table",
            desired=desired,
            current=current,
            managed=lambda r: r.table in OUR_TABLES,
            names=_names(ups),
        )

    def _sync_rules(self, out: list[Event], ups: list[Uplink]) -> None:
        nl = self._netlink
        ours = [r for r in nl.rules() if r.proto == RT_PROTO]
        want = rules(ups)
        exists: dict[str, Event] = {}
        for r in want:
            if r in ours:
                continue
            if nl.add_rule(r):
                out.append(self._ev("rule.add", rule=str(r)))
            else:  # EEXIST: an identical foreign rule already does the job
                exists[str(r)] = self._ev("rule.foreign", rule=str(r))
        self._warn(out, "rule.foreign", exists)
        for r in ours:
            if r not in want and nl.del_rule(r):
                out.append(self._ev("rule.remove", rule=str(r)))

    def _sync_nft(self, out: list[Event], intent: Intent) -> None:
        definition = nft.render(intent, self._config)
        want = nft.rendered_fingerprint(definition)
        if nft.running_fingerprint(self._nft) == want:
            return
        ms = nft.apply_ruleset(definition, self._nft)
        out.append(
            self._ev(
                "nft.apply",
                mode=intent.mode,
                buckets=",".join(intent.buckets) or None,
                classifier=intent.classifier if intent.buckets else None,
                masquerade=",".join(intent.masquerade) or None,
                fingerprint=want,
                apply_ms=round(ms, 1),
            )
        )

    def _flush(self, out: list[Event], intent: Intent, ups: list[Uplink]) -> None:
        """Delete the flows of each uplink that newly entered ``intent.flush``."""
        by_name = {u.name: u for u in ups}
        self._flushed &= set(intent.flush)
        for name in intent.flush:
            u = by_name.get(name)
            if name in self._flushed or u is None:
                continue
            t0 = time.perf_counter()
            n = conntrack.flush_uplink(u.address.ip if u.address else None, u.mark)
            self._flushed.add(name)
            out.append(
                self._ev(
                    "conntrack.flush",
                    wan=name,
                    deleted=n,
                    address=str(u.address.ip) if u.address else None,
                    flush_ms=round((time.perf_counter() - t0) * 1000, 1),
                )
            )

    def _unresolved(self, out: list[Event], ups: list[Uplink]) -> None:
        now: dict[str, Event] = {}
        for u in ups:
            reason = (
                "no_interface" if u.index is None else "no_address" if u.address is None else ""
            )
            if reason:
                now[f"{u.name}/{reason}"] = self._ev(
                    "wan.unresolved", wan=u.name, interface=u.interface, reason=reason
                )
        self._warn(out, "wan.unresolved", now)

    # ----------------------------------------------------------------- entry points (worker)

    def _read(self) -> tuple[dict[str, Link], list[Address]]:
        nl = self._netlink
        links = nl.links()
        return links, nl.addresses(links)

    def _config_pass(self, out: list[Event]) -> tuple[dict[str, Link], list[Address]]:
        """Addresses of the config, then a fresh read of links and addresses."""
        links, addrs = self._read()
        mark = len(out)
        self._step(out, "address", self._sync_addresses, links, addrs)
        if any(e.name.startswith("address.") for e in out[mark:]):
            addrs = self._netlink.addresses(links)
        return links, addrs

    def _start(self) -> list[Event]:
        self._strict = True
        try:
            out: list[Event] = []
            self._sysctls(out, True)
            links, addrs = self._config_pass(out)
            base = intent_from_config(self._config)
            ups = resolve(base.uplinks, links, addrs)
            self._remember(ups)
            self._unresolved(out, ups)
            routes = self._netlink.routes()
            self._sync_tables(out, ups, routes)
            self._sync_rules(out, ups)
            running = nft.running_fingerprint(self._nft)
            if not running:  # none, or a table of our name without our fingerprint
                self._sync_nft(out, base)
            adopted = [r for r in routes if r.table == RT_TABLE_MAIN and r.proto == RT_PROTO]
            out.append(
                self._ev(
                    "backend.start",
                    adopted_defaults=len(adopted),
                    nft="adopted" if running else "installed",
                    state_dir=str(self._state_dir),
                )
            )
            return out
        finally:
            self._strict = False

    def _resolve(self, out: list[Event], intent: Intent) -> tuple[list[Uplink], list[Route]] | None:
        """Leased addresses of ``intent``, the config pass, then each uplink as it is now."""
        self._leased = {
            u.name: u.address for u in intent.uplinks if u.kind == "dhcp" and u.address is not None
        }
        try:
            links, addrs = self._config_pass(out)
            if self._sysctl_done - set(links):  # an uplink's interface went: set it up anew
                self._sysctl_done &= set(links)  # when it comes back (a new device, defaults)
            ups = resolve(intent.uplinks, links, addrs)
            routes = self._netlink.routes()
        except WanwatchError as exc:
            out.append(self._ev("backend.error", step="read", error=str(exc)))
            return None
        self._remember(ups)
        self._unresolved(out, ups)
        return ups, routes

    def _prepare(self, intent: Intent) -> list[Event]:
        out: list[Event] = []
        found = self._resolve(out, intent)
        if found is not None:
            ups, routes = found
            self._step(out, "table", self._sync_tables, ups, routes)
            self._step(out, "rule", self._sync_rules, ups)
        return out

    def _apply(self, intent: Intent, full: bool = False) -> list[Event]:
        out: list[Event] = []
        self._step(out, "sysctl", self._sysctls, full)
        found = self._resolve(out, intent)
        if found is None:
            return out
        ups, routes = found
        # Order matters for speed and safety: new connections move first (route,
        # then nft buckets), then the dead uplink's flows go, then the rest.
        self._step(out, "route", self._sync_main, intent, ups, routes)
        self._step(out, "nft", self._sync_nft, intent)
        self._step(out, "conntrack", self._flush, intent, ups)
        self._step(out, "table", self._sync_tables, ups, routes)
        self._step(out, "rule", self._sync_rules, ups)
        self._last_intent = intent
        return out

    def _reload(self, config: Config, intent: Intent | None) -> list[Event]:
        self._config = config
        self._sysctl_done = set()
        out: list[Event] = []
        self._step(out, "sysctl", self._sysctls, False)
        try:
            links, addrs = self._config_pass(out)
            target = intent if intent is not None else self._compatible_last_intent(config)
            base = target if target is not None else intent_from_config(config)
            ups = resolve(base.uplinks, links, addrs)
            routes = self._netlink.routes()
        except WanwatchError as exc:
            out.append(self._ev("backend.error", step="read", error=str(exc)))
            return out
        self._remember(ups)
        self._unresolved(out, ups)
        if target is not None:
            self._step(out, "route", self._sync_main, target, ups, routes)
        else:
            self._step(out, "route", self._prune_main, ups, routes)
        self._step(out, "nft", self._sync_nft, base)
        if target is not None:
            self._step(out, "conntrack", self._flush, target, ups)
        self._step(out, "table", self._sync_tables, ups, routes)
        self._step(out, "rule", self._sync_rules, ups)
        self._last_intent = target
        out.append(self._ev("backend.reload", wans=len(config.wans), intent=target is not None))
        return out

    def _compatible_last_intent(self, config: Config) -> Intent | None:
        """The last Intent, if the new config left its uplinks and policy exactly as they were."""
        last = self._last_intent
        if last is None:
            return None
        base = intent_from_config(config)

        def sig(i: Intent) -> tuple[Any, ...]:
            ups = [(u.name, u.interface, u.address, u.gateway, u.table, u.mark) for u in i.uplinks]
            return (ups, i.mode, i.classifier, i.masquerade)

        return last if sig(last) == sig(base) else None

    def _stop(self) -> list[Event]:
        out: list[Event] = []
        counts = {"routes": 0, "rules": 0, "addresses": 0}
        removed: list[bool] = []

        def drop_nft(out: list[Event]) -> None:
            removed.append(nft.delete_table(self._nft))

        def drop_rules(out: list[Event]) -> None:
            for r in self._netlink.rules():
                if r.proto == RT_PROTO and self._netlink.del_rule(r):
                    counts["rules"] += 1

        def drop_routes(out: list[Event]) -> None:
            for r in self._netlink.routes():
                if r.proto == RT_PROTO and self._netlink.del_route(r):
                    counts["routes"] += 1

        def drop_addresses(out: list[Event]) -> None:
            state = self._state_file()
            links, addrs = self._read()
            owned = set(state.addresses) | {
                (a.ifname, a.interface) for a in addrs if a.proto == RT_PROTO
            }
            present = {(a.ifname, a.interface) for a in addrs}
            for key in sorted(owned, key=str):
                ifname, iface = key
                link = links.get(ifname)
                if (
                    link is not None
                    and key in present
                    and self._netlink.del_address(link.index, iface)
                ):
                    counts["addresses"] += 1
                    out.append(self._ev("address.remove", interface=ifname, address=str(iface)))
                state.addresses.discard(key)
            state.remove()

        self._step(out, "nft", drop_nft)
        self._step(out, "rule", drop_rules)
        self._step(out, "route", drop_routes)
        self._step(out, "address", drop_addresses)
        out.append(self._ev("backend.stop", nft=bool(removed and removed[0]), **counts))
        self._close_sockets()
        self._state = None
        self._last_intent = None
        self._flushed = set()
        self._warned = {}
        self._sysctl_done = set()
        return out

    def _carrier(self) -> dict[str, bool]:
        links = self._netlink.links()
        return {
            w.interface: (links[w.interface].carrier if w.interface in links else False)
            for w in self._config.wans
        }

    # ----------------------------------------------------------------- counters

    def _submit_usage(self, now: float) -> Future[tuple[float, dict[str, Usage]]]:
        if self._usage_pool is None:
            # Its thread is started from the worker, so it is born in the backend's
            # namespace (a thread inherits its creator's; conntrack is per namespace).
            self._usage_pool = self._call(self._new_usage_pool)
        return self._usage_pool.submit(self._read_usage, now, dict(self._own))

    @staticmethod
    def _new_usage_pool() -> ThreadPoolExecutor:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wanwatch-ct")
        pool.submit(time.monotonic).result()  # start its one thread here
        return pool

    @staticmethod
    def _read_usage(
        now: float, own: dict[str, tuple[int, IPv4Address | None]]
    ) -> tuple[float, dict[str, Usage]]:
        return now, conntrack.usage(own)

    def _collect_usage(self, job: Future[tuple[float, dict[str, Usage]]]) -> None:
        try:
            self._usage = job.result()
        except WanwatchError as exc:
            log.warning("counters: %s", exc)

    def _remember(self, ups: Sequence[Uplink]) -> None:
        """The marks and addresses counters() needs (the worker's view, shared by assignment)."""
        self._own = {u.name: (u.mark, u.address.ip if u.address else None) for u in ups}
        self._resolved = {u.name: (u.address, u.gateway) for u in ups}

    @staticmethod
    def _open_drift_watcher() -> DriftWatcher:
        watcher = DriftWatcher()
        watcher.open()
        return watcher

    def _open_watcher(self) -> LinkWatcher:
        watcher = LinkWatcher(w.interface for w in self._config.wans)
        watcher.open()
        return watcher


def _names(ups: Sequence[Uplink]) -> dict[int | None, str]:
    """Uplink name by interface index, to name the uplink of a route in events."""
    return {u.index: u.name for u in ups if u.index is not None}
