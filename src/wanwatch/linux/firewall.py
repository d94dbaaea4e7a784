"""The router's firewall: its part of ``table inet wanwatch`` (pure), and its counters.

What it judges, and only that (docs/firewall.md): packets that arrive on an
uplink, and packets from or to a LAN marked ``isolate``. Traffic from the
office's own LANs, from ``lo`` and from interfaces the config does not name (a
management port) is not ours to judge: the input chain dispatches on the
incoming interface and lets every other one through, so a firewall mistake can
never lock the admin out of the router.

From an uplink nothing new reaches the router or a LAN unless the config opens
it, as in RouterOS's defconf, OpenWrt's fw4 and pfSense:

* established and related packets pass (probe replies, the router's own DNS,
  ICMP errors about a known connection), invalid ones are dropped;
* ICMPv6 that IPv6 cannot work without (RFC 4890 4.4.1): neighbour discovery
  only with hop limit 255, i.e. from the link itself (RFC 4861 6.1.1, 7.1.1),
  MLD and multicast router discovery only from link-local sources. These come
  before the invalid drop: conntrack leaves ND and MLD untracked and calls the
  others (inverse ND, SEND) invalid, as no connection starts with them
  (net/netfilter/nf_conntrack_proto_icmpv6.c, ``noct_valid_new``);
* path MTU discovery is never broken (RFC 1191, RFC 8201; RFC 4890 4.3.1 calls
  packet-too-big essential): packet-too-big and IPv4's fragmentation-needed
  pass even when conntrack no longer knows the connection;
* echo requests, rate-limited (``ECHO_RATE``): to the router, and through it to
  the office's IPv6 hosts (RFC 4890 4.3.1); IPv4 hosts sit behind NAT;
* the router's own machinery: DHCP server replies on a DHCP uplink
  (udp 67 -> 68, RFC 2131; udhcpc renews over a kernel socket), DHCPv6 replies
  from link-local servers (udp 547 -> 546, RFC 8415) for an admin's own IPv6,
  VRRP adverts on every segment of a router pair (RFC 5798: IP protocol 112);
  conntrackd's sync link is its own interface (config/ha.py), never an uplink;
* ``firewall.allow``: openings on the router; ``forwards``: destination NAT
  (chain ``dstnat``), and the forward chain accepts ``ct status dnat``.

A port forward answers through the uplink it arrived on: nft.py's prerouting
gives a connection arriving on an uplink that uplink's ct mark, and the reply
carries it, so a forward on the backup works while the primary carries the
office's new connections. Hairpin NAT: a LAN client may use an uplink's own
address (rendered from the Intent: static, leased, and a router pair's shared
one); when client and server share a LAN, the flow is masqueraded to the
router, or the server would answer the client directly and the client, which
spoke to the public address, would drop the reply.

Named counters count each uplink's drops (input and forward), each isolated
LAN's, and each forward's connections (the dstnat chain sees a connection's
first packet only). They start from zero whenever the table is replaced
(nft.py replaces it whole on every change: a new config, a lease, and in
loadbalance mode every failover); ``Totals`` keeps totals across that, by the
table's handle, and ``status`` arranges them for ``wanwatch status``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from wanwatch.config import Config
from wanwatch.config.checks import protocols
from wanwatch.config.fields import PortRange, Prefix
from wanwatch.config.ha import snat
from wanwatch.engine.intent import Intent
from wanwatch.errors import NftError
from wanwatch.status import Drops, FirewallStatus

# Echo requests from an uplink (to the router, or to the office's IPv6 hosts):
# enough for a monitoring service and a person's ping, not for a flood.
ECHO_PER_SECOND, ECHO_BURST = 10, 20
ECHO_RATE = f"limit rate {ECHO_PER_SECOND}/second burst {ECHO_BURST} packets"
DHCP_SERVER_PORT, DHCP_CLIENT_PORT = 67, 68  # RFC 2131 section 4.1
DHCPV6_SERVER_PORT, DHCPV6_CLIENT_PORT = 547, 546  # RFC 8415 section 7.2
DNS_PORT = 53
LINK_LOCAL6 = "fe80::/10"

# nft's names of the protocols a config can open (config/model.py Proto).
_L4 = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "ipv6-icmp"}
# RFC 4890 4.4.1: neighbour discovery, inverse ND and SEND (148, 149): hop limit 255.
_ND = (
    "nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, "
    "ind-neighbor-solicit, ind-neighbor-advert, 148, 149"
)
# RFC 4890 4.4.1: MLD (RFC 3810) and multicast router discovery (151-153, RFC 4286).
_MLD = (
    "mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report, "
    "151, 152, 153"
)
_PMTU = (
    "icmpv6 type packet-too-big accept",
    "icmp type destination-unreachable icmp code frag-needed accept",
)


# --------------------------------------------------------------------------- description


@dataclass(frozen=True)
class Opening:
    """One ``firewall.allow`` entry, resolved."""

    name: str
    protocols: tuple[str, ...]  # config names: tcp, udp, icmp, icmpv6, gre, esp, ah
    ports: tuple[PortRange, ...]  # empty for protocols without ports
    sources: tuple[Prefix, ...]  # empty: from anywhere
    wans: tuple[str, ...]


@dataclass(frozen=True)
class PortForward:
    """One ``forwards`` entry, resolved."""

    name: str
    protocols: tuple[str, ...]  # tcp, udp
    port: PortRange
    to: IPv4Address
    to_port: PortRange
    sources: tuple[IPv4Network, ...]  # empty: from anywhere
    wans: tuple[str, ...]
    lan: str  # the LAN holding ``to``
    counter: str


@dataclass(frozen=True)
class Guard:
    """What an uplink lets in beyond established traffic."""

    wan: str
    interface: str
    slot: int  # 1-based config position, as in nft.py's chain names
    dhcp_client: bool
    vrrp: bool
    openings: tuple[Opening, ...]
    input_counter: str
    forward_counter: str


@dataclass(frozen=True)
class Guest:
    """An isolated LAN."""

    lan: str
    interface: str
    slot: int  # 1-based position in config.lans
    vrrp: bool
    counter: str


@dataclass(frozen=True)
class Description:
    """The firewall a config asks for, as plain data (for the renderer, and for ``plan``)."""

    enabled: bool
    guards: tuple[Guard, ...]  # empty when disabled
    guests: tuple[Guest, ...]  # empty when disabled
    forwards: tuple[PortForward, ...]  # destination NAT is rendered even when disabled
    openings: tuple[Opening, ...]  # firewall.allow in config order (each guard has its own)

    @property
    def counters(self) -> tuple[str, ...]:
        names = [c for g in self.guards for c in (g.input_counter, g.forward_counter)]
        return (*names, *(g.counter for g in self.guests), *(f.counter for f in self.forwards))


def describe(config: Config) -> Description:
    """The firewall of ``config`` (a validated one), every default resolved. Pure."""
    every = tuple(w.name for w in config.wans)
    fw = config.firewall
    ha = config.ha
    vrrp_wans = {hw.wan for hw in ha.wans} if ha is not None else set()
    vrrp_lans = {hl.lan for hl in ha.lans} if ha is not None else set()
    openings = tuple(
        Opening(
            name=a.name,
            protocols=tuple(sorted(protocols(a.proto))),
            ports=a.port or (),
            sources=a.from_ or (),
            wans=a.wans or every,
        )
        for a in fw.allow
    )
    guards = tuple(
        Guard(
            wan=w.name,
            interface=w.interface,
            slot=i + 1,
            dhcp_client=w.address == "dhcp",
            vrrp=w.name in vrrp_wans,
            openings=tuple(o for o in openings if w.name in o.wans),
            input_counter=f"drop_in_{w.name}",
            forward_counter=f"drop_fwd_{w.name}",
        )
        for i, w in enumerate(config.wans)
    )
    guests = tuple(
        Guest(lan.name, lan.interface, j + 1, lan.name in vrrp_lans, f"drop_guest_{lan.name}")
        for j, lan in enumerate(config.lans)
        if lan.isolate
    )
    forwards = tuple(
        PortForward(
            name=f.name,
            protocols=tuple(sorted(protocols(f.proto))),
            port=f.port,
            to=f.to,
            to_port=f.to_port or f.port,
            sources=tuple(n for n in f.from_ or () if isinstance(n, IPv4Network)),
            wans=f.wans or every,
            lan=_lan_of(config, f.to),
            counter=f"forward_{f.name}",
        )
        for f in config.forwards
    )
    if not fw.enabled:
        return Description(False, (), (), forwards, ())
    return Description(True, guards, guests, forwards, openings)


def _lan_of(config: Config, host: IPv4Address) -> str:
    for lan in config.lans:
        if lan.address is not None and host in lan.address.network:
            return lan.name
    raise NftError(f"{host} is on no LAN (the config check refuses such a forward)")


def plan_json(d: Description) -> dict[str, Any]:
    """The firewall of ``d`` as JSON (``wanwatch plan --json``): what each uplink lets in,
    the port forwards and the isolated LANs."""

    def opening(o: Opening) -> dict[str, Any]:
        return {
            "name": o.name,
            "proto": "+".join(o.protocols),
            "ports": [str(p) for p in o.ports],
            "from": [str(s) for s in o.sources],
            "wans": list(o.wans),
        }

    return {
        "enabled": d.enabled,
        "uplinks": [
            {
                "wan": g.wan,
                "interface": g.interface,
                "dhcp_client": g.dhcp_client,
                "vrrp": g.vrrp,
                "openings": [o.name for o in g.openings],
            }
            for g in d.guards
        ],
        "openings": [opening(o) for o in d.openings],
        "forwards": [
            {
                "name": f.name,
                "proto": "+".join(f.protocols),
                "port": str(f.port),
                "to": str(f.to),
                "to_port": str(f.to_port),
                "lan": f.lan,
                "from": [str(s) for s in f.sources],
                "wans": list(f.wans),
            }
            for f in d.forwards
        ],
        "isolated": [{"lan": g.lan, "interface": g.interface} for g in d.guests],
    }


def plan_lines(d: Description) -> list[str]:
    """The firewall of ``d`` for a person (``wanwatch plan``), from :func:`plan_json`."""
    doc = plan_json(d)

    def where(item: dict[str, Any]) -> str:
        src = ", ".join(item["from"]) or "anywhere"
        return f"from {src} on {', '.join(item['wans'])}"

    if not d.enabled:
        lines = ["firewall: off (wanwatch filters nothing; port forwards still apply)"]
    else:
        lines = [
            "firewall: on (from the uplinks nothing new reaches the router or a LAN unless opened)",
            "  every uplink lets in: replies (established, related), IPv6 neighbour discovery,"
            f" path MTU, ping ({ECHO_PER_SECOND}/s, burst {ECHO_BURST})",
        ]
        for u in doc["uplinks"]:
            passes = ["DHCP client"] * u["dhcp_client"] + ["VRRP"] * u["vrrp"] + u["openings"]
            lines.append(
                f"  {u['wan']:<14} {u['interface']:<10} also: {', '.join(passes) or 'nothing'}"
            )
    if doc["openings"]:
        lines.append("  openings on the router:")
        for o in doc["openings"]:
            ports = f" {', '.join(o['ports'])}" if o["ports"] else ""
            lines.append(f"    {o['name']:<14} {o['proto']}{ports} {where(o)}")
    if doc["forwards"]:
        lines.append("  port forwards:")
        for f in doc["forwards"]:
            lines.append(
                f"    {f['name']:<14} {f['proto']} {f['port']} -> {f['to']}:{f['to_port']}"
                f" ({f['lan']}) {where(f)}"
            )
    for g in doc["isolated"]:
        lines.append(
            f"  isolated LAN {g['lan']} ({g['interface']}): the internet, DHCP, DNS and ping"
            " of the router only"
        )
    return lines


# --------------------------------------------------------------------------- rendering


@dataclass
class Rules:
    """The firewall's parts of the table, for nft.render to place (lines without indent)."""

    counters: list[str] = field(default_factory=list)  # named counter declarations
    forward: list[str] = field(default_factory=list)  # end of the forward chain
    srcnat: list[str] = field(default_factory=list)  # start of the nat (postrouting) chain
    chains: list[list[str]] = field(default_factory=list)  # whole chains: name line .. "}"


