"""Policy rules (docs/rules.md) in RouterOS terms: mangle marks, a routing table per
rule, routing rules. Pure: rows and tables for compile.py to write, and notes.

RouterOS's policy routing (v7 manual, Policy Routing; v6: routing marks) is mangle
marking, routing tables and routing rules, so a rule becomes:

* a ``mark-connection`` in prerouting for new connections from the LANs (the
  interface list ``wanwatch-lans``) with no mark yet, matching the rule's fields:
  ``from`` as ``src-address-list`` (a LAN stands for its subnet, as the Linux
  backend's ``ip saddr`` map does), ``to`` as ``dst-address-list``, ``proto`` as
  ``protocol`` (one row per protocol for ``tcp+udp``), ``ports`` as ``dst-port``.
  Rules are written in config order before the policy's PCC rows, and every row
  requires ``connection-mark=no-mark``: the first rule that matches wins, as in
  the config. A connection mark is kept for the connection's life.
* a ``mark-routing`` of that connection's packets into the rule's table.
* the table (v7 ``/routing table add ... fib``; v6 a routing mark) holds a
  distance ladder of recursive, checked default routes through the rule's ``via``
  uplinks in order, the same routes as ``main`` has (compile.py).
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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network

from wanwatch.config import Config, format_duration
from wanwatch.config.model import Rule
from wanwatch.engine.buckets import allocate_buckets
from wanwatch.errors import RouterOSError
from wanwatch.routeros.firewall import Row

LAN_LIST = "wanwatch-lans"
LOCAL_LIST = "wanwatch-local"
MANGLE = "ip firewall mangle"
ADDRESS_LIST = "ip firewall address-list"
# RouterOS's names of the protocols a rule can match (manual: IP/Firewall, protocol).
_PROTOCOL = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "gre": "gre"}
_PROTOCOL |= {"esp": "ipsec-esp", "ah": "ipsec-ah"}
# PCC hashes these fields (manual: IP/Firewall/Mangle, per-connection-classifier): the
# same source, or source and destination, lands in the same bucket every time.
_STICKY_CLASSIFIER = {"src": "src-address", "src-dst": "both-addresses"}


@dataclass(frozen=True)
class RuleTable:
    """A routing table (v7) / routing mark (v6) of a rule, also its connection mark."""

    name: str
    ladder: tuple[str, ...]  # uplink names, in the order their routes are tried
    item: str  # what the comments name after "wanwatch: "


@dataclass
class Compiled:
    tables: list[RuleTable] = field(default_factory=list)
    lists: list[Row] = field(default_factory=list)  # address lists, the LAN list
    mangle: list[Row] = field(default_factory=list)
    routing_rules: list[Row] = field(default_factory=list)
    dns: list[Row] = field(default_factory=list)  # v7 /ip dns static FWD entries
    notes: list[str] = field(default_factory=list)


def table_name(rule: Rule, wan: str | None = None) -> str:
    """The rule's table: ``wanwatch-rule-<rule>``; a balanced rule's, per uplink."""
    return f"wanwatch-rule-{rule.name}" + (f"-{wan}" if wan else "")


def balanced(rule: Rule) -> bool:
    """Whether the rule needs PCC: loadbalance over more than one uplink."""
    return rule.via.mode == "loadbalance" and len(rule.via.uplinks) > 1


def compile_rules(cfg: Config, version: int) -> Compiled:
    """Everything the config's rules need, in the order compile.py writes it."""
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
    for i, rule in enumerate(cfg.rules):
        _rule(out, cfg, version, i, rule)
    _general_notes(out, cfg)
    return out


