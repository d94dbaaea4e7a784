"""LAN services end to end: the real daemon serving DHCP and DNS to the lab's clients (root).

One lab for the whole module (``Lab(office, client_dns="router")`` plus
``wanwatch run`` in its router namespace, through :class:`Office`): the two
LAN clients get addresses by real DHCP (busybox udhcpc with the lab's own
script), resolve names through the router's forwarder, and the tests restart
the daemon, kill its dnsmasq, cut the primary uplink and SIGHUP it with other
configs. Each test leaves the daemon running on the lab config with the
primary carrying traffic; an autouse fixture checks that before each test.

Which way a query left the office is read from the fake internet's DNS server
(dnsmasq with ``log-queries``): every ISP masquerades its customers to its own
public address, so ``query[A] NAME from 203.0.113.2`` means "through the
backup". Every name asked is new (a random label under ``server.lab.test``,
which the fake server answers for all subdomains, dnsmasq(8) ``--address``),
so the router's cache cannot answer for the upstream path.

Speed is printed (``pytest -s``), and asserted only against generous bounds
for a loaded 2-core machine: a lease within 3 s of asking (the issue's target
is 1 s; measured here about 0.2 s).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import yaml

from wanwatch.config import Config, Lan, loads
from wanwatch.daemon.control import request
from wanwatch.lab import faults, netns
from wanwatch.lab.office import Office
from wanwatch.lab.plan import lab_config_data, lab_config_text
from wanwatch.lab.poll import until
from wanwatch.lab.procs import DhcpClient, Lease
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import DnsAnswer, dns_lookup
from wanwatch.linux import dnsmasq as dm
from wanwatch.linux.leases import read_leases

pytestmark = pytest.mark.lab

PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"
NAME_ZONE = "server.lab.test"  # answered for every subdomain by the fake internet's DNS

# Bounds for a loaded 2-core VM; every wait ends as soon as its state is reached.
DEADLINE = 15.0
LEASE_BOUND = 3.0  # seconds from asking to bound (the issue wants 1 s; see the module doc)
FAILBACK_DEADLINE = 60.0  # the primary must stay up for the hold (10 s) before it carries again
DHCP_RUNS = 5  # leases per LAN for the median
DNS_RUNS = 5  # lookups before and after the failover for the medians


# --------------------------------------------------------------------------- the shared office


@pytest.fixture(scope="module")
def lan_office(office: Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    """The lab office with the daemon running and the primary carrying traffic."""
    lab = Lab(
        office,
        tag=netns.run_tag(),
        state_root=tmp_path_factory.mktemp("lan-services"),
        client_dns="router",
        remove_state=False,  # kept on failure for the logs; pytest prunes it
    )
    try:
        lab.up()
        house = Office(lab)
        try:
            house.start(wait_active=PRIMARY, timeout=30)
            yield house
        finally:
            if house.daemon is not None and house.daemon.alive():
                house.stop()
    finally:
        lab.down()
    assert not set(lab.namespaces) & netns.existing()


@pytest.fixture(autouse=True)
def healthy(lan_office: Office) -> None:
    """Each test starts with the daemon serving the lab config through the primary."""
    assert lan_office.daemon is not None and lan_office.daemon.alive(), lan_office.log()[-3000:]
    st = lan_office.wait_active(PRIMARY, timeout=FAILBACK_DEADLINE)
    assert st["dnsmasq"]["running"], st["dnsmasq"]


@pytest.fixture
def clients(lan_office: Office) -> Iterator[list[DhcpClient]]:
    """Long-running DHCP clients a test starts; stopped (by PID) when it ends."""
    started: list[DhcpClient] = []
    yield started
    for c in started:
        if c.proc.alive():
            c.stop()


# --------------------------------------------------------------------------- helpers


def events_since(house: Office, t0: float, *names: str) -> list[dict[str, Any]]:
    """The daemon's events named ``names`` (all if none) at or after monotonic ``t0``.

    The daemon stamps events with CLOCK_MONOTONIC, one clock for every namespace.
    """
    evs = request(house.socket, "events")["events"]
    return [e for e in evs if e["at"] >= t0 and (not names or e["name"] in names)]


def wait_event(
    house: Office,
    t0: float,
    *names: str,
    pred: Callable[[dict[str, Any]], bool] = lambda e: True,
    timeout: float = DEADLINE,
) -> dict[str, Any]:
    """The first event named one of ``names`` since ``t0`` that satisfies ``pred``.

    Polled until ``timeout``."""

    def first() -> dict[str, Any] | None:
        return next((e for e in events_since(house, t0, *names) if pred(e)), None)

    def seen() -> str:
        lines = [f"{e['name']} {e}" for e in events_since(house, t0)][-30:]
        return f"a {names} event; since then:\n" + "\n".join(lines)

    found = until(first, timeout, seen)
    assert found is not None
    return found


def lan_cfg(house: Office, name: str) -> Lan:
    return next(lan for lan in house.lab.lab_config.lans if lan.name == name)


def router_ip(lan: Lan) -> IPv4Address:
    if lan.address is None:  # the lab's office config gives every LAN an address
        raise AssertionError(f"{lan.name}: no address in the lab config")
    return lan.address.ip


def mac_of(lab: Lab, lan: str) -> str:
    """The MAC of the LAN client's interface, read inside its namespace."""
    c = lab.client(lan)
    return str(netns.link(c.ns, c.ifname)["address"]).lower()


