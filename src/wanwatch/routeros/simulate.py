"""Simulate RouterOS route selection for a parsed export under one failure scenario.

The rules modelled, with their sources:

* Connected routes come from ``/ip address`` and have scope 10. Static routes
  default to distance 1, scope 30, target-scope 10 (RouterOS manual, ``/ip route``).
* A gateway that is not directly connected is resolved recursively: "Nexthop is
  looked up only through routes that have scope <= target-scope of the nexthop",
  and "each nexthop address selects smallest value of target-scope from all routes
  that use this nexthop address" (RouterOS manual, ``/ip route`` scope and
  target-scope). Among the eligible routes the longest prefix wins, then the lowest
  distance. This is what pins a probe target to its uplink in the official
  "Failover (WAN Backup)" recipe: a ``scope=10`` host route and ``target-scope=11``
  (or 10) on the default route, so default routes (scope 30) can never resolve it.
* Next hops are resolved in the route's own table, then in ``main``; ``x@table``
  resolves only in that table (v7 manual, Policy Routing: ``gateway=172.16.2.1@main
  routing-table=myTable``; v6 resolves next hops in ``main``).
* ``check-gateway=ping`` pings the route's gateway through the route's own
  resolution; a route whose gateways do not answer is inactive. (Timing: one ping
  every 10 s, two misses in a row - MikroTik staff on the forum, "check-gateway
  question"; the simulation only needs the steady state.)
* The active default route of a table is the usable one with the lowest distance
  (ties: a static route before one a client adds at run time, then the first in the
  file). In RouterOS 7 every usable route of that same distance is active too: equal
  distance makes an ECMP route (v7 manual, IP Routing; the v6 manual makes ECMP
  only of one route with several gateways).
* Client-made default routes (DHCP, PPPoE, L2TP, ..., LTE) are routes via their
  interface. A PPP session or an LTE link ends when its peer stops answering, so a
  dead first hop takes the interface and its routes down; a DHCP lease on Ethernet
  outlives a dead gateway unless the client checks it.
* A static route that a client's up script re-points at the gateway it learns
  (``/ip route set [find comment=ISP1] gateway=$"gateway-address"`` in a DHCP
  client's ``script``, run on bound; the same with the peer's address in a PPP
  profile's ``on-up``: RouterOS manual, DHCP client and PPP AAA) goes through that
  client's interface: the export's gateway is a placeholder the script replaces.
* Marked traffic whose table has no active default route falls back to ``main`` -
  v6: "if route with specific routing mark is not found then main routing table is
  used" (MikroTik forum); v7 Policy Routing: "if
  the mangle marked traffic can be resolved in the table then route rules will never
  see this traffic", i.e. it continues to the rules and ``main`` - unless a routing
  rule for that mark says ``action=lookup-only-in-table`` (or drop/unreachable).
* Netwatch: a host (a type=dns entry's ``dns-server``) is up when a ping routed by
  ``main`` answers; on each change its up-script or down-script runs (from
  ``unknown`` too, as the v6 manual says), from the root menu, so relative paths
  (``ip route disable ...``) work as absolute ones.
  Applied: ``enable``/``disable``/``set`` (``disabled=``, ``distance=``) of routes,
  of DHCP/PPP/LTE clients (``default-route-distance=``, ``add-default-route=``) and
  of interfaces, by ``[find ...]`` or by name.

A scenario says which uplink first hops are dead (nothing answers, the gateway
included), which answer but have nothing behind them (the LTE modem without
signal), and which probe targets are silent. Everything else answers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import ip_address

from wanwatch.errors import RouterOSError
from wanwatch.routeros.clients import CLIENTS
from wanwatch.routeros.commands import Command, Selector, commands, matches, yes_no
from wanwatch.routeros.model import Export, Gateway, IPAddress, Route
from wanwatch.routeros.values import item_names

CONNECTED_SCOPE = 10
MAX_SETTLE_ROUNDS = 10
MAX_SCRIPT_DEPTH = 4
# Recursion bound of ours, far beyond any real configuration (recursive routes in
# practice go one or two levels deep); deeper chains count as unresolvable so that
# hostile input cannot exhaust the Python stack.
MAX_RESOLVE_DEPTH = 32
# Routing-rule actions that stop marked traffic from falling back to main.
NO_FALLBACK_ACTIONS = frozenset({"lookup-only-in-table", "drop", "unreachable"})


@dataclass(frozen=True)
class Scenario:
    id: str
    down: frozenset[str] = frozenset()  # first hops that are dead, gateway included
    upstream_dead: frozenset[str] = frozenset()  # gateway answers, nothing behind it
    silent: frozenset[str] = frozenset()  # probe targets that do not answer

    def faulty(self, key: str) -> bool:
        return key in self.down or key in self.upstream_dead


BASELINE = Scenario("baseline")


@dataclass(frozen=True)
class Hop:
    """Where packets to a gateway leave: the uplink's first hop."""

    key: str  # first-hop address, or the interface name of an interface gateway
    interface: str | None  # None when the export does not say (dynamic addresses)


