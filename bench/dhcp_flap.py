"""A DHCP uplink's carrier flap, in the namespace lab; prints ONE JSON object (progress on stderr).

    python bench/dhcp_flap.py [--trials N] [--parts keep,silent,renumber]

Root. Builds examples/office-dynamic.yaml (LTE-DHCP, the primary, gets its address
by DHCP from its ISP's dnsmasq; PPP-BACKUP is point-to-point) with ``wanwatch run``
as its router. Each trial takes the ISP's end of the DHCP uplink down, waits
until the backup carries, changes the ISP (or not) and brings the carrier back
at ``t`` while a LAN client opens a new connection every 20 ms; every figure is
from ``t``, CLOCK_MONOTONIC throughout (one clock for every namespace and the
daemon's events):

- keep: the ISP still gives the same lease. ``renew_s`` (the re-verify's ACK,
  ``dhcp_client.renew``; target 2 s), ``up_s`` (``wan.up``), ``carrying_s`` (the first new
  connection answered through the DHCP uplink: failback, after the hold);
  ``address_kept``: no ``address.remove`` and the same address after;
- renumber (last: the ISP's pool stays moved): the ISP moved its pool and forgot
  its leases (a modem that rebooted). ``nak_s``, ``bound_s`` (the new lease;
  target: followed within 2 s), ``carrying_s``; ``restarted``: a new udhcpc
  between the NAK and the lease (instead of busybox's 3 s pause);
- silent: the ISP's DHCP server is stopped across the flap (data path back
  first). ``kept_s`` (``dhcp_client.kept``; target 5 s), ``up_s``, ``address_kept``; the server
  is then started again and ``bound_again_s`` is from that start.

Each trial has a daemon of its own: one flap, undamped by the trial before.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from _common import host_info, lab_main, say
from dynamic import CLIENT, DEADLINE, DHCP, DYNAMIC, PPP, START_TIMEOUT, _collect, first, wans
from failover import EventLog

from wanwatch.config import load
from wanwatch.errors import WanwatchError
from wanwatch.lab import faults, uplinks
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import ConnectLoop
from wanwatch.linux.dhcp_client import DISCOVER_TIMEOUT

PARTS = ("keep", "silent", "renumber")  # in this order: renumber leaves the ISP's pool moved
# Targets, each on its part's figure: the lease confirmed and a modem handing out another
# address followed within 2 s; a silent server's lease kept once busybox gives up (one
# unicast and three broadcast REQUESTs, -T apart: dhcp_client.py) plus a second.
TARGETS = {
    "keep": ("renew_s", 2.0),
    "renumber": ("bound_s", 2.0),
    "silent": ("kept_s", 4 * DISCOVER_TIMEOUT + 1.0),
}
BACK_S = 30.0  # the DHCP uplink primary again: up_after probes, then the hold (10 s)


def since(t: float, at: float | None) -> float | None:
    return None if at is None else round(at - t, 3)


def flap(lab: Lab, office: Office, change: str, pool: int) -> dict[str, Any]:
    """One flap: carrier down, the ISP changed (``change``), carrier up; its figures."""
    old = wans(office)[DHCP]["address"]
    faults.carrier_loss(lab, DHCP)
    office.wait_active(PPP, DEADLINE)
    if change == "renumber":
        uplinks.move_pool(lab, DHCP, pool)
    elif change == "silent":
        uplinks.stop_dhcp(lab, DHCP)
    events = EventLog(office)
    events.poll()
    rec: dict[str, Any] = {"old": old}
    with ConnectLoop(lab, CLIENT, interval=0.02, timeout=1.0, max_seconds=BACK_S) as loop:
        t = faults.clear(lab, DHCP, "carrier").t_start
        if change == "silent":
            office.wait_event("dhcp_client.kept", since=t, timeout=DEADLINE)
            office.wait_state(DHCP, "up", DEADLINE)
            events.poll()
            restart = time.monotonic()
            uplinks.start_dhcp(lab, DHCP)
            bound = office.wait_event("dhcp_client.bound", since=restart, timeout=DEADLINE)
            rec["bound_again_s"] = since(restart, bound["at"])
        hit = loop.first_success(after=t, via=DHCP, deadline=time.monotonic() + BACK_S)
    events.poll()
    ev = events.events
    new = wans(office)[DHCP]["address"]
    rec |= {
        "new": new,
        "up_s": since(t, first(ev, "wan.up", t, wan=DHCP)),
        "carrying_s": None if hit is None else round(hit.t1 - t, 3),
    }
    if change == "keep":
        rec["renew_s"] = since(t, first(ev, "dhcp_client.renew", t, wan=DHCP))
    elif change == "renumber":
        nak = first(ev, "dhcp_client.nak", t, wan=DHCP)
        start = first(ev, "dhcp_client.start", t, wan=DHCP)
        bound_at = first(ev, "dhcp_client.bound", t, wan=DHCP)
        rec |= {"nak_s": since(t, nak), "bound_s": since(t, bound_at)}
        rec["restarted"] = bool(nak and start and bound_at and nak <= start <= bound_at)
    else:
        rec["kept_s"] = since(t, first(ev, "dhcp_client.kept", t, wan=DHCP))
    if change != "renumber":
        rec["address_kept"] = new == old and first(ev, "address.remove", t) is None
    rec["event_gaps"] = events.gaps  # polls that may have missed events (ring overrun)
    return rec


def part(lab: Lab, change: str, trials: int) -> dict[str, Any]:
    recs = []
    for i in range(trials):
        # A fresh daemon each time: flaps a few seconds apart would be damped (a longer
        # hold each time, engine/health.py), and each trial measures one flap.
        office = Office(lab)
        office.start(wait_active=DHCP, timeout=START_TIMEOUT)
        try:
            rec = flap(lab, office, change, pool=(i + 1) % 2)
        finally:
            office.stop()
        recs.append(rec)
        say(f"{change} {i + 1}/{trials}: {rec}")
    key, target = TARGETS[change]
    out = _collect(recs, target, key)
    for flag in ("restarted", "address_kept"):
        if flag in recs[0]:
            out[flag] = sum(bool(r[flag]) for r in recs)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.monotonic()
    out: dict[str, Any] = {
        "bench": "dhcp_flap",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": host_info(),
        "config": str(DYNAMIC),
        "trials": args.trials,
    }
    with Lab(load(DYNAMIC), client_dns="router") as lab:
        lab.client_static(CLIENT)
        say(f"lab {lab.tag} up")
        for change in (p for p in PARTS if p in args.parts.split(",")):
            out[change] = part(lab, change, args.trials)
    out["host"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--trials", type=int, default=5, help="flaps of each kind")
    ap.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, of {','.join(PARTS)}"
    )
    args = ap.parse_args(argv)
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        ap.error(f"--parts: unknown {', '.join(sorted(unknown))}")
    return lab_main(lambda: run(args), (WanwatchError,))


if __name__ == "__main__":
    sys.exit(main())
