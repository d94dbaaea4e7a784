"""Probes beyond ICMP on an LTE-like primary: failover and portal times; prints ONE JSON object.

    python bench/probe_methods.py [--cuts N] [--portals N] > bench/results/probe-methods-DATE.json
    python bench/probe_methods.py --only rss --rss-uplinks 4 \
        > bench/results/probe-methods-4x4-DATE.json

Root. Builds the reference office (examples/office.yaml; with ``--rss-uplinks``
N > 2 grown to N uplinks by lab/plan.py ``add_uplinks``, each ISP on a /25) in
the namespace lab and runs ``wanwatch run`` on a copy whose uplinks are each
probed by every method (lab/portal.py: their ICMP targets, a TCP connect, an
HTTP GET of /generate_204 and a DNS query with its answer checked), hold 3 s.
``--only PHASE`` (repeatable) runs those phases alone. Measured:

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
- ``rss``: once every uplink is up with every target answering, the daemon is
  watched for ``--watch`` seconds: its CPU % of one core over that span (utime +
  stime of /proc/<pid>/stat, proc(5); its dnsmasq child not counted), the
  probes it sent and the replies it counted per uplink per second (status
  ``probes``), then its VmRSS and VmHWM (proc(5)), beside the budget of 40 MB
  (docs/architecture.md), after the other phases if they ran.

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

import yaml
from _common import ROOT, host_info, lab_main, say, summary

from wanwatch.config import Config, load, loads
from wanwatch.daemon.control import ControlError
from wanwatch.errors import LabError
from wanwatch.lab import faults, poll, portal
from wanwatch.lab.office import Office
from wanwatch.lab.plan import MAX_UPLINKS, add_uplinks
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import ConnectLoop

OFFICE = ROOT / "examples" / "office.yaml"
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"
HOLD = "3s"
DEADLINE = 60.0  # any one wait; a portal is seen within two http intervals (2 x 10 s)
TARGET_RSS_MB = 40.0
LOSS_PROGRESS = 30.0  # seconds between looks at the events in the loss run
PHASES = ("loss", "icmp_filtered", "portal", "rss")
METHODS = 4  # icmp, tcp, http, dns on each uplink (portal.method_targets)


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in kB (proc(5))."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` (every thread) in clock ticks: fields 14 and 15 of
    /proc/<pid>/stat (proc(5)), counted after the parenthesised comm."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def wan_of(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(w for w in status["wans"] if w["name"] == name)


def office_config(uplinks: int) -> Config:
    """examples/office.yaml, grown to ``uplinks`` (lab/plan.py ``add_uplinks``)."""
    if uplinks == 2:
        return load(OFFICE)
    data = add_uplinks(yaml.safe_load(OFFICE.read_text()), uplinks)
    return loads(yaml.safe_dump(data, sort_keys=False), f"{OFFICE} grown to {uplinks} uplinks")


class Bench:
    def __init__(self, lab: Lab, rng: random.Random) -> None:
        self.lab, self.rng = lab, rng
        self.client = lab.lab_config.lans[0].name
        self.wans = tuple(i.wan for i in lab.topology.isps)
        path = portal.methods_config(lab, "bench-methods", wans=self.wans, monitor={"hold": HOLD})
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

    def watched(self, seconds: float) -> dict[str, Any]:
        """CPU, probes and memory of the daemon watched ``seconds``, every uplink up."""
        self.office.wait_for(
            lambda st: all(
                w["state"] == "up" and set(w["targets"].values()) == {"answering"}
                for w in st["wans"]
            ),
            DEADLINE,
            "every uplink up, every target answering",
        )
        pid = self.office.daemon.pid if self.office.daemon else 0
        st0, ticks0, t0 = self.office.status(), cpu_ticks(pid), time.monotonic()
        time.sleep(seconds)  # a fixed span watched, not a wait
        st, ticks, t1 = self.office.status(), cpu_ticks(pid), time.monotonic()
        span = t1 - t0
        mem = rss_kb(pid)

        def rate(w: str, key: str) -> float:
            n = int(wan_of(st, w)["probes"][key]) - int(wan_of(st0, w)["probes"][key])
            return round(n / span, 2)

        return {
            "uplinks": len(self.wans),
            "methods": METHODS,
            "watch_s": round(span, 1),
            "cpu_pct": round(100 * (ticks - ticks0) / os.sysconf("SC_CLK_TCK") / span, 2),
            "probes_per_s": {w: rate(w, "sent") for w in self.wans},
            "replies_per_s": {w: rate(w, "replies") for w in self.wans},
            "states_end": {w: wan_of(st, w)["state"] for w in self.wans},
            "rss_mb": round(mem["VmRSS"] / 1024, 1),
            "peak_mb": round(mem["VmHWM"] / 1024, 1),
            "target_mb": TARGET_RSS_MB,
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
    config = office_config(args.rss_uplinks)
    phases = args.only or PHASES
    t0 = time.monotonic()
    out: dict[str, Any] = {
        "bench": "probe_methods",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": host_info(),
        "config": f"{OFFICE.relative_to(ROOT)}"
        + ("" if args.rss_uplinks == 2 else f" grown to {args.rss_uplinks} uplinks")
        + ", every uplink probed by icmp, tcp, http and dns",
        "phases": list(phases),
    }
    with Lab(config, client_dns="router") as lab:
        portal.start_web(lab)
        bench = Bench(lab, random.Random(args.seed))
        bench.office.start(wait_active=PRIMARY, timeout=DEADLINE)
        lab.dhcp_lease(bench.client, timeout=15)
        try:
            if "loss" in phases and args.loss_minutes > 0:
                say(f"lab {lab.tag} up; {args.loss:g} % loss for {args.loss_minutes:g} min")
                out["loss"] = bench.lossy(args.loss_minutes, args.loss)
                bench.fresh()
            if "icmp_filtered" in phases:
                say(f"{args.cuts} cuts of an ICMP-filtering primary")
                out["icmp_filtered"] = bench.icmp_filtered(args.cuts, args.steady)
            if "portal" in phases:
                say(f"{args.portals} used-up quotas")
                out["portal"] = bench.portals(args.portals)
            if "rss" in phases:
                say(f"{len(bench.wans)} uplinks x {METHODS} methods watched {args.watch:g} s")
                out["rss"] = bench.watched(args.watch)
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
    ap.add_argument("--only", action="append", choices=PHASES, help="run this phase (repeat)")
    ap.add_argument(
        "--rss-uplinks",
        type=int,
        default=2,
        choices=range(2, MAX_UPLINKS + 1),
        help="uplinks of the office (past 2: with --only rss)",
    )
    ap.add_argument("--watch", type=float, default=60.0, help="seconds of the rss phase's watch")
    args = ap.parse_args(argv)
    if args.rss_uplinks != 2 and set(args.only or PHASES) != {"rss"}:
        # The other phases' figures are of the two-uplink office, their docs too.
        ap.error("--rss-uplinks past 2 goes with --only rss")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    return lab_main(lambda: run(args), (LabError, ControlError))


if __name__ == "__main__":
    sys.exit(main())
