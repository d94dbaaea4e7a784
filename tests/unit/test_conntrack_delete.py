"""The batched deletion of conntrack leftovers, against a fake netlink socket."""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator
from typing import Any, cast

import pytest
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

from wanwatch.errors import NetlinkError
from wanwatch.linux import conntrack
from wanwatch.linux.netlink import NetlinkSocket


def kernel_error(code: int, seq: int) -> bytes:
    """NLMSG_ERROR as the kernel sends it: header, -errno, the request's header
    (<linux/netlink.h> struct nlmsgerr, no extended ACK)."""
    request = struct.pack("=IHHII", 100, 0x0102, 1, seq, 0)
    return struct.pack("=IHHII", 36, 2, 0, seq, 0) + struct.pack("=i", code) + request


class Entry:
    def __init__(self, sport: int) -> None:
        self.tuple_orig = NFCTAttrTuple(
            saddr="10.1.0.1", daddr="198.51.100.10", proto=17, sport=sport, dport=53
        )
        self.zone = None


class FakeSocket:
    """Answers each send with an ENOENT for the sequence numbers in ``gone``."""

    def __init__(self, gone: set[int], code: int = -errno.ENOENT) -> None:
        self.gone = gone
        self.code = code
        self.sends: list[bytes] = []
        self.seqs: list[int] = []
        self._waiting: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sends.append(data)
        offset = 0
        while offset < len(data):
            length, kind, _, seq, _ = struct.unpack_from("=IHHII", data, offset)
            assert kind == (1 << 8) | 2  # NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_DELETE
            self.seqs.append(seq)
            if seq in self.gone:
                self._waiting.append(kernel_error(self.code, seq))
            offset += (length + 3) & ~3

    def receive(self) -> Iterator[bytes | None]:
        waiting, self._waiting = self._waiting, []
        if waiting:
            yield b"".join(waiting)


def delete(sock: FakeSocket, entries: list[Any]) -> int:
    return conntrack._delete(cast(NetlinkSocket, sock), entries)


def test_deletions_go_in_batches_and_only_failures_answer() -> None:
    entries = [Entry(1000 + i) for i in range(300)]
    sock = FakeSocket(gone={5, 130, 300})
    assert delete(sock, entries) == 297  # three had gone already (ENOENT): not an error
    assert len(sock.sends) == 3  # 128 + 128 + 44
    assert sock.seqs == list(range(1, 301))  # one request per entry


def test_another_failure_is_an_error() -> None:
    sock = FakeSocket(gone={1}, code=-errno.EPERM)
    with pytest.raises(NetlinkError, match="errno 1"):
        delete(sock, [Entry(1000)])


def test_nothing_to_delete_sends_nothing() -> None:
    sock = FakeSocket(gone=set())
    assert delete(sock, []) == 0 and sock.sends == []
