"""The Linux backend against a real kernel, in namespaces of our own.

::

    [lan] eth0 ── ether3 [rt] ether1 ── cust [ia] wan ── ispa [net] 198.51.100.10 (lo)
    192.168.19.10-17        ether2 ── cust [ib] wan ── ispb      TCP :8000, UDP :8001

Every link also has IPv6 in 2001:db8::/32 (the server at 2001:db8:ffff::10, each
ISP routing its customer /64 without NAT, so the server tells an IPv6 uplink by the
router's address on it: 2001:db8:a::2 = A, 2001:db8:b::2 = B); the LAN client has
fd00:19::10 behind the router's fd00:19::1. A config without IPv6 leaves it alone.

The router namespace ``rt`` is where the backend works (its worker thread is
born there, see ``inside``). Each ISP masquerades toward the fake internet, so
the server tells the uplink by the address it sees (203.0.113.1 = A, .5 = B),
and drops customer packets with a foreign source (BCP38, counted), so a packet
that leaves by the wrong uplink is caught instead of hidden by the ISP's NAT.
The server and the clients are sockets of this process, created inside their
namespaces; every loop is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from wanwatch.config import Config, loads
from wanwatch.engine.events import Event
from wanwatch.engine.intent import Health, Intent
from wanwatch.errors import NftError, WanwatchError
from wanwatch.footprint import DEFAULT_METRIC, RT_PROTO, fwmark
from wanwatch.lab import netns
from wanwatch.linux import conntrack, nft
from wanwatch.linux.apply import STATE_FILE, LinuxBackend, intent_from_config
from wanwatch.linux.nft import predict_bucket

pytestmark = pytest.mark.lab

SERVER = IPv4Address("198.51.100.10")
SERVER6 = IPv6Address("2001:db8:ffff::10")
TCP_PORT, UDP_PORT = 8000, 8001
ISP_OF = {"203.0.113.1": "A", "203.0.113.5": "B", "2001:db8:a::2": "A", "2001:db8:b::2": "B"}
CLIENT = "192.168.19.10"
FLUSH_TIMEOUT = 10.0  # a flush of the lab's few flows takes milliseconds
CLIENT6 = "fd00:19::10"
CLIENTS = [f"192.168.19.{10 + i}" for i in range(8)]
GOLDENS = Path(__file__).parents[1] / "golden" / "nft"

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Run this thread inside namespace ``ns`` for a while (setns is per thread).

    Sockets and threads created meanwhile stay in ``ns``; so do children such
    as ``nft``, and /proc/sys/net reads and writes.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        yield
    finally:
        back = _libc.setns(home, _CLONE_NEWNET)
        os.close(target)
        os.close(home)
        if back != 0:  # never carry on in the wrong namespace
            os._exit(70)


ISP_NFT = """table ip isp {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname "cust" ip saddr != {net} counter drop
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" masquerade
  }}
}}
table ip6 isp {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname "cust" ip6 saddr != {net6} counter drop
  }}
}}
"""


def config(
    mode: str = "failover",
    classifier: str = "both-addresses",
    weights: tuple[int, int] = (1, 1),
    with_b: bool = True,
    six: bool = False,
) -> Config:
    """A has its address in the config (we add it); B uses what ether2 already has.
    ``six``: dual-stack, each uplink's and the LAN's IPv6 address in the config."""
    a6 = "\n    address6: 2001:db8:a::2/64\n    gateway6: 2001:db8:a::1" if six else ""
    b6 = "\n    address6: 2001:db8:b::2/64\n    gateway6: 2001:db8:b::1" if six else ""
    lan6 = "\n    address6: fd00:19::1/64" if six else ""
    text = f"""
wans:
  - name: A
    interface: ether1
    address: 192.168.0.2/24
    gateway: 192.168.0.1{a6}
    priority: 1
    weight: {weights[0]}
    probe: {{targets: [198.51.100.1]}}
"""
    if with_b:
        text += f"""
  - name: B
    interface: ether2
    gateway: 192.168.18.1{b6}
    priority: 2
    weight: {weights[1]}
    probe: {{targets: [198.51.100.2]}}
"""
    text += f"""
lans:
  - name: office
    interface: ether3
    address: 192.168.19.1/24{lan6}
