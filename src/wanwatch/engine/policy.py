"""Policy: uplink health in, the Intent (desired dataplane) out. Pure.

Failover carries new connections on one uplink, loadbalance on every usable
uplink of the best priority tier, hashed into buckets by weight. Which uplinks
are usable, in order of preference:

1. UP and preferred (past their hold after a comeback);
2. if none, DEGRADED ones (a bad link beats none);
3. if none, UP ones still in their hold;
4. if none, the last resorts: PORTAL ones whose ``probe.portal`` is
   ``last_resort`` (a captive portal may still pass some traffic), and UP or
   DEGRADED ones whose quota is used up with ``quota.exhausted: last_resort``
   (engine/quota.py; their open connections go on). With ``probe.portal: down``
   (the default) a PORTAL uplink is routed like a DOWN one, its connections
   deleted too; so is an uplink whose used-up quota says ``off``.

With none usable the previous choice is kept and the Intent is marked stale:
failing over into nothing would only drop the connections that still work.

An uplink the operator disabled or drains (``wanwatch disable``) is never
usable, whatever its health; a disabled one's connections are deleted as a
dead one's are, a drained one keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from wanwatch.config import Config, Wan
from wanwatch.engine.buckets import allocate_buckets
from wanwatch.engine.intent import Admin, Health, Intent, intent_from_config
from wanwatch.engine.rules import carrying, ipv6_view, last_resort, rule_paths, usable


def _carriers(config: Config, candidates: Sequence[Wan]) -> tuple[str, ...]:
    """Best priority first (config order breaks ties); loadbalance keeps the whole tier."""
    order = {w.name: i for i, w in enumerate(config.wans)}
    ranked = sorted(candidates, key=lambda w: (w.priority, order[w.name]))
    if config.policy.mode == "failover":
        return (ranked[0].name,)
    best = ranked[0].priority
    return tuple(w.name for w in ranked if w.priority == best)


def decide(
    config: Config,
    health_by_name: Mapping[str, Health],
    preferred_by_name: Mapping[str, bool],
    previous: Intent | None,
    admin: Mapping[str, Admin] | None = None,
    *,
    spent: Mapping[str, str] | None = None,
) -> Intent:
    """The Intent for these uplink states; ``previous`` is kept when nothing is usable.
    ``spent``: uplinks whose quota is used up -> their ``quota.exhausted``."""
    admin = admin or {}
    spent = spent or {}
    enabled = [
        w
        for w in config.wans
        if admin.get(w.name, Admin.ENABLED) is Admin.ENABLED and spent.get(w.name) != "off"
    ]
    names = {w.name for w in enabled}
    candidates = usable(enabled, health_by_name, preferred_by_name, last_resort(config), spent)
    stale = not candidates
    if candidates:
        active = _carriers(config, candidates)
    elif previous is not None and previous.active and all(a in names for a in previous.active):
        active = previous.active
        if config.policy.mode == "failover":
            active = active[:1]
    else:
        active = _carriers(config, enabled) if enabled else ()

    buckets: tuple[str, ...] = ()
    if config.policy.mode == "loadbalance":
        weight = {w.name: w.weight for w in config.wans}
        buckets = allocate_buckets([(a, weight[a]) for a in active])

    paths = rule_paths(
        config,
        health_by_name,
        preferred_by_name,
        admin,
        stale=stale,
        previous=previous.rules if previous is not None else (),
        spent=spent,
    )
    busy = {*active, *carrying(paths)}
    gone = [
        w.name
        for w in config.wans
        if health_by_name.get(w.name) in (Health.DOWN, Health.PORTAL)
        or admin.get(w.name, Admin.ENABLED) is Admin.DISABLED
        or spent.get(w.name) == "off"
    ]
    return intent_from_config(
        config,
        active=active,
        buckets=buckets,
        flush=[name for name in gone if name not in busy],
        health=health_by_name,
        admin=admin,
        stale=stale,
        rules=paths,
    )


def decide_families(
    config: Config,
    health: tuple[Mapping[str, Health], Mapping[str, Health]],
    preferred: tuple[Mapping[str, bool], Mapping[str, bool]],
    previous: Intent | None,
    admin: Mapping[str, Admin] | None = None,
    *,
    spent: Mapping[str, str] | None = None,
) -> Intent:
    """:func:`decide` once per family (docs/ipv6.md): ``health`` and ``preferred`` are
    IPv4's and IPv6's. IPv6 (the policy and each rule's path) is decided among the
    uplinks that have IPv6, by their IPv6 health, so an uplink whose IPv6 died while its
    IPv4 lives carries neither the policy's nor a rule's IPv6."""
    four = decide(config, health[0], preferred[0], previous, admin, spent=spent)
    six_view = ipv6_view(config)
    if not six_view.wans:
        return four
    before = None
    if previous is not None:
        before = replace(
            previous, active=previous.active6, stale=previous.stale6, rules=previous.rules6
        )
    six = decide(six_view, health[1], preferred[1], before, admin, spent=spent)
    return replace(four, active6=six.active, flush6=six.flush, stale6=six.stale, rules6=six.rules)


def plan_for(config: Config, down: set[str]) -> Intent:
    """The Intent when exactly the uplinks in ``down`` are down, both families of each
    (``wanwatch plan``)."""
    health = {w.name: Health.DOWN if w.name in down else Health.UP for w in config.wans}
    preferred = {w.name: True for w in config.wans}
    return decide_families(config, (health, health), (preferred, preferred), None)
