"""Conntrack through netlink (pyroute2's Conntrack): read flows, delete one uplink's flows.

When an uplink fails, its NATed connections are dead: the server answers
anything arriving from another address with a RST, and with static SNAT the
entries would even keep new packets on the dead address. Deleting just that
uplink's entries makes clients see the reset in about 0.6 s instead of 2.3 s
(docs/lab-notes.md). Everything else is left alone: never a global flush.

An uplink's entries are those carrying its ct mark (our nft table pins every
connection that leaves or arrives by an uplink) and those NATed to its address
(reply-direction destination == the uplink address: masquerade rewrote the
source to it, or the router itself spoke from it, e.g. flows older than our
table). The marked ones go in one kernel-side filtered delete
(IPCTNL_MSG_CT_DELETE with CTA_MARK/CTA_MARK_MASK: 0.7 ms for 300 flows in the
lab, where deleting them one by one after a decoded dump took 430 ms). The
kernel reports no count for it, so the table's size is read just before and
just after (one stats message each, not a dump): a connection opened or expired
in that millisecond moves the figure by one. The few left that match the
address (unmarked: only flows older than our table can be, since it marks every
new connection by its uplink) are found with CTA_FILTER on the reply tuple
(kernel 5.8+: the kernel walks the table and sends only those) and deleted in
batches of requests; one that vanished meanwhile (ENOENT) is not an error. That
walk is the ``sweep``: once an uplink's flush has swept, every flow NATed to it
carries its mark until our table is missing again, so the backend sweeps only
at an uplink's first flush since its table went in (reconcile.py), and runs
every flush on a thread of its own after the routes (apply.py). Measured with
injected entries: bench/scale.py and bench/README.md.

Per-uplink connection counts (:func:`connections`, behind ``wanwatch status``)
read the same marks in one dump decoded by pyroute2 (about 0.1 ms per entry, on
the backend's counters thread, only when someone asks): the kernel keeps no
count per mark, so this one figure still costs a walk. Bytes and packets per
uplink come from nft counters (usage.py), which cost nothing per connection.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from pyroute2.conntrack import Conntrack
from pyroute2.netlink import NETLINK_NETFILTER, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError as _PyrNetlinkError
from pyroute2.netlink.marshal import Marshal
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_CTNETLINK
from pyroute2.netlink.nfnetlink.nfctsocket import IPCTNL_MSG_CT_DELETE, NFCTAttrTuple, nfct_msg

from wanwatch.errors import NetlinkError
from wanwatch.footprint import FWMARK_MASK
from wanwatch.linux.netlink import NetlinkSocket, named_errors

DELETE_BATCH = 128  # deletions per send: ~100 bytes each, errors fit the receive buffer
_MARSHAL = Marshal()


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


def dump(mark: int | None = None, mask: int = FWMARK_MASK) -> list[Flow]:
    """IPv4 flows; only those with ``ct mark & mask == mark`` when ``mark`` is given."""
    with named_errors("conntrack dump"), Conntrack(nfgen_family=socket.AF_INET) as ct:
        if mark is None:
            return [_flow(e) for e in ct.dump_entries()]
        return [_flow(e) for e in ct.dump_entries(mark=mark, mark_mask=mask)]


# --------------------------------------------------------------------------- counters


def connections(
    uplinks: Mapping[str, tuple[int, IPv4Address | None]], mask: int = FWMARK_MASK
) -> dict[str, int]:
    """Per uplink name -> (ct mark, its address): the office connections open on it now.

    An uplink's connections are the entries carrying its mark: our nft table
    pins every connection that leaves or arrives by an uplink. The router's
    own ones (source = the uplink's address: probes, the DNS forwarder) are
    left out, so a standby uplink reads 0.
    """
    by_mark = {
        mark & mask: (name, str(address) if address else None)
        for name, (mark, address) in uplinks.items()
    }
    counts = dict.fromkeys(uplinks, 0)
    # One dump for every uplink: a filtered dump still walks the whole table in
    # the kernel, so one walk per uplink would cost that many times more.
    with named_errors("conntrack usage"), Conntrack(nfgen_family=socket.AF_INET) as ct:
        for msg in ct.dump():
            mine = by_mark.get((msg.get_attr("CTA_MARK") or 0) & mask)
            if mine is None:
                continue
            name, own = mine
            ip = msg.get_nested("CTA_TUPLE_ORIG", "CTA_TUPLE_IP")
            if own is not None and ip is not None and ip.get_attr("CTA_IP_V4_SRC") == own:
                continue
            counts[name] += 1
    return counts


def flush_uplink(
    address: IPv4Address | IPv6Address | None,
    mark: int | None,
    mask: int = FWMARK_MASK,
    *,
    sweep: bool = True,
    family: int = 4,
) -> int:
    """Delete the flows of one address ``family`` marked ``mark`` (under ``mask``) and, if
    ``sweep``, the unmarked ones NATed to ``address``; their count. The kernel filters a
    flush by the request's family (ctnetlink_flush_conntrack,
    net/netfilter/nf_conntrack_netlink.c)."""
    deleted = 0
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    with named_errors("conntrack flush"), Conntrack(nfgen_family=af) as ct:
        if mark:
            before = ct.count()
            ct.flush(mark=mark, mark_mask=mask)
            deleted += max(0, before - ct.count())
        if address is None or not sweep:
            return deleted
        left = list(ct.dump_entries(tuple_reply=NFCTAttrTuple(family=af, daddr=str(address))))
    if not left:
        return deleted
    with (
        named_errors("conntrack flush"),
        NetlinkSocket(NETLINK_NETFILTER, what="conntrack deletions") as sock,
    ):
        return deleted + _delete(sock, left, af)


def _delete(sock: NetlinkSocket, entries: list[Any], af: int = socket.AF_INET) -> int:
    """Delete ``entries`` by their original tuple, DELETE_BATCH requests per send; how many
    went. No ACK is asked for, so only failures answer: the kernel handles a netlink
    request inside send() (net/netlink/af_netlink.c, netlink_unicast_kernel), so they
    are waiting when it returns. One already gone (ENOENT: expired or closed meanwhile)
    is not an error."""
    gone = 0
    for start in range(0, len(entries), DELETE_BATCH):
        chunk = entries[start : start + DELETE_BATCH]
        sock.send(b"".join(_delete_request(e, start + i + 1, af) for i, e in enumerate(chunk)))
        failed = 0
        for data in sock.receive():
            if data is None:  # answers lost (ENOBUFS): which deletions failed is unknown
                raise NetlinkError("conntrack flush: answers to deletions lost (ENOBUFS)")
            for code in _errors(data):
                if code != -errno.ENOENT:
                    raise NetlinkError(f"conntrack flush: {os.strerror(-code)} (errno {-code})")
                failed += 1
        gone += len(chunk) - failed
    return gone


def _delete_request(e: Any, seq: int, af: int = socket.AF_INET) -> bytes:
    kw: dict[str, Any] = {"tuple_orig": e.tuple_orig}
    if e.zone is not None:
        kw["zone"] = e.zone
    msg = nfct_msg.create_from(**kw)
    msg["nfgen_family"] = af
    msg["header"]["type"] = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE
    msg["header"]["flags"] = NLM_F_REQUEST
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def _errors(data: bytes) -> list[int]:
    """The errno of each failure reported in one datagram (negative, as the kernel sends it)."""
    return [
        -exc.code
        for msg in _MARSHAL.parse(data)
        if isinstance(exc := msg["header"].get("error"), _PyrNetlinkError)
    ]
