"""Uplinks that are not static, in the namespace lab; prints ONE JSON object (progress on stderr).

    python bench/dynamic.py [--trials N] [--cuts N] [--warmup S]

Root. Builds examples/office-dynamic.yaml (LTE-DHCP gets its address by DHCP from
its ISP's dnsmasq, PPP-BACKUP is point-to-point) with ``wanwatch run`` as its
router and measures, CLOCK_MONOTONIC throughout (one clock for every namespace
and the daemon's events):

- DHCP usable: the uplink's interface is created again (``replug``) while a LAN
  client opens a new connection every 20 ms; link up -> lease bound (the
  daemon's ``dhcp_client.bound`` event) -> ``wan.up`` -> the first new
  connection answered through it;
- renumbering (loadbalance, both uplinks in one tier): the ISP moves its pool
  and the client renews; the new lease (``dhcp_client.bound``) -> the first new
  connection through the DHCP uplink, NATed to its new address; long-lived flows
  that hashed onto the other uplink are watched for drops;
- replug adoption: the point-to-point interface is deleted and created again;
  the new device -> its table's default route installed (``route.set``);
- blackhole failover of the DHCP uplink and of the static reference office,
  same method and settings as bench/failover.py (its ``Bench.cut``): the cut's
  start -> the first new connection through the backup.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from _common import ROOT, host_info, say, summary
from failover import Bench, EventLog

from wanwatch.config import load
from wanwatch.footprint import table_id
from wanwatch.lab import netns, uplinks
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import ConnectLoop, Flow, add_client_addresses

DYNAMIC = ROOT / "examples" / "office-dynamic.yaml"
OFFICE = ROOT / "examples" / "office.yaml"
DHCP, PPP, CLIENT = "LTE-DHCP", "PPP-BACKUP", "ether3"
DEADLINE = 15.0
START_TIMEOUT = 30.0
# Targets (bench/README.md, "Uplinks that are not static").
TARGET_DHCP_USABLE_S = 3.0
TARGET_RENUMBER_S = 2.0
TARGET_ADOPT_S = 1.0
PARTS = ("usable", "replug", "renumber", "blackhole")


def first(events: list[dict[str, Any]], name: str, since: float, **match: Any) -> float | None:
    hits = [
        e["at"]
        for e in events
        if e["name"] == name and e["at"] >= since and all(e.get(k) == v for k, v in match.items())
    ]
    return min(hits) if hits else None


def wait(pred: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def wans(office: Office) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in office.status()["wans"]}


def dhcp_usable(lab: Lab, office: Office, trials: int) -> dict[str, Any]:
    recs = []
    for i in range(trials):
        uplinks.unplug(lab, DHCP)
        wait(lambda: wans(office)[DHCP]["lease"] is None and office.status()["active"] == [PPP])
        time.sleep(1.0)
        events = EventLog(office)
        with ConnectLoop(lab, CLIENT, interval=0.02, timeout=1.0, max_seconds=DEADLINE + 5) as loop:
            t = uplinks.replug(lab, DHCP)
            hit = loop.first_success(after=t, via=DHCP, deadline=time.monotonic() + DEADLINE)
        events.poll()
        bound = first(events.events, "dhcp_client.bound", t, wan=DHCP)
        up = first(events.events, "wan.up", t, wan=DHCP)
        rec = {
            "bound_s": None if bound is None else round(bound - t, 3),
            "up_s": None if up is None else round(up - t, 3),
            "usable_s": None if hit is None else round(hit.t1 - t, 3),
        }
        recs.append(rec)
        say(f"dhcp usable {i + 1}/{trials}: {rec}")
    return _collect(recs, TARGET_DHCP_USABLE_S, "usable_s")


def renumber(lab: Lab, trials: int) -> dict[str, Any]:
    cfg = lab.config_path
    text = cfg.read_text().replace("mode: failover", "mode: loadbalance")
    cfg.write_text(text.replace("priority: 2", "priority: 1"))
    office = Office(lab)
    office.start(timeout=START_TIMEOUT)
    office.wait_for(lambda st: sorted(st["active"]) == [DHCP, PPP] and st["applied"], 30, "both")
    sources = add_client_addresses(lab, CLIENT, 16, first=150)
    recs = []
    try:
        for i in range(trials):
            old = wans(office)[DHCP]
            flows = [Flow(lab, CLIENT, source=s, interval=0.05).start() for s in sources[:8]]
            reports = [f.wait_connected(time.monotonic() + 10) for f in flows]
            on_ppp = [f for f, r in zip(flows, reports, strict=True) if r.isp == PPP]
            events = EventLog(office)
            events.poll()
            loop = ConnectLoop(
                lab, CLIENT, interval=0.02, timeout=1.0, max_seconds=30, sources=sources[8:]
            )
            with loop:
                # Trial i moves the pool from where it is to the other one.
                t = uplinks.renumber(lab, DHCP, old["dhcp_client"]["pid"], pool=(i + 1) % 2)
                was = old["address"]
                got = wait(lambda was=was: wans(office)[DHCP]["address"] not in (None, was))
                events.poll()
                bound = first(events.events, "dhcp_client.bound", t, wan=DHCP)
                hit = None
                if got and bound is not None:
                    hit = loop.first_success(
                        after=bound, via=DHCP, deadline=time.monotonic() + DEADLINE
                    )
            new = wans(office)[DHCP]["address"]
            nat = _nat_addresses(lab)
            dropped = sum(1 for f in on_ppp if f.stop().broken_at is not None)
            for f in flows:
                f.stop()
            rec = {
                "old": old["address"],
                "new": new,
                "new_lease_after_renew_s": None if bound is None else round(bound - t, 3),
                "carrying_after_new_lease_s": (
                    None if hit is None or bound is None else round(hit.t1 - bound, 3)
                ),
                "new_address_in_conntrack": new is not None and IPv4Interface(new).ip in nat,
                "flows_on_other_uplink": len(on_ppp),
                "dropped_on_other_uplink": dropped,
            }
            recs.append(rec)
            say(f"renumber {i + 1}/{trials}: {rec}")
            office.wait_for(lambda st: DHCP in st["active"] and st["applied"], 30, "DHCP back")
    finally:
        office.stop()
    out = _collect(recs, TARGET_RENUMBER_S, "carrying_after_new_lease_s")
    out["dropped_on_other_uplink"] = sum(r["dropped_on_other_uplink"] for r in recs)
    out["flows_on_other_uplink"] = sum(r["flows_on_other_uplink"] for r in recs)
    return out


def _nat_addresses(lab: Lab) -> set[IPv4Address]:
    out = netns.nsrun(lab.router_ns, "conntrack", "-L", "-p", "tcp", "--dport", "8080")
    found = set()
    for line in out.stdout.splitlines():
        dst = [w[4:] for w in line.split() if w.startswith("dst=")]
        if len(dst) == 2:
            found.add(IPv4Address(dst[1]))
    return found


def adopt(lab: Lab, office: Office, trials: int) -> dict[str, Any]:
    table = table_id([w.name for w in lab.lab_config.wans].index(PPP))
    ppp_default = f"route table {table} 0.0.0.0/0 metric 0"
    recs = []
    for i in range(trials):
        uplinks.unplug(lab, PPP)
        wait(lambda: wans(office)[PPP]["link"] == "absent")
        events = EventLog(office)
        events.poll()
        t = uplinks.replug(lab, PPP)
        wait(lambda: wans(office)[PPP]["state"] == "up")
        events.poll()
        # Installed by the pass the link event starts (route.set), or by the drift
        # repair pass the new address starts (drift.repaired names the route).
        routed = min(
            (
                x
                for x in (
                    first(events.events, "route.set", t, wan=PPP, dst="0.0.0.0/0"),
                    first(events.events, "drift.repaired", t, object=ppp_default),
                )
                if x is not None
            ),
            default=None,
        )
        rec = {"adopted_s": None if routed is None else round(routed - t, 3)}
        recs.append(rec)
        say(f"replug {i + 1}/{trials}: {rec}")
    return _collect(recs, TARGET_ADOPT_S, "adopted_s")


def blackhole(config_path: Any, cuts: int, warmup: float, seed: int) -> dict[str, Any]:
    config = load(config_path)
    with Lab(config, client_dns="router") as lab:
        bench = Bench(lab, config, random.Random(seed))
        lab.client_static(bench.client)
        out = bench.cuts("blackhole", cuts, warmup)
        out["primary"] = bench.primary
    return out


def _collect(recs: list[dict[str, Any]], target: float, key: str) -> dict[str, Any]:
    values = [float(r[key]) for r in recs if r.get(key) is not None]
    out: dict[str, Any] = {"trials": recs, "missed": len(recs) - len(values)}
    for k in recs[0] if recs else ():
        vals = [float(r[k]) for r in recs if isinstance(r.get(k), int | float)]
        if vals and not isinstance(recs[0][k], bool):
            out[k] = summary(vals, 3)
    out["target_s"] = target
    out["met"] = bool(values) and not out["missed"] and max(values) <= target
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.monotonic()
    out: dict[str, Any] = {
        "bench": "dynamic",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": host_info(),
        "config": str(DYNAMIC),
    }
    parts = set(args.parts.split(","))
    with Lab(load(DYNAMIC), client_dns="router") as lab:
        lab.client_static(CLIENT)
        office = Office(lab)
        office.start(wait_active=DHCP, timeout=START_TIMEOUT)
        say(f"lab {lab.tag} up")
        if "usable" in parts:
            out["dhcp_usable"] = dhcp_usable(lab, office, args.trials)
        if "replug" in parts:
            out["replug"] = adopt(lab, office, args.trials)
        office.stop()
        if "renumber" in parts:
            out["renumber"] = renumber(lab, args.trials)
    if "blackhole" in parts:
        say("blackhole cuts, DHCP uplink")
        out["blackhole_dhcp"] = blackhole(DYNAMIC, args.cuts, args.warmup, args.seed)
        say("blackhole cuts, static reference office")
        out["blackhole_static"] = blackhole(OFFICE, args.cuts, args.warmup, args.seed)
    out["host"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--trials", type=int, default=5, help="trials of each dynamic figure")
    ap.add_argument("--cuts", type=int, default=5, help="blackhole cuts per uplink kind")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds before each cut")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, of {','.join(PARTS)}"
    )
    args = ap.parse_args(argv)
    out = run(args)
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
