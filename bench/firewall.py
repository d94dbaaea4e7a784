"""What the firewall costs in forwarding, in the namespace lab; prints ONE JSON object.

    sudo python bench/firewall.py [--rounds N] [--parallel N] [--churn-seconds S] [--seconds S]

Root. Builds the reference office (examples/office.yaml) with ``wanwatch run``
as its router and measures, from the first LAN's client (a static address)
against a server in the fake internet:

- connection rate: ``--parallel`` clients in a closed loop for ``--churn-seconds``,
  each opening a new TCP connection to the whoami server, reading its hello
  line and resetting it, then the next (a closed loop measures what the lab
  sustains; an open loop faster than that piles up SYN retransmissions and
  measures their backoff instead); connections per second and the median
  connect-to-hello time;
- bulk: one TCP download from the lab's bulk server for ``--seconds``
  (unshaped: as fast as the router forwards), goodput from the client
  kernel's counters after a 1 s warm-up.

with the firewall on and off in the same run, in alternating rounds (the
order flips every round, so neither side always runs on a freshly started
daemon first). "On" is the default firewall plus an opening, a port forward
and an isolated second LAN, so every firewall chain is in the table; "off" is
``firewall.enabled: false`` (no isolation then: the check refuses it). Each
round starts the daemon afresh on its config. ``cost_pct`` compares the
medians: (off - on) / off, in percent; the target is under 5 %.

Everything runs on this machine's two cores (client, server, router and the
daemon), so the figures are the lab's, not a router's: compare on with off,
never with another machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import struct
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from _common import ROOT, host_info, lab_main, say, summary

from wanwatch.config import load
from wanwatch.errors import LabError
from wanwatch.lab import netns
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import bulk
from wanwatch.lab.worker.servers import WHOAMI_PORT

OFFICE = ROOT / "examples" / "office.yaml"
PRIMARY = "INET-UTAMA"
TARGET_PCT = 5.0
START_TIMEOUT = 30.0
MAX_CHURN_SECONDS = 60.0  # a churn worker stops by itself


def config_file(lab: Lab, firewall_on: bool) -> Path:
    """The lab's config with the firewall on (every chain in use) or off."""
    data = yaml.safe_load(lab.config_text)
    data["hooks"] = {}  # the office's logger hooks would write to the host's syslog
    if firewall_on:
        data["firewall"] = {
            "allow": [{"name": "wireguard", "proto": "udp", "port": 51820}],
        }
        office_lan = lab.topology.clients[0].network
        if office_lan is None:
            raise LabError("the office's first LAN has no address")
        data["forwards"] = [
            {
                "name": "web",
                "proto": "tcp",
                "port": 8443,
                "to": str(office_lan.network_address + 10),
                "to_port": 443,
            }
        ]
        for lan in data["lans"][1:]:
            lan["isolate"] = True
    else:
        data["firewall"] = {"enabled": False}
    path = lab.state_dir / f"firewall-{'on' if firewall_on else 'off'}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load(path)
    return path


def rules(lab: Lab) -> int:
    """Rules in the running table."""
    items = netns.nft_json(lab.router_ns, "ruleset")
    return sum(1 for i in items if "rule" in i and i["rule"]["table"] == "wanwatch")


def measure(lab: Lab, client: str, args: argparse.Namespace) -> dict[str, Any]:
    dst = lab.topology.whoami[0]
    argv = [sys.executable, str(Path(__file__).resolve()), "churn", "--dst", str(dst)]
    argv += ["--parallel", str(args.parallel), "--seconds", str(args.churn_seconds)]
    proc = lab.spawn(lab.ns_for(client), argv, "churn")
    try:
        if proc.wait(args.churn_seconds + 30) is None:
            raise LabError("the connection churn did not finish")
        records = proc.records()
    finally:
        lab.stop_proc(proc)
    if not records:
        raise LabError(f"the connection churn reported nothing: {proc.stderr()[-800:]}")
    churn = records[-1]
    flow = bulk(lab, client, flows=1, seconds=args.seconds)
    if flow.errors:
        raise LabError(f"bulk flow failed: {flow.errors}")
    return {
        "connections": churn["ok"] + churn["failed"],
        "failed": churn["failed"],
        "conn_per_s": churn["ok"] / churn["seconds"],
        "connect_ms_median": churn["ms_median"],
        "bulk_mbit_s": flow.bits_per_second / 1e6,
    }


