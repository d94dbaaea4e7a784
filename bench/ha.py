"""Router-pair benchmark in the namespace lab; prints ONE JSON object (progress on stderr).

    python bench/ha.py [--rounds N] [--flows N] [--quick] [--only SCENARIO ...]
                       [--flow-every S] [--connect-every S]

Root. Each round builds the office served by two wanwatch routers
(examples/office-ha-a.yaml, -b.yaml; ``wanwatch.lab.ha.PairLab``), waits
until router A is master and B backup, opens ``--flows`` long-lived TCP
connections from a LAN client through NAT (an exchange every 50 ms each,
``--flow-every``), then:

- ``kill``: every process of router A is SIGKILLed and its cables pulled (a
  power cut) while the client opens a new connection every 20 ms
  (``--connect-every``); figures: the kill -> the first new connection
  answered (necessarily through B), the kill -> B's keepalived entering
  MASTER, flows lost;
- ``lan_down``: only A's LAN cables are pulled (its LAN instances fault, the
  sync group follows); same figures;
- ``uplinks_dead``: both ISPs silently drop A's own packets (its probes); A's
  wanwatch detects both uplinks down and the track file lowers its priority;
  figures: the silence -> A's last ``wan.down`` (detection), -> B's MASTER,
  their difference, flows lost; then ``failback``: the silence ends, A's
  uplinks come up, A preempts; figures: the end -> A's MASTER, flows lost,
  new connections (one every 20 ms) that failed from the end until 2 s after
  A's MASTER;
- ``return``: A is killed as in ``kill``, B carries; A's cables go back and
  wanwatch starts on A again (a power cut ends); A becomes master only once its
  uplinks are proven up and its dataplane applied; figures: A's start -> its
  MASTER, flows lost, new connections failed from A's start until 2 s after.

A flow is lost when it was alive at the start of a phase and then reports a
reset/EOF, or exchanges nothing in the 10 s after the fault (kill, lan_down) or
after the new master took over; a flow lost in an earlier phase of the round
is not counted again (failback follows uplinks_dead in one round). Times are
CLOCK_MONOTONIC, one clock for every namespace (the daemons' event times
included). Nothing is asserted.

Each round also keeps its evidence (``evidence``): per lost flow its timeline
(when it last exchanged and broke, why), per failed new connection when it
started and its error, all in ms from the new master's first ``vrrp.state
MASTER``; the new master's own timeline (its sync group's MASTER, when keepalived
synced its other instances, the end of conntrackd's commit); at failback, when
B's sync group released its other instances (``b_released_ms``: until then the
two routers each hold some shared addresses, docs/pair.md); and ``conntrackd
-s`` of both routers after the phase.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from _common import ROOT, host_info, say, summary

from wanwatch.config import load
from wanwatch.daemon.control import request
from wanwatch.lab import netns
from wanwatch.lab.ha import PairLab, run_router, start, wait_role
from wanwatch.lab.office import Office
from wanwatch.lab.traffic import Attempt, ConnectLoop, Flow
from wanwatch.linux import conntrackd

A = ROOT / "examples" / "office-ha-a.yaml"
B = ROOT / "examples" / "office-ha-b.yaml"
LAN = "ether3"
DEADLINE = 15.0
SETTLE = 10.0  # a flow must exchange within this long after the event to count as alive
START_TIMEOUT = 30.0
AFTER_MASTER = 2.0  # new connections are counted until this long after the new master
SCENARIOS = ("kill", "lan_down", "uplinks_dead", "return")


def _event_at(office: Office, name: str, after: float, **match: object) -> float | None:
    """Time of the first event ``name`` (with ``match`` fields) at/after ``after``."""
    for ev in request(office.socket, "events")["events"]:
        if (
            ev["name"] == name
            and ev["at"] >= after
            and all(ev.get(k) == v for k, v in match.items())
        ):
            return float(ev["at"])
    return None


def _last_event_at(office: Office, name: str, after: float) -> float | None:
    ats = [ev["at"] for ev in request(office.socket, "events")["events"] if ev["name"] == name]
    ats = [a for a in ats if a >= after]
    return float(max(ats)) if ats else None


def _outcome(flows: list[Flow], since: float, phase: float | None = None) -> dict[str, Any]:
    """Flows lost (broke, or exchanged nothing in SETTLE s after ``since``) among those
    alive at ``phase`` (default ``since``), the longest stall (> 1 s without an echo)
    that began around ``since``, and each lost flow's timeline (ms from ``since``)."""
    time.sleep(max(0.0, since + SETTLE + 0.2 - time.monotonic()))
    start = since if phase is None else phase
    lost: list[dict[str, Any]] = []
    stall = 0.0
    for f in flows:
        rep = f.report()
        if rep.broken_at is not None and rep.broken_at < start:
            continue  # lost in an earlier phase, counted there
        if rep.broken_at is not None or (rep.last_ok or 0) <= since:
            lost.append(
                {
                    "peer": rep.peer,
                    "last_ok_ms": _ms(rep.last_ok, since),
                    "broken_ms": _ms(rep.broken_at, since),
                    "reason": rep.reason,
                }
            )
        for begin, end in rep.stalls:
            if begin >= since - 2.0:
                stall = max(stall, (end or time.monotonic()) - begin)
    return {"lost": len(lost), "longest_stall_ms": round(stall * 1000, 1), "timelines": lost}


