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

IPv4 only for now: the per-uplink tables and NAT of nft.py and apply.py are.
The regions are cut per family (matches.py), so an ``ip6`` map slots in beside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from wanwatch.config import Config
from wanwatch.config.matches import Region, matches, prefix_text, regions
from wanwatch.config.model import Rule
from wanwatch.engine.intent import Intent, PathKind, RulePath
from wanwatch.errors import NftError
from wanwatch.footprint import NFT_FAMILY, NFT_TABLE, RULE_MARK_MASK, rule_mark
from wanwatch.linux.classify import classify_rules

KEY4 = "ip saddr . ip daddr . meta l4proto . th dport"
_KEEP = ~RULE_MARK_MASK & 0xFFFFFFFF
# Entries of one domain or sticky set: each is 4-8 bytes of kernel memory plus
# overhead; the bench fills a domain set with 10 000.
SET_SIZE = 65536
_STICKY_KEY = {"src": "ip saddr", "src-dst": "ip saddr . ip daddr"}


@dataclass
class Part:
    """The rules' pieces of the table (lines without indent), for nft.render to place."""

    declarations: list[str] = field(default_factory=list)
    prerouting: list[str] = field(default_factory=list)
    chains: list[list[str]] = field(default_factory=list)


def _hex(mark: int) -> str:
    return f"0x{mark:08x}"


def _slots(intent: Intent) -> dict[str, int]:
    return {u.name: u.slot + 1 for u in intent.uplinks}


