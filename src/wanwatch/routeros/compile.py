"""Compile the office config to a RouterOS script (v7 or v6). A pure text renderer.

(Over 600 lines: one renderer per RouterOS menu, written top to bottom as the
script reads; the golden files in tests/golden/routeros are its specification.)

What it writes, per the RouterOS manual:

* ``/ip address`` per uplink and LAN; ``/ip pool``, ``/ip dhcp-server`` (with
  ``lease-time``), ``/ip dhcp-server network`` (``gateway`` = the LAN address,
  ``dns-server`` = ``dhcp.dns`` or the router) and static leases per LAN;
  ``/ip dns set servers=... allow-remote-requests=yes``; a srcnat masquerade per
  uplink.
* Failover by recursive routes ("Failover (WAN Backup)"): each probe target gets a
  ``scope=10`` host route through its uplink's gateway, and a default route through
  it with ``check-gateway=ping target-scope=11``, so default routes (scope 30) can
  never resolve a target and every target of every uplink counts. Distances are
  consecutive in (priority, config order, target order): the primary's targets
  first, so primary < backup always holds, and the two targets of one uplink get
  distinct distances (v6 would pick one of two equal routes arbitrarily and v7
  would make them ECMP; distinct values make both versions deterministic: the
  second target takes over when the first falls silent).
* Netwatch per probe target whose scripts log the configured hooks.
* The firewall (firewall.py): defconf-style ``/ip firewall filter`` rules, an
  interface list of the uplinks, and ``/ip firewall nat`` dst-nat per port
  forward with hairpin NAT.
* loadbalance: PCC mangle rules from the weights, a routing table per uplink
  (v7 ``/routing table add ... fib``; v6 routing marks) holding the uplink's
  recursive routes and, at higher distances, every other uplink's as fallback;
  connections arriving on an uplink are marked so replies leave through it.
* IPv6 (ipv6.py): ``/ipv6 address`` on the uplinks and (advertised) on the LANs,
  a prefix-only ``/ipv6 dhcp-client`` per ``dhcp6`` uplink,
  router advertisements accepted for ``address6: auto``, ``/ipv6 nd`` per LAN, the
  same recursive checked routes for IPv6 targets, NAT66 (v7), the IPv6 firewall and
  Netwatch of IPv6 targets.
* rules (rules.py): per rule a mangle connection mark, a routing table with the
  distance ladder of its ``via`` uplinks (PCC inside the rule for loadbalance) and a
  routing rule for ``when_down`` (``lookup-only-in-table`` for block); on RouterOS 7
  the same in ``/ipv6 firewall mangle`` and ``/ipv6 route`` for the rules' IPv6 side.

Every object carries ``comment="wanwatch: <config item> ..."``, and the script
starts by removing the objects whose comment starts with ``wanwatch: ``, so
importing a newer export replaces exactly what wanwatch owns. Anything in the
config RouterOS cannot express is returned in ``notes`` and written as ``#``
lines at the top.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import PurePath
from urllib.parse import urlsplit

from wanwatch import __version__
from wanwatch.config import Config, Wan, format_duration
from wanwatch.config.dynamic import kind, static_address
from wanwatch.config.fields import AUTO, IpAddress
from wanwatch.config.ipv6 import ipv4_only
from wanwatch.config.model import DnsTarget, HttpTarget, IcmpTarget, Target, TcpTarget
from wanwatch.engine.buckets import allocate_buckets
from wanwatch.errors import RouterOSError
from wanwatch.routeros.firewall import Row, firewall_rules
from wanwatch.routeros.ipv6 import ipv6_side
from wanwatch.routeros.rules import RuleTable, check_names, compile_rules

OWNED = "wanwatch: "
HOST_SCOPE = 10
TARGET_SCOPE = 11
MAX_DISTANCE = 255
# check-gateway pings every 10 s and fails a gateway after two misses in a row
# (MikroTik staff, forum thread "check-gateway question"); not configurable.
CHECK_GATEWAY_INTERVAL = 10.0
CHECK_GATEWAY_MISSES = 2

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/,-@%")


@dataclass(frozen=True)
class Compiled:
    script: str
    notes: tuple[str, ...]  # what RouterOS cannot express; also at the top of script


def quote(text: str) -> str:
    """A RouterOS double-quoted string. ``$`` and ``?`` are escaped too: the first
    starts a variable, the second opens help when pasted into a terminal."""
    out = ['"']
    for ch in text:
        if ch in '"\\$?':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) > 0x7E:
            out += [f"\\{b:02X}" for b in ch.encode()]
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def value(text: str) -> str:
    """A property value: bare when RouterOS reads it unquoted, else quoted."""
    if text and all(c in _SAFE for c in text):
        return text
    return quote(text)


def ros_duration(seconds: float) -> str:
    """RouterOS time syntax: ``1d``, ``1h30m``, ``500ms``."""
    ms = round(seconds * 1000)
    if ms % 1000:
        whole, ms = divmod(ms, 1000)
        head = ros_duration(whole) if whole else ""
        return f"{head}{ms}ms"
    rest = ms // 1000
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, rest = divmod(rest, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"


class _Script:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.section = ""

    def add(self, section: str, **props: str | None) -> None:
        if section != self.section:
            self.lines.append(f"/{section}")
            self.section = section
        words = []
        for k, v in props.items():
            if v is None:
                continue
            key = k.rstrip("_").replace("_", "-")
            words.append(key if v == "" else f"{key}={v}")
        self.lines.append("add " + " ".join(words))

    def raw(self, line: str) -> None:
        self.lines.append(line)
        self.section = ""


def _matcher(text: str) -> str:
    """A firewall matcher's value: a negation stays bare, as RouterOS's own defconf
    writes it (``in-interface-list=!LAN``)."""
    if text.startswith("!") and value(text[1:]) == text[1:]:
        return text
    return value(text)


def _owned(item: str) -> str:
    return quote(OWNED + item)


def _ranked(cfg: Config) -> list[tuple[int, Wan]]:
    return sorted(enumerate(cfg.wans), key=lambda p: (p[1].priority, p[0]))


def _table(wan: Wan) -> str:
    """The uplink's routing table (v7) / routing mark (v6), also its connection mark."""
    return f"wanwatch-{wan.name}"


