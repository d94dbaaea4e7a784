"""The Engine: the one object the daemon drives. Pure and deterministic.

The daemon's loop, with ``now`` from a monotonic clock::

    events = engine.tick(now)          # timeouts, hold timers
    for req in engine.due(now): send   # probes to send now
    ... wait until engine.next_wakeup() or a reply / link event:
    events = engine.reply(wan, seq, rtt, now[, portal])  or  engine.carrier(wan, up, now)
    events = engine.traffic_stall(wan, now)  # kernel: traffic out, nothing back
    engine.intent()                     # reconcile the kernel when it changed

The engine owns every timeout: the daemon never decides a probe is lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wanwatch.config import Config
from wanwatch.config.model import Target
from wanwatch.engine.events import Event, event
from wanwatch.engine.health import HealthState
from wanwatch.engine.intent import Admin, Health, Intent
from wanwatch.engine.monitor import UplinkMonitor
from wanwatch.engine.policy import decide


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


class Engine:
    """Uplink monitors plus policy: (time, probe results, link events) -> events, Intent."""

    def __init__(self, config: Config, now: float) -> None:
        self._config = config
        self._monitors = {
            w.name: UplinkMonitor(w.name, w.probe.targets, config.monitor_for(w), now)
            for w in config.wans
        }
        self._detect_ms: dict[str, int] = {}
        self._admin: dict[str, Admin] = {}
        self._spent: dict[str, str] = {}  # quota used up -> quota.exhausted (engine/quota.py)
        self._now = now
        self._settle_by: float | None = now + STARTUP_GRACE  # None once settled
        self._intent = decide(config, self._health(), self._preferred(), None)
        self._standby(now)

    # ----------------------------------------------------------------- inputs

    def due(self, now: float) -> list[ProbeRequest]:
        """Probes to send now; they are outstanding from here on."""
        self._now = max(self._now, now)
        return [
            ProbeRequest(name, target, seq)
            for name, m in self._monitors.items()
            for target, seq in m.due(now)
        ]

    def reply(
        self, wan: str, seq: int, rtt: float, now: float, portal: str | None = None
    ) -> list[Event]:
        """A probe's answer (``portal``: where a captive portal sent an HTTP probe);
        late ones count too, unknown ones are ignored."""
        self._now = max(self._now, now)
        m = self._monitors.get(wan)
        if m is None:
            return []
        return self._replan(m.reply(seq, rtt, now, portal), now)

    def carrier(self, wan: str, up: bool, now: float) -> list[Event]:
        """Link carrier from netlink: down is DOWN at once; up lets probes decide."""
        self._now = max(self._now, now)
        m = self._monitors.get(wan)
        if m is None:
            return []
        return self._replan(m.carrier(up, now), now)

    def traffic_stall(self, wan: str, now: float) -> list[Event]:
        """The kernel saw traffic leave ``wan`` with nothing coming back: probe now.

        Only a trigger: it may start the confirmation burst early (rate limited),
        never mark the uplink down by itself.
        """
        self._now = max(self._now, now)
        m = self._monitors.get(wan)
        if m is None:
            return []
        return m.traffic_stall(now)

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
        self._monitors[wan] = UplinkMonitor(wan, w.probe.targets, self._config.monitor_for(w), now)
        self._detect_ms.pop(wan, None)
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
        for m in self._monitors.values():
            events += m.expire(now)
            events += m.clock(now)
        if self._settle_by is not None:
            events += self._replan_now(now)
        return self._replan(events, now)

    def reload(self, config: Config, now: float) -> list[Event]:
        """Switch to a new config; uplinks whose name survives keep their health."""
        self._now = max(self._now, now)
        old = self._monitors
        monitors: dict[str, UplinkMonitor] = {}
        for w in config.wans:
            m = old.get(w.name)
            if m is None:
                m = UplinkMonitor(w.name, w.probe.targets, config.monitor_for(w), now)
            else:
                m.reconfigure(w.probe.targets, config.monitor_for(w), now)
            monitors[w.name] = m
        added = [n for n in monitors if n not in old]
        removed = [n for n in old if n not in monitors]
        self._monitors = monitors
        self._config = config
        for n in removed:
            self._detect_ms.pop(n, None)
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
        soonest = min((m.next_wakeup() for m in self._monitors.values()), default=math.inf)
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
            out.append(
                WanStatus(
                    name=name,
                    state=s.health,
                    rtt_ms=None if srtt is None else round(srtt * 1000, 1),
                    loss_pct=round(m.loss_pct(now), 1),
                    since=s.since,
                    preferred=s.preferred,
                    targets=m.target_states(),
                    admin=self._admin.get(name, Admin.ENABLED),
                    phase=phase,
                    progress=progress,
                    portal=s.portal_url if s.health is Health.PORTAL else None,
                )
            )
        return out

    def probes_sent(self) -> dict[str, int]:
        """Probes sent per uplink since start (bench and metrics)."""
        return {name: m.sent for name, m in self._monitors.items()}

    # ----------------------------------------------------------------- policy

    def _health(self) -> dict[str, Health]:
        return {n: m.state.health for n, m in self._monitors.items()}

    def _preferred(self) -> dict[str, bool]:
        return {n: m.state.preferred for n, m in self._monitors.items()}

    def _replan(self, events: list[Event], now: float) -> list[Event]:
        for e in events:
            if e.name in _DETECTED:
                detect = e.fields.get("detect_ms")
                self._detect_ms[str(e.fields["wan"])] = detect if isinstance(detect, int) else 0
        if any(e.name in _REPLAN for e in events):
            return events + self._replan_now(now)
        return events

    def _replan_now(self, now: float) -> list[Event]:
        events = self._decide(now)
        self._standby(now)
        return events

    def _standby(self, now: float) -> None:
        """Metered uplinks that carry nothing are probed at the standby rate."""
        active = self._intent.active
        for w in self._config.wans:
            m = self._monitors.get(w.name)
            if m is not None:
                m.standby(w.metered and w.name not in active, now)

    def _decide(self, now: float) -> list[Event]:
        old = self._intent
        events = self._replan_policy(now)
        if self._intent is old:
            return events
        before = {p.index: p for p in old.rules}
        for p in self._intent.rules:
            was = before.get(p.index)
            if was is None or str(was) != str(p):  # not: a spare uplink came or went
                events.append(
                    event(
                        now,
                        "rule.path",
                        rule=p.name,
                        **{"from": str(was) if was is not None else None, "to": str(p)},
                    )
                )
        return events

    def _replan_policy(self, now: float) -> list[Event]:
        old = self._intent
        health = self._health()
        if self._settle_by is not None:
            if now < self._settle_by and Health.UNKNOWN in health.values():
                return []
            self._settle_by = None
            self._intent = decide(
                self._config, health, self._preferred(), old, self._admin, spent=self._spent
            )
            if self._intent.stale:
                return [event(now, "policy.stale", keeping=",".join(self._intent.active))]
            return [event(now, "policy.select", to=",".join(self._intent.active))]
        new = decide(self._config, health, self._preferred(), old, self._admin, spent=self._spent)
        self._intent = new
        if new.stale:
            if old.stale and old.active == new.active:
                return []
            return [event(now, "policy.stale", keeping=",".join(new.active))]
        if new.active == old.active:
            return []
        dropped = [a for a in old.active if a not in new.active]
        failed = [
            a
            for a in dropped
            if health.get(a) is not Health.UP or a in self._admin or a in self._spent
        ]
        if old.stale or failed:
            cause = failed[0] if failed else None
            reason = None
            if cause in self._admin:
                reason = self._admin[cause].value
            elif cause in self._spent and health.get(cause) is Health.UP:
                reason = "quota"
            elif cause is not None:
                reason = health.get(cause, Health.UNKNOWN).value
            return [
                event(
                    now,
                    "policy.failover",
                    **{"from": ",".join(old.active), "to": ",".join(new.active)},
                    cause=cause,
                    reason=reason,
                    detect_ms=self._detect_ms.get(cause)
                    if cause and reason not in ("quota", *(a.value for a in Admin))
                    else None,
                )
            ]
        return [
            event(
                now, "policy.failback", **{"from": ",".join(old.active), "to": ",".join(new.active)}
            )
        ]


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
