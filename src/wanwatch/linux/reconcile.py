"""The reconcile pass: read the kernel, diff it against what is wanted, change only that.

Every step reads the kernel, diffs it against what is wanted and changes only
the difference, so applying twice is a no-op and a restart adopts what a killed
run left. Only objects that carry our footprint are ever changed or removed
(see apply.py for the list). All of this runs on the backend's worker thread
(apply.py): pyroute2's synchronous API cannot run inside a running asyncio loop.

start, prepare, apply and reload are one pass (:meth:`Reconciler._pass`): the
config's addresses, one reading of the kernel that resolves each uplink of an
Intent as it is now, then steps over that reading. They differ in the Intent
they pass, the steps they list and what a failing step does: in start it is
raised (the daemon does not run on a kernel it could not set up); elsewhere it
is a ``backend.error`` event and the next step runs (the daemon retries it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any, Literal, overload

from wanwatch.config import Config
from wanwatch.config.dynamic import static_address
from wanwatch.config.fields import AUTO, DHCP
from wanwatch.config.ipv6 import has_ipv6, lan_address6, static_address6
from wanwatch.engine.events import Event, FieldValue, event
from wanwatch.engine.intent import Intent, intent_from_config
from wanwatch.errors import WanwatchError
from wanwatch.footprint import DEFAULT_METRIC, RT_PROTO
from wanwatch.linux import conntrack, nft, rules_nft, sysctl
from wanwatch.linux.desired import (
    OUR_TABLES,
    Uplink,
    Uplink6,
    carries_ipv6,
    main_defaults,
    main_defaults6,
    resolve,
    resolve6,
    rules,
    rules6,
    table_routes,
    table_routes6,
)
from wanwatch.linux.netlink import (
    DEFAULT_DST,
    DEFAULT_DST6,
    RT_TABLE_MAIN,
    RTN_UNREACHABLE,
    Address,
    Address6,
    IpAddress,
    IpNetwork,
    Link,
    Netlink,
    Route,
)
from wanwatch.linux.statefile import AddrKey, StateFile

STATE_FILE = "linux-backend.json"


@dataclass(frozen=True)
class Reading:
    """One pass's reading of the kernel: the uplinks of ``intent`` as they are now, every
    route; the same for IPv6 (``ups6`` empty when the config has no IPv6)."""

    intent: Intent
    ups: list[Uplink]
    routes: list[Route]
    ups6: list[Uplink6]
    routes6: list[Route]


Step = tuple[str, Callable[[list[Event], Reading], None]]  # (name in backend.error, what it does)
# Start deleting one uplink's flows off the pass: (wan, its address, its ct mark, sweep)
FlushSoon = Callable[[str, IpAddress | None, int, bool, int], None]


class Reconciler:
    """The kernel side of LinuxBackend; call it from one thread (the backend's worker)."""

    def __init__(
        self,
        config: Config,
        state_dir: Path,
        now: Callable[[], float],
        nft_binary: str,
        proc_sys: Path,
        *,
        flush: FlushSoon,
    ) -> None:
        self.config = config
        self._state_dir = Path(state_dir)
        self._now = now
        self._nft = nft_binary
        self._proc_sys = proc_sys
        self._nl = Netlink()  # opened by its first request, on the worker
        self._state: StateFile | None = None
        self._last_intent: Intent | None = None
        self._flush_soon = flush
        self._flush_lock = (
            threading.Lock()
        )  # _flushed, _swept: unflushed() comes from the flush thread
        # (uplink, family) flushed for the running intent / swept since our table went in
        self._flushed: set[tuple[str, int]] = set()
        self._swept: set[tuple[str, int]] = set()
        # the rule paths in the running table (None: unknown, rewrite them all)
        self._paths: rules_nft.Applied | None = None
        self._sysctl_done: set[str] = set()
        self._warned: dict[str, set[str]] = {}
        # each uplink's (mark, address) as last resolved, for the backend's counters
        self.own: dict[str, tuple[int, IPv4Address | None]] = {}
        # ... and each uplink's address and next hop (None: absent, or via the device)
        self.resolved: dict[str, tuple[IPv4Interface | None, IPv4Address | None]] = {}
        # DHCP uplink name -> the address of its lease, as the last Intent gave it.
        self._leased: dict[str, IPv4Interface] = {}

    def close(self) -> None:
        """Let go of the netlink socket (the kernel is left as it is)."""
        self._nl.close()

    def _state_file(self) -> StateFile:
        if self._state is None:
            self._state = StateFile.load(self._state_dir / STATE_FILE)
        return self._state

    # ----------------------------------------------------------------- events

    def _ev(self, name: str, **fields: FieldValue) -> Event:
        return event(self._now(), name, **fields)

    def _step(
        self, out: list[Event], step: str, fn: Callable[..., None], *args: Any, strict: bool = False
    ) -> None:
        """Run one step: a failure is a ``backend.error`` event, or raised if ``strict``."""
        try:
            fn(out, *args)
        except WanwatchError as exc:
            if strict:
                raise
            out.append(self._ev("backend.error", step=step, error=str(exc)))

    def _route_ev(self, name: str, r: Route, **more: FieldValue) -> Event:
        via = str(r.gateway) if r.gateway else None
        return self._ev(name, table=r.table, dst=str(r.dst), metric=r.metric, via=via, **more)

    def _removed_ev(self, r: Route, **more: FieldValue) -> Event:
        """A route of ours deleted: the primary default is withdrawn, anything else removed."""
        primary = r.table == RT_TABLE_MAIN and r.metric == DEFAULT_METRIC
        return self._route_ev("route.withdraw" if primary else "route.remove", r, **more)

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
        wanted = [w.interface for w in self.config.wans]
        if not forwarding and set(wanted) <= self._sysctl_done:
            return
        present = sysctl.uplink_interfaces_present(wanted, self._proc_sys)
        six = {w.interface: w for w in self.config.wans if has_ipv6(w)}
        for ifname in present:
            if forwarding or ifname not in self._sysctl_done:
                changes += sysctl.ensure_uplink(ifname, self._proc_sys)
                if (w := six.get(ifname)) is not None:
                    auto = w.address6 == AUTO
                    changes += sysctl.ensure_uplink6(ifname, accept_ra=auto, root=self._proc_sys)
        if forwarding and carries_ipv6(self.config):  # after accept_ra (sysctl.py says why)
            changes += sysctl.ensure_forwarding6(self._proc_sys)
        self._sysctl_done = set(present)
        out.extend(self._ev("sysctl.set", key=c.key, old=c.old, new=c.new) for c in changes)

    def _sync_addresses(
        self, out: list[Event], links: dict[str, Link], addrs: list[Address], addrs6: list[Address6]
    ) -> None:
        nl = self._nl
        state = self._state_file()
        if state.problem is not None:
            out.append(self._ev("state.unreadable", error=state.problem))
            state.problem = None
        desired: list[AddrKey] = [
            (w.interface, a) for w in self.config.wans if (a := static_address(w)) is not None
        ]
        desired += [(w.interface, a) for w in self.config.wans if (a := self._leased.get(w.name))]
        desired += [(n.interface, n.address) for n in self.config.lans if n.address is not None]
        desired += [(w.interface, a6) for w in self.config.wans if (a6 := static_address6(w))]
        desired += [(n.interface, a6) for n in self.config.lans if (a6 := lan_address6(n))]
        every: list[Address | Address6] = [*addrs, *addrs6]
        present = {(a.ifname, a.interface) for a in every}
        dhcp_ifaces = {w.interface for w in self.config.wans if w.address == DHCP}
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
        for key in sorted(state.owned(every) - set(desired), key=str):
            ifname, iface = key
            link = links.get(ifname)
            if link is not None and key in present:
                nl.del_address(link.index, iface)
                out.append(self._ev("address.remove", interface=ifname, address=str(iface)))
            if ifname in dhcp_ifaces and isinstance(iface, IPv4Interface):
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
        keep: frozenset[tuple[int, IpNetwork, int]] = frozenset(),
    ) -> None:
        """Make our routes in the managed slots equal ``desired``: replace first, delete after.

        A slot (table, dst, metric) held by a foreign route is reported and left
        alone: ``replace`` would swap whatever route sits there, ours or not.
        """
        nl = self._nl
        foreign = {r.key: r for r in current if r.proto != RT_PROTO and managed(r)}
        ours = [r for r in current if r.proto == RT_PROTO and managed(r)]
        placed: set[tuple[int, IpNetwork, int]] = set()
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
                if d.family == 6:
                    fields["family"] = 6
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
                unreachable = "unreachable" if d.kind == RTN_UNREACHABLE else None
                out.append(self._route_ev("route.set", d, wan=names.get(d.oif), kind=unreachable))
        self._warn(out, f"{kind}.conflict", conflicts)
        for r in ours:
            if r.key in placed or r.key in keep:
                continue  # kept as it is, or already swapped by the replace above
            nl.del_route(r)
            out.append(self._removed_ev(r, wan=names.get(r.oif)))

    def _sync_main(self, out: list[Event], seen: Reading) -> None:
        """The main table's defaults of both families: IPv4's for ``intent.active``,
        IPv6's for ``intent.active6``."""
        names = _names(seen.ups)
        desired, keep = main_defaults(seen.intent, seen.ups)
        self._sync_defaults(out, "main", desired, keep=keep, routes=seen.routes, names=names)
        desired, keep = main_defaults6(seen.intent, seen.ups6)
        self._sync_defaults(out, "main6", desired, keep=keep, routes=seen.routes6, names=names)

    def _sync_defaults(
        self,
        out: list[Event],
        kind: str,
        desired: list[Route],
        *,
        keep: bool,
        routes: list[Route],
        names: dict[int | None, str],
    ) -> None:
        """One family's main-table defaults (``kind`` main or main6); ``keep``: the
        primary is known but cannot be routed now, its current route is kept."""
        dst = DEFAULT_DST6 if kind == "main6" else DEFAULT_DST
        main = [r for r in routes if r.table == RT_TABLE_MAIN and r.dst == dst]
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
        self._warn(out, f"route.shadowed{kind[4:]}", shadow)
        self._reconcile_routes(
            out,
            kind=kind,
            desired=desired,
            current=main,
            managed=lambda r: r.dst == dst,
            names=names,
            keep=frozenset({(RT_TABLE_MAIN, dst, DEFAULT_METRIC)}) if keep else frozenset(),
        )

    def _prune_main(self, out: list[Event], seen: Reading) -> None:
        """Without an Intent: drop our main defaults through uplinks the config no longer has."""
        known: set[tuple[IpAddress | None, int | None]] = {
            (u.gateway, u.index) for u in seen.ups if u.usable
        }
        known |= {(u.gateway, u.index) for u in seen.ups6 if u.usable}
        for r in (*seen.routes, *seen.routes6):
            if r.table == RT_TABLE_MAIN and r.proto == RT_PROTO and (r.gateway, r.oif) not in known:
                self._nl.del_route(r)
                out.append(self._removed_ev(r))

    def _sync_tables(self, out: list[Event], seen: Reading) -> None:
        desired = [r for u in seen.ups for r in table_routes(u)]
        desired += [r for u in seen.ups6 for r in table_routes6(u)]
        current = [r for r in (*seen.routes, *seen.routes6) if r.table in OUR_TABLES]
        self._reconcile_routes(
            out,
            kind="table",
            desired=desired,
            current=current,
            managed=lambda r: r.table in OUR_TABLES,
            names=_names(seen.ups),
        )

    def _sync_rules(self, out: list[Event], seen: Reading) -> None:
        nl = self._nl
        ours = [r for family in (4, 6) for r in nl.rules(family) if r.proto == RT_PROTO]
        want = rules(seen.ups) + rules6(seen.ups6)
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

    def _sync_nft(self, out: list[Event], seen: Reading) -> None:
        intent = seen.intent
        definition = nft.render(intent, self.config)
        want = nft.rendered_fingerprint(definition)
        running = nft.running_fingerprint(self._nft)
        if running == want:
            self._move_rules(out, intent)
            return
        if not running:  # no table of ours: connections opened meanwhile carry no mark
            self._swept = set()
        domain_sets = rules_nft.domain_sets(self.config)
        carry = nft.carried_sets(domain_sets, self._nft) if domain_sets else ""
        ms = nft.apply_ruleset(definition, self._nft, carry, nft.carried_usage(intent, self._nft))
        # none yet: nft.render chose a baseline
        self._paths = rules_nft.applied(self.config, intent) if intent.rules else None
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

    def _move_rules(self, out: list[Event], intent: Intent) -> None:
        """The same table, rules on other paths: change them in place (rules_nft.py)."""
        now = rules_nft.applied(self.config, intent)
        if self._paths == now or not intent.rules:
            return
        batch = rules_nft.path_update(self.config, intent, self._paths)
        ms = nft.apply_batch(batch, self._nft) if batch else 0.0
        moved = [
            f"{p.name}{'/6' if f else ''}={p}"
            for f, paths in enumerate(now)
            for p in paths
            if self._paths is None or p not in self._paths[f]
        ]
        self._paths = now
        out.append(
            self._ev(
                "nft.rules",
                moved=",".join(moved),
                apply_ms=round(ms, 1),
            )
        )

    def _flush(self, out: list[Event], seen: Reading) -> None:
        """Start deleting the flows of each uplink that newly entered ``intent.flush``
        (IPv4) or ``intent.flush6`` (IPv6): one family's flows each, as its policy gave
        it up.

        The deletion runs on the backend's flush thread, after the routes and the
        table of this pass: a new connection never waits for it, and its own
        ``conntrack.flush`` event says when it finished. Unmarked flows NATed to the
        uplink's address can only be older than our table (it marks every new
        connection by its uplink), so they are swept at the uplink's first flush
        after our table went in, not on every failover (a walk of the whole table).
        """
        intent = seen.intent
        by_name = {u.name: u for u in seen.ups}
        by_name6 = {u.name: u for u in seen.ups6}
        wanted = {(n, 4) for n in intent.flush} | {(n, 6) for n in intent.flush6}
        due: list[tuple[str, int, IpAddress | None, int, bool]] = []
        with self._flush_lock:
            self._flushed &= wanted
            for name, family in sorted(wanted - self._flushed):
                if (u := by_name.get(name)) is None:
                    continue
                src = u if family == 4 else by_name6.get(name)
                address = src.address.ip if src is not None and src.address else None
                key = (name, family)
                due.append((name, family, address, u.mark, key not in self._swept))
                self._flushed.add(key)
                self._swept.add(key)
        for name, family, address, mark, sweep in due:
            self._flush_soon(name, address, mark, sweep, family)

    def unflushed(self, wan: str, swept: bool, family: int = 4) -> None:
        """A flush of ``wan``'s ``family`` failed: the next pass starts it again (sweep
        included). Called from the flush thread."""
        with self._flush_lock:
            self._flushed.discard((wan, family))
            if swept:
                self._swept.discard((wan, family))

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

    # ----------------------------------------------------------------- the pass

    @overload
    def _pass(
        self, out: list[Event], intent: Intent, steps: Sequence[Step], *, strict: Literal[True]
    ) -> Reading: ...

    @overload
    def _pass(self, out: list[Event], intent: Intent, steps: Sequence[Step]) -> Reading | None: ...

    def _pass(
        self, out: list[Event], intent: Intent, steps: Sequence[Step], *, strict: bool = False
    ) -> Reading | None:
        """The config's addresses, one reading of the kernel for ``intent``, then ``steps``.

        A failing step is a ``backend.error`` event and the next one runs, or if
        ``strict`` it is raised. None: the kernel could not be read (reported; no step ran).
        """
        try:
            reading = self._read(out, intent, strict=strict)
        except WanwatchError as exc:
            if strict:
                raise
            out.append(self._ev("backend.error", step="read", error=str(exc)))
            return None
        for name, fn in steps:
            self._step(out, name, fn, reading, strict=strict)
        return reading

    def _read(self, out: list[Event], intent: Intent, *, strict: bool) -> Reading:
        links, addrs = self._links_and_addresses()
        addrs6 = self._nl.addresses6(links)
        mark = len(out)
        self._step(out, "address", self._sync_addresses, links, addrs, addrs6, strict=strict)
        if any(e.name.startswith("address.") for e in out[mark:]):
            addrs = self._nl.addresses(links)
            addrs6 = self._nl.addresses6(links)
        # An uplink's interface went: set it up anew when it comes back (a new
        # device comes with the defaults).
        self._sysctl_done &= set(links)
        ups = resolve(intent.uplinks, links, addrs)
        routes = self._nl.routes()
        routes6 = self._nl.routes(family=6)
        main6 = [r for r in routes6 if r.table == RT_TABLE_MAIN]
        ups6 = resolve6(self.config, ups, addrs6, main6)
        self._remember(ups)
        self._unresolved(out, ups)
        return Reading(intent, ups, routes, ups6, routes6)

    def _links_and_addresses(self) -> tuple[dict[str, Link], list[Address]]:
        nl = self._nl
        links = nl.links()
        return links, nl.addresses(links)

    def _uplink_steps(self) -> list[Step]:
        """Each uplink's table and rules: all that is safe before the engine's first verdict."""
        return [("table", self._sync_tables), ("rule", self._sync_rules)]

    def _carrying_steps(self) -> list[Step]:
        """The steps for an Intent that says who carries traffic.

        Order matters for speed and safety: new connections move first (route,
        then nft buckets), then the dead uplink's flows go, then the rest.
        """
        return [
            ("route", self._sync_main),
            ("nft", self._sync_nft),
            ("conntrack", self._flush),  # started here, run off the pass
            *self._uplink_steps(),
        ]

    def _follow_leases(self, intent: Intent) -> None:
        """The DHCP uplinks' addresses as ``intent`` gives them (their leases), for the
        config's addresses of the next pass."""
        self._leased = {
            u.name: u.address for u in intent.uplinks if u.kind == "dhcp" and u.address is not None
        }

    # ----------------------------------------------------------------- entry points (worker)

    def start(self) -> list[Event]:
        out: list[Event] = []
        self._step(out, "sysctl", self._sysctls, True, strict=True)
        base = intent_from_config(self.config)
        seen = self._pass(out, base, self._uplink_steps(), strict=True)
        running = nft.running_fingerprint(self._nft)
        if not running:  # none, or a table of our name without our fingerprint
            self._sync_nft(out, seen)
        adopted = [r for r in seen.routes if r.table == RT_TABLE_MAIN and r.proto == RT_PROTO]
        out.append(
            self._ev(
                "backend.start",
                adopted_defaults=len(adopted),
                nft="adopted" if running else "installed",
                state_dir=str(self._state_dir),
            )
        )
        return out

    def prepare(self, intent: Intent) -> list[Event]:
        out: list[Event] = []
        self._follow_leases(intent)
        self._pass(out, intent, self._uplink_steps())
        return out

    def apply(self, intent: Intent, full: bool = False) -> list[Event]:
        out: list[Event] = []
        self._step(out, "sysctl", self._sysctls, full)
        self._follow_leases(intent)
        if self._pass(out, intent, self._carrying_steps()) is not None:
            self._last_intent = intent
        return out

    def reload(self, config: Config, intent: Intent | None) -> list[Event]:
        self.config = config
        self._sysctl_done = set()
        out: list[Event] = []
        self._step(out, "sysctl", self._sysctls, False)
        target = intent if intent is not None else self._compatible_last_intent(config)
        if target is not None:
            found = self._pass(out, target, self._carrying_steps())
        else:  # until the next apply(): the baseline table, no main default through a lost uplink
            steps: list[Step] = [("route", self._prune_main), ("nft", self._sync_nft)]
            found = self._pass(out, intent_from_config(config), steps + self._uplink_steps())
        if found is None:
            return out
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
            ups = [(u.name, u.interface, u.address, u.gateway, u.slot) for u in i.uplinks]
            return (ups, i.mode, i.classifier, i.masquerade)

        return last if sig(last) == sig(base) else None

    def stop(self) -> list[Event]:
        out: list[Event] = []
        counts = {"routes": 0, "rules": 0, "addresses": 0}
        removed: list[bool] = []

        def drop_nft(out: list[Event]) -> None:
            removed.append(nft.delete_table(self._nft))

        def drop_rules(out: list[Event]) -> None:
            for r in (*self._nl.rules(), *self._nl.rules(6)):
                if r.proto == RT_PROTO and self._nl.del_rule(r):
                    counts["rules"] += 1

        def drop_routes(out: list[Event]) -> None:
            for r in (*self._nl.routes(), *self._nl.routes(family=6)):
                if r.proto == RT_PROTO and self._nl.del_route(r):
                    counts["routes"] += 1

        def drop_addresses(out: list[Event]) -> None:
            state = self._state_file()
            links, addrs = self._links_and_addresses()
            every: list[Address | Address6] = [*addrs, *self._nl.addresses6(links)]
            present = {(a.ifname, a.interface) for a in every}
            for key in sorted(state.owned(every), key=str):
                ifname, iface = key
                link = links.get(ifname)
                if link is not None and key in present and self._nl.del_address(link.index, iface):
                    counts["addresses"] += 1
                    out.append(self._ev("address.remove", interface=ifname, address=str(iface)))
                state.addresses.discard(key)
            state.remove()

        self._step(out, "nft", drop_nft)
        self._step(out, "rule", drop_rules)
        self._step(out, "route", drop_routes)
        self._step(out, "address", drop_addresses)
        out.append(self._ev("backend.stop", nft=bool(removed and removed[0]), **counts))
        self.close()
        self._state = None
        self._last_intent = None
        self._flushed = set()
        self._swept = set()
        self._paths = None
        self._warned = {}
        self._sysctl_done = set()
        return out

    def carrier(self) -> dict[str, bool]:
        links = self._nl.links()
        return {
            w.interface: (links[w.interface].carrier if w.interface in links else False)
            for w in self.config.wans
        }

    def _remember(self, ups: Sequence[Uplink]) -> None:
        """The marks and addresses counters() needs (the worker's view, shared by assignment)."""
        self.own = {u.name: (u.mark, u.address.ip if u.address else None) for u in ups}
        self.resolved = {u.name: (u.address, u.gateway) for u in ups}


def _names(ups: Sequence[Uplink]) -> dict[int | None, str]:
    """Uplink name by interface index, to name the uplink of a route in events."""
    return {u.index: u.name for u in ups if u.index is not None}
