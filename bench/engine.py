"""Benchmark of the failover engine on simulated links; prints ONE JSON object.

    python bench/engine.py [--hours N] [--outage-hours N] [--seed S] [--jobs N]

Figures (virtual time, wanwatch.engine.sim):
- detection of silent outages (primary stops answering, carrier up): from the
  outage start to wan.down, over randomized traces (loss 0-20 %, RTT 20-120 ms,
  jitter 0-20 ms, outages 2-60 s every few minutes), overall and per loss level;
- carrier-loss detection (netlink's ~12 ms delivery is not simulated);
- false failovers, downs and degraded per simulated day on a primary with 10,
  20 and 30 % iid loss and 100 +- 20 ms RTT (normal jitter), --hours each
  (72 h: zero events then bounds the rate below 1/day at 95 %);
- probes per second per healthy uplink, clean and lossy;
- failback: outage end to policy.failback (rise + hold, with flap damping);
- mixed methods (docs/probes.md): the primary probed by icmp, tcp, http and dns
  as in examples/office-lte.yaml, at 20 % loss with ICMP answering and with ICMP
  filtered (false failovers per day, probes/s), and silent-outage detection with
  ICMP filtered (tcp, http and dns alone decide);
- young record: a silent cut a few seconds after start against one after ten
  minutes (clean 30 ms link, the cut at a random phase of the healthy cadence),
  and false downs in the first minute of --starts starts on a primary lossy
  from the start (10, 20, 30 % iid, 100 +- 20 ms; each start its own seed);
- clean_min_timeout sweep (min_timeout 150 ms): detection on a 0.5 ms path and
  an LTE-like one (40 +- 15 ms, 1 % loss); false downs on 20 % loss with
  100 +- 20 ms and on 5 % with 40 +- 15 ms (--floor-hours each), also with
  min_timeout lowered to the same floor (``one_floor``); false downs on a 0.5 ms
  path whose RTT steps to 100, 200 or 300 ms for 2 s once a minute (a queue
  filled by an upload: the delay a floor guards against), 2 hours each.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from wanwatch.config import Config, load
from wanwatch.engine.sim import LinkModel, Simulator, first_after, poisson_upper

OFFICE = Path(__file__).resolve().parent.parent / "examples" / "office.yaml"
# The mixed-method rows probe the primary as examples/office-lte.yaml does: every method.
LTE = OFFICE.parent / "office-lte.yaml"
ALWAYS = ((0.0, float("inf")),)
MIXED_OUTAGES = 40  # silent outages of the ICMP-filtered primary, 30 s each, 5 min apart
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"
LOSS_LEVELS = (0.0, 0.0, 0.01, 0.02, 0.05, 0.1, 0.2)  # clean twice: the common case


def dist(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    v = sorted(values)
    return {
        "count": len(v),
        "median": round(statistics.median(v), 1),
        "p90": round(v[min(len(v) - 1, int(0.9 * len(v)))], 1),
        "max": round(v[-1], 1),
    }


def outage_trace(config: Config, hours: float, seed: int) -> dict[str, Any]:
    """One randomized trace of the primary; returns raw per-outage measurements."""
    rng = random.Random(seed)
    end = hours * 3600
    rtt = rng.uniform(0.02, 0.12)
    jitter = rng.uniform(0.0, 0.02)
    loss_changes: list[tuple[float, float]] = []
    t = 0.0
    while t < end:
        loss_changes.append((t, rng.choice(LOSS_LEVELS)))
        t += rng.uniform(300, 1200)
    outages: list[tuple[float, float]] = []
    carrier: list[tuple[float, float]] = []
    t = 120.0
    while True:
        t += 30 + rng.expovariate(1 / 210)  # >= 30 s apart: each starts on a live uplink
        length = rng.uniform(2, 60)
        if t + length + 60 > end:
            break
        (carrier if rng.random() < 0.2 else outages).append((t, t + length))
        t += length
    link = LinkModel(rtt=rtt, jitter=jitter, loss_changes=loss_changes, outages=outages)
    link_c = LinkModel(
        rtt=rtt, jitter=jitter, loss_changes=loss_changes, outages=outages, carrier_down=carrier
    )
    sim = Simulator(config, {PRIMARY: link_c, BACKUP: LinkModel(rtt=0.02)}, seed=seed)
    sim.run_until(end)
    downs = sim.named("wan.down", PRIMARY)

    def health_at(t: float) -> str:
        state = "unknown"
        for e in sim.events:
            if e.at > t:
                break
            if e.fields.get("wan") == PRIMARY and e.name in ("wan.up", "wan.down"):
                state = e.name
        return state

    detect: list[tuple[float, float]] = []  # (loss level, ms)
    missed = already_down = 0
    for a, b in outages:
        if health_at(a) != "wan.up":
            already_down += 1  # still down (or rising) from the previous fault
            continue
        d = next((e for e in downs if a <= e.at <= b + 5), None)
        if d is None:
            missed += 1
        else:
            detect.append((link.loss_at(a), (d.at - a) * 1000))
    carrier_ms = []
    for a, _ in carrier:
        d = next((e for e in downs if a <= e.at), None)
        if d is not None and d.fields.get("reason") == "carrier":
            carrier_ms.append((d.at - a) * 1000)
    failback: list[tuple[float, float]] = []  # (hold, seconds from fault end to failback)
    faults = sorted([*outages, *carrier])
    for (_, b), nxt in zip(faults, [*faults[1:], (end, end)], strict=True):
        fb = first_after(sim.events, "policy.failback", b, to=PRIMARY)
        up = first_after(sim.events, "wan.up", b, wan=PRIMARY)
        if fb is not None and up is not None and fb.at < nxt[0]:
            failback.append((float(up.fields.get("hold_s") or 0), fb.at - b))
    in_outage = [*outages, *carrier]
    false_downs = sum(1 for e in downs if not any(a <= e.at <= b + 5 for a, b in in_outage))
    return {
        "detect": detect,
        "missed": missed,
        "already_down": already_down,
        "carrier_ms": carrier_ms,
        "failback": failback,
        "false_downs": false_downs,
    }


def cheap_backup(config: Config) -> Config:
    """The office with the backup probed every 5 s: it only has to be there, and
    halving the simulated probes doubles the virtual days the bench affords."""
    wans = tuple(
        w.replace(probe=w.probe.replace(interval=5.0)) if w.name == BACKUP else w
        for w in config.wans
    )
    return config.replace(wans=wans)


def mixed_config(config: Config) -> Config:
    """``config`` with its primary probed as examples/office-lte.yaml probes its own."""
    probe = next(w.probe for w in load(LTE).wans if w.name == PRIMARY)
    return config.replace(
        wans=tuple(w.replace(probe=probe) if w.name == PRIMARY else w for w in config.wans)
    )


def lossy_run(
    config: Config,
    loss: float,
    hours: float,
    seed: int,
    rtt: float = 0.1,
    jitter: float = 0.02,
    *,
    icmp_filtered: bool = False,
) -> dict[str, Any]:
    """A primary with iid loss and (by default) 100 +- 20 ms RTT, no outage at all."""
    filtered = {"icmp": ALWAYS} if icmp_filtered else {}
    links = {
        PRIMARY: LinkModel(rtt=rtt, jitter=jitter, loss=loss, filtered=filtered),
        BACKUP: LinkModel(rtt=0.02),
    }
    sim = Simulator(cheap_backup(config), links, seed=seed)
    sim.run_until(hours * 3600)
    days = hours / 24
    failovers = len(sim.named("policy.failover"))
    sent = sim.engine.probes_sent()
    return {
        "hours": hours,
        "failovers": failovers,
        "failovers_per_day": round(failovers / days, 3),
        "failovers_per_day_95_upper": round(poisson_upper(failovers, days), 3),
        "downs": len(sim.named("wan.down", PRIMARY)),
        "degraded": len(sim.named("wan.degraded", PRIMARY)),
        "target_silent": len(sim.named("target.silent", PRIMARY)),
        "probes_per_s": round(sent[PRIMARY] / (hours * 3600), 3),
    }


def clean_rates(config: Config) -> dict[str, float]:
    """Probes per second of clean uplinks (100 ms and 20 ms RTT) over an hour."""
    links = {PRIMARY: LinkModel(rtt=0.1, jitter=0.02), BACKUP: LinkModel(rtt=0.02)}
    sim = Simulator(config, links)
    sim.run_until(3600)
    return {k: round(v / 3600, 3) for k, v in sim.engine.probes_sent().items()}


def with_monitor(config: Config, **changes: Any) -> Config:
    return config.replace(monitor=config.monitor.replace(**changes))


def cut_detect(config: Config, link: LinkModel, cuts: list[float], seed: int) -> list[float]:
    """ms from each silent cut (20 s long, one run per cut) to the primary's wan.down."""
    out = []
    for i, cut in enumerate(cuts):
        links = {
            PRIMARY: LinkModel(
                rtt=link.rtt, jitter=link.jitter, loss=link.loss, outages=((cut, cut + 20),)
            ),
            BACKUP: LinkModel(rtt=0.02),
        }
        sim = Simulator(config, links, seed=seed + i)
        sim.run_until(cut + 10)
        down = first_after(sim.events, "wan.down", cut, wan=PRIMARY)
        if down is not None:
            out.append((down.at - cut) * 1000)
    return out


