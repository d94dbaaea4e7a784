"""The firewall end to end: the real daemon in the lab's router namespace, scanned from outside.

One lab for the module (the reference office, LAN clients on static addresses
.100); every test starts the daemon on a config of its own and the ``router``
fixture stops it and clears every fault. Listeners (lab/scan.py) stand where a
LAN client and the router really listen, and ``ss`` adds every port the
daemon's own children listen on (dnsmasq). Each ISP namespace, the uplink's
own segment (the LTE modem's LAN, the ISP's box), gets routes to the office's
LANs via the router's uplink address, so it can try the LAN hosts directly.

A port forward on the backup is reached from the fake internet: the ISP
namespace forwards a public port to the router's uplink address (as a modem
in front of a router does), so the router's reply must leave by the backup
although the main default points at the primary; leaving by the primary, the
reply would carry the backup's address and the primary's ISP would drop it
(BCP38).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from typing import Any

import pytest
import yaml

from wanwatch.footprint import NFT_TABLE
from wanwatch.lab import faults, netns
from wanwatch.lab.office import Office, Tailored
from wanwatch.lab.scan import Port, listen, listening, scan
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import connections, dns_lookup, ping
from wanwatch.status import FirewallStatus, from_json

pytestmark = pytest.mark.lab

PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"  # examples/office.yaml
OFFICE_LAN, GUEST_LAN = "ether3", "WIFI"
ROUTER_TCP, ROUTER_UDP = (2222, 2223), (5353, 5354)  # the router's own services (listeners)
LAN_TCP, LAN_UDP = (8080,), (9999,)  # a LAN host's
PUBLIC_PORT = 18080  # the backup's forward, reached from the internet
DEADLINE = 30.0


# --------------------------------------------------------------------------- lab and daemon


@pytest.fixture(scope="module")
def fw_lab(shared_lab: Any) -> Iterator[Lab]:
    with shared_lab("firewall-labs") as lab:
        for c in lab.topology.clients:
            lab.client_static(c.lan)
        for isp in lab.topology.isps:  # the uplink's segment may route to the LANs
            via = wan_address(lab, isp.wan)
            netns.batch(
                isp.ns,
                [
                    f"route add {c.network} via {via} dev {isp.cust_if}"
                    for c in lab.topology.clients
                ],
            )
        yield lab


def wan_address(lab: Lab, wan: str) -> IPv4Address:
    addr = lab.lab_config.wan(wan).address
    assert addr is not None and not isinstance(addr, str)
    return addr.ip


def host(lab: Lab, lan: str) -> IPv4Address:
    """The LAN client's static address (Lab.client_static: host .100)."""
    net = lab.client(lan).network
    assert net is not None
    return net.network_address + 100


def gateway(lab: Lab, lan: str) -> str:
    return str(lab.client(lan).gateway)


class Router(Tailored):
    def start(self, name: str, **sections: Any) -> Office:
        """The daemon on the lab config plus ``sections`` (firewall, forwards, isolate)."""
        isolate = sections.pop("isolate", ())
        lans = yaml.safe_load(self.lab.config_text)["lans"]
        for lan in lans:
            lan["isolate"] = lan["name"] in isolate
        return super().start(name, lans=lans, **sections)

    def listen(self, who: str, tcp: tuple[int, ...], udp: tuple[int, ...]) -> None:
        self.procs.append(listen(self.lab, who, tcp=tcp, udp=udp))

    def listeners(self) -> None:
        """Listeners on the router and on both LAN clients."""
        self.listen("router", ROUTER_TCP, ROUTER_UDP)
        for lan in (OFFICE_LAN, GUEST_LAN):
            self.listen(lan, LAN_TCP, LAN_UDP)


@pytest.fixture
def router(fw_lab: Lab) -> Iterator[Router]:
    r = Router(fw_lab, PRIMARY, DEADLINE)
    try:
        yield r
    finally:
        code = r.close()
        assert code in (0, None), r.office.log()[-3000:] if r.office else ""
        items = netns.nft_json(fw_lab.router_ns, "tables")
        tables = [i["table"]["name"] for i in items if "table" in i]
        assert NFT_TABLE not in tables  # a stopped daemon leaves no firewall behind


def states(found: dict[Port, str]) -> dict[str, str]:
    return {str(p): s for p, s in found.items()}