@dataclass(frozen=True)
class Choice:
    """The default route a table uses."""

    route: Route
    gateway: str  # as written (no %interface / @table); or blackhole/unreachable/...
    nexthop: str | None  # resolved first hop
    interface: str | None
    fallback: bool = False  # reached by falling back from a marked table to main
    # Every first hop the route uses: an ECMP route (gateway=a,b) uses each usable
    # member, and ``gateway``/``nexthop`` then list them comma-separated.
    hops: tuple[str, ...] = ()
    # Every route of an ECMP set (v7, equal distance), this one first.
    members: tuple[Route, ...] = ()

    def to_json(self) -> dict[str, str | list[str] | bool | None]:
        """``gateway`` and ``nexthop`` (the effective next hop), ``ecmp`` when several
        first hops carry, ``fallback`` when a marked table has no active default of
        its own and RouterOS routes its traffic through ``main``'s."""
        out: dict[str, str | list[str] | bool | None] = {
            "gateway": self.gateway,
            "nexthop": self.nexthop,
        }
        if len(self.hops) > 1:
            out["ecmp"] = list(self.hops)
        if self.fallback:
            out["fallback"] = True
        return out

    def key(self) -> tuple[int, str | None]:
        return (self.route.line, self.nexthop)


@dataclass
class State:
    """What Netwatch scripts changed, and the last status of each Netwatch entry."""

    overlay: dict[int, tuple[bool, int]] = field(default_factory=dict)  # disabled, distance
    status: dict[int, bool] = field(default_factory=dict)

    def clone(self) -> State:
        return copy.deepcopy(self)


