"""The namespace lab itself: topology, ISPs (NAT, BCP38), fake-internet services, clients.

The router is configured BY HAND here (tests/lab/conftest.py: configure_router)
to prove the topology; in the real lab the daemon does that.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address
from pathlib import Path
from typing import Any

import pytest
import yaml

from wanwatch.config import Config, load
from wanwatch.errors import LabError
from wanwatch.lab import netns, services, traffic
from wanwatch.lab.plan import ISP_PUBLIC_NETS, lab_config_data, plan
from wanwatch.lab.poll import until
from wanwatch.lab.topology import Lab

PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"


def _addresses(data: Any) -> list[IPv4Address]:
    """Every IPv4 address (bare or with prefix) anywhere in plain YAML data."""
    if isinstance(data, dict):
        return [a for v in data.values() for a in _addresses(v)]
    if isinstance(data, list):
        return [a for v in data for a in _addresses(v)]
    if isinstance(data, str):
        for text in (data, data.split("/")[0]):
            try:
                addr = ip_address(text)
            except ValueError:
                continue
            return [IPv4Address(int(addr))]
    return []


# --------------------------------------------------------------------------- lab config (no root)


def test_lab_config_keeps_the_office_and_replaces_every_public_address(office: Config) -> None:
    topo = plan(office, "t1")
    data = lab_config_data(office, topo)
    labcfg = Lab(office, tag="t1").lab_config  # constructing builds nothing

    # Same uplinks, LANs, interfaces, addresses, gateways, pools, hooks.
    for w, lw in zip(office.wans, labcfg.wans, strict=True):
        assert (lw.name, lw.interface, lw.address, lw.gateway, lw.priority) == (
            w.name,
            w.interface,
            w.address,
            w.gateway,
            w.priority,
        )
        assert len(lw.probe.targets) == len(w.probe.targets)
    for lan, llan in zip(office.lans, labcfg.lans, strict=True):
        assert (llan.name, llan.interface, llan.address) == (lan.name, lan.interface, lan.address)
        assert lan.dhcp is not None and llan.dhcp is not None
        assert (llan.dhcp.range, llan.dhcp.lease_time) == (lan.dhcp.range, lan.dhcp.lease_time)
    assert labcfg.hooks == office.hooks
    assert labcfg.policy == office.policy

    # Probe targets are fake-internet hosts in their own ISP's range.
    for k, w in enumerate(labcfg.wans):
        assert all(t in ISP_PUBLIC_NETS[k] for t in w.probe.addresses), w.probe.addresses
    # DNS goes to the lab's DNS server addresses.
    assert set(labcfg.dns.upstream) <= set(topo.dns_servers)
    for llan in labcfg.lans:
        assert llan.dhcp is not None and llan.dhcp.dns is not None
        assert set(llan.dhcp.dns) <= set(topo.dns_servers)
    # No public address survives anywhere (8.8.8.8 & co. are never sent a packet).
    public = [a for a in _addresses(data) if a.is_global]
    assert public == []
    assert not [a for a in _addresses(data) if a in IPv4Network("192.0.2.0/24")]


def test_lab_config_is_a_fixed_point_and_router_dns_mode_drops_client_dns(
    office: Config,
) -> None:
    labcfg = Lab(office, tag="t2").lab_config
    # Planning the lab's own config gives the same lab (only the record of which
    # public address was replaced differs): `Lab.attach` relies on it.
    again, first = plan(labcfg, "t2"), plan(office, "t2")
    assert again == dataclasses.replace(first, dns_map=())
    routercfg = Lab(office, tag="t3", client_dns="router").lab_config
    assert all(lan.dhcp is not None and lan.dhcp.dns is None for lan in routercfg.lans)


def test_dns_conf_serves_only_our_names() -> None:
    conf = services.dns_conf(
        [IPv4Address("198.51.100.53")], {"server.lab.test": IPv4Address("203.0.113.80")}
    )
    lines = conf.splitlines()
    for needed in ("no-resolv", "no-hosts", "bind-interfaces", "listen-address=198.51.100.53"):
        assert needed in lines
    assert "address=/server.lab.test/203.0.113.80" in lines
    assert "address=/lab.test/" in lines  # the rest of the zone: NXDOMAIN, never forwarded
    assert not any(line.startswith("server=") for line in lines)


# --------------------------------------------------------------------------- topology (root)


@pytest.mark.lab
def test_up_builds_the_office_and_down_leaves_nothing(make_lab: Any) -> None:
    lab: Lab = make_lab()
    ns = set(lab.namespaces)
    assert ns <= netns.existing()
    assert all(n.startswith(f"ww{lab.tag}-") for n in ns)

    # The router has exactly the config's interfaces, and nothing configured on them.
    links = json.loads(netns.sh(["ip", "-j", "-n", lab.router_ns, "link", "show"]).stdout)
    names = {link["ifname"] for link in links} - {"lo"}
    assert names == {"ether1", "ether2", "ether3", "wlan1"}
    addrs = json.loads(netns.sh(["ip", "-j", "-4", "-n", lab.router_ns, "addr", "show"]).stdout)
    assert [a["local"] for link in addrs for a in link["addr_info"]] == ["127.0.0.1"]
    assert netns.sh(["ip", "-4", "-n", lab.router_ns, "route", "show", "table", "all"]).stdout
    assert "default" not in netns.sh(["ip", "-n", lab.router_ns, "route"]).stdout
    rules = netns.sh(["ip", "-n", lab.router_ns, "rule"]).stdout.splitlines()
    assert len(rules) == 3  # local, main, default: the kernel's own
    assert "table" not in netns.sh(netns.ns_argv(lab.router_ns, ["nft", "list", "tables"])).stdout

    # Each ISP answers on the config's gateway and owns its public address.
    for wan, public in ((PRIMARY, "198.51.100.2/30"), (BACKUP, "203.0.113.2/30")):
        isp = lab.isp(wan)
        assert isp.gateway == IPv4Interface(f"{lab.lab_config.wan(wan).gateway}/24")
        assert isp.public == IPv4Interface(public)
        isp_addrs = netns.sh(["ip", "-4", "-n", isp.ns, "-br", "addr"]).stdout
        assert str(isp.gateway) in isp_addrs and str(isp.public) in isp_addrs

    # The lab config is written and loads; the fake-internet services run.
    assert load(lab.config_path) == lab.lab_config
    assert lab.whoami is not None and lab.whoami.alive()
    assert lab.dns is not None and lab.dns.alive()
    procs = [(p.pid, p.started) for p in lab.procs]

    lab.down()
    assert not ns & netns.existing()
    assert not any(netns.alive(pid, started) for pid, started in procs)
    lab.down()  # idempotent


@pytest.mark.lab
def test_failed_up_removes_what_it_built(
    office: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A whoami that cannot start: up() must fail and leave no namespace behind.
    monkeypatch.setattr(services, "whoami_argv", lambda *a, **k: ["false"])
    lab = Lab(office, tag=f"{netns.run_tag()}f", state_root=tmp_path, remove_state=False)
    with pytest.raises(LabError, match="whoami"):
        lab.up()
    assert not set(lab.namespaces) & netns.existing()


@pytest.mark.lab
def test_with_block_tears_down_on_error(office: Config, tmp_path: Path) -> None:
    lab = Lab(office, tag=f"{netns.run_tag()}w", state_root=tmp_path)
    with pytest.raises(RuntimeError, match="boom"), lab:
        assert set(lab.namespaces) <= netns.existing()
        raise RuntimeError("boom")
    assert not set(lab.namespaces) & netns.existing()
    assert not lab.state_dir.exists()  # remove_state defaults to True


@pytest.mark.lab
def test_up_refuses_to_touch_a_namespace_that_is_not_its_own(
    office: Config, tmp_path: Path
) -> None:
    lab = Lab(office, tag=f"{netns.run_tag()}x", state_root=tmp_path)
    squatter = lab.topology.router_ns
    with netns.namespaces(squatter):
        with pytest.raises(LabError, match="already exist"):
            lab.up()
        assert squatter in netns.existing()  # not deleted by the failed up()
        lab.down()  # nothing of its own to remove
        assert squatter in netns.existing()
    assert not set(lab.namespaces) & netns.existing()


@pytest.mark.lab
def test_another_process_can_take_the_lab_down(make_lab: Any) -> None:
    lab: Lab = make_lab()
    procs = [(p.pid, p.started) for p in lab.procs]
    assert lab.state_dir in Lab.running(lab.state_dir.parent)
    other = Lab.attach(lab.state_dir)  # as `wanwatch lab down` would
    assert other.namespaces == lab.namespaces
    assert {p.pid for p in other.procs} == {pid for pid, _ in procs}
    other.down()
    assert not set(lab.namespaces) & netns.existing()
    until(
        lambda: not any(netns.alive(pid, st) for pid, st in procs), 5, "the lab's processes to end"
    )


@pytest.mark.lab
def test_client_reaches_whoami_via_the_primary_and_is_reported_as_such(routed_lab: Lab) -> None:
    lab = routed_lab
    lan = lab.topology.clients[0].lan
    # The ISP gateway answers the router (like the modem's own address).
    assert traffic.ping(lab, "router", lab.isp(PRIMARY).gateway.ip, count=3).received == 3

    now = time.monotonic()
    hit = traffic.first_new_connection(lab, lan, after=now, deadline=now + 10)
    assert hit is not None and hit.ok
    assert hit.isp == PRIMARY
    assert hit.peer == str(lab.isp(PRIMARY).public.ip)
    hop = traffic.first_hop(lab, lan)
    assert hop is not None and hop.address == str(lab.isp(PRIMARY).gateway.ip)
    assert hop.isp == PRIMARY

    # Moved by hand to the backup, the same client is reported through the backup.
    b = lab.lab_config.wan(BACKUP)
    netns.ip("-n", lab.router_ns, "route", "replace", "default", "via", str(b.gateway))
    now = time.monotonic()
    hit = traffic.first_new_connection(lab, lan, after=now, deadline=now + 10, via=BACKUP)
    assert hit is not None and hit.peer == str(lab.isp(BACKUP).public.ip)
    hop = traffic.first_hop(lab, lan)
    assert hop is not None and hop.isp == BACKUP


@pytest.mark.lab
def test_bcp38_catches_a_packet_leaving_through_the_wrong_uplink(
    lab: Lab, hand_router: Callable[..., None]
) -> None:
    # Default via the primary, but NAT only on the backup: LAN packets leave
    # ether1 with their private source, which ISP1 must drop, not NAT.
    hand_router(lab, via=PRIMARY, masquerade=("ether2",))
    lan = lab.topology.clients[0].lan
    lab.client_static(lan)
    before = lab.bcp38_drops(PRIMARY)
    now = time.monotonic()
    hit = traffic.first_new_connection(lab, lan, after=now, deadline=now + 1.5, timeout=0.3)
    assert hit is None
    after_client = lab.bcp38_drops(PRIMARY)
    assert after_client > before

    backup_address = lab.lab_config.wan(BACKUP).address
    assert isinstance(backup_address, IPv4Interface), backup_address
    # The router's own packet sourced from the backup's address, leaving ether1:
    # the probe-pinning mistake docs/lab-notes.md describes. Caught, not answered.
    stats = traffic.ping(
        lab,
        "router",
        lab.topology.isps[0].targets[0],
        count=3,
        timeout=0.5,
        source=backup_address.ip,
    )
    assert stats.received == 0
    assert lab.bcp38_drops(PRIMARY) >= after_client + 3
    assert lab.bcp38_drops(BACKUP) == 0


@pytest.mark.lab
def test_dns_server_answers_our_names_on_every_address(routed_lab: Lab) -> None:
    lab = routed_lab
    lan = lab.topology.clients[0].lan
    records = dict(lab.topology.dns_records)
    for server in lab.topology.dns_servers:
        ans = traffic.dns_lookup(lab, lan, "server.lab.test", server)
        assert ans.ok and ans.rcode == 0, ans
        assert ans.addresses == (str(records["server.lab.test"]),)
    missing = traffic.dns_lookup(lab, lan, "nothing-here.lab.test")
    assert missing.ok and missing.rcode == 3 and missing.addresses == ()  # NXDOMAIN


@pytest.mark.lab
def test_udhcpc_helper_gets_and_records_a_lease(lab: Lab) -> None:
    client = lab.topology.clients[0]
    lanaddr = lab.lab_config.lans[0].address
    assert lanaddr is not None
    netns.ip("-n", lab.router_ns, "addr", "add", str(lanaddr), "dev", client.router_if)
    # A throwaway dnsmasq (the real one is the daemon's): own conf, pid and lease
    # files, bound to the one interface, no ping before offering.
    sd = lab.state_dir
    conf = sd / "throwaway-dnsmasq.conf"
    conf.write_text(
        "port=0\n"
        f"interface={client.router_if}\n"
        "bind-interfaces\n"
        "no-ping\n"
        "dhcp-range=192.168.19.50,192.168.19.60,255.255.255.0,1h\n"
        f"dhcp-option=option:router,{lanaddr.ip}\n"
        "dhcp-option=option:dns-server,198.51.100.53\n"
    )
    leases = sd / "throwaway.leases"
    dnsmasq = lab.spawn(
        lab.router_ns,
        [
            "dnsmasq",
            "--keep-in-foreground",
            f"--conf-file={conf}",
            f"--pid-file={sd / 'throwaway.pid'}",
            f"--dhcp-leasefile={leases}",
            "--log-facility=-",
        ],
        "throwaway-dnsmasq",
    )
    resolv = hashlib.sha256(Path("/etc/resolv.conf").read_bytes()).hexdigest()
    try:
        asked = time.monotonic()
        lease = lab.dhcp_lease(client.lan, timeout=10)
        assert IPv4Address("192.168.19.50") <= lease.address.ip <= IPv4Address("192.168.19.60")
        assert lease.address.network == lanaddr.network
        assert lease.router == lanaddr.ip
        assert lease.dns == (IPv4Address("198.51.100.53"),)
        assert lease.lease_time == 3600
        assert lease.server == lanaddr.ip
        assert lease.t > asked
        assert lease.took is not None and 0 < lease.took < 10
        # Recorded as JSON in the lab's state dir ...
        recorded = json.loads((sd / "dhcp" / f"{client.lan}.json").read_text())
        assert recorded["ip"] == str(lease.address.ip) and recorded["event"] == "bound"
        # ... and applied to the client: address and default route.
        shown = netns.sh(["ip", "-n", client.ns, "-4", "-br", "addr"]).stdout
        assert str(lease.address) in shown
        route = netns.sh(["ip", "-n", client.ns, "route", "show", "default"]).stdout
        assert f"via {lanaddr.ip}" in route
        # The server saw our host name.
        assert client.hostname in leases.read_text()

        # A long-running client renews (SIGUSR1) and keeps its address.
        running = lab.dhcp_client(client.lan)
        first = running.wait_lease(time.monotonic() + 10)
        asked = running.renew()
        renewed = running.wait_lease(asked + 10, after=asked)
        assert renewed.event == "renew" and renewed.address == first.address
        running.stop()
    finally:
        lab.stop_proc(dnsmasq)
    assert not dnsmasq.alive()
    # Never the host's resolver configuration.
    assert hashlib.sha256(Path("/etc/resolv.conf").read_bytes()).hexdigest() == resolv


@pytest.mark.lab
def test_flow_helper_sees_a_stall_and_a_reset(routed_lab: Lab) -> None:
    from wanwatch.lab import faults

    lab = routed_lab
    lan = lab.topology.clients[0].lan
    with traffic.Flow(lab, lan, interval=0.05, stall_after=0.3) as flow:
        rep = flow.wait_connected(time.monotonic() + 10)
        assert rep.isp == PRIMARY and not rep.stalls

        faults.blackhole(lab, PRIMARY)
        until(lambda: flow.report().stalls, 5, "the blackholed flow to be reported stalled")
        faults.clear(lab, PRIMARY, "blackhole")
        # TCP retransmission backoff decides when the stall ends.
        until(lambda: flow.report().stalls[-1][1] is not None, 15, "the stall to end")
        rep = flow.report()
        assert rep.stalls[-1][1] is not None and rep.broken_at is None

        # Moved to the backup with its NAT entry gone, the flow reaches the server
        # from another address: the server resets it.
        b = lab.lab_config.wan(BACKUP)
        netns.ip("-n", lab.router_ns, "route", "replace", "default", "via", str(b.gateway))
        netns.nsrun(lab.router_ns, "conntrack", "-D", "-p", "tcp", check=False)
        until(lambda: flow.report().broken_at is not None, 10, "the flow to be reset")
        rep = flow.report()
        assert rep.broken_at is not None and rep.reason == "reset", rep


def test_yaml_written_is_plain_config_data(office: Config) -> None:
    text = Lab(office, tag="t4").config_text
    data = yaml.safe_load(text)
    assert set(data) <= {
        *("wans", "lans", "dns", "nat", "policy", "monitor", "hooks"),
        *("firewall", "forwards", "rules"),
    }
    assert data["lans"][0]["dhcp"]["range"] == "192.168.19.2-192.168.19.254"


@pytest.mark.lab
def test_connect_loop_times_a_switch_of_uplink(routed_lab: Lab) -> None:
    from wanwatch.lab import faults

    lab = routed_lab
    lan = lab.topology.clients[0].lan
    with traffic.ConnectLoop(lab, lan, interval=0.02, timeout=0.5, max_seconds=60) as loop:
        start = time.monotonic()
        before = loop.first_success(after=start, deadline=start + 10)
        assert before is not None and before.isp == PRIMARY
        # The router moved by hand after a silent cut: what the daemon will do.
        cut = faults.blackhole(lab, PRIMARY)
        b = lab.lab_config.wan(BACKUP)
        netns.ip("-n", lab.router_ns, "route", "replace", "default", "via", str(b.gateway))
        hit = loop.first_success(after=cut.t_start, via=BACKUP, deadline=cut.t_start + 10)
        assert hit is not None and hit.ok and hit.t1 > cut.t_start
        assert hit.peer == str(lab.isp(BACKUP).public.ip)
        attempts = loop.stop()
    # Nothing started after the blackhole was in place got through the primary.
    assert not [a for a in attempts if a.ok and a.isp == PRIMARY and a.t0 > cut.t_done]
    # Fresh attempts on a 20 ms grid; one stuck in the blackhole (a timeout) does
    # not hold up the next, since they overlap.
    t0s = sorted(a.t0 for a in attempts)
    assert len(t0s) >= 3
    assert all(b - a >= 0.015 for a, b in itertools.pairwise(t0s)), t0s
    assert all(a.error == "timeout" for a in attempts if not a.ok)