def split(ports: set[Port]) -> tuple[list[int], list[int]]:
    return sorted(p.port for p in ports if p.proto == "tcp"), sorted(
        p.port for p in ports if p.proto == "udp"
    )


def counted(office: Office, check: Callable[[FirewallStatus], bool], what: str) -> FirewallStatus:
    """The firewall part of the daemon's status once ``check`` holds for it (the daemon
    reads the counters off its loop, at most a second apart, while status is asked for)."""

    def ready(st: dict[str, Any]) -> bool:
        fw = from_json(st).firewall
        return fw is not None and check(fw)

    st = office.wait_for(ready, DEADLINE, what)
    fw = from_json(st).firewall
    assert fw is not None
    return fw


# --------------------------------------------------------------------------- tests


def test_uplink_segments_reach_nothing_a_lan_reaches_what_is_allowed(router: Router) -> None:
    lab = router.lab
    office = router.start("default")
    router.listeners()
    on_router = listening(lab, "router")
    on_host = listening(lab, OFFICE_LAN)
    assert {Port("tcp", 2222), Port("udp", 5353)} <= on_router
    assert Port("udp", 53) in on_router  # the daemon's dnsmasq: a real router service
    r_tcp, r_udp = split(on_router)
    h_tcp, h_udp = split(on_host)

    for isp in lab.topology.isps:
        # the router's uplink address on this segment, and its LAN addresses behind it
        for dst in (str(wan_address(lab, isp.wan)), gateway(lab, OFFICE_LAN)):
            seen = states(scan(lab, isp.wan, dst, tcp=r_tcp, udp=r_udp))
            assert set(seen.values()) == {"filtered"}, (isp.wan, dst, seen)
        for lan in (OFFICE_LAN, GUEST_LAN):  # the LAN hosts, routed through the router
            seen = states(scan(lab, isp.wan, str(host(lab, lan)), tcp=h_tcp, udp=h_udp))
            assert set(seen.values()) == {"filtered"}, (isp.wan, lan, seen)

    # From a LAN: the router's services and the other LAN's host.
    seen = states(scan(lab, OFFICE_LAN, gateway(lab, OFFICE_LAN), tcp=r_tcp, udp=r_udp))
    assert {k: seen[k] for k in ("2222/tcp", "2223/tcp", "5353/udp", "5354/udp")} == dict.fromkeys(
        ("2222/tcp", "2223/tcp", "5353/udp", "5354/udp"), "open"
    )
    assert dns_lookup(lab, OFFICE_LAN, "www.lab.test", IPv4Address(gateway(lab, OFFICE_LAN))).ok
    seen = states(scan(lab, OFFICE_LAN, str(host(lab, GUEST_LAN)), tcp=LAN_TCP, udp=LAN_UDP))
    assert set(seen.values()) == {"open"}, seen
    # ICMP echo from the uplink segment still answers (rate-limited, not closed)
    assert ping(lab, PRIMARY, wan_address(lab, PRIMARY), count=5, interval=0.2).received == 5

    # the daemon's status counts what the scans ran into, on both uplinks and both chains
    counted(
        office,
        lambda fw: all(d.input > 0 and d.forward > 0 for d in fw.dropped.values()),
        "drops counted on every uplink",
    )


def _router_link_local(lab: Lab, iface: str) -> str:
    shown = netns.sh(["ip", "-j", "-n", lab.router_ns, "-6", "addr", "show", "dev", iface])
    for link in json.loads(shown.stdout):
        for a in link.get("addr_info", []):
            if a.get("scope") == "link":
                return str(a["local"])
    raise AssertionError(f"no link-local address on {iface}")