class Evaluation:
    """Route activity and selection for one scenario and one route state."""

    def __init__(
        self,
        export: Export,
        scenario: Scenario,
        overlay: Mapping[int, tuple[bool, int]] | None = None,
        *,
        checks: bool = True,
    ) -> None:
        self.export = export
        self.scenario = scenario
        self.checks = checks
        self.bits = 32 if export.family == 4 else 128
        routes = export.routes
        overlay = overlay or {}
        self.disabled = [overlay.get(i, (r.disabled, r.distance))[0] for i, r in enumerate(routes)]
        self.distance = [overlay.get(i, (r.disabled, r.distance))[1] for i, r in enumerate(routes)]
        self.connected = [(a.address.network, a.interface) for a in export.addresses]
        self.index: dict[str, dict[int, dict[int, list[int]]]] = {}
        self.eff_ts: dict[IPAddress, int] = {}
        for i, r in enumerate(routes):
            if self.disabled[i]:
                continue
            by_len = self.index.setdefault(r.table, {}).setdefault(r.dst.prefixlen, {})
            by_len.setdefault(int(r.dst.network_address), []).append(i)
            for g in r.gateways:
                if g.address is not None:
                    ts = self.eff_ts.get(g.address, 255)
                    self.eff_ts[g.address] = min(ts, r.target_scope)
        for bucket in self.index.values():
            for by_net in bucket.values():
                for lst in by_net.values():
                    lst.sort(
                        key=lambda j: (
                            self.distance[j],
                            routes[j].origin != "static",
                            routes[j].line,
                        )
                    )
        self._usable: dict[int, tuple[tuple[Gateway, Hop], ...]] = {}
        self._on_link: dict[IPAddress, bool] = {}
        self._carried: dict[str, bool] = {}
        self._stack: set[int] = set()
        self._recursive_intent = {
            g.address
            for r in routes
            if r.target_scope > CONNECTED_SCOPE
            for g in r.gateways
            if g.address is not None
        }

    # ---------------------------------------------------------------- resolution

    def usable(self, i: int) -> tuple[tuple[Gateway, Hop], ...]:
        """Gateways of route ``i`` that resolve and pass its check, with their hops."""
        if i in self._usable:
            return self._usable[i]
        if i in self._stack or self.disabled[i] or len(self._stack) >= MAX_RESOLVE_DEPTH:
            return ()  # a route cannot be resolved through itself
        self._stack.add(i)
        r = self.export.routes[i]
        out: list[tuple[Gateway, Hop]] = []
        for g in r.gateways:
            hop = self.resolve(g, i)
            if hop is not None and (not self.checks or self.check_ok(r, g, hop)):
                out.append((g, hop))
        self._stack.discard(i)
        self._usable[i] = tuple(out)
        return self._usable[i]

    def connected_iface(self, addr: IPAddress) -> str | None:
        best: tuple[int, str] | None = None
        for net, iface in self.connected:
            if addr in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, iface)
        return best[1] if best else None

    def assumed_on_link(self, addr: IPAddress) -> bool:
        """A gateway the export cannot place: taken as directly connected in ``main``.

        DHCP and PPP clients give interfaces addresses that ``/export`` does not
        show, so their gateways are in no known subnet; the connected route such a
        client adds is in ``main``, whatever other tables hold. Only gateways that
        no route of ``main`` covers, and that no route treats as recursive
        (target-scope above 10), count.
        """
        ex = self.export
        if ex.addresses and not ex.dynamic_addresses:
            return False
        if addr not in self._on_link:
            self._on_link[addr] = addr not in self._recursive_intent and not any(
                plen and by_net.get(int(addr) & _mask(plen, self.bits))
                for plen, by_net in self.index.get("main", {}).items()
            )
        return self._on_link[addr]

    def resolve(self, g: Gateway, i: int) -> Hop | None:
        r = self.export.routes[i]
        if g.address is None:
            if g.text in self.export.peer_links and g.text in self.scenario.down:
                return None  # the session or link is down with its peer
            if g.text in self.export.tunnels and not self.carried(g.text):
                return None
            return Hop(g.text, g.interface)
        if g.interface is not None:
            # Every uplink's IPv6 router may be fe80::1: a link-local hop is its interface's.
            ll = g.address.version == 6 and g.address.is_link_local
            key = f"{g.address}%{g.interface}" if ll else str(g.address)
            return Hop(key, g.interface)
        ts = self.eff_ts.get(g.address, r.target_scope)
        if ts >= CONNECTED_SCOPE:
            iface = self.connected_iface(g.address)
            if iface is not None:
                return Hop(str(g.address), iface)
        for t in _resolving_tables(g, r):
            if t == "main" and self.assumed_on_link(g.address):
                return Hop(str(g.address), None)
            hop = self._lookup(t, g.address, ts, i)
            if hop is not None:
                return hop
        return None

    def _lookup(self, table: str, addr: IPAddress, max_scope: int, exclude: int) -> Hop | None:
        by_len = self.index.get(table, {})
        for plen in range(self.bits, -1, -1):
            cands = by_len.get(plen, {}).get(int(addr) & _mask(plen, self.bits))
            for j in cands or ():
                c = self.export.routes[j]
                if j == exclude or c.scope > max_scope or c.kind != "unicast":
                    continue
                if any(g.address == addr for g in c.gateways):
                    continue  # resolving a gateway through a route via itself
                u = self.usable(j)
                if u:
                    return u[0][1]
        return None

    def candidates(self, g: Gateway, i: int) -> list[int]:
        """Routes that may ever resolve gateway ``g`` of route ``i`` (any state)."""
        r = self.export.routes[i]
        if g.address is None:
            return []
        ts = self.eff_ts.get(g.address, r.target_scope)
        out: list[int] = []
        for t in _resolving_tables(g, r):
            by_len = self.index.get(t, {})
            for plen in range(self.bits, -1, -1):
                for j in by_len.get(plen, {}).get(int(g.address) & _mask(plen, self.bits)) or ():
                    c = self.export.routes[j]
                    if j == i or c.scope > ts or c.kind != "unicast":
                        continue
                    if any(x.address == g.address for x in c.gateways):
                        continue
                    out.append(j)
        return out

    def is_recursive(self, g: Gateway, i: int) -> bool:
        """Whether gateway ``g`` of route ``i`` needs a recursive lookup."""
        if g.address is None or g.interface is not None:
            return False
        ts = self.eff_ts.get(g.address, self.export.routes[i].target_scope)
        if ts >= CONNECTED_SCOPE and self.connected_iface(g.address) is not None:
            return False
        tables = _resolving_tables(g, self.export.routes[i])
        return not ("main" in tables and self.assumed_on_link(g.address))

    # ---------------------------------------------------------------- reachability

    def check_ok(self, r: Route, g: Gateway, hop: Hop) -> bool:
        if r.check is None:
            return True
        if r.check == "arp":
            return hop.key not in self.scenario.down
        return self.answers(g.text, hop)

    def answers(self, target: str, hop: Hop) -> bool:
        """Whether a ping to ``target`` sent out through ``hop`` gets a reply."""
        sc = self.scenario
        if hop.key in sc.down:
            return False
        if hop.key in (target, f"{target}%{hop.interface}"):
            return True  # the gateway itself answers even with nothing behind it
        try:
            addr: IPAddress | None = ip_address(target)
        except ValueError:
            addr = None
        if addr is not None and self.connected_iface(addr) is not None:
            return True
        if hop.key in sc.upstream_dead:
            return False
        return target not in sc.silent

    def forward(self, addr: IPAddress | None, avoid: frozenset[str] = frozenset()) -> Hop | None:
        """Where ``main`` sends a packet to ``addr`` (longest prefix, then distance);
        ``None`` stands for any internet address. Routes through ``avoid`` are skipped."""
        conn = None
        for net, iface in self.connected:
            if addr is not None and addr in net and (conn is None or net.prefixlen > conn[0]):
                conn = (net.prefixlen, iface)
        by_len = self.index.get("main", {})
        for plen in range(self.bits if addr is not None else 0, -1, -1):
            if conn is not None and conn[0] >= plen:
                return Hop(str(addr), conn[1])
            key = int(addr) & _mask(plen, self.bits) if addr is not None else 0
            for j in by_len.get(plen, {}).get(key) or ():
                r = self.export.routes[j]
                if r.kind != "unicast":
                    return None
                if any(g.address is None and g.text in avoid for g in r.gateways):
                    continue
                u = self.usable(j)
                if u:
                    return u[0][1]
        return None

    def carried(self, tunnel: str) -> bool:
        """Whether a tunnel's server is reachable: through the uplink ``main`` uses
        for its connect-to address, other tunnels aside (any uplink for a name)."""
        if tunnel not in self._carried:
            self._carried[tunnel] = False  # a tunnel cannot carry itself
            try:
                server: IPAddress | None = ip_address(self.export.tunnels[tunnel])
            except ValueError:
                server = None
            hop = self.forward(server, frozenset(self.export.tunnels))
            self._carried[tunnel] = hop is not None and not self.scenario.faulty(hop.key)
        return self._carried[tunnel]

    def host_up(self, addr: IPAddress) -> bool:
        hop = self.forward(addr)
        return hop is not None and self.answers(str(addr), hop)

    # ---------------------------------------------------------------- selection

    def select(self, table: str) -> Choice | None:
        members: list[tuple[int, tuple[tuple[Gateway, Hop], ...]]] = []
        for j in self.index.get(table, {}).get(0, {}).get(0, ()):
            r = self.export.routes[j]
            if members and (
                self.export.version != 7 or self.distance[j] != self.distance[members[0][0]]
            ):
                break
            if r.kind != "unicast":
                if members:
                    break
                return Choice(r, r.kind, None, None, members=(r,))
            u = self.usable(j)
            if u:
                members.append((j, u))
        if not members:
            return None
        first, u = members[0]
        return Choice(
            self.export.routes[first],
            ",".join(g.text for g, _ in u),
            ",".join(dict.fromkeys(h.key for _, h in u)),
            ",".join(dict.fromkeys(h.interface for _, h in u if h.interface)) or None,
            hops=tuple(dict.fromkeys(h.key for _, m in members for _, h in m)),
            members=tuple(self.export.routes[j] for j, _ in members),
        )

    def defaults(self, table: str) -> list[int]:
        """Enabled default routes of a table, best first."""
        return list(self.index.get(table, {}).get(0, {}).get(0, ()))

    def tables(self) -> dict[str, Choice | None]:
        main = self.select("main")
        out: dict[str, Choice | None] = {"main": main}
        for name in table_names(self.export):
            if name == "main":
                continue
            own = self.select(name)
            if own is None and main is not None and no_fallback_rule(self.export, name) is None:
                own = replace(main, fallback=True)
            out[name] = own
        return out


