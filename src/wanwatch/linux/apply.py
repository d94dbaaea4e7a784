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
  (docs/lab-notes.md: that is how a probe reports the wrong uplink healthy);
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

The parts: desired.py (what should exist), reconcile.py (the pass and the
steps that make it so), statefile.py (the addresses we added), watch.py (the
carrier and drift watchers, opened on the worker), this module (the worker
thread, the public API and the counters' background reading).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import ParamSpec, TypeVar

from wanwatch.config import Config
from wanwatch.engine.events import Event, event
from wanwatch.engine.intent import Intent, intent_from_config
from wanwatch.errors import NftError, WanwatchError
from wanwatch.linux import conntrack, firewall, nft, rules_nft, sysctl, usage
from wanwatch.linux.desired import Uplink
from wanwatch.linux.netlink import IpAddress
from wanwatch.linux.reconcile import STATE_FILE, Reconciler
from wanwatch.linux.watch import DriftWatcher, LinkWatcher
from wanwatch.status import FirewallStatus, RuleTraffic, Usage

__all__ = ["STATE_FILE", "LinkWatcher", "LinuxBackend", "Uplink", "intent_from_config"]

log = logging.getLogger("wanwatch")

COUNTERS_MAX_AGE = 1.0  # seconds before counters() takes a fresh reading in the background

_P = ParamSpec("_P")
_T = TypeVar("_T")
_W = TypeVar("_W", LinkWatcher, DriftWatcher)
# One background reading: when, each uplink's nft counters, its open connections (None: not
# counted), the firewall's counters (None: not read)
_Usage = tuple[float, dict[str, usage.Moved], dict[str, int] | None, firewall.Reading | None]


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
        self._now = now
        self._r = Reconciler(config, state_dir, now, nft_binary, proc_sys, flush=self._flush_soon)
        self._nft = nft_binary
        self._worker: ThreadPoolExecutor | None = None
        self._worker_lock = threading.Lock()
        # counters(): the last reading (when, counters), the one being taken, its thread,
        # and the last count of open connections (when, per uplink), taken on request
        self._usage: tuple[float, dict[str, Usage]] | None = None
        self._opened: tuple[float, dict[str, int]] | None = None
        self._usage_job: Future[_Usage] | None = None
        self._usage_pool: ThreadPoolExecutor | None = None
        # firewall(): totals of the firewall's counters, read with the usage counters
        self._fw_totals = firewall.Totals()
        self._fw: tuple[float, dict[str, firewall.Count]] | None = None
        # conntrack flushes started by passes and not yet handed to the daemon (flushes())
        self._flush_pool: ThreadPoolExecutor | None = None
        self._flush_jobs: list[Future[list[Event]]] = []
        self._flush_lock = threading.Lock()

    # ----------------------------------------------------------------- public API

    def start(self) -> list[Event]:
        """Sysctls, addresses, per-uplink tables and rules, our nft table; adopt what exists.

        The main-table defaults and an existing table inet wanwatch are left as
        they are (a killed run's state keeps traffic flowing) until the first
        ``apply()``. Raises a WanwatchError if the kernel refuses a step.
        """
        return self._call(self._r.start)

    def apply(self, intent: Intent, *, full: bool = False) -> list[Event]:
        """Reconcile to ``intent``. Failures become ``backend.error`` events; never raises.

        ``full`` also checks every sysctl we set (a repair pass: someone may have
        turned forwarding off); otherwise only those of uplinks that appeared.
        """
        return self._call(self._r.apply, intent, full)

    def prepare(self, intent: Intent) -> list[Event]:
        """Addresses, per-uplink tables and rules for ``intent``, not which uplink carries
        traffic (main-table defaults, nft): safe before the engine's first verdict."""
        return self._call(self._r.prepare, intent)

    def flushes(self) -> list[Future[list[Event]]]:
        """The conntrack flushes started since the last call, each the Future of its events.

        A pass that fails an uplink over starts deleting its flows on a thread of
        their own after the routes and the nft table: the pass, and the loop waiting
        for it, never wait for the table's size. Each ends in ``conntrack.flush``
        (when it finished, ``deleted``, ``flush_ms``) or a ``backend.error``; a
        failed one is started again by the next pass.
        """
        with self._flush_lock:
            jobs, self._flush_jobs = self._flush_jobs, []
        return jobs

    def resolved(self) -> dict[str, tuple[IPv4Interface | None, IPv4Address | None]]:
        """Each uplink's address and next hop as the last pass found them (None: not there,
        or via the device); never waits (the worker's view, shared by assignment)."""
        return self._r.resolved

    def apply_soon(self, intent: Intent, *, full: bool = False) -> Future[list[Event]]:
        """:meth:`apply` without waiting: its Future (for ``asyncio.wrap_future``)."""
        return self._submit(self._r.apply, intent, full)

    def reload(self, config: Config, intent: Intent | None = None) -> list[Event]:
        """Switch to a new config: add what it has, remove what only the old one had.

        Pass the engine's Intent for the new config when there is one; without it
        the last Intent is kept if the uplinks did not change, else the nft table
        falls back to the baseline (no load balancing) until the next ``apply()``.
        """
        return self._call(self._r.reload, config, intent)

    def stop(self) -> list[Event]:
        """Remove exactly what we added (sysctls stay), then end the worker."""
        try:
            return self._call(self._r.stop)
        finally:
            self._end_worker()

    def close(self) -> None:
        """Let go of sockets and the worker, leaving the kernel as it is (like a kill)."""
        if self._worker is not None:
            self._call(self._r.close)
        self._end_worker()

    def carrier(self) -> dict[str, bool]:
        """Carrier of each uplink interface now (a missing interface reads False)."""
        return self._call(self._r.carrier)

    def link_watcher(self) -> LinkWatcher:
        """An open LinkWatcher on the uplink interfaces, in the backend's namespace."""
        return self._call(_opened, LinkWatcher(w.interface for w in self.config.wans))

    def drift_watcher(self) -> DriftWatcher:
        """An open DriftWatcher, in the backend's namespace."""
        return self._call(_opened, DriftWatcher())

    def counters(
        self, max_age: float = COUNTERS_MAX_AGE, *, connections: bool = True
    ) -> tuple[float | None, dict[str, Usage]]:
        """The last counters' reading per uplink and its age in seconds; never waits.

        Per uplink: bytes and packets in and out (usage.py: nft counters, one
        listing of our table, O(1) in the number of connections) and, with
        ``connections``, the office connections open now (conntrack's entries by
        our ct mark: a dump of the whole table, about 0.1 ms per entry). So the
        reading runs on a thread of its own, and the connections are counted only
        for a caller that shows them (status, /metrics), never for the quotas'
        periodic reading: a reading older than ``max_age`` starts a fresh one in
        the background and is returned as it is meanwhile (age None and {} before
        the first; the connections as last counted). Errors are logged; the last
        reading stays. Call it from one thread at a time (the daemon's loop).
        """
        now = self._now()
        job = self._usage_job
        if job is not None and job.done():
            self._usage_job = None
            self._collect_usage(job)
        stale = self._usage is None or now - self._usage[0] >= max_age
        if connections:
            stale = stale or self._opened is None or now - self._opened[0] >= max_age
        if stale and self._usage_job is None:
            self._usage_job = self._submit_usage(now, connections)
        if self._usage is None:
            return None, {}
        return now - self._usage[0], self._usage[1]

    def firewall(self) -> FirewallStatus:
        """The firewall's counters (totals) from the reading :meth:`counters` takes; never waits.

        The same background reading: the one ``nft -j list table`` of :meth:`counters`.
        """
        found = {} if self._fw is None else self._fw[1]
        age = None if self._fw is None else self._now() - self._fw[0]
        return firewall.status(firewall.describe(self._r.config), found, age)

    def rules(self) -> tuple[float | None, dict[str, RuleTraffic]]:
        """Each policy rule's counters (totals) and their age, from the same reading as
        :meth:`firewall`; never waits."""
        found = {} if self._fw is None else self._fw[1]
        age = None if self._fw is None else self._now() - self._fw[0]
        return age, rules_nft.traffic(self._r.config, found)

    @property
    def config(self) -> Config:
        return self._r.config

    # ----------------------------------------------------------------- worker

    def _call(self, fn: Callable[_P, _T], *args: _P.args, **kw: _P.kwargs) -> _T:
        return self._submit(fn, *args, **kw).result()

    def _submit(self, fn: Callable[_P, _T], *args: _P.args, **kw: _P.kwargs) -> Future[_T]:
        with self._worker_lock:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wanwatch-nl")
            worker = self._worker
        return worker.submit(fn, *args, **kw)

    def _end_worker(self) -> None:
        with self._worker_lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(wait=True)
        pool, self._usage_pool = self._usage_pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._usage = self._usage_job = None
        pool, self._flush_pool = self._flush_pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    # ----------------------------------------------------------------- conntrack flushes

    def _flush_soon(
        self, wan: str, address: IpAddress | None, mark: int, sweep: bool, family: int
    ) -> None:
        """Called on the worker by a pass: start the flush on the flush thread."""
        if self._flush_pool is None:
            # created from the worker, its thread is born in the backend's namespace
            self._flush_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wanwatch-fl")
        job = self._flush_pool.submit(self._flush, wan, address, mark, sweep, family)
        with self._flush_lock:
            self._flush_jobs.append(job)

    def _flush(
        self, wan: str, address: IpAddress | None, mark: int, sweep: bool, family: int
    ) -> list[Event]:
        t0 = time.perf_counter()
        try:
            n = conntrack.flush_uplink(address, mark, sweep=sweep, family=family)
        except WanwatchError as exc:
            self._r.unflushed(wan, sweep, family)
            return [event(self._now(), "backend.error", step="conntrack", error=str(exc))]
        return [
            event(
                self._now(),
                "conntrack.flush",
                wan=wan,
                deleted=n,
                address=str(address) if address else None,
                swept=sweep,
                flush_ms=round((time.perf_counter() - t0) * 1000, 1),
                **({"family": 6} if family == 6 else {}),
            )
        ]

    # ----------------------------------------------------------------- counters

    def _submit_usage(self, now: float, connections: bool) -> Future[_Usage]:
        if self._usage_pool is None:
            # Its thread is started from the worker, so it is born in the backend's
            # namespace (a thread inherits its creator's; conntrack is per namespace).
            self._usage_pool = self._call(self._new_usage_pool)
        own = dict(self._r.own) if connections else None
        return self._usage_pool.submit(self._read_usage, now, own, self._nft)

    @staticmethod
    def _new_usage_pool() -> ThreadPoolExecutor:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wanwatch-ct")
        pool.submit(time.monotonic).result()  # start its one thread here
        return pool

    @staticmethod
    def _read_usage(
        now: float, own: dict[str, tuple[int, IPv4Address | None]] | None, nft_binary: str
    ) -> _Usage:
        """nft's counters, and the open connections of the uplinks in ``own`` if given."""
        moved: dict[str, usage.Moved] = {}
        try:
            text = nft.list_table(nft_binary)
            counted: firewall.Reading | None = firewall.Reading(None, {})
            if text is not None:
                moved = usage.parse(text)
                found = firewall.parse_table(text)
                # the usage counters carry their own totals over a swap (usage.py)
                mine = {n: c for n, c in found.counts.items() if not usage.is_usage(n)}
                counted = firewall.Reading(found.table, mine)
        except NftError as exc:  # the connection counts are still worth having
            log.warning("nft counters: %s", exc)
            counted = None
        return now, moved, None if own is None else conntrack.connections(own), counted

    def _collect_usage(self, job: Future[_Usage]) -> None:
        try:
            now, moved, opened, counted = job.result()
        except WanwatchError as exc:
            log.warning("counters: %s", exc)
            return
        if opened is not None:
            self._opened = now, opened
        known = {} if self._opened is None else self._opened[1]
        zero = usage.Moved(0, 0, 0, 0)
        self._usage = (
            now,
            {
                name: Usage(
                    connections=known.get(name, 0),
                    bytes_out=(m := moved.get(name, zero)).bytes_out,
                    bytes_in=m.bytes_in,
                    packets_out=m.packets_out,
                    packets_in=m.packets_in,
                    bytes_out6=m.bytes_out6,
                    bytes_in6=m.bytes_in6,
                )
                for name in self._r.own
            },
        )
        if counted is not None:
            self._fw = now, self._fw_totals.add(counted)


def _opened(watcher: _W) -> _W:
    """``watcher`` opened; on the worker, its sockets are born in the backend's namespace."""
    watcher.open()
    return watcher
