"""Policy rules in ``table inet wanwatch`` (docs/rules.md): pure text, placed by nft.py.

A new connection from a LAN that would leave by an uplink is looked up once in
``rules4``, a concatenated interval map (``ip saddr . ip daddr . meta l4proto .
th dport``; nft's pipapo set, kernel 5.6+) holding the disjoint regions of
config/matches.py: its cost does not grow with the number of rules. The region
names the deciding rule's chain (or, where a ``domains`` rule may decide, a
short chain testing those rules' sets first). The rule's chain writes the rule
into the connection's ct mark (footprint.RULE_MARK_MASK), then one lookup in
``paths`` (rule mark -> verdict) says where it goes:

* ``goto mark_<n>``: uplink n (nft.py's chain; the uplink bits of the ct mark,
  kept for the connection's life and copied to every packet's fwmark);
* ``goto lb_<rule>``: a balanced rule's own jhash over its buckets;
* ``goto block``: ``reject with icmpx admin-prohibited`` -- the client hears
  ICMP destination unreachable, code 13 for IPv4 (RFC 1812 5.2.7.1), code 1
  for IPv6 (RFC 4443 3.1), and nothing leaves by another uplink;
* ``return``: ``when_down: default``, the policy decides as if no rule matched.

A failover changes only ``paths`` elements (and a balanced rule's ``lb_``
chain), in one ``nft -f`` batch, all or nothing (:func:`path_update`): the
lookup map, the domain sets dnsmasq fills and the sticky sets stay as they
are. So the table's fingerprint (nft.py) is taken over the text rendered
without paths.

Sticky rules keep, per uplink of ``via``, a dynamic set of the sources (or
source and destination pairs) it carried, each entry expiring ``timeout``
after its last new connection; the rule's chain tries them before ``paths``.
An uplink that stops being usable for the rule has its set flushed in the same
batch that moves the rule: a sticky source stays across a failback, but not on
a dead uplink.

Each rule has three named counters (:func:`counters`), so its figures cost one
counter read per rule whatever the number of connections (no conntrack walk):
``rule_<name>_new`` at the head of its chain counts the connections it decided
-- the first packet of each new connection from a LAN that it matched, whatever
its path (an uplink, block, default); a refused packet leaves no conntrack
entry, so each refused attempt counts once. ``rule_<name>_out`` and ``_in``
count, in the forward chain, every packet of those connections in their
original direction (LAN to internet) and in reply, selected by one map lookup
on the rule bits of the ct mark. Named after the rule, not its position, so a
reordered config keeps each rule's totals (firewall.Totals carries them across
table replacements).

IPv4 only for now: the per-uplink tables and NAT of nft.py and apply.py are.
The regions are cut per family (matches.py), so an ``ip6`` map slots in beside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, field

from wanwatch.config import Config
from wanwatch.config.matches import Region, families, matches, prefix_text, regions
from wanwatch.config.model import Rule
from wanwatch.engine.intent import Intent, PathKind, RulePath
from wanwatch.errors import NftError
from wanwatch.footprint import NFT_FAMILY, NFT_TABLE, RULE_MARK_MASK, rule_mark
from wanwatch.linux.classify import classify_rules
from wanwatch.linux.firewall import ZERO, Count
from wanwatch.status import RuleTraffic

KEYS = {
    4: "ip saddr . ip daddr . meta l4proto . th dport",
    6: "ip6 saddr . ip6 daddr . meta l4proto . th dport",
}
_ADDR = {4: "ip", 6: "ip6"}
_NFPROTO = {4: "ipv4", 6: "ipv6"}
_KEEP = ~RULE_MARK_MASK & 0xFFFFFFFF
# Entries of one domain or sticky set: each is 4-8 bytes of kernel memory plus
# overhead; the bench fills a domain set with 10 000.
SET_SIZE = 65536
_STICKY_KEY = {"src": ("saddr",), "src-dst": ("saddr", "daddr")}
# Both families' paths of every rule, as last applied (the backend's memory)
Applied = tuple[tuple[RulePath, ...], tuple[RulePath, ...]]


@dataclass
class Part:
    """The rules' pieces of the table (lines without indent), for nft.render to place."""

    declarations: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)  # rules of the forward chain
    chains: list[list[str]] = field(default_factory=list)


def _hex(mark: int) -> str:
    return f"0x{mark:08x}"


def _slots(intent: Intent) -> dict[str, int]:
    return {u.name: u.slot + 1 for u in intent.uplinks}


