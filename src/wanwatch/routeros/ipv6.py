"""The IPv6 side of the RouterOS export: what docs/ipv6.md does on Linux, in
RouterOS's ``/ipv6`` menus. Pure: rows for compile.py to write, and notes.

* ``/ipv6 address``: a static ``address6`` on its uplink (``advertise=no``: an
  uplink gets no router advertisements from us), each LAN's address with
  ``advertise=yes`` (RouterOS advertises the prefix of a /64 address; manual,
  IPv6/Address ``advertise``).
* ``dhcp6``: ``/ipv6 dhcp-client`` asking for a prefix only (``request=prefix``,
  ``prefix-hint=::/<prefix_length>``) into a pool of its own, with no default route
  and no DNS from it: routes stay the recursive ones below, DNS ``dns.upstream``
  (manual, DHCP/DHCPv6 Client). The LANs masquerade on that uplink: a ``netmap``
  needs its prefix when the script is written, and the delegated one is learned at
  run time (a note says so).
* ``address6: auto``: ``/ipv6 settings set accept-router-advertisements=yes``.
  RouterOS forwards IPv6, and its default ``yes-if-forwarding-disabled`` would
  ignore the carrier's RAs; with ``yes`` it forms the address by SLAAC and takes
  the default route from them (manual, IPv6/Settings). That route is dynamic:
  it has no check-gateway, and the router's link-local address is not known in
  advance, so no probe target can be pinned to the uplink (a note says so).
* ``/ipv6 route``: the IPv4 recipe for IPv6 (compile.py): a ``scope=10`` /128 pin
  per IPv6 probe target through the uplink's ``gateway6`` (``fe80::1%ether2``: a
  link-local next hop needs its interface), and a default through each target
  with ``check-gateway=ping target-scope=11``; distances a ladder in (priority,
  config order, target order). An uplink with no IPv6 target gets a default via
  its gateway, checked by pinging the gateway alone.
* ``/ipv6 nd`` per IPv6 LAN: RAs with the router as DNS server (RFC 8106 RDNSS;
  v7 ``advertise-dns=self``), as dnsmasq does on Linux.
* ``/ipv6 firewall filter``: the Linux side's IPv6 rules (linux/firewall.py):
  neighbour discovery from the link itself (hop limit 255) and MLD from link-local
  sources before the invalid drop (RFC 4890 4.4.1), packet-too-big always (RFC
  4890 4.3.1), rate-limited echo requests, DHCPv6 replies from link-local
  servers, ``firewall.allow`` openings, then nothing else from the uplinks.
* ``/ipv6 firewall nat`` (RouterOS 7; v6 has no IPv6 NAT): a LAN /64 to its /64 of
  ``prefix6`` by ``netmap`` (RFC 6296's one prefix to one prefix, kept stateful
  like nftables' ``snat ip6 prefix to``), else ``masquerade`` of the LANs' sources.
* Netwatch (v7: hosts may be IPv6; manual, Netwatch ``host``) for each IPv6 target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from wanwatch.config import Config, Wan
from wanwatch.config.fields import AUTO
from wanwatch.config.ipv6 import has_ipv6, ipv6_lans, nat66, static_address6
from wanwatch.config.model import Dhcp6
from wanwatch.errors import RouterOSError
from wanwatch.linux.firewall import (
    DHCPV6_CLIENT_PORT,
    DHCPV6_SERVER_PORT,
    DNS_PORT,
    ECHO_BURST,
    ECHO_PER_SECOND,
    LINK_LOCAL6,
    describe,
)
from wanwatch.routeros.firewall import WAN_LIST, Row, Rules, openings

FILTER6, NAT6, ROUTE6 = "ipv6 firewall filter", "ipv6 firewall nat", "ipv6 route"
DHCP6 = "ipv6 dhcp-client"
HOST_SCOPE, TARGET_SCOPE, MAX_DISTANCE = 10, 11, 255
_ESTABLISHED = "established,related,untracked"
# RFC 4890 4.4.1, as linux/firewall.py: ND, inverse ND and SEND (hop limit 255) ...
_ND_TYPES = (133, 134, 135, 136, 141, 142, 148, 149)
# ... and MLD (RFC 3810) and multicast router discovery (RFC 4286) from link-local.
_MLD_TYPES = (130, 131, 132, 143, 151, 152, 153)
_PACKET_TOO_BIG, _ECHO_REQUEST = "2:0-255", "128:0"


@dataclass
class Six:
    """The IPv6 rows in the order compile.py writes them, and the notes."""

    addresses: list[Row] = field(default_factory=list)
    dhcp_clients: list[Row] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)  # raw ``set`` lines
    nd: list[Row] = field(default_factory=list)
    nat: list[Row] = field(default_factory=list)
    filter: list[Row] = field(default_factory=list)
    routes: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.addresses or self.dhcp_clients or self.settings or self.routes)


def gateway6(w: Wan) -> str | None:
    """The uplink's IPv6 next hop as RouterOS writes it (``fe80::1%ether2``)."""
    if w.gateway6 is None:
        return None
    return f"{w.gateway6}%{w.interface}" if w.gateway6.is_link_local else str(w.gateway6)


