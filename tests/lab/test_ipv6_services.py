"""The dual-stack office's uplink side over IPv6: scanned from each uplink's segment,
its DNS forwarder asking an IPv6-only upstream, and each uplink's IPv6 bytes counted.

One lab for the module (examples/office-dual-stack.yaml, LAN clients on static IPv4
and SLAAC IPv6); every test starts the daemon on a config of its own (lab/office.py
Tailored) and the fixture stops it and clears every fault. Each ISP namespace gets a
route to the office's ULAs via the router's link-local address, so it can try the LAN
hosts directly, as the IPv4 scan (tests/lab/test_firewall.py) routes to the LANs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest

from wanwatch.config import load
from wanwatch.config.ipv6 import lan_address6, translated_prefix
from wanwatch.lab import faults, netns, uplinks
from wanwatch.lab.office import Office, Tailored
from wanwatch.lab.poll import until
from wanwatch.lab.scan import Port, listen, listening, scan
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import dns_lookup

pytestmark = pytest.mark.lab

DUAL = Path(__file__).resolve().parents[2] / "examples" / "office-dual-stack.yaml"
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"
OFFICE_LAN = "ether3"
ROUTER_TCP, ROUTER_UDP = (2222, 2223), (5353, 5354)  # the router's own services (listeners)
LAN_TCP, LAN_UDP = (8080,), (9999,)  # a LAN host's
DEADLINE = 30.0  # the daemon up, both families judged (the primary's RA every 10 s)
SLAAC_DEADLINE = 20.0  # the router's first RAs, then the client's DAD (~1 s)
PING_COUNT, PING_SIZE = 20, 1400  # the IPv6 traffic the counters must see
IPV6_HEADER, ICMP_HEADER = 40, 8  # RFC 8200 section 3, RFC 4443 section 2.1


@pytest.fixture(scope="module")
def lab6(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(load(DUAL), tag=netns.run_tag(), state_root=tmp_path_factory.mktemp("ipv6-services"))
    lab.up()
    try:
        for c in lab.topology.clients:
            lab.client_static(c.lan)
        for isp in lab.topology.isps:  # the uplink's segment may route to the LANs' ULAs
            router = uplinks.router_link_local(lab, isp)[0]
            netns.batch(
                isp.ns,
                [
                    f"route add {a.network} via {router} dev {isp.cust_if}"
                    for lan in lab.lab_config.lans
                    if (a := lan_address6(lan)) is not None
                ],
            )
        yield lab
    finally:
        lab.down()


@pytest.fixture
def router(lab6: Lab) -> Iterator[Tailored]:
    r = Tailored(lab6, PRIMARY, DEADLINE)
    try:
        yield r
    finally:
        code = r.close()
        assert code in (0, None), r.office.log()[-3000:] if r.office else ""


def _both_up(st: dict[str, Any]) -> bool:
    return bool(st.get("applied")) and all(
        w["families"] == {"4": "up", "6": "up"} for w in st["wans"]
    )


def _start(r: Tailored, name: str, **sections: Any) -> Office:
    office = r.start(name, **sections)
    office.wait_for(
        lambda st: _both_up(st) and st["active6"][:1] == [PRIMARY], DEADLINE, "both families up"
    )
    return office


def _client6(lab: Lab, lan: str = OFFICE_LAN) -> IPv6Address:
    """The LAN client's SLAAC address in its LAN's ULA /64."""
    net = lab.client(lan).gateway6
    assert net is not None
    found = until(
        lambda: [a for a in lab.client_addresses6(lan) if a.network == net.network],
        SLAAC_DEADLINE,
        f"a SLAAC address on the {lan} client",
    )
    return found[0].ip


def _router6(lab: Lab, wan: str) -> IPv6Address:
    """The router's global IPv6 address on ``wan`` (static, or formed by SLAAC)."""
    isp = lab.isp(wan)
    shown = netns.ip(
        "-j", "-6", "-n", lab.router_ns, "addr", "show", "dev", isp.router_if, "scope", "global"
    ).stdout
    found = [
        IPv6Address(a["local"])
        for link in json.loads(shown)
        for a in link["addr_info"]
        if "local" in a and not a.get("tentative") and IPv6Address(a["local"]) in isp.net6
    ]
    assert found, f"no global IPv6 address of the router on {isp.router_if}"
    return found[0]


