"""The reconcile steps: read the kernel, diff it against what is wanted, change only that.

Every step reads the kernel, diffs it against what is wanted and changes only
the difference, so applying twice is a no-op and a restart adopts what a killed
run left. Only objects that carry our footprint are ever changed or removed
(see apply.py for the list). All of this runs on the backend's worker thread
(apply.py): pyroute2's synchronous API cannot run inside a running asyncio loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from wanwatch.config import Config
from wanwatch.config.dynamic import static_address
from wanwatch.config.fields import DHCP
from wanwatch.engine.events import Event, FieldValue, event
from wanwatch.engine.intent import Intent, intent_from_config
from wanwatch.errors import WanwatchError
from wanwatch.footprint import DEFAULT_METRIC, MAX_UPLINKS, RT_PROTO, TABLE_BASE
from wanwatch.linux import conntrack, nft, sysctl
from wanwatch.linux.desired import Uplink, main_defaults, resolve, rules, table_routes
from wanwatch.linux.netlink import (
    DEFAULT_DST,
    RT_TABLE_MAIN,
    RTN_UNREACHABLE,
    Address,
    Link,
    Netlink,
    Route,
)
from wanwatch.linux.statefile import AddrKey, StateFile

STATE_FILE = "linux-backend.json"
OUR_TABLES = frozenset(range(TABLE_BASE + 1, TABLE_BASE + MAX_UPLINKS + 1))


class Reconciler:
    """The kernel side of LinuxBackend; call it from one thread (the backend's worker)."""

    def __init__(
        self,
        config: Config,
        state_dir: Path,
        now: Callable[[], float],
        nft_binary: str,
        proc_sys: Path,
    ) -> None:
        self.config = config
        self._state_dir = Path(state_dir)
        self._now = now
        self._nft = nft_binary
        self._proc_sys = proc_sys
        self._nl = Netlink()  # opened by its first request, on the worker
        self._state: StateFile | None = None
        self._last_intent: Intent | None = None
        self._flushed: set[str] = set()
        self._sysctl_done: set[str] = set()
        self._warned: dict[str, set[str]] = {}
        self._strict = False
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
            changes += sysctl.ensure_accounting(self._proc_sys)
        wanted = [w.interface for w in self.config.wans]
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
        present = {(a.ifname, a.interface) for a in addrs}
        owned = set(state.addresses) | {
            (a.ifname, a.interface) for a in addrs if a.proto == RT_PROTO
        }
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
        nl = self._nl
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
                self._nl.del_route(r)
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
        nl = self._nl
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
        definition = nft.render(intent, self.config)
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
        nl = self._nl
        links = nl.links()
        return links, nl.addresses(links)

    def _config_pass(self, out: list[Event]) -> tuple[dict[str, Link], list[Address]]:
        """Addresses of the config, then a fresh read of links and addresses."""
        links, addrs = self._read()
        mark = len(out)
        self._step(out, "address", self._sync_addresses, links, addrs)
        if any(e.name.startswith("address.") for e in out[mark:]):
            addrs = self._nl.addresses(links)
        return links, addrs

    def start(self) -> list[Event]:
        self._strict = True
        try:
            out: list[Event] = []
            self._sysctls(out, True)
            links, addrs = self._config_pass(out)
            base = intent_from_config(self.config)
            ups = resolve(base.uplinks, links, addrs)
            self._remember(ups)
            self._unresolved(out, ups)
            routes = self._nl.routes()
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
            routes = self._nl.routes()
        except WanwatchError as exc:
            out.append(self._ev("backend.error", step="read", error=str(exc)))
            return None
        self._remember(ups)
        self._unresolved(out, ups)
        return ups, routes

    def prepare(self, intent: Intent) -> list[Event]:
        out: list[Event] = []
        found = self._resolve(out, intent)
        if found is not None:
            ups, routes = found
            self._step(out, "table", self._sync_tables, ups, routes)
            self._step(out, "rule", self._sync_rules, ups)
        return out

    def apply(self, intent: Intent, full: bool = False) -> list[Event]:
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

    def reload(self, config: Config, intent: Intent | None) -> list[Event]:
        self.config = config
        self._sysctl_done = set()
        out: list[Event] = []
        self._step(out, "sysctl", self._sysctls, False)
        try:
            links, addrs = self._config_pass(out)
            target = intent if intent is not None else self._compatible_last_intent(config)
            base = target if target is not None else intent_from_config(config)
            ups = resolve(base.uplinks, links, addrs)
            routes = self._nl.routes()
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
            for r in self._nl.rules():
                if r.proto == RT_PROTO and self._nl.del_rule(r):
                    counts["rules"] += 1

        def drop_routes(out: list[Event]) -> None:
            for r in self._nl.routes():
                if r.proto == RT_PROTO and self._nl.del_route(r):
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