def filtered_outages(config: Config, seed: int) -> list[float]:
    """ms from each silent outage's start to wan.down, ICMP filtered throughout."""
    starts = [300.0 * (k + 1) + random.Random(seed + k).uniform(0, 1) for k in range(MIXED_OUTAGES)]
    link = LinkModel(
        rtt=0.1, jitter=0.02, outages=[(t, t + 30) for t in starts], filtered={"icmp": ALWAYS}
    )
    sim = Simulator(cheap_backup(config), {PRIMARY: link, BACKUP: LinkModel(rtt=0.02)}, seed=seed)
    sim.run_until(starts[-1] + 120)
    out = []
    for t in starts:
        down = first_after(sim.events, "wan.down", t, wan=PRIMARY)
        if down is not None and down.at < t + 30:
            out.append((down.at - t) * 1000)
    return out


def young_cuts(config: Config, cuts: int, seed: int) -> dict[str, Any]:
    """A silent cut a few seconds after start against one after ten minutes (clean link)."""
    rng = random.Random(seed)
    clean = LinkModel(rtt=0.03)
    soon = cut_detect(config, clean, [3 + rng.uniform(0, 0.5) for _ in range(cuts)], seed)
    late = cut_detect(config, clean, [600 + rng.uniform(0, 0.5) for _ in range(cuts)], seed)
    return {"cut_3s_after_start_ms": dist(soon), "cut_600s_after_start_ms": dist(late)}