def _resolving_tables(g: Gateway, r: Route) -> tuple[str, ...]:
    """The tables a gateway of route ``r`` is looked up in: ``x@table`` only in that
    one, else the route's own table, then ``main``."""
    return (g.table,) if g.table else tuple(dict.fromkeys((r.table, "main")))


def _mask(plen: int, bits: int) -> int:
    full = (1 << bits) - 1
    return (full << (bits - plen)) & full if plen else 0


def table_names(export: Export) -> list[str]:
    """main, then every other table the export defines or marks (an enabled mangle
    rule), in file order."""
    seen: list[tuple[int, str]] = [(0, "main")]
    seen += [(t.line, t.name) for t in export.tables if t.name]
    seen += [(r.line, r.table) for r in export.routes]
    seen += [
        (m.line, m.new_routing_mark) for m in export.mangle if m.new_routing_mark and not m.disabled
    ]
    seen.sort(key=lambda p: p[0])
    return list(dict.fromkeys(name for _, name in seen))


def no_fallback_rule(export: Export, table: str) -> int | None:
    """Line of a routing rule that keeps marked traffic from falling back to main."""
    for rule in export.rules:
        if (
            not rule.disabled
            and rule.routing_mark == table
            and rule.action in NO_FALLBACK_ACTIONS
            and not rule.other_matchers
        ):
            return rule.line
    return None


