"""ICMP probes pinned to their uplink, in real network namespaces (root).

Topology (every namespace is ours, named "ww" + a per-run tag; nothing in the
root namespace):

    router  wan1 10.1.0.2 ── cust  10.1.0.1  isp1  upstream 10.255.1.2 ── i1 inet
            wan2 10.2.0.2 ── cust  10.2.0.1  isp2  upstream 10.255.2.2 ── i2 inet
    router2 wan1 10.1.1.2 ── cust2 10.1.1.1  isp1

The router's uplinks are dual-stack: wan<n> also has 2001:db8:<n>::2/64 (ISP n at
::1), and the internet holds an IPv6 target, so ICMPv6 probes are checked the same way.

The internet namespace holds the probe targets on ``lo``. The router's main
default route goes via ISP2, so a probe for uplink 1 that ignores its pinning
leaves through ISP2 and - masqueraded, like in a real office - comes back
"healthy". The test plays the backend: per-uplink tables with fwmark and source
rules from footprint. Each ISP counts the echo requests its customer ports
forward and drops foreign sources (BCP38), so a leak shows as a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import json
import os
import socket
import socketserver
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address, IPv6Address
from typing import Any, TypeVar

import dns.message
import dns.rrset
import pytest

from wanwatch import footprint
from wanwatch.config.model import DnsTarget, HttpTarget, Target, TcpTarget, icmp
from wanwatch.lab import netns, poll
from wanwatch.probe.hub import ProbeHub
from wanwatch.probe.icmp import ICMP_ECHO_REPLY, build_echo, make_payload

pytestmark = pytest.mark.lab

T = TypeVar("T")

TARGET = IPv4Address("198.51.100.10")
OTHER_HOST = IPv4Address("203.0.113.10")  # another host on the fake internet
SILENT = IPv4Address("203.0.113.99")  # on the internet's lo, but drops echo requests
WAN1 = IPv4Address("10.1.0.2")
WAN2 = IPv4Address("10.2.0.2")
R2_WAN1 = IPv4Address("10.1.1.2")
TARGET6 = IPv6Address("2001:db8:ffff::10")
WAN1_6 = IPv6Address("2001:db8:1::2")
WAN2_6 = IPv6Address("2001:db8:2::2")
MARK1, MARK2 = footprint.fwmark(0), footprint.fwmark(1)
TABLE1, TABLE2 = footprint.table_id(0), footprint.table_id(1)

# Generous bounds: a veth round trip takes well under a millisecond, but the
# machine is a loaded 2-core VM. Waits end early once the state is reached.
ANSWER_DEADLINE = 10.0
# The only sleeps here are what the tests are about: the pace of the probes they send
# (bounded in count), and the watch for a reply that must never come.
PACE = 0.005  # between two probes of one uplink
LEAK_GRACE = 0.5  # how long a silent uplink is watched for a late (leaked) reply

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


# --------------------------------------------------------------------------- namespace plumbing


def in_netns(ns: str, fn: Callable[[], T], timeout: float = 60) -> T:
    """Run ``fn`` on a fresh thread switched into namespace ``ns``; its sockets live there.

    setns(2) with CLONE_NEWNET moves only the calling thread, so the test
    process stays in the root namespace; the thread ends with ``fn``.
    """

    def enter_and_run() -> T:
        enter(ns)
        return fn()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(enter_and_run).result(timeout=timeout)


def enter(ns: str) -> None:
    """Move the calling thread into namespace ``ns`` (threads it starts follow it)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"setns {ns}: {os.strerror(code)}")
    finally:
        os.close(fd)


def run(ns: str, *argv: str) -> str:
    return netns.nsrun(ns, *argv).stdout


def nft(ns: str, script: str) -> None:
    proc = subprocess.run(
        netns.ns_argv(ns, ["nft", "-f", "-"]),
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"nft in {ns}: {proc.stderr.strip()}\n{script}")


def counter(ns: str, table: str, name: str) -> int:
    out = json.loads(run(ns, "nft", "-j", "list", "counter", "inet", table, name))
    for item in out["nftables"]:
        if "counter" in item:
            return int(item["counter"]["packets"])
    raise AssertionError(f"no counter {name} in {ns}")


@dataclass
class Lab:
    inet: str
    isp1: str
    isp2: str
    router: str
    router2: str

    def isp_count(self, isp: str, name: str) -> int:
        return counter(isp, "isp", name)

    def blackhole_isp1(self) -> None:
        """The LTE modem loses signal: ISP1 silently drops everything it would forward."""
        run(self.isp1, "nft", "add", "rule", "inet", "isp", "blackhole",
            "counter", "name", "blackholed", "drop")  # fmt: skip

    def uplink1_table_route(self) -> None:
        """What the backend does: the uplink table's default via the uplink's gateway."""
        run(self.router, "ip", "route", "replace", "default", "via", "10.1.0.1", "dev", "wan1",
            "table", str(TABLE1), "proto", str(footprint.RT_PROTO))  # fmt: skip


