"""DHCP and DNS through the supervised dnsmasq, with real DHCP clients (root).

Topology (every namespace ours, named "ww" + a per-run tag; nothing in the root
namespace)::

    client a  eth0 ── ether3 192.168.19.1/24 ┐        ┌ wan0 .2   ── up   .1   ISP
    client b  eth0 ── wlan1  192.168.20.1/24 ┴ router ┤                 (198.51.100.0/25)
                                                      └ wan1 .130 ── up2  .129 BACKUP

Each ISP namespace holds a stand-in resolver on 203.0.113.53 (on ``lo``): a
second dnsmasq answering *.lab.test = 203.0.113.80 and logging every query, so a
test sees which uplink a query took. The router's default route goes via ISP;
the failover test moves it to BACKUP, as the daemon would.

The supervisor runs in this test process; its dnsmasq runs in the router
namespace through a two-line wrapper (``exec ip netns exec ROUTER dnsmasq``,
which keeps the PID). Clients are busybox ``udhcpc`` with our own event
script, which records what the server said and configures the address inside
the client namespace only (the stock script rewrites the host's resolv.conf).

Lease times are printed (``pytest -s``) and not asserted: speed is for bench/.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from wanwatch.config import Config, loads
from wanwatch.engine.events import Event
from wanwatch.errors import DnsmasqError
from wanwatch.lab import netns, poll
from wanwatch.linux import dnsmasq as dm
from wanwatch.linux.dnsmasq import Dnsmasq
from wanwatch.linux.leases import read_leases

pytestmark = pytest.mark.lab

UPSTREAM_DNS = "203.0.113.53"
WAN0, GW0 = "198.51.100.2", "198.51.100.1"  # primary uplink
WAN1, GW1 = "198.51.100.130", "198.51.100.129"  # backup uplink
NAME = "name.lab.test"
NAME_ADDRESS = "203.0.113.80"
MAC_A = "02:00:00:00:19:01"
MAC_B = "02:00:00:00:20:01"
MAC_PRINTER = "02:00:00:00:20:77"
WANTED_A = "192.168.19.150"  # not what dnsmasq's MAC hash would pick for MAC_A

# Bounds for a loaded 2-core VM; every wait ends as soon as its state is reached.
DEADLINE = 15.0
SILENCE = 2.0  # how long an unanswered DNS query is waited for

LAB_YAML = f"""\
wans:
  - name: ISP
    interface: wan0
    address: {WAN0}/25
    gateway: {GW0}
    probe: {{targets: [203.0.113.1]}}
  - name: BACKUP
    interface: wan1
    address: {WAN1}/25
    gateway: {GW1}
    priority: 2
    probe: {{targets: [203.0.113.2]}}
lans:
  - name: ether3
    interface: ether3
    address: 192.168.19.1/24
    dhcp:
      range: 192.168.19.2-192.168.19.254
      lease_time: 1d
  - name: WIFI
    interface: wlan1
    address: 192.168.20.1/24
    dhcp:
      range: 192.168.20.2-192.168.20.254
      dns: [192.168.20.1, {UPSTREAM_DNS}]
      lease_time: 1h
      static:
        - {{mac: "{MAC_PRINTER}", address: 192.168.20.77, hostname: printer}}
dns:
  upstream: [{UPSTREAM_DNS}]
  domain: office.lan
"""

CLIENT_SCRIPT = """\
#!/bin/sh
# udhcpc event script for the lab: record what the server said, and (WW_APPLY=1)
# configure the address inside this namespace only. Never touches resolv.conf.
printf '%s|%s|%s|%s|%s|%s|%s|%s|%s\\n' "$1" "$(date +%s.%N)" "$ip" "$mask" "$router" \\
  "$dns" "$lease" "$hostname" "$domain" >> "$WW_LEASE_LOG"
[ "$WW_APPLY" = 1 ] || exit 0
case "$1" in
  bound|renew) ip -4 addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
  deconfig) ip -4 addr flush dev "$interface" ;;