def test_ipv6_neighbour_discovery_works_and_nothing_opens(router: Router) -> None:
    """An uplink's link-local IPv6: ND and echo pass (RFC 4890), TCP and UDP do not."""
    lab = router.lab
    router.start("ipv6")
    router.listeners()
    isp = lab.isp(BACKUP)
    ll = _router_link_local(lab, isp.router_if)
    dst = f"{ll}%{isp.cust_if}"
    netns.nsrun(isp.ns, "ip", "-6", "neigh", "flush", "dev", isp.cust_if)
    out = netns.nsrun(isp.ns, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", dst, check=False)
    assert " 0% packet loss" in out.stdout, out.stdout + out.stderr  # ND resolved, echo answered
    seen = states(scan(lab, BACKUP, dst, tcp=ROUTER_TCP, udp=ROUTER_UDP))
    assert set(seen.values()) == {"filtered"}, seen
    # A LAN is not judged: the same listeners answer over IPv6 from the office LAN.
    c = lab.client(OFFICE_LAN)
    lan_dst = f"{_router_link_local(lab, c.router_if)}%{c.ifname}"
    seen = states(scan(lab, OFFICE_LAN, lan_dst, tcp=ROUTER_TCP, udp=ROUTER_UDP))
    assert set(seen.values()) == {"open"}, seen


def test_allow_opens_exactly_what_it_says(router: Router) -> None:
    lab = router.lab
    isp = lab.isp(BACKUP)
    other = "192.168.18.50"  # a second host on the backup's segment
    netns.batch(isp.ns, [f"addr add {other}/24 dev {isp.cust_if}"])
    try:
        office = router.start(
            "allow",
            firewall={
                "allow": [
                    {
                        "name": "ssh",
                        "proto": "tcp",
                        "port": 2222,
                        "from": [other],
                        "wans": [BACKUP],
                    },
                    {"name": "dns-test", "proto": "udp", "port": "5353-5354", "wans": [BACKUP]},
                ]
            },
        )
        router.listeners()
        backup, primary = str(wan_address(lab, BACKUP)), str(wan_address(lab, PRIMARY))
        # from the ISP's own address: not in `from`
        seen = states(scan(lab, BACKUP, backup, tcp=ROUTER_TCP, udp=ROUTER_UDP))
        assert seen == {
            "2222/tcp": "filtered",
            "2223/tcp": "filtered",
            "5353/udp": "open",
            "5354/udp": "open",
        }
        # from the allowed host: 2222 opens, 2223 stays shut
        seen = states(scan_from(lab, BACKUP, other, backup, tcp=ROUTER_TCP))
        assert seen == {"2222/tcp": "open", "2223/tcp": "filtered"}
        # the other uplink opens nothing
        seen = states(scan(lab, PRIMARY, primary, tcp=ROUTER_TCP, udp=ROUTER_UDP))
        assert set(seen.values()) == {"filtered"}, seen
        counted(office, lambda fw: fw.dropped[BACKUP].input > 0, "drops counted on the backup")
    finally:
        netns.batch(isp.ns, [f"addr del {other}/24 dev {isp.cust_if}"])


def scan_from(lab: Lab, who: str, source: str, dst: str, **ports: Any) -> dict[Port, str]:
    """A scan whose packets leave ``who`` from ``source`` (a policy route in its namespace)."""
    ns = lab.ns_for(who)
    netns.batch(ns, [f"route add {dst}/32 dev {lab.isp(who).cust_if} src {source}"])
    try:
        return scan(lab, who, dst, **ports)
    finally:
        netns.batch(ns, [f"route del {dst}/32"])


@contextlib.contextmanager
def isp_port_forward(lab: Lab, wan: str, port: int) -> Iterator[str]:
    """The ISP forwards ``port`` of its public address to the router's uplink address."""
    isp = lab.isp(wan)
    netns.nft(
        isp.ns,
        "table ip ww_fwtest {\n"
        "  chain prerouting {\n"
        "    type nat hook prerouting priority dstnat; policy accept;\n"
        f'    iifname "{isp.uplink_if}" tcp dport {port} dnat to {wan_address(lab, wan)}\n'
        "  }\n"
        "}\n",
    )
    try:
        yield str(isp.public.ip)
    finally:
        netns.nft(isp.ns, "delete table ip ww_fwtest\n")


def test_forward_on_the_backup_answers_through_it_across_failover_and_failback(
    router: Router,
) -> None:
    lab = router.lab
    target = str(host(lab, OFFICE_LAN))
    office = router.start(
        "forward",
        forwards=[
            {
                "name": "web",
                "proto": "tcp",
                "port": PUBLIC_PORT,
                "to": target,
                "to_port": LAN_TCP[0],
                "wans": [BACKUP],
            }
        ],
    )
    router.listeners()
    bcp38 = lab.bcp38_drops(PRIMARY)

    def reach(public: str) -> str:
        return states(scan(lab, "inet", public, tcp=(PUBLIC_PORT,), timeout=2.0))[
            f"{PUBLIC_PORT}/tcp"
        ]

    with isp_port_forward(lab, BACKUP, PUBLIC_PORT) as public:
        assert reach(public) == "open"  # the primary carries the office's traffic
        faults.blackhole(lab, PRIMARY)
        office.wait_active(BACKUP, DEADLINE)
        assert reach(public) == "open"  # failed over
        faults.clear(lab, PRIMARY)
        office.wait_active(PRIMARY, 60)
        assert reach(public) == "open"  # failed back
        # the forward is on the backup only: the primary's address does not forward
        with isp_port_forward(lab, PRIMARY, PUBLIC_PORT) as primary_public:
            assert reach(primary_public) == "filtered"
    assert lab.bcp38_drops(PRIMARY) == bcp38  # no reply ever tried the primary
    peers = [r for p in router.procs for r in p.records() if r.get("ev") == "tcp"]
    assert len([r for r in peers if r["port"] == LAN_TCP[0]]) >= 3
    counted(office, lambda fw: fw.forwards["web"] >= 3, "the forward's connections counted")

    # Hairpin: LAN clients use the backup's own address, from the server's LAN and another.
    backup = str(wan_address(lab, BACKUP))
    for lan in (OFFICE_LAN, GUEST_LAN):
        seen = states(scan(lab, lan, backup, tcp=(PUBLIC_PORT,)))
        assert seen == {f"{PUBLIC_PORT}/tcp": "open"}, (lan, seen)


def test_an_isolated_lan_reaches_the_internet_dhcp_and_dns_only(router: Router) -> None:
    lab = router.lab
    router.start("guest", isolate=[GUEST_LAN])
    router.listeners()
    router.listen(PRIMARY, (8081,), ())  # the LTE modem's own web page, on its segment
    guest_gw = gateway(lab, GUEST_LAN)
    # the internet, DNS on the router, and ping of the router
    assert all(a.ok for a in connections(lab, GUEST_LAN, 3))
    assert dns_lookup(lab, GUEST_LAN, "www.lab.test", IPv4Address(guest_gw)).ok
    assert ping(lab, GUEST_LAN, guest_gw, count=3, interval=0.1).received == 3
    # not the router's other services, on any of its addresses
    for dst in (guest_gw, gateway(lab, OFFICE_LAN), str(wan_address(lab, PRIMARY))):
        seen = states(scan(lab, GUEST_LAN, dst, tcp=ROUTER_TCP, udp=ROUTER_UDP))
        assert set(seen.values()) == {"filtered"}, (dst, seen)
    # not the office LAN, nor the modem's segment; and the office cannot get in either
    seen = states(scan(lab, GUEST_LAN, str(host(lab, OFFICE_LAN)), tcp=LAN_TCP, udp=LAN_UDP))
    assert set(seen.values()) == {"filtered"}, seen
    modem = str(lab.isp(PRIMARY).gateway.ip)
    assert states(scan(lab, GUEST_LAN, modem, tcp=(8081,))) == {"8081/tcp": "filtered"}
    assert states(scan(lab, OFFICE_LAN, modem, tcp=(8081,))) == {"8081/tcp": "open"}
    seen = states(scan(lab, OFFICE_LAN, str(host(lab, GUEST_LAN)), tcp=LAN_TCP, udp=LAN_UDP))
    assert set(seen.values()) == {"filtered"}, seen
    # DHCP last: the lease replaces the client's static address
    try:
        lease = lab.dhcp_lease(GUEST_LAN)
        assert lease.address in (lab.client(GUEST_LAN).network or ())
    finally:
        lab.client_static(GUEST_LAN)


def test_disabled_leaves_the_uplink_side_open(router: Router) -> None:
    """firewall.enabled: false filters nothing, as before the firewall existed."""
    lab = router.lab
    office = router.start("off", firewall={"enabled": False})
    router.listeners()
    seen = states(scan(lab, PRIMARY, str(wan_address(lab, PRIMARY)), tcp=ROUTER_TCP))
    assert set(seen.values()) == {"open"}, seen
    seen = states(scan(lab, PRIMARY, str(host(lab, OFFICE_LAN)), tcp=LAN_TCP, udp=LAN_UDP))
    assert set(seen.values()) == {"open"}, seen
    chains = [i["chain"]["name"] for i in netns.nft_json(lab.router_ns, "chains") if "chain" in i]
    assert "forward" in chains and "input" not in chains
    fw = counted(office, lambda fw: True, "the firewall's status")
    assert not fw.enabled and fw.dropped == {} and fw.guests == {}, fw