def lossy_starts(config: Config, level: float, starts: int, seed: int) -> dict[str, Any]:
    """False downs in the first minute of ``starts`` starts on a primary lossy from the start."""
    downs = 0
    for k in range(starts):
        links = {
            PRIMARY: LinkModel(rtt=0.1, jitter=0.02, loss=level),
            BACKUP: LinkModel(rtt=0.02),
        }
        sim = Simulator(cheap_backup(config), links, seed=seed * 100_000 + k)
        sim.run_until(60)
        downs += len(sim.named("wan.down", PRIMARY))
    return {
        "starts": starts,
        "false_downs_first_minute": downs,
        "per_start_95_upper": round(poisson_upper(downs, starts), 5),
        "bound_p_pow_6": round(level**6, 6),
    }


def step_run(config: Config, rtt: float, hours: float, seed: int) -> dict[str, Any]:
    """A 0.5 ms primary whose RTT jumps to ``rtt`` for 2 s once a minute (an upload
    filling the modem's queue, the worst case: a step, not a ramp); no outage."""
    slow = [((60.0 * k + 0.37 * k, 60.0 * k + 0.37 * k + 2.0), rtt) for k in range(1, 60)]
    links = {PRIMARY: LinkModel(rtt=0.0005, slow=slow), BACKUP: LinkModel(rtt=0.02)}
    downs = failovers = 0
    for h in range(max(1, round(hours))):  # each hour its own seed; the steps start anew
        sim = Simulator(cheap_backup(config), links, seed=seed * 1000 + h)
        sim.run_until(3600)
        downs += len(sim.named("wan.down", PRIMARY))
        failovers += len(sim.named("policy.failover"))
    return {
        "hours": max(1, round(hours)),
        "steps": 59 * max(1, round(hours)),
        "downs": downs,
        "failovers": failovers,
    }


