"""The dual-stack office (examples/office-dual-stack.yaml) with wanwatch as its router:
a LAN client gets IPv6 by SLAAC from the router's RAs, and cuts of the primary move new
IPv6 connections like IPv4 - or IPv6 alone when only the primary's IPv6 dies.

The primary is ``address6: auto`` (its ISP advertises, lab/uplinks.py), the backup
static with a routed prefix6, so both kinds of uplink IPv6 carry the client's flows.
A server tells the uplink by the /48 a connection's source lies in (lab/plan.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wanwatch.config import load
from wanwatch.lab import faults, netns
from wanwatch.lab.office import Office
from wanwatch.lab.poll import until
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import ConnectLoop, connections

pytestmark = pytest.mark.lab

DUAL = Path(__file__).resolve().parents[2] / "examples" / "office-dual-stack.yaml"
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"
CLIENT = "ether3"
START = 30.0  # the daemon up and each family carried by the primary (an RA every 10 s)
FAILOVER_DEADLINE = 10.0  # a failover takes about 1 s; this only bounds a broken one
SLAAC_DEADLINE = 20.0  # the router's first RAs, then the client's DAD (~1 s)


def _both_up(st: dict[str, Any]) -> bool:
    """Every uplink judged up in both families (its IPv6 probes answered too)."""
    return all(w["families"] == {"4": "up", "6": "up"} for w in st["wans"])


def _active(st: dict[str, Any], four: str, six: str) -> bool:
    return st["active"][:1] == [four] and st["active6"][:1] == [six] and bool(st.get("applied"))


@pytest.fixture
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    """A fresh dual-stack office per test, on the primary with both families of both
    uplinks up. Fresh, not shared: after a carrier cut the primary's IPv6 was once seen
    lost again right after its failback, and the flap damping that follows doubles the
    hold, so a shared office would carry one test's history into the next."""
    lab = Lab(load(DUAL), tag=netns.run_tag(), state_root=tmp_path_factory.mktemp("ipv6-failover"))
    lab.up()
    try:
        lab.client_static(CLIENT)
        office = Office(lab)
        office.start(wait_active=PRIMARY, timeout=START)
        office.wait_for(
            lambda st: _active(st, PRIMARY, PRIMARY) and _both_up(st),
            START,
            "both families of both uplinks up, on the primary",
        )
        try:
            yield office
        finally:
            office.stop()
    finally:
        lab.down()


def _client6(lab: Lab) -> list[Any]:
    net = lab.client(CLIENT).gateway6
    assert net is not None
    return [a for a in lab.client_addresses6(CLIENT) if a.network == net.network]


def test_lan_client_gets_its_ipv6_address_by_slaac_from_the_routers_ra(office: Office) -> None:
    lab = office.lab
    found = until(lambda: _client6(lab), SLAAC_DEADLINE, "a SLAAC address on the client")
    assert len(found) >= 1
    routes = netns.nsrun(lab.client(CLIENT).ns, "ip", "-6", "route", "show", "default").stdout
    assert "proto ra" in routes and "fe80::" in routes  # the router, by its RA
    # IPv6 from it reaches the fake internet through the primary, masqueraded to the
    # primary's SLAAC address (its ISP's /48).
    got = connections(lab, CLIENT, 3, dst=lab.topology.whoami6[0])
    assert [a.isp for a in got] == [PRIMARY] * 3, got


def _moves(office: Office, cut: Any, *, v4_to: str, v6_to: str) -> None:
    """New connections of each family, started after ``cut``, arrive through the wanted
    uplink; polled (a loop per family keeps running across the cut)."""
    lab = office.lab
    until(lambda: _client6(lab), SLAAC_DEADLINE, "a SLAAC address on the client")
    loops = {
        4: ConnectLoop(lab, CLIENT, dst=lab.topology.whoami[0]),
        6: ConnectLoop(lab, CLIENT, dst=lab.topology.whoami6[0]),
    }
    with loops[4], loops[6]:
        event = cut()
        deadline = time.monotonic() + FAILOVER_DEADLINE
        for family, via in ((4, v4_to), (6, v6_to)):
            hit = loops[family].first_success(after=event.t_start, via=via, deadline=deadline)
            assert hit is not None, (family, via, loops[family].attempts[-5:])


def test_blackhole_of_the_primary_moves_both_families(office: Office) -> None:
    lab = office.lab
    _moves(office, lambda: faults.blackhole(lab, PRIMARY), v4_to=BACKUP, v6_to=BACKUP)
    office.wait_for(lambda st: _active(st, BACKUP, BACKUP), FAILOVER_DEADLINE, "both on the backup")


def test_carrier_cut_of_the_primary_moves_both_families(office: Office) -> None:
    lab = office.lab
    _moves(office, lambda: faults.carrier_loss(lab, PRIMARY), v4_to=BACKUP, v6_to=BACKUP)


def test_ipv6_only_failure_of_the_primary_moves_ipv6_only(office: Office) -> None:
    lab = office.lab
    since = time.monotonic()
    _moves(office, lambda: faults.blackhole(lab, PRIMARY, family=6), v4_to=PRIMARY, v6_to=BACKUP)
    st = office.wait_for(
        lambda st: _active(st, PRIMARY, BACKUP), FAILOVER_DEADLINE, "IPv6 alone on the backup"
    )
    primary = next(w for w in st["wans"] if w["name"] == PRIMARY)
    assert primary["families"] == {"4": "up", "6": "down"}, primary
    office.wait_event(
        "wan.degraded",
        since=since,
        where=lambda e: e.get("wan") == PRIMARY and str(e.get("family")) == "6",
    )
    # IPv4 never left the primary: every new IPv4 connection still goes through it.
    got = connections(lab, CLIENT, 5, dst=lab.topology.whoami[0])
    assert [a.isp for a in got] == [PRIMARY] * 5, got