def _range(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _six(family: int) -> str:
    """The suffix of IPv6's own maps, sets and chains (IPv4's keep their names)."""
    return "6" if family == 6 else ""


def _paths_of(intent: Intent, family: int) -> tuple[RulePath, ...]:
    return intent.rules if family == 4 else intent.rules6


def applied(config: Config, intent: Intent) -> Applied:
    """The paths of ``intent`` the table holds (IPv6's where rendered), for
    :func:`path_update` to compare with later."""
    return intent.rules, intent.rules6 if 6 in families(config) else ()


def _element(region: Region, verdict: str, family: int) -> str:
    src, dst, proto, port = region.fields
    return (
        f"{prefix_text(family, src)} . {prefix_text(family, dst)} . {_range(*proto)}"
        f" . {_range(*port)} : {verdict}"
    )


def dom_set(n: int, family: int = 4) -> str:
    """Set of rule ``n`` (1-based) that dnsmasq fills with its domains' addresses of ``family``."""
    return f"dom{family}_{n}"


def dom_comment(rule: Rule) -> str:
    return f"{rule.name}: filled by dnsmasq"


def domain_sets(config: Config) -> dict[str, str]:
    """Every domain set of the table: name -> comment."""
    return {
        dom_set(i + 1, f): dom_comment(r)
        for i, r in enumerate(config.rules)
        if r.domains
        for f in families(config)
    }


@dataclass(frozen=True)
class Counters:
    """The named counters of one rule (docstring above: what each counts)."""

    new: str
    out: str
    back: str  # ``_in``: replies


def counters(rule: Rule) -> Counters:
    return Counters(f"rule_{rule.name}_new", f"rule_{rule.name}_out", f"rule_{rule.name}_in")


def traffic(config: Config, found: Mapping[str, Count]) -> dict[str, RuleTraffic]:
    """Each rule's figures from the table's counter totals (firewall.Totals); a counter
    not read yet (no reading, an older table) reads zero."""
    out: dict[str, RuleTraffic] = {}
    for rule in config.rules:
        c = counters(rule)
        new, up, down = (found.get(name, ZERO) for name in (c.new, c.out, c.back))
        out[rule.name] = RuleTraffic(new.packets, up.bytes, down.bytes)
    return out


def _counted(config: Config) -> list[str]:
    """The forward chain's rules adding each packet of a rule's connection to its counter."""
    out: list[str] = []
    for direction, pick in (("original", "out"), ("reply", "back")):
        by_mark = ", ".join(
            f'{_hex(rule_mark(i))} : "{getattr(counters(r), pick)}"'
            for i, r in enumerate(config.rules)
        )
        out.append(
            f"ct direction {direction} counter name ct mark & {_hex(RULE_MARK_MASK)}"
            f" map {{ {by_mark} }}"
        )
    return out


def _sticky_set(n: int, slot: int, family: int) -> str:
    return f"sticky{_six(family)}_{n}_{slot}"


def _sticky_key(rule: Rule, family: int) -> str:
    return " . ".join(f"{_ADDR[family]} {f}" for f in _STICKY_KEY[rule.sticky.by])


def path_verdict(config: Config, intent: Intent, p: RulePath, family: int = 4) -> str:
    slots = _slots(intent)
    n = p.index + 1
    if p.kind is PathKind.BLOCK:
        return "goto block"
    if p.kind is PathKind.DEFAULT:
        return "return"
    if p.kind is PathKind.BALANCE:
        return f"goto lb{_six(family)}_{n}"
    slot = slots[p.uplinks[0]]
    sticky = config.rules[p.index].sticky.by != "none"
    return f"goto stick{_six(family)}_{n}_{slot}" if sticky else f"goto mark_{slot}"


def _paths_elements(config: Config, intent: Intent, family: int) -> str:
    return ", ".join(
        f"{_hex(rule_mark(p.index))} : {path_verdict(config, intent, p, family)}"
        for p in _paths_of(intent, family)
    )


def lb_rules(config: Config, intent: Intent, p: RulePath, family: int = 4) -> list[str]:
    """The body of a balanced rule's ``lb_`` (``lb6_``) chain for path ``p`` ([] unless
    balanced)."""
    if p.kind is not PathKind.BALANCE:
        return []
    slots = _slots(intent)
    n = p.index + 1
    sticky = config.rules[p.index].sticky.by != "none"
    stick = f"stick{_six(family)}_{n}"
    targets = [f"{stick}_{slots[b]}" if sticky else f"mark_{slots[b]}" for b in p.buckets]
    return classify_rules(targets, config.policy.classifier, family)


def render(config: Config, intent: Intent, *, with_paths: bool) -> Part:
    """The rules' part of the table; ``with_paths`` False leaves out what a failover
    changes (``paths`` elements, ``lb_`` chain bodies): the text the fingerprint covers.

    IPv6 (``rules6``, ``paths6``, the ``6`` sets and chains) is rendered once a LAN's
    IPv6 can leave by an uplink (matches.families); an IPv4-only office has none."""
    part = Part()
    if not config.rules:
        return part
    fams = families(config)
    for f in fams:
        if len(_paths_of(intent, f)) != len(config.rules):
            raise NftError(
                f"the intent has {len(_paths_of(intent, f))} IPv{f} rule paths"
                f" for {len(config.rules)} rules"
            )
    lookups: dict[int, tuple[list[str], dict[tuple[int, ...], int]]] = {}
    for f in fams:
        try:
            cut = regions(matches(config.rules, config.lans, f), f)
        except OverflowError as exc:  # the config check refuses such rules
            raise NftError(f"policy rules: {exc}") from None
        lookups[f] = _lookup(config, cut, f)
    d = part.declarations
    for f, (elements, _) in lookups.items():
        if elements:
            d += [f"map rules{f} {{", f"\ttypeof {KEYS[f]} : verdict", "\tflags interval"]
            d += ["\telements = { " + ",\n\t\t     ".join(elements) + " }", "}", ""]
    for f in fams:
        d += [f"map paths{_six(f)} {{", "\ttype mark : verdict"]
        if with_paths:
            d.append(f"\telements = {{ {_paths_elements(config, intent, f)} }}")
        d += ["}"]
    d += _sets(config, intent, fams)
    d += [""] + [f"counter {c} {{ }}" for r in config.rules for c in astuple(counters(r))]
    part.forward = [
        "# each policy rule's bytes, per direction (rules_nft.py: one map lookup by its mark)",
        *_counted(config),
    ]
    looked = [f"\t{KEYS[f]} vmap @rules{f}" for f, (elements, _) in lookups.items() if elements]
    if looked:
        part.chains.append(["chain rules {", *looked, "}"])
    for f, (_, picks) in lookups.items():
        part.chains += _pick_chains(config, picks, f)
    for i in range(len(config.rules)):
        part.chains += _rule_chains(config, intent, i, fams, with_paths=with_paths)
    part.chains.append(["chain block {", "\treject with icmpx admin-prohibited", "}"])
    return part


def _pick_chains(
    config: Config, picks: Mapping[tuple[int, ...], int], family: int
) -> list[list[str]]:
    """Each ``pick_`` chain: the candidates' domain sets in rule order, then the plain rule."""
    out: list[list[str]] = []
    for rules, k in picks.items():
        body = [
            f"\t{_ADDR[family]} daddr @{dom_set(r + 1, family)} goto rule_{r + 1}"
            if config.rules[r].domains
            else f"\tgoto rule_{r + 1}"
            for r in rules
        ]
        out.append([f"chain pick{_six(family)}_{k} {{", *body, "}"])
    return out


def _lookup(
    config: Config, cut: list[Region], family: int
) -> tuple[list[str], dict[tuple[int, ...], int]]:
    """The ``rules4`` (``rules6``) elements, and the ``pick_`` chain number of each
    candidate list."""
    picks: dict[tuple[int, ...], int] = {}
    elements: list[str] = []
    for region in cut:
        if len(region.rules) == 1 and not config.rules[region.rules[0]].domains:
            elements.append(_element(region, f"goto rule_{region.rules[0] + 1}", family))
        else:
            k = picks.setdefault(region.rules, len(picks) + 1)
            elements.append(_element(region, f"goto pick{_six(family)}_{k}", family))
    return elements, picks


def _sets(config: Config, intent: Intent, fams: tuple[int, ...]) -> list[str]:
    """The domain sets (dnsmasq fills them) and the sticky sets (the rules' chains do)."""
    slots = _slots(intent)
    d: list[str] = []
    for i, rule in enumerate(config.rules):
        n = i + 1
        for f in fams if rule.domains else ():
            d += ["", f"set {dom_set(n, f)} {{", f"\ttype ipv{f}_addr", f"\tsize {SET_SIZE}"]
            d += [f'\tcomment "{dom_comment(rule)}"', "}"]
        for f in fams if rule.sticky.by != "none" else ():
            for u in rule.via.uplinks:
                d += ["", f"set {_sticky_set(n, slots[u.name], f)} {{"]
                d += [f"\ttypeof {_sticky_key(rule, f)}", f"\tsize {SET_SIZE}"]
                d += ["\tflags dynamic,timeout", f"\ttimeout {_timeout(rule.sticky.timeout)}"]
                d += ["}"]
    return d


def _timeout(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _rule_chains(
    config: Config, intent: Intent, index: int, fams: tuple[int, ...], *, with_paths: bool
) -> list[list[str]]:
    rule: Rule = config.rules[index]
    n = index + 1
    slots = _slots(intent)
    mark = _hex(rule_mark(index))
    head = [
        f"chain rule_{n} {{",
        f'\tcounter name "{counters(rule).new}"',
        f'\tct mark set ct mark & {_hex(_KEEP)} | {mark} comment "{rule.name}"',
    ]
    out: list[list[str]] = []
    for f in fams if rule.sticky.by != "none" else ():
        key = _sticky_key(rule, f)
        for u in rule.via.uplinks:
            s = slots[u.name]
            sticky, stick = _sticky_set(n, s, f), f"stick{_six(f)}_{n}_{s}"
            head.append(f"\t{key} @{sticky} goto {stick}")
            out.append(
                [f"chain {stick} {{", f"\tupdate @{sticky} {{ {key} }}", f"\tgoto mark_{s}", "}"]
            )
    # one family: its paths for any packet; both: each family's own (one compare each)
    lookup = f"ct mark & {_hex(RULE_MARK_MASK)} vmap @paths"
    if fams == (4,):
        head.append(f"\t{lookup}")
    else:
        head += [f"\tmeta nfproto {_NFPROTO[f]} {lookup}{_six(f)}" for f in fams]
    out.insert(0, [*head, "}"])
    if rule.via.mode == "loadbalance":
        for f in fams:
            p = _paths_of(intent, f)[index]
            body = lb_rules(config, intent, p, f) if with_paths else []
            out.append([f"chain lb{_six(f)}_{n} {{", *(f"\t{line}" for line in body), "}"])
    return out


def prerouting(config: Config, wan_ifs: str, fwmark_mask: str) -> list[str]:
    """The prerouting rule that sends a new connection from a LAN to the rules."""
    fams = families(config)
    only = f" meta nfproto {_NFPROTO[fams[0]]}" if len(fams) == 1 else ""
    return [
        "# policy rules: one lookup names the rule of a new connection from a LAN (rules_nft.py)",
        f"ct state new ct mark & {fwmark_mask} == 0x00000000 iifname != {wan_ifs}"
        f" fib daddr oifname {wan_ifs}{only} jump rules",
    ]


def path_update(config: Config, intent: Intent, before: Applied | None) -> str:
    """One ``nft -f`` batch moving the rules whose path changed, in either family, since
    ``before`` (every rule when unknown): their ``paths`` (``paths6``) elements, ``lb_``
    chains and sticky sets."""
    lines: list[str] = []
    for f in families(config):
        was = before[0 if f == 4 else 1] if before is not None else None
        lines += _family_update(config, intent, f, was)
    return "\n".join(lines) + "\n" if lines else ""


def _family_update(
    config: Config, intent: Intent, family: int, applied: Sequence[RulePath] | None
) -> list[str]:
    t = f"{NFT_FAMILY} {NFT_TABLE}"
    six = _six(family)
    before = {(p.index, p.name): p for p in applied} if applied is not None else None
    lines: list[str] = []
    if before is None:
        lines.append(f"flush map {t} paths{six}")
    slots = _slots(intent)
    for p in _paths_of(intent, family):
        was = before.get((p.index, p.name)) if before is not None else None
        if before is not None and was == p:
            continue
        n = p.index + 1
        rule = config.rules[p.index]
        if rule.via.mode == "loadbalance":
            lines.append(f"flush chain {t} lb{six}_{n}")
            lines += [f"add rule {t} lb{six}_{n} {r}" for r in lb_rules(config, intent, p, family)]
        if rule.sticky.by != "none":
            lines += [
                f"flush set {t} {_sticky_set(n, slots[u.name], family)}"
                for u in rule.via.uplinks
                if u.name not in p.usable
            ]
        key = _hex(rule_mark(p.index))
        verdict = path_verdict(config, intent, p, family)
        if was is not None and path_verdict(config, intent, was, family) == verdict:
            continue  # a balanced rule over other uplinks: its chain alone changed
        if before is not None:
            lines.append(f"delete element {t} paths{six} {{ {key} }}")
        lines.append(f"add element {t} paths{six} {{ {key} : {verdict} }}")
    return lines
