"""What policy rules match, as plain ranges: the subset test of ``check`` and the
disjoint regions of the dataplane's one lookup (linux/rules_nft.py). Pure.

A rule matches, per address family, a box: source addresses x destination
addresses x IP protocol x destination port, each field a union of integer
ranges. First match wins, so the dataplane cannot hand the kernel the boxes as
they are: nft's concatenated interval sets (the pipapo set, kernel 5.6+) find
*an* element containing a key, not the first in any order, and refuse most
overlaps. :func:`regions` therefore cuts the key space into disjoint boxes,
each labelled with the rules that can decide it: one lookup per new
connection, whatever the number of rules.

A ``domains`` rule's destinations are only known at run time (dnsmasq adds
them to the rule's set as it answers), so for the cut it matches every
destination, and a region lists it as a candidate before the plain rule (if
any) that decides the region otherwise: the dataplane tests the candidates'
sets in order, one set lookup each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_network
from itertools import pairwise

from wanwatch.config.fields import Prefix
from wanwatch.config.ipv6 import has_ipv6, lan_address6
from wanwatch.config.model import Config, Lan, Rule

Interval = tuple[int, int]  # first and last, both included
Ranges = tuple[Interval, ...]  # sorted, disjoint, not adjacent

FAMILY_BITS = {4: 32, 6: 128}
PROTO_MAX, PORT_MAX = 255, 65535
# IANA protocol numbers of the names a rule may give (config/model.py Proto).
PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "gre": 47, "esp": 50, "ah": 51}
_FAMILY_ONLY = {"icmp": 4, "icmpv6": 6}
# Regions of one family the dataplane's map may hold. Real offices need tens;
# a pathological mix of many rules, each on other fields, could need millions.
MAX_REGIONS = 16384


@dataclass(frozen=True)
class Match:
    """What rule ``rule`` (0-based position in ``rules``) matches in one family."""

    rule: int
    fields: tuple[Ranges, Ranges, Ranges, Ranges]  # source, destination, protocol, port
    domains: tuple[str, ...]  # non-empty: only destinations in the rule's domain set

    @property
    def plain(self) -> bool:
        return not self.domains


@dataclass(frozen=True)
class Region:
    """A box of the key space and the rules that decide it: every entry but the last
    is a domain rule; the last decides what none of the domain sets holds."""

    fields: tuple[Interval, Interval, Interval, Interval]
    rules: tuple[int, ...]


def full(family: int) -> tuple[Interval, Interval, Interval, Interval]:
    top = (1 << FAMILY_BITS[family]) - 1
    return ((0, top), (0, top), (0, PROTO_MAX), (0, PORT_MAX))


def merge(intervals: Sequence[Interval]) -> Ranges:
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _prefix(net: Prefix) -> Interval:
    return int(net.network_address), int(net.broadcast_address)


def lan_prefixes(lan: Lan) -> tuple[Prefix, ...]:
    """The prefixes a LAN name stands for in ``from``: its IPv4 subnet and its IPv6 /64."""
    six = lan_address6(lan)
    return tuple(a.network for a in (lan.address, six) if a is not None)


def families(config: Config) -> tuple[int, ...]:
    """The families a LAN's traffic can leave in: IPv6 too once a LAN has IPv6 and an
    uplink carries it (without either, no forwarded IPv6 reaches an uplink)."""
    lans = [lan for lan in config.lans or () if lan is not None and lan.name is not None]
    wans = [w for w in config.wans or () if w is not None]
    six = any(lan_address6(lan) for lan in lans) and any(map(has_ipv6, wans))
    return (4, 6) if six else (4,)


def match(index: int, rule: Rule, lans: Sequence[Lan], family: int) -> Match | None:
    """What ``rule`` matches in ``family``; None when it cannot match that family."""
    everything = full(family)
    by_name = {lan.name: lan for lan in lans}
    src: Ranges = (everything[0],)
    if rule.from_ is not None:
        nets: list[Prefix] = []
        for item in rule.from_:
            if isinstance(item, str):
                lan = by_name.get(item)
                nets += lan_prefixes(lan) if lan is not None else ()
            else:
                nets.append(item)
        src = merge([_prefix(n) for n in nets if n.version == family])
    dst: Ranges = (everything[1],)
    if rule.to is not None:
        dst = merge([_prefix(n) for n in rule.to if n.version == family])
    proto: Ranges = (everything[2],)
    if rule.proto is not None:
        if _FAMILY_ONLY.get(rule.proto, family) != family:
            return None
        proto = merge([(PROTO_NUMBERS[p],) * 2 for p in rule.proto.split("+")])
    port: Ranges = (everything[3],)
    if rule.ports is not None:
        port = merge([(r.first, r.last) for r in rule.ports])
    if not src or not dst:
        return None
    return Match(index, (src, dst, proto, port), rule.domains or ())


def matches(rules: Sequence[Rule], lans: Sequence[Lan], family: int) -> list[Match]:
    return [m for i, r in enumerate(rules) if (m := match(i, r, lans, family)) is not None]


def rule_families(config: Config) -> tuple[tuple[int, ...], ...]:
    """Per rule, the families of ``families(config)`` it can match (its ``to`` may hold
    one family's prefixes only); a rule that matches none is refused by ``check``."""
    return tuple(
        tuple(f for f in families(config) if match(i, r, config.lans, f) is not None)
        for i, r in enumerate(config.rules)
    )


# --------------------------------------------------------------------------- subsets


def _inside(inner: Ranges, outer: Ranges) -> bool:
    """Every range of ``inner`` lies within one of ``outer`` (both merged)."""
    return all(any(lo >= a and hi <= b for a, b in outer) for lo, hi in inner)


def _domain_covered(name: str, by: tuple[str, ...]) -> bool:
    # dnsmasq's nftset=/example.com/ also matches every name under example.com
    return any(name == d or name.endswith("." + d) for d in by)


def covers(outer: Match, inner: Match) -> bool:
    """Every connection ``inner`` matches, ``outer`` matches too."""
    if not all(_inside(i, o) for i, o in zip(inner.fields, outer.fields, strict=True)):
        return False
    if outer.plain:
        return True
    return bool(inner.domains) and all(_domain_covered(d, outer.domains) for d in inner.domains)


# --------------------------------------------------------------------------- regions


def _covers_rest(m: Match, dim: int, family: int) -> bool:
    everything = full(family)
    return all(m.fields[d] == (everything[d],) for d in range(dim, 4))


def _decisive(cands: Sequence[Match], dim: int, family: int) -> list[Match]:
    """The candidates up to the first plain one that matches the whole box (every
    candidate holds the fields before ``dim``): later ones never decide in it."""
    out: list[Match] = []
    for m in cands:
        out.append(m)
        if m.plain and _covers_rest(m, dim, family):
            break
    return out


def _contains(ranges: Ranges, lo: int, hi: int) -> bool:
    return any(a <= lo and hi <= b for a, b in ranges)


def regions(ms: Sequence[Match], family: int) -> list[Region]:
    """The key space of ``family`` cut into disjoint boxes that some rule decides.

    A box no rule matches is left out: such traffic follows the policy. Cuts one
    field at a time, only where a candidate's range starts or ends, and stops
    as soon as the deciding rules match the whole of what is left.
    """
    everything = full(family)
    out: list[Region] = []

    def cut(cands: list[Match], dim: int, box: tuple[Interval, ...]) -> None:
        cands = _decisive(cands, dim, family)
        if not cands:
            return
        if all(_covers_rest(m, dim, family) for m in cands):
            fields = (*box, *everything[len(box) :])
            out.append(Region(fields, tuple(m.rule for m in cands)))  # type: ignore[arg-type]
            if len(out) > MAX_REGIONS:
                raise OverflowError(f"more than {MAX_REGIONS} regions")
            return
        points = {everything[dim][0], everything[dim][1] + 1}
        for m in cands:
            for lo, hi in m.fields[dim]:
                points.update((lo, hi + 1))
        edges = sorted(points)
        run: tuple[int, list[Match]] | None = None
        for lo, nxt in pairwise(edges):
            sub = [m for m in cands if _contains(m.fields[dim], lo, nxt - 1)]
            if run is not None and [m.rule for m in run[1]] == [m.rule for m in sub]:
                continue  # the same candidates: one box with the run before
            if run is not None:
                cut(run[1], dim + 1, (*box, (run[0], lo - 1)))
            run = (lo, sub)
        if run is not None:
            cut(run[1], dim + 1, (*box, (run[0], everything[dim][1])))

    cut(list(ms), 0, ())
    return out


def reachable(ms: Sequence[Match], family: int) -> set[int]:
    """The rules (0-based) that decide at least one region of ``family``."""
    return {r for region in regions(ms, family) for r in region.rules}


def prefix_text(family: int, interval: Interval) -> str:
    """``first-last`` as nft reads an address range (``ip_network`` does the formatting)."""
    bits = FAMILY_BITS[family]
    lo, hi = (ip_network((v, bits)).network_address for v in interval)
    return f"{lo}-{hi}" if lo != hi else str(lo)