def assert_lease(lease: Lease, lan: Lan, dns: tuple[IPv4Address, ...]) -> None:
    """A lease from ``lan``'s pool with the LAN's router, ``dns`` and lease time."""
    assert lan.address is not None and lan.dhcp is not None
    lo, hi = lan.dhcp.range
    assert lo <= lease.address.ip <= hi, f"{lease.address} outside the pool {lo}-{hi}"
    assert lease.address.network == lan.address.network
    assert lease.router == lan.address.ip
    assert lease.server == lan.address.ip
    assert lease.dns == dns
    assert lease.lease_time == int(lan.dhcp.lease_time)


def new_name() -> str:
    """A name no cache has seen, answered by the fake internet."""
    return f"n{secrets.token_hex(5)}.{NAME_ZONE}"


def lookup(house: Office, lan: str) -> tuple[str, DnsAnswer]:
    """Resolve a new name from ``lan``'s client through the router's DNS (its LAN address)."""
    name = new_name()
    ans = dns_lookup(house.lab, lan, name, router_ip(lan_cfg(house, lan)))
    return name, ans


def name_address(lab: Lab) -> str:
    return str(dict(lab.topology.dns_records)[NAME_ZONE])


def upstream_sources(lab: Lab, name: str) -> set[str]:
    """Source addresses of the queries for ``name`` that the fake internet's DNS saw."""
    assert lab.dns is not None
    pattern = re.compile(rf"query\[A\] {re.escape(name)} from (\S+)")
    return set(pattern.findall(lab.dns.stderr()))


def wait_upstream(lab: Lab, name: str) -> set[str]:
    """The fake DNS logs a query before answering it; poll briefly for the log line."""
    found: set[str] = until(
        lambda: upstream_sources(lab, name), DEADLINE, f"the fake DNS to log a query for {name}"
    )
    return found


def public(lab: Lab, wan: str) -> str:
    return str(lab.isp(wan).public.ip)


def assert_resolves(house: Office, lan: str, via: str = PRIMARY) -> DnsAnswer:
    """A new name resolves from ``lan``'s client, and the router asked upstream through ``via``."""
    name, ans = lookup(house, lan)
    assert ans.ok and ans.rcode == 0, ans
    assert ans.addresses == (name_address(house.lab),), ans
    assert wait_upstream(house.lab, name) == {public(house.lab, via)}, f"{name}: not only via {via}"
    return ans


def write_config(house: Office, text: str) -> None:
    """Replace the daemon's config file in one rename (it may read it at any moment)."""
    tmp = house.config_path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(house.config_path)


# Every SIGHUP ends with one of these (daemon/loop.py, Daemon._reload).
RELOAD_DONE = ("config.reloaded", "config.rejected")


def sighup(house: Office, text: str, until: tuple[str, ...] = RELOAD_DONE) -> float:
    """Write ``text`` as the config, SIGHUP the daemon, wait for an event named in ``until``.

    Returns when the signal was sent (monotonic)."""
    assert house.daemon is not None
    write_config(house, text)
    t0 = time.monotonic()
    house.daemon.send_signal(signal.SIGHUP)
    wait_event(house, t0, *until)
    return t0