def compile_config(cfg: Config, version: int = 7) -> Compiled:
    """The RouterOS script for ``cfg``; RouterOSError if it cannot be expressed at all."""
    if version not in (6, 7):
        raise RouterOSError(f"RouterOS version must be 6 or 7, not {version}")
    v6 = ipv6_side(cfg, version, _ranked(cfg))
    full, cfg = cfg, ipv4_only(cfg)
    fw = firewall_rules(cfg, version, ipv6=bool(v6.filter))
    rr = compile_rules(full, version)
    notes = _notes(cfg, version, full) + fw.notes + rr.notes + v6.notes
    if version == 6 and any(w.probe.family(6) for w in full.wans):
        notes.append("IPv6 probe targets: RouterOS 6 Netwatch pings IPv4 hosts only")
    lb = cfg.policy.mode == "loadbalance"
    check_names(cfg, [_table(w) for w in cfg.wans if lb] + [t.name for t in rr.tables])
    s = _Script()
    _removals(
        s,
        version,
        dhcp=any(kind(w) == "dhcp" for w in cfg.wans),
        rules=bool(rr.tables),
        dns=bool(rr.dns),
        ipv6=not v6.empty,
        rules6=bool(rr.mangle6),
    )
    _addresses(s, cfg)
    dhcp_clients(s, cfg)
    _dhcp(s, cfg)
    _dns(s, cfg)
    _nat(s, cfg)
    _rows(s, fw.rows)
    _rows(s, rr.lists)
    if lb or rr.tables:
        _local_list(s, cfg, lb)
    if version == 7:
        for i, w in enumerate(cfg.wans):
            if lb:
                s.add(
                    "routing table",
                    name=value(_table(w)),
                    fib="",
                    comment=_owned(f"wans[{i}] {w.name} routing table"),
                )
        for t in rr.tables:
            s.add("routing table", name=value(t.name), fib="", comment=_owned(f"{t.item} table"))
    _routes(s, cfg, version, lb)
    _rule_routes(s, cfg, version, rr.tables)
    _rows(s, rr.mangle)
    if lb:
        _mangle(s, cfg)
    _rows(s, rr.routing_rules)
    _rows(s, rr.dns)
    _netwatch(s, full, version, 4)
    _rows(s, v6.addresses + v6.dhcp_clients)
    for line in v6.settings:
        s.raw(line)
    _rows(s, v6.nd)
    _rows(s, v6.nat)
    _rows(s, v6.filter + rr.lists6 + rr.mangle6)
    _rows(s, v6.routes + rr.routes6)
    if version == 7:
        _netwatch(s, full, 7, 6)
    head = [
        f"# wanwatch {__version__}: RouterOS {version} script for {PurePath(cfg.source).name} "
        f"(policy: {cfg.policy.mode})",
        "# Paste into a terminal or /import it. Every object wanwatch owns has a comment",
        f'# starting with "{OWNED}"; the first lines remove those, so importing a newer',
        "# export replaces exactly them and nothing else. /ip dns is a setting, not an",
        "# object: its servers are overwritten. Addresses are removed and re-added, so",
        "# run it from the console (or /import it) rather than over a wanwatch address.",
    ]
    if version == 7:
        head.append("# Needs RouterOS 7.4 or later (Netwatch type=icmp with thr-avg).")
    if notes:
        head.append("#")
        head.append("# Not expressible in RouterOS (reported, not dropped):")
        head += [f"#   {n}" for n in notes]
    return Compiled("\n".join([*head, *s.lines]) + "\n", tuple(notes))


