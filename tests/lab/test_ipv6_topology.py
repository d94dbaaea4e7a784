"""The lab's IPv6: the fake internet and ISPs in 2001:db8::/32 only, BCP38 for IPv6,
the prefix each ISP routes to its customer, and an ISP's router advertisements.

The router is configured BY HAND here (as in test_topology.py) to prove the
topology; in the real lab the daemon does that.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from ipaddress import IPv6Address, IPv6Interface, IPv6Network, ip_address, ip_interface
from pathlib import Path

import pytest

from wanwatch.config import Config, load
from wanwatch.lab import netns, traffic, uplinks
from wanwatch.lab.plan import INET_NET6, ISP_LINK_LOCAL, ISP_PUBLIC_NETS6, isp_ruleset, plan
from wanwatch.lab.poll import until
from wanwatch.lab.topology import Lab

SharedLab = Callable[..., contextlib.AbstractContextManager[Lab]]  # fixture (conftest.py)
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"
DUAL = Path(__file__).resolve().parents[2] / "examples" / "office-dual-stack.yaml"
DOC6 = IPv6Network("2001:db8::/32")  # RFC 3849: the only IPv6 the lab may route
LAN6 = IPv6Interface("fd00:77::1/64")  # the router's LAN address, by hand
CLIENT6 = IPv6Interface("fd00:77::100/64")
WAN6 = 2  # the router's host number on the primary's customer /64


def _v6_strings(data: object) -> list[str]:
    """Every value of a dataclass tree that reads as an IPv6 address or prefix."""
    found: list[str] = []
    items = data.__dict__.values() if hasattr(data, "__dict__") else ()
    for v in (*items, *(data if isinstance(data, tuple) else ())):
        if isinstance(v, IPv6Address | IPv6Interface | IPv6Network):
            found.append(str(v))
        elif isinstance(v, tuple) or hasattr(v, "__dict__"):
            found += _v6_strings(v)
    return found


# --------------------------------------------------------------------------- the plan (no root)


def test_plan_puts_every_ipv6_address_in_the_documentation_prefix(office: Config) -> None:
    topo = plan(office, "t6")
    found = _v6_strings(topo)
    assert len(found) > 10
    for text in found:
        assert ip_interface(text).network.network_address in DOC6, text
        assert ip_interface(text).network.broadcast_address in DOC6, text
    # One /48 per ISP, the fake internet's hosts in none of them.
    nets = [isp.net6 for isp in topo.isps]
    assert nets == list(ISP_PUBLIC_NETS6[: len(nets)]) and len(set(nets)) == len(nets)
    assert all(not INET_NET6.overlaps(n) for n in nets)
    assert all(h in INET_NET6 for h in topo.hosts6)
    for isp in topo.isps:
        # What the customer may send from lies in the ISP's own /48; its link to the
        # internet does not.
        assert isp.customer_net6.subnet_of(isp.net6) and isp.routed6.subnet_of(isp.net6)
        assert not isp.customer_net6.overlaps(isp.routed6)
        assert isp.public6.ip in isp.net6 and isp.public6.ip not in isp.customer_net6
        assert isp.routed6.prefixlen == 56
    # Every IPv4 name has its AAAA beside it.
    assert {n for n, _ in topo.dns_records} == {n for n, _ in topo.dns_records6}


def test_dual_stack_lab_config_stays_in_the_lab_and_its_targets_answer() -> None:
    office6 = load(DUAL)
    lab = Lab(office6, tag="t7")  # constructing builds nothing
    topo, cfg = lab.topology, lab.lab_config
    for k, (wan, isp) in enumerate(zip(cfg.wans, topo.isps, strict=True)):
        six = [t.address for t in wan.probe.family(6)]
        assert six == list(isp.targets6) and len(six) == len(office6.wans[k].probe.family(6)) > 0
        # Each IPv6 probe target is a host of the fake internet (answered on its lo).
        assert set(six) <= set(topo.hosts6)
        assert isp.advertises == (wan.address6 == "auto")
        if wan.prefix6 is not None:
            assert wan.prefix6.subnet_of(isp.routed6)
        if wan.gateway6 is not None:
            assert wan.gateway6 == ISP_LINK_LOCAL.ip
    static = [(w.name, w.address6) for w in cfg.wans if isinstance(w.address6, IPv6Interface)]
    assert static and all(a.network == topo.isp(n).customer_net6 for n, a in static)


def test_isp_ruleset_filters_ipv6_sources_like_ipv4(office: Config) -> None:
    isp = plan(office, "t6").isps[0]
    rules = isp_ruleset(isp)
    assert f"ip6 saddr != {{ {isp.customer_net6}, {isp.routed6} }}" in rules
    assert f"ip saddr != {isp.customer_net} " in rules
    assert "table inet " in rules and "table ip " not in rules
    assert rules.count("masquerade") == 1  # IPv4 only: the ISP routes IPv6 as it is


# --------------------------------------------------------------------------- the lab (root)


@pytest.fixture(scope="module")
def lab6(shared_lab: SharedLab) -> Iterator[Lab]:
    """The office configured by hand: IPv4 as in test_topology.py (default via the
    primary, both uplinks masqueraded), and IPv6 on the primary only: a static address in
    its ISP's customer /64, default via fe80::1, and a ULA LAN whose client is
    masqueraded there (the daemon's NAT66, done here by hand)."""
    with shared_lab("ipv6") as lab:
        cfg = lab.lab_config
        wan, lan = cfg.wan(PRIMARY), cfg.lans[0]
        isp = lab.isp(PRIMARY)
        netns.sysctl(lab.router_ns, {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1})
        cmds = [f"addr add {w.address} dev {w.interface}" for w in cfg.wans]
        cmds += [f"addr add {n.address} dev {n.interface}" for n in cfg.lans]
        cmds += [
            f"route add default via {wan.gateway} dev {wan.interface}",
            f"addr add {isp.customer_net6[WAN6]}/64 dev {wan.interface} nodad",
            f"addr add {LAN6} dev {lan.interface} nodad",
            f"route add default via {ISP_LINK_LOCAL.ip} dev {wan.interface}",
        ]
        netns.batch(lab.router_ns, cmds)
        uplinks_set = ", ".join(f'"{w.interface}"' for w in cfg.wans)
        netns.nft(
            lab.router_ns,
            "table inet by_hand {\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            f"    oifname {{ {uplinks_set} }} meta nfproto ipv4 masquerade\n"
            f'    oifname "{wan.interface}" ip6 saddr {LAN6.network} masquerade\n'
            "  }\n"
            "}\n",
        )
        lab.client_static(lan.name)
        client = lab.client(lan.name)
        netns.batch(
            client.ns,
            [
                f"addr add {CLIENT6} dev {client.ifname} nodad",
                f"route add default via {LAN6.ip} dev {client.ifname}",
            ],
        )
        # The links' own link-local addresses finish duplicate detection a second or
        # two after they come up (RFC 4862 5.4); until then the first IPv6 packets
        # were seen lost here. Poll for the path rather than test that start-up.
        until(
            lambda: traffic.connections(lab, lan.name, 1, dst=lab.topology.whoami6[0])[0].ok,
            20,
            "IPv6 from the client through the primary",
        )
        yield lab


def _ping6(lab: Lab, who: str, dst: IPv6Address, *args: str) -> bool:
    """Three echo requests by iputils ping, bounded to a few seconds; any reply?"""
    out = netns.nsrun(
        lab.ns_for(who), "ping", "-6", "-n", "-q", "-c", "3", "-i", "0.2", "-w", "3", *args,
        str(dst), check=False,
    )  # fmt: skip
    return out.returncode == 0


@pytest.mark.lab
def test_ipv6_client_reaches_the_fake_internet_through_the_primary(lab6: Lab) -> None:
    topo = lab6.topology
    lan = topo.clients[0].lan
    for dst in topo.whoami6:
        attempts = traffic.connections(lab6, lan, 3, dst=dst)
        assert all(a.ok for a in attempts), attempts
        # Masqueraded to the router's address in the primary ISP's customer /64.
        assert {a.peer for a in attempts} == {str(lab6.isp(PRIMARY).customer_net6[WAN6])}
        assert {a.isp for a in attempts} == {PRIMARY}
    assert _ping6(lab6, lan, topo.whoami6[1])
    assert _ping6(lab6, lan, topo.dns_servers6[0])


@pytest.mark.lab
def test_fake_internet_dns_answers_aaaa_over_ipv6(lab6: Lab) -> None:
    topo = lab6.topology
    lan = topo.clients[0].lan
    wanted = dict(topo.dns_records6)
    for name, addr in wanted.items():
        got = traffic.dns_lookup(lab6, lan, name, topo.dns_servers6[0], qtype="AAAA")
        assert got.ok and got.rcode == 0 and got.addresses == (str(addr),), got
    a = traffic.dns_lookup(lab6, lan, "www.lab.test", topo.dns_servers6[0])
    assert a.addresses == (str(dict(topo.dns_records)["www.lab.test"]),)
    missing = traffic.dns_lookup(lab6, lan, "nosuch.lab.test", topo.dns_servers6[0], qtype="AAAA")
    assert missing.rcode == 3  # NXDOMAIN: nothing is forwarded anywhere


@pytest.mark.lab
def test_bcp38_drops_an_unnatted_ipv6_source(lab6: Lab) -> None:
    # The client's ULA leaves the router untranslated through the backup (no NAT66
    # there): the backup's ISP drops and counts it, and nothing comes back.
    cfg = lab6.lab_config
    backup = cfg.wan(BACKUP)
    dst = lab6.topology.whoami6[0]
    before = lab6.bcp38_drops(BACKUP)
    netns.batch(lab6.router_ns, [f"route add {dst}/128 via fe80::1 dev {backup.interface}"])
    try:
        assert not _ping6(lab6, cfg.lans[0].name, dst)
        assert lab6.bcp38_drops(BACKUP) >= before + 3
    finally:
        netns.batch(lab6.router_ns, [f"route del {dst}/128 via fe80::1 dev {backup.interface}"])
    assert _ping6(lab6, cfg.lans[0].name, dst)  # through the primary again


@pytest.mark.lab
def test_isp_routes_its_prefix_to_the_router(lab6: Lab) -> None:
    # An address of the primary's routed prefix on the router (what the daemon's
    # prefix translation gives a LAN) is reached from the internet through that ISP.
    isp = lab6.isp(PRIMARY)
    own = isp.routed6[1]
    netns.batch(lab6.router_ns, [f"addr add {own}/128 dev lo"])
    try:
        assert _ping6(lab6, "router", lab6.topology.whoami6[0], "-I", str(own))
        route = json.loads(
            netns.sh(["ip", "-j", "-6", "-n", isp.ns, "route", "show", str(isp.routed6)]).stdout
        )
        ll = uplinks.router_link_local(lab6, isp)
        assert [r["gateway"] for r in route] == [str(ll[0])]
    finally:
        netns.batch(lab6.router_ns, [f"addr del {own}/128 dev lo"])


@pytest.mark.lab
def test_isp_router_advertisements_give_the_uplink_an_address_by_slaac(lab6: Lab) -> None:
    # The backup's interface, as an `address6: auto` uplink on a forwarding router
    # (accept_ra=2: ip-sysctl.rst, a forwarding host takes RAs only then).
    backup = lab6.lab_config.wan(BACKUP)
    isp = lab6.isp(BACKUP)
    netns.sysctl(lab6.router_ns, {f"net.ipv6.conf.{backup.interface}.accept_ra": 2})
    proc = uplinks.start_ra(lab6, BACKUP)
    try:

        def slaac() -> list[IPv6Interface]:
            shown = netns.sh(
                ["ip", "-j", "-6", "-n", lab6.router_ns, "addr", "show", "dev", backup.interface]
            ).stdout
            return [
                IPv6Interface(f"{a['local']}/{a['prefixlen']}")
                for link in json.loads(shown)
                for a in link["addr_info"]
                if a.get("scope") == "global" and a.get("dynamic") and not a.get("tentative")
            ]

        found = until(slaac, 20, "a SLAAC address from the backup ISP's RA")
        assert [a.network for a in found] == [isp.customer_net6]
        # The default router learned is the ISP's link-local address on that link.
        routes = json.loads(
            netns.sh(
                ["ip", "-j", "-6", "-n", lab6.router_ns, "route", "show", "default", "proto", "ra"]
            ).stdout
        )
        assert [r["dev"] for r in routes] == [backup.interface]
        assert ip_address(routes[0]["gateway"]).is_link_local
    finally:
        uplinks.stop_ra(lab6, BACKUP)
        # What the RA taught goes, so the module's other tests keep their one default.
        netns.sysctl(lab6.router_ns, {f"net.ipv6.conf.{backup.interface}.accept_ra": 0})
        for what in ("route", "addr"):
            netns.ip("-6", "-n", lab6.router_ns, what, "flush", "dev", backup.interface,
                     *(("proto", "ra") if what == "route" else ("scope", "global")))  # fmt: skip
    assert not proc.alive()