@contextmanager
def config_file(
    house: Office, text: str, until: tuple[str, ...] = ("config.reloaded",)
) -> Iterator[float]:
    """Run with ``text`` as the daemon's config (SIGHUP); the lab config is restored after."""
    try:
        yield sighup(house, text, until)
    finally:
        sighup(house, house.lab.config_text, ("config.reloaded",))


def config_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def daemon_leases(house: Office) -> dict[str, dict[str, Any]]:
    """The daemon's leases by MAC (each MAC must appear once: one client, one lease)."""
    rows = request(house.socket, "leases")["leases"]
    macs = [r["mac"] for r in rows]
    assert len(macs) == len(set(macs)), f"a client holds several leases: {rows}"
    return {r["mac"]: r for r in rows}


def same_leases(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> bool:
    """The same clients, addresses, names and expiries (remaining_s is counted per request)."""

    def fixed(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {mac: {k: v for k, v in r.items() if k != "remaining_s"} for mac, r in rows.items()}

    return fixed(a) == fixed(b)


def lease_file(house: Office) -> Path:
    return house.daemon_state / dm.LEASE_FILE


def dnsmasq_pid(house: Office) -> int:
    pid = house.status()["dnsmasq"]["pid"]
    assert isinstance(pid, int), house.status()["dnsmasq"]
    return pid


def cli(house: Office, *args: str) -> Any:
    """``wanwatch ARGS --socket S --json`` as a separate process; its JSON output."""
    argv = [sys.executable, "-m", "wanwatch.cli", *args, "--socket", str(house.socket), "--json"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def renew_keeps(client: DhcpClient, lease: Lease) -> Lease:
    """Ask ``client`` to renew now; the server must give it the same address, without a NAK."""
    asked = client.renew()
    renewed = client.wait_lease(asked + DEADLINE, after=asked)
    assert renewed.address == lease.address
    assert renewed.event in ("renew", "bound")
    later = [e["event"] for e in client.events() if e["t"] > asked]
    assert "nak" not in later and "deconfig" not in later, later
    return renewed


def ms(seconds: list[float]) -> str:
    return ", ".join(f"{s * 1000:.0f}" for s in seconds) + " ms"


# --------------------------------------------------------------------------- DHCP


def test_each_lan_client_gets_its_pool_router_dns_and_lease_time(lan_office: Office) -> None:
    """Router DNS variant (dhcp.dns absent): clients are told to ask the router itself."""
    lab = lan_office.lab
    took: dict[str, list[float]] = {}
    for lan in lab.lab_config.lans:
        assert lan.dhcp is not None and lan.dhcp.dns is None  # client_dns="router"
        took[lan.name] = []
        for _ in range(DHCP_RUNS):
            lease = lab.dhcp_lease(lan.name, timeout=DEADLINE)
            assert_lease(lease, lan, dns=(router_ip(lan),))
            assert lease.took is not None
            took[lan.name].append(lease.took)
        assert max(took[lan.name]) < LEASE_BOUND, took
    for name, t in took.items():
        print(
            f"\nDHCP {name}: asked -> bound median {statistics.median(t) * 1000:.0f} ms ({ms(t)})"
        )


def test_each_lan_client_is_told_the_configured_dns(lan_office: Office) -> None:
    """dhcp.dns present (the lab's mapping of the office's 8.8.8.8, 8.8.4.4): handed out as is."""
    lab = lan_office.lab
    text = lab_config_text(lab.config, lab.topology, client_dns="lab")
    variant = loads(text, "variant.yaml")
    with config_file(lan_office, text):
        for lan in variant.lans:
            assert lan.dhcp is not None and lan.dhcp.dns, "the lab variant keeps dhcp.dns"
            lease = lab.dhcp_lease(lan.name, timeout=DEADLINE)
            assert_lease(lease, lan, dns=lan.dhcp.dns)
            assert lease.took is not None and lease.took < LEASE_BOUND
    # and the router again once the lab config (no dhcp.dns) is back
    lan = lab.lab_config.lans[0]
    assert_lease(lab.dhcp_lease(lan.name, timeout=DEADLINE), lan, dns=(router_ip(lan),))


def test_leases_and_status_list_both_clients(lan_office: Office) -> None:
    lab = lan_office.lab
    got = {lan.name: lab.dhcp_lease(lan.name, timeout=DEADLINE) for lan in lab.lab_config.lans}

    listed = cli(lan_office, "leases")
    status = cli(lan_office, "status")
    # the same leases in both answers (remaining_s is counted at each request)
    assert [{**r, "remaining_s": 0} for r in status["leases"]] == [
        {**r, "remaining_s": 0} for r in listed
    ]
    assert [w["name"] for w in status["wans"]] == [PRIMARY, BACKUP]
    assert status["active"] == [PRIMARY]
    by_mac = {row["mac"]: row for row in listed}
    assert len(by_mac) == len(listed) == len(got)  # both clients, once each
    for lan in lab.lab_config.lans:
        assert lan.dhcp is not None
        lease = got[lan.name]
        row = by_mac[mac_of(lab, lan.name)]
        assert row["lan"] == lan.name
        assert row["address"] == str(lease.address.ip)
        assert row["hostname"] == lab.client(lan.name).hostname
        # dnsmasq stamps the expiry (epoch seconds) when it sends the ACK
        assert abs(row["expires"] - (lease.wall + lan.dhcp.lease_time)) < 5
        assert 0 < row["remaining_s"] <= lan.dhcp.lease_time


def test_static_lease_is_honoured(lan_office: Office) -> None:
    lab = lan_office.lab
    lan = lab.lab_config.lans[1]
    assert lan.address is not None
    before = lab.dhcp_lease(lan.name, timeout=DEADLINE)
    net = lan.address.network
    fixed = next(a for a in (net[200], net[201]) if a != before.address.ip)
    mac = mac_of(lab, lan.name)
    data = lab_config_data(lab.config, lab.topology, client_dns="router")
    data["lans"][1]["dhcp"]["static"] = [{"mac": mac, "address": str(fixed), "hostname": "printer"}]
    with config_file(lan_office, config_yaml(data)):
        lease = lab.dhcp_lease(lan.name, timeout=DEADLINE)
        assert lease.address.ip == fixed
        assert_lease(lease, lan, dns=(router_ip(lan),))
        row = daemon_leases(lan_office)[mac]
        # the configured name wins over the one the client sends
        assert (row["address"], row["hostname"], row["lan"]) == (str(fixed), "printer", lan.name)


# --------------------------------------------------------------------------- restarts


def test_daemon_restart_keeps_the_lease_and_a_renewal_keeps_the_address(
    lan_office: Office, clients: list[DhcpClient]
) -> None:
    lab = lan_office.lab
    lan = lab.lab_config.lans[0]
    client = lab.dhcp_client(lan.name)
    clients.append(client)
    lease = client.wait_lease(client.started + DEADLINE)
    mac = mac_of(lab, lan.name)
    on_file = {le.mac: le for le in read_leases(lease_file(lan_office), lab.lab_config, 0)}
    assert on_file[mac].address == lease.address.ip

    assert lan_office.stop() == 0
    after_stop = {le.mac: le for le in read_leases(lease_file(lan_office), lab.lab_config, 0)}
    assert after_stop == on_file  # nothing lost or rewritten by the stop
    lan_office.start(wait_active=PRIMARY, timeout=30)
    lan_office.wait_for(lambda st: st["dnsmasq"]["running"], DEADLINE, "dnsmasq")
    row = daemon_leases(lan_office)[mac]
    assert (row["address"], row["expires"]) == (str(lease.address.ip), on_file[mac].expires)

    renew_keeps(client, lease)
    row = daemon_leases(lan_office)[mac]
    assert row["address"] == str(lease.address.ip)
    assert row["expires"] >= on_file[mac].expires  # the renewal was recorded


def test_killed_dnsmasq_is_restarted_and_loses_nothing(
    lan_office: Office, clients: list[DhcpClient]
) -> None:
    lab = lan_office.lab
    lan = lab.lab_config.lans[1]
    for other in lab.lab_config.lans:
        if other.name != lan.name:
            lab.dhcp_lease(other.name, timeout=DEADLINE)
    client = lab.dhcp_client(lan.name)
    clients.append(client)
    lease = client.wait_lease(client.started + DEADLINE)
    before = daemon_leases(lan_office)
    assert len(before) == len(lab.lab_config.lans)

    pid = dnsmasq_pid(lan_office)
    # Only the daemon's own child: the process must run the daemon's dnsmasq.conf.
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    conf = lan_office.daemon_state / dm.CONF_FILE
    assert f"--conf-file={conf}".encode() in argv, argv
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)

    exited = wait_event(lan_office, t0, "dnsmasq.exit", pred=lambda e: e["pid"] == pid)
    assert exited["signal"] == "SIGKILL"
    wait_event(lan_office, t0, "dnsmasq.restart")
    started = wait_event(lan_office, t0, "dnsmasq.start", pred=lambda e: e["pid"] != pid)
    lan_office.wait_for(
        lambda st: st["dnsmasq"]["running"] and st["dnsmasq"]["pid"] == started["pid"],
        DEADLINE,
        "the restarted dnsmasq",
    )
    assert lan_office.status()["dnsmasq"]["restarts"] >= 1

    assert same_leases(daemon_leases(lan_office), before)
    renew_keeps(client, lease)
    assert_resolves(lan_office, lan.name)


# --------------------------------------------------------------------------- DNS across failover


def test_names_resolve_through_the_active_uplink_across_failover_and_failback(
    lan_office: Office,
) -> None:
    lab = lan_office.lab
    lan = lab.lab_config.lans[0].name
    lab.dhcp_lease(lan, timeout=DEADLINE)
    c = lab.client(lan)
    address_before = netns.nsrun(c.ns, "ip", "-j", "-4", "addr", "show", "dev", c.ifname).stdout

    def resolve(via: str) -> list[float]:
        rtts = []
        for _ in range(DNS_RUNS):
            ans = assert_resolves(lan_office, lan, via)
            assert ans.rtt_ms is not None
            rtts.append(ans.rtt_ms)
        return rtts

    before = resolve(PRIMARY)
    cut = faults.blackhole(lab, PRIMARY)
    try:
        lan_office.wait_active(BACKUP, timeout=DEADLINE)
        switched = time.monotonic()
        after = resolve(BACKUP)
        first_after = after[0]
        print(f"\nfailover: backup active {(switched - cut.t_start) * 1000:.0f} ms after the cut")
    finally:
        faults.clear(lab, PRIMARY, "blackhole")
    lan_office.wait_active(PRIMARY, timeout=FAILBACK_DEADLINE)
    back = resolve(PRIMARY)

    # no client action: the client's address configuration never changed
    address_after = netns.nsrun(c.ns, "ip", "-j", "-4", "addr", "show", "dev", c.ifname).stdout
    assert json.loads(address_after)[0]["addr_info"] == json.loads(address_before)[0]["addr_info"]
    for label, rtts in (("before", before), ("after failover", after), ("after failback", back)):
        each = ", ".join(f"{r:.1f}" for r in rtts)
        print(f"DNS {label}: median {statistics.median(rtts):.1f} ms ({each})")
    print(f"DNS first name after failover: {first_after:.1f} ms")


# --------------------------------------------------------------------------- rejected configs


def test_an_invalid_config_on_sighup_is_refused_and_the_service_keeps_serving(
    lan_office: Office,
) -> None:
    lab = lan_office.lab
    data = lab_config_data(lab.config, lab.topology, client_dns="router")
    lo, hi = data["lans"][1]["dhcp"]["range"].split("-")
    data["lans"][1]["dhcp"]["range"] = f"{hi}-{lo}"  # reversed
    pid = dnsmasq_pid(lan_office)
    with config_file(lan_office, config_yaml(data), until=("config.rejected",)) as t0:
        rejected = wait_event(lan_office, t0, "config.rejected")
        # one clear line: the field, what is wrong, and where in the file
        first = str(rejected["first"])
        where = re.escape(str(lan_office.config_path))
        assert re.match(rf"{where}:\d+: lans\[1\]\.dhcp\.range: .*reversed", first), first
        assert not events_since(lan_office, t0, "config.reloaded", "dnsmasq.reload")
        for lan in lab.lab_config.lans:
            lease = lab.dhcp_lease(lan.name, timeout=DEADLINE)
            assert_lease(lease, lan, dns=(router_ip(lan),))
            assert_resolves(lan_office, lan.name)
        assert dnsmasq_pid(lan_office) == pid