def floor_row(config: Config, floor: float, hours: float, seed: int) -> dict[str, Any]:
    """One clean_min_timeout (min_timeout stays 150 ms): detection on a sub-ms and an
    LTE-like path, false downs when lossy, and on RTT steps; ``one_floor``: the same
    with min_timeout lowered to it too (no conservative floor at all)."""
    c = with_monitor(config, clean_min_timeout=floor)
    one = with_monitor(config, clean_min_timeout=floor, min_timeout=floor)
    rng = random.Random(seed)
    cuts = [60 + rng.uniform(0, 0.5) for _ in range(30)]
    keys = ("hours", "failovers", "downs", "failovers_per_day_95_upper")

    def lossy(cfg: Config, loss: float, **link: float) -> dict[str, Any]:
        r = lossy_run(cfg, loss, hours, seed, **link)
        return {k: r[k] for k in keys}

    return {
        "detect_ms_0.5ms_path": dist(cut_detect(c, LinkModel(rtt=0.0005), cuts, seed)),
        "detect_ms_lte_40+-15ms_1pct": dist(
            cut_detect(c, LinkModel(rtt=0.04, jitter=0.015, loss=0.01), cuts, seed)
        ),
        "loss_20pct_100+-20ms": lossy(c, 0.2),
        "loss_20pct_100+-20ms_one_floor": lossy(one, 0.2),
        "loss_5pct_40+-15ms": lossy(c, 0.05, rtt=0.04, jitter=0.015),
        "loss_5pct_40+-15ms_one_floor": lossy(one, 0.05, rtt=0.04, jitter=0.015),
        **{f"rtt_step_to_{round(r * 1000)}ms": step_run(c, r, STEP_HOURS, seed) for r in RTT_STEPS},
        f"rtt_step_to_{round(RTT_STEPS[1] * 1000)}ms_one_floor": step_run(
            one, RTT_STEPS[1], STEP_HOURS, seed
        ),
    }


