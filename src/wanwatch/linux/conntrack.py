"""Conntrack through netlink (pyroute2's Conntrack): read flows, delete one uplink's flows.

When an uplink fails, its NATed connections are dead: the server answers
anything arriving from another address with a RST, and with static SNAT the
entries would even keep new packets on the dead address. Deleting just that
uplink's entries makes clients see the reset in about 0.6 s instead of 2.3 s
(LAB-NOTES). Everything else is left alone: never a global flush.

An uplink's entries are those carrying its ct mark (our nft table pins every
connection that leaves or arrives by an uplink) and those NATed to its address
(reply-direction destination == the uplink address: masquerade rewrote the
source to it, or the router itself spoke from it, e.g. flows older than our
table). The marked ones go in one kernel-side filtered delete
(IPCTNL_MSG_CT_DELETE with CTA_MARK/CTA_MARK_MASK: 0.7 ms for 300 flows in the
lab, where deleting them one by one after a decoded dump took 430 ms -- and the
daemon waits for it). They are counted just before by a dump the kernel filters
and we only count, without decoding. The few left that match the address are
found with CTA_FILTER on the reply tuple (kernel 5.8+) and deleted one by one;
one that vanished meanwhile (ENOENT) is not an error.

Per-uplink counters (:func:`usage`, behind ``wanwatch status``) read the same
marks: one dump, decoded here only as far as the mark, the addresses and the
byte counters. Bytes come from conntrack accounting
(``net.netfilter.nf_conntrack_acct``, off by default, set per namespace by
:func:`ensure_accounting`), not from nft counters: our table is replaced whole
on every failover, which would zero any counter in it, while an entry's
counters live as long as its connection and follow it whatever uplink table
is loaded. They count what the connections open now have moved, which is the
split an admin wants to see.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from pyroute2.conntrack import Conntrack
from pyroute2.netlink.exceptions import NetlinkError as _PyrNetlinkError
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

from wanwatch.errors import NetlinkError, SysctlError
from wanwatch.footprint import FWMARK_MASK
from wanwatch.linux.sysctl import PROC_SYS, SysctlChange


@dataclass(frozen=True)
class Flow:
    """One conntrack entry, both directions."""

    proto: int
    src: IPv4Address  # original direction
    dst: IPv4Address
    sport: int | None
    dport: int | None
    reply_src: IPv4Address
    reply_dst: IPv4Address  # the NAT address for a masqueraded flow
    mark: int
    zone: int | None
    id: int | None


def _flow(e: Any) -> Flow:
    o, r = e.tuple_orig, e.tuple_reply
    return Flow(
        proto=o.proto,
        src=IPv4Address(o.saddr),
        dst=IPv4Address(o.daddr),
        sport=o.sport,
        dport=o.dport,
        reply_src=IPv4Address(r.saddr),
        reply_dst=IPv4Address(r.daddr),
        mark=e.mark or 0,
        zone=e.zone,
        id=e.id,
    )


def _fail(op: str, exc: BaseException) -> NetlinkError:
    if isinstance(exc, _PyrNetlinkError):
        return NetlinkError(f"conntrack {op}: {os.strerror(exc.code)} (errno {exc.code})")
    if isinstance(exc, OSError):
        return NetlinkError(f"conntrack {op}: {exc.strerror or exc}")
    return NetlinkError(f"conntrack {op}: {exc}")


def dump(mark: int | None = None, mask: int = FWMARK_MASK) -> list[Flow]:
    """IPv4 flows; only those with ``ct mark & mask == mark`` when ``mark`` is given."""
    try:
        with Conntrack(nfgen_family=socket.AF_INET) as ct:
            if mark is None:
                return [_flow(e) for e in ct.dump_entries()]
            return [_flow(e) for e in ct.dump_entries(mark=mark, mark_mask=mask)]
    except (_PyrNetlinkError, OSError) as exc:
        raise _fail("dump", exc) from None


_NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_IPCTNL_MSG_CT_GET = (1 << 8) | 1  # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET
_CTA_MARK, _CTA_MARK_MASK = 8, 21
_NETLINK_NETFILTER = 12  # linux/netlink.h; not exported by Python's socket module
_NFGENMSG_SIZE = 4
_NLA_HDR = struct.Struct("=HH")  # nla_len, nla_type
_NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
# linux/netfilter/nfnetlink_conntrack.h
_CTA_TUPLE_ORIG = 1
_CTA_TUPLE_IP = 1
_CTA_IP_V4_SRC, _CTA_IP_V4_DST = 1, 2
_CTA_COUNTERS_ORIG, _CTA_COUNTERS_REPLY = 9, 10
_CTA_COUNTERS_BYTES, _CTA_COUNTERS32_BYTES = 2, 4


def _mark_filter(mark: int, mask: int) -> bytes:
    """CTA_MARK + CTA_MARK_MASK: the kernel returns only entries with ``mark & mask == mark``."""
    return (
        struct.pack("=HH", 8, _CTA_MARK)
        + struct.pack(">I", mark)
        + struct.pack("=HH", 8, _CTA_MARK_MASK)
        + struct.pack(">I", mask)
    )


def _dump_raw(attrs: bytes) -> Iterator[tuple[bytes, int, int]]:
    """Each entry of an IPv4 ctnetlink dump filtered by ``attrs``: (buffer, attrs start, end).

    Raw netlink, because decoding thousands of entries with pyroute2 would cost
    far more than the few fields we read. Raises OSError on a netlink error.
    """
    body = struct.pack("=BBH", socket.AF_INET, 0, 0) + attrs  # nfgenmsg: family, version, res_id
    request = _NLMSG_HDR.pack(
        _NLMSG_HDR.size + len(body), _IPCTNL_MSG_CT_GET, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0
    )
    with socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_NETFILTER
    ) as sock:
        sock.settimeout(10)
        sock.bind((0, 0))
        sock.send(request + body)
        while True:
            # A dump datagram is at most 32 KiB (netlink_recvmsg caps max_recvmsg_len).
            data = sock.recv(1 << 16)
            off = 0
            while off + _NLMSG_HDR.size <= len(data):
                length, kind = _NLMSG_HDR.unpack_from(data, off)[:2]
                if kind == _NLMSG_DONE:
                    return
                if kind == _NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, off + _NLMSG_HDR.size)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                else:
                    yield data, off + _NLMSG_HDR.size + _NFGENMSG_SIZE, off + length
                off += (max(length, _NLMSG_HDR.size) + 3) & ~3


def count_marked(mark: int, mask: int = FWMARK_MASK) -> int:
    """How many IPv4 entries have ``ct mark & mask == mark`` (a filtered dump, counted only)."""
    try:
        return sum(1 for _ in _dump_raw(_mark_filter(mark, mask)))
    except OSError as exc:
        raise _fail("count", exc) from None


# --------------------------------------------------------------------------- counters


Span = tuple[int, int]  # (value start, value end) of an attribute in a dump buffer


def _first(data: bytes, span: Span | None, *kinds: int) -> list[Span | None]:
    """The first attribute of each of ``kinds`` directly inside ``span`` (None where absent).

    Written for speed: it runs a few times per entry, on every entry of a dump.
    """
    found: list[Span | None] = [None] * len(kinds)
    if span is None:
        return found
    off, end = span
    unpack = _NLA_HDR.unpack_from
    while off + 4 <= end:
        length, kind = unpack(data, off)
        if length < 4 or off + length > end:
            break  # malformed: keep what was read
        kind &= _NLA_TYPE_MASK
        if kind in kinds:
            found[kinds.index(kind)] = (off + 4, off + length)
        off += (length + 3) & ~3
    return found


def _value(data: bytes, span: Span | None) -> bytes | None:
    return None if span is None else data[span[0] : span[1]]


def _bytes(data: bytes, counters: Span | None) -> int:
    """CTA_COUNTERS_BYTES (64 or 32 bit) inside a CTA_COUNTERS_* attribute; 0 without one."""
    wide, narrow = _first(data, counters, _CTA_COUNTERS_BYTES, _CTA_COUNTERS32_BYTES)
    value = _value(data, wide if wide is not None else narrow)
    return int.from_bytes(value, "big") if value else 0


def _entry(data: bytes, start: int, end: int) -> tuple[int, bytes | None, bytes | None, int, int]:
    """Mark, original source and destination address, original and reply bytes of one entry."""
    mark, tup, c_orig, c_reply = _first(
        data, (start, end), _CTA_MARK, _CTA_TUPLE_ORIG, _CTA_COUNTERS_ORIG, _CTA_COUNTERS_REPLY
    )
    value = _value(data, mark)
    (ip,) = _first(data, tup, _CTA_TUPLE_IP)
    src, dst = _first(data, ip, _CTA_IP_V4_SRC, _CTA_IP_V4_DST)
    return (
        int.from_bytes(value, "big") if value else 0,
        _value(data, src),
        _value(data, dst),
        _bytes(data, c_orig),
        _bytes(data, c_reply),
    )


@dataclass(frozen=True)
class Usage:
    """What the office's connections pinned to one uplink have moved so far."""

    connections: int = 0
    bytes_out: int = 0  # toward the internet
    bytes_in: int = 0  # toward the office

    def to_json(self) -> dict[str, int]:
        return {
            "connections": self.connections,
            "bytes_out": self.bytes_out,
            "bytes_in": self.bytes_in,
        }