def _rows(s: _Script, rows: list[Row]) -> None:
    for row in rows:
        props = {k.replace("-", "_"): _matcher(v) for k, v in row.props.items()}
        s.add(row.section, **props, comment=_owned(row.item))


def _removals(
    s: _Script, version: int, *, dhcp: bool, rules: bool, dns: bool, ipv6: bool, rules6: bool
) -> None:
    sections = ["tool netwatch", "ip firewall filter", "ip firewall mangle"]
    sections += ["ip firewall address-list", "ip firewall nat"]
    if ipv6:  # before the interface list its filter names, the routes before addresses
        sections += ["ipv6 firewall filter", "ipv6 firewall nat"]
        if rules6:
            sections += ["ipv6 firewall mangle", "ipv6 firewall address-list"]
        sections += ["ipv6 route", "ipv6 nd"]
        sections += ["ipv6 address", "ipv6 dhcp-client"]
    sections += ["interface list member", "interface list", "ip route"]
    if dhcp:
        sections.append("ip dhcp-client")
    if rules:
        # Before the tables: RouterOS keeps a table a rule still names.
        sections.append("routing rule" if version == 7 else "ip route rule")
    if dns:
        sections.append("ip dns static")
    if version == 7:
        sections.append("routing table")
    sections += [
        "ip dhcp-server lease",
        "ip dhcp-server network",
        "ip dhcp-server",
        "ip pool",
        "ip address",
    ]
    for sec in sections:
        s.raw(f'/{sec} remove [find where comment~"^{OWNED}"]')


def _addresses(s: _Script, cfg: Config) -> None:
    for i, w in enumerate(cfg.wans):
        if (address := static_address(w)) is not None:
            s.add(
                "ip address",
                address=str(address),
                interface=value(w.interface),
                comment=_owned(f"wans[{i}] {w.name} address"),
            )
    for i, lan in enumerate(cfg.lans):
        if lan.address is not None:
            s.add(
                "ip address",
                address=str(lan.address),
                interface=value(lan.interface),
                comment=_owned(f"lans[{i}] {lan.name} address"),
            )


