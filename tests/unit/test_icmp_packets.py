"""ICMP echo packets: checksum, build, parse, and matching replies to probes (no root)."""

from __future__ import annotations

import asyncio
import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wanwatch.config.model import icmp as icmp_target
from wanwatch.errors import ProbeError
from wanwatch.probe import hub as hub_module
from wanwatch.probe.hub import ProbeHub
from wanwatch.probe.icmp import (
    ICMP6_ECHO_REPLY,
    ICMP6_ECHO_REQUEST,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    PAYLOAD_SIZE,
    EchoReply,
    Pending,
    PendingProbes,
    build_echo,
    checksum,
    icmp6_filter,
    kernel_rtt_ns,
    make_payload,
    parse_reply,
    parse_reply6,
)

TARGET = IPv4Address("198.51.100.10")
OTHER = IPv4Address("203.0.113.10")
ME = IPv4Address("10.1.0.2")


def reference_checksum(data: bytes) -> int:
    """RFC 1071 the long way: 16-bit words, end-around carry after every add."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src: IPv4Address, dst: IPv4Address, body: bytes, options: bytes = b"") -> bytes:
    """An IPv4 datagram around ``body`` as a raw socket hands it over (header included)."""
    ihl = 5 + len(options) // 4
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        ihl * 4 + len(body),
        0,
        0,
        64,
        1,
        0,
        src.packed,
        dst.packed,
    )
    return header + options + body


def reply_from(src: IPv4Address, ident: int, seq: int, payload: bytes = b"x" * 56) -> bytes:
    return ipv4(src, ME, build_echo(ident, seq, payload, icmp_type=ICMP_ECHO_REPLY))


# --------------------------------------------------------------------------- checksum


def test_checksum_rfc1071_example() -> None:
    # RFC 1071 section 3: these words sum to 0xDDF2 (one's complement).
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == ~0xDDF2 & 0xFFFF


def test_checksum_of_all_ones_and_zeros() -> None:
    assert checksum(b"\xff\xff\xff\xff") == 0x0000
    assert checksum(b"\x00\x00") == 0xFFFF
    assert checksum(b"") == 0xFFFF


@given(st.binary(max_size=200))
def test_checksum_matches_the_word_by_word_definition(data: bytes) -> None:
    assert checksum(data) == reference_checksum(data)


# --------------------------------------------------------------------------- build


def test_echo_request_layout_and_checksum() -> None:
    payload = make_payload(123_456_789)
    packet = build_echo(0x1234, 0xBEEF, payload)
    icmp_type, code, _csum, ident, seq = struct.unpack("!BBHHH", packet[:8])
    assert (icmp_type, code, ident, seq) == (ICMP_ECHO_REQUEST, 0, 0x1234, 0xBEEF)
    assert packet[8:] == payload
    # A correct checksum makes the whole message sum to zero.
    assert reference_checksum(packet) == 0


def test_payload_is_56_bytes_and_not_empty_or_zero() -> None:
    payload = make_payload(0)
    assert len(payload) == PAYLOAD_SIZE == 56
    # Some ISPs drop echo requests with an empty (or all-zero) payload.
    assert any(payload[8:])
    assert struct.unpack("!Q", make_payload(987_654_321)[:8]) == (987_654_321,)


@pytest.mark.parametrize(("ident", "seq"), [(-1, 0), (0x10000, 0), (0, -1), (0, 0x10000)])
def test_build_refuses_fields_wider_than_16_bits(ident: int, seq: int) -> None:
    with pytest.raises(ValueError, match="16-bit"):
        build_echo(ident, seq, b"payload")


# --------------------------------------------------------------------------- parse


def test_parse_echo_reply_roundtrip() -> None:
    payload = make_payload(42)
    reply = parse_reply(reply_from(TARGET, 7, 9, payload))
    assert reply == EchoReply(TARGET, 7, 9, payload)


def test_parse_honours_ip_options() -> None:
    body = build_echo(7, 9, b"abcd", icmp_type=ICMP_ECHO_REPLY)
    packet = ipv4(TARGET, ME, body, options=b"\x01\x01\x01\x00")  # NOP NOP NOP EOL
    assert parse_reply(packet) == EchoReply(TARGET, 7, 9, b"abcd")


def test_parse_ignores_bytes_past_the_ip_total_length() -> None:
    assert parse_reply(reply_from(TARGET, 7, 9, b"abcd") + b"\x00" * 6) == EchoReply(
        TARGET, 7, 9, b"abcd"
    )


def test_parse_odd_length_payload() -> None:
    assert parse_reply(reply_from(TARGET, 1, 2, b"abc")) == EchoReply(TARGET, 1, 2, b"abc")


def _with_code(icmp: bytes, code: int = 1) -> bytes:
    """``icmp`` with another code and its checksum made valid again."""
    body = icmp[:1] + bytes([code]) + b"\x00\x00" + icmp[4:]
    return body[:2] + checksum(body).to_bytes(2, "big") + body[4:]


def _corrupt(packet: bytes, index: int) -> bytes:
    return packet[:index] + bytes([packet[index] ^ 0x01]) + packet[index + 1 :]


@pytest.mark.parametrize(
    ("name", "packet"),
    [
        ("echo request", ipv4(TARGET, ME, build_echo(7, 9, b"abcd"))),
        ("bad checksum", _corrupt(reply_from(TARGET, 7, 9), 20 + 8 + 3)),
        ("truncated", reply_from(TARGET, 7, 9)[:-1]),
        ("header only", reply_from(TARGET, 7, 9)[:20]),
        ("too short for IPv4", b"\x45\x00\x00"),
        ("not ICMP", _corrupt(reply_from(TARGET, 7, 9), 9)),  # protocol 1 -> 0
        ("IPv6 version nibble", b"\x65" + reply_from(TARGET, 7, 9)[1:]),
        ("IHL below 5", b"\x44" + reply_from(TARGET, 7, 9)[1:]),
        ("non-zero code", ipv4(TARGET, ME, _with_code(build_echo(7, 9, b"ab", ICMP_ECHO_REPLY)))),
    ],
)
def test_parse_rejects(name: str, packet: bytes) -> None:
    assert parse_reply(packet) is None, name


@given(st.binary(max_size=120))
def test_parse_never_raises_on_garbage(data: bytes) -> None:
    result = parse_reply(data)
    assert result is None or isinstance(result, EchoReply)


# --------------------------------------------------------------------------- matching


def _sent(book: PendingProbes, seq: int, target: IPv4Address = TARGET) -> int:
    return book.add(Pending(seq, target, sent_ns=1000 + seq))


def test_take_matches_id_sequence_and_source() -> None:
    book = PendingProbes()
    wire = _sent(book, 5)
    reply = EchoReply(TARGET, 77, wire, b"")
    assert book.take(reply, ident=77) == Pending(5, TARGET, 1005)
    assert len(book) == 0


@pytest.mark.parametrize(
    ("why", "reply"),
    [
        ("foreign identifier", EchoReply(TARGET, 78, 5, b"")),
        ("unknown sequence", EchoReply(TARGET, 77, 6, b"")),
        ("different source", EchoReply(OTHER, 77, 5, b"")),
    ],
)
def test_take_refuses(why: str, reply: EchoReply) -> None:
    book = PendingProbes()
    _sent(book, 5)
    assert book.take(reply, ident=77) is None, why
    assert len(book) == 1  # the real probe is still waiting for its reply


def test_duplicate_reply_matches_once() -> None:
    book = PendingProbes()
    _sent(book, 5)
    reply = EchoReply(TARGET, 77, 5, b"")
    assert book.take(reply, 77) is not None
    assert book.take(reply, 77) is None


def test_caller_sequence_wider_than_16_bits_comes_back_whole() -> None:
    book = PendingProbes()
    wire = _sent(book, 70_000)
    assert wire == 70_000 & 0xFFFF
    probe = book.take(EchoReply(TARGET, 1, wire, b""), 1)
    assert probe is not None
    assert probe.seq == 70_000


def test_pending_is_bounded_oldest_first() -> None:
    book = PendingProbes(limit=3)
    for seq in range(5):
        _sent(book, seq)
    assert len(book) == 3
    assert book.evicted == 2
    assert book.take(EchoReply(TARGET, 1, 0, b""), 1) is None  # evicted
    assert book.take(EchoReply(TARGET, 1, 4, b""), 1) is not None


def test_reused_wire_sequence_replaces_the_old_probe() -> None:
    book = PendingProbes()
    _sent(book, 3, TARGET)
    _sent(book, 3 + 0x10000, OTHER)
    assert len(book) == 1
    assert book.take(EchoReply(TARGET, 1, 3, b""), 1) is None
    probe = book.take(EchoReply(OTHER, 1, 3, b""), 1)
    assert probe is not None
    assert probe.seq == 3 + 0x10000


def test_discard_only_forgets_the_same_caller_sequence() -> None:
    book = PendingProbes()
    _sent(book, 3 + 0x10000)
    book.discard(3)  # same wire sequence, different probe
    assert len(book) == 1
    book.discard(3 + 0x10000)
    assert len(book) == 0


# --------------------------------------------------------------------------- hub bookkeeping


def _noop(wan: str, seq: int, rtt: float, at: float, portal: str | None, family: int) -> None:
    raise AssertionError("no reply expected")


def test_identifiers_unique_per_uplink_and_wrap_at_16_bits() -> None:
    hub = ProbeHub(_noop, ident_base=0xFFFF)
    hub.add_uplink("a", "wan1", 1 << 16, None)
    hub.add_uplink("b", "wan2", 2 << 16, None)
    assert (hub.ident("a"), hub.ident("b")) == (0xFFFF, 0)


def test_identifier_survives_reconfiguration_and_is_not_reused_while_taken() -> None:
    hub = ProbeHub(_noop, ident_base=100)
    hub.add_uplink("a", "wan1", 1 << 16, None)
    hub.add_uplink("a", "ppp0", 1 << 16, IPv4Address("10.1.0.2"))
    hub.add_uplink("b", "wan2", 2 << 16, None)
    assert hub.ident("a") == 100
    assert hub.ident("b") == 101
    hub.remove_uplink("a")
    hub.add_uplink("c", "wan3", 3 << 16, None)
    assert hub.ident("c") not in {hub.ident("b")}
    assert set(hub.stats()) == {"b", "c"}


def test_two_hubs_draw_different_identifiers() -> None:
    # Random per instance; 16 bits, so compare a few draws rather than one.
    draws = set()
    for _ in range(8):
        hub = ProbeHub(_noop)
        hub.add_uplink("a", "wan1", 1 << 16, None)
        draws.add(hub.ident("a"))
    assert len(draws) > 1


def test_hub_opens_nothing_before_start_and_refuses_misuse() -> None:
    hub = ProbeHub(_noop)
    hub.add_uplink("a", "wan1", 1 << 16, None)
    assert hub.stats()["a"]["sent"] == 0
    with pytest.raises(ProbeError, match="before start"):
        hub.send("a", icmp_target(TARGET), 1)
    with pytest.raises(ProbeError, match="no uplink 'zz'"):
        hub.send("zz", icmp_target(TARGET), 1)
    hub.remove_uplink("zz")  # unknown: not an error


def test_start_without_raw_socket_permission_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused() -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(hub_module, "raw_socket", refused)
    hub = ProbeHub(_noop)
    hub.add_uplink("a", "wan1", 1 << 16, None)
    with pytest.raises(ProbeError, match="need root"):
        asyncio.run(hub.start())


# --------------------------------------------------------------------------- ICMPv6


def test_icmpv6_echo_reply_parsed_from_the_message_alone() -> None:
    message = build_echo(0x1234, 7, make_payload(0), ICMP6_ECHO_REPLY)
    reply = parse_reply6(message, "2001:db8:ffff::10")
    assert reply == EchoReply(IPv6Address("2001:db8:ffff::10"), 0x1234, 7, make_payload(0))
    # recvmsg names a link-local source with its scope: the address is what matters
    scoped = parse_reply6(message, "fe80::1%wan1")
    assert scoped is not None and scoped.source == IPv6Address("fe80::1")


@pytest.mark.parametrize(
    "message",
    [
        build_echo(1, 1, b"", ICMP6_ECHO_REQUEST),  # a request, not a reply
        build_echo(1, 1, b"", ICMP_ECHO_REPLY),  # ICMPv4's reply type
        build_echo(1, 1, b"", ICMP6_ECHO_REPLY)[:7],  # shorter than a header
        bytes([ICMP6_ECHO_REPLY, 1]) + bytes(6),  # code 1
    ],
    ids=["request", "v4-type", "short", "code"],
)
def test_anything_but_an_icmpv6_echo_reply_is_refused(message: bytes) -> None:
    assert parse_reply6(message, "2001:db8::1") is None


def test_icmpv6_filter_passes_only_echo_replies() -> None:
    words = struct.unpack("=8I", icmp6_filter(ICMP6_ECHO_REPLY))
    passed = [t for t in range(256) if not words[t >> 5] & (1 << (t & 31))]
    assert passed == [ICMP6_ECHO_REPLY]


def test_each_family_of_an_uplink_is_its_own_socket_and_identifier() -> None:
    hub = ProbeHub(_noop, ident_base=500)
    hub.add_uplink("a", "wan1", 1 << 16, ME)
    hub.add_uplink("a", "wan1", 1 << 16, IPv6Address("2001:db8:1::2"), family=6)
    hub.add_uplink("b", "wan2", 2 << 16, None)
    assert (hub.ident("a"), hub.ident("a", 6), hub.ident("b")) == (500, 501, 502)
    assert set(hub.stats()) == {"a", "b"} and set(hub.stats(6)) == {"a"}
    hub.remove_uplink("a", 6)
    assert hub.stats(6) == {} and set(hub.stats()) == {"a", "b"}
    hub.add_uplink("b", "wan2", 2 << 16, None, family=6)
    hub.remove_uplink("b")  # both families
    assert set(hub.stats()) == {"a"} and hub.stats(6) == {}


def test_a_source_of_the_other_family_is_refused() -> None:
    hub = ProbeHub(_noop)
    with pytest.raises(ProbeError, match="not an IPv6 address"):
        hub.add_uplink("a", "wan1", 1 << 16, ME, family=6)
    with pytest.raises(ProbeError, match="no uplink 'a' in the probe hub"):
        hub.ident("a", 6)


# --------------------------------------------------------------------------- kernel timestamps


def sent_at(mono_ns: int, wall_ns: int) -> Pending:
    return Pending(1, TARGET, mono_ns, wall_ns)


def test_rtt_comes_from_the_kernel_arrival_time_not_from_when_the_loop_read_it() -> None:
    p = sent_at(1_000_000_000, 5_000_000_000_000)
    # reply arrived 20 ms after sending; the busy loop read it 300 ms after sending
    assert kernel_rtt_ns(p, 1_300_000_000, 5_000_020_000_000) == 20_000_000


@pytest.mark.parametrize(
    "arrival_wall_ns",
    [
        5_000_000_000_000 - 3600 * 10**9,  # wall clock stepped back an hour
        5_000_000_000_000 + 3600 * 10**9,  # ... or forward
        None,  # no timestamp (control message missing)
    ],
    ids=["clock-back", "clock-forward", "none"],
)
def test_a_stepped_wall_clock_falls_back_to_the_monotonic_rtt(arrival_wall_ns: int | None) -> None:
    p = sent_at(1_000_000_000, 5_000_000_000_000)
    assert kernel_rtt_ns(p, 1_030_000_000, arrival_wall_ns) == 30_000_000