policy: {{mode: {mode}, classifier: {classifier}}}
"""
    return loads(text, "lab.yaml")


class Server:
    """Answers every TCP line and every UDP datagram with the address it came from."""

    def __init__(self, ns: str) -> None:
        with inside(ns):
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for sock, address in ((self.tcp, SERVER), (self.tcp6, SERVER6)):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((str(address), TCP_PORT))
            sock.listen(128)
            sock.settimeout(0.1)
        self.udp.bind((str(SERVER), UDP_PORT))
        self.udp.settimeout(0.1)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._accept, args=(self.tcp,), daemon=True),
            threading.Thread(target=self._accept, args=(self.tcp6,), daemon=True),
            threading.Thread(target=self._datagrams, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn, peer[0]), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket, peer: str) -> None:
        conn.settimeout(0.1)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                try:
                    conn.sendall((peer + "\n").encode() * data.count(b"\n"))
                except OSError:
                    return

    def _datagrams(self) -> None:
        while not self._stop.is_set():
            try:
                _, peer = self.udp.recvfrom(2048)
                self.udp.sendto(peer[0].encode(), peer)
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        for t in list(self._threads):
            t.join(timeout=2)
        self.tcp.close()
        self.tcp6.close()
        self.udp.close()


@dataclass
class Lab:
    tag: str
    state_dir: Path
    backends: list[LinuxBackend] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"ww{self.tag}{role}"

    @property
    def rt(self) -> str:
        return self.ns("rt")

    def backend(self, cfg: Config) -> LinuxBackend:
        """A backend whose worker is born in the router namespace (first call inside it)."""
        be = LinuxBackend(cfg, self.state_dir)
        self.backends.append(be)
        with inside(self.rt):
            be.carrier()  # creates the worker thread here, in rt
        return be

    def sh(self, role: str, *argv: str, check: bool = True) -> str:
        return netns.nsrun(self.ns(role), *argv, check=check).stdout


def build(tag: str) -> None:
    rt, ia, ib, net, lan = (f"ww{tag}{r}" for r in ("rt", "ia", "ib", "net", "lan"))
    # A veth whose ifindex equals its peer's is a "non-urgent" linkwatch event, and
    # the kernel batches those at most once a second, host-wide (net/core/link_watch.c):
    # carrier loss then reached a listener after ~970 ms instead of ~1.3 ms here.
    # A spare pair in each ISP makes its customer port's index differ from ours.
    for isp in (ia, ib):
        netns.ip("-n", isp, "link", "add", "spare0", "type", "veth", "peer", "name", "spare1")
    netns.veth(rt, "ether1", ia, "cust")
    netns.veth(rt, "ether2", ib, "cust")
    netns.veth(rt, "ether3", lan, "eth0")
    netns.veth(ia, "wan", net, "ispa")
    netns.veth(ib, "wan", net, "ispb")
    for isp, x, cust, public, peer, subnet in (
        (ia, "a", "192.168.0.1/24", "203.0.113.1/30", "203.0.113.2", "192.168.0.0/24"),
        (ib, "b", "192.168.18.1/24", "203.0.113.5/30", "203.0.113.6", "192.168.18.0/24"),
    ):
        netns.nsrun(isp, "ip", "addr", "add", cust, "dev", "cust")
        netns.nsrun(isp, "ip", "addr", "add", public, "dev", "wan")
        netns.nsrun(isp, "ip", "route", "add", "default", "via", peer)
        netns.nsrun(isp, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # IPv6: no DAD (nodad), so every address is usable at once
        netns.nsrun(isp, "ip", "addr", "add", f"2001:db8:{x}::1/64", "dev", "cust", "nodad")
        netns.nsrun(isp, "ip", "addr", "add", f"2001:db8:f{x}::1/64", "dev", "wan", "nodad")
        netns.nsrun(isp, "ip", "-6", "route", "add", "default", "via", f"2001:db8:f{x}::2")
        netns.nsrun(isp, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        rules = ISP_NFT.format(net=subnet, net6=f"2001:db8:{x}::/64")
        netns.sh(netns.ns_argv(isp, ["nft", "-f", "-"]), input=rules)
        peer6 = ("ispa", "ispb")[x == "b"]
        netns.nsrun(net, "ip", "addr", "add", f"2001:db8:f{x}::2/64", "dev", peer6, "nodad")
        netns.nsrun(
            net, "ip", "-6", "route", "add", f"2001:db8:{x}::/64", "via", f"2001:db8:f{x}::1"
        )
    netns.nsrun(net, "ip", "addr", "add", "203.0.113.2/30", "dev", "ispa")
    netns.nsrun(net, "ip", "addr", "add", "203.0.113.6/30", "dev", "ispb")
    netns.nsrun(net, "ip", "addr", "add", f"{SERVER}/32", "dev", "lo")
    netns.nsrun(net, "ip", "addr", "add", f"{SERVER6}/128", "dev", "lo")
    for i, addr in enumerate(CLIENTS):
        netns.nsrun(lan, "ip", "addr", "add", f"{addr}/24", "dev", "eth0")
        if i == 0:
            netns.nsrun(lan, "ip", "route", "add", "default", "via", "192.168.19.1")
    netns.nsrun(lan, "ip", "addr", "add", f"{CLIENT6}/64", "dev", "eth0", "nodad")
    netns.nsrun(lan, "ip", "-6", "route", "add", "default", "via", "fd00:19::1")
    # The router before wanwatch: its LAN address and B's address exist already.
    netns.nsrun(rt, "ip", "addr", "add", "192.168.19.1/24", "dev", "ether3")
    netns.nsrun(rt, "ip", "addr", "add", "192.168.18.2/24", "dev", "ether2")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    tag = netns.run_tag()
    names = [f"ww{tag}{r}" for r in ("rt", "ia", "ib", "net", "lan")]
    with netns.namespaces(*names):
        build(tag)
        server = Server(names[3])
        the_lab = Lab(tag, tmp_path / "state")
        try:
            yield the_lab
        finally:
            for be in the_lab.backends:
                be.close()  # ends the worker thread that lives in rt
            server.close()


# --------------------------------------------------------------------------- clients


def _line(sock: socket.socket) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(256)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf.decode().strip()


class Conn:
    """A TCP connection from the LAN client to the server (over IPv6 from ``CLIENT6``)."""

    def __init__(self, lab: Lab, src: str = CLIENT, sport: int = 0) -> None:
        six = src == CLIENT6
        with inside(lab.ns("lan")):
            self.sock = socket.socket(
                socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_STREAM
            )
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.settimeout(5)
        self.sock.bind((src, sport))
        self.sock.connect((str(SERVER6 if six else SERVER), TCP_PORT))
        self.sport = self.sock.getsockname()[1]

    def ask(self) -> str:
        """Which uplink the server sees this connection come through."""
        self.sock.sendall(b"?\n")
        return ISP_OF[_line(self.sock)]

    def close(self) -> None:
        self.sock.close()


def via(lab: Lab, src: str = CLIENT, sport: int = 0) -> str:
    """The uplink a new TCP connection takes."""
    c = Conn(lab, src, sport)
    try:
        return c.ask()
    finally:
        c.close()


def poll(check: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def marked(lab: Lab, uplink: int) -> str:
    """Send one UDP datagram from the router with uplink ``uplink``'s fwmark; who answers."""
    with inside(lab.rt):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, fwmark(uplink))
        sock.sendto(b"?", (str(SERVER), UDP_PORT))
        return ISP_OF[sock.recv(64).decode()]