def _dhcp(s: _Script, cfg: Config) -> None:
    served = [
        (i, lan, lan.dhcp, lan.address)
        for i, lan in enumerate(cfg.lans)
        if lan.dhcp is not None and lan.address is not None
    ]
    for i, lan, dhcp, _ in served:
        lo, hi = dhcp.range
        s.add(
            "ip pool",
            name=value(f"wanwatch-{lan.name}"),
            ranges=f"{lo}-{hi}",
            comment=_owned(f"lans[{i}].dhcp.range {lan.name}"),
        )
    for i, lan, dhcp, _ in served:
        s.add(
            "ip dhcp-server",
            name=value(f"wanwatch-{lan.name}"),
            interface=value(lan.interface),
            address_pool=value(f"wanwatch-{lan.name}"),
            lease_time=ros_duration(dhcp.lease_time),
            # v6 creates a DHCP server disabled unless told otherwise.
            disabled="no",
            comment=_owned(f"lans[{i}].dhcp {lan.name}"),
        )
    for i, lan, dhcp, address in served:
        dns = dhcp.dns or (address.ip,)
        s.add(
            "ip dhcp-server network",
            address=str(address.network),
            gateway=str(address.ip),
            dns_server=",".join(str(d) for d in dns),
            domain=value(cfg.dns.domain) if cfg.dns.domain else None,
            comment=_owned(f"lans[{i}].dhcp {lan.name} network"),
        )
    for i, lan, dhcp, _ in served:
        for k, lease in enumerate(dhcp.static):
            host = f" host {lease.hostname}" if lease.hostname else ""
            s.add(
                "ip dhcp-server lease",
                address=str(lease.address),
                mac_address=lease.mac.upper(),
                server=value(f"wanwatch-{lan.name}"),
                comment=_owned(f"lans[{i}].dhcp.static[{k}]{host}"),
            )


def _dns(s: _Script, cfg: Config) -> None:
    servers = ",".join(str(u) for u in cfg.dns.upstream)
    words = [f"servers={servers}"] if servers else []
    # The router answers its LANs' queries whenever a LAN is told to ask it.
    asks_router = any(lan.dhcp and lan.dhcp.dns is None for lan in cfg.lans)
    if servers or asks_router:
        words.append("allow-remote-requests=yes")
        s.raw("/ip dns set " + " ".join(words))


def _nat(s: _Script, cfg: Config) -> None:
    if not cfg.nat.masquerade:
        return
    for i, w in enumerate(cfg.wans):
        s.add(
            "ip firewall nat",
            chain="srcnat",
            out_interface=value(w.interface),
            action="masquerade",
            comment=_owned(f"nat.masquerade wans[{i}] {w.name}"),
        )


def _local_list(s: _Script, cfg: Config, lb: bool) -> None:
    """Destinations that must never be balanced or routed by a rule: our own subnets."""
    members = [(f"wans[{i}] {w.name}", static_address(w)) for i, w in enumerate(cfg.wans)]
    members += [(f"lans[{i}] {lan.name}", lan.address) for i, lan in enumerate(cfg.lans)]
    for item, addr in members:
        if addr is not None:
            s.add(
                "ip firewall address-list",
                list="wanwatch-local",
                address=str(addr.network),
                comment=_owned(f"{item} subnet " + ("not balanced" if lb else "stays local")),
            )


def _gw(w: Wan) -> str:
    if w.gateway is None:  # DHCP (set by its script) or point-to-point: the interface
        return w.interface
    # Without an address in the config the connected subnet is unknown to the
    # script; %interface makes RouterOS take the gateway as on-link there.
    return str(w.gateway) if w.address is not None else f"{w.gateway}%{w.interface}"


def _routes(s: _Script, cfg: Config, version: int, lb: bool) -> None:
    ranked = _ranked(cfg)
    for i, w in ranked:
        for t, target in enumerate(w.probe.addresses):
            s.add(
                "ip route",
                dst_address=f"{target}/32",
                gateway=value(_gw(w)),
                scope=str(HOST_SCOPE),
                # A DHCP uplink's pin waits for its lease: the client's script sets it.
                disabled="yes" if kind(w) == "dhcp" else None,
                comment=_owned(f"wans[{i}].probe.targets[{t}] pins {target} to {w.name}"),
            )
    d = 0
    for i, w in ranked:
        for target in w.probe.addresses:
            d += 1
            _default(
                s, str(target), d, None, version=version, item=f"wans[{i}] {w.name} via {target}"
            )
    if not lb:
        return
    for i, w in enumerate(cfg.wans):
        table = _table(w)
        order = [(i, w)] + [(j, o) for j, o in ranked if j != i]
        d = 0
        for j, o in order:
            for target in o.probe.addresses:
                d += 1
                role = f"via {target}" if j == i else f"fallback via wans[{j}] {o.name} {target}"
                _default(
                    s,
                    str(target),
                    d,
                    table,
                    version=version,
                    item=f"wans[{i}] {w.name} table {role}",
                )


