"""What ``wanwatch status`` shows, put together from the daemon's parts.

Cheap: nothing here waits for the kernel (the backend's counters, conntrack's
and the firewall's, are read off the loop, the leases are one small file). Many
readers at once -- a dashboard, scrapers, scripts polling ``status`` -- share one
snapshot at most STATUS_MAX_AGE old, so their number does not multiply the
loop's work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from wanwatch import status as st
from wanwatch.config import Config
from wanwatch.config.matches import families, rule_families
from wanwatch.daemon.cache import Cached
from wanwatch.daemon.clock import Clock
from wanwatch.daemon.control import encode
from wanwatch.daemon.eventlog import EventLog
from wanwatch.daemon.parts import Backend, LanServices, Links, Probes, Uplinks
from wanwatch.daemon.steer import Steering
from wanwatch.engine import rules
from wanwatch.engine.core import Engine, WanStatus
from wanwatch.engine.intent import Intent, RulePath

STATUS_MAX_AGE = 0.05
STATUS_EVENTS = 20  # the latest events a status answer carries


class StatusSnapshot:
    """The daemon's status, and the encoded control-socket answer shared by its readers."""

    def __init__(
        self,
        *,
        config: Callable[[], Config],
        engine: Engine,
        steering: Steering,
        probes: Probes,
        backend: Backend,
        links: Links,
        uplinks: Uplinks,
        lan: LanServices,
        events: EventLog,
        clock: Clock,
        quotas: Callable[[], dict[str, st.QuotaStatus]] = dict,
    ) -> None:
        self._config = config
        self._engine = engine
        self._steering = steering
        self._probes = probes
        self._backend = backend
        self._links = links
        self._uplinks = uplinks
        self._lan = lan
        self._events = events
        self._clock = clock
        self._quotas = quotas
        self._shared = Cached(self._encoded, clock, STATUS_MAX_AGE)

    def shared(self) -> tuple[st.Status, bytes]:
        """The status and its encoded answer, computed at most once per STATUS_MAX_AGE."""
        return self._shared.get()

    def _encoded(self) -> tuple[st.Status, bytes]:
        status = self.status()
        return status, encode(st.to_json(status))

    def status(self) -> st.Status:
        """Everything ``wanwatch status`` shows, now."""
        now = self._clock()
        steering = self._steering
        intent = steering.intent()
        probes = self._probes.stats()
        age, counters = self._backend.counters()
        extra = self._uplink_extras()
        engine_status = self._engine.status(now)
        quotas = self._quotas()
        wans = [
            st.UplinkStatus(
                name=s.name,
                state=s.state.value,
                rtt_ms=None if s.rtt_ms is None else round(s.rtt_ms, 1),
                loss_pct=round(s.loss_pct, 1),
                since=self._clock.iso(s.since),
                for_s=round(now - s.since, 1),
                preferred=s.preferred,
                carrying=s.name in intent.active,
                admin=s.admin.value,
                phase=s.phase,
                progress=s.progress,
                targets=s.targets,
                probes=st.ProbeStats(**probes.get(s.name, {})),
                families={f: h.value for f, h in s.families.items()},
                carrying6=s.name in intent.active6,
                portal_url=s.portal,
                quota=quotas.get(s.name),
                **extra.get(s.name, {}),
            )
            for s in engine_status
        ]
        heal = steering.heal
        retry = heal.retry
        return st.Status(
            wans=wans,
            active=list(intent.active),
            active6=list(intent.active6),
            mode=intent.mode,
            stale=intent.stale,
            applied=steering.in_force(intent),
            backend_error=heal.error,
            failed_steps=dict(retry.failed),
            retry_in_s=None if retry.due is None else round(max(0.0, retry.due - now), 2),
            contested=heal.tug.contested(),
            repairs=heal.repairs,
            counters=counters,
            counters_age_s=None if age is None else round(age, 2),
            dnsmasq=self._lan.dnsmasq_status(),
            ha=self._lan.ha_status(),
            firewall=self._backend.firewall(),
            rules=self._rules(intent, engine_status),
            leases=self.leases(),
            events=[str(e) for e in self._events.recent(STATUS_EVENTS)],
            uptime_s=round(now - steering.started_at, 1),
            pid=os.getpid(),
        )

    def _rules(self, intent: Intent, uplinks: list[WanStatus]) -> st.RulesStatus | None:
        """Each policy rule's path (the engine's) and why, per family where they differ,
        and its counters (the backend's)."""
        config = self._config()
        if not config.rules:
            return None
        age, traffic = self._backend.rules()
        none = st.RuleTraffic(0, 0, 0)
        preferred = {s.name: s.preferred for s in uplinks}
        # IPv6's own judgement where the uplink has an IPv6 monitor, else IPv4's
        health6 = {s.name: s.families.get("6", s.state) for s in uplinks}
        preferred6 = {
            s.name: s.preferred if s.preferred6 is None else s.preferred6 for s in uplinks
        }
        six = {q.index: q for q in intent.rules6}

        def view(p: RulePath, family: int) -> tuple[str, list[str], str]:
            if family == 4:
                return (
                    p.kind.value,
                    list(rules.where(intent, p)),
                    rules.explain(config, intent, p, preferred),
                )
            q = six[p.index]
            why = rules.explain(config, intent, q, preferred6, family=6, health=health6)
            return q.kind.value, list(rules.where(intent, q, 6)), why

        fams = rule_families(config)
        out: list[st.RuleStatus] = []
        for p in intent.rules:
            # an IPv6-only rule's path is IPv6's, an IPv4-only one has none for IPv6
            own = [f for f in fams[p.index] if f == 4 or p.index in six] or [4]
            (path, via, why), *more = (view(p, f) for f in own)
            other = more[0] if more and more[0][:2] != (path, via) else None
            out.append(
                st.RuleStatus(
                    name=p.name,
                    path=path,
                    uplinks=via,
                    why=why,
                    traffic=traffic.get(p.name, none),
                    path6=None if other is None else other[0],
                    uplinks6=None if other is None else other[1],
                    why6=None if other is None else other[2],
                    families=own,
                )
            )
        return st.RulesStatus(
            rules=out,
            age_s=None if age is None else round(age, 2),
            families=list(families(config)),
        )

    def leases(self) -> list[dict[str, Any]]:
        return self._lan.leases(self._config())

    def _uplink_extras(self) -> dict[str, dict[str, Any]]:
        """Per uplink: kind, link, address and gateway in use, lease (linux/uplinks.py)."""
        resolved = self._backend.resolved()
        carrier = self._links.state()
        return {
            w.name: self._uplinks.status(
                w.name, carrier.get(w.interface, False), resolved.get(w.name)
            )
            for w in self._config().wans
        }