def names(events: list[Event]) -> list[str]:
    return [e.name for e in events]


def bcp38_drops(lab: Lab) -> int:
    total = 0
    for isp in ("ia", "ib"):
        for family in ("ip", "ip6"):
            out = lab.sh(isp, "nft", "list", "chain", family, "isp", "forward")
            total += sum(int(n) for n in re.findall(r"counter packets (\d+)", out))
    return total


def ruleset(lab: Lab) -> str:
    """The router's nft ruleset without counter values: the probes' own packets move the
    usage counters (linux/usage.py), which is traffic, not a change of ours."""
    text = lab.sh("rt", "nft", "list", "ruleset")
    return re.sub(r"packets \d+ bytes \d+", "packets - bytes -", text)


def snapshot(lab: Lab) -> dict[str, Any]:
    """The router's addresses, routes (all tables) and rules of both families, and its nft
    ruleset (:func:`ruleset`), via ip/nft."""
    out: dict[str, Any] = {"nft": ruleset(lab)}
    for family in ("-4", "-6"):

        def j(*argv: str) -> Any:
            return json.loads(lab.sh("rt", "ip", family, "-j", *argv))  # noqa: B023 - called here

        out[f"addresses{family}"] = [
            (a["ifname"], [(i["local"], i["prefixlen"]) for i in a.get("addr_info", [])])
            for a in j("addr", "show")
        ]
        out[f"routes{family}"] = sorted(
            json.dumps(r, sort_keys=True) for r in j("route", "show", "table", "all")
        )
        out[f"rules{family}"] = [json.dumps(r, sort_keys=True) for r in j("rule", "show")]
    return out


def main_defaults(lab: Lab, family: str = "-4") -> dict[int, tuple[str, str]]:
    """metric -> (gateway, protocol) of the main table's defaults."""
    out = json.loads(lab.sh("rt", "ip", family, "-j", "route", "show", "default"))
    return {r.get("metric", 0): (r.get("gateway", ""), str(r.get("protocol", "boot"))) for r in out}


class RouteMonitor:
    """Every IPv4 route/rule/address notification in a namespace, in kernel order."""

    GROUPS = 0x10 | 0x40 | 0x80  # RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE

    def __init__(self, ns: str) -> None:
        with inside(ns):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((0, self.GROUPS))
        self.sock.setblocking(False)

    def read(self) -> list[tuple[int, dict[str, Any]]]:
        """(message type, route fields or {}) for everything heard so far."""
        out: list[tuple[int, dict[str, Any]]] = []
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return out
            off = 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                fields: dict[str, Any] = {}
                if kind in (24, 25):  # RTM_NEWROUTE, RTM_DELROUTE
                    m = rtmsg(data[off : off + length])
                    m.decode()
                    fields = {
                        "table": m.get_attr("RTA_TABLE") or m["table"],
                        "dst_len": m["dst_len"],
                        "metric": m.get_attr("RTA_PRIORITY") or 0,
                        "gateway": m.get_attr("RTA_GATEWAY"),
                        "proto": m["proto"],
                    }
                out.append((kind, fields))
                off += (length + 3) & ~3

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------- failover


def test_start_is_idempotent_and_a_restart_adopts_without_touching_anything(lab: Lab) -> None:
    cfg = config()
    first = lab.backend(cfg)
    evs = first.start()
    assert "address.add" in names(evs) and "nft.apply" in names(evs)
    first.apply(intent_from_config(cfg, active=("A",)))
    assert via(lab) == "A"
    assert (lab.state_dir / STATE_FILE).exists()
    before = snapshot(lab)

    first.close()  # as if killed: nothing is cleaned up
    monitor = RouteMonitor(lab.rt)
    try:
        second = lab.backend(cfg)
        for _ in range(2):  # start() twice: idempotent
            evs = second.start()
            assert names(evs) == ["backend.start"], evs
            assert evs[0].fields["nft"] == "adopted"
            assert evs[0].fields["adopted_defaults"] == 2  # primary A + fallback B
        assert second.apply(intent_from_config(cfg, active=("A",))) == []
        assert monitor.read() == []  # not one route, rule or address notification
    finally:
        monitor.close()
    assert snapshot(lab) == before
    assert via(lab) == "A"
    second.stop()