def _rule(out: Compiled, cfg: Config, version: int, i: int, rule: Rule) -> None:
    item = f"rules[{i}] {rule.name}"
    if rule.proto == "icmpv6":
        out.notes.append(f"{item}: proto icmpv6 is IPv6; the export is IPv4 only: not compiled")
        return
    src = _prefix_list(out, cfg, item, rule, "from")
    dst = _prefix_list(out, cfg, item, rule, "to")
    if src == "" or dst == "":
        out.notes.append(
            f"{item}: only IPv6 prefixes to match on; the export is IPv4: not compiled"
        )
        return
    if rule.domains:
        dst = _domains(out, cfg, version, item, rule)
    names = rule.via.names
    if balanced(rule):
        tables = [
            RuleTable(
                table_name(rule, u),
                (u, *(o for o in names if o != u)),
                f"{item} via {u}",
            )
            for u in names
        ]
    else:
        tables = [RuleTable(table_name(rule), names, item)]
    out.tables += tables
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
    for proto in protos:
        here = {**match, "protocol": _PROTOCOL[proto] if proto else None, "dst-port": ports}
        tag = f"{item}{f' {proto}' if proto else ''}"
        if balanced(rule):
            _pcc(out, cfg, rule, item=tag, match=here, tables=tables)
        else:
            _mark(out, f"{tag}: mark", here, tables[0].name)
    for t in tables:
        out.mangle.append(
            Row(
                MANGLE,
                {
                    "chain": "prerouting",
                    "in-interface-list": LAN_LIST,
                    "connection-mark": t.name,
                    "action": "mark-routing",
                    "new-routing-mark": t.name,
                    "passthrough": "no",
                },
                f"{t.item}: route by table {t.name}",
            )
        )
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
    _rule_notes(out, cfg, item, rule)


def _mark(out: Compiled, item: str, match: dict[str, str | None], mark: str) -> None:
    props = {k: v for k, v in match.items() if v is not None}
    props |= {"action": "mark-connection", "new-connection-mark": mark, "passthrough": "yes"}
    out.mangle.append(Row(MANGLE, props, item))


def _pcc(
    out: Compiled,
    cfg: Config,
    rule: Rule,
    *,
    item: str,
    match: dict[str, str | None],
    tables: list[RuleTable],
) -> None:
    weight = {w.name: w.weight for w in cfg.wans}
    pairs = [(u.name, u.weight or weight[u.name]) for u in rule.via.uplinks]
    buckets = allocate_buckets(pairs)
    table = {t.ladder[0]: t.name for t in tables}
    cls = _STICKY_CLASSIFIER.get(rule.sticky.by, cfg.policy.classifier)
    for b, wan in enumerate(buckets):
        here = {**match, "per-connection-classifier": f"{cls}:{len(buckets)}/{b}"}
        _mark(out, f"{item}: bucket {b}/{len(buckets)} -> {wan}", here, table[wan])


def _prefix_list(out: Compiled, cfg: Config, item: str, rule: Rule, key: str) -> str | None:
    """The address list of ``from`` or ``to`` (None: the field is absent; "": nothing
    IPv4 in it)."""
    entries = rule.from_ if key == "from" else rule.to
    if entries is None:
        return None
    lans = {lan.name: lan for lan in cfg.lans}
    name = f"{table_name(rule)}-{key}"
    kept = 0
    skipped = []
    for entry in entries:
        if isinstance(entry, str):
            address = lans[entry].address
            if address is None:  # config check refuses it; nothing to match on
                continue
            net, what = address.network, f"lan {entry}"
        elif isinstance(entry, IPv4Network):
            net, what = entry, str(entry)
        else:
            skipped.append(str(entry))
            continue
        kept += 1
        out.lists.append(
            Row(ADDRESS_LIST, {"list": name, "address": str(net)}, f"{item} {key} {what}")
        )
    if skipped:
        out.notes.append(f"{item}.{key} {', '.join(skipped)}: IPv6, not in the IPv4 export")
    return name if kept else ""


def _domains(out: Compiled, cfg: Config, version: int, item: str, rule: Rule) -> str:
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
        return name
    for d in domains:
        out.lists.append(Row(ADDRESS_LIST, {"list": name, "address": d}, f"{item} domain {d}"))
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