# --------------------------------------------------------------------------- netwatch


@dataclass(frozen=True)
class Effect:
    """One change a Netwatch script makes to routes, clients or interfaces."""

    section: str  # "ip route", a client section, or "interface ..."
    selector: Selector | None  # ``[find ...]``; None: by name
    names: frozenset[str]
    disabled: bool | None
    distance: int | None


def _effect(c: Command) -> Effect | None:
    names = frozenset(f for f in c.flags if not f.startswith("!"))
    if c.verb not in ("enable", "disable", "set") or (c.selector is None and not names):
        return None
    if c.path != "ip route" and c.path not in CLIENTS and not c.path.startswith("interface"):
        return None
    disabled = None if c.verb == "set" else c.verb == "disable"
    dist_key = "distance" if c.path == "ip route" else "default-route-distance"
    if c.verb == "set":
        dis = yes_no(c.args.get("disabled", ""))
        add = yes_no(c.args.get("add-default-route", ""))
        disabled = dis if dis is not None else (None if add is None else not add)
    dist = c.args.get(dist_key)
    distance = int(dist) if dist is not None and dist.isdigit() and int(dist) <= 255 else None
    if disabled is None and distance is None:
        return None
    return Effect(c.path, c.selector, names, disabled, distance)


def script_effects(export: Export, script: str, depth: int = 0) -> list[Effect]:
    """The changes a RouterOS script makes (what this reader understands)."""
    if depth > MAX_SCRIPT_DEPTH:
        return []
    name = script.strip()
    if name in export.scripts and " " not in name:
        return script_effects(export, export.scripts[name], depth + 1)
    out: list[Effect] = []
    try:
        cmds = list(commands(script, "<script>"))
    except RouterOSError:
        return []  # RouterOS refuses the whole script; it changes nothing
    for c in cmds:
        if not isinstance(c, Command) or c.note is not None:
            continue
        if c.path == "system script" and c.verb == "run":
            names = set(c.flags) | ({c.args["number"]} if "number" in c.args else set())
            if c.selector is not None:
                names |= {n for n in export.scripts if matches(c.selector, {"name": n})}
            for n in sorted(names):
                if n in export.scripts:
                    out += script_effects(export, export.scripts[n], depth + 1)
        elif (effect := _effect(c)) is not None:
            out.append(effect)
    return out