def _ping6(lab: Lab, who: str, dst: IPv6Address | str, count: int = 3, size: int = 56) -> str:
    out = netns.nsrun(
        lab.ns_for(who),
        "ping", "-6", "-n", "-c", str(count), "-i", "0.05", "-W", "2", "-s", str(size), str(dst),
        check=False,
    )  # fmt: skip
    return out.stdout + out.stderr


def states(found: dict[Port, str]) -> dict[str, str]:
    return {str(p): s for p, s in found.items()}


def split(ports: set[Port]) -> tuple[list[int], list[int]]:
    return sorted(p.port for p in ports if p.proto == "tcp"), sorted(
        p.port for p in ports if p.proto == "udp"
    )


# --------------------------------------------------------------------------- the scan


def test_uplink_segments_reach_over_ipv6_only_what_the_config_opens(router: Tailored) -> None:
    lab = router.lab
    _start(
        router,
        "scan6",
        firewall={"allow": [{"name": "ssh", "proto": "tcp", "port": 2222, "wans": [BACKUP]}]},
    )
    router.procs.append(listen(lab, "router", tcp=ROUTER_TCP, udp=ROUTER_UDP))
    router.procs.append(listen(lab, OFFICE_LAN, tcp=LAN_TCP, udp=LAN_UDP))
    on_router = listening(lab, "router")
    assert {Port("tcp", 2222), Port("udp", 5353), Port("udp", 53)} <= on_router  # 53: dnsmasq
    r_tcp, r_udp = split(on_router)
    host = _client6(lab)
    lan_router = lab.client(OFFICE_LAN).gateway6
    assert lan_router is not None
    opened = {"2222/tcp"}  # firewall.allow, on the backup only

    for isp in lab.topology.isps:
        own = _router6(lab, isp.wan)
        link_local = f"{uplinks.router_link_local(lab, isp)[0]}%{isp.cust_if}"
        for dst in (str(own), link_local, str(lan_router.ip)):
            seen = states(scan(lab, isp.wan, dst, tcp=r_tcp, udp=r_udp))
            want = opened if isp.wan == BACKUP else set()
            assert {p for p, s in seen.items() if s != "filtered"} == want, (isp.wan, dst, seen)
            assert all(seen[p] == "open" for p in want), (isp.wan, dst, seen)
        # the LAN host, routed through the router: nothing of it
        seen = states(scan(lab, isp.wan, str(host), tcp=LAN_TCP, udp=LAN_UDP))
        assert set(seen.values()) == {"filtered"}, (isp.wan, seen)
        # ICMPv6 echo passes (RFC 4890 4.3.1): to the router and through it to the host
        assert " 0% packet loss" in _ping6(lab, isp.wan, own), isp.wan
        assert " 0% packet loss" in _ping6(lab, isp.wan, host), isp.wan

    # The client's address in the backup's routed prefix (prefix6) is not a way in: the
    # translation is for connections from the office only.
    prefix = translated_prefix(lab.lab_config.wan(BACKUP), 0)
    assert prefix is not None
    outside = prefix.network_address + (int(host) & (2**64 - 1))
    seen = states(scan(lab, "inet", str(outside), tcp=LAN_TCP, udp=LAN_UDP))
    assert set(seen.values()) == {"filtered"}, seen

    # From the LAN the router's services answer over IPv6 (the LAN is not judged).
    seen = states(scan(lab, OFFICE_LAN, str(lan_router.ip), tcp=ROUTER_TCP, udp=ROUTER_UDP))
    assert set(seen.values()) == {"open"}, seen