def targets6(w: Wan) -> tuple[IPv6Address, ...]:
    return tuple(a for a in w.probe.addresses if isinstance(a, IPv6Address))


def ipv6_side(cfg: Config, version: int, ranked: list[tuple[int, Wan]]) -> Six:
    """Every IPv6 row of ``cfg`` (the full config, IPv6 included)."""
    out = Six()
    lans = ipv6_lans(cfg)
    uplinks = [(i, w) for i, w in ranked if has_ipv6(w)]
    if not lans and not uplinks:
        return out
    for i, w in enumerate(cfg.wans):
        if (a := static_address6(w)) is not None:
            row = {"address": str(a), "interface": w.interface, "advertise": "no"}
            out.addresses.append(Row("ipv6 address", row, f"wans[{i}] {w.name} address6"))
    for i, w in enumerate(cfg.wans):
        if w.dhcp6 is not None:
            translated = bool(lans) and cfg.nat.masquerade
            out.dhcp_clients.append(_dhcp6(i, w, w.dhcp6, translated, out.notes))
    for j, lan in enumerate(cfg.lans):
        for lan6, a in lans:
            if lan6 is lan:
                row = {"address": str(a), "interface": lan.interface, "advertise": "yes"}
                out.addresses.append(Row("ipv6 address", row, f"lans[{j}] {lan.name} address6"))
    if any(w.address6 == AUTO for _, w in uplinks):
        out.settings.append("/ipv6 settings set accept-router-advertisements=yes")
    _nd(out, cfg, version)
    _routes(out, uplinks)
    if cfg.nat.masquerade:
        _nat(out, cfg, version)
    if describe(cfg).enabled and uplinks:
        _filter(out, cfg, version)
    if cfg.policy.mode == "loadbalance" and len(uplinks) > 1:
        out.notes.append(
            "policy.mode=loadbalance: IPv6 is not balanced (the policy's PCC rows are "
            "IPv4 only); it fails over in priority order"
        )
    return out


def pool6(w: Wan) -> str:
    """The ``/ipv6 pool`` a ``dhcp6`` uplink's client puts its delegated prefix in."""
    return f"{w.name}-pd"


def _dhcp6(i: int, w: Wan, dhcp6: Dhcp6, translated: bool, notes: list[str]) -> Row:
    row = {"interface": w.interface, "request": "prefix", "pool-name": pool6(w)}
    if dhcp6.prefix_length is not None:
        row["prefix-hint"] = f"::/{dhcp6.prefix_length}"
    row |= {"add-default-route": "no", "use-peer-dns": "no"}
    if translated:
        notes.append(
            f"wans[{i}].dhcp6: the delegated prefix goes to /ipv6 pool {pool6(w)}, but the "
            f"LANs masquerade on {w.interface} (a netmap needs its prefix when the script is "
            "written; wanwatch on Linux translates into the delegated prefix)"
        )
    return Row(DHCP6, row, f"wans[{i}] {w.name} dhcp6")


def _nd(out: Six, cfg: Config, version: int) -> None:
    for j, lan in enumerate(cfg.lans):
        if not any(lan6 is lan for lan6, _ in ipv6_lans(cfg)):
            continue
        out.nd.append(
            Row(
                "ipv6 nd",
                {"interface": lan.interface, "advertise-dns": "self" if version == 7 else "yes"},
                f"lans[{j}] {lan.name} router advertisements",
            )
        )
    if out.nd:
        out.notes.append(
            "/ipv6 nd: RouterOS's default entry (interface=all) also advertises on the "
            "uplinks; set it to the LANs or disable it"
        )
        if version == 6:
            out.notes.append(
                "/ipv6 nd advertise-dns=yes (v6): RouterOS 6 advertises the IPv6 servers of "
                "/ip dns only, not itself: with IPv4 upstreams the LANs learn DNS over IPv4"
            )