def usage(
    uplinks: Mapping[str, tuple[int, IPv4Address | None]], mask: int = FWMARK_MASK
) -> dict[str, Usage]:
    """Per uplink name -> (ct mark, its address): connections open now and their bytes.

    An uplink's connections are the entries carrying its mark: our nft table
    pins every connection that leaves or arrives by an uplink. The router's
    own ones (source = the uplink's address: probes, the DNS forwarder) are
    left out, so a standby uplink reads 0. A connection that arrived from the
    internet (original destination = the uplink's address) counts its
    original direction as ``bytes_in``.
    """
    by_mark = {
        mark & mask: (name, address.packed if address else None)
        for name, (mark, address) in uplinks.items()
    }
    totals = {name: [0, 0, 0] for name in uplinks}
    try:
        # One dump for every uplink: a filtered dump still walks the whole table in
        # the kernel, so one walk per uplink would cost that many times more.
        for data, start, end in _dump_raw(b""):
            mark, src, dst, orig, reply = _entry(data, start, end)
            mine = by_mark.get(mark & mask)
            if mine is None:
                continue
            name, own = mine
            if own is not None and src == own:
                continue
            if own is not None and dst == own:
                orig, reply = reply, orig
            t = totals[name]
            t[0] += 1
            t[1] += orig
            t[2] += reply
    except OSError as exc:
        raise _fail("usage", exc) from None
    return {name: Usage(*t) for name, t in totals.items()}