def _rule_routes(s: _Script, cfg: Config, version: int, tables: list[RuleTable]) -> None:
    """Each rule table's ladder: its uplinks' recursive checked routes, in ladder order."""
    index = {w.name: i for i, w in enumerate(cfg.wans)}
    for t in tables:
        d = 0
        for name in t.ladder:
            w = cfg.wans[index[name]]
            for target in w.probe.addresses:
                d += 1
                _default(
                    s,
                    str(target),
                    d,
                    t.name,
                    version=version,
                    item=f"{t.item} table via wans[{index[name]}] {w.name} {target}",
                )


def _default(
    s: _Script, target: str, distance: int, table: str | None, *, version: int, item: str
) -> None:
    if distance > MAX_DISTANCE:
        raise RouterOSError(
            f"{item}: needs distance {distance}; RouterOS allows at most {MAX_DISTANCE} "
            "(too many probe targets)"
        )
    gateway = target
    table_prop: dict[str, str | None] = {}
    if table is not None:
        if version == 7:
            # Resolve the target in main, where its pin lives (v7 Policy Routing:
            # gateway=...@main routing-table=...).
            gateway = f"{target}@main"
            table_prop["routing_table"] = value(table)
        else:
            table_prop["routing_mark"] = value(table)
    s.add(
        "ip route",
        dst_address="0.0.0.0/0",
        gateway=value(gateway),
        check_gateway="ping",
        distance=str(distance),
        target_scope=str(TARGET_SCOPE),
        **table_prop,
        comment=_owned(item),
    )


def _mangle(s: _Script, cfg: Config) -> None:
    marks = [_table(w) for w in cfg.wans]
    for i, w in enumerate(cfg.wans):
        s.add(
            "ip firewall mangle",
            chain="prerouting",
            in_interface=value(w.interface),
            connection_mark="no-mark",
            action="mark-connection",
            new_connection_mark=value(marks[i]),
            passthrough="yes",
            comment=_owned(f"wans[{i}] {w.name} inbound: replies leave through it"),
        )
    # The same buckets as the Linux backend's nft map: PCC's hash picks bucket b of n.
    index = {w.name: i for i, w in enumerate(cfg.wans)}
    buckets = [index[n] for n in allocate_buckets([(w.name, w.weight) for w in cfg.wans])]
    cls = cfg.policy.classifier
    for li, lan in enumerate(cfg.lans):
        for b, wi in enumerate(buckets):
            s.add(
                "ip firewall mangle",
                chain="prerouting",
                in_interface=value(lan.interface),
                connection_mark="no-mark",
                connection_state="new",
                dst_address_type="!local",
                dst_address_list="!wanwatch-local",
                per_connection_classifier=f"{cls}:{len(buckets)}/{b}",
                action="mark-connection",
                new_connection_mark=value(marks[wi]),
                passthrough="yes",
                comment=_owned(
                    f"policy.mode=loadbalance lans[{li}] {lan.name} bucket {b}/{len(buckets)}"
                    f" -> wans[{wi}] {cfg.wans[wi].name} (weight {cfg.wans[wi].weight})"
                ),
            )
        for wi, mark in enumerate(marks):
            s.add(
                "ip firewall mangle",
                chain="prerouting",
                in_interface=value(lan.interface),
                connection_mark=value(mark),
                dst_address_list="!wanwatch-local",
                action="mark-routing",
                new_routing_mark=value(mark),
                passthrough="no",
                comment=_owned(f"lans[{li}] {lan.name} -> wans[{wi}] {cfg.wans[wi].name}"),
            )
    for wi, mark in enumerate(marks):
        s.add(
            "ip firewall mangle",
            chain="output",
            connection_mark=value(mark),
            dst_address_list="!wanwatch-local",
            action="mark-routing",
            new_routing_mark=value(mark),
            passthrough="no",
            comment=_owned(f"wans[{wi}] {cfg.wans[wi].name} router's own replies"),
        )


def _log_script(message: str) -> str:
    return quote(f":log info {quote(message)}")


def _hook_text(argv: tuple[str, ...] | None, wan: Wan) -> str:
    if argv is None:
        return ""
    return " (hook: " + " ".join(a.replace("{wan}", wan.name) for a in argv) + ")"