def _q(name: str) -> str:
    return f'"{name}"'  # nft.py has checked every interface name of the Intent


def _set(items: Iterable[object]) -> str:
    listed = [str(i) for i in items]
    return listed[0] if len(listed) == 1 else "{ " + ", ".join(listed) + " }"


def _ifset(names: Iterable[str]) -> str:
    return _set(_q(n) for n in names)


def _ports_match(protos: tuple[str, ...], ports: Iterable[PortRange]) -> str:
    dport = _set(ports)
    if len(protos) == 1:
        return f"{protos[0]} dport {dport}"
    return f"meta l4proto {_set(protos)} th dport {dport}"


def _sources(sources: tuple[Prefix, ...]) -> list[str]:
    """One match per address family listed; [""] for: from anywhere."""
    if not sources:
        return [""]
    out = []
    for version, key in ((4, "ip"), (6, "ip6")):
        nets = [n for n in sources if n.version == version]
        if nets:
            out.append(f"{key} saddr {_set(nets)} ")
    return out


def _opening_rules(o: Opening) -> list[str]:
    if o.ports:
        what = [_ports_match(o.protocols, o.ports)]
    else:
        what = [f"meta l4proto {_L4.get(p, p)}" for p in o.protocols]
    return [
        f'{src}{w} accept comment "allow {o.name}"' for src in _sources(o.sources) for w in what
    ]


