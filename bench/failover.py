"""Failover benchmark in the namespace lab; prints ONE JSON object (progress on stderr).

    python bench/failover.py [--cuts N] [--carrier-cuts N] [--loss-minutes M] [--quick] [--load]

Root. Builds the reference office (examples/office.yaml) with ``wanwatch run``
as its router and measures, from a LAN client's point of view:

- blackhole failover: the primary's ISP silently drops everything it forwards
  while the client opens a new TCP connection every 20 ms; the figure is the
  cut's start -> the first successful *new* connection through the backup
  (CLOCK_MONOTONIC is one clock for all namespaces). The daemon's own
  ``wan.down`` detect_ms and ``route.switch`` switch_ms come from its events;
- failback: restore -> the first new connection through the primary again
  (up_after good probes, then the hold);
- carrier-loss failover: the ISP's end of the link goes down;
- false failovers during a run with random loss plus delay ± jitter on the
  primary, counted from the daemon's events, with the probe rate meanwhile;
- probes per second per healthy uplink over a quiet spell;
- the daemon's RSS/peak RSS and CPU, and its dnsmasq child's RSS.

``--lan-traffic PPS`` runs the office's own traffic through the router for the
whole bench: the LAN client's ICMP echo stream (PPS / 2 echoes per second, each
answered, so PPS packets per second cross the router; a new flow every second, so
new flows follow the uplink carrying new connections), on top of the connection
loop of each cut. The quiet spell is then measured twice, without and with it
(``quiet`` and ``quiet_traffic``), and every ``wan.suspect`` (trigger=traffic)
the daemon reports is counted: per cut (``per_cut[].trigger``) and in the loss
run. The loss run's loss also hits that traffic.

``--load`` keeps the daemon busy while every cut is timed: LOAD_CALLERS
concurrent ``status`` callers on its control socket and a Prometheus scrape every
LOAD_SCRAPE_EVERY seconds (the daemon then runs with ``--metrics`` on the router
namespace's loopback). Compare its medians with a run without it: nothing a
reader asks may slow a failover down.

Each cut runs against a freshly started daemon warmed up for ``loss_window``:
flap damping (the hold doubles for every down within 10 minutes) would
otherwise make cut k wait 10 * 2^(k-1) s to be preferred again, and cuts
would no longer be alike. bench/README.md explains every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

from _common import ROOT, host_info, lab_main, say, summary

from wanwatch.config import Config, load
from wanwatch.daemon.control import ControlError, request
from wanwatch.errors import LabError
from wanwatch.lab import faults, shaping
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import ConnectLoop, Stream
from wanwatch.lab.traffic.bulk import bulk
from wanwatch.lab.traffic.probes import ping

OFFICE = ROOT / "examples" / "office.yaml"
DUAL_STACK = ROOT / "examples" / "office-dual-stack.yaml"  # the default of --family 6

FAILOVER_DEADLINE = 10.0  # a failover not seen by then is recorded as missed
FAILBACK_DEADLINE = 120.0  # up_after + hold is ~13 s with the defaults
CONNECT_INTERVAL = 0.02  # new connection every 20 ms while timing a failover
FAILBACK_INTERVAL = 0.05  # coarser while timing the ~13 s failback
START_TIMEOUT = 30.0
CARRIER_WARMUP = 5.0  # carrier detection does not depend on the loss record
EVENT_POLL = 10.0  # the daemon keeps 500 events; poll often enough to miss none
PROGRESS_EVERY = 60.0
# Issue 3, "Done when".
TARGET_BLACKHOLE_MEDIAN_MS = 1000.0
TARGET_BLACKHOLE_MAX_MS = 1500.0
TARGET_CARRIER_MS = 100.0
TARGET_PROBES_PER_S = 2.0
TARGET_RSS_MB = 40.0
# With --lan-traffic: failover helped by the office's own traffic, CPU at 1,000 packets/s.
TARGET_TRAFFIC_MEDIAN_MS = 500.0
TARGET_TRAFFIC_MAX_MS = 800.0
TARGET_TRAFFIC_CPU_PCT = 1.0
MIN_CUTS = 10
MIN_LOSS_MINUTES = 10.0
STREAM_MAX_SECONDS = 7200.0  # bound of the --lan-traffic stream (the bench takes ~25 min)
BULK_PING_INTERVAL = 0.01  # the router's own echoes to the primary's probe target during --bulk
LOAD_CALLERS = 50
LOAD_SCRAPE_EVERY = 0.1
LOAD_METRICS = "127.0.0.1:9107"  # the router namespace's own loopback
# The scraper runs inside the router namespace; bounded in count and time.
_SCRAPER = """
import json, sys, time, urllib.request
n, errors, every, end = 0, 0, float(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while time.monotonic() < end and n < 100000:
    try:
        urllib.request.urlopen(sys.argv[1], timeout=2).read()
    except OSError:
        errors += 1
    n += 1
    time.sleep(every)
print(json.dumps({"scrapes": n, "errors": errors}))
"""


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class ProcSample:
    """One look at a process in /proc: CPU ticks so far and memory (kB)."""

    t: float  # monotonic
    ticks: int  # utime + stime, all threads (proc(5))
    rss_kb: int
    hwm_kb: int
    anon_kb: int  # RssAnon: the heap; the rest is mostly shared libraries mapped in (RssFile)
    file_kb: int


def proc_sample(pid: int) -> ProcSample:
    t = time.monotonic()
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name, which may hold spaces but ends at the last ')'.
    rest = stat[stat.rindex(")") + 2 :].split()
    ticks = int(rest[11]) + int(rest[12])  # fields 14 and 15 of proc(5)
    mem = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            mem[key] = int(value.split()[0])
    return ProcSample(
        t,
        ticks,
        mem.get("VmRSS", 0),
        mem.get("VmHWM", 0),
        mem.get("RssAnon", 0),
        mem.get("RssFile", 0),
    )


def cpu_pct(a: ProcSample, b: ProcSample) -> float:
    """CPU used between two samples, in % of one core."""
    hz = os.sysconf("SC_CLK_TCK")
    return round(100.0 * (b.ticks - a.ticks) / hz / (b.t - a.t), 2)


def mb(kb: int) -> float:
    return round(kb / 1024, 1)


def probe_counts(st: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(sent, replies) per uplink from a status answer."""
    return {
        w["name"]: (int(w["probes"].get("sent", 0)), int(w["probes"].get("replies", 0)))
        for w in st["wans"]
    }


def probe_rates(
    a: dict[str, Any], ta: float, b: dict[str, Any], tb: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Probes sent per second and the share of them unanswered (%), per uplink."""
    ca, cb = probe_counts(a), probe_counts(b)
    rate, lost = {}, {}
    for name, (sent_b, rep_b) in cb.items():
        sent_a, rep_a = ca.get(name, (0, 0))
        sent = sent_b - sent_a
        rate[name] = round(sent / (tb - ta), 3)
        lost[name] = round(100.0 * (1 - (rep_b - rep_a) / sent), 1) if sent else 0.0
    return rate, lost


# --------------------------------------------------------------------------- events


class EventLog:
    """Every event the daemon reported, merged over repeated polls of its bounded ring."""

    def __init__(self, office: Office) -> None:
        self.office = office
        self.events: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self.gaps = 0  # polls whose oldest event was newer than our newest: some were missed

    def poll(self) -> list[dict[str, Any]]:
        ring = request(self.office.socket, "events", timeout=5.0)["events"]
        if self.events and ring and ring[0]["at"] > self.events[-1]["at"]:
            self.gaps += 1
        new = []
        for e in ring:
            key = json.dumps(e, sort_keys=True)
            if key not in self._seen:
                self._seen.add(key)
                new.append(e)
        self.events += new
        return new

    def between(self, t0: float, t1: float, *names: str) -> list[dict[str, Any]]:
        return [e for e in self.events if t0 <= e["at"] < t1 and (not names or e["name"] in names)]


# --------------------------------------------------------------------------- load


class Load:
    """Status callers and a metrics scraper running while a cut is timed."""

    def __init__(self, office: Office, max_seconds: float) -> None:
        self.office = office
        self.max_seconds = max_seconds
        self.calls = 0
        self.errors = 0
        self.latency_ms: list[float] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._scraper: Any = None

    def _caller(self) -> None:
        end = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < end:
            t0 = time.monotonic()
            try:
                request(self.office.socket, "status", timeout=5.0)
                ok = True
            except ControlError:
                ok = False
            with self._lock:
                self.calls += 1
                self.errors += not ok
                self.latency_ms.append((time.monotonic() - t0) * 1000)

    def __enter__(self) -> Load:
        lab = self.office.lab
        argv = [
            sys.executable, "-c", _SCRAPER, f"http://{LOAD_METRICS}/metrics",
            str(LOAD_SCRAPE_EVERY), str(self.max_seconds),
        ]  # fmt: skip
        self._scraper = lab.spawn(lab.router_ns, argv, "scraper")
        for _ in range(LOAD_CALLERS):
            t = threading.Thread(target=self._caller, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)
        if self._scraper is not None:
            self.office.lab.stop_proc(self._scraper)

    def report(self) -> dict[str, Any]:
        latency = summary(self.latency_ms)
        latency.pop("values", None)  # thousands of them
        return {"status_calls": self.calls, "status_errors": self.errors, "status_ms": latency}


# --------------------------------------------------------------------------- the bench


class Bench:
    def __init__(
        self, lab: Lab, config: Config, rng: random.Random, load: bool = False, ipv6: bool = False
    ) -> None:
        self.lab = lab
        self.ipv6 = ipv6  # every cut times new IPv6 connections too, beside IPv4's
        self.load = load
        self.loads: list[dict[str, Any]] = []
        self.office = Office(lab)
        wans = sorted(config.wans, key=lambda w: w.priority)
        self.primary, self.backup = wans[0].name, wans[1].name
        self.client = config.lans[0].name
        self.monitor = lab.lab_config.monitor
        self.rng = rng
        self.exit_codes: list[int | None] = []

    # ---------------------------------------------------------------- daemon

    def start(self, warmup: float) -> dict[str, Any]:
        """Start a fresh daemon; return once the primary carries, is preferred, both
        uplinks are up, and ``warmup`` plus a random part of a probe interval passed
        (the cut must not be in step with the probe schedule)."""
        args = ("--metrics", LOAD_METRICS) if self.load else ()
        self.office.start(wait_active=self.primary, timeout=START_TIMEOUT, args=args)
        self.ready(START_TIMEOUT)
        time.sleep(warmup + self.rng.uniform(0, self.monitor.interval))
        return self.ready(5.0)

    def ready(self, timeout: float) -> dict[str, Any]:
        def ok(st: dict[str, Any]) -> bool:
            by = {w["name"]: w for w in st["wans"]}
            return (
                st["active"][:1] == [self.primary]
                and (not self.ipv6 or st.get("active6", [])[:1] == [self.primary])
                and bool(st.get("applied"))
                and all(w["state"] == "up" for w in st["wans"])
                and bool(by[self.primary]["preferred"])
            )

        return self.office.wait_for(ok, timeout, f"{self.primary} preferred, both uplinks up")

    def stop(self) -> None:
        self.exit_codes.append(self.office.stop())

    def daemon_pid(self) -> int:
        if self.office.daemon is None:
            raise LabError("the daemon is not running")
        return self.office.daemon.pid

    # ---------------------------------------------------------------- timing a switch

    def switch(
        self,
        cut: Callable[[], faults.FaultEvent],
        via: str,
        *,
        interval: float,
        deadline: float,
        ipv6: bool = False,
    ) -> tuple[dict[int, tuple[float | None, int]], faults.FaultEvent]:
        """Run ``cut`` while the client opens a new connection every ``interval`` (with
        ``ipv6``, a second loop to the IPv6 server across the same cut); per family,
        seconds to the first new connection answered through ``via`` (None: none by
        ``deadline``) and how many attempts started after the cut failed; the fault."""
        dsts: dict[int, IPv4Address | IPv6Address] = {4: self.lab.topology.whoami[0]}
        if ipv6:
            dsts[6] = self.lab.topology.whoami6[0]
        loops = {
            family: ConnectLoop(
                self.lab, self.client, dst=dst, interval=interval, timeout=1.0,
                max_seconds=deadline + 5,
            )
            for family, dst in dsts.items()
        }  # fmt: skip
        with contextlib.ExitStack() as stack:
            for loop in loops.values():
                stack.enter_context(loop)
            fault = cut()
            end = time.monotonic() + deadline
            hits = {f: loop.first_success(after=fault.t_start, via=via, deadline=end)
                    for f, loop in loops.items()}  # fmt: skip
            attempts = {f: loop.attempts for f, loop in loops.items()}
        out: dict[int, tuple[float | None, int]] = {}
        for family, hit in hits.items():
            until = hit.t0 if hit is not None else math.inf
            failed = sum(1 for a in attempts[family] if fault.t_start <= a.t0 < until and not a.ok)
            out[family] = (None if hit is None else hit.t1 - fault.t_start, failed)
        return out, fault

    def cut(self, kind: str, index: int, warmup: float) -> dict[str, Any]:
        """One cut on a fresh daemon: fail over, restore, fail back; what was measured."""
        self.start(warmup)
        events = EventLog(self.office)
        events.poll()
        fault_fn = faults.blackhole if kind == "blackhole" else faults.carrier_loss
        with contextlib.ExitStack() as stack:
            load = stack.enter_context(Load(self.office, FAILOVER_DEADLINE)) if self.load else None
            moved, fault = self.switch(
                lambda: fault_fn(self.lab, self.primary),
                self.backup,
                interval=CONNECT_INTERVAL,
                deadline=FAILOVER_DEADLINE,
                ipv6=self.ipv6,
            )
        took, failed = moved[4]
        if load is not None:
            self.loads.append(load.report())
        back_by, restore = self.switch(
            lambda: faults.clear(
                self.lab, self.primary, "blackhole" if kind == "blackhole" else "carrier"
            ),
            self.primary,
            interval=FAILBACK_INTERVAL,
            deadline=FAILBACK_DEADLINE,
        )
        back = back_by[4][0]
        events.poll()
        self.stop()
        rec: dict[str, Any] = {
            "cut": index,
            "failover_ms": None if took is None else round(took * 1000, 1),
            "failed_attempts": failed,
            "failback_s": None if back is None else round(back, 2),
        }
        if 6 in moved:
            took6, failed6 = moved[6]
            rec["failover6_ms"] = None if took6 is None else round(took6 * 1000, 1)
            rec["failed_attempts6"] = failed6
        down = events.between(fault.t_start, restore.t_start, "wan.down")
        down = [e for e in down if e.get("wan") == self.primary]
        if down:
            d = down[0]
            suspect = [
                e
                for e in events.between(fault.t_start, d["at"] + 1e-6, "wan.suspect")
                if e.get("wan") == self.primary
            ]
            if suspect:
                rec.update(
                    trigger=suspect[0].get("trigger"),
                    suspect_after_cut_ms=round((suspect[0]["at"] - fault.t_start) * 1000, 1),
                )
            rec.update(
                detect_ms=d.get("detect_ms"),
                needed=d.get("needed"),
                reason=d.get("reason"),
                down_after_cut_ms=round((d["at"] - fault.t_start) * 1000, 1),
            )
        sw = [
            e
            for e in events.between(fault.t_start, restore.t_start, "route.switch")
            if e.get("to") == self.backup
        ]
        if sw:
            rec.update(
                switch_ms=sw[0].get("switch_ms"),
                switch_after_cut_ms=round((sw[0]["at"] - fault.t_start) * 1000, 1),
            )
        up = [
            e
            for e in events.between(restore.t_start, math.inf, "wan.up")
            if e.get("wan") == self.primary
        ]
        fb = [
            e
            for e in events.between(restore.t_start, math.inf, "policy.failback")
            if e.get("to") == self.primary
        ]
        if up:
            rec.update(
                up_after_restore_s=round(up[0]["at"] - restore.t_start, 2),
                hold_s=up[0].get("hold_s"),
            )
        if fb:
            rec["failback_event_after_restore_s"] = round(fb[0]["at"] - restore.t_start, 2)
        rec["gaps"] = events.gaps
        return rec

    def cuts(self, kind: str, n: int, warmup: float) -> dict[str, Any]:
        recs = []
        for i in range(n):
            rec = self.cut(kind, i + 1, warmup)
            recs.append(rec)
            v6 = f" (IPv6 {rec['failover6_ms']} ms)" if "failover6_ms" in rec else ""
            say(
                f"{kind} cut {i + 1}/{n}: failover {rec['failover_ms']} ms{v6} "
                f"(daemon: down after {rec.get('down_after_cut_ms')} ms, detect_ms "
                f"{rec.get('detect_ms')}, needed {rec.get('needed')}), failback "
                f"{rec['failback_s']} s"
            )

        def values(key: str) -> list[float]:
            return [float(r[key]) for r in recs if r.get(key) is not None]

        by_v6: dict[str, Any] = {}
        if self.ipv6:
            by_v6 = {
                "missed6": sum(1 for r in recs if r.get("failover6_ms") is None),
                "failover6_ms": summary(values("failover6_ms")),
            }
        return {
            "cuts": n,
            "missed": sum(1 for r in recs if r["failover_ms"] is None),
            "failover_ms": summary(values("failover_ms")),
            **by_v6,
            "detect_ms": summary(values("detect_ms"), 0),
            "triggered": sum(1 for r in recs if r.get("trigger") == "traffic"),
            "suspect_after_cut_ms": summary(values("suspect_after_cut_ms")),
            "down_after_cut_ms": summary(values("down_after_cut_ms")),
            "switch_after_cut_ms": summary(values("switch_after_cut_ms")),
            "switch_ms": summary(values("switch_ms"), 3),
            "failback_s": summary(values("failback_s"), 2),
            "failback_event_after_restore_s": summary(values("failback_event_after_restore_s"), 2),
            "up_after_restore_s": summary(values("up_after_restore_s"), 2),
            "failback_missed": sum(1 for r in recs if r["failback_s"] is None),
            "per_cut": recs,
        }

    # ---------------------------------------------------------------- quiet and lossy

    def quiet(self, seconds: float) -> dict[str, Any]:
        """Probe rate, CPU and memory over ``seconds`` with both uplinks healthy."""
        pid = self.daemon_pid()
        st0, p0 = self.office.status(), proc_sample(pid)
        time.sleep(seconds)
        st1, p1 = self.office.status(), proc_sample(pid)
        rate, lost = probe_rates(st0, p0.t, st1, p1.t)
        dns_pid = (st1.get("dnsmasq") or {}).get("pid")
        dns = proc_sample(int(dns_pid)) if dns_pid else None
        return {
            "seconds": round(p1.t - p0.t, 1),
            "probes_per_s": rate,
            "unanswered_pct": lost,
            "cpu_pct": cpu_pct(p0, p1),
            "rss_mb": mb(p1.rss_kb),
            "hwm_mb": mb(p1.hwm_kb),
            "rss_anon_mb": mb(p1.anon_kb),
            "rss_file_mb": mb(p1.file_kb),
            "dnsmasq_rss_mb": None if dns is None else mb(dns.rss_kb),
            "dnsmasq_hwm_mb": None if dns is None else mb(dns.hwm_kb),
            "states": {w["name"]: w["state"] for w in st1["wans"]},
        }

    def lossy(
        self,
        minutes: float,
        loss_pct: float,
        loss_dir: faults.Direction,
        delay_ms: float,
        jitter_ms: float,
        delay_dir: faults.Direction,
    ) -> dict[str, Any]:
        """Loss plus delay ± jitter on the primary for ``minutes``; false failovers and
        the cost of watching a bad link."""
        pid = self.daemon_pid()
        events = EventLog(self.office)
        events.poll()
        seconds = minutes * 60
        t_begin = time.monotonic()
        faults.loss(self.lab, self.primary, loss_pct, loss_dir)
        faults.delay(
            self.lab,
            self.primary,
            delay_ms,
            jitter_ms=jitter_ms,
            direction=delay_dir,
            max_seconds=seconds + 120,
        )
        st0, p0 = self.office.status(), proc_sample(pid)
        end = p0.t + seconds
        rtts: list[float] = []
        next_say = p0.t + PROGRESS_EVERY
        while (now := time.monotonic()) < end:
            time.sleep(min(EVENT_POLL, end - now))
            events.poll()
            st = self.office.status()
            prim = next(w for w in st["wans"] if w["name"] == self.primary)
            rtt = prim["rtt_ms"]
            if rtt is not None:
                rtts.append(float(rtt))
            if time.monotonic() >= next_say:
                next_say += PROGRESS_EVERY
                bad = len(events.between(t_begin, math.inf, "policy.failover", "wan.down"))
                say(
                    f"loss run: {(time.monotonic() - p0.t) / 60:.1f}/{minutes:g} min, "
                    f"{self.primary} {prim['state']} rtt {rtt} ms, "
                    f"failovers+downs so far {bad}"
                )
        st1, p1 = self.office.status(), proc_sample(pid)
        events.poll()
        faults.clear(self.lab, self.primary)
        rate, lost = probe_rates(st0, p0.t, st1, p1.t)
        run = events.between(t_begin, p1.t)
        counts = Counter(e["name"] for e in run)
        failovers = [e for e in run if e["name"] == "policy.failover"]
        downs = [e for e in run if e["name"] == "wan.down" and e.get("wan") == self.primary]
        return {
            "minutes": round((p1.t - p0.t) / 60, 2),
            "loss_pct": loss_pct,
            "loss_direction": loss_dir,
            "delay_ms": delay_ms,
            "jitter_ms": jitter_ms,
            "delay_direction": delay_dir,
            "false_failovers": len(failovers),
            "primary_downs": len(downs),
            "primary_degraded": sum(
                1 for e in run if e["name"] == "wan.degraded" and e.get("wan") == self.primary
            ),
            "bad_events": [
                {**e, "after_s": round(e["at"] - t_begin, 2)} for e in [*downs, *failovers]
            ],
            "traffic_triggers": sum(
                1 for e in run if e["name"] == "wan.suspect" and e.get("wan") == self.primary
            ),
            "event_counts": dict(sorted(counts.items())),
            "event_gaps": events.gaps,
            "probes_per_s": rate,
            "unanswered_pct": lost,
            "primary_rtt_ms": summary(rtts),
            "cpu_pct": cpu_pct(p0, p1),
            "rss_mb": mb(p1.rss_kb),
            "hwm_mb": mb(p1.hwm_kb),
            "rss_anon_mb": mb(p1.anon_kb),
            "rss_file_mb": mb(p1.file_kb),
            "active_at_end": st1["active"],
        }

    def bulk_run(
        self, seconds: float, flows: int, shape_mbit: float, latency_ms: float
    ) -> dict[str, Any]:
        """``flows`` bulk TCP downloads through the primary for ``seconds`` while the router
        pings the primary's first probe target every BULK_PING_INTERVAL: the RTT spikes its
        probes meet on a saturated path, and what the daemon made of them. With
        ``shape_mbit`` the primary's ISP is a tbf of that rate whose queue holds up to
        ``latency_ms`` (a modem's buffer: the downloads fill it, every probe waits in it)."""
        if shape_mbit:
            shaping.shape(self.lab, self.primary, shape_mbit, latency_ms=latency_ms)
        try:
            return self._bulk(seconds, flows) | {
                "shape_mbit": shape_mbit or None,
                "queue_latency_ms": latency_ms if shape_mbit else None,
            }
        finally:
            if shape_mbit:
                shaping.unshape(self.lab, self.primary)

    def _bulk(self, seconds: float, flows: int) -> dict[str, Any]:
        pid = self.daemon_pid()
        events = EventLog(self.office)
        events.poll()
        target = self.lab.isp(self.primary).targets[0]
        st0, p0 = self.office.status(), proc_sample(pid)
        pinged: list[Any] = []
        pinger = threading.Thread(
            target=lambda: pinged.append(
                ping(
                    self.lab, "router", target,
                    count=int(seconds / BULK_PING_INTERVAL), interval=BULK_PING_INTERVAL,
                    timeout=2.0,
                )
            ),
            daemon=True,
        )  # fmt: skip
        pinger.start()
        got = bulk(self.lab, self.client, flows=flows, seconds=seconds, direction="down")
        pinger.join(seconds + 30)
        st1, p1 = self.office.status(), proc_sample(pid)
        events.poll()
        rate, lost = probe_rates(st0, p0.t, st1, p1.t)
        run = events.between(p0.t, p1.t)
        mine = [e for e in run if e.get("wan") == self.primary]
        rtts = sorted(pinged[0].rtts_ms) if pinged else []
        return {
            "seconds": round(p1.t - p0.t, 1),
            "flows": flows,
            "goodput_mbit": round(got.bits_per_second / 1e6, 1),
            "by_isp_mbit": {k: round(v / 1e6, 1) for k, v in got.by_isp().items()},
            "errors": got.errors,
            "ping_sent": pinged[0].sent if pinged else 0,
            "ping_lost_pct": round(pinged[0].loss_pct, 2) if pinged else None,
            "ping_rtt_ms": {
                "median": rtts[len(rtts) // 2] if rtts else None,
                "p99": rtts[int(len(rtts) * 0.99)] if rtts else None,
                "p999": rtts[int(len(rtts) * 0.999)] if rtts else None,
                "max": rtts[-1] if rtts else None,
            },
            "primary_srtt_ms_end": next(
                (w["rtt_ms"] for w in st1["wans"] if w["name"] == self.primary), None
            ),
            "false_failovers": sum(1 for e in run if e["name"] == "policy.failover"),
            "primary_downs": sum(1 for e in mine if e["name"] == "wan.down"),
            "traffic_triggers": sum(1 for e in mine if e["name"] == "wan.suspect"),
            "event_counts": dict(sorted(Counter(e["name"] for e in run).items())),
            "probes_per_s": rate,
            "unanswered_pct": lost,
            "cpu_pct": cpu_pct(p0, p1),
        }


# --------------------------------------------------------------------------- report


def targets(out: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets: each with the measured value, whether it is met, and
    whether the sample is as large as the issue asks."""
    bh, cr, loss, quiet = out["blackhole"], out["carrier"], out["loss_run"], out["quiet"]
    bh_ms = bh["failover_ms"]
    rates = list(quiet["probes_per_s"].values())
    hwm = max(quiet["hwm_mb"], loss["hwm_mb"])

    def t(value: Any, met: bool, sample_ok: bool = True) -> dict[str, Any]:
        return {"value": value, "met": met, "sample_ok": sample_ok}

    enough_cuts = bh["cuts"] >= MIN_CUTS
    extra = {}
    if "quiet_traffic" in out:
        cpu = out["quiet_traffic"]["cpu_pct"]
        missed = bh["missed"] > 0
        extra = {
            "traffic_blackhole_median_le_500ms": t(
                bh_ms.get("median"),
                not missed and bh_ms.get("median", math.inf) <= TARGET_TRAFFIC_MEDIAN_MS,
                enough_cuts,
            ),
            "traffic_blackhole_max_le_800ms": t(
                bh_ms.get("max"),
                not missed and bh_ms.get("max", math.inf) <= TARGET_TRAFFIC_MAX_MS,
                enough_cuts,
            ),
            "traffic_cpu_le_1pct": t(cpu, cpu <= TARGET_TRAFFIC_CPU_PCT),
        }
    return extra | {
        "blackhole_median_le_1000ms": t(
            bh_ms.get("median"),
            bh["missed"] == 0 and bh_ms.get("median", math.inf) <= TARGET_BLACKHOLE_MEDIAN_MS,
            enough_cuts,
        ),
        "blackhole_max_le_1500ms": t(
            bh_ms.get("max"),
            bh["missed"] == 0 and bh_ms.get("max", math.inf) <= TARGET_BLACKHOLE_MAX_MS,
            enough_cuts,
        ),
        "carrier_max_le_100ms": t(
            cr["failover_ms"].get("max"),
            cr["missed"] == 0 and cr["failover_ms"].get("max", math.inf) <= TARGET_CARRIER_MS,
            cr["cuts"] >= 5,
        ),
        "zero_false_failovers": t(
            loss["false_failovers"],
            loss["false_failovers"] == 0,
            loss["minutes"] >= MIN_LOSS_MINUTES,
        ),
        "probes_per_s_le_2": t(max(rates), max(rates) <= TARGET_PROBES_PER_S),
        "rss_le_40mb": t(hwm, hwm <= TARGET_RSS_MB),
    }


def lte_path(lab: Lab, wan: str, args: argparse.Namespace) -> dict[str, Any]:
    """Delay ± jitter and loss on ``wan``'s ISP for the cuts (an LTE-like primary); a cut
    adds its blackhole on top and takes only that away."""
    bound = (args.cuts + args.carrier_cuts) * 120.0
    if args.path_loss_pct:
        faults.loss(lab, wan, args.path_loss_pct, "up")
    if args.path_delay_ms:
        faults.delay(
            lab, wan, args.path_delay_ms, jitter_ms=args.path_jitter_ms, direction="down",
            max_seconds=bound,
        )  # fmt: skip
    return {
        "delay_ms": args.path_delay_ms,
        "jitter_ms": args.path_jitter_ms,
        "delay_direction": "down",
        "loss_pct": args.path_loss_pct,
        "loss_direction": "up",
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    ipv6 = args.family == "6"
    config = load(args.config or (DUAL_STACK if ipv6 else OFFICE))
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    out: dict[str, Any] = {
        "bench": "failover",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": host_info(),
        "config": str(args.config or (DUAL_STACK if ipv6 else OFFICE)),
        "family": args.family,
    }
    with Lab(config, client_dns="router") as lab:
        bench = Bench(lab, config, rng, load=args.load, ipv6=ipv6)
        monitor = lab.lab_config.monitor
        warmup = monitor.loss_window if args.warmup is None else args.warmup
        out.update(
            primary=bench.primary,
            backup=bench.backup,
            client=bench.client,
            monitor=monitor.to_data(),
            warmup_s=warmup,
        )
        say(f"lab {lab.tag} up; starting wanwatch (quiet {args.quiet_seconds:g} s first)")
        bench.start(5.0)
        lease = lab.dhcp_lease(bench.client, timeout=15)
        say(f"{bench.client} leased {lease.address}")
        out["quiet"] = bench.quiet(args.quiet_seconds)
        say(f"quiet: {json.dumps(out['quiet'])}")
        stream = None
        if args.lan_traffic:
            out["lan_traffic_pps"] = args.lan_traffic
            stream = Stream(
                lab, bench.client, lab.topology.whoami[0], rate=args.lan_traffic / 2,
                seconds=STREAM_MAX_SECONDS,
            ).__enter__()  # fmt: skip
            time.sleep(2.0)
            out["quiet_traffic"] = bench.quiet(args.quiet_seconds)
            say(f"quiet with {args.lan_traffic:g} packets/s: {json.dumps(out['quiet_traffic'])}")
        if args.bulk_seconds:
            say(
                f"bulk: {args.bulk_flows} downloads through {bench.primary} "
                f"for {args.bulk_seconds:g} s"
            )
            out["bulk_run"] = bench.bulk_run(
                args.bulk_seconds, args.bulk_flows, args.bulk_shape_mbit, args.bulk_latency_ms
            )
            say(f"bulk: {json.dumps(out['bulk_run'])}")
        say(
            f"loss run: {args.loss_pct:g} % loss ({args.loss_direction}) + "
            f"{args.delay_ms:g} ± {args.jitter_ms:g} ms ({args.delay_direction}) on "
            f"{bench.primary} for {args.loss_minutes:g} min"
        )
        out["loss_run"] = bench.lossy(
            args.loss_minutes,
            args.loss_pct,
            args.loss_direction,
            args.delay_ms,
            args.jitter_ms,
            args.delay_direction,
        )
        bench.stop()
        lr = out["loss_run"]
        say(
            f"loss run: {lr['false_failovers']} false failovers, probes/s "
            f"{lr['probes_per_s']}, unanswered {lr['unanswered_pct']} %"
        )
        if args.path_delay_ms or args.path_loss_pct:
            out["cut_path"] = lte_path(lab, bench.primary, args)
        out["blackhole"] = bench.cuts("blackhole", args.cuts, warmup)
        out["carrier"] = bench.cuts("carrier", args.carrier_cuts, min(warmup, CARRIER_WARMUP))
        out["daemon_exit_codes"] = dict(Counter(str(c) for c in bench.exit_codes))
        if stream is not None:
            out["lan_stream"] = stream.stop()
        if args.load:
            out["load"] = {
                "status_callers": LOAD_CALLERS,
                "scrape_every_s": LOAD_SCRAPE_EVERY,
                "per_cut": bench.loads,
            }
    out["targets"] = targets(out)
    out["host"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--cuts", type=int, help="blackhole cuts (default 10; quick 3)")
    ap.add_argument("--carrier-cuts", type=int, help="carrier-loss cuts (default 5; quick 1)")
    ap.add_argument("--loss-minutes", type=float, help="lossy run (default 10; quick 1)")
    ap.add_argument("--quiet-seconds", type=float, help="quiet spell (default 60; quick 20)")
    ap.add_argument("--quick", action="store_true", help="a smoke check: 3 cuts, 1 carrier, 1 min")
    ap.add_argument(
        "--warmup",
        type=float,
        help="seconds a fresh daemon runs before a cut "
        "(default: monitor.loss_window, so its loss record is full; quick 10)",
    )
    ap.add_argument("--loss-pct", type=float, default=20.0)
    ap.add_argument("--loss-direction", choices=["up", "down", "both"], default="up")
    ap.add_argument("--delay-ms", type=float, default=100.0)
    ap.add_argument("--jitter-ms", type=float, default=20.0)
    ap.add_argument("--delay-direction", choices=["up", "down", "both"], default="down")
    ap.add_argument("--seed", type=int, default=1, help="random phase of each cut")
    ap.add_argument(
        "-c",
        "--config",
        type=Path,
        help=f"default {OFFICE.name} ({DUAL_STACK.name} with --family 6)",
    )
    ap.add_argument(
        "--family",
        choices=["4", "6"],
        default="4",
        help="6: every cut also times new IPv6 connections, beside IPv4's in the same cut",
    )
    ap.add_argument(
        "--lan-traffic",
        type=float,
        default=0.0,
        metavar="PPS",
        help="packets/s of LAN traffic through the router for the whole bench (e.g. 1000)",
    )
    ap.add_argument(
        "--bulk-seconds",
        type=float,
        default=0.0,
        help="after the quiet spell: bulk downloads through the primary this long, "
        "with the router's echoes timing the path",
    )
    ap.add_argument("--bulk-flows", type=int, default=8)
    ap.add_argument("--bulk-shape-mbit", type=float, default=0.0, help="primary's rate in --bulk")
    ap.add_argument("--bulk-latency-ms", type=float, default=200.0, help="its tbf queue")
    ap.add_argument("--path-delay-ms", type=float, default=0.0, help="on the primary for the cuts")
    ap.add_argument("--path-jitter-ms", type=float, default=0.0)
    ap.add_argument("--path-loss-pct", type=float, default=0.0, help="on the primary for the cuts")
    ap.add_argument(
        "--load",
        action="store_true",
        help=f"{LOAD_CALLERS} status callers and a scrape every {LOAD_SCRAPE_EVERY} s during cuts",
    )
    args = ap.parse_args(argv)
    quick = {
        "cuts": 3,
        "carrier_cuts": 1,
        "loss_minutes": 1.0,
        "quiet_seconds": 20.0,
        "warmup": 10.0,
    }
    full = {
        "cuts": 10,
        "carrier_cuts": 5,
        "loss_minutes": 10.0,
        "quiet_seconds": 60.0,
        "warmup": None,
    }
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.cuts < 1 or args.carrier_cuts < 1 or args.loss_minutes <= 0 or args.quiet_seconds <= 0:
        ap.error("cuts must be >= 1 and durations positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    return lab_main(lambda: run(args), (LabError, ControlError))


if __name__ == "__main__":
    sys.exit(main())
