"""Policy rules over IPv6 end to end (docs/rules.md): the dual-stack office
(examples/office-dual-stack.yaml) with the real daemon, real nft and real dnsmasq.

Each test builds a fresh dual-stack office (tests/lab/test_ipv6_failover.py says why
fresh) and runs the daemon on it with rules of its own. The LAN client gets its IPv6
by SLAAC from the router's RAs; a server names the uplink by the /48 a connection's
source lies in (lab/plan.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest
from test_rules import lans_asking_the_router

from wanwatch.config import load
from wanwatch.config.ipv6 import lan_address6
from wanwatch.lab import faults, netns
from wanwatch.lab.office import Office, Tailored
from wanwatch.lab.poll import until
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import connections, dns_lookup
from wanwatch.lab.worker.servers import WHOAMI_PORT

pytestmark = pytest.mark.lab

DUAL = Path(__file__).resolve().parents[2] / "examples" / "office-dual-stack.yaml"
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"
CLIENT = "ether3"
START = 30.0  # the daemon up and each family carried by the primary (an RA every 10 s)
DEADLINE = 30.0
SLAAC_DEADLINE = 20.0  # the router's first RAs, then the client's DAD (~1 s)
ICMP_REFILL = 2.5  # s: > two tokens of the kernel's 1 s ICMPv6 error rate limit
# s: past the SYN's first retransmission, which leaves after TCP's initial RTO of 1 s
# (RFC 6298 2.1); the test below says why a refused IPv6 client hears it only then.
REFUSED_BY = 2.5


@pytest.fixture
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tailored]:
    lab = Lab(load(DUAL), tag=netns.run_tag(), state_root=tmp_path_factory.mktemp("rules6"))
    lab.up()
    try:
        lab.client_static(CLIENT)
        r = Tailored(lab, PRIMARY, START)
        try:
            yield r
        finally:
            code = r.close()
            assert code in (0, None), r.office.log()[-3000:] if r.office else ""
    finally:
        lab.down()


def _ready(office: Office) -> None:
    """Both families of both uplinks up, on the primary, and the client's SLAAC address."""
    office.wait_for(
        lambda st: (
            all(w["families"] == {"4": "up", "6": "up"} for w in st["wans"])
            and st["active"][:1] == [PRIMARY]
            and st["active6"][:1] == [PRIMARY]
            and bool(st.get("applied"))
        ),
        START,
        "both families of both uplinks up, on the primary",
    )
    lab = office.lab
    net = lab.client(CLIENT).gateway6
    assert net is not None
    until(
        lambda: [a for a in lab.client_addresses6(CLIENT) if a.network == net.network],
        SLAAC_DEADLINE,
        "a SLAAC address on the client",
    )


def carriers(lab: Lab, count: int = 12, **kw: Any) -> dict[str | None, int]:
    """Which uplink carried each of ``count`` new connections (None: failed), by count."""
    out: dict[str | None, int] = {}
    for a in connections(lab, CLIENT, count, timeout=1.0, **kw):
        key = a.isp if a.ok else None
        out[key] = out.get(key, 0) + 1
    return out


def _unreachs(ns: str, way: str) -> int:
    """ICMPv6 destination unreachables sent (``Out``) or received (``In``) in ``ns``."""
    snmp6 = netns.nsrun(ns, "cat", "/proc/net/snmp6").stdout
    counts = dict(line.split() for line in snmp6.splitlines() if line.strip())
    return int(counts[f"Icmp6{way}DestUnreachs"])


def _ula(lab: Lab) -> str:
    (lan,) = [lan for lan in load(DUAL).lans if lan.name == CLIENT]
    a = lan_address6(lan)
    assert a is not None
    return str(a.network)