ISP_RULES = """
table inet isp {{
    counter echo_cust {{}}
    counter echo_cust2 {{}}
    counter bcp38 {{}}
    counter blackholed {{}}
    counter tcp_cust {{}}
    counter udp_cust {{}}
    chain blackhole {{}}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        jump blackhole
        iifname "cust" ip saddr != {cust_net} counter name bcp38 drop
        iifname "cust2" ip saddr != 10.1.1.0/24 counter name bcp38 drop
        iifname "cust" ip6 saddr != {cust_net6} ip6 saddr != fe80::/10 counter name bcp38 drop
        iifname "cust" icmp type echo-request counter name echo_cust
        iifname "cust" icmpv6 type echo-request counter name echo_cust
        iifname "cust2" icmp type echo-request counter name echo_cust2
        iifname "cust" meta l4proto tcp counter name tcp_cust
        iifname "cust" meta l4proto udp counter name udp_cust
    }}
}}
"""

ROUTER_NAT = """
table inet wwtest {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname { "wan1", "wan2" } masquerade
    }
}
"""

INET_SILENT = f"""
table inet host {{
    chain input {{
        type filter hook input priority filter; policy accept;
        ip daddr {SILENT} icmp type echo-request drop
    }}
}}
"""


def _build(lab: Lab) -> None:
    inet, isp1, isp2, r1, r2 = lab.inet, lab.isp1, lab.isp2, lab.router, lab.router2
    netns.veth(inet, "i1", isp1, "upstream")
    netns.veth(inet, "i2", isp2, "upstream")
    netns.veth(isp1, "cust", r1, "wan1")
    netns.veth(isp2, "cust", r1, "wan2")
    netns.veth(isp1, "cust2", r2, "wan1")
    for host in (TARGET, OTHER_HOST, SILENT):
        run(inet, "ip", "addr", "add", f"{host}/32", "dev", "lo")
    run(inet, "ip", "addr", "add", f"{TARGET6}/128", "dev", "lo")
    for n in (1, 2):  # nodad: the addresses are usable at once (no duplicate detection wait)
        run(inet, "ip", "addr", "add", f"2001:db8:ff0{n}::1/64", "dev", f"i{n}", "nodad")
        run(inet, "ip", "route", "add", f"2001:db8:{n}::/48", "via", f"2001:db8:ff0{n}::2")
    run(inet, "ip", "addr", "add", "10.255.1.1/30", "dev", "i1")
    run(inet, "ip", "addr", "add", "10.255.2.1/30", "dev", "i2")
    run(inet, "ip", "route", "add", "10.1.0.0/16", "via", "10.255.1.2")
    run(inet, "ip", "route", "add", "10.2.0.0/16", "via", "10.255.2.2")
    nft(inet, INET_SILENT)
    for isp, n, nets in ((isp1, 1, ("10.1.0.1/24", "10.1.1.1/24")), (isp2, 2, ("10.2.0.1/24",))):
        run(isp, "ip", "addr", "add", f"10.255.{n}.2/30", "dev", "upstream")
        for port, net in zip(("cust", "cust2"), nets, strict=False):
            run(isp, "ip", "addr", "add", net, "dev", port)
        run(isp, "ip", "route", "add", "default", "via", f"10.255.{n}.1")
        run(isp, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        run(isp, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        run(isp, "ip", "addr", "add", f"2001:db8:ff0{n}::2/64", "dev", "upstream", "nodad")
        run(isp, "ip", "addr", "add", f"2001:db8:{n}::1/64", "dev", "cust", "nodad")
        run(isp, "ip", "route", "add", "default", "via", f"2001:db8:ff0{n}::1")
        nft(isp, ISP_RULES.format(cust_net=f"10.{n}.0.0/24", cust_net6=f"2001:db8:{n}::/64"))
    # The router: main default via ISP2; the backend's per-uplink tables and rules.
    run(r1, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2")
    run(r1, "ip", "addr", "add", f"{WAN1}/24", "dev", "wan1")
    run(r1, "ip", "addr", "add", f"{WAN2}/24", "dev", "wan2")
    run(r1, "ip", "route", "add", "default", "via", "10.2.0.1")
    lab.uplink1_table_route()
    run(r1, "ip", "route", "add", "default", "via", "10.2.0.1", "dev", "wan2",
        "table", str(TABLE2), "proto", str(footprint.RT_PROTO))  # fmt: skip
    for i, (mark, table, addr) in enumerate(((MARK1, TABLE1, WAN1), (MARK2, TABLE2, WAN2))):
        run(r1, "ip", "rule", "add", "priority", str(footprint.RULE_PRIO_FWMARK + i),
            "fwmark", f"{mark:#x}/{footprint.FWMARK_MASK:#x}", "lookup", str(table))  # fmt: skip
        run(r1, "ip", "rule", "add", "priority", str(footprint.RULE_PRIO_SOURCE + i),
            "from", str(addr), "lookup", str(table))  # fmt: skip
    for n, addr6 in ((1, WAN1_6), (2, WAN2_6)):  # the same for IPv6 (ip -6 rule)
        run(r1, "ip", "addr", "add", f"{addr6}/64", "dev", f"wan{n}", "nodad")
        run(r1, "ip", "-6", "route", "add", "default", "via", f"2001:db8:{n}::1",
            "dev", f"wan{n}", "table", str(footprint.table_id(n - 1)))  # fmt: skip
        run(r1, "ip", "-6", "rule", "add", "priority", str(footprint.RULE_PRIO_FWMARK + n - 1),
            "fwmark", f"{footprint.fwmark(n - 1):#x}/{footprint.FWMARK_MASK:#x}",
            "lookup", str(footprint.table_id(n - 1)))  # fmt: skip
        run(r1, "ip", "-6", "rule", "add", "priority", str(footprint.RULE_PRIO_SOURCE + n - 1),
            "from", str(addr6), "lookup", str(footprint.table_id(n - 1)))  # fmt: skip
    run(r1, "ip", "-6", "route", "add", "default", "via", "2001:db8:2::1")
    nft(r1, ROUTER_NAT)
    # A second, single-uplink router behind ISP1: another daemon, another namespace.
    run(r2, "ip", "addr", "add", f"{R2_WAN1}/24", "dev", "wan1")
    run(r2, "ip", "route", "add", "default", "via", "10.1.1.1")
    run(r2, "ip", "route", "add", "default", "via", "10.1.1.1", "dev", "wan1",
        "table", str(TABLE1))  # fmt: skip
    run(r2, "ip", "rule", "add", "priority", str(footprint.RULE_PRIO_FWMARK),
        "fwmark", f"{MARK1:#x}/{footprint.FWMARK_MASK:#x}", "lookup", str(TABLE1))  # fmt: skip


@pytest.fixture
def lab() -> Iterator[Lab]:
    tag = netns.run_tag()
    names = [f"{netns.PREFIX}{role}{tag}" for role in ("I", "P", "Q", "R", "S")]
    with netns.namespaces(*names):
        built = Lab(*names)
        _build(built)
        yield built
    leftover = {n for n in netns.existing() if n.endswith(tag)}
    assert not leftover, f"namespaces left behind: {leftover}"


# --------------------------------------------------------------------------- driving a hub


@dataclass(frozen=True)
class Uplink:
    ifname: str
    mark: int
    source: IPv4Address | IPv6Address | None
    target: IPv4Address | IPv6Address = TARGET
    bind_device: bool = True

    @property
    def family(self) -> int:
        return self.target.version


PINNED1 = Uplink("wan1", MARK1, WAN1)
PINNED2 = Uplink("wan2", MARK2, WAN2)
# Follows the main table (via ISP2): the control that shows the target is reachable.
MAIN_ROUTE = Uplink("wan2", 0, None, bind_device=False)
PINNED1_6 = Uplink("wan1", MARK1, WAN1_6, TARGET6)
PINNED2_6 = Uplink("wan2", MARK2, WAN2_6, TARGET6)
MAIN_ROUTE_6 = Uplink("wan2", 0, None, TARGET6, bind_device=False)


@dataclass
class Outcome:
    replies: dict[str, list[int]] = field(default_factory=dict)  # wan -> sequences answered
    rtts: list[float] = field(default_factory=list)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)


def in_netns_async(ns: str, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run coroutine function ``main`` on its own event loop inside namespace ``ns``."""
    return in_netns(ns, lambda: asyncio.run(main()))


async def until(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until it holds (LabError after ANSWER_DEADLINE)."""
    await poll.until_async(check, ANSWER_DEADLINE, what, every=0.01)


async def drive(
    hub: ProbeHub,
    uplinks: dict[str, Uplink],
    count: int,
    silent: frozenset[str] = frozenset(),
    interval: float = PACE,
) -> None:
    """Send ``count`` probes per uplink; wait for the answers, and a grace for ``silent`` ones."""
    for seq in range(count):
        for wan, up in uplinks.items():
            hub.send(wan, icmp(up.target), seq)
        await asyncio.sleep(interval)
    waiting = [(w, up.family) for w, up in uplinks.items() if w not in silent]
    await until(lambda: not any(hub.stats(f)[w]["pending"] for w, f in waiting), "the answers")
    if silent:
        await asyncio.sleep(LEAK_GRACE)


def probe(
    ns: str,
    uplinks: dict[str, Uplink],
    count: int = 20,
    silent: frozenset[str] = frozenset(),
) -> Outcome:
    """Run one hub inside ``ns`` for ``count`` probes per uplink; its replies and stats."""
    return run_hub(ns, uplinks, lambda hub: drive(hub, uplinks, count, silent))


def run_hub(
    ns: str, uplinks: dict[str, Uplink], send: Callable[[ProbeHub], Coroutine[Any, Any, None]]
) -> Outcome:
    """A hub inside ``ns`` with ``uplinks``, probed by ``send``; its replies and stats."""
    outcome = Outcome()

    def on_reply(
        wan: str, seq: int, rtt: float, at: float, portal: str | None, family: int
    ) -> None:
        assert portal is None  # nothing here is a captive portal
        assert family == uplinks[wan].family
        outcome.replies.setdefault(wan, []).append(seq)
        outcome.rtts.append(rtt)

    async def main() -> None:
        hub = ProbeHub(on_reply)
        for wan, up in uplinks.items():
            hub.add_uplink(
                wan, up.ifname, up.mark, up.source, family=up.family, bind_device=up.bind_device
            )
        await hub.start()
        try:
            await send(hub)
            outcome.stats = {w: hub.stats(up.family)[w] for w, up in uplinks.items()}
        finally:
            await hub.close()

    in_netns_async(ns, main)
    return outcome


def send_replies(ns: str, to: IPv4Address, replies: list[tuple[IPv4Address, int, int]]) -> None:
    """From namespace ``ns``, send echo replies (source, identifier, sequence) to ``to``."""

    def forge() -> None:
        for source, ident, seq in replies:
            with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
                sock.bind((str(source), 0))  # a local address of the internet namespace
                packet = build_echo(ident, seq, make_payload(0), icmp_type=ICMP_ECHO_REPLY)
                sock.sendto(packet, (str(to), 0))

    in_netns(ns, forge)


# --------------------------------------------------------------------------- tests

N = 20


@pytest.mark.parametrize(
    "uplink1",
    [
        pytest.param(PINNED1, id="mark+device+source"),
        pytest.param(Uplink("wan1", MARK1, None), id="mark+device"),
        pytest.param(Uplink("wan1", MARK1, None, bind_device=False), id="mark-only"),
    ],
)
def test_each_uplink_is_probed_through_its_own_isp(lab: Lab, uplink1: Uplink) -> None:
    # The main default route points at ISP2, yet uplink 1's probes must cross ISP1.
    out = probe(lab.router, {"a": uplink1, "b": PINNED2}, count=N)
    assert sorted(out.replies["a"]) == list(range(N))
    assert sorted(out.replies["b"]) == list(range(N))
    assert lab.isp_count(lab.isp1, "echo_cust") == N
    assert lab.isp_count(lab.isp2, "echo_cust") == N
    # A socket bound to neither device nor address also sees uplink 2's replies.
    ignored = {"a": 0 if uplink1.bind_device else N, "b": 0}
    for wan in "ab":
        assert out.stats[wan] | {"ident": 0} == {
            "sent": N, "replies": N, "send_errors": 0, "ignored": ignored[wan],
            "pending": 0, "evicted": 0, "ident": 0, "last_errno": 0,
        }  # fmt: skip
    assert out.stats["a"]["ident"] != out.stats["b"]["ident"]
    assert all(0 < rtt < ANSWER_DEADLINE for rtt in out.rtts)


@pytest.mark.parametrize("uplink1", [PINNED1_6, Uplink("wan1", MARK1, None, TARGET6)],
                         ids=["mark+device+source", "mark+device"])  # fmt: skip
def test_icmpv6_probes_are_pinned_like_icmpv4(lab: Lab, uplink1: Uplink) -> None:
    # Both families of both uplinks at once: one hub, a second raw socket family.
    ups = {"a": uplink1, "b": PINNED2_6, "a4": PINNED1, "b4": PINNED2}
    out = probe(lab.router, ups, count=N)
    for wan in ups:
        assert sorted(out.replies[wan]) == list(range(N)), wan
        assert out.stats[wan]["sent"] == N and out.stats[wan]["ignored"] == 0
    # Each ISP forwarded its own customer's echo requests of both families, and no other.
    assert lab.isp_count(lab.isp1, "echo_cust") == 2 * N
    assert lab.isp_count(lab.isp2, "echo_cust") == 2 * N
    assert lab.isp_count(lab.isp2, "bcp38") == 0


def test_blackholed_ipv6_uplink_gets_no_reply_and_never_leaks(lab: Lab) -> None:
    lab.blackhole_isp1()
    out = probe(lab.router, {"a": PINNED1_6, "main": MAIN_ROUTE_6}, count=N, silent=frozenset("a"))
    assert "a" not in out.replies
    assert out.stats["a"]["sent"] == N and out.stats["a"]["pending"] == N
    assert sorted(out.replies["main"]) == list(range(N))
    assert lab.isp_count(lab.isp1, "blackholed") == N
    assert lab.isp_count(lab.isp2, "echo_cust") == N
    assert lab.isp_count(lab.isp2, "bcp38") == 0


def test_blackholed_uplink_gets_no_reply_and_never_leaks(lab: Lab) -> None:
    lab.blackhole_isp1()
    # "main" follows the main table (via ISP2): the target is reachable that way,
    # so a probe for uplink 1 that leaked would come back as a reply.
    out = probe(lab.router, {"a": PINNED1, "main": MAIN_ROUTE}, count=N, silent=frozenset("a"))
    assert "a" not in out.replies
    assert out.stats["a"]["sent"] == N
    assert out.stats["a"]["pending"] == N
    assert sorted(out.replies["main"]) == list(range(N))
    # ISP1 swallowed exactly uplink 1's probes; ISP2 forwarded only the control's.
    assert lab.isp_count(lab.isp1, "blackholed") == N
    assert lab.isp_count(lab.isp2, "echo_cust") == N
    assert lab.isp_count(lab.isp2, "bcp38") == 0


def test_carrier_loss_with_linkdown_routes_ignored_does_not_leak(lab: Lab) -> None:
    # The backend sets ignore_routes_with_linkdown=1; then uplink 1's table
    # route is skipped on carrier loss and rule lookup falls through to main.
    run(lab.router, "sysctl", "-qw", "net.ipv4.conf.all.ignore_routes_with_linkdown=1")
    run(lab.isp1, "ip", "link", "set", "cust", "down")
    leaky = Uplink("wan1", MARK1, WAN1, bind_device=False)
    out = probe(lab.router, {"a": PINNED1}, count=N, silent=frozenset("a"))
    assert "a" not in out.replies
    assert lab.isp_count(lab.isp2, "echo_cust") == 0
    # Without SO_BINDTODEVICE the same probes leak through ISP2 and come back
    # masqueraded: the wrong uplink reported healthy. This is why the hub binds
    # to the device, and it shows the leak counter above can see a leak.
    out = probe(lab.router, {"leaky": leaky}, count=N)
    assert sorted(out.replies["leaky"]) == list(range(N))
    assert lab.isp_count(lab.isp2, "echo_cust") == N


def test_device_binding_alone_fails_safely(lab: Lab) -> None:
    # docs/lab-notes.md: with no mark the kernel treats the target as on-link and ARPs for it.
    out = probe(lab.router, {"a": Uplink("wan1", 0, None)}, count=5, silent=frozenset("a"))
    assert "a" not in out.replies
    assert lab.isp_count(lab.isp1, "echo_cust") == 0
    assert lab.isp_count(lab.isp2, "echo_cust") == 0


def test_foreign_identifier_sequence_or_source_is_ignored(lab: Lab) -> None:
    seqs: list[int] = []

    async def main() -> tuple[dict[str, int], dict[str, int]]:
        hub = ProbeHub(lambda wan, seq, rtt, at, portal, family: seqs.append(seq))
        hub.add_uplink("a", "wan1", MARK1, WAN1)
        await hub.start()
        try:
            hub.send("a", icmp(SILENT), 1)  # SILENT never answers: seq 1 stays pending
            ident = hub.ident("a")
            wrong = [
                (OTHER_HOST, ident, 1),  # right identifier and sequence, wrong source
                (SILENT, ident ^ 0x5555, 1),  # foreign identifier
                (SILENT, ident, 2),  # a sequence never sent
            ]
            await asyncio.to_thread(send_replies, lab.inet, WAN1, wrong)
            await until(
                lambda: hub.stats()["a"]["ignored"] + hub.stats()["a"]["replies"] >= 3, "3 seen"
            )
            before = hub.stats()["a"]
            # The real answer, then a duplicate of it.
            right = [(SILENT, ident, 1), (SILENT, ident, 1)]
            await asyncio.to_thread(send_replies, lab.inet, WAN1, right)
            await until(
                lambda: hub.stats()["a"]["ignored"] + hub.stats()["a"]["replies"] >= 5, "5 seen"
            )
            return before, hub.stats()["a"]
        finally:
            await hub.close()

    before, after = in_netns_async(lab.router, main)
    assert (before["replies"], before["ignored"], before["pending"]) == (0, 3, 1)
    assert (after["replies"], after["ignored"], after["pending"]) == (1, 4, 0)
    assert seqs == [1]


def test_uplink_down_counts_send_errors_then_recovers(lab: Lab) -> None:
    seqs: list[int] = []

    async def main() -> tuple[dict[str, int], dict[str, int]]:
        hub = ProbeHub(lambda wan, seq, rtt, at, portal, family: seqs.append(seq))
        hub.add_uplink("a", "wan1", MARK1, WAN1)
        await hub.start()
        try:
            await asyncio.to_thread(run, lab.router, "ip", "link", "set", "wan1", "down")
            for seq in range(N):
                hub.send("a", icmp(TARGET), seq)  # must not raise
                await asyncio.sleep(PACE)
            await asyncio.sleep(LEAK_GRACE)
            down = hub.stats()["a"]
            # Link back; the kernel dropped the uplink table's route with the
            # link, so the backend puts it back.
            await asyncio.to_thread(run, lab.router, "ip", "link", "set", "wan1", "up")
            await asyncio.to_thread(lab.uplink1_table_route)
            for seq in range(N, 2 * N):
                hub.send("a", icmp(TARGET), seq)
                await asyncio.sleep(PACE)
            await until(lambda: hub.stats()["a"]["replies"] >= N, f"{N} replies")
            return down, hub.stats()["a"]
        finally:
            await hub.close()

    down, after = in_netns_async(lab.router, main)
    assert (down["sent"], down["send_errors"], down["replies"]) == (0, N, 0)
    assert down["last_errno"] == errno.ENETUNREACH
    assert down["pending"] == 0  # a probe that never left is not waited for
    assert sorted(seqs) == list(range(N, 2 * N))
    assert (after["sent"], after["send_errors"], after["replies"]) == (N, N, N)
    assert lab.isp_count(lab.isp2, "echo_cust") == 0


def test_recreated_interface_gets_a_fresh_socket(lab: Lab) -> None:
    # A ppp0 or USB modem goes away and comes back with a new ifindex; a socket
    # bound to the old index fails until the hub reopens it.
    seqs: list[int] = []

    def recreate() -> None:
        run(lab.router, "ip", "link", "del", "wan1")
        netns.veth(lab.isp1, "cust", lab.router, "wan1")
        run(lab.isp1, "ip", "addr", "add", "10.1.0.1/24", "dev", "cust")
        run(lab.router, "ip", "addr", "add", f"{WAN1}/24", "dev", "wan1")
        lab.uplink1_table_route()

    async def main() -> dict[str, int]:
        hub = ProbeHub(lambda wan, seq, rtt, at, portal, family: seqs.append(seq))
        hub.add_uplink("a", "wan1", MARK1, WAN1)
        await hub.start()
        try:
            await asyncio.to_thread(recreate)
            # Bounded: 200 probes, 50 ms apart (the pacing is the test's), stop at the
            # first answer.
            for seq in range(200):
                hub.send("a", icmp(TARGET), seq)
                await asyncio.sleep(0.05)
                if seqs:
                    break
            return hub.stats()["a"]
        finally:
            await hub.close()

    stats = in_netns_async(lab.router, main)
    assert seqs, f"no reply after the interface came back: {stats}"
    assert stats["send_errors"] >= 1  # the stale binding failed at least once
    assert lab.isp_count(lab.isp2, "echo_cust") == 0


def test_missing_interface_is_a_send_error_not_an_exception(lab: Lab) -> None:
    async def main() -> dict[str, int]:
        hub = ProbeHub(lambda wan, seq, rtt, at, portal, family: None)
        hub.add_uplink("a", "nosuch0", MARK1, None)
        await hub.start()
        try:
            for seq in range(3):
                hub.send("a", icmp(TARGET), seq)
            return hub.stats()["a"]
        finally:
            await hub.close()

    stats = in_netns_async(lab.router, main)
    assert (stats["sent"], stats["send_errors"]) == (0, 3)
    assert stats["last_errno"] == errno.ENODEV


def test_two_hubs_in_two_namespaces_share_nothing(lab: Lab) -> None:
    # Same identifier, same sequences, same target, at the same time: only the
    # namespace separates them. A raw socket sees only its own namespace.
    both = threading.Barrier(2, timeout=30)

    def session(ns: str) -> tuple[list[int], dict[str, int]]:
        seqs: list[int] = []

        async def main() -> dict[str, int]:
            hub = ProbeHub(
                lambda wan, seq, rtt, at, portal, family: seqs.append(seq), ident_base=0x4242
            )
            hub.add_uplink("a", "wan1", MARK1, None)
            await hub.start()
            try:
                await asyncio.to_thread(both.wait)
                for seq in range(N):
                    hub.send("a", icmp(TARGET), seq)
                    await asyncio.sleep(PACE)
                await until(lambda: hub.stats()["a"]["pending"] == 0, "no probe pending")
                await asyncio.to_thread(both.wait)  # both sockets stayed open throughout
                await asyncio.sleep(LEAK_GRACE)
                return hub.stats()["a"]
            finally:
                await hub.close()

        return seqs, in_netns_async(ns, main)

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(session, ns) for ns in (lab.router, lab.router2)]
        results = [f.result(timeout=60) for f in futures]
    for seqs, stats in results:
        assert sorted(seqs) == list(range(N))
        assert (stats["replies"], stats["ignored"], stats["ident"]) == (N, 0, 0x4242)
    assert lab.isp_count(lab.isp1, "echo_cust") == N
    assert lab.isp_count(lab.isp1, "echo_cust2") == N


def test_two_hubs_in_one_namespace_ignore_each_other(lab: Lab) -> None:
    # Two daemons in one namespace (a restart overlapping the old one): each
    # socket on wan1 sees every echo reply there. ISP1 drops hub x's probes
    # (by identifier), so the only replies x sees are y's - same target, same
    # sequences - and it must take none of them.
    x_ident, y_ident = 1000, 2000
    run(lab.isp1, "nft", "add", "rule", "inet", "isp", "blackhole",
        "icmp", "id", str(x_ident), "counter", "name", "blackholed", "drop")  # fmt: skip
    got: dict[str, list[int]] = {"x": [], "y": []}

    async def main() -> dict[str, dict[str, int]]:
        def recorder(name: str) -> Callable[[str, int, float, float, str | None, int], None]:
            return lambda wan, seq, rtt, at, portal, family: got[name].append(seq)

        hubs = {
            name: ProbeHub(recorder(name), ident_base=base)
            for name, base in (("x", x_ident), ("y", y_ident))
        }
        for hub in hubs.values():
            hub.add_uplink("a", "wan1", MARK1, WAN1)
            await hub.start()
        try:
            for seq in range(N):
                for hub in hubs.values():
                    hub.send("a", icmp(TARGET), seq)
                await asyncio.sleep(PACE)
            await until(lambda: hubs["y"].stats()["a"]["pending"] == 0, "y's answers")
            await until(lambda: hubs["x"].stats()["a"]["ignored"] >= N, "x ignoring y's replies")
            await asyncio.sleep(LEAK_GRACE)
            return {name: h.stats()["a"] for name, h in hubs.items()}
        finally:
            for hub in hubs.values():
                await hub.close()

    stats = in_netns_async(lab.router, main)
    assert lab.isp_count(lab.isp1, "blackholed") == N  # x's probes, and only those
    assert (stats["x"]["replies"], stats["x"]["ignored"], stats["x"]["pending"]) == (0, N, N)
    assert (stats["y"]["replies"], stats["y"]["ignored"], stats["y"]["pending"]) == (N, 0, 0)
    assert got["x"] == []
    assert sorted(got["y"]) == list(range(N))


# --------------------------------------------------------------------------- tcp, http, dns

WEB_PORT = 80
DNS_NAME = "www.lab.test"
METHOD_TARGETS: tuple[Target, ...] = (
    TcpTarget(address=TARGET, port=WEB_PORT),
    TcpTarget(address=TARGET, port=WEB_PORT + 1),  # closed: the target's kernel resets
    HttpTarget(address=TARGET, url=f"http://check.lab.test:{WEB_PORT}/generate_204"),
    DnsTarget(address=TARGET, name=DNS_NAME, answer=TARGET),
)


class _NoContent(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads the hub's counters, not a log."""


class _WebServer(ThreadingHTTPServer):
    def server_bind(self) -> None:
        """No reverse DNS of its own address (HTTPServer's getfqdn): nowhere to ask here."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(TARGET), WEB_PORT

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A TCP probe resets its connection right after the handshake: not an error here."""


@contextlib.contextmanager
def inet_servers(ns: str) -> Iterator[None]:
    """In ``ns``: HTTP answering 204 on TARGET:80, DNS answering A on TARGET:53."""
    stop = threading.Event()
    ready = threading.Barrier(3, timeout=10)
    web: list[_WebServer] = []

    def serve_web() -> None:
        enter(ns)
        web.append(_WebServer((str(TARGET), WEB_PORT), _NoContent))
        ready.wait()
        web[0].serve_forever(poll_interval=0.05)

    def serve_dns() -> None:
        enter(ns)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((str(TARGET), 53))
            sock.settimeout(0.05)
            ready.wait()
            while not stop.is_set():
                try:
                    data, peer = sock.recvfrom(512)
                except TimeoutError:
                    continue
                query = dns.message.from_wire(data)
                reply = dns.message.make_response(query)
                name = query.question[0].name
                reply.answer.append(dns.rrset.from_text(name, 60, "IN", "A", str(TARGET)))
                sock.sendto(reply.to_wire(), peer)

    threads = [threading.Thread(target=f, daemon=True) for f in (serve_web, serve_dns)]
    for t in threads:
        t.start()
    ready.wait()
    try:
        yield
    finally:
        stop.set()
        web[0].shutdown()
        web[0].server_close()
        for t in threads:
            t.join(timeout=10)


def probe_methods(ns: str, uplinks: dict[str, Uplink], count: int = 5) -> Outcome:
    """``count`` probes of each METHOD_TARGETS entry per uplink (seq = index * count + n)."""

    async def send(hub: ProbeHub) -> None:
        for n in range(count):
            for i, target in enumerate(METHOD_TARGETS):
                for wan in uplinks:
                    hub.send(wan, target, i * count + n)
            await asyncio.sleep(PACE)
        await until(lambda: not any(s["pending"] for s in hub.stats().values()), "the answers")

    return run_hub(ns, uplinks, send)


def test_tcp_http_and_dns_probes_cross_their_own_isp(lab: Lab) -> None:
    with inet_servers(lab.inet):
        out = probe_methods(lab.router, {"a": PINNED1, "b": PINNED2})
    every = list(range(len(METHOD_TARGETS) * 5))
    assert sorted(out.replies["a"]) == every and sorted(out.replies["b"]) == every
    for wan in "ab":
        stats = out.stats[wan]
        assert (stats["sent"], stats["replies"], stats["send_errors"], stats["ignored"]) == (
            20, 20, 0, 0,
        )  # fmt: skip
    # each ISP forwarded its own uplink's queries (one datagram each) and connections
    for isp in (lab.isp1, lab.isp2):
        assert lab.isp_count(isp, "udp_cust") == 5
        assert lab.isp_count(isp, "tcp_cust") >= 3 * 15  # at least SYN, ACK or RST each
    assert lab.isp_count(lab.isp1, "echo_cust") == 0  # and no ICMP at all


def test_tcp_http_and_dns_on_a_dead_uplink_get_no_answer_and_never_leak(lab: Lab) -> None:
    lab.blackhole_isp1()
    with inet_servers(lab.inet):
        dead = probe_methods(lab.router, {"a": PINNED1})
        assert "a" not in dead.replies
        assert dead.stats["a"]["replies"] == 0 and dead.stats["a"]["pending"] == 0
        # ISP1 swallowed them; nothing left through ISP2, although that path answers:
        assert lab.isp_count(lab.isp1, "blackholed") >= 20
        assert lab.isp_count(lab.isp2, "tcp_cust") == lab.isp_count(lab.isp2, "udp_cust") == 0
        control = probe_methods(lab.router, {"main": MAIN_ROUTE})
    assert len(control.replies["main"]) == 20


def test_tcp_and_dns_with_carrier_lost_do_not_leak_unless_unbound(lab: Lab) -> None:
    run(lab.router, "sysctl", "-qw", "net.ipv4.conf.all.ignore_routes_with_linkdown=1")
    run(lab.isp1, "ip", "link", "set", "cust", "down")
    with inet_servers(lab.inet):
        pinned = probe_methods(lab.router, {"a": PINNED1})
        # a connect fails at once (EHOSTUNREACH), a datagram is lost on the dead link
        assert "a" not in pinned.replies and pinned.stats["a"]["replies"] == 0
        assert lab.isp_count(lab.isp2, "tcp_cust") == lab.isp_count(lab.isp2, "udp_cust") == 0
        # the same probes without SO_BINDTODEVICE leave through ISP2 and come back:
        # the dead uplink reported healthy, which the device binding prevents
        leaky = probe_methods(lab.router, {"leaky": Uplink("wan1", MARK1, WAN1, bind_device=False)})
    # Leaked and answered; on a loaded machine one of the 20 may time out.
    assert len(leaky.replies["leaky"]) >= 15
    assert lab.isp_count(lab.isp2, "udp_cust") == 5


def test_a_connect_answered_only_by_a_retransmitted_syn_is_no_answer(lab: Lab) -> None:
    """A blackhole that clears while a connect waits: the kernel's SYN retransmission
    (after its 1 s initial RTO) completes it, but the probe's own SYN was lost."""
    lab.blackhole_isp1()
    target = TcpTarget(address=TARGET, port=WEB_PORT)
    got: list[float] = []

    async def main() -> dict[str, int]:
        hub = ProbeHub(lambda wan, seq, rtt, at, portal, family: got.append(rtt))
        hub.add_uplink("a", "wan1", MARK1, WAN1)
        await hub.start()
        try:
            hub.send("a", target, 1)
            await until(lambda: lab.isp_count(lab.isp1, "blackholed") >= 1, "the SYN dropped")
            await asyncio.to_thread(
                run, lab.isp1, "nft", "flush", "chain", "inet", "isp", "blackhole"
            )
            await until(lambda: hub.stats()["a"]["pending"] == 0, "the connect to end")
            hub.send("a", target, 2)  # the path answers again: a probe now counts
            await until(lambda: bool(got), "a reply")
            return hub.stats()["a"]
        finally:
            await hub.close()

    with inet_servers(lab.inet):
        stats = in_netns_async(lab.router, main)
    assert len(got) == 1 and got[0] < 0.5  # the second probe only, at the path's own RTT
    assert (stats["sent"], stats["replies"], stats["send_errors"]) == (2, 1, 0)