def test_switch_is_make_before_break_and_new_connections_follow(lab: Lab) -> None:
    cfg = config()
    be = lab.backend(cfg)
    be.start()
    be.apply(intent_from_config(cfg, active=("A",)))
    assert via(lab) == "A"
    defaults = {m: gw for m, (gw, _) in main_defaults(lab).items()}

    monitor = RouteMonitor(lab.rt)
    try:
        evs = be.apply(intent_from_config(cfg, active=("B",), health={"A": Health.DEGRADED}))
        heard = monitor.read()
    finally:
        monitor.close()
    switch = [e for e in evs if e.name == "route.switch"]
    assert len(switch) == 1, evs
    assert switch[0].fields["from"] == "A" and switch[0].fields["to"] == "B"
    assert isinstance(switch[0].fields["switch_ms"], float)

    # Replay what the kernel announced: the main table never lacked a default.
    for kind, f in heard:
        if f and f["table"] == 254 and f["dst_len"] == 0:
            if kind == 24:
                defaults[f["metric"]] = f["gateway"]
            else:
                assert f["metric"] != DEFAULT_METRIC, "our primary default was deleted"
                defaults.pop(f["metric"], None)
            assert defaults, "a moment without any default route"
    assert defaults[DEFAULT_METRIC] == "192.168.18.1"
    assert via(lab) == "B"
    assert be.apply(intent_from_config(cfg, active=("B",), health={"A": Health.DEGRADED})) == []
    assert bcp38_drops(lab) == 0
    be.stop()


def six(intent: Intent, active6: tuple[str, ...], flush6: tuple[str, ...] = ()) -> Intent:
    """``intent`` with the IPv6 policy's choice (the engine's per-family Intent)."""
    return replace(intent, active6=active6, flush6=flush6)


def test_ipv6_follows_active6_alone_and_a_full_cut_moves_both(lab: Lab) -> None:
    cfg = config(six=True)
    be = lab.backend(cfg)
    be.start()
    evs = be.apply(six(intent_from_config(cfg, active=("A",)), ("A",)))
    assert (via(lab), via(lab, CLIENT6)) == ("A", "A"), evs
    assert main_defaults(lab, "-6")[DEFAULT_METRIC] == ("2001:db8:a::1", "87")

    # A's IPv6 dies, its IPv4 lives (the engine: wan.degraded family=6): IPv6 alone moves
    flows = [Conn(lab), Conn(lab, CLIENT6)]
    evs = be.apply(six(intent_from_config(cfg, active=("A",)), ("B",), ("A",)))
    switch = [e for e in evs if e.name == "route.switch"]
    assert [(e.fields["from"], e.fields["to"], e.fields.get("family")) for e in switch] == [
        ("A", "B", 6)
    ], evs
    assert "conntrack.flush" not in names(evs)  # started by the pass, not waited for
    flush = flushed(be)
    assert [(e.fields["wan"], e.fields.get("family")) for e in flush] == [("A", 6)], evs
    assert (via(lab), via(lab, CLIENT6)) == ("A", "B")
    assert flows[0].ask() == "A"  # IPv4's flows of A are not touched
    for c in flows:
        c.close()
    assert main_defaults(lab, "-6")[DEFAULT_METRIC] == ("2001:db8:b::1", "87")
    assert be.apply(six(intent_from_config(cfg, active=("A",)), ("B",), ("A",))) == []
    assert be.flushes() == []

    # the whole uplink cut: both families on B
    down = intent_from_config(cfg, active=("B",), flush=("A",), health={"A": Health.DOWN})
    be.apply(six(down, ("B",), ("A",)))
    assert (via(lab), via(lab, CLIENT6)) == ("B", "B")
    assert bcp38_drops(lab) == 0
    be.stop()


def test_ipv6_marked_packets_of_an_ipv6_less_uplink_are_refused(lab: Lab) -> None:
    cfg = config(six=True)
    cfg = cfg.replace(wans=(cfg.wans[0], cfg.wans[1].replace(address6=None, gateway6=None)))
    be = lab.backend(cfg)
    be.start()
    be.apply(six(intent_from_config(cfg, active=("A",)), ("A",)))
    for uplink, fate in ((0, "A"), (1, None)):
        with inside(lab.rt):
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        with sock:
            sock.settimeout(5)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, fwmark(uplink))
            if fate is None:  # B's IPv6 table refuses: never out by A's IPv6
                with pytest.raises(OSError) as info:
                    sock.connect((str(SERVER6), TCP_PORT))
                assert info.value.errno == errno.EHOSTUNREACH
            else:
                sock.connect((str(SERVER6), TCP_PORT))
                sock.sendall(b"?\n")
                assert ISP_OF[_line(sock)] == fate
    be.stop()


