"""Policy rules in the config: the model, every refusal with its line, and the region cut
checked against a first-match oracle."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wanwatch.config import load, loads
from wanwatch.config.fields import PortRange
from wanwatch.config.matches import Match, match, matches, regions
from wanwatch.config.model import Lan, Proto, Rule, Via, ViaUplink
from wanwatch.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OFFICE = EXAMPLES / "office.yaml"
RULES = EXAMPLES / "office-rules.yaml"
DUAL = Path(__file__).resolve().parents[1] / "golden" / "rules" / "dual-stack-rules.yaml"
A, B = "INET-UTAMA", "BACKUP-INET"


def office(rules: str, *, lan_dns: bool = False) -> str:
    """The reference office with ``rules``; its LANs' clients ask the router for DNS
    unless ``lan_dns`` (office.yaml hands them public resolvers)."""
    text = OFFICE.read_text()
    if not lan_dns:
        text = text.replace("      dns: [8.8.8.8, 8.8.4.4]\n", "")
    return text + "\nrules:\n" + rules


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(text, "t.yaml")
    return info.value.problems


def line_of(text: str, needle: str, nth: int = 1) -> int:
    hits = [
        i + 1
        for i, line in enumerate(text.splitlines())
        if needle in line and not line.lstrip().startswith("#")
    ]
    return hits[nth - 1]


def test_example_rules_load_with_every_field() -> None:
    cfg = load(RULES)
    guest, voip, bank, bulk = cfg.rules
    assert guest.from_ == ("WIFI",) and guest.via.names == (B,) and guest.when_down == "block"
    assert guest.via.mode == "failover" and guest.sticky.by == "none"
    assert voip.proto == "udp" and voip.ports == (PortRange(5060, 5061), PortRange(10000, 20000))
    assert bank.domains == ("bank.example",) and bank.to is None
    assert bulk.from_ == (IPv4Network("192.168.19.0/25"),)
    assert bulk.via.mode == "loadbalance"
    assert [(u.name, u.weight) for u in bulk.via.uplinks] == [(A, None), (B, 3)]
    assert bulk.sticky.by == "src" and bulk.sticky.timeout == 1800.0


def test_prefixes_of_either_family_and_lan_names_mix_in_the_matches() -> None:
    lans = load(OFFICE).lans
    r = Rule(
        name="mixed",
        from_=("ether3", IPv6Network("2001:db8:1::/48"), IPv4Network("10.9.0.0/16")),
        to=(IPv6Network("2001:db8:2::/48"), IPv4Network("198.51.100.0/24")),
        via=Via((ViaUplink(B),)),
        when_down="default",
    )
    m4, m6 = (match(0, r, lans, f) for f in (4, 6))
    assert m4 is not None and m6 is not None
    assert len(m4.fields[0]) == 2 and len(m6.fields[0]) == 1  # ether3's subnet is IPv4 only


@pytest.mark.parametrize(
    ("rule", "needle", "where"),
    [
        ("from: [ether3, 2001:db8:1::/48]", "2001:db8:1::/48", "rules[0].from[1]"),
        ("to: [198.51.100.0/24, 2001:db8:2::/48]", "2001:db8:2::/48", "rules[0].to[1]"),
        ("proto: icmpv6", "icmpv6", "rules[0].proto"),
    ],
)
def test_an_ipv6_match_in_an_office_without_ipv6_is_refused(
    rule: str, needle: str, where: str
) -> None:
    text = office(f"  - name: v6\n    {rule}\n    via: [{B}]\n    when_down: default\n")
    (p,) = problems(text)
    assert p.startswith(f"t.yaml:{line_of(text, needle)}: {where}: "), p
    assert "no IPv6 connection leaves by an uplink" in p


def dual(rules: str) -> str:
    """The dual-stack office of the rules' goldens (INET-UTAMA and BACKUP-INET have
    IPv6, DSL has none) with ``rules`` instead of its own."""
    text = DUAL.read_text()
    return text[: text.index("\nrules:\n")] + "\nrules:\n" + rules


@pytest.mark.parametrize(
    "rule",
    [
        "from: [ether3, 2001:db8:1::/48]",
        "to: [198.51.100.0/24, 2001:db8:2::/48]",
        "proto: icmpv6",
        "from: [fd19:2019:2020:20::/64]\n    to: [2001:db8:ffff::/48]",
    ],
)
def test_ipv6_matches_load_in_a_dual_stack_office(rule: str) -> None:
    cfg = loads(dual(f"  - name: v6\n    {rule}\n    via: [{B}]\n    when_down: default\n"))
    assert match(0, cfg.rules[0], cfg.lans, 6) is not None


def test_a_dual_stack_lan_in_from_matches_its_ipv6_prefix_too() -> None:
    cfg = load(DUAL)
    guest = cfg.rules[0]
    m4, m6 = (match(0, guest, cfg.lans, f) for f in (4, 6))
    assert m4 is not None and m6 is not None
    lo, hi = m6.fields[0][0]
    assert (IPv6Network((lo, 128)), IPv6Network((hi, 128))) == (
        IPv6Network("fd19:2019:2020:20::/128"),
        IPv6Network("fd19:2019:2020:20:ffff:ffff:ffff:ffff/128"),
    )
    assert match(3, cfg.rules[3], cfg.lans, 4) is None  # partner6: icmpv6 to an IPv6 prefix


@pytest.mark.parametrize("when_down", ["block", "default"])
def test_a_rule_matching_ipv6_via_uplinks_without_ipv6_is_refused_at_via(when_down: str) -> None:
    text = dual(f"  - name: old\n    from: [WIFI]\n    via: [DSL]\n    when_down: {when_down}\n")
    (p,) = problems(text)
    assert p.startswith(f"t.yaml:{line_of(text, 'via: [DSL]')}: rules[0].via: "), p
    assert "old matches IPv6 traffic, but no uplink of via has IPv6" in p
    assert f"when_down {when_down}" in p


@pytest.mark.parametrize(
    "rule",
    [
        "from: [192.168.20.0/24]",  # WIFI's IPv4 alone
        "from: [WIFI]\n    to: [198.51.100.0/24]",
        "from: [WIFI]\n    proto: icmp",
    ],
)
def test_an_ipv4_only_rule_may_use_an_uplink_without_ipv6(rule: str) -> None:
    loads(dual(f"  - name: v4\n    {rule}\n    via: [DSL]\n    when_down: block\n"))


def test_a_lan_with_only_ipv6_can_be_named_in_from() -> None:
    text = dual(f"  - name: six\n    from: [LAB6]\n    via: [{B}]\n    when_down: block\n")
    text = text.replace(
        "\ndns:\n", "\n  - name: LAB6\n    interface: ether5\n    address6: auto\n\ndns:\n"
    )
    cfg = loads(text)
    assert match(0, cfg.rules[0], cfg.lans, 4) is None
    assert match(0, cfg.rules[0], cfg.lans, 6) is not None


@pytest.mark.parametrize(
    ("rule", "needle", "message"),
    [
        (
            "from: [WIFI]\n    via: [NOPE]\n    when_down: block",
            "NOPE",
            "no uplink is named 'NOPE'",
        ),
        ("from: [GUESTS]\n    via: [%B]\n    when_down: block", "GUESTS", "no LAN is named"),
        ("via: [%B]\n    when_down: block", "name: r", "matches every connection"),
        ("from: [WIFI]\n    via: [%B]", "name: r", "required: block (fail closed)"),
        ("from: [WIFI]\n    via: [%B]\n    when_down: maybe", "maybe", "must be one of"),
        ("ports: 443\n    via: [%B]\n    when_down: block", "ports", "ports need proto"),
        ("proto: gre\n    ports: 1\n    via: [%B]\n    when_down: block", "ports", "gre has no"),
        (
            "to: 10.0.0.0/8\n    domains: a.example\n    via: [%B]\n    when_down: block",
            "domains",
            "not both",
        ),
        ("to: 10.0.0.1/8\n    via: [%B]\n    when_down: block", "to:", "did you mean 10.0.0.0/8"),
        ("proto: tcp\n    ports: 9-3\n    via: [%B]\n    when_down: block", "ports", "reversed"),
        ("from: [WIFI]\n    via: [%B, %B]\n    when_down: block", "via", "listed twice"),
        (
            "from: [WIFI]\n    via: {uplinks: [{name: %B, weight: 2}]}\n    when_down: block",
            "via",
            "weights need mode: loadbalance",
        ),
        (
            "from: [WIFI]\n    via: [%B]\n    sticky: always\n    when_down: block",
            "sticky",
            "must be one of",
        ),
    ],
)
def test_a_bad_rule_is_refused_at_its_line(rule: str, needle: str, message: str) -> None:
    text = office("  - name: r\n    " + rule.replace("%B", B) + "\n")
    (p,) = problems(text)
    assert p.startswith(f"t.yaml:{line_of(text, needle)}: rules[0]"), p
    assert message in p


SHADOWED = [
    # (earlier rule, later rule, shadowed?)
    ("from: [WIFI]", "from: [WIFI]\n    proto: tcp", True),
    ("from: [WIFI]\n    proto: tcp", "from: [WIFI]", False),
    ("proto: tcp+udp", "proto: udp\n    ports: [53, 5060-5061]", True),
    ("proto: udp\n    ports: 5000-6000", "proto: udp\n    ports: [5060, 6001]", False),
    ("to: 198.51.100.0/24", "to: 198.51.100.128/25\n    proto: icmp", True),
    ("to: 198.51.100.0/25", "to: 198.51.100.0/24", False),
    ("from: [192.168.20.0/23]", "from: [WIFI]", True),  # WIFI is 192.168.20.0/24
    ("from: [192.168.20.0/24]", "from: [WIFI, ether3]", False),
    ("domains: example.com", "domains: www.example.com", True),
    ("domains: www.example.com", "domains: example.com", False),
    ("domains: example.com", "to: 198.51.100.0/24", False),
    # no IPv6 in this office: a domain rule's connections are IPv4 ones
    ("to: 0.0.0.0/0", "domains: example.com", True),
]


@pytest.mark.parametrize(("first", "second", "shadowed"), SHADOWED)
def test_a_rule_an_earlier_one_covers_is_refused(first: str, second: str, shadowed: bool) -> None:
    text = office(
        f"  - name: one\n    {first}\n    via: [{A}]\n    when_down: block\n"
        f"  - name: two\n    {second}\n    via: [{B}]\n    when_down: block\n"
    )
    if not shadowed:
        loads(text)
        return
    (p,) = problems(text)
    assert p.startswith(f"t.yaml:{line_of(text, 'name: two')}: rules[1]: two can never match")
    assert "rules[0] (one) already takes all its traffic" in p


def test_a_domain_rule_after_all_of_ipv4_still_matches_ipv6_in_a_dual_stack_office() -> None:
    loads(
        dual(
            f"  - name: one\n    to: 0.0.0.0/0\n    via: [{A}]\n    when_down: block\n"
            f"  - name: two\n    domains: example.com\n    via: [{B}]\n    when_down: block\n"
        )
    )
    with pytest.raises(ConfigError, match="two can never match"):
        loads(
            dual(
                f'  - name: one\n    to: [0.0.0.0/0, "::/0"]\n    via: [{A}]\n'
                "    when_down: block\n"
                f"  - name: two\n    domains: example.com\n    via: [{B}]\n    when_down: block\n"
            )
        )


def test_a_rule_covered_by_two_earlier_ones_together_is_refused() -> None:
    text = office(
        f"  - name: low\n    proto: tcp\n    ports: 1-1023\n    via: [{A}]\n    when_down: block\n"
        f"  - name: high\n    proto: tcp\n    ports: 1024-65535\n    via: [{A}]\n"
        "    when_down: block\n"
        f"  - name: web\n    proto: tcp\n    ports: [80, 8080]\n    via: [{B}]\n"
        "    when_down: block\n"
    )
    (p,) = problems(text)
    assert "rules[2]: web can never match: the rules before it together" in p


def test_a_domains_rule_needs_the_lans_to_ask_the_router() -> None:
    text = office(
        f"  - name: bank\n    from: [WIFI]\n    domains: bank.example\n    via: [{B}]\n"
        "    when_down: block\n",
        lan_dns=True,
    )
    (p,) = problems(text)  # WIFI only: ether3's resolvers do not matter to this rule
    assert p.startswith(f"t.yaml:{line_of(text, 'domains:')}: rules[0].domains: LAN 'WIFI'")
    assert "hands out dhcp.dns 8.8.8.8, 8.8.4.4" in p
    no_upstream = office(
        f"  - name: bank\n    domains: bank.example\n    via: [{B}]\n    when_down: block\n"
    ).replace("  upstream: [8.8.8.8, 1.1.1.1]", "  upstream: []")
    (p,) = problems(no_upstream)
    assert "rules[0].domains: needs dns.upstream" in p


def test_no_shadow_report_when_a_field_was_rejected() -> None:
    # proto is rejected, so `two` would read as "any protocol" and look shadowed
    text = office(
        f"  - name: one\n    from: [WIFI]\n    via: [{A}]\n    when_down: block\n"
        f"  - name: two\n    from: [WIFI]\n    proto: sctp\n    via: [{B}]\n    when_down: block\n"
    )
    (p,) = problems(text)
    assert "rules[1].proto: must be one of" in p


# --------------------------------------------------------------------------- the region cut

LANS = (Lan(name="L", interface="l0"),)
PREFIXES = st.sampled_from(
    ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.128/25", "192.168.0.0/16"]
)
PORTS = st.sampled_from([(1, 1023), (80, 80), (443, 443), (1000, 2000), (53, 53)])


@st.composite
def rules_(draw: st.DrawFn) -> list[Rule]:
    out = []
    for i in range(draw(st.integers(1, 7))):
        protos: list[Proto | None] = [None, "tcp", "udp", "tcp+udp", "icmp"]
        proto = draw(st.sampled_from(protos))
        ports = None
        if proto in ("tcp", "udp", "tcp+udp") and draw(st.booleans()):
            ports = tuple(PortRange(*p) for p in draw(st.sets(PORTS, min_size=1, max_size=2)))
        src = draw(st.none() | st.sets(PREFIXES, min_size=1, max_size=2))
        dst = draw(st.none() | st.sets(PREFIXES, min_size=1, max_size=2))
        out.append(
            Rule(
                name=f"r{i}",
                from_=tuple(IPv4Network(p) for p in src) if src else None,
                to=tuple(IPv4Network(p) for p in dst) if dst else None,
                domains=("d.example",) if dst is None and draw(st.booleans()) else None,
                proto=proto,
                ports=ports,
                via=Via((ViaUplink("A"),)),
                when_down="block",
            )
        )
    return out


def first_match(ms: list[Match], key: tuple[int, int, int, int], in_sets: set[int]) -> int | None:
    """The oracle: walk the rules in order, as a rule list would."""
    for m in ms:
        inside = all(any(lo <= k <= hi for lo, hi in f) for f, k in zip(m.fields, key, strict=True))
        if inside and (m.plain or m.rule in in_sets):
            return m.rule
    return None


KEYS = st.tuples(
    st.sampled_from(
        ["10.1.2.200", "10.1.2.5", "10.1.9.9", "10.200.0.1", "192.168.3.3", "172.16.0.1"]
    ),
    st.sampled_from(["10.1.2.200", "10.1.2.5", "10.9.9.9", "192.168.1.1", "8.8.8.8"]),
    st.sampled_from([6, 17, 1, 47]),
    st.sampled_from([22, 53, 80, 443, 1500, 3000]),
)


@settings(max_examples=300, deadline=None)
@given(rules_(), st.lists(KEYS, min_size=1, max_size=20), st.sets(st.integers(0, 6)))
def test_one_lookup_in_the_regions_decides_as_the_rule_walk_does(
    rules: list[Rule], keys: list[tuple[str, str, int, int]], in_sets: set[int]
) -> None:
    ms = matches(rules, LANS, 4)
    cut = regions(ms, 4)
    for s, d, proto, port in keys:
        key = (int(ip_address(s)), int(ip_address(d)), proto, port)
        hits = [
            r for r in cut if all(lo <= k <= hi for (lo, hi), k in zip(r.fields, key, strict=True))
        ]
        assert len(hits) <= 1  # disjoint: the kernel's lookup has one answer
        # the dataplane: the region's domain candidates in order, then its last rule
        got = None
        if hits:
            got = next((c for c in hits[0].rules if c in in_sets or ms_plain(ms, c)), None)
        assert got == first_match(ms, key, in_sets)


def ms_plain(ms: list[Match], rule: int) -> bool:
    return next(m for m in ms if m.rule == rule).plain
