"""The dataplane wanted for each uplink, as plain data: pure functions of Intent and kernel facts.

``resolve`` joins the Intent's uplink plans with what the kernel has (links,
addresses); ``table_routes``, ``rules`` and ``main_defaults`` say which routes
and rules must exist. ``resolve6``, ``table_routes6``, ``rules6`` and
``main_defaults6`` are the same for IPv6 (docs/ipv6.md): the same table, mark
and rule priority per uplink, in the IPv6 routing tables and rules. The reconciler
(reconcile.py) diffs these against the kernel; ``describe`` is the same for a
person (``wanwatch plan``). No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Any

from wanwatch.config import Config
from wanwatch.config.dynamic import Kind, plan_gateway
from wanwatch.config.ipv6 import has_ipv6, ipv6_lans, static_address6
from wanwatch.engine.intent import Admin, Health, Intent, UplinkPlan
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
    fwmark,
    table_id,
)
from wanwatch.linux.netlink import (
    DEFAULT_DST,
    DEFAULT_DST6,
    IP6_RT_PRIO_USER,
    RT_SCOPE_LINK,
    RT_TABLE_MAIN,
    RTN_UNREACHABLE,
    Address,
    Address6,
    Link,
    Route,
    Rule,
)

# Every table an uplink may have (footprint.py): routes there are ours to manage.
OUR_TABLES = frozenset(range(TABLE_BASE + 1, TABLE_BASE + MAX_UPLINKS + 1))


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
                table=table_id(p.slot),
                mark=fwmark(p.slot),
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
    return _defaults(intent.primary, uplinks)


def _defaults(
    primary_name: str | None,
    uplinks: Sequence[Uplink] | Sequence[Uplink6],
    given_up: Collection[str] = (),
) -> tuple[list[Route], bool]:
    """One family's main defaults: the primary's, then fallbacks by rank (main_defaults)."""
    primary = next((u for u in uplinks if u.name == primary_name), None)
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
        if not u.usable or u.name in given_up:
            continue
        out.append(u.default(RT_TABLE_MAIN, FALLBACK_METRIC_BASE + u.rank))
    return out, keep


# --------------------------------------------------------------------------- IPv6


@dataclass(frozen=True)
class Uplink6:
    """An uplink's IPv6 as the kernel sees it now; ``address`` None: it carries no IPv6
    (none configured, or not there yet), and its IPv6 table only refuses."""

    name: str
    table: int
    mark: int
    rank: int
    health: Health
    admin: Admin
    index: int | None
    address: IPv6Interface | None
    gateway: IPv6Address | None

    @property
    def usable(self) -> bool:
        return self.index is not None and self.address is not None and self.gateway is not None

    def default(self, table: int, metric: int = IP6_RT_PRIO_USER) -> Route:
        return Route(table, DEFAULT_DST6, metric=metric, gateway=self.gateway, oif=self.index)


def carries_ipv6(config: Config) -> bool:
    """Any uplink or LAN has IPv6: the backend then keeps IPv6 tables, rules and forwarding."""
    return any(has_ipv6(w) for w in config.wans) or bool(ipv6_lans(config))


def resolve6(
    config: Config, ups: Sequence[Uplink], addresses: Sequence[Address6], main: Sequence[Route]
) -> list[Uplink6]:
    """Each uplink's IPv6 (``ups`` as resolve gives them); none at all when no uplink or
    LAN has IPv6.

    A static ``address6`` counts once it is on the interface. An ``auto`` uplink
    uses the address SLAAC formed there (usable: not tentative, deprecated or
    temporary) and the router of the default route the kernel learned from its
    router advertisements (a default route on that device, not ours, in ``main``).
    """
    if not carries_ipv6(config):
        return []
    wans = {w.name: w for w in config.wans}
    out: list[Uplink6] = []
    for u in ups:
        w = wans.get(u.name)
        address: IPv6Interface | None = None
        gateway: IPv6Address | None = None
        mine = [a for a in addresses if u.index is not None and a.index == u.index]
        # w is None: an uplink of another config (a pass between two), no IPv6
        static = static_address6(w) if w is not None else None
        if w is not None and static is not None:
            address = static if any(a.interface == static for a in mine) else None
            gateway = w.gateway6
        elif w is not None and has_ipv6(w):
            address = next((a.interface for a in mine if a.dynamic and a.usable), None)
            gateway = next(
                (
                    r.gateway
                    for r in main
                    if r.dst == DEFAULT_DST6
                    and r.proto != RT_PROTO
                    and r.oif == u.index
                    and isinstance(r.gateway, IPv6Address)
                ),
                None,
            )
        out.append(
            Uplink6(u.name, u.table, u.mark, u.rank, u.health, u.admin, u.index, address, gateway)
        )
    return out


def table_routes6(u: Uplink6) -> list[Route]:
    """The IPv6 routes of one uplink's table: refuse, unless it carries IPv6."""
    routes = [Route(u.table, DEFAULT_DST6, metric=UNREACHABLE_METRIC, kind=RTN_UNREACHABLE)]
    if u.usable and u.address is not None:
        if u.address.network.prefixlen < 128:
            routes.append(
                Route(
                    u.table,
                    u.address.network,
                    metric=IP6_RT_PRIO_USER,
                    oif=u.index,
                    prefsrc=u.address.ip,
                )
            )
        routes.append(u.default(u.table))
    return routes


