"""What policy rules cost and how fast they act, in the namespace lab; prints ONE JSON object.

    sudo python bench/rules.py [--rounds N] [--cuts N] [--lookups N] [--parallel N]
                               [--churn-seconds S] [--seconds S]

Root. Builds the reference office (examples/office.yaml) with ``wanwatch run``
as its router and measures, from the office LAN's client (a static address):

- ``forwarding``: new connections per second (a closed loop, bench/firewall.py's
  churn) and one bulk TCP download (goodput), with 0, 10 and 200 rules, and
  200 rules with a ``domains`` rule whose set holds 10,000 addresses, in
  alternating rounds (the order rotates every round; each run starts the
  daemon afresh on its config). With rules, the measured traffic is decided by
  the last rule (``via`` the primary, as the policy would): every other rule
  is looked at -- one interval-map lookup, the domain set tested by the
  domains rule's chain, the rule's counter and the paths map -- and the
  per-packet byte counters run. ``cost_pct`` compares each median with the
  no-rules one: (none - with) / none for rates, (with - none) / none for the
  connect time; the target is under 5 %.
- ``dns_to_set``: a client asks the router's dnsmasq for a name of a
  ``domains`` rule and connects the moment the answer is in. Per lookup:
  when ``nft monitor`` showed the set's new element, against when the client
  had its answer (negative: the entry was there first; the monitor's own
  reading adds its latency to the entry's time, so the true lead is larger),
  the answer-to-connect gap, and which uplink the first connection left by.
  The set is flushed before each lookup; the lab's DNS answers with TTL 0
  (dnsmasq's --local-ttl default), so the router's dnsmasq forwards every
  query and adds its address again.
- ``failover``: the primary is blackholed ``--cuts`` times; during each cut the
  office LAN (decided by a rule ``via: [primary, backup]``) and the guest LAN
  (no rule: the policy) each open a new connection every 20 ms, and the time
  from the cut to the first new connection answered through the backup is
  taken for both on the same cut.

Everything runs on this machine's two cores (clients, servers, router and the
daemon), so the figures are the lab's, not a router's: compare the variants
with each other, never with another machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import threading
import time
from datetime import UTC, datetime
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import yaml
from _common import ROOT, host_info, lab_main, say, summary
from firewall import measure

from wanwatch.config import load
from wanwatch.errors import LabError
from wanwatch.lab import faults, netns
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import ConnectLoop, dns_lookup
from wanwatch.lab.worker.servers import WHOAMI_PORT

OFFICE = ROOT / "examples" / "office.yaml"
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"
TARGET_PCT = 5.0
START_TIMEOUT = 30.0
DEADLINE = 30.0
DOMAIN = "server.lab.test"  # the lab's DNS records (lab/plan.py)
DOMAIN_SET_SIZE = 10_000
# Filler rules match destinations in 10.0.0.0/8 (never the lab's servers), one /24
# each: nothing they match is sent, so every connection measured passes them by.
FILLER = IPv4Network("10.0.0.0/8")
VARIANTS = ("none", "10", "200", "200+domains")


def _filler(n: int) -> list[dict[str, Any]]:
    subnets = FILLER.subnets(new_prefix=24)
    return [
        {
            "name": f"r{i}",
            "to": [str(next(subnets))],
            "proto": "tcp",
            "via": [BACKUP, PRIMARY] if i % 2 else [PRIMARY, BACKUP],
            "when_down": "default",
        }
        for i in range(n)
    ]


def config_file(lab: Lab, variant: str) -> Path:
    """The lab's config with this variant's rules (none, filler + the measured one)."""
    data = yaml.safe_load(lab.config_text)
    data["hooks"] = {}  # the office's logger hooks would write to the host's syslog
    for lan in data["lans"]:  # their clients ask the router, as a domains rule needs
        if lan.get("dhcp"):
            lan["dhcp"].pop("dns", None)
    office_lan = lab.topology.clients[0].lan
    if variant != "none":
        count = int(variant.split("+", maxsplit=1)[0])
        rules = _filler(count - (2 if variant.endswith("+domains") else 1))
        if variant.endswith("+domains"):
            rules.append(
                {
                    "name": "partner",
                    "from": [office_lan],
                    "domains": ["partner.example"],
                    "via": [BACKUP],
                    "when_down": "block",
                }
            )
        rules.append(
            {"name": "office", "from": [office_lan], "via": [PRIMARY], "when_down": "default"}
        )
        data["rules"] = rules
    path = lab.state_dir / f"rules-{variant.replace('+', '-')}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load(path)
    return path


def fill_domain_set(lab: Lab, n: int) -> int:
    """Put ``n`` addresses (172.16.0.0/12: no lab host) in the domains rule's set; its size."""
    hosts = IPv4Network("172.16.0.0/12").hosts()
    addrs = ", ".join(str(next(hosts)) for _ in range(n))
    batch = lab.state_dir / "domain-set.nft"
    batch.write_text(f"add element inet wanwatch {_domain_set(lab)} {{ {addrs} }}\n")
    netns.nsrun(lab.router_ns, "nft", "-f", str(batch))
    return _set_size(lab, _domain_set(lab))