def _flows_out(o: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}flows_lost": o["lost"], f"{prefix}longest_stall_ms": o["longest_stall_ms"]}


def _timeline(office: Office, since: float) -> dict[str, Any]:
    """The new master's own steps, ms from its first instance's MASTER at/after ``since``:
    its sync group announced MASTER (``ha.role``), conntrackd's commit logged, the role
    served (dnsmasq started)."""
    evs = [ev for ev in request(office.socket, "events")["events"] if ev["at"] >= since]
    first = next(
        (ev["at"] for ev in evs if ev["name"] == "vrrp.state" and ev.get("state") == "MASTER"), None
    )
    if first is None:
        return {}

    def at(pred: Callable[[dict[str, Any]], bool]) -> float | None:
        return next((_ms(ev["at"], first) for ev in evs if ev["at"] >= first and pred(ev)), None)

    return {
        "role_ms": at(lambda ev: ev["name"] == "ha.role" and ev.get("role") == "MASTER"),
        "synced_ms": at(lambda ev: _syncing(ev, "MASTER")),
        "committed_ms": at(
            lambda ev: ev["name"] == "conntrackd.log" and "commit has taken" in str(ev.get("msg"))
        ),
        "served_ms": at(lambda ev: ev["name"] == "ha.served" and ev.get("role") == "MASTER"),
        "failed": [
            {k: v for k, v in ev.items() if k != "at"}
            for ev in evs
            if ev["name"] in ("conntrackd.failed", "conntrack.flush")
            or (ev["name"] == "conntrackd.log" and ev.get("level") in ("ERROR", "WARNING"))
        ],
    }


def _syncing(ev: dict[str, Any], state: str) -> bool:
    """keepalived's log line: the sync group pulls its other instances into ``state``."""
    return ev["name"] == "keepalived.log" and f"Syncing instances to {state}" in str(ev.get("msg"))


def _released(office: Office, master: float | None) -> float | None:
    """When the old master's sync group pulled its other instances to BACKUP, ms from the
    new master's first MASTER (``master``): until then it holds some shared addresses."""
    if master is None:
        return None
    evs = request(office.socket, "events")["events"]
    return next(
        (_ms(ev["at"], master) for ev in evs if ev["at"] >= master - 1 and _syncing(ev, "BACKUP")),
        None,
    )


def _decisions(office: Office, since: float, until: float | None) -> list[dict[str, Any]]:
    """What the old master decided while its uplinks failed (wan.down, policy.*,
    conntrack.flush), in ms from ``since``."""
    names = ("wan.down", "conntrack.flush")
    return [
        {"ms": _ms(ev["at"], since), **{k: v for k, v in ev.items() if k != "at"}}
        for ev in request(office.socket, "events")["events"]
        if since <= ev["at"] <= (until or ev["at"])
        and (ev["name"] in names or ev["name"].startswith("policy."))
    ]


def _conntrackd_stats(lab: PairLab, a: Office, b: Office) -> dict[str, list[str]]:
    """``conntrackd -s`` (its caches' and sync link's counters) on each router."""
    out: dict[str, list[str]] = {}
    for side, office in (("a", a), ("b", b)):
        files = conntrackd.ConntrackdFiles.under(office.daemon_state)
        argv = conntrackd.control("/usr/sbin/conntrackd", files, "-s")
        res = netns.sh(["ip", "netns", "exec", lab.router(side), *argv], check=False)
        out[side] = [" ".join(line.split()) for line in res.stdout.splitlines() if line.strip()]
    return out


def _failures(
    attempts: list[Attempt], since: float, end: float, zero: float | None
) -> list[dict[str, Any]]:
    """The failed attempts started in [since, end): start and end in ms from ``zero``, error."""
    z = since if zero is None else zero
    return [
        {"t0_ms": _ms(x.t0, z), "t1_ms": _ms(x.t1, z), "error": x.error, "sport": x.sport}
        for x in attempts
        if since <= x.t0 < end and not x.ok
    ]