# --------------------------------------------------------------------------- DNS upstream


def _dns_log(lab: Lab) -> str:
    """What the fake internet's DNS server logged so far (dnsmasq's log-queries)."""
    assert lab.dns is not None
    return lab.dns.out.read_text(errors="replace") + lab.dns.stderr()


def _asked_from(lab: Lab, name: str, before: str) -> set[str]:
    """The uplinks whose addresses asked the fake internet's DNS server for ``name``
    since the log read ``before`` (``query[A] <name> from <address>``)."""
    pattern = re.compile(rf"query\[A\] {re.escape(name)} from (\S+)")
    seen = pattern.findall(_dns_log(lab))[len(pattern.findall(before)) :]
    return {lab.isp_of(a) or a for a in seen}


def test_the_forwarder_asks_an_ipv6_upstream_through_the_uplink_carrying_ipv6(
    router: Tailored,
) -> None:
    lab = router.lab
    upstream = lab.topology.dns_servers6[0]
    office = _start(router, "dns6", dns={"upstream": [str(upstream)], "domain": "office.lan"})
    gateway = lab.client(OFFICE_LAN).gateway
    assert gateway is not None

    log = _dns_log(lab)
    first = dns_lookup(lab, OFFICE_LAN, "www.lab.test", gateway)
    assert first.ok and first.addresses == (str(lab.topology.whoami[0]),), first
    assert _asked_from(lab, "www.lab.test", log) == {PRIMARY}

    # IPv6 alone fails on the primary: IPv4 stays there, the IPv6 upstream is asked
    # through the backup from then on.
    faults.blackhole(lab, PRIMARY, family=6)
    office.wait_for(
        lambda st: st["active"][:1] == [PRIMARY] and st["active6"][:1] == [BACKUP],
        DEADLINE,
        "IPv6 alone on the backup",
    )
    log = _dns_log(lab)
    second = dns_lookup(lab, OFFICE_LAN, "server.lab.test", gateway)
    assert second.ok and second.addresses == (str(lab.topology.whoami[1]),), second
    assert _asked_from(lab, "server.lab.test", log) == {BACKUP}


# --------------------------------------------------------------------------- counters


def test_each_uplinks_ipv6_bytes_are_counted_beside_its_total(router: Tailored) -> None:
    lab = router.lab
    office = _start(router, "usage6")
    _client6(lab)  # the client has IPv6 to send from
    before = office.wait_for(
        lambda st: {PRIMARY, BACKUP} <= st["counters"].keys(), DEADLINE, "a counters' reading"
    )["counters"]
    out = _ping6(lab, OFFICE_LAN, lab.topology.whoami6[0], PING_COUNT, PING_SIZE)
    assert f"{PING_COUNT} received" in out, out
    packet = PING_SIZE + ICMP_HEADER + IPV6_HEADER

    def grown(st: dict[str, Any]) -> bool:
        now, then = st["counters"][PRIMARY], before[PRIMARY]
        return all(now[k] - then[k] >= PING_COUNT * packet for k in ("bytes_out6", "bytes_in6"))

    st = office.wait_for(grown, DEADLINE, "the primary's IPv6 counters to count the pings")
    now = st["counters"]
    for wan in (PRIMARY, BACKUP):
        # IPv6's share never exceeds the total, and the total moved at least as much
        assert now[wan]["bytes_in6"] <= now[wan]["bytes_in"], now
        assert now[wan]["bytes_out6"] <= now[wan]["bytes_out"], now
    grew = {k: now[PRIMARY][k] - before[PRIMARY][k] for k in ("bytes_in", "bytes_in6")}
    assert grew["bytes_in"] >= grew["bytes_in6"], grew
    # the backup carried none of the client's IPv6: only its own probes
    assert now[BACKUP]["bytes_in6"] - before[BACKUP]["bytes_in6"] < PING_COUNT * packet, now
