"""Check a RouterOS export: who carries default traffic in every failure, and the
classic failover mistakes.

Scenarios: ``baseline``; ``gateway-down:<gw>`` and ``upstream-dead:<gw>`` for every
uplink first hop; ``target-silent:<addr>`` for every probe target (an address used
as a recursive gateway or watched by Netwatch). Warning codes are a contract:
``recursive-target-leak``, ``no-check``, ``shared-target``,
``no-masquerade``, ``table-no-fallback``, ``netwatch-thr-avg``, ``no-failback``,
``wan-open``; this module adds ``unresolvable-gateway``, ``gateway-only-check``,
``netwatch-flap`` and ``mark-leak`` (judged in a scenario of its own, every uplink of a
marked table down at once, which the report does not list).

An export with an IPv6 side is simulated twice over the same scenarios: its IPv4
routes, and :func:`ipv6_view` (its ``/ipv6`` menus) by the same simulator, whose
tables are each scenario's ``tables6`` and whose ``/ipv6 firewall mangle`` routing
marks (their tables' ``/ipv6 route ... routing-table=`` routes, the routing rules
shared: v7's ``/routing rule`` has no family) are its ``marks6``. Every warning
above applies to both;
``ipv6-ra-default`` and ``ipv6-no-failover`` say where IPv6 cannot follow IPv4's
failover.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from ipaddress import IPv6Network, ip_network
from pathlib import Path

from wanwatch.config import MONITOR_FIELDS, format_duration
from wanwatch.errors import RouterOSError
from wanwatch.routeros.build import LEARNED
from wanwatch.routeros.filter import verdict
from wanwatch.routeros.model import Export, InterfaceSet, Route
from wanwatch.routeros.parse import parse_file, parse_text
from wanwatch.routeros.report import Finding, Mark, MarkPath, Report, ScenarioResult, describe
from wanwatch.routeros.simulate import (
    BASELINE,
    Choice,
    Evaluation,
    Hop,
    Scenario,
    State,
    no_fallback_rule,
    scripted_routes,
    settle,
    table_names,
)

MAX_SCENARIOS = 256

# Netwatch type=icmp marks a host down when the average RTT of a test exceeds
# thr-avg (RouterOS default 100ms; Netwatch manual, probe options). A loaded LTE link
# routinely averages several hundred ms, so wanwatch's own rule for an LTE primary -
# the monitor default degraded_rtt, declared once in config.MONITOR_FIELDS - is the
# floor below which a Netwatch entry turns a slow uplink into a dead one.
NETWATCH_THR_AVG_DEFAULT = 0.1
LTE_RTT_FLOOR = float(MONITOR_FIELDS["degraded_rtt"][0])
# Source NAT actions (netmap: a prefix to a prefix, as IPv6's NAT66 uses it).
_SRCNAT = frozenset({"masquerade", "src-nat", "netmap"})
_ULA = IPv6Network("fc00::/7")  # RFC 4193: a LAN of these needs NAT66 out of an uplink


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class _Topology:
    uplinks: tuple[str, ...]  # first-hop keys, file order
    targets: tuple[str, ...]  # probe target addresses, file order
    uplink_iface: dict[str, tuple[str | None, int]]  # first hop -> interface, first line


def _discover(export: Export) -> _Topology:
    ev = Evaluation(export, BASELINE, checks=False)
    # A route a Netwatch script may enable counts although the export disables it.
    scripted = scripted_routes(export)
    ups: dict[str, tuple[str | None, int]] = {}
    targets: dict[str, int] = {}
    order = sorted(range(len(export.routes)), key=lambda i: export.routes[i].line)
    for i in order:
        r = export.routes[i]
        if ev.disabled[i] or r.kind != "unicast":
            continue
        for g in r.gateways:
            if g.address is not None and ev.is_recursive(g, i):
                targets.setdefault(str(g.address), r.line)
    for i in order:
        r = export.routes[i]
        if (ev.disabled[i] and i not in scripted) or r.kind != "unicast":
            continue
        pins_target = r.dst.prefixlen == 32 and str(r.dst.network_address) in targets
        if not (r.is_default or pins_target):
            continue
        for g in r.gateways:
            hop = ev.resolve(g, i)
            if hop is not None and hop.key not in ups:
                ups[hop.key] = (hop.interface, r.line)
    for nw in export.netwatch:
        if not nw.disabled and str(nw.host) not in ups:
            targets.setdefault(str(nw.host), nw.line)
    return _Topology(
        tuple(ups),
        tuple(sorted(targets, key=lambda t: targets[t])),
        ups,
    )


def scenarios_for(export: Export) -> list[Scenario]:
    """The failure scenarios verify simulates for an export, baseline first."""
    return _scenarios(_discover(export))


def _scenarios(topo: _Topology, topo6: _Topology | None = None) -> list[Scenario]:
    """IPv4's scenarios; with an IPv6 side, an uplink's failure takes the IPv6 first
    hops on its interface with it, and then come IPv6's own: an IPv6 first hop alone
    (the LTE failure that leaves IPv4 up) and each IPv6 target silent."""
    six = topo6.uplink_iface if topo6 is not None else {}

    def with6(k: str) -> frozenset[str]:
        iface = topo.uplink_iface[k][0] or k
        return frozenset({k} | {k6 for k6, (i6, _) in six.items() if iface in (i6, k6)})

    out = [BASELINE]
    out += [Scenario(f"gateway-down:{k}", down=with6(k)) for k in topo.uplinks]
    out += [Scenario(f"upstream-dead:{k}", upstream_dead=with6(k)) for k in topo.uplinks]
    out += [Scenario(f"target-silent:{t}", silent=frozenset({t})) for t in topo.targets]
    if topo6 is not None:
        own = [k for k in topo6.uplinks if k != LEARNED and k not in topo.uplinks]
        out += [Scenario(f"gateway-down:{k}", down=frozenset({k})) for k in own]
        out += [Scenario(f"upstream-dead:{k}", upstream_dead=frozenset({k})) for k in own]
        out += [Scenario(f"target-silent:{t}", silent=frozenset({t})) for t in topo6.targets]
    return out


def ipv6_view(export: Export) -> Export:
    """The export's IPv6 side as an export of its own, for the same simulator: its
    addresses, routes (the RA-learned default among them), Netwatch, filter, NAT and
    mangle, and the routing rules both families share. Its tables are those its
    routes and marks name (``/routing table`` entries alone may be IPv4's)."""
    return replace(
        export,
        family=6,
        addresses=export.addresses6,
        routes=export.routes6,
        netwatch=export.netwatch6,
        filters=export.filters6,
        nat=export.nat6,
        tables=(),
        mangle=export.mangle6,
        tunnels={},
        dynamic_addresses=export.dynamic_addresses or export.ra_line is not None,
    )


# --------------------------------------------------------------------------- analysis


class _Findings:
    def __init__(self) -> None:
        self.items: dict[tuple[str, int, str], Finding] = {}
        self.keys: set[tuple[str, int]] = set()

    def add(self, code: str, line: int, message: str) -> None:
        if (code, line) in self.keys:
            return  # one finding per code and line: the first says it
        self.keys.add((code, line))
        self.items[(code, line, message)] = Finding(code, line, message)

    def has(self, code: str, line: int) -> bool:
        return (code, line) in self.keys

    def sorted(self) -> tuple[Finding, ...]:
        return tuple(sorted(self.items.values(), key=lambda f: (f.line, f.code)))


def verify_export(export: Export) -> Report:
    """Simulate every scenario, for IPv4 and (when the export has one) the IPv6 side,
    and collect warnings."""
    topo = _discover(export)
    six = ipv6_view(export) if export.routes6 else None
    topo6 = _discover(six) if six is not None else None
    scenarios = _scenarios(topo, topo6)
    if len(scenarios) > MAX_SCENARIOS:
        raise RouterOSError(
            f"{export.source}:1: {len(scenarios)} failure scenarios (more than "
            f"{MAX_SCENARIOS} gateways and probe targets): too many to simulate"
        )
    report = _verify(export, topo, scenarios)
    if six is None or topo6 is None:
        return report
    report6 = _verify(six, topo6, scenarios)
    found = _Findings()
    for f in report.warnings + report6.warnings:
        if not (f.code == "no-check" and f.line == export.ra_line):  # ipv6-ra-default's
            found.add(f.code, f.line, f.message)
    _ipv6_failover(export, six, found, topo, report6.scenarios[0].tables)
    return replace(
        report,
        scenarios=tuple(
            replace(r4, tables6=r6.tables, marks6=r6.marks)
            for r4, r6 in zip(report.scenarios, report6.scenarios, strict=True)
        ),
        warnings=found.sorted(),
        marks6=report6.marks,
    )


def _ipv6_failover(
    export: Export,
    six: Export,
    found: _Findings,
    topo: _Topology,
    base: dict[str, Choice | None],
) -> None:
    """ipv6-ra-default and ipv6-no-failover: where IPv4 fails over and IPv6 cannot."""
    if export.ra_line is not None:
        found.add(
            "ipv6-ra-default",
            export.ra_line,
            "IPv6 default routes are learned from router advertisements: RouterOS gives "
            "them no check-gateway, so a silent blackhole (an LTE modem without signal) "
            "keeps IPv6 on the dead uplink until the advertised router lifetime runs out; "
            "add checked recursive /ipv6 routes via probe targets pinned to each uplink",
        )
    if len(topo.uplinks) < 2:
        return  # IPv4 has nothing to fail over to either
    ev = Evaluation(six, BASELINE, checks=False)
    defaults = ev.defaults("main")
    hops = {h.key for j in defaults if (h := _hop_of(ev, j)) is not None}
    checked = [j for j in defaults if six.routes[j].check is not None]
    if len(hops) > 1 and checked:
        return
    main = base.get("main")
    lines = [main.route.line] if main is not None else [six.routes[j].line for j in defaults]
    line = (lines or [export.ra_line or 1])[0]
    if not defaults:
        why = "has no IPv6 default route at all"
    elif len(hops) <= 1:
        only = next(iter(hops), "nothing")
        via = "from router advertisements" if only == LEARNED else f"through {only}"
        why = f"has its IPv6 default routes {via} only"
    else:
        why = "has several IPv6 default routes but none with check-gateway"
    found.add(
        "ipv6-no-failover",
        line,
        f"the export fails IPv4 over between {len(topo.uplinks)} uplinks but {why}: when "
        "that uplink fails, IPv6 does not move (clients that prefer IPv6, RFC 6724, lose "
        "their connections); add a checked IPv6 default via each uplink",
    )


def _verify(export: Export, topo: _Topology, scenarios: list[Scenario]) -> Report:
    """One family's simulation of ``scenarios`` and its warnings."""
    found = _Findings()
    base_state = State()
    base_ev, ok = settle(export, BASELINE, base_state)
    if not ok:
        _flap(export, found, BASELINE)
    base_tables = base_ev.tables()
    marks = _marks(export, topo)
    results = [ScenarioResult(BASELINE.id, base_tables, _mark_paths(export, marks, base_tables))]
    scripted = scripted_routes(export)
    check_ev = Evaluation(export, BASELINE, checks=False)
    # Structural checks first: when a scenario shows the same mistake again, the
    # finding keeps the structural wording.
    _leaks(export, found, check_ev)
    _shared(export, found, check_ev, topo)
    _no_check(export, found, base_ev, base_tables, scripted)
    if len(topo.uplinks) > 1:  # with one uplink there is nothing to fall back to
        _table_fallback(export, found, check_ev, topo)
        _mark_leaks(export, found, check_ev, topo)
    _masquerade(export, found, topo)
    _wan_open(export, found, topo)
    _thr_avg(export, found, base_ev, topo)
    for sc in scenarios[1:]:
        state = base_state.clone()
        ev, ok = settle(export, sc, state)
        tables = ev.tables()
        results.append(ScenarioResult(sc.id, tables, _mark_paths(export, marks, tables)))
        if not ok:
            # The state a flapping Netwatch stops in is arbitrary: say so, judge nothing.
            _flap(export, found, sc)
            continue
        _blackholes(export, found=found, sc=sc, ev=ev, tables=tables, scripted=scripted)
        if state.overlay != base_state.overlay:
            back_ev, _ = settle(export, BASELINE, state)
            _failback(
                export,
                found=found,
                sc=sc,
                base=base_tables,
                after=back_ev.tables(),
                state=state,
                base_state=base_state,
            )
    return Report(
        export.source,
        export.version,
        tuple(results),
        found.sorted(),
        export.skipped_lines,
        export.notes,
        tuple(marks),
    )


def mark_paths(export: Export, scenario: Scenario) -> dict[str, MarkPath]:
    """Each mangle-routed mark's path in any scenario (several uplinks down at once, as
    ``wanwatch plan --matrix`` has them), Netwatch settled from a fresh start."""
    ev, _ = settle(export, scenario, State())
    return _mark_paths(export, _marks(export, _discover(export)), ev.tables())


def verify_text(text: str, source: str = "<memory>") -> Report:
    return verify_export(parse_text(text, source))


def verify_file(path: str | Path) -> Report:
    return verify_export(parse_file(path))


def _hop_of(ev: Evaluation, i: int) -> Hop | None:
    for g in ev.export.routes[i].gateways:
        hop = ev.resolve(g, i)
        if hop is not None:
            return hop
    return None


def _leaks(export: Export, found: _Findings, ev: Evaluation) -> None:
    """recursive-target-leak / unresolvable-gateway, from the route structure."""
    for i, r in enumerate(export.routes):
        if ev.disabled[i] or r.kind != "unicast":
            continue
        for g in r.gateways:
            if g.address is None or not ev.is_recursive(g, i):
                continue
            ts = ev.eff_ts.get(g.address, r.target_scope)
            cands = ev.candidates(g, i)
            if not cands:
                found.add(
                    "unresolvable-gateway",
                    r.line,
                    f"gateway {g.text} can never be resolved: no route with scope <= "
                    f"target-scope {ts} covers it (pin it with a scope=10 host route), "
                    "so this route is never active",
                )
                continue
            hops: dict[str, int] = {}
            for j in cands:
                hop = _hop_of(ev, j)
                if hop is not None:
                    hops.setdefault(hop.key, j)
            target = g.address
            pins = [j for j in cands if export.routes[j].dst.prefixlen > 0]
            if not pins:
                via = ", ".join(f"{k} (line {export.routes[j].line})" for k, j in hops.items())
                found.add(
                    "recursive-target-leak",
                    r.line,
                    f"recursive gateway {g.text} has no host route with scope <= target-scope "
                    f"{ts}; it resolves through default route(s) via {via or 'nothing'}, so "
                    "check-gateway tests whichever uplink is up, not this one",
                )
                continue
            pin_hop = _hop_of(ev, pins[0])
            # Wider routes (defaults above all) that reach the target through another
            # uplink. A second pin of the same host is a shared-target, not a leak.
            others = []
            for j in cands:
                c = export.routes[j]
                hop = _hop_of(ev, j)
                if c.dst.prefixlen == 32 and c.dst.network_address == target:
                    continue
                if hop is not None and (pin_hop is None or hop.key != pin_hop.key):
                    others.append(f"{hop.key} (line {c.line}, scope {c.scope})")
            if others:
                found.add(
                    "recursive-target-leak",
                    r.line,
                    f"target-scope={ts} lets {g.text} resolve through {', '.join(others)} "
                    f"whenever its host route (line {export.routes[pins[0]].line}) is "
                    "inactive: check-gateway then pings it through the wrong uplink; use "
                    "scope=10 on the host route and target-scope=10 or 11 here",
                )


def _shared(export: Export, found: _Findings, ev: Evaluation, topo: _Topology) -> None:
    """shared-target: one probe target used for two uplinks."""
    pins: dict[tuple[str, str], tuple[str, int]] = {}
    for i, r in enumerate(export.routes):
        if ev.disabled[i] or r.kind != "unicast" or r.dst.prefixlen != 32:
            continue
        target = str(r.dst.network_address)
        if target not in topo.targets:
            continue
        hop = _hop_of(ev, i)
        if hop is None:
            continue
        prev = pins.get((r.table, target))
        if prev is None:
            pins[(r.table, target)] = (hop.key, r.line)
        elif prev[0] != hop.key:
            found.add(
                "shared-target",
                r.line,
                f"probe target {target} is pinned to {prev[0]} (line {prev[1]}) and to "
                f"{hop.key} here: only one pin is active, so the other uplink's checks "
                "ping through the wrong link",
            )
    for table in table_names(export):
        users: dict[str, int] = {}
        for i in ev.defaults(table):
            r = export.routes[i]
            for g in r.gateways:
                if g.address is None or not ev.is_recursive(g, i):
                    continue
                key = str(g.address)
                if key in users and users[key] != r.line:
                    found.add(
                        "shared-target",
                        max(r.line, users[key]),
                        f"default routes at lines {min(r.line, users[key])} and "
                        f"{max(r.line, users[key])} both use probe target {key}: a target "
                        "reaches one uplink only, so both routes live and die together",
                    )
                users.setdefault(key, r.line)


def _checked(export: Export, ev: Evaluation, i: int, scripted: dict[int, int]) -> bool:
    r = export.routes[i]
    if r.check is not None or i in scripted:
        return True
    # A recursive route whose pin checks its gateway is checked at one remove.
    for g in r.gateways:
        if g.address is not None and ev.is_recursive(g, i):
            for j in ev.candidates(g, i):
                if export.routes[j].check is not None or j in scripted:
                    return True
    return False


def _unchecked(route: Route) -> str:
    """Why a route is unchecked, as the rest of a sentence about it."""
    written = (route.raw.get("check-gateway") or "").lower()
    if route.check is None and written not in ("", "none"):
        # The reader drops a check on a route whose gateways have no address.
        return (
            f"has check-gateway={written}, but a check on an interface gateway has nothing to ping"
        )
    return "has no check-gateway"


def _no_check(
    export: Export,
    found: _Findings,
    ev: Evaluation,
    tables: dict[str, Choice | None],
    scripted: dict[int, int],
) -> None:
    for table, choice in tables.items():
        if choice is None or choice.fallback or choice.route.kind != "unicast":
            continue
        if len(ev.defaults(table)) < 2:
            continue  # nothing to fail over to
        i = export.routes.index(choice.route)
        if not _checked(export, ev, i, scripted):
            found.add(
                "no-check",
                choice.route.line,
                f"the primary default route of table {table} (gateway {choice.gateway}) "
                f"{_unchecked(choice.route)} and no Netwatch script manages it: it stays "
                "active when its uplink dies, so the backup is never used",
            )


def _blackholes(
    export: Export,
    *,
    found: _Findings,
    sc: Scenario,
    ev: Evaluation,
    tables: dict[str, Choice | None],
    scripted: dict[int, int],
) -> None:
    """A table still sending into a dead uplink while it has a route via another one."""
    for table, choice in tables.items():
        if choice is None or choice.fallback or not choice.hops:
            continue
        for route in choice.members:
            i = export.routes.index(route)
            hop = _hop_of(ev, i)
            if hop is None or not sc.faulty(hop.key):
                continue
            alternatives = [
                j
                for j in ev.defaults(table)
                if export.routes[j] is not route and (h := _hop_of(ev, j)) is not None
                if not sc.faulty(h.key)
            ]
            if alternatives:
                _dead_end(export, found, sc, table, route, hop.key, alternatives[0], scripted, ev)


def _dead_end(  # noqa: PLR0917 - one finding's facts, named at the call
    export: Export,
    found: _Findings,
    sc: Scenario,
    table: str,
    route: Route,
    nexthop: str,
    alternative: int,
    scripted: dict[int, int],
    ev: Evaluation,
) -> None:
    """no-check or gateway-only-check for an active route into a dead uplink."""
    i = export.routes.index(route)
    gateway = route.gateway_text
    if not _checked(export, ev, i, scripted):
        found.add(
            "no-check",
            route.line,
            f"in {sc.id} table {table} still sends into {nexthop} (gateway "
            f"{gateway}, which {_unchecked(route)}) although line "
            f"{export.routes[alternative].line} could carry it",
        )
    else:
        found.add(
            "gateway-only-check",
            route.line,
            f"in {sc.id} table {table} still sends into {nexthop}: the check "
            f"pings only the gateway {gateway}, which answers while nothing behind "
            "it does (an LTE modem without signal); check a target beyond it with a "
            "recursive route instead",
        )


def _failback(
    export: Export,
    *,
    found: _Findings,
    sc: Scenario,
    base: dict[str, Choice | None],
    after: dict[str, Choice | None],
    state: State,
    base_state: State,
) -> None:
    for table, choice in base.items():
        now = after.get(table)
        if (choice.key() if choice else None) == (now.key() if now else None):
            continue
        changed = sorted(
            export.routes[i].line
            for i, v in state.overlay.items()
            if base_state.overlay.get(i) != v
        )
        nw_lines = [nw.line for nw in export.netwatch if not nw.disabled]
        line = nw_lines[0] if nw_lines else (changed[0] if changed else 1)
        found.add(
            "no-failback",
            line,
            f"after {sc.id} recovers, table {table} stays on {describe(now)} instead of "
            f"{describe(choice)}: a Netwatch script changed route(s) at line(s) "
            f"{', '.join(map(str, changed)) or '?'} and nothing changes them back "
            "(its host stays down, or its up-script does not undo the down-script)",
        )
        return


def _flap(export: Export, found: _Findings, sc: Scenario) -> None:
    lines = [nw.line for nw in export.netwatch if not nw.disabled]
    found.add(
        "netwatch-flap",
        lines[0] if lines else 1,
        f"in {sc.id} Netwatch never settles: its scripts change the route its own host is "
        "reached through, so it goes down, up, down... Pin the host to its uplink with a "
        "scope=10 host route",
    )


def _mangle_routed(export: Export, topo: _Topology) -> dict[str, list[int]]:
    """Routing marks mangle gives LAN traffic -> the lines that set them: a mark-routing
    in prerouting that does not match on an uplink's in-interface (those only route
    replies of connections that came in on that uplink)."""
    uplinks = {iface for iface, _ in topo.uplink_iface.values() if iface}
    wan_lists = {
        name
        for name, members in export.interface_lists.items()
        if any(u in members for u in uplinks)
    }
    out: dict[str, list[int]] = {}
    for m in export.mangle:
        if m.disabled or not m.new_routing_mark or m.chain != "prerouting":
            continue
        if m.in_interface is not None and m.in_interface in uplinks:
            continue
        if m.in_interface_list is not None and m.in_interface_list in wan_lists:
            continue
        out.setdefault(m.new_routing_mark, []).append(m.line)
    return out


def _marks(export: Export, topo: _Topology) -> list[Mark]:
    return [
        Mark(name, tuple(lines), _explicit_rule(export, name))
        for name, lines in _mangle_routed(export, topo).items()
    ]


def _mark_paths(
    export: Export, marks: list[Mark], tables: dict[str, Choice | None]
) -> dict[str, MarkPath]:
    """Each mark's path from its table's choice (simulate.py's fallback rule)."""
    out = {}
    for m in marks:
        c = tables.get(m.name)
        block = no_fallback_rule(export, m.name)
        if c is not None:
            out[m.name] = MarkPath("main" if c.fallback else "table", c)
        elif block is not None:
            out[m.name] = MarkPath("blocked", None, block)
        else:
            out[m.name] = MarkPath("none", None)
    return out


def _lan_routed(export: Export, topo: _Topology) -> set[str]:
    """Tables that LAN traffic is routed into: by mangle (:func:`_mangle_routed`), or by
    a routing rule with a source or interface matcher that is not an uplink's."""
    uplinks = {iface for iface, _ in topo.uplink_iface.values() if iface}
    out = set(_mangle_routed(export, topo))
    for rule in export.rules:
        if rule.disabled or rule.action not in ("lookup", "lookup-only-in-table"):
            continue
        by_iface = rule.interface is not None and rule.interface not in uplinks
        by_src = rule.src_address is not None and _lan_source(export, rule.src_address, uplinks)
        if by_iface or by_src:
            out.add(rule.table)
    return out


def _lan_source(export: Export, src: str, uplinks: set[str]) -> bool:
    """Whether a rule's src-address covers a LAN subnet (not an uplink's own address)
    of the export's family (a shared routing rule's source is one family's)."""
    try:
        net = ip_network(src, strict=False)
    except ValueError:
        return False
    return net.version == export.family and any(
        a.interface not in uplinks and a.address.network.overlaps(net) for a in export.addresses
    )


def split_marks(export: Export) -> set[str]:
    """Routing marks of a PCC split: set by a mangle rule with a classifier, or from a
    connection mark one sets. Their tables share one LAN's traffic between uplinks."""
    live = [m for m in export.mangle if not m.disabled]
    pcc = {m.new_connection_mark for m in live if m.pcc and m.new_connection_mark}
    return {
        m.new_routing_mark
        for m in live
        if m.new_routing_mark and (m.pcc or m.connection_mark in pcc)
    }


def _table_fallback(export: Export, found: _Findings, ev: Evaluation, topo: _Topology) -> None:
    """table-no-fallback: a LAN-routed table with its defaults through one uplink (or
    none). Outside a PCC split, a routing rule for the mark says the one uplink is the
    point (wanwatch's ``when_down``): not flagged."""
    lan = _lan_routed(export, topo)
    split = split_marks(export)
    for table in table_names(export):
        if table == "main" or table not in lan:
            continue
        if table not in split and _explicit_rule(export, table) is not None:
            continue
        defaults = ev.defaults(table)
        hops: dict[str, int] = {}
        for j in defaults:
            r = export.routes[j]
            if r.kind != "unicast":
                hops.setdefault(r.kind, r.line)
                continue
            hop = _hop_of(ev, j)
            if hop is not None:
                hops.setdefault(hop.key, r.line)
        if len(hops) > 1:
            continue
        line = _table_line(export, table)
        rule = no_fallback_rule(export, table)
        if rule is not None:
            fate = f"are dropped (routing rule at line {rule} forbids the main table)"
        elif not defaults:
            fate = "use whatever main picks, so the table does nothing"
        else:
            fate = (
                "stay on it while its route answers, else fall back to the main table and "
                "lose the per-uplink split"
            )
        only = f"through {next(iter(hops))} only" if hops else "with no default route"
        found.add(
            "table-no-fallback",
            line,
            f"routing table {table} has its default route(s) {only}: when that uplink "
            f"fails, connections marked for it {fate}; add a fallback default route via "
            "another uplink with a higher distance inside the table"
            + (
                ""
                if table in split or rule is not None
                else f", or a routing rule routing-mark={table} table={table} "
                "action=lookup-only-in-table if it must never use another uplink"
            ),
        )


def _explicit_rule(export: Export, table: str) -> int | None:
    """Line of an enabled routing rule for the mark that says what happens without a
    route in its table: ``lookup`` (on to the next rules and main) or one that forbids
    main (``lookup-only-in-table``, ``drop``, ``unreachable``)."""
    for rule in export.rules:
        if not rule.disabled and rule.routing_mark == table and not rule.other_matchers:
            return rule.line
    return None


def _mark_leaks(export: Export, found: _Findings, ev: Evaluation, topo: _Topology) -> None:
    """mark-leak: traffic a mangle rule routes into a table falls back to ``main`` when
    every uplink of the table is dead, and leaves by an uplink the table never names
    (v6: "if route with specific routing mark is not found then main routing table is
    used"; v7 Policy Routing: unresolved marked traffic goes on to the rules and main).
    Judged in a scenario of its own: every first hop of the table down at once, so a
    table over two uplinks of three counts (one uplink only is table-no-fallback). A
    routing rule for the mark says what is meant, and is not second-guessed."""
    lan = _lan_routed(export, topo)
    # main's choice per set of dead first hops: tables that share uplinks share it
    mains: dict[frozenset[str], Choice | None] = {}
    for table in table_names(export):
        if table == "main" or table not in lan or _explicit_rule(export, table) is not None:
            continue
        line = _table_line(export, table)
        if found.has("table-no-fallback", line):
            continue
        hops = frozenset(h.key for j in ev.defaults(table) if (h := _hop_of(ev, j)) is not None)
        if not hops:
            continue
        if hops not in mains:
            sc = Scenario("down:" + "+".join(sorted(hops)), down=hops)
            mains[hops] = settle(export, sc, State())[0].select("main")
        main = mains[hops]
        if main is None or not main.hops or set(main.hops) & hops:
            continue
        found.add(
            "mark-leak",
            line,
            f"when {', '.join(sorted(hops))} (every uplink of routing table {table}) "
            f"fail, traffic marked {table} falls back to the main table and leaves by "
            f"{', '.join(main.hops)}; to keep it in the table add a routing rule "
            f"routing-mark={table} table={table} action=lookup-only-in-table, or "
            "action=lookup to say the fallback is meant",
        )


def _table_line(export: Export, table: str) -> int:
    lines = [t.line for t in export.tables if t.name == table]
    lines += [r.line for r in export.routes if r.table == table]
    lines += [m.line for m in export.mangle if m.new_routing_mark == table]
    return min(lines) if lines else 1


def _masquerade(export: Export, found: _Findings, topo: _Topology) -> None:
    if export.family == 6 and not any(a.address in _ULA for a in export.addresses):
        return  # global IPv6 on the LANs needs no NAT
    for key, (iface, line) in topo.uplink_iface.items():
        if iface is None:
            continue
        if not _nat_covers(export, iface):
            found.add(
                "no-masquerade",
                line,
                f"no srcnat masquerade (or src-nat) rule matches out-interface {iface} of "
                f"uplink {key}: LAN traffic leaves it with private source addresses",
            )


# What each chain lets in when it is open, and the defconf line that closes it.
_WAN_OPEN = {
    "input": ("reach the router", "add chain=input action=drop in-interface-list=!LAN"),
    "forward": (
        "are forwarded to the LANs",
        "add chain=forward action=drop connection-state=new connection-nat-state=!dstnat "
        "in-interface-list=WAN",
    ),
}


def _wan_open(export: Export, found: _Findings, topo: _Topology) -> None:
    """An input or forward chain that lets new connections from an uplink in (not
    dst-nat'ed ones: a port forward is an opening). Only a chain the export has is
    judged: without it the export may be partial. One finding per chain and deciding
    line: the accepting rule, or the chain's last rule."""
    uplinks = {iface: key for key, (iface, _) in topo.uplink_iface.items() if iface is not None}
    for name, (what, fix) in _WAN_OPEN.items():
        chain = [r for r in export.filters if r.chain == name and not r.disabled]
        if not chain:
            continue
        open_at: dict[int | None, list[str]] = {}
        for iface, key in uplinks.items():
            action, at = verdict(export, iface, name)
            if action == "accept":
                open_at.setdefault(at, []).append(f"{key} ({iface})" if key != iface else iface)
        for at, names in open_at.items():
            how = (
                "this rule accepts them"
                if at is not None
                else f"no rule of the {name} chain drops them, and it accepts what reaches its end"
            )
            found.add(
                "wan-open",
                chain[-1].line if at is None else at,
                f"new connections from uplink{'s' if len(names) > 1 else ''} {', '.join(names)} "
                f"{what}: {how}; drop what comes from the uplinks after the openings "
                f"(defconf: {fix})",
            )


def _nat_covers(export: Export, iface: str) -> bool:
    for n in export.nat:
        if n.disabled or n.chain != "srcnat" or n.action not in _SRCNAT:
            continue
        if n.out_interface is not None:
            neg = n.out_interface.startswith("!")
            if (n.out_interface.lstrip("!") == iface) != neg:
                return True
            continue
        if n.out_interface_list is not None:
            neg = n.out_interface_list.startswith("!")
            members = export.interface_lists.get(n.out_interface_list.lstrip("!"), InterfaceSet())
            if (iface in members) != neg:
                return True
            continue
        return True
    return False


def _thr_avg(export: Export, found: _Findings, ev: Evaluation, topo: _Topology) -> None:
    for nw in export.netwatch:
        if nw.disabled or nw.type != "icmp":
            continue
        hop = ev.forward(nw.host)
        if hop is None or hop.key not in topo.uplinks:
            continue  # not watching anything beyond an uplink
        radio = _radio_link(export, hop)
        if radio is None:
            continue  # on a wired uplink an average RTT above thr-avg means trouble
        thr = nw.thr_avg if nw.thr_avg is not None else NETWATCH_THR_AVG_DEFAULT
        if thr < LTE_RTT_FLOOR:
            given = "" if nw.thr_avg is not None else " (RouterOS default)"
            found.add(
                "netwatch-thr-avg",
                nw.line,
                f"Netwatch {nw.host} watches radio link {radio} with "
                f"thr-avg={format_duration(thr)}{given}: a loaded LTE link averages more "
                f"than that, so a slow uplink is declared dead; use at least "
                f"{format_duration(LTE_RTT_FLOOR)}",
            )


# Interface names that say LTE / 3G-5G / a modem: "lte1", "wwan0", "ether1-LTE".
_RADIO_NAME = re.compile(r"(?<![a-z])(?:lte|wwan|modem|gsm|umts|[345]g)", re.IGNORECASE)


def _radio_link(export: Export, hop: Hop) -> str | None:
    """The interface of an uplink's first hop if it is a radio link: an LTE or
    PPP-over-modem client, or an interface named so; None when wired or unknown."""
    for name in dict.fromkeys(n for n in (hop.interface, hop.key) if n):
        if name in export.radio_links or _RADIO_NAME.search(name):
            return name
    return None
