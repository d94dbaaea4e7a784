"""The Engine: the one object the daemon drives. Pure and deterministic.

The daemon's loop, with ``now`` from a monotonic clock::

    events = engine.tick(now)          # timeouts, hold timers
    for req in engine.due(now): send   # probes to send now
    ... wait until engine.next_wakeup() or a reply / link event:
    events = engine.reply(wan, seq, rtt, now[, portal])  or  engine.carrier(wan, up, now)
    events = engine.traffic_stall(wan, now)  # kernel: traffic out, nothing back
    engine.intent()                     # reconcile the kernel when it changed

The engine owns every timeout: the daemon never decides a probe is lost.

IPv6 (docs/ipv6.md): an uplink with IPv6 probe targets has a second monitor, for
its IPv6 path; each family's monitor judges that family, and the uplink's health
is one model over both (``combined``). The policy runs once per family: IPv6 is
carried only by uplinks that have IPv6, chosen by their IPv6 health (or, with no
IPv6 target, by their IPv4 health), so an uplink whose IPv6 dies while its IPv4
lives moves IPv6 alone and says ``wan.degraded family=6``. Both monitors of an
uplink share its probe budget (each probes at twice ``interval``: one probe per
``interval`` together), and a loss run in one starts the other's confirmation
burst at once, so a whole-uplink outage is seen by whichever probe is lost first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from wanwatch.config import Config, Monitor, Wan
from wanwatch.config.ipv6 import has_ipv6
from wanwatch.config.matches import rule_families
from wanwatch.config.model import Target
from wanwatch.engine.events import Event, FieldValue, event
from wanwatch.engine.health import HealthState
from wanwatch.engine.intent import Admin, Health, Intent
from wanwatch.engine.monitor import UplinkMonitor
from wanwatch.engine.policy import decide_families


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    wan: str
    target: Target  # its method says how the hub asks it
    seq: int  # per uplink, 16-bit wrapping (the ICMP echo sequence)


@dataclass(frozen=True, slots=True)
class WanStatus:
    name: str
    state: Health
    rtt_ms: float | None
    loss_pct: float
    since: float
    preferred: bool
    targets: dict[str, str]  # address -> answering | silent | unknown
    admin: Admin
    # What is under way: "suspect" (losses so far / needed for DOWN), "rising"
    # (good answers / needed for UP), "hold" (seconds left before failback), or None.
    phase: str | None
    progress: dict[str, float]
    portal: str | None = None  # while PORTAL: where a captive portal sends its HTTP probes
    # A dual-stack uplink with IPv6 targets: each family's own state ("4", "6"); else empty.
    families: dict[str, Health] = field(default_factory=dict)
    # And whether its IPv6 is past its hold (None without such a monitor: IPv4's says)
    preferred6: bool | None = None


# At start every uplink is UNKNOWN. Choosing before the better ones had their
# chance would log a failover then a failback whenever the backup answers a few
# milliseconds first; so the first choice waits until none is UNKNOWN, at most
# this long (a live uplink rises on its 2nd answer, about one interval in; a
# dead one is DOWN ~2 s in, its first probes timing out at the 1 s initial RTO).
STARTUP_GRACE = 3.0

# Events after which the Intent may differ (health or preference changed; carrier
# back turns DOWN into UNKNOWN, which takes the uplink off the flush list).
_REPLAN = frozenset(
    {
        "wan.up",
        "wan.down",
        "wan.degraded",
        "wan.recovered",
        "wan.preferred",
        "wan.carrier",
        "wan.portal",
    }
)
# Events that say how long an uplink's failure took to detect (policy.failover's detect_ms).
_DETECTED = frozenset({"wan.down", "wan.portal"})
_ALIVE = frozenset({Health.UP, Health.DEGRADED})


_GONE = frozenset({Health.DOWN, Health.PORTAL})


def combined(families: dict[int, Health]) -> Health:
    """One uplink's health from its families': down (or behind a portal) when every
    family is, degraded when one is gone (or degraded) and another alive, else the worst."""
    states = set(families.values())
    if states <= _GONE:
        return Health.PORTAL if Health.PORTAL in states else Health.DOWN
    alive = states & _ALIVE
    if not alive:
        return Health.UNKNOWN
    if states & _GONE or Health.DEGRADED in alive:
        return Health.DEGRADED
    return Health.UP


def _probes6(w: Wan) -> bool:
    return has_ipv6(w) and bool(w.probe.family(6))


def _params(config: Config, w: Wan) -> Monitor:
    """A family monitor's settings: half the cadence when the uplink probes both families."""
    params = config.monitor_for(w)
    return params.replace(interval=2 * params.interval) if _probes6(w) else params