def rules6(uplinks: Sequence[Uplink6]) -> list[Rule]:
    """The IPv6 rules: IPv4's, with each uplink's IPv6 address as its source rule."""
    if not uplinks:
        return []
    out = [Rule(RULE_PRIO_SUPPRESS, RT_TABLE_MAIN, suppress_prefixlen=0, family=6)]
    for u in uplinks:
        n = u.table - TABLE_BASE
        out.append(Rule(RULE_PRIO_FWMARK + n, u.table, fwmark=u.mark, fwmask=FWMARK_MASK, family=6))
        if u.address is not None:
            src = u.address.ip
            out.append(Rule(RULE_PRIO_SOURCE + n, u.table, src=IPv6Network(f"{src}/128"), family=6))
    return out


def main_defaults6(intent: Intent, uplinks: Sequence[Uplink6]) -> tuple[list[Route], bool]:
    """Our IPv6 main-table defaults for ``intent.active6``, as main_defaults; a fallback
    is also one the IPv6 policy has not given up (not in ``flush6``)."""
    return _defaults(intent.active6[0] if intent.active6 else None, uplinks, intent.flush6)


def plan_json(intent: Intent) -> dict[str, Any]:
    """``intent`` as JSON, each uplink with the table and mark this backend gives it."""
    out = intent.to_json()
    for u, plan in zip(out["uplinks"], intent.uplinks, strict=True):
        u["table"], u["mark"] = table_id(plan.slot), fwmark(plan.slot)
    return out


def describe(intent: Intent) -> str:
    """The dataplane of ``intent`` for a person: who carries traffic, then every uplink's
    plan with its table and mark."""
    lines = [f"mode: {intent.mode}"]
    if intent.active:
        carrying = ", ".join(intent.active)
        lines.append(
            f"new connections: {carrying}"
            + ("  (no healthy uplink: last choice kept)" if intent.stale else "")
        )
        first = intent.uplink(intent.active[0])
        lines.append(
            f"main default route: {plan_gateway(first.gateway, first.kind)} ({first.name})"
        )
    if intent.buckets:
        shares = {name: intent.buckets.count(name) for name in intent.active}
        total = len(intent.buckets)
        split = ", ".join(f"{n} {c}/{total}" for n, c in shares.items())
        lines.append(f"hash ({intent.classifier}): {split}")
    lines.append("uplinks:")
    for u in intent.uplinks:
        addr = u.address or ("(DHCP lease)" if u.kind == "dhcp" else "(interface address)")
        role = "carrying" if u.carrying else "standby"
        if u.admin is not Admin.ENABLED:
            role = u.admin.value
        lines.append(
            f"  {u.name:<14} {u.health.value:<9} {role:<9} {u.interface} {addr} "
            f"{plan_gateway(u.gateway, u.kind)}"
            f"  table {table_id(u.slot)} mark {fwmark(u.slot):#x}"
            f" priority {u.priority} weight {u.weight}"
        )
    if intent.masquerade:
        lines.append(f"masquerade: {', '.join(intent.masquerade)}")
    if intent.flush:
        lines.append(f"flush NATed flows of: {', '.join(intent.flush)}")
    if intent.lans:
        lines.append("lans:")
        for lan in intent.lans:
            lines.append(f"  {lan.name:<14} {lan.interface} {lan.address or '(interface address)'}")
    return "\n".join(lines)
