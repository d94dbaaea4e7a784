"""Per-ISP bandwidth in the lab: a tc ``tbf`` on each end of the ISP, in its own namespace.

An ISP sells its customer a rate in each direction. The lab gives each uplink
one by shaping the ISP's two veth ends, on egress, where a qdisc works:

* download (internet -> office): ``tbf`` on the ISP's customer-facing veth
  (``cust``), the packets it sends to the router;
* upload (office -> internet): ``tbf`` on its internet-facing veth
  (``uplink``).

Nothing is shaped in the router's namespace: the router sees what a real one
sees, a link that carries so much and queues the rest. This kernel has tbf and
htb but no netem, fq, fq_codel, sfq, prio or cake (docs/lab-notes.md); a single tbf is
enough for one rate per direction. tbf counts whole frames (the 14-byte
Ethernet header included), so TCP goodput tops out near 1448/1514 = 95.6 % of
the rate on a 1500-byte MTU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wanwatch.errors import LabError
from wanwatch.lab import netns

if TYPE_CHECKING:
    from wanwatch.lab.plan import Isp
    from wanwatch.lab.topology import Lab

# Bucket depth. tbf needs at least one full frame; more lets a TCP flow use the
# rate while its ACK clock settles, and the queue in front of the bucket (its
# ``latency``) absorbs a window of packets without dropping.
MIN_BURST = 32 * 1024
BURST_SECONDS = 0.004  # or 4 ms worth of the rate, if larger
DEFAULT_LATENCY_MS = 50.0
MAX_RATE_MBIT = 10_000.0


@dataclass(frozen=True)
class Shape:
    """One ISP's rate in each direction as the kernel holds it (None: not shaped)."""

    wan: str
    down_bps: int | None  # bit/s toward the office (the ISP's customer-facing veth)
    up_bps: int | None  # bit/s toward the internet (its internet-facing veth)


def burst_for(rate_bps: int) -> int:
    """Bucket size in bytes for ``rate_bps``."""
    return max(MIN_BURST, int(rate_bps / 8 * BURST_SECONDS))


def tbf_argv(ifname: str, rate_bps: int, latency_ms: float = DEFAULT_LATENCY_MS) -> list[str]:
    """``tc`` command that makes a ``tbf`` of ``rate_bps`` the root qdisc of ``ifname`` (pure)."""
    if rate_bps < 8000:
        raise LabError(f"a rate under 8 kbit/s is not a link: {rate_bps} bit/s")
    return [
        "tc", "qdisc", "replace", "dev", ifname, "root", "tbf",
        "rate", f"{rate_bps}bit",
        "burst", str(burst_for(rate_bps)),
        "latency", f"{latency_ms:g}ms",
    ]  # fmt: skip


def _mbit(value: float) -> int:
    if not 0 < value <= MAX_RATE_MBIT:
        raise LabError(f"a rate is more than 0 and at most {MAX_RATE_MBIT:g} Mbit/s: {value}")
    return round(value * 1_000_000)


def shape(
    lab: Lab,
    wan: str,
    mbit: float,
    *,
    up_mbit: float | None = None,
    latency_ms: float = DEFAULT_LATENCY_MS,
) -> Shape:
    """Limit the ISP of ``wan`` to ``mbit`` Mbit/s down and ``up_mbit`` (default: the same) up.

    Replaces an earlier shape of that ISP. Returns what the kernel now holds.
    """
    isp = lab.isp(wan)
    down = _mbit(mbit)
    up = _mbit(up_mbit if up_mbit is not None else mbit)
    netns.nsrun(isp.ns, *tbf_argv(isp.cust_if, down, latency_ms))
    netns.nsrun(isp.ns, *tbf_argv(isp.uplink_if, up, latency_ms))
    return current(lab, wan)


def unshape(lab: Lab, wan: str) -> None:
    """Remove the ISP's shaping (a no-op where there is none): veths go back to no qdisc."""
    isp = lab.isp(wan)
    for ifname in (isp.cust_if, isp.uplink_if):
        if _tbf_rate(isp, ifname) is not None:
            netns.nsrun(isp.ns, "tc", "qdisc", "del", "dev", ifname, "root")


def current(lab: Lab, wan: str) -> Shape:
    """The rates the ISP of ``wan`` applies now, read from the kernel."""
    isp = lab.isp(wan)
    return Shape(wan, _tbf_rate(isp, isp.cust_if), _tbf_rate(isp, isp.uplink_if))


def _tbf_rate(isp: Isp, ifname: str) -> int | None:
    """bit/s of the root tbf on ``ifname`` in the ISP's namespace, or None."""
    out = netns.nsrun(isp.ns, "tc", "-j", "qdisc", "show", "dev", ifname).stdout
    try:
        qdiscs = json.loads(out or "[]")
    except json.JSONDecodeError as exc:
        raise LabError(f"{isp.ns}: unreadable tc output for {ifname}: {exc}") from None
    for q in qdiscs:
        if q.get("kind") == "tbf" and q.get("root"):
            # tc -j prints the rate in bytes per second.
            return int(q["options"]["rate"]) * 8
    return None