async def _churn(dst: str, port: int, parallel: int, seconds: float) -> dict[str, Any]:
    """Closed-loop new connections (runs inside the client's namespace)."""
    until = time.monotonic() + min(seconds, MAX_CHURN_SECONDS)
    times: list[float] = []
    failed = 0

    async def client() -> None:
        nonlocal failed
        while time.monotonic() < until:
            t0 = time.monotonic()
            try:
                async with asyncio.timeout(2.0):
                    reader, writer = await asyncio.open_connection(dst, port)
                    await reader.readline()
                # A reset, not a FIN: the client then keeps no TIME_WAIT port (tcp(7)), and
                # rounds after the first do not slow down searching the ephemeral range
                # for a free one (measured here: 2900 -> 400 connections a second).
                writer.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                writer.close()
                times.append(time.monotonic() - t0)
            except (OSError, TimeoutError):
                failed += 1

    t0 = time.monotonic()
    await asyncio.gather(*(client() for _ in range(parallel)))
    took = time.monotonic() - t0
    ms = statistics.median(times) * 1000 if times else None
    return {"ok": len(times), "failed": failed, "seconds": took, "ms_median": ms}


def run(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.monotonic()
    host = host_info()
    office_cfg = load(OFFICE)
    with Lab(office_cfg) as lab:
        client = lab.topology.clients[0].lan
        lab.client_static(client)
        paths = {on: config_file(lab, on) for on in (True, False)}
        rounds: list[dict[str, Any]] = []
        for r in range(args.rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            for on in order:
                office = Office(lab, paths[on])
                office.start(wait_active=PRIMARY, timeout=START_TIMEOUT)
                try:
                    got = measure(lab, client, args)
                    got.update(round=r, firewall="on" if on else "off", rules=rules(lab))
                finally:
                    office.stop()
                say(
                    f"round {r} firewall {got['firewall']}: {got['conn_per_s']:.0f} conn/s, "
                    f"{got['bulk_mbit_s']:.0f} Mbit/s, {got['failed']} failed"
                )
                rounds.append(got)

    def side(on: str, key: str) -> list[float]:
        return [float(x[key]) for x in rounds if x["firewall"] == on]

    out: dict[str, Any] = {
        "bench": "firewall",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": host,
        "config": str(OFFICE.relative_to(ROOT)),
        "client": client,
        "rounds": args.rounds,
        "churn_clients": args.parallel,
        "churn_seconds": args.churn_seconds,
        "bulk_seconds": args.seconds,
    }
    for key, digits in (("conn_per_s", 0), ("bulk_mbit_s", 0), ("connect_ms_median", 2)):
        on, off = summary(side("on", key), digits), summary(side("off", key), digits)
        m_on, m_off = statistics.median(side("on", key)), statistics.median(side("off", key))
        # a longer connect time is the cost there; a lower rate or goodput elsewhere
        cost = (m_on - m_off) / m_off if key == "connect_ms_median" else (m_off - m_on) / m_off
        out[key] = {"on": on, "off": off, "cost_pct": round(100 * cost, 2)}
    out["failed_connections"] = sum(int(x["failed"]) for x in rounds)
    out["rules"] = {s: side(s, "rules")[0] for s in ("on", "off")}
    out["per_round"] = rounds
    out["targets"] = {
        f"conn_cost_lt_{TARGET_PCT:g}pct": out["conn_per_s"]["cost_pct"] < TARGET_PCT,
        f"bulk_cost_lt_{TARGET_PCT:g}pct": out["bulk_mbit_s"]["cost_pct"] < TARGET_PCT,
    }
    out["host"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out["seconds"] = round(time.monotonic() - t_start, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=8, help="rounds, each one on and one off")
    ap.add_argument("--parallel", type=int, default=16, help="closed-loop connection clients")
    ap.add_argument("--churn-seconds", type=float, default=5.0, help="connection churn per round")
    ap.add_argument("--seconds", type=float, default=6.0, help="bulk flow length per round")
    if sys.argv[1:2] == ["churn"]:  # the worker, inside the client's namespace
        wp = argparse.ArgumentParser(prog="firewall.py churn")
        wp.add_argument("--dst", required=True)
        wp.add_argument("--port", type=int, default=WHOAMI_PORT)
        wp.add_argument("--parallel", type=int, required=True)
        wp.add_argument("--seconds", type=float, required=True)
        w = wp.parse_args(sys.argv[2:])
        got = asyncio.run(_churn(w.dst, w.port, w.parallel, w.seconds))
        sys.stdout.write(json.dumps(got) + "\n")
        return 0
    args = ap.parse_args()
    return lab_main(lambda: run(args), (LabError, OSError))


if __name__ == "__main__":
    raise SystemExit(main())