esac
"""

# One A query, one answer or a timeout, as JSON; run inside a namespace.
DNS_QUERY = """\
import json, random, socket, struct, sys
server, name, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
qid = random.randrange(65536)
q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0"
q += struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(timeout)
s.sendto(q, (server, 53))
try:
    data = s.recv(4096)
except TimeoutError:
    print(json.dumps({"rcode": None, "addresses": []}))
    sys.exit(0)
rid, flags, qd, an = struct.unpack("!HHHH", data[:8])
i = 12
for _ in range(qd):
    while data[i]:
        i += data[i] + 1
    i += 5
addrs = []
for _ in range(an):
    i += 2 if data[i] >= 0xC0 else len(data[i:].split(b"\\0")[0]) + 1
    rtype, _, _, rdlen = struct.unpack("!HHIH", data[i:i + 10])
    i += 10
    if rtype == 1:
        addrs.append(socket.inet_ntoa(data[i:i + 4]))
    i += rdlen
print(json.dumps({"rcode": flags & 0xF, "addresses": addrs, "id_ok": rid == qid}))
"""


@dataclass(frozen=True)
class DnsLab:
    router: str
    a: str
    b: str
    up: str  # the primary ISP
    up2: str  # the backup ISP
    tmp: Path
    dnsmasq: str  # wrapper running dnsmasq inside the router namespace
    upstream_log: Path  # queries seen by the primary ISP's resolver
    upstream2_log: Path  # ... and by the backup's

    def config(self) -> Config:
        return loads(LAB_YAML, "lab.yaml")


@dataclass(frozen=True)
class Record:
    event: str
    at: str  # wall-clock seconds, from `date +%s.%N` in the client script
    ip: str
    mask: str
    router: str
    dns: str
    lease: str
    hostname: str
    domain: str


@pytest.fixture(scope="module")
def dnslab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsLab]:
    tmp = tmp_path_factory.mktemp("dnsmasq-lab")
    tag = netns.run_tag()
    names = tuple(f"{netns.PREFIX}{tag}d{role}" for role in ("r", "a", "b", "u", "v"))
    with netns.namespaces(*names) as (router, a, b, up, up2), ExitStack() as stack:
        netns.veth(router, "ether3", a, "eth0")
        netns.veth(router, "wlan1", b, "eth0")
        netns.veth(router, "wan0", up, "up0")
        netns.veth(router, "wan1", up2, "up0")
        for ns, mac in ((a, MAC_A), (b, MAC_B)):
            netns.ip("-n", ns, "link", "set", "eth0", "address", mac)
        for ns, dev, addr in (
            (router, "ether3", "192.168.19.1/24"),
            (router, "wlan1", "192.168.20.1/24"),
            (router, "wan0", f"{WAN0}/25"),
            (router, "wan1", f"{WAN1}/25"),
            (up, "up0", f"{GW0}/25"),
            (up2, "up0", f"{GW1}/25"),
            # each ISP has its own stand-in resolver on the same documentation address
            (up, "lo", f"{UPSTREAM_DNS}/32"),
            (up2, "lo", f"{UPSTREAM_DNS}/32"),
        ):
            netns.ip("-n", ns, "addr", "add", addr, "dev", dev)
        netns.ip("-n", router, "route", "add", "default", "via", GW0)
        # So the primary ISP can aim a query at a LAN address through the uplink.
        netns.ip("-n", up, "route", "add", "192.168.19.0/24", "via", WAN0)

        script = tmp / "udhcpc.script"
        script.write_text(CLIENT_SCRIPT)
        script.chmod(0o755)
        (tmp / "dnsq.py").write_text(DNS_QUERY)
        wrapper = tmp / "dnsmasq-in-router"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {router} dnsmasq "$@"\n')
        wrapper.chmod(0o755)
        logs = tuple(stack.enter_context(_stand_in_dns(ns, tmp)) for ns in (up, up2))
        yield DnsLab(router, a, b, up, up2, tmp, str(wrapper), *logs)


@contextmanager
def _stand_in_dns(ns: str, tmp: Path) -> Iterator[Path]:
    """A second dnsmasq in ``ns`` answering *.lab.test; its query log's path."""
    conf = tmp / f"{ns}.conf"
    conf.write_text(
        "no-resolv\nno-hosts\nbind-interfaces\n"
        f"listen-address={UPSTREAM_DNS}\n"
        f"address=/lab.test/{NAME_ADDRESS}\n"
        f"pid-file={tmp / ns}.pid\n"
        "log-queries\n"
    )
    log = tmp / f"{ns}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            netns.ns_argv(ns, ["dnsmasq", *dm.command("dnsmasq", conf)[1:]]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        poll.until(lambda: "started" in log.read_text(), DEADLINE, f"the DNS server in {ns}")
        yield log
    finally:  # our child, by its PID (Popen)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


