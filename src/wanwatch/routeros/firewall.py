"""The firewall in RouterOS terms: ``/ip firewall filter`` as RouterOS's default
configuration (defconf) writes it, and ``/ip firewall nat`` dst-nat for the forwards.

The same firewall as the Linux backend's, from the same description
(linux/firewall.py ``describe``): established and related pass, invalid is dropped,
ICMP passes (fragmentation-needed always, echo requests rate-limited), and from the
uplinks nothing new reaches the router (input) or a LAN (forward, unless dst-nat'ed:
``connection-nat-state=!dstnat``, as defconf's last forward rule) except what the
config opens. One difference from defconf, as on Linux: the input chain drops what
comes from an interface list of the uplinks (``wanwatch-wans``), not everything that
is not from the LAN list, so an interface the config does not name (a management
port) stays reachable (docs/firewall.md). No FastTrack rule: it would skip the
mangle rules of loadbalance mode.

Pure: rows of (menu, properties as RouterOS reads them, the config item for the
comment) and notes for what RouterOS cannot be told; compile.py quotes and writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from wanwatch.config import Config
from wanwatch.config.dynamic import static_address
from wanwatch.config.fields import PortRange
from wanwatch.linux.firewall import (
    DHCP_SERVER_PORT,
    DNS_PORT,
    ECHO_BURST,
    ECHO_PER_SECOND,
    Description,
    Guest,
    Opening,
    PortForward,
    describe,
)

WAN_LIST = "wanwatch-wans"
FILTER, NAT = "ip firewall filter", "ip firewall nat"
# RouterOS's names of the protocols a config can open (manual: IP/Firewall/Filter, protocol).
_PROTOCOL = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "gre": "gre"}
_PROTOCOL |= {"esp": "ipsec-esp", "ah": "ipsec-ah"}
_PROTOCOL6 = {k: v for k, v in _PROTOCOL.items() if k != "icmp"} | {"icmpv6": "icmpv6"}
_ESTABLISHED = "established,related,untracked"  # defconf's first rule of each chain
_FRAG_NEEDED = "3:4"  # icmp-options type:code, RFC 1191


@dataclass(frozen=True)
class Row:
    section: str
    props: dict[str, str]  # RouterOS property -> value as written, unquoted
    item: str  # what the comment names after "wanwatch: "


@dataclass
class Rules:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, section: str, item: str, **props: str | None) -> None:
        kept = {k.replace("_", "-"): v for k, v in props.items() if v is not None}
        self.rows.append(Row(section, kept, item))


def firewall_rules(cfg: Config, version: int, *, ipv6: bool = False) -> Rules:
    """The filter, the interface list it needs and the forwards' dst-nat for ``cfg``;
    ``ipv6``: the export writes /ipv6 firewall rules too (ipv6.py), so IPv6 openings
    need no note."""
    d = describe(cfg)
    out = Rules()
    if not d.enabled and not d.forwards:
        return out
    out.add("interface list", "firewall: the uplinks", name=WAN_LIST)
    for i, w in enumerate(cfg.wans):
        out.add(
            "interface list member",
            f"wans[{i}] {w.name} is an uplink",
            list=WAN_LIST,
            interface=w.interface,
        )
    if d.enabled:
        _input(out, d, cfg, version)
        _forward(out, d, cfg)
        out.notes.append(
            "firewall: the filter rules are added after the router's own; an earlier drop "
            '(defconf\'s "drop all not coming from LAN") wins over the openings here: '
            "remove such rules or move these above them"
        )
    else:
        out.notes.append("firewall.enabled=false: no /ip firewall filter rules written")
    _dstnat(out, d, cfg)
    if not ipv6:
        _ipv6_notes(out, d)
    return out


def _input(out: Rules, d: Description, cfg: Config, version: int) -> None:
    out.add(FILTER, "firewall: established, related", chain="input", action="accept",
            connection_state=_ESTABLISHED)  # fmt: skip
    out.add(FILTER, "firewall: invalid", chain="input", action="drop", connection_state="invalid")
    out.add(FILTER, "firewall: path MTU discovery", chain="input", action="accept",
            protocol="icmp", icmp_options=_FRAG_NEEDED)  # fmt: skip
    limit = f"{ECHO_PER_SECOND},{ECHO_BURST}" + (":packet" if version == 7 else "")
    out.add(FILTER, "firewall: echo requests, rate-limited", chain="input", action="accept",
            protocol="icmp", icmp_options="8:0", limit=limit)  # fmt: skip
    for g in d.guests:
        _guest_input(out, g)
    openings(out, cfg, d.openings, section=FILTER, family=4)
    out.add(FILTER, "firewall: nothing else from the uplinks", chain="input", action="drop",
            in_interface_list=WAN_LIST)  # fmt: skip


def _guest_input(out: Rules, g: Guest) -> None:
    item = f"lans[{g.slot - 1}] {g.lan} isolate"
    for proto, port in (("udp", DHCP_SERVER_PORT), ("udp", DNS_PORT), ("tcp", DNS_PORT)):
        out.add(FILTER, f"{item}: DHCP and DNS", chain="input", action="accept",
                in_interface=g.interface, protocol=proto, dst_port=str(port))  # fmt: skip
    out.add(FILTER, f"{item}: ping", chain="input", action="accept", in_interface=g.interface,
            protocol="icmp")  # fmt: skip
    out.add(FILTER, f"{item}: nothing else of the router", chain="input", action="drop",
            in_interface=g.interface)  # fmt: skip


def _forward(out: Rules, d: Description, cfg: Config) -> None:
    out.add(FILTER, "firewall: established, related", chain="forward", action="accept",
            connection_state=_ESTABLISHED)  # fmt: skip
    out.add(FILTER, "firewall: invalid", chain="forward", action="drop",
            connection_state="invalid")  # fmt: skip
    segments = sorted({a.network for w in cfg.wans if (a := static_address(w)) is not None})
    for g in d.guests:
        item = f"lans[{g.slot - 1}] {g.lan} isolate"
        for net in segments:  # the uplinks' own segments: the LTE modem's, the ISP box's
            out.add(FILTER, f"{item}: not the uplinks' segments", chain="forward",
                    action="drop", in_interface=g.interface, dst_address=str(net))  # fmt: skip
        out.add(FILTER, f"{item}: the internet", chain="forward", action="accept",
                in_interface=g.interface, out_interface_list=WAN_LIST)  # fmt: skip
        out.add(FILTER, f"{item}: nothing else", chain="forward", action="drop",
                in_interface=g.interface)  # fmt: skip
        out.add(FILTER, f"{item}: nothing new in but a forward", chain="forward", action="drop",
                out_interface=g.interface, connection_nat_state="!dstnat")  # fmt: skip
    out.add(FILTER, "firewall: nothing new from the uplinks but a forward", chain="forward",
            action="drop", connection_state="new", connection_nat_state="!dstnat",
            in_interface_list=WAN_LIST)  # fmt: skip


def _dstnat(out: Rules, d: Description, cfg: Config) -> None:
    own = {w.name: a.ip for w in cfg.wans if (a := static_address(w)) is not None}
    hosting = {f.lan for f in d.forwards}
    for k, f in enumerate(d.forwards):
        item = f"forwards[{k}] {f.name}"
        for where in where_wans(f.wans, cfg):
            _dnat_rows(out, f, item, where | {"dst_address_type": "local"})
        for w in f.wans:  # hairpin: a LAN client using an uplink's own address
            if w in own:
                where = {"in_interface_list": f"!{WAN_LIST}", "dst_address": str(own[w])}
                _dnat_rows(out, f, f"{item} hairpin via {w}", where)
    for j, lan in enumerate(cfg.lans):
        if lan.name in hosting and lan.address is not None:
            out.add(NAT, f"lans[{j}] {lan.name} hairpin: the reply comes back to the router",
                    chain="srcnat", action="masquerade", src_address=str(lan.address.network),
                    out_interface=lan.interface, connection_nat_state="dstnat")  # fmt: skip


def _dnat_rows(out: Rules, f: PortForward, item: str, where: dict[str, str]) -> None:
    sources: list[str | None] = [str(n) for n in f.sources]  # IPv4 (config/model.py)
    for src in sources or [None]:
        for proto in f.protocols:
            for port, to_port in _port_pairs(f):
                out.add(
                    NAT,
                    item,
                    chain="dstnat",
                    action="dst-nat",
                    **where,
                    protocol=proto,
                    dst_port=str(port),
                    src_address=src,
                    to_addresses=str(f.to),
                    to_ports=None if to_port == port else str(to_port),
                )


def _port_pairs(f: PortForward) -> Iterator[tuple[PortRange, PortRange]]:
    """The forward's ports and where they go. RouterOS's to-ports range is a pool to pick
    from, not a 1:1 map (manual: IP/Firewall/NAT, to-ports), so a shifted range is one
    rule per port; the config check bounds it (config/model.py)."""
    if f.to_port == f.port or f.port.size == 1:
        yield f.port, f.to_port
        return
    for k in range(f.port.size):
        a, b = f.port.first + k, f.to_port.first + k
        yield PortRange(a, a), PortRange(b, b)


def where_wans(wans: tuple[str, ...], cfg: Config) -> list[dict[str, str]]:
    """In-interface matchers for ``wans`` (Rules.add's keywords): the uplinks' list when it
    is all of them."""
    if set(wans) == {w.name for w in cfg.wans}:
        return [{"in_interface_list": WAN_LIST}]
    return [{"in_interface": w.interface} for w in cfg.wans if w.name in wans]


def ports(ranges: tuple[PortRange, ...]) -> str | None:
    return ",".join(str(p) for p in ranges) or None


def openings(
    out: Rules, cfg: Config, allow: tuple[Opening, ...], *, section: str, family: int
) -> None:
    """``firewall.allow`` in the input chain of one family's filter (``section``): an
    opening without ``from`` in both, one with ``from`` where it names prefixes of
    that family (an IPv4-only export notes the IPv6 ones: _ipv6_notes)."""
    names = _PROTOCOL if family == 4 else _PROTOCOL6
    for k, o in enumerate(allow):
        sources = [str(n) for n in o.sources if n.version == family] if o.sources else [None]
        for src in sources:
            for proto in o.protocols:
                if proto not in names:
                    continue  # the other family's ICMP
                for where in where_wans(o.wans, cfg):
                    out.add(
                        section,
                        f"firewall.allow[{k}] {o.name}",
                        chain="input",
                        action="accept",
                        **where,
                        protocol=names[proto],
                        dst_port=ports(o.ports),
                        src_address=src,
                    )


def _ipv6_notes(out: Rules, d: Description) -> None:
    for o in d.openings:
        v6 = [str(n) for n in o.sources if n.version == 6]
        if v6 or "icmpv6" in o.protocols:
            what = ", ".join(v6) if v6 else "icmpv6"
            out.notes.append(
                f"firewall.allow {o.name}: {what} is IPv6: no /ipv6 firewall rules are written"
            )