def defaults6(w: Wan) -> tuple[IPv6Address | None, ...]:
    """What the uplink's checked IPv6 defaults go through, in distance order: each IPv6
    probe target, or (None) its gateway6 alone when it has no IPv6 target; empty when
    no static IPv6 route can go through it (``address6: auto``, or no gateway6)."""
    if w.address6 == AUTO or gateway6(w) is None:
        return ()
    return targets6(w) or (None,)


def default6(
    w: Wan, via: IPv6Address | None, distance: int, item: str, table: str | None = None
) -> Row:
    """One checked IPv6 default through ``via`` (None: the gateway itself), in ``main``
    or in ``table``; a target is then resolved in ``main``, where its pin is (v7
    manual, Policy Routing: ``gateway=...@main routing-table=...``)."""
    if distance > MAX_DISTANCE:
        raise RouterOSError(
            f"{item}: needs IPv6 distance {distance}; RouterOS allows at most "
            f"{MAX_DISTANCE} (too many probe targets)"
        )
    gw = gateway6(w) or ""
    if via is not None:
        gw = f"{via}@main" if table else str(via)
    elif table and w.gateway6 is not None and not w.gateway6.is_link_local:
        gw += "@main"  # a link-local next hop names its interface: nothing to resolve
    row = {"dst-address": "::/0", "gateway": gw, "check-gateway": "ping"}
    row["distance"] = str(distance)
    if via is not None:
        row["target-scope"] = str(TARGET_SCOPE)
    if table:
        row["routing-table"] = table
    return Row(ROUTE6, row, item)


def _routes(out: Six, uplinks: list[tuple[int, Wan]]) -> None:
    pins: list[Row] = []
    defaults: list[Row] = []
    d = 0
    for i, w in uplinks:
        if w.address6 == AUTO:
            # Its place in the ladder: RouterOS gives the RA-learned route a distance of
            # its own, so the uplinks ranked after it start above it.
            d += 1
            out.notes.append(
                f"wans[{i}] {w.name} address6: auto: its IPv6 default is the one RouterOS "
                "learns from router advertisements (accept-router-advertisements=yes): no "
                "check-gateway, and its IPv6 probe targets cannot be pinned to it (the "
                "router's link-local address is not known in advance), so no route or "
                "Netwatch entry uses them; while the RAs go "
                "on, a silent blackhole keeps IPv6 on it. The static IPv6 routes after it start at "
                f"distance {d + 1}: check that the learned route's distance (/ipv6 route "
                "print) is below theirs"
            )
            continue
        gw = gateway6(w)
        if gw is None:
            out.notes.append(f"wans[{i}] {w.name} has no gateway6: no IPv6 route through it")
            continue
        seen: set[IPv6Address] = set()
        for t, target in enumerate(w.probe.targets):
            if isinstance(target.address, IPv6Address) and target.address not in seen:
                seen.add(target.address)
                pin = {"dst-address": f"{target.address}/128", "gateway": gw}
                pin["scope"] = str(HOST_SCOPE)
                item = f"wans[{i}].probe.targets[{t}] pins {target.address} to {w.name}"
                pins.append(Row(ROUTE6, pin, item))
        if not targets6(w):
            out.notes.append(
                f"wans[{i}] {w.name} has no IPv6 probe target: its IPv6 default checks "
                f"only the gateway {w.gateway6} (wanwatch judges its IPv6 by its IPv4 probes)"
            )
        for via in defaults6(w):
            d += 1
            item = f"wans[{i}] {w.name} IPv6 via {via or gw}"
            defaults.append(default6(w, via, d, item))
    out.routes = pins + defaults