def _domain_set(lab: Lab) -> str:
    """The one domain set of the running table (rules_nft.dom_set: ``dom4_<n>``)."""
    items = netns.nft_json(lab.router_ns, "ruleset")
    (name,) = [
        i["set"]["name"]
        for i in items
        if "set" in i and i["set"]["table"] == "wanwatch" and i["set"]["name"].startswith("dom4_")
    ]
    return str(name)


def _set_size(lab: Lab, name: str) -> int:
    items = netns.nft_json(lab.router_ns, "set", "inet", "wanwatch", name)
    return sum(len(i["set"].get("elem", [])) for i in items if "set" in i)


def forwarding(lab: Lab, args: argparse.Namespace) -> dict[str, Any]:
    client = lab.topology.clients[0].lan
    paths = {v: config_file(lab, v) for v in VARIANTS}
    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):
        shift = r % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            office = Office(lab, paths[variant])
            office.start(wait_active=PRIMARY, timeout=START_TIMEOUT)
            try:
                filled = fill_domain_set(lab, DOMAIN_SET_SIZE) if "domains" in variant else 0
                got = measure(lab, client, args)
                counted = _rule_traffic(office, "office")
                got.update(round=r, variant=variant, domain_set=filled, counted=counted)
            finally:
                office.stop()
            say(
                f"round {r} rules {variant}: {got['conn_per_s']:.0f} conn/s, "
                f"{got['bulk_mbit_s']:.0f} Mbit/s, {got['failed']} failed"
            )
            rounds.append(got)

    def side(variant: str, key: str) -> list[float]:
        return [float(x[key]) for x in rounds if x["variant"] == variant]

    out: dict[str, Any] = {"rounds": args.rounds, "variants": list(VARIANTS)}
    for key, digits in (("conn_per_s", 0), ("bulk_mbit_s", 0), ("connect_ms_median", 2)):
        none = statistics.median(side("none", key))
        out[key] = {}
        for v in VARIANTS:
            m = statistics.median(side(v, key))
            cost = (m - none) / none if key == "connect_ms_median" else (none - m) / none
            out[key][v] = {**summary(side(v, key), digits), "cost_pct": round(100 * cost, 2)}
    out["failed_connections"] = sum(int(x["failed"]) for x in rounds)
    out["per_round"] = rounds
    return out


def _rule_traffic(office: Office, name: str) -> dict[str, Any] | None:
    """The rule's figures from a counter reading taken after now (None without rules):
    the daemon reads its counters lazily, so the first answer holds an older reading."""
    if office.status().get("rules") is None:
        return None
    since = time.monotonic()
    st = office.wait_for(
        lambda st: (
            st["rules"]["age_s"] is not None and st["rules"]["age_s"] < time.monotonic() - since
        ),
        DEADLINE,
        "a counter reading taken after the measurement",
    )
    rules = st["rules"]
    traffic: dict[str, Any] = next(r["traffic"] for r in rules["rules"] if r["name"] == name)
    return traffic


class SetMonitor:
    """``nft monitor new elements`` in the router's namespace, each line stamped with
    CLOCK_MONOTONIC as it is read (one clock for every namespace); stopped by its PID."""

    def __init__(self, lab: Lab) -> None:
        self.proc = subprocess.Popen(
            netns.ns_argv(lab.router_ns, ["nft", "monitor", "new", "elements"]),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        if self.proc.stdout is None:  # not with stdout=PIPE
            return
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.strip()))

    def first(self, needle: str, after: float) -> float | None:
        return next((t for t, line in list(self.lines) if t >= after and needle in line), None)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._reader.join(10)


def dns_to_set(lab: Lab, lookups: int) -> dict[str, Any]:
    data = yaml.safe_load(config_file(lab, "none").read_text())
    office_lan = lab.topology.clients[0]
    data["rules"] = [
        {
            "name": "partner",
            "from": [office_lan.lan],
            "domains": [DOMAIN],
            "via": [BACKUP],
            "when_down": "block",
        }
    ]
    path = lab.state_dir / "rules-dns.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load(path)
    address = str(dict(lab.topology.dns_records)[DOMAIN])
    office = Office(lab, path)
    office.start(wait_active=PRIMARY, timeout=START_TIMEOUT)
    monitor = SetMonitor(lab)
    trials: list[dict[str, Any]] = []
    try:
        name = _domain_set(lab)
        for _ in range(lookups):
            netns.nsrun(lab.router_ns, "nft", "flush", "set", "inet", "wanwatch", name)
            t_flushed = time.monotonic()
            got = dns_lookup(lab, office_lan.lan, DOMAIN, office_lan.gateway, connect=WHOAMI_PORT)
            deadline = time.monotonic() + 2.0
            while (seen := monitor.first(address, t_flushed)) is None:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.01)
            trials.append(
                {
                    "answered": got.ok and got.addresses == (address,),
                    "entry_minus_answer_ms": None if seen is None else (seen - got.t1) * 1000,
                    "answer_to_connect_ms": None
                    if got.connect_t0 is None
                    else (got.connect_t0 - got.t1) * 1000,
                    "first_connection_via": got.isp,
                    "connect_error": got.connect_error,
                }
            )
    finally:
        monitor.stop()
        office.stop()
    leads = [t["entry_minus_answer_ms"] for t in trials if t["entry_minus_answer_ms"] is not None]
    gaps = [t["answer_to_connect_ms"] for t in trials if t["answer_to_connect_ms"] is not None]
    return {
        "lookups": lookups,
        "answered": sum(1 for t in trials if t["answered"]),
        "entry_seen": len(leads),
        "entry_minus_answer_ms": summary(leads, 2),
        "answer_to_connect_ms": summary(gaps, 3),
        "first_connection_by_rule_uplink": sum(
            1 for t in trials if t["first_connection_via"] == BACKUP
        ),
        "per_lookup": trials,
    }