async def until(cond: Callable[[], bool], what: str) -> None:
    await poll.until_async(cond, DEADLINE, what)


async def run(*argv: str, timeout: float = DEADLINE, env: dict[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)}: exit {proc.returncode}: {out.decode()}")
    return out.decode()


def records(log: Path) -> list[Record]:
    """The client script's records so far (a line still being written is skipped)."""
    if not log.exists():
        return []
    rows = [line.split("|") for line in log.read_text().splitlines()]
    return [Record(*row) for row in rows if len(row) == len(fields(Record))]


def _env(log: Path, apply: bool) -> dict[str, str]:
    return {**os.environ, "WW_LEASE_LOG": str(log), "WW_APPLY": "1" if apply else "0"}


def _udhcpc(lab: DnsLab, ns: str, *extra: str) -> list[str]:
    script = str(lab.tmp / "udhcpc.script")
    return netns.ns_argv(
        ns, ["busybox", "udhcpc", "-f", "-i", "eth0", "-s", script, "-t", "5", "-T", "1", *extra]
    )


async def lease_once(
    lab: DnsLab, ns: str, log: Path, *extra: str, apply: bool = True
) -> tuple[Record, float]:
    """One DHCP exchange (udhcpc -q); the bound record and seconds from asking to bound."""
    before = len(records(log))
    asked = time.time()
    await run(*_udhcpc(lab, ns, "-q", "-n", *extra), env=_env(log, apply))
    bound = [r for r in records(log)[before:] if r.event == "bound"]
    assert bound, f"no lease for {ns}: {records(log)[before:]}"
    return bound[-1], float(bound[-1].at) - asked


async def query(ns: str, server: str, name: str, lab: DnsLab) -> dict[str, object]:
    out = await run(
        *netns.ns_argv(ns, [sys.executable, str(lab.tmp / "dnsq.py"), server, name, str(SILENCE)])
    )
    answer: dict[str, object] = json.loads(out)
    return answer


def named(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e.name == name]


async def supervised(
    lab: DnsLab, state: Path, events: list[Event], body: Callable[[Dnsmasq], Awaitable[None]]
) -> None:
    sup = Dnsmasq(lab.config(), state, events.append, binary=lab.dnsmasq)
    await sup.start()
    try:
        await body(sup)
    finally:
        await sup.stop()


def child_pid(sup: Dnsmasq) -> int:
    pid = sup.status()["pid"]
    assert isinstance(pid, int)
    return pid


# --------------------------------------------------------------------------- tests


