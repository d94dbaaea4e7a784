"""Policy rules: each rule's path from the uplinks' states. Pure.

A rule's path is one of:

* an uplink: the first of ``via`` (in its order) that is usable;
* a balanced set: every usable uplink of ``via`` (``mode: loadbalance``), hashed
  into buckets by weight (the same allocation as the policy's, buckets.py);
* block: none of ``via`` is usable and ``when_down: block`` -- new connections
  are refused with ICMP admin-prohibited, nothing leaves by another uplink;
* default: none is usable and ``when_down: default`` -- the connection follows
  the policy, as if no rule matched.

"Usable" is the policy's own order of tiers (policy.py): UP and preferred, else
DEGRADED, else UP still in its hold, applied to the rule's uplinks alone, so a
rule never waits for an uplink the policy already moved away from.

When no uplink at all is usable the policy keeps its previous choice rather
than fail over into nothing (policy.py); rules do the same: each keeps its
previous path (without one, the first uplink of ``via``), so ``block`` means
"the rule's uplinks are down while others are up" and a total outage does not
turn into a storm of refusals and flushes. A marked connection still never
leaks: its uplink's table ends in ``unreachable default`` (footprint.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

from wanwatch.config import Config
from wanwatch.config.ipv6 import has_ipv6
from wanwatch.config.model import Rule, ViaUplink
from wanwatch.engine.buckets import allocate_buckets
from wanwatch.engine.intent import Admin, Health, Intent, PathKind, RulePath


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


def last_resort(config: Config) -> frozenset[str]:
    """Uplinks whose captive portal still counts as a last resort (``probe.portal``)."""
    return frozenset(w.name for w in config.wans if w.probe.portal == "last_resort")


def usable(
    items: Sequence[_N],
    health: Mapping[str, Health],
    preferred: Mapping[str, bool],
    portal_ok: frozenset[str] = frozenset(),
    spent: Mapping[str, str] | None = None,
) -> list[_N]:
    """The usable ones, by the policy's tiers (policy.py's docstring): UP and preferred,
    else DEGRADED, else UP still in its hold, else the last resorts: behind a portal
    where ``portal_ok`` names it one, or answering with its quota used up where
    ``spent`` (uplink -> ``quota.exhausted``) says ``last_resort``; [] if none. An
    uplink ``spent`` says ``off`` for is never usable."""
    spent = spent or {}

    def state(u: _N) -> Health:
        return health.get(u.name, Health.UNKNOWN)

    fresh = [u for u in items if u.name not in spent]
    tiers = (
        [u for u in fresh if state(u) is Health.UP and preferred.get(u.name, False)],
        [u for u in fresh if state(u) is Health.DEGRADED],
        [u for u in fresh if state(u) is Health.UP and not preferred.get(u.name, False)],
        [
            u
            for u in items
            if spent.get(u.name) != "off"
            and (
                (state(u) is Health.PORTAL and u.name in portal_ok)
                or (u.name in spent and state(u) in (Health.UP, Health.DEGRADED))
            )
        ],
    )
    return next((t for t in tiers if t), [])


def _on(config: Config, index: int, rule: Rule, members: Sequence[ViaUplink]) -> RulePath:
    usable = tuple(u.name for u in members)
    if rule.via.mode == "failover":
        return RulePath(rule.name, index, PathKind.UPLINK, usable[:1], usable=usable)
    weight = {w.name: w.weight for w in config.wans}
    pairs = [(u.name, u.weight or weight[u.name]) for u in members]
    return RulePath(
        rule.name,
        index,
        PathKind.BALANCE,
        tuple(u.name for u in members),
        allocate_buckets(pairs),
        usable,
    )


def rule_paths(
    config: Config,
    health: Mapping[str, Health],
    preferred: Mapping[str, bool],
    admin: Mapping[str, Admin],
    *,
    stale: bool,
    previous: Sequence[RulePath] = (),
    spent: Mapping[str, str] | None = None,
) -> tuple[RulePath, ...]:
    """Every rule's path for these uplink states; ``stale``: no uplink is usable at all;
    ``spent``: uplinks whose quota is used up (``usable``). Only the uplinks of
    ``config.wans`` are candidates: IPv6's paths are decided over the uplinks with IPv6,
    by their IPv6 health (policy.decide_families)."""
    spent = spent or {}
    kept = {(p.name, p.index): p for p in previous}
    carriers = {w.name for w in config.wans}  # IPv6's paths: the uplinks with IPv6 only
    out: list[RulePath] = []
    for i, rule in enumerate(config.rules):
        members = [
            u
            for u in rule.via.uplinks
            if u.name in carriers
            and admin.get(u.name, Admin.ENABLED) is Admin.ENABLED
            and spent.get(u.name) != "off"
        ]
        tier = usable(members, health, preferred, last_resort(config), spent)
        if tier:
            out.append(_on(config, i, rule, tier))
        elif stale and (rule.name, i) in kept:
            out.append(kept[(rule.name, i)])
        elif stale and members:
            out.append(_on(config, i, rule, members))
        else:
            kind = PathKind.BLOCK if rule.when_down == "block" else PathKind.DEFAULT
            out.append(RulePath(rule.name, i, kind))
    return tuple(out)


def ipv6_view(config: Config) -> Config:
    """``config`` with only the uplinks that carry IPv6: what IPv6's policy and rule paths
    are decided over."""
    return config.replace(wans=tuple(w for w in config.wans if has_ipv6(w)))


def baseline(config: Config) -> tuple[tuple[RulePath, ...], tuple[RulePath, ...]]:
    """Each rule's IPv4 and IPv6 path before the engine has spoken: its first uplink of via
    (for IPv6, the first with IPv6), as in a total outage with no previous path."""
    four = rule_paths(config, {}, {}, {}, stale=True)
    return four, rule_paths(ipv6_view(config), {}, {}, {}, stale=True)


def carrying(paths: Sequence[RulePath]) -> set[str]:
    """The uplinks some rule sends new connections to."""
    return {u for p in paths for u in p.uplinks}


def policy_uplinks(intent: Intent, family: int = 4) -> tuple[str, ...]:
    """Where the policy sends new connections of ``family``: its first choice, or every
    balanced one."""
    active = intent.active if family == 4 else intent.active6
    return active if intent.mode == "loadbalance" else active[:1]


def where(intent: Intent, path: RulePath, family: int = 4) -> tuple[str, ...]:
    """The uplinks a rule's new connections of ``family`` leave by now (none when blocked)."""
    return policy_uplinks(intent, family) if path.kind is PathKind.DEFAULT else path.uplinks


