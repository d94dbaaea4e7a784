"""Router-pair benchmark in the namespace lab; prints ONE JSON object (progress on stderr).

    python bench/ha.py [--rounds N] [--flows N] [--quick]

Root. Each round builds the office served by two wanwatch routers
(examples/office-ha-a.yaml, -b.yaml; ``wanwatch.lab.ha.PairLab``), waits
until router A is master and B backup, opens ``--flows`` long-lived TCP
connections from a LAN client through NAT (an exchange every 50 ms each), then:

- ``kill``: every process of router A is SIGKILLed and its cables pulled (a
  power cut) while the client opens a new connection every 20 ms; figures: the
  kill -> the first new connection answered (necessarily through B), the kill
  -> B's keepalived entering MASTER, flows lost;
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

A flow is lost when it reports a reset/EOF, or exchanges nothing in the 10 s
after the fault (kill, lan_down) or after the new master took over. Times are
CLOCK_MONOTONIC, one clock for every namespace (the daemons' event times
included). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from _common import ROOT, host_info, say, summary

from wanwatch.config import load
from wanwatch.daemon.control import request
from wanwatch.lab.ha import PairLab, run_router, start, wait_role
from wanwatch.lab.office import Office
from wanwatch.lab.traffic import ConnectLoop, Flow

A = ROOT / "examples" / "office-ha-a.yaml"
B = ROOT / "examples" / "office-ha-b.yaml"
LAN = "ether3"
DEADLINE = 15.0
SETTLE = 10.0  # a flow must exchange within this long after the event to count as alive
START_TIMEOUT = 30.0
AFTER_MASTER = 2.0  # new connections are counted until this long after the new master


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


def _outcome(flows: list[Flow], since: float) -> dict[str, Any]:
    """Flows lost (broke, or exchanged nothing in SETTLE s after ``since``) and the
    longest stall (> 1 s without an echo) that began around ``since``."""
    time.sleep(max(0.0, since + SETTLE + 0.2 - time.monotonic()))
    lost = 0
    stall = 0.0
    for f in flows:
        rep = f.report()
        if rep.broken_at is not None or (rep.last_ok or 0) <= since:
            lost += 1
        for begin, end in rep.stalls:
            if begin >= since - 2.0:
                stall = max(stall, (end or time.monotonic()) - begin)
    return {"lost": lost, "longest_stall_ms": round(stall * 1000, 1)}


def _flows_out(o: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}flows_lost": o["lost"], f"{prefix}longest_stall_ms": o["longest_stall_ms"]}


def _ms(t: float | None, since: float) -> float | None:
    return None if t is None else round((t - since) * 1000, 1)


def _round(
    n_flows: int, body: Callable[[PairLab, Office, Office, list[Flow]], dict[str, Any]]
) -> dict[str, Any]:
    lab = PairLab(load(A), load(B), remove_state=True)
    try:
        lab.up()
        a, b = start(lab, START_TIMEOUT)
        lab.dhcp_lease(LAN)
        flows = [Flow(lab, LAN, interval=0.05, max_seconds=300).start() for _ in range(n_flows)]
        for f in flows:
            f.wait_connected(time.monotonic() + DEADLINE)
        time.sleep(1.0)  # let conntrackd replicate the flows
        return body(lab, a, b, flows)
    finally:
        lab.down()


def _takeover(fault: str) -> Callable[[PairLab, Office, Office, list[Flow]], dict[str, Any]]:
    def body(lab: PairLab, a: Office, b: Office, flows: list[Flow]) -> dict[str, Any]:
        with ConnectLoop(lab, LAN) as loop:
            t0 = lab.kill_router("a") if fault == "kill" else lab.unplug("a", wans=False)
            first = loop.first_success(after=t0, deadline=t0 + DEADLINE)
        wait_role(b, "MASTER", DEADLINE)
        return {
            "new_connection_ms": _ms(first.t1 if first else None, t0),
            "backup_master_ms": _ms(_event_at(b, "vrrp.state", t0, state="MASTER"), t0),
            **_flows_out(_outcome(flows, t0)),
            "flows": len(flows),
        }

    return body


def _failed_connections(loop: ConnectLoop, since: float, master: float | None) -> int:
    """New connections started from ``since`` until AFTER_MASTER past ``master`` that failed."""
    end = (master or time.monotonic()) + AFTER_MASTER
    time.sleep(max(0.0, end - time.monotonic()))
    attempts = loop.settled(end, DEADLINE)
    return sum(1 for x in attempts if since <= x.t0 < end and not x.ok)


def _uplinks_dead(lab: PairLab, a: Office, b: Office, flows: list[Flow]) -> dict[str, Any]:
    t0 = lab.silence("a")
    wait_role(b, "MASTER", DEADLINE)
    detected = _last_event_at(a, "wan.down", t0)
    master = _event_at(b, "vrrp.state", t0, state="MASTER")
    lost = _outcome(flows, master or t0)
    with ConnectLoop(lab, LAN) as loop:
        t1 = lab.silence("a", on=False)
        wait_role(a, "MASTER", 120)
        back = _event_at(a, "vrrp.state", t1, state="MASTER")
        failed = _failed_connections(loop, t1, back)
    return {
        "detect_ms": _ms(detected, t0),
        "backup_master_ms": _ms(master, t0),
        "after_detection_ms": None if detected is None or master is None else _ms(master, detected),
        **_flows_out(lost),
        "failback_master_ms": _ms(back, t1),
        **_flows_out(_outcome(flows, back or t1), "failback_"),
        "failback_new_connections_failed": failed,
        "flows": len(flows),
    }


def _return(lab: PairLab, a: Office, b: Office, flows: list[Flow]) -> dict[str, Any]:
    lab.kill_router("a")
    wait_role(b, "MASTER", DEADLINE)
    lab.plug("a")
    _outcome(flows, time.monotonic())  # the flows settle on B first
    with ConnectLoop(lab, LAN) as loop:
        t1 = time.monotonic()
        run_router(lab, a, START_TIMEOUT)
        wait_role(a, "MASTER", 120)
        back = _event_at(a, "vrrp.state", t1, state="MASTER")
        ready = _event_at(a, "ha.track", t1, uplinks_down=0)
        failed = _failed_connections(loop, t1, back)
    return {
        "master_ms": _ms(back, t1),
        "ready_ms": None if ready is None else _ms(ready, t1),
        **_flows_out(_outcome(flows, back or t1)),
        "new_connections_failed": failed,
        "flows": len(flows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds of each scenario")
    ap.add_argument("--flows", type=int, default=20, help="long-lived NATed flows per round")
    ap.add_argument("--quick", action="store_true", help="1 round each, 5 flows")
    args = ap.parse_args()
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
        for i in range(rounds):
            say(f"{name} {i + 1}/{rounds}")
            res = _round(n_flows, body)
            say(f"  {res}")
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
        }

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
        "kill": takeover("kill"),
        "lan_down": takeover("lan_down"),
        "uplinks_dead": {
            **{k: fig("uplinks_dead", k) for k in ("detect_ms", "backup_master_ms")},
            "after_detection_ms": fig("uplinks_dead", "after_detection_ms"),
            **flows("uplinks_dead"),
        },
        "failback": {
            "master_ms": fig("uplinks_dead", "failback_master_ms"),
            **flows("uplinks_dead", "failback_"),
            "new_connections_failed": sum(
                r["failback_new_connections_failed"] for r in runs["uplinks_dead"]
            ),
        },
        "return": {
            **{k: fig("return", k) for k in ("master_ms", "ready_ms")},
            **flows("return"),
            "new_connections_failed": sum(r["new_connections_failed"] for r in runs["return"]),
        },
        "runs": runs,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
