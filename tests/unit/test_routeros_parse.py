"""The RouterOS export reader: tokenizer, model, errors with line and reason, fuzzing."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wanwatch.errors import RouterOSError
from wanwatch.routeros.lexer import Piece, scan
from wanwatch.routeros.parse import (
    MAX_ROUTES,
    parse_duration,
    parse_file,
    parse_text,
    split_tokens,
    unquote,
)
from wanwatch.routeros.simulate import BASELINE, Evaluation
from wanwatch.routeros.verify import verify_text


def error_of(text: str) -> str:
    with pytest.raises(RouterOSError) as info:
        parse_text(text, "t.rsc")
    return str(info.value)


# --------------------------------------------------------------------------- tokenizer


def test_continuations_join_and_drop_indentation() -> None:
    text = 'add a=1 \\\n    b="x\\\n    y"\nadd c=2\n'
    assert list(scan(text)) == [
        Piece("statement", 1, 'add a=1 b="xy"'),
        Piece("statement", 4, "add c=2"),
    ]


def test_even_backslashes_do_not_continue() -> None:
    assert list(scan('add a="x\\\\"\nadd b=1')) == [
        Piece("statement", 1, 'add a="x\\\\"'),
        Piece("statement", 2, "add b=1"),
    ]


def test_strings_and_brackets_span_lines_blocks_and_semicolons_split() -> None:
    text = '{\n/system script add source="a\nb"; add x=1\n:if (1) do={\n :log info x\n}\n}\n# c\n'
    assert list(scan(text)) == [
        Piece("open", 1, "{"),
        Piece("statement", 2, '/system script add source="a\nb"'),
        Piece("statement", 3, "add x=1"),
        Piece("statement", 4, ":if (1) do={\n :log info x\n}"),
        Piece("close", 7, "}"),
        Piece("comment", 8, "# c"),
    ]


def test_quotes_and_brackets_stay_one_token() -> None:
    toks = split_tokens('set [ find comment="a b" ] comment="x y" z=1', "t", 1)
    assert toks == ["set", '[ find comment="a b" ]', 'comment="x y"', "z=1"]


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ('"a\\"b"', 'a"b'),
        ('"a\\\\b"', "a\\b"),
        ('"line\\r\\nnext"', "line\r\nnext"),
        ('"\\$x\\?"', "$x?"),
        ('"a\\_b"', "a b"),
        ('"\\C3\\A9t\\C3\\A9"', "été"),  # UTF-8 bytes written as \XX by /export
        ("plain", "plain"),
    ],
)
def test_unquote_escapes(raw: str, value: str) -> None:
    assert unquote(raw) == value


def test_both_path_syntaxes_and_commands_on_header_lines() -> None:
    e = parse_text(
        "/ip/route/add gateway=10.0.0.1\n"
        "/ip route add gateway=10.0.0.2 distance=2\n"
        "/ip route\nadd gateway=10.0.0.3 distance=3\n"
        "/ip/address\nadd address=10.0.0.9/24 interface=ether1\n"
    )
    assert [str(r.gateways[0].address) for r in e.routes] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert [r.distance for r in e.routes] == [1, 2, 3]
    assert e.skipped_lines == 0


def test_unmodelled_lines_are_counted_not_fatal() -> None:
    e = parse_text(
        "# comment; with a semicolon\n"
        "/interface bridge\nadd name=bridge\n"
        "/system identity set name=x\n"
        ":global foo 1\n"
        "/ip route\nadd gateway=10.0.0.1\nprint\nset 0 distance=3\n"
    )
    # bridge add, identity set, :global, print, set-by-number
    assert e.skipped_lines == 5
    assert e.routes[0].distance == 1


# --------------------------------------------------------------------------- model


def test_route_defaults_follow_the_manual() -> None:
    r = parse_text("/ip route\nadd gateway=10.0.0.1\n").routes[0]
    assert (r.dst, r.distance, r.scope, r.target_scope, r.check, r.table) == (
        IPv4Network("0.0.0.0/0"),
        1,
        30,
        10,
        None,
        "main",
    )


def test_route_tables_v7_and_marks_v6() -> None:
    v7 = parse_text(
        "/routing table add name=t1 fib\n/ip route add gateway=1.2.3.4 routing-table=t1"
    )
    v6 = parse_text("/ip route\nadd gateway=1.2.3.4 routing-mark=t1\n")
    assert v7.routes[0].table == v6.routes[0].table == "t1"
    assert v7.version == 7 and v6.version == 6
    assert v7.tables[0].name == "t1" and v7.tables[0].fib


def test_gateway_forms() -> None:
    e = parse_text("/ip route\nadd gateway=10.0.0.1%ether1,8.8.8.8@main,pppoe-out1\n")
    a, b, c = e.routes[0].gateways
    assert (a.address, a.interface, a.table) == (IPv4Address("10.0.0.1"), "ether1", None)
    assert (b.address, b.interface, b.table) == (IPv4Address("8.8.8.8"), None, "main")
    assert (c.address, c.interface, c.text) == (None, "pppoe-out1", "pppoe-out1")


def test_blackhole_v6_type_and_v7_flag() -> None:
    e = parse_text(
        "/ip route\nadd dst-address=1.1.1.1/32 type=blackhole\nadd dst-address=1.1.1.2 blackhole\n"
    )
    assert [r.kind for r in e.routes] == ["blackhole", "blackhole"]
    assert e.routes[1].dst == IPv4Network("1.1.1.2/32")


def test_set_remove_enable_apply_to_find_matches() -> None:
    e = parse_text(
        "/ip route\n"
        "add gateway=10.0.0.1 comment=A\n"
        "add gateway=10.0.0.2 comment=B\n"
        "add gateway=10.0.0.3 comment=wanwatch:x\n"
        'set [ find comment="A" ] distance=7\n'
        "disable [ find where comment=B ]\n"
        'remove [find where comment~"^wanwatch:"]\n'
    )
    assert [(r.comment, r.distance, r.disabled) for r in e.routes] == [
        ("A", 7, False),
        ("B", 1, True),
    ]


@pytest.mark.parametrize(
    ("pattern", "removed"),
    [
        ("^wan", ["wan-a", "wan-b"]),
        ("b\\$", ["wan-b"]),  # "$" starts a variable in RouterOS strings: written \$
        ("^wan-a\\$", ["wan-a"]),
        ("an-", ["wan-a", "wan-b"]),
        ("x\\\\.y", ["x.y"]),
        ("b$x", []),  # a variable: not evaluated
        ("wan.*", []),  # real regex operators are not evaluated: nothing matches
    ],
)
def test_find_regex_is_literal_with_anchors(pattern: str, removed: list[str]) -> None:
    names = ["wan-a", "wan-b", "x.y", "other"]
    text = "/ip route\n" + "".join(f"add gateway=1.1.1.1 comment={n}\n" for n in names)
    e = parse_text(text + f'remove [find comment~"{pattern}"]\n')
    assert [r.comment for r in e.routes] == [n for n in names if n not in removed]


def test_dhcp_and_pppoe_clients_add_their_default_routes() -> None:
    e = parse_text(
        "/ip dhcp-client\nadd interface=ether1 default-route-distance=3\n"
        "add interface=ether5 add-default-route=no\n"
        "/interface pppoe-client\nadd name=pppoe-out1 interface=ether2 add-default-route=yes\n"
        "add name=pppoe-out2 interface=ether3\n"
    )
    assert [(r.origin, r.gateway_text, r.distance) for r in e.routes] == [
        ("ip dhcp-client", "ether1", 3),
        ("interface pppoe-client", "pppoe-out1", 1),
    ]
    assert e.dynamic_addresses


def test_netwatch_and_dns_and_nat() -> None:
    e = parse_text(
        "/tool netwatch\n"
        'add host=8.8.8.8 type=icmp thr-avg=250ms down-script="/ip route disable 0"\n'
        "add host=example.com type=dns\n"
        "/ip dns\nset servers=1.1.1.1,9.9.9.9 allow-remote-requests=yes\n"
        "/ip firewall nat\nadd chain=srcnat action=masquerade out-interface-list=WAN\n"
    )
    (nw,) = e.netwatch
    assert (nw.host, nw.type, nw.thr_avg) == (IPv4Address("8.8.8.8"), "icmp", 0.25)
    assert e.dns_servers == ("1.1.1.1", "9.9.9.9")
    assert e.nat[0].out_interface_list == "WAN"
    assert e.skipped_lines == 1  # the DNS-name Netwatch probe


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1d", 86400.0), ("1h30m", 5400.0), ("500ms", 0.5), ("00:10:00", 600.0), ("30", 30.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_is_none() -> None:
    assert parse_duration("soon") is None


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('/ip route\nadd gateway=1.1.1.1 comment="open\n', 2, "unterminated quoted string"),
        ("/ip route\nadd gateway=[find\n", 2, "unclosed bracket"),
        ("/ip route\nadd gateway=1.1.1.1\x00\n", 2, "NUL byte"),
        ("just some text\nover two lines\n", 1, "not a RouterOS script"),
        ("", 1, "not a RouterOS script"),
    ],
)
def test_errors_name_line_and_reason(text: str, line: int, reason: str) -> None:
    msg = error_of(text)
    assert msg.startswith(f"t.rsc:{line}: "), msg
    assert reason in msg


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("/ip route\n\nadd gateway=1.1.1.1 distance=x\n", 3, "distance='x': not a whole number"),
        ("/ip route\nadd gateway=1.1.1.1 \\\n  distance=300\n", 2, "not a whole number 0-255"),
        ("/ip address\nadd address=10.0.0.300/24 interface=e\n", 2, "not an IPv4 address"),
        ("/ip address\nadd address=10.0.0.1/24\n", 2, "without interface"),
        ("/ip route\nadd dst-address=8.8.8.8/33 gateway=1.1.1.1\n", 2, "not an IPv4 prefix"),
        ("/ip route\nadd distance=2\n", 2, "route without gateway"),
        ("/ip route\nadd gateway=1.1.1.1 =x\n", 2, "is not a property name"),
        ("/ip route\nadd gateway=1.1.1.1]\n", 2, "unbalanced"),
        ("/ip dhcp-server\nadd name=d lease-time=forever\n", 2, "not a RouterOS duration"),
        ("/ip route\nadd gateway=$gw\n", 2, "uses $gw, whose value is not known"),
        ("/ip route\n}\n", 2, "unbalanced '}'"),
    ],
)
def test_bad_statements_are_notes_and_the_rest_is_read(text: str, line: int, reason: str) -> None:
    e = parse_text(text + "/ip route\nadd gateway=10.9.9.9 comment=after\n", "t.rsc")
    ((got_line, note),) = e.notes
    assert got_line == line and reason in note
    assert [r.comment for r in e.routes] == ["after"]


def test_unmodelled_sections_tolerate_odd_tokens() -> None:
    e = parse_text("/system script\n/interface bridge add =x\n")
    assert e.skipped_lines == 1


def test_too_many_routes_is_refused() -> None:
    text = "/ip route\n" + "".join(
        f"add gateway=10.0.{i // 250}.{i % 250 + 1}\n" for i in range(MAX_ROUTES + 1)
    )
    assert f"more than {MAX_ROUTES} routes" in error_of(text)


def test_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.rsc"
    with pytest.raises(RouterOSError, match=r"nope.rsc:1: cannot read"):
        parse_file(missing)
    latin = tmp_path / "latin.rsc"
    latin.write_bytes(b"/ip route\nadd comment=\xe9t\xe9 gateway=1.1.1.1\n")
    with pytest.raises(RouterOSError, match=r"latin.rsc:2: not UTF-8 text"):
        parse_file(latin)


# --------------------------------------------------------------------------- hostile input


HOSTILE_CASES = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "routeros" / "hostile.json").read_text()
)["cases"]


def hostile_text(case: dict[str, Any]) -> str:
    return "".join(text * times for text, times in case["parts"])


@pytest.mark.parametrize("case", HOSTILE_CASES, ids=[c["id"] for c in HOSTILE_CASES])
def test_hostile_input_is_refused_or_read_right(case: dict[str, Any]) -> None:
    """Each pathological input gets its exact answer (its cost is measured by
    bench/routeros_corpus.py, never asserted here)."""
    text = hostile_text(case)
    if "error" in case:
        with pytest.raises(RouterOSError) as info:
            verify_text(text, "h.rsc")
        assert str(info.value) == case["error"]
        return
    export = parse_text(text, "h.rsc")
    assert [[r.line, r.gateway_text] for r in export.routes] == case["routes"]
    assert [list(n) for n in export.notes] == case["notes"]
    assert len(verify_text(text, "h.rsc").scenarios) == case["scenarios"]


def test_hostile_netwatch_script_is_read_whole() -> None:
    (case,) = [c for c in HOSTILE_CASES if c["id"] == "netwatch-script-runs"]
    (nw,) = parse_text(hostile_text(case), "h.rsc").netwatch
    assert (str(nw.host), nw.down_script.count("/system script run x;")) == ("1.1.1.1", 2000)


def test_deep_recursive_chain_does_not_exhaust_the_stack() -> None:
    # 1.0.0.N resolves through 1.0.0.N+1 ... through the connected route of ether1.
    n = 1500
    lines = ["/ip address", "add address=10.0.0.2/24 interface=ether1", "/ip route"]
    lines.append(f"add dst-address=1.0.{n // 250}.{n % 250 + 1}/32 gateway=10.0.0.1 scope=10")
    for i in range(n):
        nxt = i + 1
        lines.append(
            f"add dst-address=1.0.{i // 250}.{i % 250 + 1}/32 "
            f"gateway=1.0.{nxt // 250}.{nxt % 250 + 1} scope=10 target-scope=10"
        )
    lines.append("add gateway=1.0.0.1 target-scope=10 check-gateway=ping")
    text = "\n".join(lines) + "\n"
    # Beyond MAX_RESOLVE_DEPTH the chain counts as unresolvable: no RecursionError.
    tables = Evaluation(parse_text(text, "deep.rsc"), BASELINE).tables()
    assert tables == {"main": None}
    with pytest.raises(RouterOSError, match=r"deep.rsc:1: .* too many to simulate"):
        verify_text(text, "deep.rsc")


def test_short_recursive_chain_resolves() -> None:
    text = (
        "/ip address\nadd address=10.0.0.2/24 interface=ether1\n/ip route\n"
        "add dst-address=1.0.0.3/32 gateway=10.0.0.1 scope=10\n"
        "add dst-address=1.0.0.2/32 gateway=1.0.0.3 scope=10 target-scope=10\n"
        "add gateway=1.0.0.2 target-scope=10\n"
    )
    choice = Evaluation(parse_text(text), BASELINE).tables()["main"]
    assert choice is not None
    assert (choice.gateway, choice.nexthop, choice.interface) == ("1.0.0.2", "10.0.0.1", "ether1")


_WORDS = st.sampled_from(
    [
        "/ip route",
        "/ip/route/add",
        "/ip address",
        "{",
        "}",
        ":do {",
        "} on-error={}",
        ":global g 10.0.0.1",
        ":local h",
        "gateway=$g",
        "gateway=$h",
        '"a\nb"',
        "\n# DHCP client can not run on slave interface!\n",
        "ip route disable [find comment=x]",
        "/interface pppoe-client",
        "/interface lte apn",
        "/ip dhcp-client",
        "/ppp profile",
        "profile=p",
        "name=p",
        "name=default",
        'on-up="/ip route set [find comment=x] gateway=\\$g"',
        'script=":if (\\$bound=1) do={ /ip route set [find comment=x] gateway=\\$\\"gw\\" }"',
        ":if (1) do={",
        "} else={",
        "name=pppoe-out1",
        "add-default-route=yes",
        "default-route-distance=2",
        "set [find default-name=lte1]",
        "/tool netwatch",
        "/routing table",
        "/ip firewall nat",
        "/ip firewall mangle",
        "add",
        "set",
        "remove",
        "disable",
        "[ find comment=x ]",
        "[find",
        "]",
        '"',
        "\\",
        "\n",
        "\\\n",
        ";",
        "#",
        ":",
        "gateway=10.0.0.1",
        "gateway=8.8.8.8",
        "gateway=8.8.8.8@main",
        "gateway=ether1",
        "dst-address=8.8.8.8",
        "scope=10",
        "target-scope=30",
        "check-gateway=ping",
        "distance=2",
        "distance=999",
        "routing-table=t",
        "routing-mark=t",
        "address=10.0.0.2/24",
        "interface=ether1",
        "host=8.8.8.8",
        'down-script="/ip route disable [find]"',
        "type=icmp",
        "thr-avg=10ms",
        "comment=x",
        "blackhole",
        "action=masquerade",
        "chain=srcnat",
        "out-interface=ether1",
        "=",
        " ",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_WORDS, max_size=60).map(" ".join))
def test_fuzz_structured(text: str) -> None:
    try:
        report = verify_text(text, "f.rsc")
    except RouterOSError as exc:
        assert str(exc).startswith("f.rsc:")
        return
    data = report.to_json()
    assert data["scenarios"][0]["id"] == "baseline"
    assert all("main" in s["tables"] for s in data["scenarios"])
    assert len({s["id"] for s in data["scenarios"]}) == len(data["scenarios"])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_fuzz_any_text(text: str) -> None:
    try:
        verify_text(text, "f.rsc")
    except RouterOSError as exc:
        assert str(exc).startswith("f.rsc:")


# --------------------------------------------------------------------------- line ends

CONTINUED = [
    "/ip route",
    "add dst-address=8.8.8.8 \\",
    "    gateway=10.1.0.1 scope=10",
    'add comment="two \\',
    '    halves" gateway=8.8.8.8 \\',
    "    check-gateway=ping",
    "",
    "/tool netwatch",
    'add host=8.8.8.8 down-script="/ip route \\',
    '    disable [find comment=x]"',
    "/ip route",
    "add distance=x gateway=1.1.1.1",
    "",
]


@pytest.mark.parametrize(
    "eol", ["\n", "\r\n", "\r\r\n", "\r"], ids=["LF", "CRLF", "CR-CR-LF", "CR"]
)
def test_every_line_end_style_reads_the_same(eol: str) -> None:
    export = parse_text(eol.join(CONTINUED), "e.rsc")
    assert [
        (r.line, str(r.dst), r.gateway_text, r.scope, r.check, r.comment) for r in export.routes
    ] == [
        (2, "8.8.8.8/32", "10.1.0.1", 10, None, ""),
        (4, "0.0.0.0/0", "8.8.8.8", 30, "ping", "two halves"),
    ]
    (nw,) = export.netwatch
    assert (nw.line, nw.down_script) == (9, "/ip route disable [find comment=x]")
    # Line numbers stay those an editor shows: the bad distance is on line 12.
    assert export.notes == ((12, "distance='x': not a whole number 0-255"),)