def explain(
    config: Config,
    intent: Intent,
    path: RulePath,
    preferred: Mapping[str, bool],
    *,
    family: int = 4,
    health: Mapping[str, Health] | None = None,
) -> str:
    """Why ``path`` is the rule's path of ``family`` now, in the words of docs/rules.md's
    table, naming the state of each uplink of ``via`` it passed over (``wanwatch status``).
    ``health`` and ``preferred`` are that family's (IPv4's health: the intent's); an uplink
    without IPv6 is passed over by IPv6's path for that alone."""
    plans = {u.name: u for u in intent.uplinks}
    six = {w.name for w in config.wans if has_ipv6(w)}

    def state(name: str) -> str:
        u = plans.get(name)
        if u is None:
            return f"{name} unknown"
        if u.admin is not Admin.ENABLED:
            return f"{name} {u.admin.value}"
        if family == 6 and name not in six:
            return f"{name} has no IPv6"
        h = u.health if health is None else health.get(name, Health.UNKNOWN)
        if h is Health.UP and not preferred.get(name, False):
            return f"{name} up, in its hold"
        return f"{name} {h.value}"

    via = [u.name for u in config.rules[path.index].via.uplinks]
    if path.kind in (PathKind.BLOCK, PathKind.DEFAULT):
        then = "refused" if path.kind is PathKind.BLOCK else "the policy decides"
        states = "; ".join(map(state, via))
        return f"none of via usable ({states}): when_down {path.kind.value}, {then}"
    if family == 4 and intent.stale:
        return "no uplink at all is usable: the last path is kept"
    if family == 6 and intent.stale6:
        return "no uplink's IPv6 is usable: the last path is kept"
    if path.kind is PathKind.BALANCE:
        out = "; ".join(state(n) for n in via if n not in path.uplinks)
        return f"{out}: balanced over the rest of via" if out else "every uplink of via usable"
    before = via[: via.index(path.uplinks[0])]
    return f"{'; '.join(map(state, before))}: next in via" if before else "first in via, usable"