def _dnat_target(f: PortForward) -> str:
    if f.to_port == f.port:
        return f"dnat ip to {f.to}"  # the same port(s)
    if f.port.size == 1:
        return f"dnat ip to {f.to}:{f.to_port.first}"
    # A shifted range, port by port (nft 1.0.6 has no port-offset NAT; model.py bounds it).
    key = f"{f.protocols[0]} dport" if len(f.protocols) == 1 else "th dport"
    pairs = ", ".join(f"{f.port.first + k} : {f.to_port.first + k}" for k in range(f.port.size))
    return f"dnat ip to {f.to} : {key} map {{ {pairs} }}"


def _uplink_addresses(intent: Intent, config: Config) -> dict[str, list[IPv4Address]]:
    """Each uplink's own addresses as the Intent knows them, and a pair's shared one."""
    found: dict[str, list[IPv4Address]] = {u.name: [] for u in intent.uplinks}
    for u in intent.uplinks:
        if u.address is not None:
            found[u.name].append(u.address.ip)
    by_if = {u.interface: u.name for u in intent.uplinks}
    for iface, _own, shared in snat(config):
        if iface in by_if:
            found[by_if[iface]].append(shared)
    return found


def _dstnat(d: Description, intent: Intent, config: Config) -> list[str]:
    if_of = {u.name: u.interface for u in intent.uplinks}
    wan_ifs = [u.interface for u in intent.uplinks]
    addresses = _uplink_addresses(intent, config)
    out = ["chain dstnat {", "\ttype nat hook prerouting priority dstnat; policy accept;"]
    for f in d.forwards:
        what = _ports_match(f.protocols, [f.port])
        act = f"counter name {f.counter} {_dnat_target(f)}"
        out.append(f"\t# {f.name}: {f.port}/{'+'.join(f.protocols)} to {f.to}:{f.to_port}")
        ifs = _ifset(if_of[w] for w in f.wans)
        for src in _sources(f.sources):
            out.append(f"\tiifname {ifs} fib daddr type local meta nfproto ipv4 {src}{what} {act}")
        own = sorted({a for w in f.wans for a in addresses[w]})
        if own:  # hairpin: from inside, to an uplink's own address
            for src in _sources(f.sources):
                out.append(f"\tiifname != {_ifset(wan_ifs)} ip daddr {_set(own)} {src}{what} {act}")
    out.append("}")
    return out