def _ms(t: float | None, since: float) -> float | None:
    return None if t is None else round((t - since) * 1000, 1)


@dataclass(frozen=True)
class Pace:
    """How often each flow exchanges, and how often the client opens a new connection."""

    flow_every: float = 0.05
    connect_every: float = 0.02

    def loop(self, lab: PairLab) -> ConnectLoop:
        return ConnectLoop(lab, LAN, interval=self.connect_every)


Body = Callable[[PairLab, Office, Office, list[Flow], Pace], dict[str, Any]]


def _round(n_flows: int, pace: Pace, body: Body) -> dict[str, Any]:
    lab = PairLab(load(A), load(B), remove_state=True)
    try:
        lab.up()
        a, b = start(lab, START_TIMEOUT)
        lab.dhcp_lease(LAN)
        flows = [
            Flow(lab, LAN, interval=pace.flow_every, max_seconds=300).start()
            for _ in range(n_flows)
        ]
        for f in flows:
            f.wait_connected(time.monotonic() + DEADLINE)
        time.sleep(1.0)  # let conntrackd replicate the flows
        return body(lab, a, b, flows, pace)
    finally:
        lab.down()


def _takeover(fault: str) -> Body:
    def body(lab: PairLab, a: Office, b: Office, flows: list[Flow], pace: Pace) -> dict[str, Any]:
        with pace.loop(lab) as loop:
            t0 = lab.kill_router("a") if fault == "kill" else lab.unplug("a", wans=False)
            first = loop.first_success(after=t0, deadline=t0 + DEADLINE)
        wait_role(b, "MASTER", DEADLINE)
        out = _outcome(flows, t0)
        return {
            "new_connection_ms": _ms(first.t1 if first else None, t0),
            "backup_master_ms": _ms(_event_at(b, "vrrp.state", t0, state="MASTER"), t0),
            **_flows_out(out),
            "flows": len(flows),
            "evidence": {
                "lost": out["timelines"],
                "b": _timeline(b, t0),
                "conntrackd": _conntrackd_stats(lab, a, b),
            },
        }

    return body


def _failed_connections(
    loop: ConnectLoop, since: float, master: float | None
) -> list[dict[str, Any]]:
    """New connections started from ``since`` until AFTER_MASTER past ``master`` that
    failed: each one's start and end in ms from ``master``, and its error."""
    end = (master or time.monotonic()) + AFTER_MASTER
    time.sleep(max(0.0, end - time.monotonic()))
    return _failures(loop.settled(end, DEADLINE), since, end, master)


def _uplinks_dead(
    lab: PairLab, a: Office, b: Office, flows: list[Flow], pace: Pace
) -> dict[str, Any]:
    t0 = lab.silence("a")
    wait_role(b, "MASTER", DEADLINE)
    detected = _last_event_at(a, "wan.down", t0)
    master = _event_at(b, "vrrp.state", t0, state="MASTER")
    lost = _outcome(flows, master or t0, t0)
    b_steps = _timeline(b, t0)
    a_decided = _decisions(a, t0, master)
    with pace.loop(lab) as loop:
        t1 = lab.silence("a", on=False)
        wait_role(a, "MASTER", 120)
        back = _event_at(a, "vrrp.state", t1, state="MASTER")
        failed = _failed_connections(loop, t1, back)
    lost_back = _outcome(flows, back or t1, t1)
    return {
        "detect_ms": _ms(detected, t0),
        "backup_master_ms": _ms(master, t0),
        "after_detection_ms": None if detected is None or master is None else _ms(master, detected),
        **_flows_out(lost),
        "failback_master_ms": _ms(back, t1),
        **_flows_out(lost_back, "failback_"),
        "failback_new_connections_failed": len(failed),
        "flows": len(flows),
        "evidence": {
            "lost": lost["timelines"],
            "a_decided": a_decided,
            "b": b_steps,
            "failback_lost": lost_back["timelines"],
            "failback_failed": failed,
            "a": _timeline(a, t1),
            "b_released_ms": _released(b, back),
            "conntrackd": _conntrackd_stats(lab, a, b),
        },
    }


