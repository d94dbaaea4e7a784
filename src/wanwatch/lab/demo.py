"""`wanwatch lab demo`: the office's failover test, end to end, narrated with measured figures.

The reference office comes up in namespaces with wanwatch as its router; LAN
clients take DHCP leases; the primary (the LTE modem) is cut silently while a
client keeps opening new connections; traffic moves to the backup; the primary
comes back and traffic returns after the hold; then a carrier-loss cut. Every
step is bounded in time, and the lab is removed even on Ctrl-C.

In loadbalance mode both uplinks are put in one priority tier (with the
office's priorities only the best tier carries, pfSense-style, and the backup
would show nothing), the split is shown over many client addresses, the
throughput over two equally shaped ISPs, and the cuts are measured from a
client whose connections hash to the primary, while a connection on the
backup carries on.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address
from typing import Any

from wanwatch.config import Config
from wanwatch.errors import LabError
from wanwatch.lab import faults, shaping
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import (
    ConnectLoop,
    DnsAnswer,
    Flow,
    add_client_addresses,
    bulk,
    connections,
    dns_lookup,
    first_hop,
    predicted_uplink,
)

Say = Callable[[str], None]
FAILOVER_EVENTS = ("wan.down", "policy.failover", "route.switch", "nft.apply", "conntrack.flush")
FAILOVER_DEADLINE = 10.0  # give up on a failover after this long (it takes ~1 s)
SPLIT_CLIENTS = 32  # extra client addresses that show the loadbalance split
SPLIT_FIRST_HOST = 150  # ... from this host number of the first LAN up
SHAPE_MBIT = 20.0  # each ISP's rate while the demo measures throughput
THROUGHPUT_SECONDS = 4.0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _lan_names(cfg: Config) -> list[str]:
    return [lan.name for lan in cfg.lans]


def measure_switch(
    lab: Lab,
    lan: str,
    via: str,
    cut: Callable[[], faults.FaultEvent],
    deadline: float,
    *,
    source: IPv4Address | None = None,
) -> tuple[float, faults.FaultEvent]:
    """Run ``cut`` while ``lan`` (from ``source``, if given) opens a new connection every
    20 ms; seconds until the first new connection answered through ``via``."""
    with ConnectLoop(
        lab,
        lan,
        interval=0.02,
        timeout=1.0,
        max_seconds=deadline + 5,
        sources=[source] if source is not None else (),
    ) as loop:
        fault = cut()
        hit = loop.first_success(after=fault.t_start, via=via, deadline=time.monotonic() + deadline)
    if hit is None:
        raise LabError(f"no new connection through {via} within {deadline:.0f}s of {fault.kind}")
    return hit.t1 - fault.t_start, fault


def _event_lines(office: Office, names: tuple[str, ...], since: float) -> list[str]:
    """The daemon's events named ``names`` since monotonic ``since`` (one clock for all
    namespaces), as log lines."""
    from wanwatch.daemon.control import request
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
        config = config.replace(policy=config.policy.replace(mode=mode))
    wans = sorted(config.wans, key=lambda w: w.priority)
    primary, backup = wans[0].name, wans[1].name
    lans = _lan_names(config)
    figures: dict[str, Any] = {"mode": config.policy.mode}
    balancing = config.policy.mode == "loadbalance"
    if balancing:
        config = _one_tier(config, primary, say)
    t_begin = time.monotonic()
    with Lab(config, client_dns="router") as lab:
        office = Office(lab)
        say(
            f"Lab {lab.tag}: fake internet, ISPs for {primary} and {backup}, router, "
            f"{len(lans)} LAN clients ({len(lab.namespaces)} namespaces)."
        )
        office.start(wait_active=primary, timeout=20)
        if balancing:
            office.wait_for(
                lambda st: len(st["active"]) == len(config.wans) and bool(st["applied"]),
                20,
                "every uplink to carry new connections",
            )
        _show_uplinks(office, say)
        figures["dhcp_ms"] = _show_dhcp(lab, lans, say)
        client = lans[0]

        hop = first_hop(lab, client)
        say(
            f"\nTraffic from {client}: second hop {hop.address if hop else '?'} "
            f"({hop.isp if hop else 'no answer'})."
        )
        if (found := _router_lookup(lab, client)) is not None:
            name, ans = found
            say(
                f"  {name} -> {', '.join(ans.addresses) or 'no answer'} via the router's DNS "
                f"({ans.rtt_ms or 0:.1f} ms)"
            )

        source: IPv4Address | None = None  # failover mode: the client's own address
        survivor: Flow | None = None
        if balancing:
            source, survivor = _show_balancing(
                lab, office, client, (primary, backup), figures, say=say
            )
        who = client if source is None else f"{client} (from {source}, which hashes to {primary})"

        say(
            f"\nCut {primary} silently (its Ethernet stays up, nothing beyond answers) "
            f"while {who} opens a new connection every 20 ms ..."
        )
        took, cut = measure_switch(
            lab,
            client,
            backup,
            lambda: faults.blackhole(lab, primary),
            FAILOVER_DEADLINE,
            source=source,
        )
        figures["blackhole_failover_ms"] = round(took * 1000)
        say(f"  first new connection through {backup} {_ms(took)} after the cut.")
        for line in _event_lines(office, FAILOVER_EVENTS, cut.t_start):
            say(f"  event: {line}")
        if (found := _router_lookup(lab, client)) is not None:
            name, ans = found
            say(
                f"  {name} still resolves: {', '.join(ans.addresses) or 'NO ANSWER'} "
                f"({ans.rtt_ms or 0:.1f} ms, through {backup})"
            )

        say(f"\nRestore {primary}; it must stay up for the hold before traffic returns ...")
        took, _ = measure_switch(
            lab, client, primary, lambda: faults.clear(lab, primary), 60.0, source=source
        )
        figures["failback_s"] = round(took, 2)
        say(f"  new connections through {primary} again {took:.1f} s after it came back.")

        figures["carrier_failover_ms"] = _show_carrier(
            lab, office, client, (primary, backup), source, say=say
        )
        if survivor is not None:
            figures["survivor_alive"] = _show_survivor(survivor, backup, say)

        code = office.stop()
        figures["daemon_exit"] = code
        say(f"\nwanwatch stopped (exit {code}) and removed its routes, rules and nft table.")
    figures["seconds"] = round(time.monotonic() - t_begin, 1)
    say(f"Lab removed. Demo took {figures['seconds']} s.")
    return figures


def _show_uplinks(office: Office, say: Say) -> None:
    for w in office.status()["wans"]:
        say(
            f"  {w['name']:<12} {w['state']:<8} rtt {w['rtt_ms']} ms  "
            f"{'carrying' if w['carrying'] else 'standby'}"
        )


def _router_lookup(lab: Lab, client: str) -> tuple[str, DnsAnswer] | None:
    """The fake internet's first name looked up through the router's DNS, from ``client``
    (None when the internet has no name or the first LAN no router address)."""
    router_dns = lab.lab_config.lans[0].address
    name = next(iter(lab.topology.dns_records))[0] if lab.topology.dns_records else None
    if name is None or router_dns is None:
        return None
    return name, dns_lookup(lab, client, name, router_dns.ip)


def _show_carrier(
    lab: Lab,
    office: Office,
    client: str,
    uplinks: tuple[str, str],
    source: IPv4Address | None,
    *,
    say: Say,
) -> int:
    """Pull the primary's cable: milliseconds to the first new connection via the backup;
    then plug it back and wait until the primary carries again."""
    primary, backup = uplinks
    say(f"\nPull {primary}'s cable (carrier loss) ...")
    took, _ = measure_switch(
        lab,
        client,
        backup,
        lambda: faults.carrier_loss(lab, primary),
        FAILOVER_DEADLINE,
        source=source,
    )
    say(f"  first new connection through {backup} {_ms(took)} after the cable was pulled.")
    faults.clear(lab, primary)
    office.wait_active(primary, timeout=60)
    say(f"  cable back: {primary} carries traffic again.")
    return round(took * 1000)


def _show_balancing(
    lab: Lab,
    office: Office,
    client: str,
    uplinks: tuple[str, str],
    figures: dict[str, Any],
    *,
    say: Say,
) -> tuple[IPv4Address, Flow]:
    """The split and the throughput over many client addresses; then the address whose
    connections hash to the primary, and a connection left open on the backup."""
    primary, backup = uplinks
    sources = add_client_addresses(lab, client, SPLIT_CLIENTS, first=SPLIT_FIRST_HOST)
    figures["split"] = _show_split(lab, office, client, sources, say)
    figures["throughput"] = _show_throughput(lab, client, sources, say)
    dst = lab.topology.whoami[0]
    source = next(s for s in sources if predicted_uplink(lab, s, dst) == primary)
    on_backup = next(s for s in sources if predicted_uplink(lab, s, dst) == backup)
    survivor = Flow(lab, client, interval=0.05, source=on_backup, max_seconds=300).start()
    survivor.wait_connected(time.monotonic() + 10)
    say(f"\nA connection from {on_backup} stays open on {backup} through what follows.")
    return source, survivor


def _one_tier(config: Config, primary: str, say: Say) -> Config:
    """Every uplink in the best priority tier: only that tier carries in loadbalance."""
    tiers = sorted({w.priority for w in config.wans})
    if len(tiers) == 1:
        return config
    say(
        f"loadbalance: only the best priority tier carries (here {primary} alone); "
        f"the demo puts every uplink at priority {tiers[0]} to balance across them."
    )
    wans = sorted(config.wans, key=lambda w: w.priority)
    return config.replace(wans=tuple(w.replace(priority=tiers[0]) for w in wans))


def _show_dhcp(lab: Lab, lans: Sequence[str], say: Say) -> dict[str, int]:
    """Each LAN client takes a lease from the router; milliseconds each took."""
    say("\nDHCP: each LAN client asks the router for an address.")
    took_ms: dict[str, int] = {}
    for lan in lans:
        lease = lab.dhcp_lease(lan, timeout=10)
        took = lease.took or 0.0
        took_ms[lan] = round(took * 1000)
        say(
            f"  {lan:<7} got {lease.address} router {lease.router} dns "
            f"{', '.join(str(d) for d in lease.dns)} lease {lease.lease_time}s "
            f"in {_ms(took)}"
        )
    return took_ms


def _show_survivor(survivor: Flow, backup: str, say: Say) -> bool:
    """Stop the long-lived connection on the backup; whether it lived through the cuts."""
    rep = survivor.stop()
    say(
        f"  the connection on {backup} "
        + (
            f"carried on through all of it ({rep.exchanges} exchanges, {len(rep.stalls)} stalls)."
            if rep.alive
            else f"broke: {rep.reason}."
        )
    )
    return rep.alive


def _show_split(
    lab: Lab, office: Office, lan: str, sources: Sequence[IPv4Address], say: Say
) -> dict[str, Any]:
    """New connections from every client address to every server: which uplink took each,
    against the weights and against the hash prediction; then the daemon's counters."""
    cfg = lab.lab_config
    counts: Counter[str] = Counter()
    unexpected = 0
    for dst in lab.topology.whoami:
        for a in connections(lab, lan, len(sources), sources=sources, dst=dst):
            counts[a.isp or "failed"] += 1
            if a.ok and a.src is not None:
                unexpected += a.isp != predicted_uplink(lab, a.src or "", dst, a.sport or 0)
    total = sum(counts.values())
    weights = {w.name: w.weight for w in cfg.wans}
    say(
        f"\nLoad balancing ({cfg.policy.classifier}): {len(sources)} client addresses x "
        f"{len(lab.topology.whoami)} servers = {total} new connections"
    )
    for name, weight in weights.items():
        say(
            f"  {name:<12} {counts[name]:>4} ({100 * counts[name] / total:.0f} %; "
            f"weight {weight} = {100 * weight / sum(weights.values()):.0f} %)"
        )
    if counts["failed"]:
        say(f"  failed       {counts['failed']:>4}")
    say(f"  connections off their predicted uplink: {unexpected}")
    try:
        counters = office.wait_for(
            lambda st: sum(c["connections"] for c in st.get("counters", {}).values()) >= total,
            10,
            "the daemon's counters to show the new connections",
        )["counters"]
    except LabError as exc:  # the demo goes on; the counters are only narrated
        say(f"  wanwatch status counters: not available ({exc})")
        counters = {}
    else:
        say(
            "  wanwatch status counts per uplink: "
            + ", ".join(f"{name} {c['connections']} connections" for name, c in counters.items())
        )
    return {"connections": dict(counts), "off_prediction": unexpected, "counters": counters}


