"""Loss and RTT figures of one uplink: the statistics behind the health decisions.

Pure arithmetic on probe outcomes; health.py explains how they are used.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Final

# Loss assumed even on a clean record: real losses come in small bursts that an
# iid model underestimates. 3 % keeps a clean link at ~6 losses to DOWN.
LOSS_FLOOR: Final = 0.03
PRIOR_SAMPLES: Final = 20.0  # weight of the LOSS_FLOOR prior, in probes
MAX_NEEDED: Final = 60  # beyond this the link is useless anyway
INITIAL_TIMEOUT: Final = 1.0  # RFC 6298 2.1: RTO before any RTT sample


# --------------------------------------------------------------------------- figures


class RttEstimator:
    """Smoothed RTT and its variation, RFC 6298 section 2 (alpha 1/8, beta 1/4)."""

    __slots__ = ("count", "rttvar", "srtt")

    def __init__(self) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.count = 0  # samples taken

    def add(self, rtt: float) -> None:
        self.count += 1
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
            return
        self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
        self.srtt = 0.875 * self.srtt + 0.125 * rtt

    def timeout(self, floor: float, fixed: float | None) -> float:
        if fixed is not None:
            return fixed
        if self.srtt is None:
            return max(floor, INITIAL_TIMEOUT)
        return max(floor, self.srtt + 4 * self.rttvar)


class ProbeSample:
    __slots__ = ("at", "lost", "target")

    def __init__(self, at: float, target: object, lost: bool) -> None:
        self.at = at
        self.target = target
        self.lost = lost


class _Window:
    __slots__ = ("horizon", "lost", "samples")

    def __init__(self, horizon: float) -> None:
        self.horizon = horizon
        self.samples: deque[ProbeSample] = deque()
        self.lost = 0

    def prune(self, now: float) -> None:
        cutoff = now - self.horizon
        samples = self.samples
        while samples and samples[0].at < cutoff:
            self.lost -= samples.popleft().lost


class LossWindow:
    """Probe outcomes over a short (reported) and a long (steadier) time window."""

    def __init__(self, short: float, long: float) -> None:
        self.short = _Window(short)
        self.long = _Window(long)

    def add(self, sample: ProbeSample) -> None:
        for w in (self.short, self.long):
            w.prune(sample.at)
            w.samples.append(sample)
            w.lost += sample.lost

    def unlose(self, sample: ProbeSample) -> None:
        """A late reply: the probe was not lost after all."""
        if not sample.lost:
            return
        sample.lost = False
        for w in (self.short, self.long):
            if w.samples and sample.at >= w.samples[0].at:
                w.lost -= 1

    def drop(self, keep: Callable[[ProbeSample], bool]) -> None:
        """Forget samples that do not describe the link (an outage, a dead target)."""
        for w in (self.short, self.long):
            w.samples = deque(s for s in w.samples if keep(s))
            w.lost = sum(s.lost for s in w.samples)

    def counts(
        self, now: float, keep: Callable[[ProbeSample], bool] | None = None
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        """((n, lost) short, (n, lost) long), of the samples ``keep`` accepts (all: None)."""
        self.short.prune(now)
        self.long.prune(now)
        if keep is None:
            return (len(self.short.samples), self.short.lost), (
                len(self.long.samples),
                self.long.lost,
            )
        short = [s.lost for s in self.short.samples if keep(s)]
        long = [s.lost for s in self.long.samples if keep(s)]
        return (len(short), sum(short)), (len(long), sum(long))


def needed_losses(n: int, lost: int, alpha: float, at_least: int) -> int:
    """Fewest losses in a row that a link with this record makes less likely than alpha.

    Beta-Binomial predictive probability of k more losses in a row, with a
    Beta(LOSS_FLOOR * PRIOR_SAMPLES, ...) prior, each factor floored at LOSS_FLOOR.
    """
    a = lost + LOSS_FLOOR * PRIOR_SAMPLES
    total = n + PRIOR_SAMPLES
    prob = 1.0
    for i in range(MAX_NEEDED):
        prob *= max(LOSS_FLOOR, (a + i) / (total + i))
        if prob <= alpha and i + 1 >= at_least:
            return i + 1
    return max(MAX_NEEDED, at_least)


def losses_to_down(
    short: tuple[int, int], long: tuple[int, int], alpha: float, at_least: int, full: int
) -> int:
    """Losses in a row that make the uplink DOWN, from its (n, lost) loss records.

    The more pessimistic of the two windows at ``alpha``, except for a young,
    clean record: fewer than ``full`` samples (one loss window at the healthy
    cadence: after start, or after an outage outlasting the long window) and
    no loss but this run's first; ``full`` 0: never young). Tested as it stands, a record of a few
    seconds asks for 9-10 losses where a full clean one asks for 6: the test
    then measures how little we know, not the link. It is given what a full
    record with the same losses needs. The door this opens is narrow: once per
    young record, because the next loss makes it lossy and the full test
    applies, so a link lossy from the start (loss p) risks at most p ** 6 per
    start (bench/engine.py, ``young_record``).
    """
    need = max(needed_losses(*short, alpha, at_least), needed_losses(*long, alpha, at_least))
    n, lost = long
    if n >= full or lost > 1:
        return need
    return min(need, needed_losses(full, lost, alpha, at_least))


def binomial_tail(n: int, k: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    base = math.lgamma(n + 1)
    return min(
        1.0,
        sum(
            math.exp(base - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * lp + (n - j) * lq)
            for j in range(k, n + 1)
        ),
    )
