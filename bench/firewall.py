"""What the firewall costs in forwarding, in the namespace lab; prints ONE JSON object.

    sudo python bench/firewall.py [--rounds N] [--connections N] [--seconds S]

Root. Builds the reference office (examples/office.yaml) with ``wanwatch run``
as its router and measures, from the first LAN's client (a static address)
against a server in the fake internet:

- connection rate: ``--connections`` new TCP connections to the whoami
  server, one attempt every millisecond (attempts overlap), each a full
  handshake, the server's hello line and a close; the rate is the successes
  over the time from the first attempt to the last answer;
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
import os
import statistics
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
from wanwatch.lab.traffic import bulk, connections

OFFICE = ROOT / "examples" / "office.yaml"
PRIMARY = "INET-UTAMA"
TARGET_PCT = 5.0
START_TIMEOUT = 30.0


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


def measure(lab: Lab, client: str, count: int, seconds: float) -> dict[str, Any]:
    attempts = connections(lab, client, count, interval=0.001, timeout=2.0)
    ok = [a for a in attempts if a.ok]
    span = max(a.t1 for a in ok) - min(a.t0 for a in attempts) if ok else float("inf")
    flow = bulk(lab, client, flows=1, seconds=seconds)
    if flow.errors:
        raise LabError(f"bulk flow failed: {flow.errors}")
    return {
        "connections": len(attempts),
        "failed": len(attempts) - len(ok),
        "conn_per_s": len(ok) / span,
        "connect_ms_median": statistics.median(a.ms for a in ok) if ok else None,
        "bulk_mbit_s": flow.bits_per_second / 1e6,
    }


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
                    got = measure(lab, client, args.connections, args.seconds)
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
        "connections_per_round": args.connections,
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
    ap.add_argument("--rounds", type=int, default=6, help="rounds, each one on and one off")
    ap.add_argument("--connections", type=int, default=2000, help="new connections per round")
    ap.add_argument("--seconds", type=float, default=6.0, help="bulk flow length per round")
    args = ap.parse_args()
    return lab_main(lambda: run(args), (LabError, OSError))


if __name__ == "__main__":
    raise SystemExit(main())