def test_dual_stack_restart_adopts_both_families_and_stop_leaves_nothing(lab: Lab) -> None:
    # IPv6 forwarding stays on after stop, like ip_forward (sysctl.py); it adds the
    # kernel's anycast routes of the link-local prefix, so it is on before too.
    # A link-local address still in DAD gets its anycast route when DAD ends (with
    # forwarding on, net/ipv6/addrconf.c): wait for that before the snapshot.
    lab.sh("rt", "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    poll(lambda: not lab.sh("rt", "ip", "-6", "addr", "show", "tentative").strip(), "DAD")
    before = snapshot(lab)
    cfg = config(six=True)
    first = lab.backend(cfg)
    evs = first.start()
    added = {e.fields["address"] for e in evs if e.name == "address.add"}
    assert {"2001:db8:a::2/64", "2001:db8:b::2/64", "fd00:19::1/64"} <= added
    intent = six(intent_from_config(cfg, active=("A",)), ("A",))
    first.apply(intent)
    assert via(lab, CLIENT6) == "A"
    running = snapshot(lab)
    first.close()  # as if killed
    second = lab.backend(cfg)
    evs = second.start()
    assert names(evs) == ["backend.start"], evs
    assert evs[0].fields["adopted_defaults"] == 2  # IPv4's main defaults: primary A + B
    assert second.apply(intent) == []
    assert snapshot(lab) == running
    second.stop()
    assert snapshot(lab) == before


def test_flush_deletes_only_the_failed_uplinks_flows(lab: Lab) -> None:
    cfg = config()
    be = lab.backend(cfg)
    be.start()
    be.apply(intent_from_config(cfg, active=("A",)))
    on_a = Conn(lab, sport=41001)
    assert on_a.ask() == "A"
    # A degrades: new connections go to B, the flow on A stays pinned to A.
    be.apply(intent_from_config(cfg, active=("B",), health={"A": Health.DEGRADED}))
    on_b = Conn(lab, sport=41002)
    assert on_b.ask() == "B"
    assert on_a.ask() == "A"

    def flows() -> dict[int, conntrack.Flow]:
        with inside(lab.rt):
            return {f.sport: f for f in conntrack.dump() if f.sport in (41001, 41002)}

    before = flows()
    with inside(lab.rt):
        marked_a = conntrack.dump(mark=fwmark(0))
    assert [f.sport for f in marked_a] == [41001]
    assert before[41001].reply_dst == IPv4Address("192.168.0.2")
    assert before[41001].mark & 0x00FF0000 == fwmark(0)
    assert before[41002].reply_dst == IPv4Address("192.168.18.2")

    evs = be.apply(intent_from_config(cfg, active=("B",), flush=("A",), health={"A": Health.DOWN}))
    assert "conntrack.flush" not in names(evs)  # started by the pass, not waited for
    flush = flushed(be)
    assert len(flush) == 1 and flush[0].fields["wan"] == "A"
    assert flush[0].fields["deleted"] == 1
    after = flows()
    assert 41001 not in after
    assert after[41002].id == before[41002].id  # the same entry, untouched
    assert on_b.ask() == "B"
    # The client of the flushed flow learns at once: the server resets the stray packet.
    with pytest.raises(OSError):
        on_a.ask()
    on_a.close()
    on_b.close()
    # Still in intent.flush: not flushed again on the next apply.
    again = be.apply(
        intent_from_config(cfg, active=("B",), flush=("A",), health={"A": Health.DOWN})
    )
    assert "conntrack.flush" not in names(again)
    assert be.flushes() == []
    be.stop()


def flushed(be: LinuxBackend) -> list[Event]:
    """The events of the conntrack flushes the last passes started, once they ended."""
    return [e for job in be.flushes() for e in job.result(timeout=FLUSH_TIMEOUT)]


def udp_flows(lab: Lab, first_port: int, count: int) -> None:
    """``count`` UDP flows from the client, each answered once (conntrack entries stay 30 s)."""
    with inside(lab.ns("lan")):
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for i, s in enumerate(socks):
            s.settimeout(5)
            s.bind((CLIENT, first_port + i))
            s.sendto(b"?", (str(SERVER), UDP_PORT))
        for s in socks:
            s.recv(64)
    finally:
        for s in socks:
            s.close()


def test_flush_counts_marked_flows_and_catches_older_unmarked_ones(lab: Lab) -> None:
    # Before wanwatch: the admin NATs out of A by hand; these flows carry no mark of ours.
    rt = lab.rt
    netns.nsrun(rt, "ip", "addr", "add", "192.168.0.2/24", "dev", "ether1")
    netns.nsrun(rt, "ip", "route", "add", "default", "via", "192.168.0.1", "metric", "500")
    netns.nsrun(rt, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    netns.sh(
        netns.ns_argv(rt, ["nft", "-f", "-"]),
        input="table ip admin {\n chain post {\n  type nat hook postrouting priority srcnat;\n"
        '  oifname "ether1" masquerade\n }\n}\n',
    )
    udp_flows(lab, 48000, 20)
    cfg = config()
    be = lab.backend(cfg)
    be.start()
    be.apply(intent_from_config(cfg, active=("A",)))
    udp_flows(lab, 48100, 150)  # pinned to A by our table
    be.apply(intent_from_config(cfg, active=("B",), health={"A": Health.DEGRADED}))
    udp_flows(lab, 48300, 30)  # on B
    with inside(rt):
        flows = conntrack.dump()
    on_a = [f for f in flows if f.reply_dst == IPv4Address("192.168.0.2")]
    on_b = {f.id for f in flows if f.reply_dst == IPv4Address("192.168.18.2")}
    assert len(on_a) == 170 and len(on_b) == 30
    assert sum(1 for f in on_a if f.mark & 0x00FF0000 == 0) == 20
    be.apply(intent_from_config(cfg, active=("B",), flush=("A",), health={"A": Health.DOWN}))
    (flush,) = flushed(be)
    assert flush.fields["deleted"] == 170 and flush.fields["swept"] is True
    with inside(rt):
        left = conntrack.dump()
    assert not [f for f in left if f.reply_dst == IPv4Address("192.168.0.2")]
    assert {f.id for f in left if f.reply_dst == IPv4Address("192.168.18.2")} == on_b
    # A back and failed again: every flow on it now carries its mark, no second sweep.
    be.apply(intent_from_config(cfg, active=("A",)))
    udp_flows(lab, 48400, 10)
    be.apply(intent_from_config(cfg, active=("B",), flush=("A",), health={"A": Health.DOWN}))
    (again,) = flushed(be)
    assert again.fields["deleted"] == 10 and again.fields["swept"] is False
    be.stop()


def test_stop_leaves_the_router_exactly_as_before(lab: Lab) -> None:
    # The admin's own things, planted before wanwatch starts: all must survive.
    rt = lab.rt
    netns.nsrun(rt, "ip", "addr", "add", "10.200.0.1/24", "dev", "ether3")
    netns.nsrun(rt, "ip", "route", "add", "10.201.0.0/24", "via", "10.200.0.2")
    netns.nsrun(rt, "ip", "route", "add", "default", "via", "192.168.18.1", "metric", "500")
    netns.nsrun(rt, "ip", "rule", "add", "from", "10.202.0.0/16", "lookup", "100", "pref", "1000")
    netns.sh(
        netns.ns_argv(rt, ["nft", "-f", "-"]),
        input="table ip admin {\n chain input {\n  type filter hook input priority 0;\n }\n}\n",
    )
    before = snapshot(lab)
    cfg = config()
    be = lab.backend(cfg)
    be.start()
    be.apply(intent_from_config(cfg, active=("A",)))
    assert via(lab) == "A"
    be.apply(intent_from_config(cfg, active=("B",), flush=("A",), health={"A": Health.DOWN}))
    assert via(lab) == "B"
    assert main_defaults(lab)[500] == ("192.168.18.1", "boot")  # never touched
    evs = be.stop()
    assert evs[-1].name == "backend.stop" and evs[-1].fields["nft"] is True
    assert snapshot(lab) == before
    assert not (lab.state_dir / STATE_FILE).exists()


def test_a_foreign_default_at_our_metric_is_never_overwritten(lab: Lab) -> None:
    netns.nsrun(
        lab.rt,
        "ip",
        "route",
        "add",
        "default",
        "via",
        "192.168.18.1",
        "metric",
        str(DEFAULT_METRIC),
    )
    netns.nsrun(lab.rt, "ip", "route", "add", "default", "via", "192.168.18.1", "metric", "0")
    cfg = config()
    be = lab.backend(cfg)
    be.start()
    evs = be.apply(intent_from_config(cfg, active=("A",)))
    conflict = [e for e in evs if e.name == "route.conflict"]
    assert len(conflict) == 1 and conflict[0].fields["metric"] == DEFAULT_METRIC
    assert conflict[0].fields["wan"] == "A"
    assert "route.shadowed" in names(evs)  # the metric-0 default carries traffic, not us
    assert "route.switch" not in names(evs)
    defaults = main_defaults(lab)
    assert defaults[DEFAULT_METRIC] == ("192.168.18.1", "boot")
    assert defaults[0] == ("192.168.18.1", "boot")
    # Reported once, not on every apply; the kernel is left as it is.
    assert be.apply(intent_from_config(cfg, active=("A",))) == []
    be.stop()
    assert main_defaults(lab) == {
        DEFAULT_METRIC: ("192.168.18.1", "boot"),
        0: ("192.168.18.1", "boot"),
    }


def test_nft_failure_leaves_the_running_ruleset(lab: Lab) -> None:
    cfg = config()
    be = lab.backend(cfg)
    be.start()
    be.apply(intent_from_config(cfg, active=("A",)))
    running = ruleset(lab)
    good = nft.render(intent_from_config(cfg, active=("A",)), cfg)
    bad = good.replace("masquerade\n", "masquerade to :99999\n")  # port out of range
    with inside(lab.rt), pytest.raises(NftError, match="rejected"):
        nft.apply_ruleset(bad)
    assert ruleset(lab) == running

    # Through the backend: a ruleset that cannot be rendered is an event, not a crash,
    # and the route step still ran.
    intent = intent_from_config(cfg, active=("B",))
    broken = replace(intent, masquerade=('we"ird',))
    evs = be.apply(broken)
    errors = [e for e in evs if e.name == "backend.error"]
    assert [e.fields["step"] for e in errors] == ["nft"]
    assert "route.switch" in names(evs)
    assert ruleset(lab) == running
    be.stop()


def test_an_address_we_cannot_record_is_not_added(lab: Lab) -> None:
    """Stop must know every address we add; if the state dir is unusable, we add none."""
    lab.state_dir.parent.mkdir(parents=True, exist_ok=True)
    lab.state_dir.write_text("not a directory")
    cfg = config()
    be = lab.backend(cfg)
    with pytest.raises(WanwatchError, match="cannot record"):
        be.start()
    evs = be.apply(intent_from_config(cfg, active=("B",)))
    assert [e.fields["step"] for e in evs if e.name == "backend.error"] == ["address"]
    assert "192.168.0.2" not in lab.sh("rt", "ip", "-4", "addr", "show", "ether1")
    assert "route.switch" in names(evs)  # B needs no address of ours: routing goes on
    be.stop()


@pytest.mark.parametrize("golden", sorted(p.name for p in GOLDENS.glob("*.nft")))
def test_every_golden_passes_nft_check(golden: str) -> None:
    """The kernel accepts every golden ruleset (nft -c in a namespace of our own)."""
    ns = f"ww{netns.run_tag()}c"
    with netns.namespaces(ns):
        text = nft.transaction((GOLDENS / golden).read_text())
        proc = netns.sh(netns.ns_argv(ns, ["nft", "-c", "-f", "-"]), check=False, input=text)
        assert proc.returncode == 0, proc.stderr


def test_carrier_loss_kernel_falls_back_and_the_watcher_hears_it(lab: Lab) -> None:
    cfg = config()
    be = lab.backend(cfg)
    be.start()
    be.apply(intent_from_config(cfg, active=("A",)))
    assert be.carrier() == {"ether1": True, "ether2": True}
    # Marked packets of the router itself (how probes are pinned) leave by their uplink.
    assert (marked(lab, 0), marked(lab, 1)) == ("A", "B")
    with be.link_watcher() as watcher:
        assert watcher.read() == []
        heard: list[tuple[str, bool]] = []

        def hear(change: tuple[str, bool]) -> bool:
            select.select([watcher], [], [], 0.1)
            heard.extend(watcher.read())
            return change in heard

        lab.sh("ia", "ip", "link", "set", "cust", "down")
        poll(lambda: hear(("ether1", False)), "the carrier loss on ether1")
        assert heard == [("ether1", False)]
        assert be.carrier() == {"ether1": False, "ether2": True}
        # No apply yet: the kernel already skips the dead route (ignore_routes_with_linkdown)
        # and new connections take B's fallback default.
        assert via(lab, sport=42001) == "B"
        # The router's own packet marked for A fails (our `unreachable default` in A's
        # table) instead of falling through to the main table and leaking out by B.
        with pytest.raises(OSError) as info:
            marked(lab, 0)
        assert info.value.errno == errno.EHOSTUNREACH
        assert marked(lab, 1) == "B"

        heard.clear()
        lab.sh("ia", "ip", "link", "set", "cust", "up")
        poll(lambda: hear(("ether1", True)), "the carrier coming back")
        assert be.carrier()["ether1"] is True
    assert bcp38_drops(lab) == 0
    be.stop()


def test_sysctls_change_in_the_router_namespace_only(lab: Lab) -> None:
    lab.sh("rt", "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1")  # strict, as on many hosts
    dev_rp = lab.sh("rt", "sysctl", "-n", "net.ipv4.conf.ether1.rp_filter").strip()
    root_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    root_rp = Path("/proc/sys/net/ipv4/conf/all/rp_filter").read_text()
    be = lab.backend(config())
    evs = be.start()
    changed = {
        e.fields["key"]: (e.fields["old"], e.fields["new"]) for e in evs if e.name == "sysctl.set"
    }
    assert changed["net.ipv4.ip_forward"] == ("0", "1")
    if dev_rp != "2":
        assert changed["net.ipv4.conf.ether1.rp_filter"] == (dev_rp, "2")
    assert changed["net.ipv4.conf.ether2.ignore_routes_with_linkdown"] == ("0", "1")
    got = lab.sh(
        "rt",
        "sysctl",
        "-n",
        "net.ipv4.ip_forward",
        "net.ipv4.conf.ether1.rp_filter",
        "net.ipv4.conf.ether1.ignore_routes_with_linkdown",
    )
    assert got.split() == ["1", "2", "1"]
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == root_forward
    assert Path("/proc/sys/net/ipv4/conf/all/rp_filter").read_text() == root_rp
    assert "sysctl.set" not in names(be.start())
    be.stop()


def test_reload_removes_what_only_the_old_config_had(lab: Lab) -> None:
    both = config()
    be = lab.backend(both)
    be.start()
    be.apply(intent_from_config(both, active=("A",)))
    assert 28701 in main_defaults(lab)  # B's fallback

    only_a = config(with_b=False)
    evs = be.reload(only_a)
    assert "backend.reload" in names(evs)
    tables = lab.sh("rt", "ip", "-4", "route", "show", "table", "all")
    assert "table 28702" not in tables
    assert "lookup 28702" not in lab.sh("rt", "ip", "rule")
    assert 28701 not in main_defaults(lab)
    assert main_defaults(lab)[DEFAULT_METRIC] == ("192.168.0.1", str(RT_PROTO))
    assert '"ether2"' not in lab.sh("rt", "nft", "list", "table", "inet", "wanwatch")
    assert "192.168.18.2/24" in lab.sh("rt", "ip", "-4", "addr", "show", "ether2")  # not ours
    assert via(lab) == "A"

    be.reload(both)
    be.apply(intent_from_config(both, active=("A",)))
    assert "lookup 28702" in lab.sh("rt", "ip", "rule")
    assert 28701 in main_defaults(lab)
    be.stop()


# --------------------------------------------------------------------------- loadbalance


def _expected(
    classifier: str, buckets: tuple[str, ...], src: str, sport: int, proto: int = 6
) -> str:
    dport = TCP_PORT if proto == 6 else UDP_PORT
    b = predict_bucket(
        classifier, len(buckets), IPv4Address(src), SERVER, proto=proto, sport=sport, dport=dport
    )
    return buckets[b]


@pytest.mark.parametrize(
    ("weights", "buckets"), [((1, 1), ("A", "B")), ((2, 1), ("A", "A", "B"))], ids=["1:1", "2:1"]
)
def test_loadbalance_follows_the_hash_mapping(
    lab: Lab, weights: tuple[int, int], buckets: tuple[str, ...]
) -> None:
    classifier = "both-addresses-and-ports"
    cfg = config("loadbalance", classifier, weights)
    be = lab.backend(cfg)
    be.start()
    be.apply(intent_from_config(cfg, active=("A", "B"), buckets=buckets))
    n = 60
    seen = {sport: via(lab, sport=sport) for sport in range(43000, 43000 + n)}
    want = {sport: _expected(classifier, buckets, CLIENT, sport) for sport in seen}
    assert seen == want  # every connection took exactly the uplink its bucket names
    share_a = sum(1 for v in seen.values() if v == "A") / n
    expected_a = buckets.count("A") / len(buckets)
    assert abs(share_a - expected_a) < 0.25, (share_a, expected_a)  # both carry, per weight
    assert bcp38_drops(lab) == 0
    be.stop()


def test_every_packet_of_a_connection_uses_one_uplink(lab: Lab) -> None:
    classifier = "both-addresses-and-ports"
    cfg = config("loadbalance", classifier)
    be = lab.backend(cfg)
    be.start()
    be.apply(intent_from_config(cfg, active=("A", "B"), buckets=("A", "B")))
    conns = [Conn(lab, sport=44000 + i) for i in range(8)]
    try:
        for c in conns:
            answers = {c.ask() for _ in range(15)}
            assert answers == {_expected(classifier, ("A", "B"), CLIENT, c.sport)}
    finally:
        for c in conns:
            c.close()
    for i in range(4):
        with inside(lab.ns("lan")):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with u:
            u.settimeout(5)
            u.bind((CLIENT, 45000 + i))
            seen = set()
            for _ in range(15):
                u.sendto(b"?", (str(SERVER), UDP_PORT))
                seen.add(ISP_OF[u.recv(64).decode()])
            assert seen == {_expected(classifier, ("A", "B"), CLIENT, 45000 + i, proto=17)}
    # Nothing left by the wrong uplink (it would have been dropped and counted).
    assert bcp38_drops(lab) == 0
    be.stop()


def test_src_address_classifier_keeps_each_client_on_one_uplink(lab: Lab) -> None:
    cfg = config("loadbalance", "src-address")
    be = lab.backend(cfg)
    be.start()
    buckets = ("A", "B")
    be.apply(intent_from_config(cfg, active=("A", "B"), buckets=buckets))
    predicted = {c: _expected("src-address", buckets, c, 0) for c in CLIENTS}
    assert set(predicted.values()) == {"A", "B"}  # these clients spread over both
    port = 46000
    for client, uplink in predicted.items():
        for _ in range(5):
            port += 1
            assert via(lab, src=client, sport=port) == uplink
    assert bcp38_drops(lab) == 0
    be.stop()


def test_loadbalance_failover_moves_new_connections_only(lab: Lab) -> None:
    classifier = "both-addresses-and-ports"
    cfg = config("loadbalance", classifier)
    be = lab.backend(cfg)
    be.start()
    be.apply(intent_from_config(cfg, active=("A", "B"), buckets=("A", "B")))
    ports = range(47000, 47100)
    to_a = next(p for p in ports if _expected(classifier, ("A", "B"), CLIENT, p) == "A")
    to_b = [p for p in ports if _expected(classifier, ("A", "B"), CLIENT, p) == "B"]
    on_a, on_b = Conn(lab, sport=to_a), Conn(lab, sport=to_b[0])
    assert (on_a.ask(), on_b.ask()) == ("A", "B")
    with inside(lab.rt):
        before = {f.sport: f for f in conntrack.dump() if f.sport in (to_a, to_b[0])}

    evs = be.apply(
        intent_from_config(
            cfg, active=("A",), buckets=("A",), flush=("B",), health={"B": Health.DOWN}
        )
    )
    assert "nft.apply" in names(evs)
    (flush,) = flushed(be)
    deleted = flush.fields["deleted"]
    assert flush.fields["wan"] == "B" and isinstance(deleted, int) and deleted >= 1
    with inside(lab.rt):
        after = {f.sport: f for f in conntrack.dump() if f.sport in (to_a, to_b[0])}
    assert to_b[0] not in after
    assert after[to_a].id == before[to_a].id  # the survivor's entry is untouched
    assert on_a.ask() == "A"
    # Connections that hashed to B before now all take A.
    assert {via(lab, sport=p) for p in to_b[1:11]} == {"A"}
    on_a.close()
    on_b.close()
    be.stop()
