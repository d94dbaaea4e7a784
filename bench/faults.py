"""Fault-matrix benchmark in the namespace lab; prints ONE JSON object (progress on stderr).

    python bench/faults.py [--runs N] [--only FAULT ...] [--hold S] [--max-hold S]

Root. Builds the reference office (examples/office.yaml) with ``wanwatch run``
as its router (under libfaketime for the clock fault only, so that its wall
clock moves and the host's does not), injects each fault of the matrix
``--runs`` times and measures,
from the kernel and from a LAN client, how long until the state is whole
again and what was lost on the way. Every fault kind starts on a freshly
started daemon, so the tug-of-war guard (the same object removed again and
again) and flap damping carry nothing from one kind to the next.
bench/README.md explains every field.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import ROOT, host_info, say, summary

from wanwatch.config import load
from wanwatch.daemon.control import ControlError
from wanwatch.errors import LabError
from wanwatch.lab import faults
from wanwatch.lab.chaos import clock, harness, injected, kernel, kills, readback, reload, sockets
from wanwatch.lab.topology import Lab

OFFICE = ROOT / "examples" / "office.yaml"
CLIENT, DHCP_LAN = "ether3", "WIFI"  # the first LAN's client is static; the other takes leases
REPAIR_DEADLINE = 15.0  # the hard limit for a drift repair
SWITCH_DEADLINE = 10.0
SETTLE_DEADLINE = 60.0  # up_after + a damped hold (max_hold), with slack
LEASE_DEADLINE = 20.0
STORM_CLIENTS = 100
WATCH_SECONDS = 3.0  # how long each clock offset is watched
# A drift repeated more often than this many times a minute is a tug-of-war for the
# daemon; runs of one kind are spaced so they stay below it.
REPAIRS_PER_MINUTE = 5
BAD_EVENTS = ("wan.down", "wan.degraded", "wan.up", "policy.failover", "route.switch")

Record = dict[str, Any]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class Bench:
    def __init__(self, bed: harness.Testbed, primary: str, backup: str) -> None:
        self.bed = bed
        self.lab: Lab = bed.lab
        self.office = bed.office
        self.primary, self.backup = primary, backup
        self.restarts = 0  # daemons restarted because a fault left the state broken

    def fresh(self, faked: bool) -> None:
        """A freshly started daemon (on the faked clock or not), settled and whole."""
        self.bed.restart(faked=faked, timeout=SETTLE_DEADLINE)

    def heal(self) -> bool:
        """Back to healthy after a run; True if the daemon had to be restarted for it."""
        faults.clear_all(self.lab)
        restarted = self.bed.heal(SETTLE_DEADLINE)
        self.restarts += restarted
        return restarted

    def events(self, since: float, *names: str) -> list[dict[str, Any]]:
        return self.office.events(since=since, names=names)

    # ---------------------------------------------------------------- faults 1-5

    def drift(self, inject: Callable[[Lab], injected.Injected]) -> Record:
        bed = self.bed
        assert bed.baseline is not None
        with harness.Watch(self.lab, CLIENT) as watch:
            fault = inject(self.lab)
            whole = readback.wait_whole(self.lab, bed.baseline, fault.t_done + REPAIR_DEADLINE)
            hit = watch.loop.first_success(
                after=fault.t_done, via=self.primary, deadline=time.monotonic() + SWITCH_DEADLINE
            )
            time.sleep(1.0)  # the flow's retransmissions catch up, or it breaks
        seen = watch.outcome()
        repairs = self.events(fault.t_start, "drift.repaired")
        return {
            "recovery_ms": ms(None if whole is None else whole - fault.t_start),
            "daemon_after_ms": min((float(e["after_ms"]) for e in repairs), default=None),
            "repaired_objects": sorted({str(e.get("object")) for e in repairs}),
            "traffic_ms": ms(None if hit is None else hit.t1 - fault.t_start),
            "failed_connections": len(seen.failed(fault.t_start)),
            "failures": seen.errors(fault.t_start),
            "flow_survived": seen.flow_survived,
            "flow_longest_stall_ms": ms(seen.longest_stall),
            "survived": whole is not None and hit is not None,
        }

    # ---------------------------------------------------------------- fault 6

    def dnsmasq(self) -> Record:
        kill = kills.kill_dnsmasq(self.lab, self.office)
        client = self.lab.dhcp_client(DHCP_LAN, once=True, tries=int(LEASE_DEADLINE))
        try:
            lease = client.wait_lease(kill.t_done + LEASE_DEADLINE, after=kill.t_done)
        except LabError:
            lease = None
        finally:
            client.stop()
        back = self.events(kill.t_start, "dnsmasq.start")
        return {
            "recovery_ms": ms(None if lease is None else lease.t - kill.t_start),
            "dnsmasq_back_ms": ms(back[0]["at"] - kill.t_start) if back else None,
            "leases_lost": int(lease is None),
            "survived": lease is not None,
        }

    # ---------------------------------------------------------------- fault 7

    def both_silent(self) -> Record:
        faults.blackhole(self.lab, self.primary)
        faults.blackhole(self.lab, self.backup)
        dead = self.office.wait_for(
            lambda st: all(w["state"] == "down" for w in st["wans"]),
            SWITCH_DEADLINE,
            "both uplinks down",
        )
        with harness.Watch(self.lab, CLIENT, flow=False) as watch:
            back = faults.clear(self.lab, self.backup)
            hit = watch.loop.first_success(
                after=back.t_start, via=self.backup, deadline=time.monotonic() + SWITCH_DEADLINE
            )
        seen = watch.outcome()
        until = hit.t0 if hit is not None else float("inf")
        return {
            "recovery_ms": ms(None if hit is None else hit.t1 - back.t_start),
            "failed_connections": len(seen.failed(back.t_start, until)),
            "failures": seen.errors(back.t_start, until),
            "via_dead_primary": sum(1 for a in seen.attempts if a.isp == self.primary),
            "kept_while_dead": dead["active"],
            "survived": hit is not None,
        }

    # ---------------------------------------------------------------- fault 8

    def socket_abuse(self) -> Record:
        pid = self.office.status()["pid"]
        with harness.Watch(self.lab, CLIENT) as watch:
            t0 = time.monotonic()
            abuse = sockets.abuse_control_socket(self.office, STORM_CLIENTS)
        seen = watch.outcome()
        served = [a for a in abuse.storm if isinstance(a, float)]
        busy = [a for a in abuse.storm if sockets.busy(a)]
        same = self.office.status()["pid"] == pid
        routing = all(a == [self.primary] for a in abuse.active)
        return {
            "recovery_ms": None,
            "status_max_ms": ms(max(abuse.answered, default=None)),
            "status_answers": len(abuse.answered),
            "status_busy": len(abuse.busy),
            "status_failures": len(abuse.failures),
            "storm_served": len(served),
            "storm_busy": len(busy),
            "storm_lost": len(abuse.storm) - len(served) - len(busy),
            "storm_max_ms": ms(max(served, default=None)),
            "junk_answer": abuse.junk[:120],
            "malformed_answer": abuse.malformed[:120],
            "failed_connections": len(seen.failed(t0)),
            "failures": seen.errors(t0),
            "flow_survived": seen.flow_survived,
            "survived": same
            and routing
            and not abuse.failures
            and len(served) + len(busy) == len(abuse.storm)
            and not seen.failed(t0),
        }

    # ---------------------------------------------------------------- fault 9

    def sighup_broken(self) -> Record:
        path = self.office.config_path
        with harness.Watch(self.lab, CLIENT) as watch:
            hup, good = reload.sighup_broken(self.office)
            try:
                rejected = self.office.wait_event("config.rejected", since=hup.t_start)
                time.sleep(0.5)
                st = self.office.status()
            finally:
                path.write_text(good)
        seen = watch.outcome()
        routing = st["active"] == [self.primary]
        return {
            "recovery_ms": None,
            "rejected_after_ms": ms(rejected["at"] - hup.t_start),
            "failed_connections": len(seen.failed(hup.t_start)),
            "failures": seen.errors(hup.t_start),
            "flow_survived": seen.flow_survived,
            "reloaded": bool(self.events(hup.t_start, "config.reloaded")),
            "survived": routing and not seen.failed(hup.t_start),
        }

    # ---------------------------------------------------------------- fault 10

    def sigkill(self) -> Record:
        with harness.Watch(self.lab, CLIENT) as watch:
            t0 = time.monotonic()
            self.office.stop(signal.SIGKILL)
            self.bed.start()
            self.office.wait_active(self.primary, SWITCH_DEADLINE)
            ready = time.monotonic()
            watch.loop.first_success(
                after=ready, via=self.primary, deadline=ready + SWITCH_DEADLINE
            )
        seen = watch.outcome()
        start = self.events(0.0, "backend.start")
        switches = self.events(0.0, "route.switch", "route.withdraw")
        return {
            "recovery_ms": ms(ready - t0),
            "failed_connections": len(seen.failed(t0)),
            "failures": seen.errors(t0),
            "flow_survived": seen.flow_survived,
            "flow_longest_stall_ms": ms(seen.longest_stall),
            "adopted": bool(start) and start[0].get("nft") == "adopted",
            "route_switches": len(switches),
            "survived": not seen.failed(t0) and bool(seen.flow_survived),
        }

    # ---------------------------------------------------------------- fault 11

    def carrier_flap(self) -> Record:
        with harness.Watch(self.lab, CLIENT, flow=False, interval=0.05, max_seconds=90) as watch:
            t0 = time.monotonic()
            flap = faults.flap(
                self.lab, self.primary, down_s=1.0, up_s=1.0, cycles=5, mode="carrier"
            )
            changes = flap.wait(30)
            stable = changes[-1]["t_done"]
            hit = watch.loop.first_success(
                after=stable, via=self.primary, deadline=time.monotonic() + SETTLE_DEADLINE
            )
        seen = watch.outcome()
        downs = [e for e in self.events(t0, "wan.down") if e["wan"] == self.primary]
        ups = [e for e in self.events(stable, "wan.up") if e["wan"] == self.primary]
        # A connection that started while the primary was still held back went through
        # the backup; the first through the primary ends the recovery.
        return {
            "recovery_ms": ms(None if hit is None else hit.t1 - stable),
            "flaps_s": round(stable - changes[0]["t_start"], 2),
            "primary_downs": len(downs),
            "hold_s": ups[-1].get("hold_s") if ups else None,
            "failed_connections": len(seen.failed(t0)),
            "failures": seen.errors(t0),
            "survived": hit is not None,
        }

    # ---------------------------------------------------------------- fault 12

    def clock_jump(self) -> Record:
        with harness.Watch(self.lab, CLIENT) as watch:
            t0 = time.monotonic()
            spells = clock.clock_spells(
                self.office, self.bed.clock, ("+1h", "-1h", "+0"), WATCH_SECONDS
            )
        seen = watch.outcome()
        bad = self.events(t0, *BAD_EVENTS)
        rtts = [s.max_rtt_ms for s in spells]
        steady = all(
            s.states == {"up"} and s.actives == {(self.primary,)} and min(s.replies.values()) > 0
            for s in spells
        )
        return {
            "recovery_ms": None,
            "state_changes": len(bad),
            "max_rtt_ms": None if None in rtts else max(r for r in rtts if r is not None),
            "max_loss_pct": max(s.max_loss_pct for s in spells),
            "replies": {s.offset: s.replies for s in spells},
            "failed_connections": len(seen.failed(t0)),
            "failures": seen.errors(t0),
            "flow_survived": seen.flow_survived,
            "survived": steady and not bad and not seen.failed(t0),
        }


FAULTS: dict[str, Callable[[Bench], Record]] = {
    "nft_table_deleted": lambda b: b.drift(kernel.delete_nft_table),
    "nft_flush_ruleset": lambda b: b.drift(kernel.flush_ruleset),
    "routes_flushed": lambda b: b.drift(kernel.flush_routes),
    "rules_deleted": lambda b: b.drift(kernel.delete_rules),
    "ip_forward_off": lambda b: b.drift(kernel.forwarding_off),
    "dnsmasq_sigkill": Bench.dnsmasq,
    "both_uplinks_silent_backup_back": Bench.both_silent,
    "control_socket_abuse": Bench.socket_abuse,
    "sighup_broken_config": Bench.sighup_broken,
    "daemon_sigkill_restart": Bench.sigkill,
    "carrier_flapping": Bench.carrier_flap,
    "wall_clock_jump": Bench.clock_jump,
}
DRIFT = ("nft_table_deleted", "nft_flush_ruleset", "routes_flushed", "rules_deleted",
         "ip_forward_off")  # fmt: skip
LOSS_KEYS = ("failed_connections", "leases_lost")


def run_fault(bench: Bench, name: str, runs: int, recs: list[Record]) -> None:
    """Inject ``name`` ``runs`` times; each run's record goes into ``recs`` as it ends."""
    bench.fresh(faked=name == "wall_clock_jump")
    gap = 60.0 / REPAIRS_PER_MINUTE if runs > REPAIRS_PER_MINUTE else 0.0
    for i in range(runs):
        started = time.monotonic()
        try:
            rec = FAULTS[name](bench)
        except (LabError, ControlError) as exc:  # this run failed; the matrix goes on
            rec = {"recovery_ms": None, "survived": False, "error": str(exc)[-500:]}
        recs.append(rec)
        rec["restart_needed"] = bench.heal()
        say(f"{name} {i + 1}/{runs}: recovery {rec['recovery_ms']} ms, survived {rec['survived']}")
        time.sleep(max(0.0, started + gap - time.monotonic()))