def failover(lab: Lab, cuts: int) -> dict[str, Any]:
    """Each cut on a fresh daemon: back-to-back cuts would meet the hold's flap damping."""
    data = yaml.safe_load(config_file(lab, "none").read_text())
    office_lan, guest_lan = lab.topology.clients[0].lan, lab.topology.clients[1].lan
    data["rules"] = [
        {"name": "office", "from": [office_lan], "via": [PRIMARY, BACKUP], "when_down": "default"}
    ]
    path = lab.state_dir / "rules-failover.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load(path)
    rows: list[dict[str, Any]] = []
    for i in range(cuts):
        office = Office(lab, path)
        office.start(wait_active=PRIMARY, timeout=START_TIMEOUT)
        try:
            with (
                ConnectLoop(
                    lab, office_lan, interval=0.02, timeout=1.0, max_seconds=DEADLINE + 5
                ) as ruled,
                ConnectLoop(
                    lab, guest_lan, interval=0.02, timeout=1.0, max_seconds=DEADLINE + 5
                ) as plain,
            ):
                cut = faults.blackhole(lab, PRIMARY)
                deadline = time.monotonic() + DEADLINE
                hits = {
                    "rule": ruled.first_success(after=cut.t_start, via=BACKUP, deadline=deadline),
                    "policy": plain.first_success(after=cut.t_start, via=BACKUP, deadline=deadline),
                }
        finally:
            office.stop()
            faults.clear(lab, PRIMARY)
        row = {k: None if a is None else (a.t1 - cut.t_start) * 1000 for k, a in hits.items()}
        row["rule_minus_policy"] = (
            None if None in (row["rule"], row["policy"]) else row["rule"] - row["policy"]
        )
        rows.append(row)
        say(f"cut {i}: rule {row['rule']} ms, policy {row['policy']} ms")
    out: dict[str, Any] = {"cuts": cuts, "kind": "blackhole", "per_cut": rows}
    for k in ("rule", "policy", "rule_minus_policy"):
        out[f"{k}_ms"] = summary([r[k] for r in rows if r[k] is not None], 0)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.monotonic()
    host = host_info()
    with Lab(load(OFFICE)) as lab:
        for c in lab.topology.clients:
            lab.client_static(c.lan)
        out: dict[str, Any] = {
            "bench": "rules",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": host,
            "config": str(OFFICE.relative_to(ROOT)),
            "churn_clients": args.parallel,
            "churn_seconds": args.churn_seconds,
            "bulk_seconds": args.seconds,
            "domain_set_size": DOMAIN_SET_SIZE,
        }
        for key, what, part in (
            (
                "failover",
                "failover: rule vs policy on the same cuts",
                lambda: failover(lab, args.cuts),
            ),
            (
                "dns_to_set",
                "time from a DNS answer to its set entry",
                lambda: dns_to_set(lab, args.lookups),
            ),
            (
                "forwarding",
                "forwarding with 0, 10, 200 rules and a 10,000-entry domain set",
                lambda: forwarding(lab, args),
            ),
        ):
            say(what)
            out[key] = part()
            # a later part that fails still leaves this one's figures in the log
            say(json.dumps({k: v for k, v in out[key].items() if not k.startswith("per_")}))
    fw = out["forwarding"]
    out["targets"] = {
        f"{key}_{v}_cost_lt_{TARGET_PCT:g}pct": fw[key][v]["cost_pct"] < TARGET_PCT
        for key in ("conn_per_s", "bulk_mbit_s")
        for v in VARIANTS[1:]
    }
    out["host"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out["seconds"] = round(time.monotonic() - t_start, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4, help="forwarding rounds, each every variant")
    ap.add_argument("--cuts", type=int, default=8, help="blackholes of the primary")
    ap.add_argument("--lookups", type=int, default=20, help="DNS lookups of the domain rule")
    ap.add_argument("--parallel", type=int, default=16, help="closed-loop connection clients")
    ap.add_argument("--churn-seconds", type=float, default=5.0, help="connection churn per run")
    ap.add_argument("--seconds", type=float, default=6.0, help="bulk flow length per run")
    args = ap.parse_args()
    return lab_main(lambda: run(args), (LabError, OSError))


if __name__ == "__main__":
    raise SystemExit(main())