def _netwatch(s: _Script, full: Config, version: int, family: int) -> None:
    """One Netwatch entry per target of ``family`` it can ask: icmp; tcp as tcp-conn
    and http as http-get (RouterOS 7.4+, the first with probe types); dns as type=dns
    (a later 7.x); what Netwatch cannot check is in the notes (:func:`_probe_notes`).
    ``full`` keeps both families, so ``targets[t]`` is the target's index in the config."""
    for i, w in _ranked(full):
        for t, target in enumerate(w.probe.targets):
            if target.address.version == family and _watched(w, target, version):
                _netwatch_entry(s, full, w, target, at=(i, t), version=version)


def _netwatch_entry(
    s: _Script, cfg: Config, w: Wan, target: Target, *, at: tuple[int, int], version: int
) -> None:
    i, t = at
    mon = cfg.monitor_for(w)
    kind = _netwatch_type(target, version)
    if kind is None:
        return
    where = target.label
    down = f"wanwatch: uplink {w.name} target {where} down"
    up = f"wanwatch: uplink {w.name} target {where} up"
    props: dict[str, str | None] = {"host": str(target.address)}
    if version == 7:
        props["type"] = kind
    if isinstance(target, DnsTarget):
        # type=dns asks dns-server for host, a name (manual, Netwatch); the probe
        # asks for A records only (probe/dns.py).
        props["host"] = value(target.name)
        props["dns_server"] = str(target.address)
        props["record_type"] = "A"
    elif isinstance(target, TcpTarget):
        props["port"] = str(target.port)
    elif isinstance(target, HttpTarget):
        props["port"] = str(urlsplit(target.url).port or 80)
    props["interval"] = ros_duration(target.own_interval() or mon.interval)
    if mon.timeout is not None:
        props["timeout"] = ros_duration(mon.timeout)
    if version == 7 and kind == "icmp":
        props["thr_avg"] = ros_duration(mon.degraded_rtt)
    props["down_script"] = _log_script(down + _hook_text(cfg.hooks.on_down, w))
    props["up_script"] = _log_script(up + _hook_text(cfg.hooks.on_up, w))
    props["comment"] = _owned(f"wans[{i}].probe.targets[{t}] {w.name} {where}")
    s.add("tool netwatch", **props)


def _watched(w: Wan, target: Target, version: int) -> bool:
    """Whether Netwatch may watch ``target``'s address through ``w``: v7 hosts may be
    IPv6 (manual, Netwatch), v6 pings IPv4 only, and an ``address6: auto`` uplink's IPv6
    targets are not pinned to it (ipv6.py's note)."""
    if target.address.version == 4:
        return True
    return version == 7 and w.address6 != AUTO


def _netwatch_type(target: Target, version: int) -> str | None:
    """The Netwatch type that asks ``target`` (None: Netwatch cannot)."""
    if isinstance(target, IcmpTarget):
        return "icmp"
    if version == 7 and isinstance(target, TcpTarget):
        return "tcp-conn"
    if version == 7 and isinstance(target, HttpTarget):
        return "http-get"
    if version == 7 and isinstance(target, DnsTarget):
        return "dns"
    return None


def _probe_notes(full: Config, version: int) -> list[str]:
    """What Netwatch cannot do of the probe methods (docs/probes.md), for the targets of
    both families (``full``: indices as in the config)."""
    out = []
    for i, w in enumerate(full.wans):
        for t, target in enumerate(w.probe.targets):
            item = f"wans[{i}].probe.targets[{t}] ({target.label})"
            if _netwatch_type(target, version) is None:
                out.append(f"{item}: no Netwatch entry (RouterOS 6 Netwatch only pings)")
            elif not _watched(w, target, version):
                continue  # no entry at all: the IPv6 notes say why
            elif isinstance(target, HttpTarget):
                out.append(
                    f"{item}: http-get asks the address without the URL's path and Host, "
                    "and counts a captive portal's redirect or page as up; "
                    f"wans[{i}].probe.portal={w.probe.portal} has no RouterOS equivalent"
                )
            elif isinstance(target, DnsTarget):
                out.append(_dns_note(item, target))
        if w.metered:
            out.append(f"wans[{i}].metered: Netwatch probes a standby at its full interval")
    return out