def _hairpin_srcnat(d: Description, config: Config) -> list[str]:
    hosting = {f.lan for f in d.forwards}
    out = []
    for lan in config.lans:
        if lan.name in hosting:
            iface = _q(lan.interface)
            out.append(
                f"meta nfproto ipv4 ct status dnat iifname {iface} oifname {iface} masquerade"
            )
    if out:
        out.insert(0, "# hairpin: client and server on one LAN; the reply must come back to us")
    return out


def _guard_chains(g: Guard) -> list[list[str]]:
    inp = [
        f"chain wan_in_{g.slot} {{",
        f"\t# {g.wan}: new connections to the router only where opened",
        "\tct state established,related accept",
        "\tjump icmp_in",
        f"\tct state invalid counter name {g.input_counter} drop",
    ]
    if g.dhcp_client:
        inp.append(
            f"\tudp sport {DHCP_SERVER_PORT} udp dport {DHCP_CLIENT_PORT} accept"
            ' comment "DHCP client"'
        )
    inp.append(
        f"\tip6 saddr {LINK_LOCAL6} udp sport {DHCPV6_SERVER_PORT} udp dport {DHCPV6_CLIENT_PORT}"
        ' accept comment "DHCPv6 client"'
    )
    if g.vrrp:
        inp.append('\tip protocol vrrp accept comment "router pair"')
    inp += [f"\t{r}" for o in g.openings for r in _opening_rules(o)]
    inp += [f"\tcounter name {g.input_counter} drop", "}"]
    fwd = [
        f"chain wan_fwd_{g.slot} {{",
        f"\t# {g.wan}: nothing new reaches a LAN but a port forward",
        "\tct status dnat accept",
        *(f"\t{r}" for r in _PMTU),
        f"\ticmpv6 type echo-request {ECHO_RATE} accept",
        f"\tcounter name {g.forward_counter} drop",
        "}",
    ]
    return [inp, fwd]


