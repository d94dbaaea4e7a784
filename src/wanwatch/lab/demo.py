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

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address
from typing import Any

from wanwatch.config import Config
from wanwatch.errors import LabError
from wanwatch.lab import faults, poll, shaping
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
    ipv6: bool = False,
) -> tuple[float, faults.FaultEvent, float | None]:
    """Run ``cut`` while ``lan`` (from ``source``, if given) opens a new connection every
    20 ms; seconds until the first new connection answered through ``via``, and (with
    ``ipv6``: a second loop to the IPv6 server across the same cut) the same for IPv6."""
    loops = [
        ConnectLoop(
            lab,
            lan,
            interval=0.02,
            timeout=1.0,
            max_seconds=deadline + 5,
            sources=[source] if source is not None else (),
        )
    ]
    if ipv6:
        loops.append(
            ConnectLoop(
                lab, lan, dst=lab.topology.whoami6[0], timeout=1.0, max_seconds=deadline + 5
            )
        )
    with contextlib.ExitStack() as stack:
        for loop in loops:
            stack.enter_context(loop)
        fault = cut()
        end = time.monotonic() + deadline
        hits = [loop.first_success(after=fault.t_start, via=via, deadline=end) for loop in loops]
    for hit, family in zip(hits, (4, 6), strict=False):
        if hit is None:
            what = f"no new IPv{family} connection through {via}"
            raise LabError(f"{what} within {deadline:.0f}s of {fault.kind}")
    took = [h.t1 - fault.t_start for h in hits if h is not None]
    return took[0], fault, took[1] if ipv6 else None


def dual_stack(lab: Lab) -> bool:
    """The lab config gives every uplink and the first LAN IPv6: the demo shows both."""
    cfg = lab.lab_config
    return (
        all(w.address6 is not None for w in cfg.wans)
        and lab.topology.clients[0].gateway6 is not None
    )


def _say_took(
    say: Say, via: str, took: float, took6: float | None, *, what: str, figure: str
) -> dict[str, int]:
    """Say how long each family took after ``what``; the figures, named ``figure``_ms
    (and ``figure``6_ms)."""
    say(f"  first new connection through {via} {_ms(took)} after {what}.")
    out = {f"{figure}_ms": round(took * 1000)}
    if took6 is not None:
        say(f"  IPv6: first new connection through {via} {_ms(took6)} after {what}.")
        out[f"{figure}6_ms"] = round(took6 * 1000)
    return out


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
        ipv6 = dual_stack(lab) and _show_slaac(
            lab, office, client, primary, figures=figures, say=say
        )

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
        took, cut, took6 = measure_switch(
            lab,
            client,
            backup,
            lambda: faults.blackhole(lab, primary),
            FAILOVER_DEADLINE,
            source=source,
            ipv6=ipv6,
        )
        figures.update(
            _say_took(say, backup, took, took6, what="the cut", figure="blackhole_failover")
        )
        for line in _event_lines(office, FAILOVER_EVENTS, cut.t_start):
            say(f"  event: {line}")
        if (found := _router_lookup(lab, client)) is not None:
            name, ans = found
            say(
                f"  {name} still resolves: {', '.join(ans.addresses) or 'NO ANSWER'} "
                f"({ans.rtt_ms or 0:.1f} ms, through {backup})"
            )

        say(f"\nRestore {primary}; it must stay up for the hold before traffic returns ...")
        took, _, _ = measure_switch(
            lab, client, primary, lambda: faults.clear(lab, primary), 60.0, source=source
        )
        figures["failback_s"] = round(took, 2)
        say(f"  new connections through {primary} again {took:.1f} s after it came back.")

        figures.update(
            _show_carrier(lab, office, client, (primary, backup), source, ipv6=ipv6, say=say)
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
    ipv6: bool,
    say: Say,
) -> dict[str, int]:
    """Pull the primary's cable: milliseconds to the first new connection via the backup
    (of each family, with ``ipv6``); then plug it back and wait until the primary carries."""
    primary, backup = uplinks
    say(f"\nPull {primary}'s cable (carrier loss) ...")
    took, _, took6 = measure_switch(
        lab,
        client,
        backup,
        lambda: faults.carrier_loss(lab, primary),
        FAILOVER_DEADLINE,
        source=source,
        ipv6=ipv6,
    )
    out = _say_took(
        say, backup, took, took6, what="the cable was pulled", figure="carrier_failover"
    )
    faults.clear(lab, primary)
    office.wait_active(primary, timeout=60)
    say(f"  cable back: {primary} carries traffic again.")
    return out


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


def _show_slaac(
    lab: Lab, office: Office, lan: str, primary: str, *, figures: dict[str, Any], say: Say
) -> bool:
    """The client's IPv6 address formed by SLAAC from the router's RAs (``slaac_ms``
    from now), once the primary carries IPv6 too."""
    t0 = time.monotonic()
    office.wait_for(
        lambda st: st.get("active6", [])[:1] == [primary], 30, f"{primary} to carry IPv6"
    )
    net = lab.client(lan).gateway6
    assert net is not None  # dual_stack() checked it
    found = poll.until(
        lambda: [a for a in lab.client_addresses6(lan) if a.network == net.network],
        30,
        f"a SLAAC address on {lan}",
    )
    took = time.monotonic() - t0
    say(f"  IPv6: {lan} formed {found[0]} by SLAAC from the router's RAs ({_ms(took)}).")
    figures["slaac_ms"] = round(took * 1000)
    return True


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
