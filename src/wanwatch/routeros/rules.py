"""Policy rules (docs/rules.md) in RouterOS terms: mangle marks, a routing table per
rule, routing rules. Pure: rows and tables for compile.py to write, and notes.

RouterOS's policy routing (v7 manual, Policy Routing; v6: routing marks) is mangle
marking, routing tables and routing rules, so a rule becomes, in each family it
matches (config/matches.py ``rule_families``: the same decision as on Linux):

* a ``mark-connection`` in prerouting for new connections from the LANs (the
  interface list ``wanwatch-lans``) with no mark yet, matching the rule's fields:
  ``from`` as ``src-address-list`` (a LAN stands for its subnet, and in IPv6 for its
  /64: ``lan_prefixes``, as the Linux backend's saddr maps do), ``to`` as
  ``dst-address-list``, ``proto`` as ``protocol`` (one row per protocol for
  ``tcp+udp``), ``ports`` as ``dst-port``. Rules are written in config order before
  the policy's PCC rows, and every row requires ``connection-mark=no-mark``: the
  first rule that matches wins, as in the config. A connection mark is kept for the
  connection's life.
* a ``mark-routing`` of that connection's packets into the rule's table.
* the table (v7 ``/routing table add ... fib``; v6 a routing mark) holds a
  distance ladder of recursive, checked default routes through the rule's ``via``
  uplinks in order, the same routes as ``main`` has (compile.py; IPv6: ipv6.py's).
* ``mode: loadbalance``: PCC inside the rule, one table per uplink of ``via``
  (its own routes first, then the rule's other uplinks in ``via`` order), the
  buckets by weight as on Linux (engine/buckets.py).
* ``when_down``: a routing rule for the table's mark. ``block`` is
  ``action=lookup-only-in-table``: with no active route in the table the packet is
  dropped and never reaches ``main``; ``default`` is ``action=lookup``, which goes
  on to ``main`` (v7 manual, routing rule: "lookup-only-in-table - perform lookup
  only in the specified routing table").
* ``domains``: v7 ``/ip dns static`` FWD entries with ``match-subdomain=yes`` and
  ``address-list=``: the router's DNS adds each address it answers to the list
  (v7 manual, DNS static). v6 has only address-list entries holding a name, which
  the router resolves on its own, subdomains not included.

The IPv6 side (RouterOS 7 only) is the same in the ``/ipv6`` menus: ``/ipv6 firewall
address-list`` and ``/ipv6 firewall mangle`` rows of the same names (the menu has
``mark-connection``, ``mark-routing``, ``per-connection-classifier``,
``dst-address-type`` and ``connection-mark=no-mark`` as ``/ip firewall mangle``:
the RouterOS REST schema of /ipv6/firewall/mangle, terraform-provider-routeros
resource_ipv6_firewall_mangle.go), ``protocol=icmpv6`` (as our /ipv6 firewall filter
writes it), and ``/ipv6 route ... routing-table=`` in the same tables (v7 manual,
Policy Routing: tables are made in ``/routing table`` and filled from ``/ip route``
and ``/ipv6 route``; resource_ipv6_route.go has ``routing-table``). The routing rules
are shared: ``/routing rule`` has no family (v7 manual, routing rule: its
``src-address``/``dst-address`` take either), so one rule per mark serves both, as
in real exports that mark IPv4 and IPv6 into one table. An uplink without IPv6 is
left out of a table's IPv6 ladder, as on Linux; so is one whose IPv6 default is
learned from router advertisements (its next hop is not known in advance; a note
says so). RouterOS 6 has no IPv6 policy routing (the v6 manual's /ipv6 route has
no routing-mark): a note, nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wanwatch.config import Config, format_duration
from wanwatch.config.fields import AUTO
from wanwatch.config.ipv6 import ipv6_lans, static_address6
from wanwatch.config.matches import families, lan_prefixes, rule_families
from wanwatch.config.model import Rule
from wanwatch.engine.buckets import allocate_buckets
from wanwatch.errors import RouterOSError
from wanwatch.routeros.firewall import Row
from wanwatch.routeros.ipv6 import default6, defaults6

LAN_LIST = "wanwatch-lans"
LOCAL_LIST = "wanwatch-local"
MANGLE = {4: "ip firewall mangle", 6: "ipv6 firewall mangle"}
ADDRESS_LIST = {4: "ip firewall address-list", 6: "ipv6 firewall address-list"}
# RouterOS's names of the protocols a rule can match (manual: IP/Firewall, protocol).
_PROTOCOL = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "icmpv6", "gre": "gre"}
_PROTOCOL |= {"esp": "ipsec-esp", "ah": "ipsec-ah"}
# PCC hashes these fields (manual: IP/Firewall/Mangle, per-connection-classifier): the
# same source, or source and destination, lands in the same bucket every time.
_STICKY_CLASSIFIER = {"src": "src-address", "src-dst": "both-addresses"}
_NO_IPV6_OFFICE = "no IPv6 leaves this office (no LAN with address6, or no uplink with it)"
_NO_IPV6_V6 = "RouterOS 6 has no IPv6 policy routing (its /ipv6 route has no routing-mark)"


@dataclass(frozen=True)
class RuleTable:
    """A routing table (v7) / routing mark (v6) of a rule, also its connection mark."""

    name: str
    ladder: tuple[str, ...]  # IPv4: uplink names in the order their routes are tried
    item: str  # what the comments name after "wanwatch: "
    ladder6: tuple[str, ...] = ()  # IPv6: the uplinks of ``ladder`` a table can hold


@dataclass
class Compiled:
    tables: list[RuleTable] = field(default_factory=list)
    lists: list[Row] = field(default_factory=list)  # address lists, the LAN list
    mangle: list[Row] = field(default_factory=list)
    routing_rules: list[Row] = field(default_factory=list)
    dns: list[Row] = field(default_factory=list)  # v7 /ip dns static FWD entries
    notes: list[str] = field(default_factory=list)
    # The IPv6 side (v7): /ipv6 firewall address-list and mangle, the tables' routes.
    lists6: list[Row] = field(default_factory=list)
    mangle6: list[Row] = field(default_factory=list)
    routes6: list[Row] = field(default_factory=list)


def table_name(rule: Rule, wan: str | None = None) -> str:
    """The rule's table: ``wanwatch-rule-<rule>``; a balanced rule's, per uplink."""
    return f"wanwatch-rule-{rule.name}" + (f"-{wan}" if wan else "")


def balanced(rule: Rule) -> bool:
    """Whether the rule needs PCC: loadbalance over more than one uplink."""
    return rule.via.mode == "loadbalance" and len(rule.via.uplinks) > 1


def compile_rules(cfg: Config, version: int) -> Compiled:
    """Everything the config's rules need (``cfg``: the full config, IPv6 included), in
    the order compile.py writes it."""
    out = Compiled()
    if not cfg.rules:
        return out
    out.lists.append(Row("interface list", {"name": LAN_LIST}, "rules: the LANs"))
    out.lists += [
        Row(
            "interface list member",
            {"list": LAN_LIST, "interface": lan.interface},
            f"lans[{i}] {lan.name} is a LAN (rules)",
        )
        for i, lan in enumerate(cfg.lans)
    ]
    why6 = _NO_IPV6_OFFICE if 6 not in families(cfg) else _NO_IPV6_V6 if version == 6 else None
    both = []
    for i, (rule, fams) in enumerate(zip(cfg.rules, rule_families(cfg), strict=True)):
        compiled = tuple(f for f in fams if f == 4 or why6 is None)
        _rule(out, cfg, i, rule, version=version, fams=compiled, why6=why6)
        if fams == (4, 6):
            both.append(f"rules[{i}] {rule.name}")
    if out.mangle6:
        out.lists6 += _local6(cfg)
    if why6 == _NO_IPV6_V6 and both:
        out.notes.append(
            f"rules (IPv6): {why6}: the IPv6 connections of {', '.join(both)} follow the "
            "IPv6 main table, wherever the rule sends their IPv4 (RouterOS 7 routes them by "
            "the rule)"
        )
    _general_notes(out, cfg)
    return out


def _rule(
    out: Compiled,
    cfg: Config,
    i: int,
    rule: Rule,
    *,
    version: int,
    fams: tuple[int, ...],
    why6: str | None,
) -> None:
    """The rule in each family of ``fams``; ``why6``: why IPv6 is not compiled at all."""
    item = f"rules[{i}] {rule.name}"
    if why6 is not None:
        _left_out6(out, item, rule, why6, compiled=bool(fams))
    if not fams:
        return
    dst = _domains(out, cfg, rule, version=version, item=item, fams=fams) if rule.domains else None
    names = rule.via.names
    ok6 = [n for n in names if _routable6(cfg, n)]
    lb = balanced(rule)
    # The uplinks whose tables each family marks into (a failover rule: its one table).
    # An IPv6 side with no uplink a table can hold still marks, into a table without
    # IPv6 routes: its connections take when_down, never the policy's uplinks.
    heads = {4: names, 6: ok6 or names[:1]} if lb else {4: names[:1], 6: names[:1]}
    tables: list[RuleTable] = []
    for u in dict.fromkeys(h for f in fams for h in heads[f]):
        ladder = (u, *(o for o in names if o != u)) if lb else names
        tables.append(
            RuleTable(
                table_name(rule, u if lb else None),
                ladder if 4 in fams else (),
                f"{item} via {u}" if lb else item,
                tuple(n for n in ladder if n in ok6) if 6 in fams and u in heads[6] else (),
            )
        )
    out.tables += tables
    for f in fams:
        src = _prefix_list(out, cfg, rule, "from", item=item, family=f)
        to = dst or _prefix_list(out, cfg, rule, "to", item=item, family=f)
        marked = {table_name(rule, u if lb else None) for u in heads[f]}
        marks = [t for t in tables if t.name in marked]
        _marks(out, cfg, rule, item=item, family=f, lists=(src, to), tables=marks)
    for t in tables:
        block = rule.when_down == "block"
        out.routing_rules.append(
            Row(
                "routing rule" if version == 7 else "ip route rule",
                {
                    "routing-mark": t.name,
                    "action": "lookup-only-in-table" if block else "lookup",
                    "table": t.name,
                },
                f"{t.item} when_down: {rule.when_down}"
                + (": never the main table" if block else ": then the main table"),
            )
        )
    if 6 in fams:
        _routes6(out, cfg, tables)
        _skipped6(out, cfg, item, rule, ok6)
    _rule_notes(out, cfg, item, rule)


def _marks(
    out: Compiled,
    cfg: Config,
    rule: Rule,
    *,
    item: str,
    family: int,
    lists: tuple[str | None, str | None],
    tables: list[RuleTable],
) -> None:
    """The family's mark-connection rows (PCC over ``tables`` when there are several),
    then a mark-routing per table; ``lists``: the source and destination lists."""
    rows = out.mangle if family == 4 else out.mangle6
    src, dst = lists
    match: dict[str, str | None] = {
        "chain": "prerouting",
        "in-interface-list": LAN_LIST,
        "connection-mark": "no-mark",
        "connection-state": "new",
        "dst-address-type": "!local",
        "src-address-list": src,
        # A rule with a destination matches only it; else local subnets stay local
        # (the table holds default routes only: LAN to LAN would leave by an uplink).
        "dst-address-list": dst or f"!{LOCAL_LIST}",
    }
    protos = ["tcp", "udp"] if rule.proto == "tcp+udp" else [rule.proto]
    ports = ",".join(str(p) for p in rule.ports) if rule.ports else None
    tag6 = "" if family == 4 else " IPv6"
    for proto in protos:
        here = {**match, "protocol": _PROTOCOL[proto] if proto else None, "dst-port": ports}
        tag = f"{item}{tag6}{f' {proto}' if proto else ''}"
        if len(tables) > 1:
            _pcc(rows, cfg, rule, item=tag, match=here, tables=tables, family=family)
        else:
            _mark(rows, family, f"{tag}: mark", here, tables[0].name)
    for t in tables:
        rows.append(
            Row(
                MANGLE[family],
                {
                    "chain": "prerouting",
                    "in-interface-list": LAN_LIST,
                    "connection-mark": t.name,
                    "action": "mark-routing",
                    "new-routing-mark": t.name,
                    "passthrough": "no",
                },
                f"{t.item}{tag6}: route by table {t.name}",
            )
        )


def _mark(rows: list[Row], family: int, item: str, match: dict[str, str | None], mark: str) -> None:
    props = {k: v for k, v in match.items() if v is not None}
    props |= {"action": "mark-connection", "new-connection-mark": mark, "passthrough": "yes"}
    rows.append(Row(MANGLE[family], props, item))


def _pcc(
    rows: list[Row],
    cfg: Config,
    rule: Rule,
    *,
    item: str,
    match: dict[str, str | None],
    tables: list[RuleTable],
    family: int,
) -> None:
    weight = {w.name: w.weight for w in cfg.wans}
    table = {t.ladder[0] if family == 4 else t.ladder6[0]: t.name for t in tables}
    pairs = [(u.name, u.weight or weight[u.name]) for u in rule.via.uplinks if u.name in table]
    buckets = allocate_buckets(pairs)
    cls = _STICKY_CLASSIFIER.get(rule.sticky.by, cfg.policy.classifier)
    for b, wan in enumerate(buckets):
        here = {**match, "per-connection-classifier": f"{cls}:{len(buckets)}/{b}"}
        _mark(rows, family, f"{item}: bucket {b}/{len(buckets)} -> {wan}", here, table[wan])


def _prefix_list(
    out: Compiled, cfg: Config, rule: Rule, key: str, *, item: str, family: int
) -> str | None:
    """The address list of ``from`` or ``to`` in ``family`` (None: the field is absent).
    A LAN stands for its prefix of the family (``lan_prefixes``)."""
    entries = rule.from_ if key == "from" else rule.to
    if entries is None:
        return None
    lans = {lan.name: lan for lan in cfg.lans}
    name = f"{table_name(rule)}-{key}"
    rows = out.lists if family == 4 else out.lists6
    for entry in entries:
        if isinstance(entry, str):
            nets, what = lan_prefixes(lans[entry]), f"lan {entry}"
        else:
            nets, what = (entry,), str(entry)
        for net in nets:
            if net.version == family:
                row = {"list": name, "address": str(net)}
                rows.append(Row(ADDRESS_LIST[family], row, f"{item} {key} {what}"))
    return name


def _routable6(cfg: Config, name: str) -> bool:
    """Whether a rule table can hold the uplink's IPv6 defaults (ipv6.py's)."""
    return bool(defaults6(next(w for w in cfg.wans if w.name == name)))


def _routes6(out: Compiled, cfg: Config, tables: list[RuleTable]) -> None:
    """Each table's IPv6 ladder: its uplinks' checked IPv6 defaults, in ladder order."""
    index = {w.name: i for i, w in enumerate(cfg.wans)}
    for t in tables:
        d = 0
        for name in t.ladder6:
            w = cfg.wans[index[name]]
            for via in defaults6(w):
                d += 1
                what = f"wans[{index[name]}] {w.name} {via or w.gateway6}"
                out.routes6.append(default6(w, via, d, f"{t.item} table IPv6 via {what}", t.name))


def _skipped6(out: Compiled, cfg: Config, item: str, rule: Rule, ok6: list[str]) -> None:
    """Uplinks of ``via`` with IPv6 that no table can hold, and what it leaves."""
    wans = {w.name: w for w in cfg.wans}
    why = []
    for n in rule.via.names:
        w = wans[n]
        if w.address6 is None or n in ok6:
            continue  # no IPv6: left out of the IPv6 side as on Linux, nothing lost
        why.append(
            f"{n} (address6: auto: its IPv6 default is learned from router advertisements, "
            "its next hop not known in advance)"
            if w.address6 == AUTO
            else f"{n} (no gateway6)"
        )
    if not why:
        return
    fate = (
        ""
        if ok6
        else f"; with none left, its IPv6 connections take when_down={rule.when_down} at every "
        "moment ("
        + ("dropped" if rule.when_down == "block" else "the IPv6 main table")
        + "), where wanwatch uses the uplink"
    )
    out.notes.append(
        f"{item}.via {', '.join(why)}: RouterOS cannot put that IPv6 default in a rule's "
        f"table: left out of its IPv6 ladder{fate}"
    )


def _left_out6(out: Compiled, item: str, rule: Rule, why6: str, *, compiled: bool) -> None:
    """Notes for what the rule has of IPv6 when no IPv6 is compiled."""
    if not compiled:
        what = (
            "proto icmpv6 is IPv6" if rule.proto == "icmpv6" else "only IPv6 prefixes to match on"
        )
        out.notes.append(f"{item}: {what}, and {why6}: not compiled")
        return
    for key, entries in (("from", rule.from_), ("to", rule.to)):
        six = [str(e) for e in entries or () if not isinstance(e, str) and e.version == 6]
        if six:
            out.notes.append(f"{item}.{key} {', '.join(six)}: IPv6, and {why6}: not in the export")


def _local6(cfg: Config) -> list[Row]:
    """Our own IPv6 subnets, which a rule without ``to`` must not route by its table."""
    members = [(f"wans[{i}] {w.name}", static_address6(w)) for i, w in enumerate(cfg.wans)]
    index = {lan.name: i for i, lan in enumerate(cfg.lans)}
    members += [(f"lans[{index[lan.name]}] {lan.name}", a) for lan, a in ipv6_lans(cfg)]
    return [
        Row(
            ADDRESS_LIST[6],
            {"list": LOCAL_LIST, "address": str(a.network)},
            f"{what} subnet stays local",
        )
        for what, a in members
        if a is not None
    ]


def _domains(
    out: Compiled, cfg: Config, rule: Rule, *, version: int, item: str, fams: tuple[int, ...]
) -> str:
    name = f"{table_name(rule)}-to"
    domains = rule.domains or ()
    if version == 7:
        upstream = str(cfg.dns.upstream[0])  # config check: a domains rule needs one
        for d in domains:
            out.dns.append(
                Row(
                    "ip dns static",
                    {
                        "name": d,
                        "type": "FWD",
                        "forward-to": upstream,
                        "match-subdomain": "yes",
                        "address-list": name,
                    },
                    f"{item} domain {d}",
                )
            )
        out.notes.append(
            f"{item}.domains: the router's DNS adds the addresses it answers for "
            f"{', '.join(domains)} (and names under them) to {name} when a client asks "
            f"it; it forwards those names to {upstream} only (dns.upstream[0]), and the "
            "entries expire with the answer's TTL, unlike wanwatch's set"
        )
        if 6 in fams:
            out.notes.append(
                f"{item}.domains (IPv6): the /ipv6 firewall mangle rows match the IPv6 "
                f"address list {name}; the manual's DNS page says the FWD entry fills "
                '"the Firewall address list" without naming a family, so whether RouterOS '
                "puts the AAAA answers there is not documented: where it does not, those "
                "names' IPv6 connections follow the IPv6 main table"
            )
        return name
    for d in domains:
        row = {"list": name, "address": d}
        out.lists.append(Row(ADDRESS_LIST[4], row, f"{item} domain {d}"))
    out.notes.append(
        f"{item}.domains: RouterOS 6 resolves an address-list name itself and adds what "
        f"it gets for {', '.join(domains)} only: no names under them, and a client may "
        "be given other addresses (a CDN) than the router's own lookup"
    )
    return name


def _rule_notes(out: Compiled, cfg: Config, item: str, rule: Rule) -> None:
    if rule.when_down == "block":
        out.notes.append(
            f"{item}.when_down=block: RouterOS drops the traffic (lookup-only-in-table); "
            "wanwatch answers ICMP admin-prohibited"
        )
    elif cfg.policy.mode == "loadbalance":
        out.notes.append(
            f"{item}.when_down=default: the main table's failover order, not the balance"
        )
    if rule.sticky.by != "none":
        how = (
            f"PCC on {_STICKY_CLASSIFIER[rule.sticky.by]} sends a "
            + ("source" if rule.sticky.by == "src" else "source and destination")
            + " to the same bucket while the rule's uplinks stay up, and back to it after "
            "a failback"
            if balanced(rule)
            else "a failover rule's connections follow its table back to the first uplink"
        )
        out.notes.append(
            f"{item}.sticky by {rule.sticky.by}: a connection keeps its mark for its life "
            f"(connection marks are sticky by nature), not its uplink: {how}; "
            f"timeout={format_duration(rule.sticky.timeout)} has no equivalent"
        )
    if rule.via.mode == "loadbalance" and not balanced(rule):
        out.notes.append(f"{item}: loadbalance over one uplink is a failover table")


def _general_notes(out: Compiled, cfg: Config) -> None:
    out.notes.append(
        "rules: when no uplink at all is up wanwatch keeps each rule's last path; "
        "RouterOS has nothing to keep (block drops, default finds no route in main)"
    )
    if cfg.policy.mode != "loadbalance":
        out.notes.append(
            "rules: a FastTrack rule (RouterOS defconf) skips mangle for established "
            "connections, so their routing mark is lost; exempt marked ones "
            "(connection-mark=no-mark on it)"
        )


def check_names(cfg: Config, names: list[str]) -> None:
    """Refuse two objects with one table name (a rule ``a-X`` and a balanced ``a``)."""
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise RouterOSError(f"{cfg.source}: two routing tables would be named {n}")
        seen.add(n)