ACCT_SYSCTL = ("net", "netfilter", "nf_conntrack_acct")


def ensure_accounting(root: Path = PROC_SYS) -> list[SysctlChange]:
    """Turn on conntrack byte accounting in this network namespace (per namespace, off by default).

    Entries created before it is on carry no counters (nf_conntrack_acct.c adds
    the extension at creation), so the backend sets it at start, before any
    connection of ours. Nothing happens where the file does not exist.
    """
    path = root.joinpath(*ACCT_SYSCTL)
    key = ".".join(ACCT_SYSCTL)
    try:
        old = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SysctlError(f"cannot read {key}: {exc.strerror}") from None
    if old == "1":
        return []
    try:
        path.write_text("1\n", encoding="ascii")
    except OSError as exc:
        raise SysctlError(f"cannot set {key}=1: {exc.strerror}") from None
    return [SysctlChange(key, old, "1")]


def flush_uplink(address: IPv4Address | None, mark: int | None, mask: int = FWMARK_MASK) -> int:
    """Delete the flows marked ``mark`` (under ``mask``) or NATed to ``address``; their count."""
    deleted = 0
    try:
        with Conntrack(nfgen_family=socket.AF_INET) as ct:
            if mark:
                deleted += count_marked(mark, mask)
                ct.flush(mark=mark, mark_mask=mask)
            if address is None:
                return deleted
            left = list(ct.dump_entries(tuple_reply=NFCTAttrTuple(daddr=str(address))))
            for e in left:
                kw: dict[str, Any] = {"tuple_orig": e.tuple_orig}
                if e.zone is not None:
                    kw["zone"] = e.zone
                try:
                    ct.entry("del", **kw)
                except _PyrNetlinkError as exc:
                    if exc.code != errno.ENOENT:  # already gone: timed out or closed meanwhile
                        raise
                    continue
                deleted += 1
    except (_PyrNetlinkError, OSError) as exc:
        raise _fail("flush", exc) from None
    return deleted