def _guest_chains(g: Guest, wan_ifs: list[str], wan_nets: list[IPv4Network]) -> list[list[str]]:
    inp = [
        f"chain guest_in_{g.slot} {{",
        f"\t# {g.lan} is isolated: of the router, DHCP, DNS and ping only",
        "\tct state established,related accept",
        "\ticmp type echo-request accept",
        "\ticmpv6 type echo-request accept",
        "\tjump icmp_in",
        f"\tct state invalid counter name {g.counter} drop",
        f"\tudp dport {DHCP_SERVER_PORT} accept",
        f"\tmeta l4proto {{ tcp, udp }} th dport {DNS_PORT} accept",
    ]
    if g.vrrp:
        inp.append('\tip protocol vrrp accept comment "router pair"')
    inp += [f"\tcounter name {g.counter} drop", "}"]
    fwd = [
        f"chain guest_fwd_{g.slot} {{",
        f"\t# {g.lan} is isolated: the internet only (and a forward, as the internet sees it)",
        "\tct status dnat accept",
    ]
    if wan_nets:  # the uplinks' own segments: the LTE modem's, the ISP box's
        fwd.append(
            f"\toifname {_ifset(wan_ifs)} ip daddr {_set(wan_nets)} counter name {g.counter} drop"
        )
    fwd += [
        f"\toifname {_ifset(wan_ifs)} accept",
        f"\tcounter name {g.counter} drop",
        "}",
    ]
    return [inp, fwd]


def _icmp_in() -> list[str]:
    return [
        "chain icmp_in {",
        "\t# RFC 4890 4.4.1: neighbour discovery from the link itself (hop limit 255),",
        "\t# MLD and multicast router discovery from link-local sources",
        f"\ticmpv6 type {{ {_ND} }} ip6 hoplimit 255 accept",
        f"\ticmpv6 type {{ {_MLD} }} ip6 saddr {LINK_LOCAL6} accept",
        "\t# path MTU discovery, even for a connection conntrack has forgotten",
        *(f"\t{r}" for r in _PMTU),
        f"\ticmp type echo-request {ECHO_RATE} accept",
        f"\ticmpv6 type echo-request {ECHO_RATE} accept",
        "}",
    ]