def _range(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _element(region: Region, verdict: str) -> str:
    src, dst, proto, port = region.fields
    return (
        f"{prefix_text(4, src)} . {prefix_text(4, dst)} . {_range(*proto)} . {_range(*port)}"
        f" : {verdict}"
    )


def dom_set(n: int) -> str:
    """Set of rule ``n`` (1-based) that dnsmasq fills with its domains' IPv4 addresses."""
    return f"dom4_{n}"


def dom_comment(rule: Rule) -> str:
    return f"{rule.name}: filled by dnsmasq"


def domain_sets(config: Config) -> dict[str, str]:
    """Every domain set of the table: name -> comment."""
    return {dom_set(i + 1): dom_comment(r) for i, r in enumerate(config.rules) if r.domains}


def _sticky_set(n: int, slot: int) -> str:
    return f"sticky_{n}_{slot}"


def path_verdict(config: Config, intent: Intent, p: RulePath) -> str:
    slots = _slots(intent)
    n = p.index + 1
    if p.kind is PathKind.BLOCK:
        return "goto block"
    if p.kind is PathKind.DEFAULT:
        return "return"
    if p.kind is PathKind.BALANCE:
        return f"goto lb_{n}"
    slot = slots[p.uplinks[0]]
    sticky = config.rules[p.index].sticky.by != "none"
    return f"goto stick_{n}_{slot}" if sticky else f"goto mark_{slot}"


def _paths_elements(config: Config, intent: Intent) -> str:
    return ", ".join(
        f"{_hex(rule_mark(p.index))} : {path_verdict(config, intent, p)}" for p in intent.rules
    )


def lb_rules(config: Config, intent: Intent, p: RulePath) -> list[str]:
    """The body of a balanced rule's ``lb_`` chain for path ``p`` ([] unless balanced)."""
    if p.kind is not PathKind.BALANCE:
        return []
    slots = _slots(intent)
    n = p.index + 1
    sticky = config.rules[p.index].sticky.by != "none"
    targets = [f"stick_{n}_{slots[b]}" if sticky else f"mark_{slots[b]}" for b in p.buckets]
    return classify_rules(targets, config.policy.classifier)


def render(config: Config, intent: Intent, *, with_paths: bool) -> Part:
    """The rules' part of the table; ``with_paths`` False leaves out what a failover
    changes (``paths`` elements, ``lb_`` chain bodies): the text the fingerprint covers."""
    part = Part()
    if not config.rules:
        return part
    if len(intent.rules) != len(config.rules):
        raise NftError(
            f"the intent has {len(intent.rules)} rule paths for {len(config.rules)} rules"
        )
    try:
        cut = regions(matches(config.rules, config.lans, 4), 4)
    except OverflowError as exc:  # the config check refuses such rules
        raise NftError(f"policy rules: {exc}") from None
    elements, picks = _lookup(config, cut)
    d = part.declarations
    if elements:
        d += ["map rules4 {", f"\ttypeof {KEY4} : verdict", "\tflags interval"]
        d += ["\telements = { " + ",\n\t\t     ".join(elements) + " }", "}", ""]
    d += ["map paths {", "\ttype mark : verdict"]
    if with_paths:
        d.append(f"\telements = {{ {_paths_elements(config, intent)} }}")
    d += ["}"]
    d += _sets(config, intent)
    if elements:
        part.chains.append(["chain rules {", f"\t{KEY4} vmap @rules4", "}"])
    for rules, k in picks.items():
        body = [
            f"\tip daddr @{dom_set(r + 1)} goto rule_{r + 1}"
            if config.rules[r].domains
            else f"\tgoto rule_{r + 1}"
            for r in rules
        ]
        part.chains.append([f"chain pick_{k} {{", *body, "}"])
    for p in intent.rules:
        part.chains += _rule_chains(config, intent, p, with_paths=with_paths)
    part.chains.append(["chain block {", "\treject with icmpx admin-prohibited", "}"])
    return part


def _lookup(config: Config, cut: list[Region]) -> tuple[list[str], dict[tuple[int, ...], int]]:
    """The ``rules4`` elements, and the ``pick_`` chain number of each candidate list."""
    picks: dict[tuple[int, ...], int] = {}
    elements: list[str] = []
    for region in cut:
        if len(region.rules) == 1 and not config.rules[region.rules[0]].domains:
            elements.append(_element(region, f"goto rule_{region.rules[0] + 1}"))
        else:
            k = picks.setdefault(region.rules, len(picks) + 1)
            elements.append(_element(region, f"goto pick_{k}"))
    return elements, picks


def _sets(config: Config, intent: Intent) -> list[str]:
    """The domain sets (dnsmasq fills them) and the sticky sets (the rules' chains do)."""
    slots = _slots(intent)
    d: list[str] = []
    for i, rule in enumerate(config.rules):
        n = i + 1
        if rule.domains:
            d += ["", f"set {dom_set(n)} {{", "\ttype ipv4_addr", f"\tsize {SET_SIZE}"]
            d += [f'\tcomment "{dom_comment(rule)}"', "}"]
        if rule.sticky.by != "none":
            key = _STICKY_KEY[rule.sticky.by]
            for u in rule.via.uplinks:
                d += ["", f"set {_sticky_set(n, slots[u.name])} {{", f"\ttypeof {key}"]
                d += [f"\tsize {SET_SIZE}", "\tflags dynamic,timeout"]
                d += [f"\ttimeout {_timeout(rule.sticky.timeout)}", "}"]
    return d


def _timeout(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _rule_chains(
    config: Config, intent: Intent, p: RulePath, *, with_paths: bool
) -> list[list[str]]:
    rule: Rule = config.rules[p.index]
    n = p.index + 1
    slots = _slots(intent)
    mark = _hex(rule_mark(p.index))
    head = [
        f"chain rule_{n} {{",
        f'\tct mark set ct mark & {_hex(_KEEP)} | {mark} comment "{rule.name}"',
    ]
    out: list[list[str]] = []
    if rule.sticky.by != "none":
        key = _STICKY_KEY[rule.sticky.by]
        for u in rule.via.uplinks:
            s = slots[u.name]
            head.append(f"\t{key} @{_sticky_set(n, s)} goto stick_{n}_{s}")
            out.append(
                [
                    f"chain stick_{n}_{s} {{",
                    f"\tupdate @{_sticky_set(n, s)} {{ {key} }}",
                    f"\tgoto mark_{s}",
                    "}",
                ]
            )
    head += [f"\tct mark & {_hex(RULE_MARK_MASK)} vmap @paths", "}"]
    out.insert(0, head)
    if rule.via.mode == "loadbalance":
        body = lb_rules(config, intent, p) if with_paths else []
        out.append([f"chain lb_{n} {{", *(f"\t{line}" for line in body), "}"])
    return out


def prerouting(wan_ifs: str, fwmark_mask: str) -> list[str]:
    """The prerouting rule that sends a new connection from a LAN to the rules."""
    return [
        "# policy rules: one lookup names the rule of a new connection from a LAN (rules_nft.py)",
        f"ct state new ct mark & {fwmark_mask} == 0x00000000 iifname != {wan_ifs}"
        f" fib daddr oifname {wan_ifs} meta nfproto ipv4 jump rules",
    ]


def path_update(config: Config, intent: Intent, applied: Sequence[RulePath] | None) -> str:
    """One ``nft -f`` batch moving the rules whose path changed since ``applied`` (every
    rule when unknown): their ``paths`` elements, ``lb_`` chains and sticky sets."""
    t = f"{NFT_FAMILY} {NFT_TABLE}"
    before = {(p.index, p.name): p for p in applied} if applied is not None else None
    lines: list[str] = []
    if before is None:
        lines.append(f"flush map {t} paths")
    slots = _slots(intent)
    for p in intent.rules:
        was = before.get((p.index, p.name)) if before is not None else None
        if before is not None and was == p:
            continue
        n = p.index + 1
        rule = config.rules[p.index]
        if rule.via.mode == "loadbalance":
            lines.append(f"flush chain {t} lb_{n}")
            lines += [f"add rule {t} lb_{n} {r}" for r in lb_rules(config, intent, p)]
        if rule.sticky.by != "none":
            lines += [
                f"flush set {t} {_sticky_set(n, slots[u.name])}"
                for u in rule.via.uplinks
                if u.name not in p.usable
            ]
        key = _hex(rule_mark(p.index))
        verdict = path_verdict(config, intent, p)
        if was is not None and path_verdict(config, intent, was) == verdict:
            continue  # a balanced rule over other uplinks: its chain alone changed
        if before is not None:
            lines.append(f"delete element {t} paths {{ {key} }}")
        lines.append(f"add element {t} paths {{ {key} : {verdict} }}")
    return "\n".join(lines) + "\n" if lines else ""