def _return(lab: PairLab, a: Office, b: Office, flows: list[Flow], pace: Pace) -> dict[str, Any]:
    lab.kill_router("a")
    wait_role(b, "MASTER", DEADLINE)
    lab.plug("a")
    _outcome(flows, time.monotonic())  # the flows settle on B first
    with pace.loop(lab) as loop:
        t1 = time.monotonic()
        run_router(lab, a, START_TIMEOUT)
        wait_role(a, "MASTER", 120)
        back = _event_at(a, "vrrp.state", t1, state="MASTER")
        ready = _event_at(a, "ha.track", t1, uplinks_down=0)
        failed = _failed_connections(loop, t1, back)
    out = _outcome(flows, back or t1, t1)
    return {
        "master_ms": _ms(back, t1),
        "ready_ms": None if ready is None else _ms(ready, t1),
        **_flows_out(out),
        "new_connections_failed": len(failed),
        "flows": len(flows),
        "evidence": {
            "lost": out["timelines"],
            "failed": failed,
            "a": _timeline(a, t1),
            "conntrackd": _conntrackd_stats(lab, a, b),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds of each scenario")
    ap.add_argument("--flows", type=int, default=20, help="long-lived NATed flows per round")
    ap.add_argument("--quick", action="store_true", help="1 round each, 5 flows")
    ap.add_argument("--only", nargs="+", choices=SCENARIOS, help="these scenarios only")
    ap.add_argument(
        "--flow-every", type=float, default=Pace.flow_every, help="s between a flow's exchanges"
    )
    ap.add_argument(
        "--connect-every", type=float, default=Pace.connect_every, help="s between new connections"
    )
    args = ap.parse_args()
    pace = Pace(args.flow_every, args.connect_every)
    rounds, n_flows = (1, 5) if args.quick else (args.rounds, args.flows)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    bodies = {
        "kill": _takeover("kill"),
        "lan_down": _takeover("lan_down"),
        "uplinks_dead": _uplinks_dead,
        "return": _return,
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in bodies}
    for name, body in bodies.items():
        if args.only and name not in args.only:
            continue
        for i in range(rounds):
            say(f"{name} {i + 1}/{rounds}")
            res = _round(n_flows, pace, body)
            say(f"  { {k: v for k, v in res.items() if k != 'evidence'} }")
            runs[name].append(res)

    def fig(name: str, key: str) -> dict[str, Any]:
        return summary([r[key] for r in runs[name] if r.get(key) is not None])

    def flows(name: str, prefix: str = "") -> dict[str, Any]:
        return {
            "flows_lost": sum(r[f"{prefix}flows_lost"] for r in runs[name]),
            "flows": sum(r["flows"] for r in runs[name]),
            "longest_stall_ms": fig(name, f"{prefix}longest_stall_ms"),
        }

    def takeover(name: str) -> dict[str, Any]:
        return {
            **{k: fig(name, k) for k in ("new_connection_ms", "backup_master_ms")},
            **flows(name),
            "commit_after_master_ms": committed(name, "b"),
        }

    def committed(name: str, side: str) -> dict[str, Any]:
        """The new master's first MASTER -> the end of its conntrackd commit."""
        return summary(
            [
                r["evidence"][side]["committed_ms"]
                for r in runs[name]
                if r["evidence"][side].get("committed_ms") is not None
            ]
        )

    out = {
        "bench": "ha",
        "started": started,
        "host": host_info(),
        "config": {
            "a": str(A.relative_to(ROOT)),
            "b": str(B.relative_to(ROOT)),
            "advert_interval_s": 0.1,
        },
        "rounds": rounds,
        "flows_per_round": n_flows,
        "flow_every_s": pace.flow_every,
        "connect_every_s": pace.connect_every,
        "kill": takeover("kill"),
        "lan_down": takeover("lan_down"),
        "uplinks_dead": {
            **{k: fig("uplinks_dead", k) for k in ("detect_ms", "backup_master_ms")},
            "after_detection_ms": fig("uplinks_dead", "after_detection_ms"),
            **flows("uplinks_dead"),
            "commit_after_master_ms": committed("uplinks_dead", "b"),
        },
        "failback": {
            "master_ms": fig("uplinks_dead", "failback_master_ms"),
            **flows("uplinks_dead", "failback_"),
            "new_connections_failed": sum(
                r["failback_new_connections_failed"] for r in runs["uplinks_dead"]
            ),
            "commit_after_master_ms": committed("uplinks_dead", "a"),
        },
        "return": {
            **{k: fig("return", k) for k in ("master_ms", "ready_ms")},
            **flows("return"),
            "new_connections_failed": sum(r["new_connections_failed"] for r in runs["return"]),
            "commit_after_master_ms": committed("return", "a"),
        },
        "loadavg_end": list(os.getloadavg()),
        "runs": runs,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