def scripted_routes(export: Export) -> dict[int, int]:
    """Route index -> line of the first Netwatch entry whose scripts change it."""
    out: dict[int, int] = {}
    for nw in export.netwatch:
        if nw.disabled:
            continue
        for effect in script_effects(export, nw.up_script) + script_effects(export, nw.down_script):
            for i in _selected(export, effect):
                out.setdefault(i, nw.line)
    return out


def _picks(effect: Effect, props: Mapping[str, str]) -> bool:
    if effect.selector is not None:
        return matches(effect.selector, props)
    return bool(item_names(props) & effect.names)


def _selected(export: Export, effect: Effect) -> Iterable[int]:
    for i, r in enumerate(export.routes):
        if effect.section == "ip route":
            hit = r.origin == "static" and _picks(effect, r.raw)
        elif effect.section in CLIENTS:
            hit = r.origin == effect.section and _picks(effect, r.raw)
        else:  # an interface: the routes through it
            hit = any(
                g.interface is not None and _picks(effect, {"name": g.interface})
                for g in r.gateways
            )
        if hit:
            yield i


def _apply(export: Export, state: State, script: str) -> None:
    for effect in script_effects(export, script):
        for i in _selected(export, effect):
            r = export.routes[i]
            disabled, distance = state.overlay.get(i, (r.disabled, r.distance))
            if effect.disabled is not None:
                disabled = effect.disabled
            if effect.distance is not None:
                distance = effect.distance
            state.overlay[i] = (disabled, distance)


def settle(export: Export, scenario: Scenario, state: State) -> tuple[Evaluation, bool]:
    """Run Netwatch until no status changes; False if it never settles (flapping).

    ``state`` is updated in place: scripts change the configuration for good, which
    is exactly what can keep a failover from failing back.
    """
    for _ in range(MAX_SETTLE_ROUNDS):
        ev = Evaluation(export, scenario, state.overlay)
        changed: list[tuple[int, bool]] = []
        for k, nw in enumerate(export.netwatch):
            if nw.disabled:
                continue
            up = ev.host_up(nw.host)
            if state.status.get(k) != up:
                changed.append((k, up))
        if not changed:
            return ev, True
        for k, up in changed:
            state.status[k] = up
            nw = export.netwatch[k]
            _apply(export, state, nw.up_script if up else nw.down_script)
    return Evaluation(export, scenario, state.overlay), False