def render(intent: Intent, config: Config) -> Rules:
    """The firewall's parts of ``table inet wanwatch`` for this Intent (pure)."""
    d = describe(config)
    rules = Rules(counters=list(d.counters))
    if d.forwards:
        rules.chains.append(_dstnat(d, intent, config))
        rules.srcnat = _hairpin_srcnat(d, config)
    if not d.enabled:
        return rules
    wan_ifs = [u.interface for u in intent.uplinks]
    wan_nets = sorted(
        {
            u.address.network
            for u in intent.uplinks
            if isinstance(u.address, IPv4Interface) and u.address.network.prefixlen < 32
        }
    )
    entry = {g.interface: f"jump wan_in_{g.slot}" for g in d.guards}
    entry |= {g.interface: f"jump guest_in_{g.slot}" for g in d.guests}
    through = {g.interface: f"jump wan_fwd_{g.slot}" for g in d.guards}
    through |= {g.interface: f"jump guest_fwd_{g.slot}" for g in d.guests}
    rules.chains.append(
        [
            "chain input {",
            "\ttype filter hook input priority filter; policy accept;",
            "\t# only the uplinks and isolated LANs are judged (docs/firewall.md)",
            f"\tiifname vmap {_vmap(entry)}",
            "}",
        ]
    )
    rules.forward = ["ct state established,related accept", f"iifname vmap {_vmap(through)}"]
    for g in d.guests:
        rules.forward += [
            f"oifname {_q(g.interface)} ct status dnat accept",
            f"oifname {_q(g.interface)} counter name {g.counter} drop",
        ]
    for guard in d.guards:
        rules.chains += _guard_chains(guard)
    for guest in d.guests:
        rules.chains += _guest_chains(guest, wan_ifs, wan_nets)
    rules.chains.append(_icmp_in())
    return rules


def _vmap(verdicts: Mapping[str, str]) -> str:
    return "{ " + ", ".join(f"{_q(k)} : {v}" for k, v in verdicts.items()) + " }"


# --------------------------------------------------------------------------- counters


@dataclass(frozen=True)
class Count:
    packets: int
    bytes: int


ZERO = Count(0, 0)


@dataclass(frozen=True)
class Reading:
    """The named counters of one listing of the table, and which table it was."""

    table: int | None  # the table's handle: the kernel gives every new table a new one
    counts: dict[str, Count]


def nftables(text: str) -> list[Any]:
    """The objects of an ``nft -j list`` answer (libnftables-json(5)); NftError if none."""
    try:
        items = json.loads(text)["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise NftError(f"nft -j list: not nftables JSON: {exc}") from None
    if not isinstance(items, list):
        raise NftError("nft -j list: not nftables JSON: no list of objects")
    return items


def parse_table(text: str) -> Reading:
    """Our table's handle and named counters from ``nft -j list table inet wanwatch``
    (libnftables-json(5): a list of objects; ``table`` and ``counter`` are read)."""
    items = nftables(text)
    table: int | None = None
    counts: dict[str, Count] = {}
    try:
        for item in items:
            if not isinstance(item, dict):
                continue
            if isinstance(t := item.get("table"), dict):
                table = int(t["handle"])
            elif isinstance(c := item.get("counter"), dict):
                counts[str(c["name"])] = Count(int(c["packets"]), int(c["bytes"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise NftError(f"nft -j list table: an object without {exc}") from None
    return Reading(table, counts)


def _plus(a: Count, b: Count) -> Count:
    return Count(a.packets + b.packets, a.bytes + b.bytes)


class Totals:
    """Counter totals across table replacements (their counters start from zero again).

    The table is replaced whole on every change (a new config, a lease, and in
    loadbalance mode every failover); a reading of a new table (another handle)
    adds the old table's last reading to the totals. What the old table counted
    after that reading is lost: at most one reading interval's worth.
    """

    def __init__(self) -> None:
        self._before: dict[str, Count] = {}  # what replaced tables counted
        self._last = Reading(None, {})

    def add(self, reading: Reading) -> dict[str, Count]:
        """The totals, with ``reading`` the latest."""
        if reading.table != self._last.table:
            for name, c in self._last.counts.items():
                self._before[name] = _plus(self._before.get(name, ZERO), c)
        self._last = reading
        names = self._before.keys() | reading.counts.keys()
        return {
            n: _plus(self._before.get(n, ZERO), reading.counts.get(n, ZERO)) for n in sorted(names)
        }


def status(d: Description, found: Mapping[str, Count], age: float | None) -> FirewallStatus:
    """``found`` (Totals.add) arranged by uplink, isolated LAN and forward, for status; a
    counter not found yet (no reading, an older table) reads zero."""
    got = {name: c.packets for name, c in found.items()}
    return FirewallStatus(
        enabled=d.enabled,
        dropped={
            g.wan: Drops(got.get(g.input_counter, 0), got.get(g.forward_counter, 0))
            for g in d.guards
        },
        guests={g.lan: got.get(g.counter, 0) for g in d.guests},
        forwards={f.name: got.get(f.counter, 0) for f in d.forwards},
        age_s=None if age is None else round(age, 2),
    )
