"""Probes beyond ICMP on an LTE-like primary: failover and portal times; prints ONE JSON object.

    python bench/probe_methods.py [--cuts N] [--portals N] > bench/results/probe-methods-DATE.json

Root. Builds the reference office (examples/office.yaml) in the namespace lab and
runs ``wanwatch run`` on a copy whose two uplinks are each probed by every method
(lab/portal.py: their ICMP targets, a TCP connect, an HTTP GET of /generate_204
and a DNS query with its answer checked), hold 3 s. Measured:

- ``icmp_filtered``: the primary's ISP drops every echo request (lab/portal.py
  ``drop_icmp``), so tcp, http and dns alone decide. Once its ICMP targets are set
  aside, ``--cuts`` blackholes of the primary (each on a fresh daemon, as
  bench/failover.py does, after a random part of a second, out of step with
  the probes): seconds from the cut to the first new
  connection of a LAN client answered through the backup (``new_connection_s``,
  as bench/failover.py measures it) and to the daemon's ``policy.failover``
  (``failover_event_s``); after each, the blackhole is cleared and the primary
  must carry again (ICMP still filtered). ``false_failovers``: failovers in the
  ``--steady`` seconds the filtered primary was watched before the first cut.
- ``portal``: ``--portals`` times, the primary's quota is used up (an nft DNAT in
  its ISP sends port 80 to a redirecting server), each on a fresh daemon: seconds from that to
  ``wan.portal`` and to ``policy.failover``; then cleared, and back.
- ``loss``: ``--loss`` % of the packets the office sends through the primary's ISP
  are dropped (lab/faults.py ``loss``, one direction: every method's probes and
  the office's own traffic) for ``--loss-minutes``; ``false_failovers`` and the
  primary's ``wan.down`` events in that time (0 expected: the sequential test
  reads 20 % random loss as a lossy line, not a dead one).
- ``rss``: the daemon's VmRSS and VmHWM (proc(5)) with 2 uplinks x 4 methods
  after the runs (the lab has fake-internet ranges for 2 uplinks only), beside
  the budget of 40 MB (docs/architecture.md).

Times are CLOCK_MONOTONIC, one clock for every namespace and the daemon's events.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import ROOT, host_info, lab_main, say, summary

from wanwatch.config import load
from wanwatch.daemon.control import ControlError
from wanwatch.errors import LabError
from wanwatch.lab import faults, poll, portal
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import ConnectLoop

OFFICE = ROOT / "examples" / "office.yaml"
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"
HOLD = "3s"
DEADLINE = 60.0  # any one wait; a portal is seen within two http intervals (2 x 10 s)
TARGET_RSS_MB = 40.0
LOSS_PROGRESS = 30.0  # seconds between looks at the events in the loss run


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in kB (proc(5))."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def wan_of(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(w for w in status["wans"] if w["name"] == name)


class Bench:
    def __init__(self, lab: Lab, rng: random.Random) -> None:
        self.lab, self.rng = lab, rng
        self.client = lab.lab_config.lans[0].name
        path = portal.methods_config(
            lab, "bench-methods", wans=(PRIMARY, BACKUP), monitor={"hold": HOLD}
        )
        self.office = Office(lab, path)

    def failovers(self, since: float) -> int:
        return len(self.office.events(since=since, names=("policy.failover",)))

    def fresh(self) -> None:
        """A fresh daemon, carrying on the primary: no flap history holds a comeback."""
        self.office.stop()
        self.office.start(wait_active=PRIMARY, timeout=DEADLINE)

    def set_aside(self, since: float) -> float:
        """Seconds from ``since`` until the primary's ICMP targets are set aside."""
        pings = [str(t) for t in self.lab.isp(PRIMARY).targets]
        self.office.wait_for(
            lambda st: all(wan_of(st, PRIMARY)["targets"][t] == "silent" for t in pings),
            DEADLINE,
            "the primary's ICMP targets set aside",
        )
        return time.monotonic() - since

    def lossy(self, minutes: float, percent: float) -> dict[str, Any]:
        """Random loss on the primary, every method probing it: failovers and downs."""
        start = faults.loss(self.lab, PRIMARY, percent, "up").t_start
        end = start + minutes * 60
        seen: dict[tuple[float, str], dict[str, Any]] = {}  # the event ring is bounded: poll
        while (now := time.monotonic()) < end:
            time.sleep(min(LOSS_PROGRESS, end - now))  # a fixed span watched, not a wait
            for e in self.office.events(since=start, names=("policy.failover", "wan.down")):
                seen[(e["at"], e["name"])] = e
            say(f"loss run: {(time.monotonic() - start) / 60:.1f}/{minutes:g} min, {len(seen)} bad")
        st = self.office.status()
        faults.clear(self.lab, PRIMARY, "loss")
        found = list(seen.values())
        return {
            "minutes": round((time.monotonic() - start) / 60, 2),
            "loss_pct": percent,
            "loss_direction": "up",
            "false_failovers": sum(1 for e in found if e["name"] == "policy.failover"),
            "primary_downs": sum(
                1 for e in found if e["name"] == "wan.down" and e.get("wan") == PRIMARY
            ),
            "primary_state_end": wan_of(st, PRIMARY)["state"],
            "primary_loss_pct_end": wan_of(st, PRIMARY)["loss_pct"],
        }

    def icmp_filtered(self, cuts: int, steady: float) -> dict[str, Any]:
        filtered = portal.drop_icmp(self.lab, PRIMARY)
        aside_s = self.set_aside(filtered.t_start)
        say(f"ICMP set aside after {aside_s:.1f} s; watching {steady:g} s")
        poll.holds(
            lambda: self.office.status()["active"][:1] == [PRIMARY], steady, "primary carrying"
        )
        false = self.failovers(filtered.t_start)
        conn: list[float] = []
        event: list[float] = []
        for i in range(cuts):
            if i:
                self.fresh()
                self.set_aside(time.monotonic())
            time.sleep(self.rng.uniform(0.0, 1.0))  # out of step with the probe schedule
            with ConnectLoop(
                self.lab, self.client, interval=0.02, max_seconds=DEADLINE + 5
            ) as loop:
                cut = faults.blackhole(self.lab, PRIMARY)
                hit = loop.first_success(
                    after=cut.t_start, via=BACKUP, deadline=time.monotonic() + DEADLINE
                )
            fo = self.office.wait_event("policy.failover", since=cut.t_start, timeout=DEADLINE)
            if hit is None:
                raise LabError(f"cut {i}: no new connection through {BACKUP}")
            conn.append(hit.t1 - cut.t_start)
            event.append(fo["at"] - cut.t_start)
            say(f"cut {i}: new connection {conn[-1]:.3f} s, policy.failover {event[-1]:.3f} s")
            faults.clear(self.lab, PRIMARY, "blackhole")
            self.office.wait_active(PRIMARY, timeout=DEADLINE)
        portal.clear(self.lab, PRIMARY, "icmp_filter")
        return {
            "icmp_set_aside_s": round(aside_s, 2),
            "steady_s": steady,
            "false_failovers": false,
            "new_connection_s": summary(conn, 3),
            "failover_event_s": summary(event, 3),
        }

    def portals(self, count: int) -> dict[str, Any]:
        seen: list[float] = []
        moved: list[float] = []
        urls: set[str] = set()
        for i in range(count):
            self.fresh()
            time.sleep(self.rng.uniform(0.0, 1.0))
            used_up = portal.portal(self.lab, PRIMARY)
            ev = self.office.wait_event("wan.portal", since=used_up.t_start, timeout=DEADLINE)
            fo = self.office.wait_event("policy.failover", since=used_up.t_start, timeout=DEADLINE)
            seen.append(ev["at"] - used_up.t_start)
            moved.append(fo["at"] - used_up.t_start)
            urls.add(ev["url"])
            say(f"portal {i}: wan.portal {seen[-1]:.2f} s, policy.failover {moved[-1]:.2f} s")
            portal.clear(self.lab, PRIMARY, "portal")
            self.office.wait_active(PRIMARY, timeout=DEADLINE)
        return {
            "http_interval_s": 10.0,
            "wan_portal_s": summary(seen, 2),
            "failover_event_s": summary(moved, 2),
            "urls": sorted(urls),
        }


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = load(OFFICE)
    t0 = time.monotonic()
    out: dict[str, Any] = {
        "bench": "probe_methods",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": host_info(),
        "config": "examples/office.yaml, both uplinks probed by icmp, tcp, http and dns",
    }
    with Lab(config, client_dns="router") as lab:
        portal.start_web(lab)
        bench = Bench(lab, random.Random(args.seed))
        bench.office.start(wait_active=PRIMARY, timeout=DEADLINE)
        lab.dhcp_lease(bench.client, timeout=15)
        try:
            if args.loss_minutes > 0:
                say(f"lab {lab.tag} up; {args.loss:g} % loss for {args.loss_minutes:g} min")
                out["loss"] = bench.lossy(args.loss_minutes, args.loss)
                bench.fresh()
            say(f"{args.cuts} cuts of an ICMP-filtering primary")
            out["icmp_filtered"] = bench.icmp_filtered(args.cuts, args.steady)
            say(f"{args.portals} used-up quotas")
            out["portal"] = bench.portals(args.portals)
            pid = bench.office.daemon.pid if bench.office.daemon else 0
            mem = rss_kb(pid)
            out["rss"] = {
                "uplinks": 2,
                "methods": 4,
                "rss_mb": round(mem["VmRSS"] / 1024, 1),
                "peak_mb": round(mem["VmHWM"] / 1024, 1),
                "target_mb": TARGET_RSS_MB,
            }
        finally:
            out["daemon_exit_code"] = bench.office.stop()
            for isp in lab.topology.isps:
                portal.clear(lab, isp.wan)
            faults.clear_all(lab)
    out["host"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--cuts", type=int, default=10, help="blackholes of the filtered primary")
    ap.add_argument("--portals", type=int, default=5, help="used-up quotas")
    ap.add_argument("--steady", type=float, default=30.0, help="seconds watched, ICMP filtered")
    ap.add_argument("--loss", type=float, default=20.0, help="percent lost in the loss run")
    ap.add_argument("--loss-minutes", type=float, default=10.0, help="0: no loss run")
    ap.add_argument("--seed", type=int, default=7)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    return lab_main(lambda: run(args), (LabError, ControlError))


if __name__ == "__main__":
    sys.exit(main())
