"""Uplink health: the state machine, and the design of the whole detection.

Pure: time comes in as arguments, nothing here does I/O. ``step(state, sample,
rules)`` is the state machine (data in, data out); :class:`UplinkMonitor`
(monitor.py) decides when to probe, turns replies and timeouts into samples and
feeds them to ``step``; stats.py holds the loss and RTT figures.

How a dead uplink is told from a lossy one (figures: ``python bench/engine.py``):

* Healthy cadence: one probe per ``interval`` rotating over the targets,
  stretched to pay for suspicion probes (averaged over BUDGET_TAU), so an uplink
  costs one probe per ``interval`` on average even at 20 % loss (the promise
  "<= 2 probes/s per uplink, all targets together").
* Timeout per probe: RFC 6298 ``srtt + 4 * rttvar``, floored at ``min_timeout``
  (RFC 6298's 1 s floor is for TCP with delayed ACKs; an echo reply is
  immediate), or at ``clean_min_timeout`` once the path is measured clean: 20
  RTT samples of the method, loss within LOSS_FLOOR and no late reply over the
  long window (monitor._floor). The floor covers a delay the smoothed RTTVAR
  has not seen yet (a queue filled by an upload); both floors enter detection
  twice (the first loss, and the last one), so on a 0.5 ms path 50 ms instead
  of 150 ms takes 200 ms off. A reply after its timeout still counts as life:
  it ends the run (so an RTT step shorter than the run, ~2 floors + 100 ms,
  fails nothing over) and keeps the conservative floor for the long window.
* A lost probe opens a *suspicion* episode: probes every ``fast_interval`` over
  all answering targets, never more in flight than could still be needed.
* Sequential test instead of a fixed count: the uplink is DOWN after ``k``
  losses with no reply of any kind in between, where ``k`` is the smallest
  number (>= ``down_after``) whose chance under "merely lossy" is below
  ``alpha``. That chance is the Beta-Binomial predictive probability of ``k``
  losses in a row given the recent loss record (prior: LOSS_FLOOR with
  PRIOR_SAMPLES weight), over a short and a long window, whichever is more
  pessimistic. ``alpha`` is FALSE_DOWNS_PER_DAY spread over one day of healthy
  probes, since every false episode starts with one lost healthy probe. A clean
  link thus needs ~6 losses (~0.4 s after the first probe goes unanswered), a
  20 % lossy one ~12. A young record (shorter than one loss window, e.g. the
  first seconds after start) with no loss but the run's first is given a full
  clean record's ``k`` (stats.losses_to_down): held to the test as it stands,
  a few seconds of answers asked for 9-10 losses, the first failover after
  start took ~0.9 s instead of ~0.6 s. A link lossy from the start (loss p)
  gets this once at most, so it risks p ** 6 per start.
* The loss record counts every probe, suspicion ones included: whether a probe
  is sent never depends on its own fate, so under iid loss they are unbiased
  samples; an outage's own losses are dropped when it is declared DOWN, and
  nothing is recorded while DOWN. A loss whose probe left before the latest
  reply does not count toward ``k`` (the link answered after it left).
* Early trigger from the office's own traffic (``traffic_stall``): when the
  kernel sees packets leave the uplink and nothing come back for a few RTTs,
  the confirmation burst (probes every ``fast_interval``) starts at once instead
  of after the next healthy probe and its timeout. It only starts probing:
  DOWN still needs ``k`` lost pinned probes, so a quiet or one-way flow cannot
  fail an uplink over. Bursts are rate limited (one per ``interval``, none while
  the recent extra probes use MAX_TRIGGER_SHARE of the budget), so the budget
  above still holds; an idle line never triggers.
* A target that stays silent while another answers is set aside (target.silent)
  and rechecked every RECHECK_INTERVAL; the uplink is DOWN only when every
  target still in use is silent at once.
* DEGRADED needs loss above ``degraded_loss`` with significance (binomial test
  against 3/4 of the threshold) or ``srtt >= degraded_rtt``; it ends below half
  the loss threshold and 0.8 of the RTT threshold (hysteresis).
* After a DOWN, ``up_after`` answers in a row make it UP, but it is *preferred*
  only after ``hold``, doubled for each other down within the flap window,
  capped at ``max_hold``.

Measured (bench/engine.py, seed 1, defaults): silent outage to wan.down median
0.64 s on a clean link, 0.70 s over 0-20 % loss, max 1.3 s (at 20 % loss);
2.0 probes/s per uplink clean and at 20 % loss; no false down, degraded or
failover in 72 simulated hours at each of 10, 20 and 30 % loss with
100 +- 20 ms RTT. (A naive 200 ms / 3-misses loop there: 5 probes/s * 0.2^3 =
one false down every ~25 s.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final

from wanwatch.config import Monitor
from wanwatch.engine.events import Event, event
from wanwatch.engine.intent import Health

MIN_FLAP_WINDOW: Final = 600.0  # downs are remembered for max(this, 2 * max_hold)
RTT_RECOVERED: Final = 0.8  # leave DEGRADED below this fraction of degraded_rtt
# HTTP verdicts in a row that make an uplink PORTAL, and good ones that end it: a
# redirect is an answer, not a loss, so no statistics are needed; the second one
# (sent fast_interval after the first) rules out one stray reply.
PORTAL_CONFIRM: Final = 2


# --------------------------------------------------------------------------- state machine


@dataclass(frozen=True, slots=True)
class Rules:
    """The thresholds ``step`` needs (from config.monitor_for)."""

    wan: str
    up_after: int
    hold: float
    max_hold: float
    degraded_loss: float  # percent
    degraded_rtt: float  # seconds

    @classmethod
    def from_monitor(cls, wan: str, m: Monitor) -> Rules:
        return cls(wan, m.up_after, m.hold, m.max_hold, m.degraded_loss, m.degraded_rtt)

    @property
    def flap_window(self) -> float:
        return max(MIN_FLAP_WINDOW, 2 * self.max_hold)


@dataclass(frozen=True, slots=True)
class HealthState:
    health: Health = Health.UNKNOWN
    since: float = 0.0
    carrier: bool = True
    # the run of losses with no reply since its first one (a suspicion episode)
    run_lost: int = 0
    run_start: float = 0.0  # send time of the run's first lost probe
    run_needed: int = 0  # losses that make it DOWN, fixed when the run starts
    last_reply: float = -math.inf  # arrival of the latest reply of any kind
    good_run: int = 0  # replies in a row
    rise_needed: int = 2
    up_since: float | None = None
    hold_for: float = 0.0
    preferred: bool = False
    downs: tuple[float, ...] = ()  # recent downs and portals, for flap damping
    portal_run: int = 0  # HTTP probes in a row sent to a portal
    portal_start: float = 0.0  # arrival of that run's first one
    portal_url: str | None = None  # where the latest one was sent
    web_good: int = 0  # HTTP probes in a row answered as expected, while PORTAL

    @property
    def suspicious(self) -> bool:
        return self.run_lost > 0 and self.health is not Health.DOWN and self.carrier

    @property
    def preferred_at(self) -> float | None:
        if self.preferred or self.up_since is None:
            return None
        return self.up_since + self.hold_for


@dataclass(frozen=True, slots=True)
class Answered:
    """A reply of any kind arrived at ``at`` (late ones too)."""

    at: float


@dataclass(frozen=True, slots=True)
class Lost:
    """A probe sent at ``sent_at`` timed out at ``at``; ``needed`` is the current test."""

    at: float
    sent_at: float
    needed: int


@dataclass(frozen=True, slots=True)
class CarrierChange:
    at: float
    up: bool


@dataclass(frozen=True, slots=True)
class Quality:
    """Windowed figures: loss %, whether it is significantly above the threshold, srtt."""

    at: float
    loss_pct: float
    loss_high: bool
    srtt: float | None


@dataclass(frozen=True, slots=True)
class Web:
    """An HTTP probe's verdict (after its Answered): ``portal`` is where a captive
    portal sent it instead of the expected answer, None for the expected answer."""

    at: float
    portal: str | None


@dataclass(frozen=True, slots=True)
class Clock:
    at: float


Sample = Answered | Lost | CarrierChange | Quality | Web | Clock


def initial_state(up_after: int, now: float) -> HealthState:
    return HealthState(since=now, rise_needed=min(up_after, 2))


def step(state: HealthState, sample: Sample, rules: Rules) -> tuple[HealthState, list[Event]]:
    """One sample in, the next state and its events out. Pure."""
    if isinstance(sample, Answered):
        return _answered(state, sample, rules)
    if isinstance(sample, Lost):
        return _lost(state, sample, rules)
    if isinstance(sample, Quality):
        return _quality(state, sample, rules)
    if isinstance(sample, CarrierChange):
        return _carrier(state, sample, rules)
    if isinstance(sample, Web):
        return _web(state, sample, rules)
    return _clock(state, sample, rules)


def _rising(s: HealthState) -> bool:
    """DOWN or UNKNOWN with the answers in a row that a rise needs."""
    return s.health in (Health.UNKNOWN, Health.DOWN) and s.carrier and s.good_run >= s.rise_needed


def _answered(s: HealthState, a: Answered, r: Rules) -> tuple[HealthState, list[Event]]:
    s = replace(s, run_lost=0, last_reply=a.at, good_run=s.good_run + 1)
    if not _rising(s) or 0 < s.portal_run < PORTAL_CONFIRM:
        return s, []  # (an unconfirmed portal: its confirming probe decides the rise)
    if s.portal_run:
        return _enter_portal(s, a.at, r)
    return _rise(s, a.at, r, s.good_run)


def _rise(s: HealthState, at: float, r: Rules, good: int) -> tuple[HealthState, list[Event]]:
    """UP after a down or a portal, preferred once its hold (flap damping) has passed."""
    downs = tuple(t for t in s.downs if at - t < r.flap_window)
    if not s.downs:  # first rise since start: nothing to hold against
        hold_for = 0.0
    else:
        hold_for = max(r.hold, min(r.max_hold, r.hold * 2 ** max(len(downs) - 1, 0)))
    new = replace(
        s,
        health=Health.UP,
        since=at,
        up_since=at,
        hold_for=hold_for,
        preferred=False,
        downs=downs,
    )
    events = [event(at, "wan.up", wan=r.wan, prev=s.health.value, good=good, hold_s=hold_for)]
    new, more = _clock(new, Clock(at), r)
    return new, events + more


def _web(s: HealthState, w: Web, r: Rules) -> tuple[HealthState, list[Event]]:
    if w.portal is not None:
        s = replace(
            s,
            portal_run=s.portal_run + 1,
            portal_start=s.portal_start if s.portal_run else w.at,
            portal_url=w.portal,
            web_good=0,
        )
        if s.portal_run < PORTAL_CONFIRM or s.health is Health.PORTAL:
            return s, []
        if s.health in (Health.UP, Health.DEGRADED) or _rising(s):
            return _enter_portal(s, w.at, r)
        return s, []
    if s.health is Health.PORTAL:
        good = s.web_good + 1
        if good < PORTAL_CONFIRM:
            return replace(s, web_good=good), []
        return _rise(replace(s, portal_run=0, web_good=0), w.at, r, good)
    s = replace(s, portal_run=0)
    return _rise(s, w.at, r, s.good_run) if _rising(s) else (s, [])


def _enter_portal(s: HealthState, at: float, r: Rules) -> tuple[HealthState, list[Event]]:
    new = replace(
        s,
        health=Health.PORTAL,
        since=at,
        up_since=None,
        preferred=False,
        web_good=0,
        downs=(*(t for t in s.downs if at - t < r.flap_window), at),
    )
    ev = event(
        at,
        "wan.portal",
        wan=r.wan,
        url=s.portal_url,
        detect_ms=round((at - s.portal_start) * 1000),
        prev=s.health.value,
    )
    return new, [ev]


def _lost(s: HealthState, lo: Lost, r: Rules) -> tuple[HealthState, list[Event]]:
    if lo.sent_at < s.last_reply or s.health is Health.DOWN or not s.carrier:
        # Sent before the latest reply: the link answered after it left, so it
        # says nothing about now. While DOWN only the rise counts.
        return replace(s, good_run=0), []
    if s.run_lost == 0:
        s = replace(s, run_start=lo.sent_at, run_needed=lo.needed)
    lost = s.run_lost + 1
    if lost < s.run_needed:
        return replace(s, run_lost=lost, good_run=0), []
    detect_ms = round((lo.at - s.run_start) * 1000)
    new = replace(
        s,
        health=Health.DOWN,
        since=lo.at,
        run_lost=lost,
        good_run=0,
        rise_needed=r.up_after,
        up_since=None,
        preferred=False,
        downs=(*(t for t in s.downs if lo.at - t < r.flap_window), lo.at),
    )
    ev = event(
        lo.at,
        "wan.down",
        wan=r.wan,
        reason="lost",
        lost=lost,
        needed=s.run_needed,
        detect_ms=detect_ms,
        prev=s.health.value,
    )
    return new, [ev]


def _quality(s: HealthState, q: Quality, r: Rules) -> tuple[HealthState, list[Event]]:
    rtt_high = q.srtt is not None and q.srtt >= r.degraded_rtt
    rtt_ms = None if q.srtt is None else round(q.srtt * 1000, 1)
    loss = round(q.loss_pct, 1)
    if s.health is Health.UP and (q.loss_high or rtt_high):
        reason = "loss" if q.loss_high else "rtt"
        ev = event(q.at, "wan.degraded", wan=r.wan, reason=reason, loss_pct=loss, rtt_ms=rtt_ms)
        return replace(s, health=Health.DEGRADED, since=q.at), [ev]
    if (
        s.health is Health.DEGRADED
        and q.loss_pct <= r.degraded_loss / 2
        and (q.srtt is None or q.srtt < r.degraded_rtt * RTT_RECOVERED)
    ):
        ev = event(q.at, "wan.recovered", wan=r.wan, loss_pct=loss, rtt_ms=rtt_ms)
        return replace(s, health=Health.UP, since=q.at), [ev]
    return s, []


def _carrier(s: HealthState, c: CarrierChange, r: Rules) -> tuple[HealthState, list[Event]]:
    events = [event(c.at, "wan.carrier", wan=r.wan, up=c.up)]
    if not c.up:
        if not s.carrier:
            return s, []
        new = replace(
            s,
            carrier=False,
            run_lost=0,
            good_run=0,
            rise_needed=r.up_after,
            up_since=None,
            preferred=False,
        )
        if s.health is not Health.DOWN:
            new = replace(
                new,
                health=Health.DOWN,
                since=c.at,
                downs=(*(t for t in s.downs if c.at - t < r.flap_window), c.at),
            )
            events.append(
                event(
                    c.at, "wan.down", wan=r.wan, reason="carrier", detect_ms=0, prev=s.health.value
                )
            )
        return new, events
    if s.carrier:
        return s, []
    # Carrier back: probes decide, with the full rise as after any down.
    new = replace(
        s,
        carrier=True,
        health=Health.UNKNOWN,
        since=c.at,
        run_lost=0,
        good_run=0,
        rise_needed=r.up_after,
        last_reply=-math.inf,
    )
    return new, events


def _clock(s: HealthState, c: Clock, r: Rules) -> tuple[HealthState, list[Event]]:
    due = s.preferred_at
    if due is None or c.at < due or s.health not in (Health.UP, Health.DEGRADED):
        return s, []
    ev = event(c.at, "wan.preferred", wan=r.wan, held_s=round(s.hold_for, 3))
    return replace(s, preferred=True), [ev]
