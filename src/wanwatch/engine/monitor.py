"""UplinkMonitor: when to probe one uplink, and what its replies and timeouts mean.

It schedules probes (healthy cadence, suspicion bursts, rechecks of silent
targets), turns replies and timeouts into samples and feeds them to the state
machine in health.py, whose docstring explains the design. Pure: time comes in
as arguments, probes go out as requests (the config's target: its method says
how the hub asks it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

from wanwatch.config import Monitor
from wanwatch.config.model import Target
from wanwatch.engine.events import Event, event
from wanwatch.engine.health import (
    PORTAL_CONFIRM,
    Answered,
    CarrierChange,
    Clock,
    Lost,
    Quality,
    Rules,
    Sample,
    Web,
    initial_state,
    step,
)
from wanwatch.engine.intent import Health
from wanwatch.engine.stats import (
    LOSS_FLOOR,
    LossWindow,
    ProbeSample,
    RttEstimator,
    binomial_tail,
    losses_to_down,
)

SEQ_MOD: Final = 1 << 16  # ICMP echo sequence numbers are 16 bits (RFC 792)
# The uplink's RTT (status, degraded_rtt, the traffic watcher's window) is that of
# its first method here that has answered: ICMP and TCP take one round trip, a DNS
# query may wait on the resolver, an HTTP probe takes two round trips and a server.
RTT_ORDER: Final = ("icmp", "tcp", "dns", "http")

# Design target for false downs of a merely lossy uplink, per day (the bench
# measures the real figure; the spec allows 1/day, we aim for ~0).
FALSE_DOWNS_PER_DAY: Final = 0.01
LONG_WINDOW_FACTOR: Final = 10  # long window = loss_window * this
RECHECK_INTERVAL: Final = 5.0  # slow probe of a silent target
LATE_REPLY_MEMORY: Final = 30.0  # how long a timed-out probe can still be answered
DEGRADED_NULL: Final = 0.75  # degraded test: H0 is loss <= 3/4 of the threshold
DEGRADED_SIGNIFICANCE: Final = 1e-6  # ~0.003 false degraded/day at 2880 windows/day
MIN_QUALITY_SAMPLES: Final = 10
# Probe budget: suspicion and recheck probes are paid for by stretching the
# healthy cadence, so the long-run rate stays one probe per ``interval``. The
# cost is averaged over BUDGET_TAU: paying a burst back at once (a token bucket)
# left the uplink unprobed for ~2.7 s after each false alarm (bench, 10 % loss).
BUDGET_TAU: Final = 60.0
MIN_HEALTHY_SHARE: Final = 0.25  # the healthy interval stretches at most 4x
# Bursts started by traffic (traffic_stall) are refused while the recent extra
# probes take this share of the budget: half of what the healthy cadence can give
# up, the other half left for loss-started episodes, so the stretch never hits
# its floor and the rate stays one probe per ``interval`` (a one-way flow at 20 %
# loss and 100 ms RTT: 2.00 /s, test_engine_scenarios; with the whole 0.75 it was
# 2.06 /s).
MAX_TRIGGER_SHARE: Final = (1.0 - MIN_HEALTHY_SHARE) / 2
# A path is measured clean (the probe timeout may go down to clean_min_timeout)
# once its method's RTT estimator has this many samples: RFC 6298's gains leave
# 0.875 ** 20 = 7 % of the first sample in SRTT and 0.75 ** 20 = 0.3 % of its
# RTTVAR guess (rtt / 2).
PROVEN_RTTS: Final = 20


# --------------------------------------------------------------------------- the monitor

_HEALTHY, _FAST, _RECHECK = 0, 1, 2


class _Target:
    __slots__ = (
        "label",
        "last_reply",
        "miss_run",
        "next_at",
        "own",
        "recheck_at",
        "silent",
        "spec",
    )

    def __init__(self, spec: Target, now: float) -> None:
        self.label = spec.label
        self.silent = False
        self.miss_run = 0
        self.last_reply = -math.inf
        self.recheck_at = math.inf
        self.next_at = now  # own cadence: the next healthy probe
        self.set(spec)

    def set(self, spec: Target) -> None:
        self.spec = spec
        self.own = spec.own_interval()  # None: the uplink's shared cadence (ICMP)


def _answering(t: _Target) -> bool:
    return not t.silent


def _shared(t: _Target) -> bool:
    return t.own is None


def _shared_answering(t: _Target) -> bool:
    return t.own is None and not t.silent


class _Probe:
    __slots__ = ("deadline", "kind", "sample", "sent_at", "target")

    def __init__(self, target: _Target, sent_at: float, deadline: float, kind: int) -> None:
        self.target = target
        self.sent_at = sent_at
        self.deadline = deadline
        self.kind = kind
        self.sample: ProbeSample | None = None


class UplinkMonitor:
    """Probing and judging of one uplink. Call ``expire``/``clock`` before ``due``."""

    def __init__(
        self,
        wan: str,
        targets: Sequence[Target],
        params: Monitor,
        now: float,
        *,
        phase: float = 0.0,
    ) -> None:
        """``phase`` delays the first shared-cadence probe (interleaves two families')."""
        self.wan = wan
        self.sent = 0  # probes sent, for the bench and metrics
        self._targets = [_Target(t, now) for t in targets]
        self._params = params
        self._rules = Rules.from_monitor(wan, params)
        self._alpha = FALSE_DOWNS_PER_DAY * params.interval / 86400
        self.state = initial_state(params.up_after, now)
        self._rtts = {method: RttEstimator() for method in RTT_ORDER}
        self._standby = False  # metered and carrying nothing (Engine sets it)
        self._method_miss: dict[str, int] = {}  # misses in a row per method, none answered
        self._late_at: dict[str, float] = {}  # latest reply after its timeout, per method
        self.loss = LossWindow(params.loss_window, params.loss_window * LONG_WINDOW_FACTOR)
        self._seq = 0
        self._rotation = 0
        self._outstanding: dict[int, _Probe] = {}
        self._expired: dict[int, _Probe] = {}  # timed out, a late reply still counts
        self._next_healthy = now + phase
        self._next_fast = now
        self._extra = 0.0  # decaying average of suspicion + recheck probes per second
        self._extra_at = now
        # A burst started by traffic_stall: fast probes before any loss; its own
        # ``needed`` stands in for the run's until a probe of it is lost.
        self._burst_needed = 0
        self._next_trigger = now
        self.triggers = 0  # bursts started by traffic, for the bench and tests

    # ----------------------------------------------------------------- configuration

    def reconfigure(self, targets: Sequence[Target], params: Monitor, now: float) -> None:
        """New settings; health, figures and answering targets are kept."""
        old = {t.label: t for t in self._targets}
        self._targets = []
        for spec in targets:
            t = old.get(spec.label) or _Target(spec, now)
            t.set(spec)
            self._targets.append(t)
        kept = set(self._targets)
        self._outstanding = {q: p for q, p in self._outstanding.items() if p.target in kept}
        self._expired = {q: p for q, p in self._expired.items() if p.target in kept}
        self._params = params
        self._rules = Rules.from_monitor(self.wan, params)
        self._alpha = FALSE_DOWNS_PER_DAY * params.interval / 86400
        self.loss.short.horizon = params.loss_window
        self.loss.long.horizon = params.loss_window * LONG_WINDOW_FACTOR

    # ----------------------------------------------------------------- probing

    def due(self, now: float) -> list[tuple[Target, int]]:
        """Probes to send now (target, seq); they become outstanding.

        ICMP targets share the healthy cadence (one probe per ``interval``, in
        turn); each target of a slower method runs at its own interval; a
        suspicion burst probes every answering target, of every method, in turn.
        """
        out: list[tuple[Target, int]] = []
        if not self.state.carrier:
            return out
        for t in self._targets:
            if t.silent and now >= t.recheck_at:
                t.recheck_at = now + RECHECK_INTERVAL
                out.append(self._send(t, now, _RECHECK))
        if self._fast():
            fast = self._params.fast_interval
            while now >= self._next_fast and self._room() > 0:
                pick = self._rotate(_answering) or self._rotate(lambda t: True)
                if pick is None:
                    break  # no target at all (the config requires one)
                out.append(self._send(pick, now, _FAST))
                self._next_fast = now + fast
            return out
        if now >= self._next_healthy and any(map(_shared, self._targets)):
            # All ICMP targets silent: the slower methods carry the uplink (ICMP
            # filtered); only when every target is silent are they probed in turn.
            pick = self._rotate(_shared_answering)
            if pick is None and not any(map(_answering, self._targets)):
                pick = self._rotate(_shared)
            if pick is not None:
                out.append(self._send(pick, now, _HEALTHY))
            self._next_healthy = now + self.healthy_interval(now)
        for t in self._targets:
            if t.own is not None and not t.silent and now >= t.next_at:
                out.append(self._send(t, now, _HEALTHY))
        return out

    def healthy_interval(self, now: float) -> float:
        """``interval``, stretched by the recent cost of suspicion and rechecks
        (``standby_interval`` at least, on a metered standby)."""
        interval = self._params.interval
        share = 1.0 - self._extra_rate(now) * interval
        stretched = interval / max(MIN_HEALTHY_SHARE, share)
        return max(stretched, self._params.standby_interval) if self._resting() else stretched

    def _period(self, own: float) -> float:
        """A target's own interval (``standby_interval`` at least, on a metered standby)."""
        return max(own, self._params.standby_interval) if self._resting() else own

    def _resting(self) -> bool:
        """A metered standby that answers: its probes only keep its state fresh."""
        return self._standby and self.state.health in (Health.UP, Health.DEGRADED, Health.PORTAL)

    def standby(self, on: bool, now: float) -> None:
        """Metered and carrying nothing (``on``); carrying again probes it at once."""
        if on == self._standby:
            return
        self._standby = on
        if not on:
            self._next_healthy = min(self._next_healthy, now)
            for t in self._targets:
                if t.own is not None:
                    t.next_at = min(t.next_at, now + t.own)

    def _extra_rate(self, now: float) -> float:
        return self._extra * math.exp(-(now - self._extra_at) / BUDGET_TAU)

    def next_wakeup(self) -> float:
        """Earliest time ``due``/``expire``/``clock`` has something to do."""
        s = self.state
        times = [p.deadline for p in self._outstanding.values()]
        if s.carrier:
            if self._fast():
                if self._room() > 0:
                    times.append(self._next_fast)
            else:
                if any(map(_shared, self._targets)):
                    times.append(self._next_healthy)
                times.extend(t.next_at for t in self._targets if t.own is not None and not t.silent)
            times.extend(t.recheck_at for t in self._targets if t.silent)
        if (at := s.preferred_at) is not None:
            times.append(at)
        return min(times, default=math.inf)

    def _fast(self) -> bool:
        """A suspicion episode or a traffic-started burst is under way."""
        return self.state.suspicious or self._burst_needed > 0

    def _room(self) -> int:
        """Probes that may still be sent in this episode: never more than could count."""
        s = self.state
        in_flight = sum(
            1
            for p in self._outstanding.values()
            if p.kind != _RECHECK and p.sent_at >= s.last_reply
        )
        needed = s.run_needed if s.suspicious else self._burst_needed
        return needed - s.run_lost - in_flight

    def traffic_stall(self, now: float) -> list[Event]:
        """Traffic leaves the uplink and nothing returns: start the burst now, if allowed.

        Refused while the uplink is not UP/DEGRADED, already probing fast, within
        ``interval`` of the previous burst, or while the recent extra probes take
        MAX_TRIGGER_SHARE of the budget.
        """
        s = self.state
        interval = self._params.interval
        if (
            not s.carrier
            or s.health not in (Health.UP, Health.DEGRADED)
            or self._fast()
            or now < self._next_trigger
            or self._extra_rate(now) * interval >= MAX_TRIGGER_SHARE
        ):
            return []
        self._burst_needed = self._needed(now)
        self._next_fast = now
        self._next_trigger = now + interval
        self.triggers += 1
        return [event(now, "wan.suspect", wan=self.wan, trigger="traffic")]

    def _rotate(self, pick: Callable[[_Target], bool]) -> _Target | None:
        """The next target in turn that ``pick`` accepts (one rotation for every kind)."""
        targets = self._targets
        n = len(targets)
        for i in range(n):
            t = targets[(self._rotation + i) % n]
            if pick(t):
                self._rotation = (self._rotation + i + 1) % n
                return t
        return None

    def _send(self, target: _Target, now: float, kind: int) -> tuple[Target, int]:
        seq = self._seq
        for _ in range(SEQ_MOD):  # skip numbers still awaiting (or late for) a reply
            if seq not in self._outstanding and seq not in self._expired:
                break
            seq = (seq + 1) % SEQ_MOD
        self._seq = (seq + 1) % SEQ_MOD
        method = target.spec.method
        timeout = self._rtts[method].timeout(self._floor(method, now), self._params.timeout)
        self._outstanding[seq] = _Probe(target, now, now + timeout, kind)
        if kind != _HEALTHY:
            self._extra = self._extra_rate(now) + 1.0 / BUDGET_TAU
            self._extra_at = now
        if target.own is not None:
            target.next_at = now + self._period(target.own)  # a burst probe counts as its turn
        self.sent += 1
        return target.spec, seq

    def _floor(self, method: str, now: float) -> float:
        """``min_timeout``, or ``clean_min_timeout`` on a path measured clean: PROVEN_RTTS
        RTT samples, no reply after its timeout and loss within LOSS_FLOOR over the long
        window (the current run's losses aside, so an outage keeps the floor it began on).

        The floor covers the delay a smoothed RTTVAR has not seen yet; a path that has
        shown none of it for a long window is given less. A late reply is that delay
        seen, a lossy path gains little (its k is large) and a young record knows
        little: they keep the conservative floor.
        """
        p = self._params
        if p.clean_min_timeout >= p.min_timeout or self._rtts[method].count < PROVEN_RTTS:
            return p.min_timeout
        if now - self._late_at.get(method, -math.inf) < self.loss.long.horizon:
            return p.min_timeout
        _, (n, lost) = self.loss.counts(now)
        if self.state.suspicious:
            lost -= self.state.run_lost
        return p.min_timeout if lost > LOSS_FLOOR * n else p.clean_min_timeout

    @property
    def rtt(self) -> RttEstimator:
        """The uplink's RTT figures: those of the first method in RTT_ORDER that answered."""
        found = (r for r in self._rtts.values() if r.srtt is not None)
        return next(found, self._rtts[RTT_ORDER[0]])

    # ----------------------------------------------------------------- results

    def _recording(self) -> bool:
        # While DOWN the probes describe the outage, not the link's loss rate.
        return self.state.carrier and self.state.health is not Health.DOWN

    def reply(self, seq: int, rtt: float, now: float, portal: str | None = None) -> list[Event]:
        """A probe's answer; ``portal``: an HTTP probe was sent there instead (a redirect,
        or a page where 204 was expected)."""
        probe = self._outstanding.pop(seq, None)
        late = probe is None
        if probe is None:
            probe = self._expired.pop(seq, None)
            if probe is None:
                return []  # not ours, or too old
        if not self.state.carrier:
            return []
        t = probe.target
        self._rtts[t.spec.method].add(rtt)
        if late:
            self._late_at[t.spec.method] = now
        events: list[Event] = []
        t.miss_run = 0
        self._method_miss[t.spec.method] = 0
        t.last_reply = now
        if t.silent:
            t.silent = False
            t.recheck_at = math.inf
            events.append(event(now, "target.back", wan=self.wan, target=t.label))
        if probe.kind != _RECHECK and self._recording():
            if late:
                if probe.sample is not None:
                    self.loss.unlose(probe.sample)
            else:
                self.loss.add(ProbeSample(now, t, False))
        was_fast = self._fast()
        self._burst_needed = 0  # the link answered: a burst has done its job
        events += self._answered(t, now, portal)
        if was_fast and not self.state.suspicious:
            # The episode proved the link alive just now: restart the cadence from here.
            self._next_healthy = max(self._next_healthy, now + self._params.interval)
        events += self._judge_quality(now)
        return events

    def _answered(self, t: _Target, now: float, portal: str | None) -> list[Event]:
        events: list[Event] = []
        if t.spec.method == "http":
            # Before the Answered: a rise waits for an unconfirmed portal verdict.
            events += self._step(Web(now, portal))
            self._confirm(t, now)
        events += self._step(Answered(now))
        if any(e.name == "wan.up" and e.fields["prev"] != "portal" for e in events):
            # Risen on lower layers: ask the web now, well within the hold, in case a
            # portal took the line while it was down (or before it started).
            asked = {p.target for p in self._outstanding.values()}
            for o in self._targets:
                if o.spec.method == "http" and o is not t and o not in asked:
                    o.next_at = min(o.next_at, now)
        return events

    def _confirm(self, t: _Target, now: float) -> None:
        """A portal verdict that would change the state is checked again at once."""
        s = self.state
        pending = (
            0 < s.web_good < PORTAL_CONFIRM
            if s.health is Health.PORTAL
            else 0 < s.portal_run < PORTAL_CONFIRM
        )
        if pending:
            t.next_at = min(t.next_at, now + self._params.fast_interval)

    def expire(self, now: float) -> list[Event]:
        """Time out outstanding probes whose deadline has passed."""
        late = [(p.deadline, q) for q, p in self._outstanding.items() if p.deadline <= now]
        events: list[Event] = []
        for _, seq in sorted(late):
            probe = self._outstanding.pop(seq)
            self._expired[seq] = probe
            if probe.kind == _RECHECK:
                continue
            events += self._lost(probe, now)
        if self._expired:
            forget = now - LATE_REPLY_MEMORY
            for seq in [q for q, p in self._expired.items() if p.deadline < forget]:
                del self._expired[seq]
        return events

    def _lost(self, probe: _Probe, now: float) -> list[Event]:
        t = probe.target
        recording = self._recording() and not t.silent
        if recording:
            probe.sample = ProbeSample(now, t, True)
            self.loss.add(probe.sample)
        method = t.spec.method
        if recording:  # an outage's misses say nothing about one target or method
            t.miss_run += 1
            self._method_miss[method] = self._method_miss.get(method, 0) + 1
        needed = self._needed(now)
        was_down = self.state.health is Health.DOWN
        events = self._step(Lost(now, probe.sent_at, needed))
        if self.state.suspicious or self.state.health is Health.DOWN:
            self._burst_needed = 0  # the loss run has taken over (or ended it)
        if not was_down and self.state.health is Health.DOWN:
            # The outage's own losses say nothing about the link's normal loss.
            start = self.state.run_start
            self.loss.drop(lambda s: s.at < start)
            for o in self._targets:
                o.miss_run = 0
            self._method_miss.clear()
        elif (
            not t.silent
            and t.miss_run >= needed
            # another target answered after this one's latest miss left: one
            # dead target, not a dead uplink (during an outage nobody answers)
            and any(o is not t and o.last_reply > probe.sent_at for o in self._targets)
        ):
            events += self._silence([t], now)
        elif not t.silent and self._method_filtered(method, probe.sent_at, now):
            events += self._silence(
                [o for o in self._targets if o.spec.method == method and not o.silent], now
            )
        if recording:
            events += self._judge_quality(now)
        return events

    def _method_filtered(self, method: str, sent_at: float, now: float) -> bool:
        """Every target of ``method`` missed, in a row, more often than the other methods'
        loss record makes likely, and another method answered after the latest miss
        left: the method is filtered (a carrier dropping ICMP), not the uplink dead."""
        others = [o for o in self._targets if o.spec.method != method]
        if not any(o.last_reply > sent_at for o in others):
            return False

        def theirs(s: ProbeSample) -> bool:
            return isinstance(s.target, _Target) and s.target.spec.method != method

        return self._method_miss.get(method, 0) >= self._needed(now, theirs)

    def _silence(self, group: list[_Target], now: float) -> list[Event]:
        """Set ``group`` aside (rechecked every RECHECK_INTERVAL); forget its samples."""
        events = []
        for t in group:
            t.silent = True
            t.recheck_at = now + RECHECK_INTERVAL
            events.append(
                event(now, "target.silent", wan=self.wan, target=t.label, lost=t.miss_run)
            )
        gone = set(group)
        self.loss.drop(lambda s: s.target not in gone)
        return events

    def _needed(self, now: float, keep: Callable[[ProbeSample], bool] | None = None) -> int:
        """Losses in a row that make the uplink DOWN, from the loss record (of the
        samples ``keep`` accepts)."""
        short, long = self.loss.counts(now, keep)
        # Only an uplink that has risen can have a young record worth trusting:
        # before its first answers in a row nothing is known at all.
        up = self.state.health is Health.UP
        full = round(self._params.loss_window / self._params.interval) if up else 0
        return losses_to_down(short, long, self._alpha, self._params.down_after, full)

    def loss_pct(self, now: float) -> float:
        (n, lost), _ = self.loss.counts(now)
        return 100.0 * lost / n if n else 0.0

    def _judge_quality(self, now: float) -> list[Event]:
        if self.state.health not in (Health.UP, Health.DEGRADED):
            return []
        (n, lost), _ = self.loss.counts(now)
        pct = 100.0 * lost / n if n else 0.0
        threshold = self._params.degraded_loss / 100
        high = (
            n >= MIN_QUALITY_SAMPLES
            and lost >= threshold * n
            and binomial_tail(n, lost, threshold * DEGRADED_NULL) <= DEGRADED_SIGNIFICANCE
        )
        return self._step(Quality(now, pct, high, self.rtt.srtt))

    def carrier(self, up: bool, now: float) -> list[Event]:
        if not up:
            self._outstanding.clear()  # nothing can come back over a dead link
            self._burst_needed = 0
        events = self._step(CarrierChange(now, up))
        if up:
            self._next_healthy = now
            for t in self._targets:
                t.next_at = now
        return events

    def clock(self, now: float) -> list[Event]:
        return self._step(Clock(now))

    def _step(self, sample: Sample) -> list[Event]:
        self.state, events = step(self.state, sample, self._rules)
        return events

    # ----------------------------------------------------------------- status

    def target_states(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for t in self._targets:
            if t.silent:
                out[t.label] = "silent"
            elif t.last_reply > -math.inf:
                out[t.label] = "answering"
            else:
                out[t.label] = "unknown"
        return out