def _monitor(config: Config, w: Wan, family: int, now: float) -> UplinkMonitor:
    # IPv6's probes fall halfway between IPv4's: together, one probe every interval,
    # so an outage of both is seen as soon as with IPv4 alone.
    phase = config.monitor_for(w).interval if family == 6 else 0.0
    return UplinkMonitor(w.name, w.probe.family(family), _params(config, w), now, phase=phase)


class Engine:
    """Uplink monitors plus policy: (time, probe results, link events) -> events, Intent."""

    def __init__(self, config: Config, now: float) -> None:
        self._config = config
        # per rule, the families it can match: no rule.path event for another one
        self._rule_families = rule_families(config)
        self._monitors = {w.name: _monitor(config, w, 4, now) for w in config.wans}
        self._monitors6 = {w.name: _monitor(config, w, 6, now) for w in config.wans if _probes6(w)}
        self._detect_ms: dict[tuple[str, int], int] = {}
        self._admin: dict[str, Admin] = {}
        self._spent: dict[str, str] = {}  # quota used up -> quota.exhausted (engine/quota.py)
        self._now = now
        self._settle_by: float | None = now + STARTUP_GRACE  # None once settled
        self._intent = self._policy(None)
        self._standby(now)

    # ----------------------------------------------------------------- inputs

    def due(self, now: float) -> list[ProbeRequest]:
        """Probes to send now; they are outstanding from here on."""
        self._now = max(self._now, now)
        return [
            ProbeRequest(name, target, seq)
            for monitors in (self._monitors, self._monitors6)
            for name, m in monitors.items()
            for target, seq in m.due(now)
        ]

    def reply(
        self,
        wan: str,
        seq: int,
        rtt: float,
        now: float,
        portal: str | None = None,
        *,
        family: int = 4,
    ) -> list[Event]:
        """A probe's answer (``portal``: where a captive portal sent an HTTP probe;
        ``family``: the address family it was sent in); late ones count too, unknown
        ones are ignored."""
        self._now = max(self._now, now)
        m = (self._monitors if family == 4 else self._monitors6).get(wan)
        if m is None:
            return []
        events = m.reply(seq, rtt, now, portal)
        return self._replan(self._family_events(wan, family, events), now)

    def carrier(self, wan: str, up: bool, now: float) -> list[Event]:
        """Link carrier from netlink: down is DOWN at once; up lets probes decide."""
        self._now = max(self._now, now)
        m = self._monitors.get(wan)
        if m is None:
            return []
        events: list[Event] = []
        # IPv6 first: the family that changes last speaks for the whole uplink (wan.down
        # or wan.up once, after a wan.degraded or wan.recovered of the other family).
        if (m6 := self._monitors6.get(wan)) is not None:
            events += self._family_events(wan, 6, m6.carrier(up, now))
        events += self._family_events(wan, 4, m.carrier(up, now))
        return self._replan(events, now)

    def traffic_stall(self, wan: str, now: float) -> list[Event]:
        """The kernel saw traffic leave ``wan`` with nothing coming back: probe now.

        Only a trigger: it may start the confirmation burst early (rate limited),
        never mark the uplink down by itself.
        """
        self._now = max(self._now, now)
        m = self._monitors.get(wan)
        if m is None:
            return []
        events = m.traffic_stall(now)
        if (m6 := self._monitors6.get(wan)) is not None:
            events += _tagged(m6.traffic_stall(now), family=6)
        return events

    def rtt(self, wan: str) -> float | None:
        """Smoothed RTT of ``wan``'s probes (RFC 6298), None before the first answer."""
        m = self._monitors.get(wan)
        return None if m is None else m.rtt.srtt

    def renumbered(self, wan: str, now: float) -> list[Event]:
        """``wan`` has a new address or gateway (a DHCP lease): judge it afresh.

        Its record (losses, flaps, hold) was earned by another path, so it starts
        over as at start: UNKNOWN, rising on its second answer with no hold.
        """
        self._now = max(self._now, now)
        w = next((w for w in self._config.wans if w.name == wan), None)
        if w is None:
            return []
        self._monitors[wan] = _monitor(self._config, w, 4, now)  # a DHCP lease: IPv4's path
        self._detect_ms.pop((wan, 4), None)
        return [event(now, "wan.renumbered", wan=wan), *self._replan_now(now)]

    def set_admin(self, wan: str, admin: Admin, now: float) -> list[Event]:
        """The operator's choice for ``wan``; raises KeyError for an unknown uplink."""
        self._now = max(self._now, now)
        if wan not in self._monitors:
            raise KeyError(wan)
        if self._admin.get(wan, Admin.ENABLED) is admin:
            return []
        if admin is Admin.ENABLED:
            self._admin.pop(wan, None)
        else:
            self._admin[wan] = admin
        name = {Admin.ENABLED: "wan.enabled", Admin.DRAIN: "wan.drained"}.get(admin, "wan.disabled")
        return [event(now, name, wan=wan), *self._replan_now(now)]

    def set_spent(self, wan: str, policy: str | None, now: float) -> list[Event]:
        """``wan``'s quota is used up (``policy``: its ``quota.exhausted``), or no longer
        (None): it is routed by that policy (policy.py) from now on."""
        self._now = max(self._now, now)
        if wan not in self._monitors or self._spent.get(wan) == policy:
            return []
        if policy is None:
            del self._spent[wan]
        else:
            self._spent[wan] = policy
        return self._replan_now(now)

    def admin(self) -> dict[str, Admin]:
        """Uplinks the operator took out of service (enabled ones are absent)."""
        return dict(self._admin)

    def tick(self, now: float) -> list[Event]:
        """Expire outstanding probes and run hold timers."""
        self._now = max(self._now, now)
        events: list[Event] = []
        for family, monitors in ((4, self._monitors), (6, self._monitors6)):
            for name, m in monitors.items():
                events += self._family_events(name, family, m.expire(now) + m.clock(now))
        for name, m6 in self._monitors6.items():
            events += self._sibling_bursts(self._monitors[name], m6, now)
        if self._settle_by is not None:
            events += self._replan_now(now)
        return self._replan(events, now)

    def reload(self, config: Config, now: float) -> list[Event]:
        """Switch to a new config; uplinks whose name survives keep their health."""
        self._now = max(self._now, now)
        old = self._monitors
        monitors: dict[str, UplinkMonitor] = {}
        monitors6: dict[str, UplinkMonitor] = {}
        for w in config.wans:
            for family, was, now_has in ((4, old, monitors), (6, self._monitors6, monitors6)):
                if family == 6 and not _probes6(w):
                    continue
                m = was.get(w.name)
                if m is None:
                    m = _monitor(config, w, family, now)
                else:
                    m.reconfigure(w.probe.family(family), _params(config, w), now)
                now_has[w.name] = m
        added = [n for n in monitors if n not in old]
        removed = [n for n in old if n not in monitors]
        self._monitors = monitors
        self._monitors6 = monitors6
        self._config = config
        # per rule, the families it can match: no rule.path event for another one
        self._rule_families = rule_families(config)
        for n in removed:
            self._detect_ms.pop((n, 4), None)
            self._detect_ms.pop((n, 6), None)
            self._admin.pop(n, None)
            self._spent.pop(n, None)
        events = [
            event(
                now,
                "engine.reload",
                added=",".join(added) or None,
                removed=",".join(removed) or None,
                kept=len(monitors) - len(added),
            )
        ]
        return events + self._replan_now(now)

    # ----------------------------------------------------------------- outputs

    def next_wakeup(self) -> float:
        """Earliest time ``due``/``tick`` has something to do (at most 1 s ahead)."""
        monitors = [*self._monitors.values(), *self._monitors6.values()]
        soonest = min((m.next_wakeup() for m in monitors), default=math.inf)
        if self._settle_by is not None:
            soonest = min(soonest, self._settle_by)
        return min(soonest, self._now + 1.0)

    def intent(self) -> Intent:
        return self._intent

    def status(self, now: float) -> list[WanStatus]:
        out = []
        for name, m in self._monitors.items():
            s = m.state
            srtt = m.rtt.srtt
            phase, progress = _progress(s, now)
            m6 = self._monitors6.get(name)
            families = {} if m6 is None else {"4": s.health, "6": m6.state.health}
            out.append(
                WanStatus(
                    name=name,
                    state=s.health if m6 is None else combined({4: s.health, 6: m6.state.health}),
                    rtt_ms=None if srtt is None else round(srtt * 1000, 1),
                    loss_pct=round(m.loss_pct(now), 1),
                    since=s.since,
                    preferred=s.preferred,
                    targets=m.target_states(),
                    admin=self._admin.get(name, Admin.ENABLED),
                    phase=phase,
                    progress=progress,
                    families=families,
                    preferred6=None if m6 is None else m6.state.preferred,
                    portal=s.portal_url if s.health is Health.PORTAL else None,
                )
            )
        return out

    def probes_sent(self) -> dict[str, int]:
        """Probes sent per uplink since start (bench and metrics)."""
        sent = {name: m.sent for name, m in self._monitors.items()}
        for name, m in self._monitors6.items():
            sent[name] += m.sent
        return sent

    # ----------------------------------------------------------------- families

    def _family_events(self, wan: str, family: int, events: list[Event]) -> list[Event]:
        """One family monitor's events as the uplink's. On a dual-stack uplink each is
        tagged with its family, and a family going down (or up) while the other one
        lives is the uplink degraded (or recovered), not down (or up)."""
        for e in events:
            if e.name in _DETECTED:
                detect = e.fields.get("detect_ms")
                self._detect_ms[(wan, family)] = detect if isinstance(detect, int) else 0
        if wan not in self._monitors6:
            return events
        other = (self._monitors6 if family == 4 else self._monitors)[wan]
        alive = other.state.health in _ALIVE
        rename = {"wan.down": "wan.degraded", "wan.up": "wan.recovered"} if alive else {}
        return [
            Event(e.at, rename.get(e.name, e.name), {**e.fields, "family": family}) for e in events
        ]

    def _sibling_bursts(self, m4: UplinkMonitor, m6: UplinkMonitor, now: float) -> list[Event]:
        """A loss run in one family starts the other's burst now (rate limited as a
        traffic trigger): one uplink, one outage, whichever family saw it first."""
        out: list[Event] = []
        for lost, other, family in ((m4, m6, 6), (m6, m4, 4)):
            if lost.state.suspicious:
                out += _tagged(other.traffic_stall(now), family=family, trigger="sibling")
        return out

    # ----------------------------------------------------------------- policy

    def _health(self) -> dict[str, Health]:
        return {n: m.state.health for n, m in self._monitors.items()}

    def _preferred(self) -> dict[str, bool]:
        return {n: m.state.preferred for n, m in self._monitors.items()}

    def _six(self) -> dict[str, UplinkMonitor]:
        """The monitor judging each IPv6 uplink's IPv6: its own, else its IPv4 one."""
        m6 = self._monitors6
        return {
            w.name: m6.get(w.name) or self._monitors[w.name]
            for w in self._config.wans
            if has_ipv6(w)
        }

    def _health6(self) -> dict[str, Health]:
        return {n: m.state.health for n, m in self._six().items()}

    def _preferred6(self) -> dict[str, bool]:
        return {n: m.state.preferred for n, m in self._six().items()}

    def _policy(self, old: Intent | None) -> Intent:
        """The policy and the rules' paths for each family: IPv6 among the uplinks
        that have it, by IPv6 health (policy.decide_families)."""
        return decide_families(
            self._config,
            (self._health(), self._health6()),
            (self._preferred(), self._preferred6()),
            old,
            self._admin,
            spent=self._spent,
        )

    def _replan(self, events: list[Event], now: float) -> list[Event]:
        if any(e.name in _REPLAN for e in events):
            return events + self._replan_now(now)
        return events

    def _replan_now(self, now: float) -> list[Event]:
        events = self._decide(now)
        self._standby(now)
        return events

    def _standby(self, now: float) -> None:
        """Metered uplinks that carry nothing (neither family) are probed at the standby rate."""
        busy = {*self._intent.active, *self._intent.active6}
        for w in self._config.wans:
            for monitors in (self._monitors, self._monitors6):
                if (m := monitors.get(w.name)) is not None:
                    m.standby(w.metered and w.name not in busy, now)

    def _decide(self, now: float) -> list[Event]:
        old = self._intent
        events = self._replan_policy(now)
        if self._intent is old:
            return events
        for family, olds, news in (
            (4, old.rules, self._intent.rules),
            (6, old.rules6, self._intent.rules6),
        ):
            tag: dict[str, FieldValue] = {} if family == 4 else {"family": family}
            before = {p.index: p for p in olds}
            for p in news:
                if family not in self._rule_families[p.index]:
                    continue
                was = before.get(p.index)
                if was is None or str(was) != str(p):  # not: a spare uplink came or went
                    events.append(
                        event(
                            now,
                            "rule.path",
                            rule=p.name,
                            **{"from": str(was) if was is not None else None, "to": str(p)},
                            **tag,
                        )
                    )
        return events

    def _replan_policy(self, now: float) -> list[Event]:
        old = self._intent
        if self._settle_by is not None:
            waiting = [*self._health().values(), *self._health6().values()]
            if now < self._settle_by and Health.UNKNOWN in waiting:
                return []
            self._settle_by = None
            self._intent = self._policy(old)
            return self._chosen(now, 4) + self._chosen(now, 6)
        self._intent = self._policy(old)
        return self._moved(now, old, 4) + self._moved(now, old, 6)

    def _chosen(self, now: float, family: int) -> list[Event]:
        new = self._intent
        active, stale = (new.active, new.stale) if family == 4 else (new.active6, new.stale6)
        if family == 6 and not active:
            return []  # no uplink has IPv6
        tag: dict[str, FieldValue] = {} if family == 4 else {"family": family}
        if stale:
            return [event(now, "policy.stale", keeping=",".join(active), **tag)]
        return [event(now, "policy.select", to=",".join(active), **tag)]

    def _moved(self, now: float, old: Intent, family: int) -> list[Event]:
        """The policy event of one family's change of carriers, if it changed."""
        new = self._intent
        if family == 4:
            was, active, was_stale, stale = old.active, new.active, old.stale, new.stale
            health = self._health()
            tag: dict[str, FieldValue] = {}
        else:
            was, active, was_stale, stale = old.active6, new.active6, old.stale6, new.stale6
            health = self._health6()
            tag = {"family": family}
        if stale:
            if was_stale and was == active:
                return []
            return [event(now, "policy.stale", keeping=",".join(active), **tag)]
        if active == was:
            return []
        moved: dict[str, FieldValue] = {"from": ",".join(was), "to": ",".join(active), **tag}
        dropped = [a for a in was if a not in active]
        failed = [
            a
            for a in dropped
            if health.get(a) is not Health.UP or a in self._admin or a in self._spent
        ]
        if not (was_stale or failed):
            return [event(now, "policy.failback", **moved)]
        cause = failed[0] if failed else None
        reason = None
        if cause in self._admin:
            reason = self._admin[cause].value
        elif cause in self._spent and health.get(cause) is Health.UP:
            reason = "quota"
        elif cause is not None:
            reason = health.get(cause, Health.UNKNOWN).value
        detect = None
        if cause and cause not in self._admin and reason != "quota":
            # An uplink judged by its IPv4 alone (no IPv6 target) was seen by its IPv4.
            seen = family if cause in self._monitors6 or family == 4 else 4
            detect = self._detect_ms.get((cause, seen))
        return [
            event(now, "policy.failover", **moved, cause=cause, reason=reason, detect_ms=detect)
        ]


def _tagged(events: list[Event], **fields: FieldValue) -> list[Event]:
    return [Event(e.at, e.name, {**e.fields, **fields}) for e in events]


def _progress(s: HealthState, now: float) -> tuple[str | None, dict[str, float]]:
    """The episode under way for one uplink, for ``status`` (see WanStatus.phase)."""
    if s.suspicious:
        return "suspect", {"lost": s.run_lost, "needed": s.run_needed}
    if s.health in (Health.UNKNOWN, Health.DOWN) and s.carrier and s.good_run > 0:
        return "rising", {"good": s.good_run, "needed": s.rise_needed}
    due = s.preferred_at
    if due is not None and s.health in (Health.UP, Health.DEGRADED):
        return "hold", {"hold_left_s": round(max(0.0, due - now), 1)}
    return None, {}