def _show_throughput(
    lab: Lab, lan: str, sources: Sequence[IPv4Address], say: Say
) -> dict[str, Any]:
    """Shape both ISPs to the same rate; 1 bulk flow, then 8 from different clients."""
    wans = [w.name for w in lab.lab_config.wans]
    for wan in wans:
        shaping.shape(lab, wan, SHAPE_MBIT)
    capacity = SHAPE_MBIT * len(wans)
    say(f"\nThroughput, each ISP shaped to {SHAPE_MBIT:g} Mbit/s (tc tbf on the ISP side):")
    out: dict[str, Any] = {"capacity_mbit": capacity}
    try:
        for flows in (1, 8):
            r = bulk(lab, lan, flows=flows, seconds=THROUGHPUT_SECONDS, sources=sources[:flows])
            mbit = r.bits_per_second / 1e6
            out[f"flows_{flows}_mbit"] = round(mbit, 1)
            spread = ", ".join(f"{k} {v}" for k, v in sorted(r.flows_by_isp().items()))
            say(
                f"  {flows} flow{'s' if flows > 1 else ''} ({spread}): {mbit:.1f} Mbit/s, "
                f"{100 * mbit / capacity:.0f} % of {capacity:g}"
            )
    finally:
        for wan in wans:
            shaping.unshape(lab, wan)
    return out