def _nat(out: Six, cfg: Config, version: int) -> None:
    lans = [a.network for _, a in ipv6_lans(cfg)]
    if not lans:
        return
    if version == 6:
        out.notes.append(
            "nat.masquerade: RouterOS 6 has no IPv6 NAT: the LANs' ULAs do not reach the "
            "internet over IPv6 (RouterOS 7 has /ipv6 firewall nat)"
        )
        return
    index = {w.interface: (i, w) for i, w in enumerate(cfg.wans)}
    for iface, mapping in nat66(cfg):
        i, w = index[iface]
        if mapping:
            for lan, ext in mapping.items():
                out.nat.append(_netmap(iface, lan, ext, f"wans[{i}].prefix6 {w.name} {lan}"))
        else:
            for lan in lans:
                row = {"chain": "srcnat", "action": "masquerade", "src-address": str(lan)}
                row["out-interface"] = iface
                out.nat.append(Row(NAT6, row, f"nat.masquerade wans[{i}] {w.name} {lan}"))


def _netmap(iface: str, lan: IPv6Network, ext: IPv6Network, item: str) -> Row:
    row = {"chain": "srcnat", "action": "netmap", "src-address": str(lan)}
    row |= {"to-address": str(ext), "out-interface": iface}
    return Row(NAT6, row, item)


def _filter(out: Six, cfg: Config, version: int) -> None:
    limit = f"{ECHO_PER_SECOND},{ECHO_BURST}" + (":packet" if version == 7 else "")
    r = Rules()
    d = describe(cfg)
    for chain in ("input", "forward"):
        if chain == "input":
            for t in _ND_TYPES:
                r.add(FILTER6, f"firewall6: neighbour discovery {t} from the link", chain=chain,
                      action="accept", protocol="icmpv6", icmp_options=f"{t}:0-255",
                      hop_limit="equal:255")  # fmt: skip
            for t in _MLD_TYPES:
                r.add(FILTER6, f"firewall6: multicast listeners {t} from link-local",
                      chain=chain, action="accept", protocol="icmpv6",
                      icmp_options=f"{t}:0-255", src_address=LINK_LOCAL6)  # fmt: skip
        r.add(FILTER6, "firewall6: established, related", chain=chain, action="accept",
              connection_state=_ESTABLISHED)  # fmt: skip
        r.add(FILTER6, "firewall6: packet too big", chain=chain, action="accept",
              protocol="icmpv6", icmp_options=_PACKET_TOO_BIG)  # fmt: skip
        r.add(FILTER6, "firewall6: invalid", chain=chain, action="drop",
              connection_state="invalid")  # fmt: skip
        r.add(FILTER6, "firewall6: echo requests, rate-limited", chain=chain, action="accept",
              protocol="icmpv6", icmp_options=_ECHO_REQUEST, limit=limit)  # fmt: skip
        if chain == "input":
            r.add(FILTER6, "firewall6: DHCPv6 client", chain=chain, action="accept",
                  protocol="udp", src_address=LINK_LOCAL6, src_port=str(DHCPV6_SERVER_PORT),
                  dst_port=str(DHCPV6_CLIENT_PORT))  # fmt: skip
            for g in d.guests:
                item = f"lans[{g.slot - 1}] {g.lan} isolate"
                for proto in ("udp", "tcp"):
                    r.add(FILTER6, f"{item}: DNS", chain=chain, action="accept",
                          in_interface=g.interface, protocol=proto,
                          dst_port=str(DNS_PORT))  # fmt: skip
                r.add(FILTER6, f"{item}: nothing else of the router", chain=chain,
                      action="drop", in_interface=g.interface)  # fmt: skip
            openings(r, cfg, d.openings, section=FILTER6, family=6)
            r.add(FILTER6, "firewall6: nothing else from the uplinks", chain=chain,
                  action="drop", in_interface_list=WAN_LIST)  # fmt: skip
        else:
            for g in d.guests:
                item = f"lans[{g.slot - 1}] {g.lan} isolate"
                r.add(FILTER6, f"{item}: the internet", chain=chain, action="accept",
                      in_interface=g.interface, out_interface_list=WAN_LIST)  # fmt: skip
                r.add(FILTER6, f"{item}: nothing else", chain=chain, action="drop",
                      in_interface=g.interface)  # fmt: skip
            r.add(FILTER6, "firewall6: nothing new from the uplinks", chain=chain,
                  action="drop", connection_state="new",
                  in_interface_list=WAN_LIST)  # fmt: skip
    out.filter = r.rows
    out.notes.append(
        "firewall (IPv6): the /ipv6 firewall filter rules are added after the router's own; "
        "an earlier drop wins over the openings here"
    )