def _dns_note(item: str, target: DnsTarget) -> str:
    """type=dns only "checks for response" (manual, Netwatch) and has no property to
    match an answer; wanwatch's probe counts a reply only as probe/dns.py's answered()."""
    want = f" whose A records hold answer={target.answer}" if target.answer else ""
    return (
        f"{item}: type=dns needs a RouterOS 7 release whose Netwatch has it (the 7.4-era "
        "manual lists none); Netwatch checks only that the server responds and cannot "
        f"match an answer, while wanwatch counts only a NOERROR reply{want}, not SERVFAIL, "
        "NXDOMAIN or REFUSED"
    )


# --------------------------------------------------------------------------- notes


def _notes(cfg: Config, version: int, full: Config) -> list[str]:
    out: list[str] = []
    m = cfg.monitor
    fd = format_duration
    out.append(
        f"monitor.interval={fd(m.interval)}, down_after={m.down_after}, "
        f"up_after={m.up_after}: RouterOS check-gateway pings every "
        f"{fd(CHECK_GATEWAY_INTERVAL)} and drops a route after {CHECK_GATEWAY_MISSES} "
        "misses in a row (about 20 s), restoring it on the next answer; only the "
        "Netwatch log entries use the interval"
    )
    out.append(
        f"monitor.fast_interval={fd(m.fast_interval)}: no faster probing while a loss "
        "is unconfirmed"
    )
    out.append(
        f"monitor.hold={fd(m.hold)}, max_hold={fd(m.max_hold)}: RouterOS fails back as "
        "soon as a check answers again (no hold, no flap damping)"
    )
    if m.timeout is None:
        out.append(
            f"monitor.timeout unset (RTT-derived, min_timeout={fd(m.min_timeout)}): "
            "RouterOS timeouts are fixed"
        )
    out.append(
        f"monitor.degraded_loss={m.degraded_loss:g}%, loss_window={fd(m.loss_window)}: "
        "RouterOS has no degraded state"
        + (
            ""
            if version == 7
            else f"; degraded_rtt={fd(m.degraded_rtt)}: v6 Netwatch has no thr-avg"
        )
    )
    for i, w in enumerate(cfg.wans):
        over = w.probe.overrides()
        if over:
            keys = ", ".join(f"{k}={_fmt(k, v)}" for k, v in sorted(over.items()))
            out.append(
                f"wans[{i}].probe {keys}: per-uplink values reach only its Netwatch "
                "entries, not RouterOS's route checks"
            )
        out += dynamic_notes(cfg, i, w)
    out += _probe_notes(full, version)
    hooks = cfg.hooks
    for key in ("on_down", "on_up"):
        argv = getattr(hooks, key)
        if argv is not None:
            out.append(
                f"hooks.{key}={json.dumps(list(argv))}: RouterOS cannot run a command; "
                f"each Netwatch "
                f"{key[3:]}-script logs it with :log info instead (per probe target)"
            )
    for key in ("on_failover", "on_failback"):
        if getattr(hooks, key) is not None:
            out.append(f"hooks.{key}: RouterOS has no event when the active route changes")
    if hooks.on_portal is not None:
        out.append("hooks.on_portal: Netwatch cannot tell a captive portal from an answer")
    if any(getattr(hooks, k) is not None for k in ("on_down", "on_up", "on_failover")):
        out.append(f"hooks.timeout={fd(hooks.timeout)}: Netwatch scripts have no timeout")
    ranked = _ranked(cfg)
    for (_, a), (_, b) in itertools.pairwise(ranked):
        if a.priority == b.priority and cfg.policy.mode == "failover":
            out.append(
                f"wans {a.name} and {b.name} share priority {a.priority}: RouterOS "
                "distances order them by config order"
            )
    for i, lan in enumerate(cfg.lans):
        if lan.address is None:
            extra = " and no DHCP server (it needs the LAN's subnet)" if lan.dhcp else ""
            out.append(f"lans[{i}] {lan.name} has no address: no /ip address{extra}")
        if lan.dhcp is not None:
            secs = lan.dhcp.lease_time
            if secs != round(secs):
                out.append(f"lans[{i}].dhcp.lease_time={secs}s: rounded to {ros_duration(secs)}")
            for k, lease in enumerate(lan.dhcp.static):
                if lease.hostname:
                    out.append(
                        f"lans[{i}].dhcp.static[{k}].hostname={lease.hostname}: a RouterOS "
                        "static lease has no host name; kept in its comment only"
                    )
    if not cfg.nat.masquerade:
        out.append("nat.masquerade=false: no srcnat rules written")
    out += _pinned_dns(cfg)
    if cfg.policy.mode == "loadbalance":
        out.append(
            "policy.mode=loadbalance: a FastTrack rule (RouterOS defconf) skips mangle for "
            "established connections; exempt marked ones (connection-mark=no-mark on it)"
        )
    if cfg.dns.domain is None and not cfg.dns.upstream:
        out.append("dns.upstream empty: /ip dns keeps the servers RouterOS already has")
    return out