def test_each_lan_gets_its_pool_router_dns_and_lease_time(dnslab: DnsLab, tmp_path: Path) -> None:
    events: list[Event] = []

    async def body(sup: Dnsmasq) -> None:
        # the PID we supervise is dnsmasq itself (the wrapper exec'd it)
        assert sup.files.pid.read_text().strip() == str(child_pid(sup))
        a, a_s = await lease_once(dnslab, dnslab.a, tmp_path / "a.log")
        b, b_s = await lease_once(dnslab, dnslab.b, tmp_path / "b.log")
        ms = {"ether3": round(a_s * 1000), "WIFI": round(b_s * 1000)}
        print(f"\nfirst lease, asking to bound (ms): {json.dumps(ms)}")
        assert IPv4Address("192.168.19.2") <= IPv4Address(a.ip) <= IPv4Address("192.168.19.254")
        assert (a.mask, a.router, a.dns, a.lease) == ("24", "192.168.19.1", "192.168.19.1", "86400")
        assert a.domain == "office.lan"
        assert IPv4Address("192.168.20.2") <= IPv4Address(b.ip) <= IPv4Address("192.168.20.254")
        assert (b.mask, b.router, b.lease) == ("24", "192.168.20.1", "3600")
        assert b.dns.split() == ["192.168.20.1", UPSTREAM_DNS]
        # both leases are in the lease file, on the right LAN, and were events
        leases = read_leases(sup.lease_file, dnslab.config(), time.time())
        assert {(le.lan, str(le.address), le.mac) for le in leases} == {
            ("ether3", a.ip, MAC_A),
            ("WIFI", b.ip, MAC_B),
        }
        acks = {(e.fields["lan"], e.fields["address"]) for e in named(events, "dhcp.lease")}
        assert acks == {("ether3", a.ip), ("WIFI", b.ip)}

    asyncio.run(supervised(dnslab, tmp_path / "state", events, body))


def test_static_lease_and_its_name(dnslab: DnsLab, tmp_path: Path) -> None:
    async def body(sup: Dnsmasq) -> None:
        await run("ip", "-n", dnslab.b, "link", "set", "eth0", "address", MAC_PRINTER)
        try:
            rec, _ = await lease_once(dnslab, dnslab.b, tmp_path / "b.log")
            assert (rec.ip, rec.hostname, rec.lease) == ("192.168.20.77", "printer", "3600")
            # the router answers the static name, bare and in the local domain
            for name in ("printer", "printer.office.lan"):
                answer = await query(dnslab.b, "192.168.20.1", name, dnslab)
                assert answer["addresses"] == ["192.168.20.77"], name
        finally:
            await run("ip", "-n", dnslab.b, "link", "set", "eth0", "address", MAC_B)

    asyncio.run(supervised(dnslab, tmp_path / "state", [], body))


async def _renew(client: asyncio.subprocess.Process, log: Path) -> Record:
    """SIGUSR1 to a running udhcpc: a real renewal (unicast REQUEST); its record."""
    before = len(records(log))
    client.send_signal(signal.SIGUSR1)
    await until(lambda: any(r.event in ("renew", "bound") for r in records(log)[before:]), "renew")
    return next(r for r in records(log)[before:] if r.event in ("renew", "bound"))


async def _impostor_gets(lab: DnsLab, log: Path, client_id: str) -> str:
    """Another client (same wire, other client-id) asks for WANTED_A; what it gets."""
    rec, _ = await lease_once(
        lab, lab.a, log, "-r", WANTED_A, "-x", f"0x3d:{client_id}", apply=False
    )
    return rec.ip


async def _client_a(lab: DnsLab, log: Path) -> asyncio.subprocess.Process:
    client = await asyncio.create_subprocess_exec(
        *_udhcpc(lab, lab.a, "-r", WANTED_A),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=_env(log, apply=True),
    )
    await until(lambda: any(r.event == "bound" for r in records(log)), "client a bound")
    assert [r.ip for r in records(log) if r.event == "bound"] == [WANTED_A]
    return client


async def _stop(client: asyncio.subprocess.Process) -> None:
    if client.returncode is None:
        client.terminate()
        try:
            await asyncio.wait_for(client.wait(), 5)
        except TimeoutError:
            client.kill()
            await client.wait()


def _held(lease_file: Path, lab: DnsLab) -> set[tuple[str, str]]:
    return {(str(le.address), le.mac) for le in read_leases(lease_file, lab.config(), time.time())}


