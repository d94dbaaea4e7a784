"""`wanwatch lab demo`: the paper's test, end to end, narrated with measured figures.

The reference office comes up in namespaces with wanwatch as its router; LAN
clients take DHCP leases; the primary (the LTE modem) is cut silently while a
client keeps opening new connections; traffic moves to the backup; the primary
comes back and traffic returns after the hold; then a carrier-loss cut. Every
step is bounded in time, and the lab is removed even on Ctrl-C.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from wanwatch.config import Config
from wanwatch.errors import LabError
from wanwatch.lab import faults
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import ConnectLoop, dns_lookup, first_hop

Say = Callable[[str], None]
FAILOVER_DEADLINE = 10.0  # give up on a failover after this long (it takes ~1 s)
SPLIT_CONNECTIONS = 60  # new connections per client to show the loadbalance split


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _lan_names(cfg: Config) -> list[str]:
    return [lan.name for lan in cfg.lans]


def measure_switch(
    lab: Lab, lan: str, via: str, cut: Callable[[], faults.FaultEvent], deadline: float
) -> tuple[float, faults.FaultEvent]:
    """Run ``cut`` while ``lan`` opens a new connection every 20 ms; seconds until the
    first new connection answered through ``via``."""
    with ConnectLoop(lab, lan, interval=0.02, timeout=1.0, max_seconds=deadline + 5) as loop:
        fault = cut()
        hit = loop.first_success(after=fault.t_start, via=via, deadline=time.monotonic() + deadline)
    if hit is None:
        raise LabError(f"no new connection through {via} within {deadline:.0f}s of {fault.kind}")
    return hit.t1 - fault.t_start, fault


def _event_lines(office: Office, names: tuple[str, ...], since: float) -> list[str]:
    """The daemon's events named ``names`` since monotonic ``since`` (one clock for all
    namespaces), as log lines."""
    from wanwatch.control import request
    from wanwatch.engine.events import Event

    lines = []
    for e in request(office.socket, "events")["events"]:
        at, name = e.pop("at"), e.pop("name")
        if at >= since and name in names:
            lines.append(str(Event(at, name, e)))
    return lines


def run(config: Config, say: Say, mode: str | None = None) -> dict[str, Any]:
    """Run the demo; return the figures it measured."""
    if mode is not None:
        config = config.model_copy(
            update={"policy": config.policy.model_copy(update={"mode": mode})}
        )
    wans = sorted(config.wans, key=lambda w: w.priority)
    primary, backup = wans[0].name, wans[1].name
    lans = _lan_names(config)
    figures: dict[str, Any] = {"mode": config.policy.mode}
    t_begin = time.monotonic()
    with Lab(config, client_dns="router") as lab:
        office = Office(lab)
        say(
            f"Lab {lab.tag}: fake internet, ISPs for {primary} and {backup}, router, "
            f"{len(lans)} LAN clients ({len(lab.namespaces)} namespaces)."
        )
        office.start(wait_active=primary, timeout=20)
        st = office.status()
        for w in st["wans"]:
            say(
                f"  {w['name']:<12} {w['state']:<8} rtt {w['rtt_ms']} ms  "
                f"{'carrying' if w['carrying'] else 'standby'}"
            )

        say("\nDHCP: each LAN client asks the router for an address.")
        figures["dhcp_ms"] = {}
        for lan in lans:
            lease = lab.dhcp_lease(lan, timeout=10)
            took = lease.took or 0.0
            figures["dhcp_ms"][lan] = round(took * 1000)
            say(
                f"  {lan:<7} got {lease.address} router {lease.router} dns "
                f"{', '.join(str(d) for d in lease.dns)} lease {lease.lease_time}s "
                f"in {_ms(took)}"
            )
        client = lans[0]
        router_dns = lab.lab_config.lans[0].address
        name = next(iter(lab.topology.dns_records))[0] if lab.topology.dns_records else None

        hop = first_hop(lab, client)
        say(
            f"\nTraffic from {client}: second hop {hop.address if hop else '?'} "
            f"({hop.isp if hop else 'no answer'})."
        )
        if name is not None and router_dns is not None:
            ans = dns_lookup(lab, client, name, router_dns.ip)
            say(
                f"  {name} -> {', '.join(ans.addresses) or 'no answer'} via the router's DNS "
                f"({ans.rtt_ms or 0:.1f} ms)"
            )

        if config.policy.mode == "loadbalance":
            figures["split"] = _show_split(lab, lans, say)

        say(
            f"\nCut {primary} silently (its Ethernet stays up, nothing beyond answers) "
            f"while {client} opens a new connection every 20 ms ..."
        )
        took, cut = measure_switch(
            lab, client, backup, lambda: faults.blackhole(lab, primary), FAILOVER_DEADLINE
        )
        figures["blackhole_failover_ms"] = round(took * 1000)
        say(f"  first new connection through {backup} {_ms(took)} after the cut.")
        names = ("wan.down", "policy.failover", "route.switch", "conntrack.flush")
        for line in _event_lines(office, names, cut.t_start):
            say(f"  event: {line}")
        if name is not None and router_dns is not None:
            ans = dns_lookup(lab, client, name, router_dns.ip)
            say(
                f"  {name} still resolves: {', '.join(ans.addresses) or 'NO ANSWER'} "
                f"({ans.rtt_ms or 0:.1f} ms, through {backup})"
            )

        say(f"\nRestore {primary}; it must stay up for the hold before traffic returns ...")
        took, _ = measure_switch(lab, client, primary, lambda: faults.clear(lab, primary), 60.0)
        figures["failback_s"] = round(took, 2)
        say(f"  new connections through {primary} again {took:.1f} s after it came back.")

        say(f"\nPull {primary}'s cable (carrier loss) ...")
        took, _ = measure_switch(
            lab, client, backup, lambda: faults.carrier_loss(lab, primary), FAILOVER_DEADLINE
        )
        figures["carrier_failover_ms"] = round(took * 1000)
        say(f"  first new connection through {backup} {_ms(took)} after the cable was pulled.")
        faults.clear(lab, primary)
        office.wait_active(primary, timeout=60)
        say(f"  cable back: {primary} carries traffic again.")

        code = office.stop()
        figures["daemon_exit"] = code
        say(f"\nwanwatch stopped (exit {code}) and removed its routes, rules and nft table.")
    figures["seconds"] = round(time.monotonic() - t_begin, 1)
    say(f"Lab removed. Demo took {figures['seconds']} s.")
    return figures


def _show_split(lab: Lab, lans: list[str], say: Say) -> dict[str, int]:
    """Open new connections from every client and count which uplink carried each."""
    counts: Counter[str] = Counter()
    for lan in lans:
        with ConnectLoop(
            lab, lan, interval=0.01, timeout=1.0, max_attempts=SPLIT_CONNECTIONS
        ) as loop:
            deadline = time.monotonic() + 20
            while len(loop.attempts) < SPLIT_CONNECTIONS and time.monotonic() < deadline:
                time.sleep(0.05)
            counts.update(a.isp or "failed" for a in loop.attempts if a.ok)
    total = sum(counts.values())
    split = ", ".join(f"{k} {v} ({100 * v / total:.0f} %)" for k, v in sorted(counts.items()))
    say(f"  load balancing: {total} new connections split {split}")
    return dict(counts)