def test_an_ipv6_rule_pins_the_lans_ipv6_to_the_backup_and_blocks_it_when_it_dies(
    router: Tailored,
) -> None:
    lab = router.lab
    v4, v6 = lab.topology.whoami[0], lab.topology.whoami6[0]
    rule = {"name": "six", "from": [_ula(lab)], "via": [BACKUP], "when_down": "block"}
    office = router.start("six", rules=[rule])
    _ready(office)
    assert carriers(lab, dst=v6) == {BACKUP: 12}
    assert carriers(lab, dst=v4) == {PRIMARY: 12}  # the LAN's IPv4: no rule, the policy

    cut = faults.blackhole(lab, BACKUP, family=6)  # the backup's IPv6 dies, its IPv4 lives
    moved = office.wait_event(
        "rule.path",
        since=cut.t_start,
        timeout=DEADLINE,
        where=lambda e: e["rule"] == "six" and e.get("family") == 6,
    )
    assert (moved["from"], moved["to"]) == (BACKUP, "block")
    office.wait_event("nft.rules", since=moved["at"], timeout=DEADLINE)
    # Fail closed: none answered through the primary, and the router answered each
    # with an ICMPv6 destination unreachable (administratively prohibited, code 1:
    # RFC 4443 3.1) that reached the client as EACCES. The kernel rate-limits ICMPv6
    # errors per destination like IPv4's (net.ipv6.icmp.ratelimit), so a pause first.
    # The error for the first SYN lands while the client's own connect() still holds
    # the socket (over a veth pair the router answers inside the client's transmit):
    # tcp_v6_err (net/ipv6/tcp_ipv6.c) then keeps it as a soft error only
    # (TcpExtLockDroppedIcmps), so the client is refused by the error for its
    # retransmitted SYN, after the initial RTO: hence REFUSED_BY (docs/rules.md).
    assert carriers(lab, dst=v6) == {None: 12}
    time.sleep(ICMP_REFILL)
    sent, heard = _unreachs(lab.router_ns, "Out"), _unreachs(lab.client(CLIENT).ns, "In")
    refused = connections(lab, CLIENT, 3, dst=v6, timeout=REFUSED_BY)
    assert {a.error for a in refused} == {"EACCES"}, refused
    assert _unreachs(lab.router_ns, "Out") > sent
    assert _unreachs(lab.client(CLIENT).ns, "In") > heard
    assert carriers(lab, dst=v4) == {PRIMARY: 12}  # IPv4 untouched
    # status names the IPv6 path, and why, in the backup's IPv6 state: the rule's
    # `from` is the LAN's ULA, so IPv6 is the one family it has
    six = _rule(office, "six")
    assert (six["families"], six["path"], six["uplinks"], six["path6"]) == ([6], "block", [], None)
    assert six["why"] == f"none of via usable ({BACKUP} down): when_down block, refused"

    whole = faults.blackhole(lab, BACKUP)  # then the whole backup: the rule has no IPv4 path
    office.wait_event(
        "wan.down",
        since=whole.t_start,
        timeout=DEADLINE,
        where=lambda e: e["wan"] == BACKUP,
    )
    later = office.events(whole.t_start, ("rule.path",))
    assert not [e for e in later if e["rule"] == "six"], later
    assert _rule(office, "six")["path"] == "block"


def _rule(office: Office, name: str) -> dict[str, Any]:
    st = office.status()
    assert st["rules"]["families"] == [4, 6]
    (rule,) = [r for r in st["rules"]["rules"] if r["name"] == name]
    return dict(rule)


def _dom6(lab: Lab) -> str:
    return netns.nsrun(lab.router_ns, "nft", "list", "set", "inet", "wanwatch", "dom6_1").stdout


def test_a_domain_rule_takes_the_first_ipv6_connection_after_the_aaaa_answer(
    router: Tailored,
) -> None:
    lab = router.lab
    name = "server.lab.test"  # the lab's DNS records, A and AAAA (lab/plan.py)
    address = dict(lab.topology.dns_records6)[name]
    rule = {
        "name": "partner",
        "from": [CLIENT],
        "domains": [name],
        "via": [BACKUP],
        "when_down": "block",
    }
    office = router.start("domains6", rules=[rule], lans=lans_asking_the_router(lab))
    _ready(office)
    resolver = lab.client(CLIENT).gateway  # the router's dnsmasq on the LAN
    # Before anyone asked, the address is no rule's: it follows the policy.
    assert str(address) not in _dom6(lab)
    assert carriers(lab, count=3, dst=address) == {PRIMARY: 3}

    got = dns_lookup(lab, CLIENT, name, resolver, connect=WHOAMI_PORT, qtype="AAAA")
    assert got.ok and got.rcode == 0 and got.addresses == (str(address),), got
    assert got.connect_error is None and got.isp == BACKUP, got
    assert isinstance(address, IPv6Address) and str(address) in _dom6(lab)
    assert carriers(lab, count=3, dst=address) == {BACKUP: 3}