RTT_STEPS = (0.1, 0.2, 0.3)
STEP_HOURS = 2.0
FLOORS = (0.15, 0.1, 0.05, 0.025)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=72.0, help="virtual hours per lossy run")
    ap.add_argument("--outage-hours", type=float, default=12.0, help="virtual hours of outages")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (seeded: same output)")
    ap.add_argument("--starts", type=int, default=2000, help="starts per lossy level (young)")
    ap.add_argument("--floor-hours", type=float, default=24.0, help="lossy hours per floor")
    ap.add_argument(
        "--only", choices=("young", "floors"), help="only the young-record or the floor rows"
    )
    args = ap.parse_args()
    config = load(OFFICE)
    started = time.monotonic()

    levels = (0.1, 0.2, 0.3)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        young_jobs = {
            f"{round(p * 100)}%": pool.submit(lossy_starts, config, p, args.starts, args.seed + k)
            for k, p in enumerate(levels)
            if args.only in (None, "young")
        }
        cuts_job = pool.submit(young_cuts, config, 100, args.seed) if young_jobs else None
        floor_jobs = {
            f"{round(f * 1000)}ms": pool.submit(floor_row, config, f, args.floor_hours, args.seed)
            for f in FLOORS
            if args.only in (None, "floors")
        }
        if args.only is None:
            main_out = main_rows(pool, config, args)
        young = None
        if cuts_job is not None:
            lossy_start = {k: j.result() for k, j in young_jobs.items()}
            young = {**cuts_job.result(), "lossy_from_start": lossy_start}
        floors = {k: j.result() for k, j in floor_jobs.items()}
    out: dict[str, Any] = {"seed": args.seed, "only": args.only}
    if args.only is None:
        out.update(main_out)
    if young is not None:
        out["young_record"] = young
    if floors:
        out["clean_min_timeout_sweep"] = {"floor_hours": args.floor_hours, **floors}
    out["wall_s"] = round(time.monotonic() - started, 1)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def main_rows(
    pool: ProcessPoolExecutor, config: Config, args: argparse.Namespace
) -> dict[str, Any]:
    """The detection, false-failover, probe-rate and failback rows."""
    traces = max(1, round(args.outage_hours))
    levels = (0.1, 0.2, 0.3)
    lossy_jobs = [
        pool.submit(lossy_run, config, p, args.hours, args.seed + k) for k, p in enumerate(levels)
    ]
    trace_jobs = [
        pool.submit(outage_trace, config, args.outage_hours / traces, args.seed * 1000 + i)
        for i in range(traces)
    ]
    clean_job = pool.submit(clean_rates, config)
    mixed = mixed_config(config)
    mixed_jobs = {
        "loss_20pct": pool.submit(lossy_run, mixed, 0.2, args.hours, args.seed + 10),
        "icmp_filtered_loss_20pct": pool.submit(
            lossy_run, mixed, 0.2, args.hours, args.seed + 11, icmp_filtered=True
        ),
    }
    outage_job = pool.submit(filtered_outages, mixed, args.seed + 12)
    results = [j.result() for j in trace_jobs]
    lossy = {f"{round(p * 100)}%": j.result() for p, j in zip(levels, lossy_jobs, strict=True)}
    clean_rate = clean_job.result()
    mixed_rows: dict[str, Any] = {k: j.result() for k, j in mixed_jobs.items()}
    mixed_detect = outage_job.result()
    mixed_rows["icmp_filtered_outage_detect_ms"] = dist(mixed_detect)
    mixed_rows["icmp_filtered_outages_missed"] = MIXED_OUTAGES - len(mixed_detect)

    detect: list[tuple[float, float]] = []
    carrier_ms: list[float] = []
    failback: list[tuple[float, float]] = []
    missed = false_downs = already_down = 0
    for r in results:
        detect += r["detect"]
        carrier_ms += r["carrier_ms"]
        failback += r["failback"]
        missed += r["missed"]
        already_down += r["already_down"]
        false_downs += r["false_downs"]
    by_loss: dict[float, list[float]] = defaultdict(list)
    for level, ms in detect:
        by_loss[level].append(ms)

    return {
        "silent_outage_detect_ms": dist([ms for _, ms in detect]),
        "silent_outage_detect_ms_by_loss": {
            f"{round(level * 100)}%": dist(v) for level, v in sorted(by_loss.items())
        },
        "silent_outages_missed": missed,
        "silent_outages_on_uplink_already_down": already_down,
        "false_downs_in_outage_traces": false_downs,
        "outage_trace_hours": args.outage_hours,
        "carrier_detect_ms": dist(carrier_ms),
        "false_failovers": lossy,
        "probes_per_s_healthy": {
            "clean_100ms": clean_rate[PRIMARY],
            "clean_20ms": clean_rate[BACKUP],
            "loss_20pct_100ms": lossy["20%"]["probes_per_s"],
        },
        "failback_s": dist([s for _, s in failback]),
        "failback_s_first_down": dist([s for h, s in failback if h <= config.monitor.hold]),
        "mixed_methods": mixed_rows,
    }


if __name__ == "__main__":
    sys.exit(main())