def test_supervisor_restart_keeps_leases(dnslab: DnsLab, tmp_path: Path) -> None:
    state = tmp_path / "state"
    log = tmp_path / "a.log"

    async def main() -> None:
        client = None
        first = Dnsmasq(dnslab.config(), state, lambda e: None, binary=dnslab.dnsmasq)
        await first.start()
        try:
            client = await _client_a(dnslab, log)
        finally:
            await first.stop()
        try:
            assert (WANTED_A, MAC_A) in _held(state / "dnsmasq.leases", dnslab)
            # a new supervisor on the same state directory, as after a daemon restart
            await supervised(dnslab, state, [], lambda sup: _after_restart(sup, client))
        finally:
            await _stop(client)

    async def _after_restart(sup: Dnsmasq, client: asyncio.subprocess.Process) -> None:
        assert (WANTED_A, MAC_A) in _held(sup.lease_file, dnslab)
        # dnsmasq really holds the address for a, from the lease file: another
        # client asking for it first gets a different one (with the file lost it
        # would get WANTED_A, as dnsmasq is authoritative and the address free)
        assert await _impostor_gets(dnslab, tmp_path / "x.log", "01020000001999") != WANTED_A
        renewed = await _renew(client, log)
        assert (renewed.event, renewed.ip) == ("renew", WANTED_A)

    asyncio.run(main())


def test_killed_dnsmasq_is_restarted_and_keeps_leases(dnslab: DnsLab, tmp_path: Path) -> None:
    events: list[Event] = []
    log = tmp_path / "a.log"

    async def body(sup: Dnsmasq) -> None:
        client = await _client_a(dnslab, log)
        try:
            held = _held(sup.lease_file, dnslab)
            assert (WANTED_A, MAC_A) in held
            old = child_pid(sup)
            os.kill(old, signal.SIGKILL)  # the child our supervisor started, by PID
            await until(lambda: bool(named(events, "dnsmasq.restart")), "a restart event")
            await until(lambda: sup.status()["pid"] not in (None, old), "a new dnsmasq")
            (exit_event,) = named(events, "dnsmasq.exit")
            assert (exit_event.fields["pid"], exit_event.fields["signal"]) == (old, "SIGKILL")
            assert named(events, "dnsmasq.restart")[0].fields["attempt"] == 1
            assert sup.status()["restarts"] == 1
            await until(lambda: _held(sup.lease_file, dnslab) == held, "the lease file back")
            assert await _impostor_gets(dnslab, tmp_path / "x.log", "01020000001998") != WANTED_A
            renewed = await _renew(client, log)
            assert (renewed.event, renewed.ip) == ("renew", WANTED_A)
        finally:
            await _stop(client)

    asyncio.run(supervised(dnslab, tmp_path / "state", events, body))


def test_names_resolve_through_upstream_and_never_on_the_uplink(
    dnslab: DnsLab, tmp_path: Path
) -> None:
    async def body(sup: Dnsmasq) -> None:
        await lease_once(dnslab, dnslab.a, tmp_path / "a.log")
        answer = await query(dnslab.a, "192.168.19.1", NAME, dnslab)
        assert (answer["rcode"], answer["addresses"]) == (0, [NAME_ADDRESS])
        asked = f"query[A] {NAME} from {WAN0}"
        await until(lambda: asked in dnslab.upstream_log.read_text(), "the upstream query")
        # the local domain is answered here, never asked upstream
        nosuch = await query(dnslab.a, "192.168.19.1", "nosuch.office.lan", dnslab)
        assert nosuch["rcode"] == 3  # NXDOMAIN
        assert "nosuch.office.lan" not in dnslab.upstream_log.read_text()
        # From the uplink side the LAN address is reachable (ping answers) but
        # dnsmasq does not answer DNS that arrived on the uplink.
        await run(*netns.ns_argv(dnslab.up, ["ping", "-c", "1", "-W", "2", "192.168.19.1"]))
        outside = await query(dnslab.up, "192.168.19.1", NAME, dnslab)
        assert outside["rcode"] is None
        # nor on the uplink's own address (nothing listens there)
        outside = await query(dnslab.up, WAN0, NAME, dnslab)
        assert outside["rcode"] is None

    asyncio.run(supervised(dnslab, tmp_path / "state", [], body))


