"""DHCPv6 prefix delegation for real: the dual-stack office whose primary asks its ISP
for a prefix (``dhcp6``) through the daemon's supervised dhcpcd, served by ISC
``dhcpd -6`` in the ISP's namespace (lab/topology.py). A LAN client's IPv6 leaves
translated into the delegated prefix, and a renumbered delegation is adopted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from wanwatch.config import loads
from wanwatch.lab import netns
from wanwatch.lab.office import Office
from wanwatch.lab.poll import until
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import connections
from wanwatch.linux.dhcp6_client import RUN_DIR

pytestmark = pytest.mark.lab

DUAL = Path(__file__).resolve().parents[2] / "examples" / "office-dual-stack.yaml"
PRIMARY = "INET-UTAMA"
CLIENT = "ether3"  # the first IPv6 LAN: the first /64 of the prefix
START = 30.0  # the daemon up and each family carried by the primary (an RA every 10 s)
BOUND = 20.0  # dhcpcd's solicit (up to 1 s delay, RFC 8415 18.2.1) and the reply
# The renumbered server is new to the client: its renewal (T1 4 s) goes unanswered,
# its rebind (T2 8 s) is answered from the new pool (lab/services.py); then traffic.
RENUMBERED = 40.0
SLAAC = 20.0  # the router's first RAs, then the client's DAD (~1 s)

AUTO_LINE = "    address6: auto         # SLAAC address and default router from the carrier's RAs\n"


def _office_with_pd() -> str:
    text = DUAL.read_text()
    assert text.count(AUTO_LINE) == 1
    return text.replace(AUTO_LINE, AUTO_LINE + "    dhcp6: {prefix_length: 60}\n")


def _primary(st: dict[str, Any]) -> dict[str, Any]:
    return next(w for w in st["wans"] if w["name"] == PRIMARY)


def _delegated(office: Office, prefix: IPv6Network, timeout: float) -> dict[str, Any]:
    def check(st: dict[str, Any]) -> bool:
        d = _primary(st).get("delegation")
        return d is not None and d["prefix"] == str(prefix) and bool(st.get("applied"))

    return office.wait_for(check, timeout, f"{PRIMARY} delegated {prefix}")


@pytest.fixture
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    lab = Lab(
        loads(_office_with_pd(), str(DUAL)),
        tag=netns.run_tag(),
        state_root=tmp_path_factory.mktemp("ipv6-pd"),
    )
    lab.up()
    try:
        lab.client_static(CLIENT)
        office = Office(lab)
        office.start(wait_active=PRIMARY, timeout=START)
        try:
            yield office
        finally:
            office.stop()
    finally:
        lab.down()


def _leaves_from(office: Office, net: IPv6Network, timeout: float) -> list[Any]:
    """New IPv6 connections of the client, polled until they reach the server from ``net``."""
    lab = office.lab

    def check() -> list[Any]:
        got = connections(lab, CLIENT, 3, dst=lab.topology.whoami6[0])
        ok = [a for a in got if a.ok and a.peer and IPv6Address(a.peer) in net]
        return got if len(ok) == len(got) else []

    return until(check, timeout, f"the client's IPv6 connections leaving from {net}")


def _client6(lab: Lab) -> list[Any]:
    net = lab.client(CLIENT).gateway6
    assert net is not None
    return [a for a in lab.client_addresses6(CLIENT) if a.network == net.network]


def _router_json(lab: Lab, *args: str) -> list[dict[str, Any]]:
    out = netns.nsrun(lab.topology.router_ns, "ip", "-j", "-6", *args).stdout
    return list(json.loads(out or "[]"))


def test_delegated_prefix_is_the_lans_translation_and_a_renumbering_is_adopted(
    office: Office,
) -> None:
    lab = office.lab
    first = lab.pd_pool(PRIMARY, 0)
    st = _delegated(office, first, BOUND)
    client = _primary(st)["dhcp6_client"]
    assert client["running"] and client["pid"] > 0
    # where the supervisor looks for a copy a killed daemon left behind (dhcp6_client.py)
    pid_file = RUN_DIR / f"{lab.isp(PRIMARY).router_if}-6.pid"
    assert pid_file.read_text().split() == [str(client["pid"])]
    until(lambda: _client6(lab), SLAAC, "a SLAAC address on the client")
    # The LAN's /64 is translated into the first /64 of the delegation (RFC 6296):
    # the server sees the client from there, not from the uplink's own address.
    _leaves_from(office, next(first.subnets(new_prefix=64)), START)

    # dhcpcd configured nothing (--noconfigure): no route of the prefix (not even the
    # reject route dhcpcd.conf(5) describes for ia_pd), no address from it; and the
    # kernel still takes the uplink's RAs (noipv6rs).
    routes = _router_json(lab, "route", "show", "table", "all")
    assert not [
        r for r in routes if r["dst"] != "default" and IPv6Network(r["dst"]).overlaps(first)
    ]
    addrs = [a for link in _router_json(lab, "addr", "show") for a in link["addr_info"]]
    assert not [a for a in addrs if "local" in a and IPv6Address(a["local"]) in first]
    accept_ra = netns.nsrun(
        lab.topology.router_ns,
        "sysctl",
        "-n",
        f"net.ipv6.conf.{lab.isp(PRIMARY).router_if}.accept_ra",
    ).stdout.strip()
    assert accept_ra == "2"

    since = time.monotonic()
    second = lab.renumber_pd(PRIMARY)
    assert second != first
    _delegated(office, second, RENUMBERED)
    _leaves_from(office, next(second.subnets(new_prefix=64)), RENUMBERED)
    ev = office.wait_event("dhcp6_client.renumbered", since=since, timeout=1.0)
    assert (ev["old"], ev["new"]) == (str(first), str(second)), ev