def _pinned_dns(cfg: Config) -> list[str]:
    """DNS servers that are probe targets are reachable through one uplink only."""
    owner: dict[IpAddress, str] = {}
    for w in cfg.wans:
        for t in w.probe.addresses:
            owner[t] = w.name
    out: list[str] = []
    pinned = [a for a in cfg.dns.upstream if a in owner]
    if pinned:
        out.append(
            "dns.upstream "
            + ", ".join(f"{a} (pinned to {owner[a]})" for a in pinned)
            + ": a scope=10 host route sends a probe target through its uplink only, "
            "so the router's DNS loses it while that uplink is down"
        )
    for i, lan in enumerate(cfg.lans):
        told = lan.dhcp.dns if lan.dhcp is not None else None
        hit = [a for a in told or () if a in owner]
        if hit:
            out.append(
                f"lans[{i}].dhcp.dns "
                + ", ".join(f"{a} (pinned to {owner[a]})" for a in hit)
                + ": each answers only while its uplink is up"
            )
    return out


_DURATION_KEYS = frozenset(
    {"interval", "hold", "max_hold", "timeout", "min_timeout", "fast_interval"}
    | {"degraded_rtt", "loss_window"}
)


def _fmt(key: str, v: object) -> str:
    if key in _DURATION_KEYS and isinstance(v, float):
        return format_duration(v)
    return f"{v:g}" if isinstance(v, float) else str(v)


# --------------------------------------------------------------------------- dynamic uplinks


def dhcp_clients(s: _Script, cfg: Config) -> None:
    """``address: dhcp``: a DHCP client per uplink whose script re-points the probe pins.

    RouterOS runs a dhcp-client's ``script`` on every bind and unbind, with
    ``$bound`` and ``$"gateway-address"`` set (manual: IP/DHCP Client,
    Properties: script). Its own default route (``add-default-route``) comes
    after every checked recursive route, in priority order: a last resort that
    cannot see a silent blackhole.
    """
    checked = sum(len(w.probe.addresses) for w in cfg.wans)
    for rank, (i, w) in enumerate(_ranked(cfg)):
        if kind(w) != "dhcp":
            continue
        pins = " ".join(
            f'/ip route set [find where dst-address="{t}/32" and comment~"^{OWNED}"] '
            "gateway=$gw disabled=no;"
            for t in w.probe.addresses
        )
        script = f':if ($bound=1) do={{:local gw $"gateway-address"; {pins}}}'
        s.add(
            "ip dhcp-client",
            interface=value(w.interface),
            add_default_route="yes",
            default_route_distance=str(checked + 1 + rank),
            use_peer_dns="no",
            use_peer_ntp="no",
            script=quote(script),  # stored as written: its $ and quotes escaped once
            comment=_owned(f"wans[{i}] {w.name} address: dhcp"),
        )


def dynamic_notes(cfg: Config, i: int, w: Wan) -> list[str]:
    k = kind(w)
    if k == "dhcp":
        return [
            f"wans[{i}] {w.name} address: dhcp: /ip dhcp-client on {w.interface}; its "
            "script re-points the probe pins at each new gateway (disabled until the "
            "first lease), and its own default route is a last resort"
        ]
    if k == "point-to-point":
        own = "" if static_address(w) else f"; configure {w.interface} yourself (PPP, LTE)"
        return [
            f"wans[{i}] {w.name} point-to-point: pins use gateway={w.interface} "
            f"(an interface route){own}"
        ]
    if w.address is None:
        return [
            f"wans[{i}] {w.name} has no address: configure {w.interface} yourself; "
            f"its pins use gateway={w.gateway}%{w.interface}"
        ]
    return []