def fault_summary(runs: int, recs: list[Record]) -> Record:
    """One fault kind over its runs (those that ended: a failed step stops the matrix)."""
    recovery = [r["recovery_ms"] for r in recs if r["recovery_ms"] is not None]
    flows = [r["flow_survived"] for r in recs if r.get("flow_survived") is not None]
    return {
        "runs": runs,
        "recovery_ms": summary(recovery),
        "recovered": sum(1 for r in recs if r["survived"]),
        "lost": {
            k: sum(r[k] for r in recs if k in r) for k in LOSS_KEYS if any(k in r for r in recs)
        },
        "flows_survived": f"{sum(flows)}/{len(flows)}" if flows else None,
        "restarts_needed": sum(1 for r in recs if r.get("restart_needed")),
        "survived": len(recs) == runs
        and all(r["survived"] and not r.get("restart_needed") for r in recs),
        "per_run": recs,
    }


def run(args: argparse.Namespace, out: Record) -> None:
    """The matrix; everything measured lands in ``out`` as it is measured, so a step that
    fails later (a daemon that does not stop) loses nothing already measured."""
    cfg = load(args.config)
    wans = sorted(cfg.wans, key=lambda w: w.priority)
    out["faults"] = {}
    with Lab(cfg) as lab:
        lab.client_static(CLIENT)
        config = harness.office_config(lab, "faults", hold=args.hold, max_hold=args.max_hold)
        out["monitor"] = load(config).monitor.to_data()
        bed = harness.Testbed(lab, config, wans[0].name)
        bench = Bench(bed, wans[0].name, wans[1].name)
        try:
            for name in args.only:
                recs: list[Record] = []
                try:
                    run_fault(bench, name, args.runs, recs)
                finally:
                    out["faults"][name] = fault_summary(args.runs, recs)
        finally:
            try:
                bed.stop()
            finally:
                out["daemon_exit_s"] = {
                    clock: summary((s.seconds for s in bed.stops if s.faked == faked), 3)
                    for clock, faked in (("real_clock", False), ("faked_clock", True))
                }
                out["daemon_stops"] = [dataclasses.asdict(s) for s in bed.stops]