def test_rejected_reload_keeps_the_old_one_serving(
    dnslab: DnsLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[Event] = []

    async def body(sup: Dnsmasq) -> None:
        pid = child_pid(sup)
        render = dm.render
        monkeypatch.setattr(dm, "render", lambda c, s: render(c, s) + "bad-option-for-test\n")
        with pytest.raises(DnsmasqError, match=r"bad option at line \d+ of \S*dnsmasq.conf.new"):
            await sup.reload(dnslab.config())
        assert child_pid(sup) == pid
        assert named(events, "dnsmasq.reject")
        # the old one still answers a new DHCP request and DNS
        rec, _ = await lease_once(dnslab, dnslab.b, tmp_path / "b.log")
        assert IPv4Address(rec.ip) in IPv4Network("192.168.20.0/24")
        answer = await query(dnslab.b, "192.168.20.1", NAME, dnslab)
        assert answer["addresses"] == [NAME_ADDRESS]
        assert child_pid(sup) == pid

    asyncio.run(supervised(dnslab, tmp_path / "state", events, body))


def test_names_keep_resolving_after_failover_without_client_action(
    dnslab: DnsLab, tmp_path: Path
) -> None:
    """Silent blackhole of the primary, route moved to the backup: DNS follows at once."""
    cut = (
        "table inet wwcut {\n  chain input { type filter hook input priority 0; policy drop; }\n}\n"
    )

    async def asked(log: Path, name: str) -> None:
        line = f"query[A] {name} from "
        await until(lambda: line in log.read_text(), f"{name} at {log.name}")

    async def body(sup: Dnsmasq) -> None:
        pid = child_pid(sup)
        await lease_once(dnslab, dnslab.a, tmp_path / "a.log")
        before = await query(dnslab.a, "192.168.19.1", "before.lab.test", dnslab)
        assert before["addresses"] == [NAME_ADDRESS]
        await asked(dnslab.upstream_log, "before.lab.test")
        (tmp_path / "cut.nft").write_text(cut)
        # the primary ISP goes silent (its link stays up)
        await run(*netns.ns_argv(dnslab.up, ["nft", "-f", str(tmp_path / "cut.nft")]))
        try:
            lost = await query(dnslab.a, "192.168.19.1", "lost.lab.test", dnslab)
            assert lost["addresses"] == []  # nothing comes back through the dead uplink
            await run("ip", "-n", dnslab.router, "route", "replace", "default", "via", GW1)
            switched = time.monotonic()
            after = await query(dnslab.a, "192.168.19.1", "after.lab.test", dnslab)
            assert after["addresses"] == [NAME_ADDRESS]
            took = round((time.monotonic() - switched) * 1000)
            print(f"\nfirst name after the route switch answered in {took} ms (incl. python start)")
            await asked(dnslab.upstream2_log, "after.lab.test")
            assert f"after.lab.test from {WAN1}" in dnslab.upstream2_log.read_text()
        finally:
            await run("ip", "-n", dnslab.router, "route", "replace", "default", "via", GW0)
            await run("ip", "netns", "exec", dnslab.up, "nft", "delete", "table", "inet", "wwcut")
        back = await query(dnslab.a, "192.168.19.1", "back.lab.test", dnslab)
        assert back["addresses"] == [NAME_ADDRESS]
        await asked(dnslab.upstream_log, "back.lab.test")
        assert child_pid(sup) == pid  # no dnsmasq restart, no client action

    asyncio.run(supervised(dnslab, tmp_path / "state", [], body))