def conclude(out: Record) -> None:
    """The summary of what ``out`` holds, however far the matrix got."""
    results: dict[str, Record] = out.get("faults", {})
    drift = [
        v
        for name in DRIFT
        if name in results
        for v in results[name]["recovery_ms"].get("values", [])
    ]
    med = summary(drift).get("median")
    out["summary"] = {
        "table": [
            {
                "fault": name,
                "recovery_median_ms": r["recovery_ms"].get("median"),
                "recovery_max_ms": r["recovery_ms"].get("max"),
                "lost": r["lost"],
                "flows_survived": r["flows_survived"],
                "survived": r["survived"],
            }
            for name, r in results.items()
        ],
        "all_survived": "error" not in out and all(r["survived"] for r in results.values()),
        "drift_median_le_1000ms": None if med is None else med <= 1000,
        "drift_max_le_15000ms": None if not drift else max(drift) <= 15000,
    }
    out["host"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=5, help="injections of each fault (default 5)")
    ap.add_argument("--only", nargs="+", choices=list(FAULTS), default=list(FAULTS))
    ap.add_argument("--hold", type=float, default=2.0, help="monitor.hold (default 2 s)")
    ap.add_argument("--max-hold", type=float, default=10.0, help="monitor.max_hold (default 10 s)")
    ap.add_argument("-c", "--config", default=OFFICE)
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    if os.geteuid() != 0:
        say("needs root: it builds network namespaces")
        return 2
    # A SIGTERM (a `timeout` around the run) unwinds like an error: the lab is taken
    # down and the JSON written by the finally blocks below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.monotonic()
    out: Record = {"bench": "faults", "host": host_info(), "runs": args.runs}
    code = 1  # anything but a clean end: the JSON below still says what was measured
    try:
        run(args, out)
        code = 0
    except (LabError, ControlError) as exc:
        say(f"bench failed: {exc}")
        out["error"] = str(exc)[-2000:]
    finally:
        conclude(out)
        out["seconds"] = round(time.monotonic() - t0, 1)
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
