"""Uplinks that are not static, end to end: the real daemon, real udhcpc, real dnsmasq at
the ISP, real namespaces (examples/office-dynamic.yaml; lab side: wanwatch.lab.uplinks).

LTE-DHCP (primary) gets its address by DHCP from its ISP; PPP-BACKUP is a
point-to-point veth with peer addresses and no gateway. Each test builds its own
lab (the conftest fixture takes it down by name) and stops its daemon, then checks
the router namespace holds none of our footprint. Timings are figures for the
bench (bench/dynamic.py); here only generous deadlines bound a broken run.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest

from wanwatch.config import load
from wanwatch.daemon.control import request
from wanwatch.footprint import RT_PROTO
from wanwatch.lab import faults, netns, plan, uplinks
from wanwatch.lab.office import Office
from wanwatch.lab.poll import holds, until
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import Flow, add_client_addresses, first_new_connection

pytestmark = pytest.mark.lab

DYNAMIC = Path(__file__).resolve().parents[2] / "examples" / "office-dynamic.yaml"
DHCP, PPP = "LTE-DHCP", "PPP-BACKUP"
CLIENT = "ether3"
DEADLINE = 20.0  # bounds a broken run only; the figures are in bench/dynamic.py


@pytest.fixture
def dyn_lab(make_lab: Callable[..., Lab]) -> Lab:
    lab = make_lab(load(DYNAMIC))
    lab.client_static(CLIENT)
    return lab


@pytest.fixture
def router(dyn_lab: Lab) -> Iterator[Office]:
    """The daemon on the lab's config (not started); stopped after the test, footprint gone."""
    o = Office(dyn_lab)
    try:
        yield o
    finally:
        code = o.stop() if o.daemon is not None else 0
        assert footprint(dyn_lab) == {}, o.log()[-3000:]
        assert code == 0, o.log()[-3000:]


def ip_json(ns: str, *args: str) -> list[dict[str, Any]]:
    out = netns.sh(["ip", "-j", "-n", ns, *args]).stdout.strip()
    found: list[dict[str, Any]] = json.loads(out) if out else []
    return found


def footprint(lab: Lab) -> dict[str, Any]:
    """Our routes, rules and addresses in the router namespace, and any process there."""
    ns = lab.router_ns
    proto = str(RT_PROTO)
    pids = netns.sh(["ip", "netns", "pids", ns], check=False).stdout.split()
    found = {
        "routes": [
            r for r in ip_json(ns, "route", "show", "table", "all") if r.get("protocol") == proto
        ],
        "rules": [r for r in ip_json(ns, "rule") if r.get("protocol") == proto],
        "leased": lease_addresses(lab),
        "pids": [p for p in pids if netns.alive(int(p), None)],
    }
    return {k: v for k, v in found.items() if v}


def lease_addresses(lab: Lab) -> list[str]:
    """Addresses on the DHCP uplink's interface (only a lease puts one there)."""
    ifname = lab.isp(DHCP).router_if
    shown = ip_json(lab.router_ns, "-4", "addr", "show")
    return [
        f"{a['local']}/{a['prefixlen']}"
        for link in shown
        if link.get("ifname") == ifname
        for a in link.get("addr_info", [])
    ]


def wans(o: Office) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in o.status()["wans"]}


def wait(pred: Callable[[], bool], what: str) -> None:
    until(pred, DEADLINE, what)


def table_routes(lab: Lab, wan_index: int) -> list[dict[str, Any]]:
    return ip_json(lab.router_ns, "route", "show", "table", str(28701 + wan_index))


def nat_addresses(lab: Lab) -> set[IPv4Address]:
    """The router addresses the LAN's connections to whoami are NATed to (conntrack)."""
    out = netns.nsrun(lab.router_ns, "conntrack", "-L", "-p", "tcp", "--dport", "8080")
    found = set()
    for line in out.stdout.splitlines():
        dst = re.findall(r"dst=(\S+)", line)
        if len(dst) == 2:
            found.add(IPv4Address(dst[1]))
    return found


def in_pool(address: str, pool: int) -> bool:
    lo, hi = uplinks.POOLS[pool]
    host = int(IPv4Interface(address).ip) & 0xFF
    return lo <= host <= hi


# --------------------------------------------------------------------------- DHCP


def test_dhcp_uplink_is_leased_applied_carries_traffic_and_leaves_no_trace(
    dyn_lab: Lab, router: Office
) -> None:
    router.start(wait_active=DHCP, timeout=DEADLINE)
    w = wans(router)[DHCP]
    lease = w["lease"]
    assert w["kind"] == "dhcp" and w["link"] == "up" and w["present"]
    assert in_pool(lease["address"], 0) and lease["router"] == "10.100.0.1"
    assert lease["lease_s"] == uplinks.LEASE_TIME and lease["server"] == "10.100.0.1"
    assert lease["dns"] == [str(dyn_lab.topology.dns_servers[0])]
    assert w["address"] == lease["address"] and w["gateway"] == "10.100.0.1"
    assert w["dhcp_client"]["running"] and w["dhcp_client"]["pid"] > 0
    # Applied by the daemon, not by the client script: the address, the table, the rule.
    assert lease_addresses(dyn_lab) == [lease["address"]]
    assert {"dst": "default", "gateway": "10.100.0.1"}.items() <= table_routes(dyn_lab, 0)[
        0
    ].items()
    # The main table and resolv.conf are the daemon's business only.
    defaults = ip_json(dyn_lab.router_ns, "route", "show", "default")
    assert all(r.get("protocol") == str(RT_PROTO) for r in defaults), defaults
    hit = first_new_connection(
        dyn_lab, CLIENT, after=time.monotonic(), deadline=time.monotonic() + 10, via=DHCP
    )
    assert hit is not None
    assert IPv4Interface(lease["address"]).ip in nat_addresses(dyn_lab)
    # Stop: the lease is released and its address removed (the fixture checks the rest).
    pid = w["dhcp_client"]["pid"]
    assert router.stop() == 0
    assert lease_addresses(dyn_lab) == []
    assert not netns.alive(pid, None)


def test_renumbered_lease_is_applied_live_and_flows_on_the_other_uplink_survive(
    dyn_lab: Lab, router: Office
) -> None:
    cfg = dyn_lab.config_path
    # One tier (same priority): both uplinks carry new connections.
    text = cfg.read_text().replace("mode: failover", "mode: loadbalance")
    text = text.replace("priority: 2", "priority: 1")
    cfg.write_text(text)
    router.start(timeout=DEADLINE)
    router.wait_for(
        lambda st: sorted(st["active"]) == [DHCP, PPP] and st["applied"], DEADLINE, "both carrying"
    )
    old = wans(router)[DHCP]
    sources = add_client_addresses(dyn_lab, CLIENT, 8)
    flows = [Flow(dyn_lab, CLIENT, source=s, interval=0.05).start() for s in sources]
    try:
        reports = [f.wait_connected(time.monotonic() + 10) for f in flows]
        on_ppp = [f for f, r in zip(flows, reports, strict=True) if r.isp == PPP]
        assert on_ppp, "no flow hashed onto the point-to-point uplink; add sources"
        renewed = uplinks.renumber(dyn_lab, DHCP, old["dhcp_client"]["pid"])
        wait(lambda: in_pool(wans(router)[DHCP]["address"] or "0.0.0.0/0", 1), "a new lease")
        new = wans(router)[DHCP]
        assert new["lease"]["address"] == new["address"] != old["address"]
        assert lease_addresses(dyn_lab) == [new["address"]]  # the old one is gone
        router.wait_for(lambda st: DHCP in st["active"] and st["applied"], DEADLINE, "DHCP back")
        hit = first_new_connection(
            dyn_lab, CLIENT, after=time.monotonic(), deadline=time.monotonic() + 10, via=DHCP
        )
        assert hit is not None
        nat = nat_addresses(dyn_lab)
        assert IPv4Interface(new["address"]).ip in nat
        assert IPv4Interface(old["address"]).ip not in nat  # its flows were deleted
        names = [e["name"] for e in router.events(since=renewed)]
        assert "dhcp_client.lost" in names and "wan.renumbered" in names, names
        for f in on_ppp:
            rep = f.report()
            assert rep.broken_at is None, f"a flow on {PPP} was dropped: {rep}"
    finally:
        for f in flows:
            f.stop()


def test_an_isp_that_does_not_answer_keeps_the_uplink_down_until_it_does(
    dyn_lab: Lab, router: Office
) -> None:
    uplinks.stop_dhcp(dyn_lab, DHCP)
    router.start(wait_active=PPP, timeout=DEADLINE)
    # udhcpc gives up a round of discovers (-t 3 -T 1) that nobody answered.
    router.wait_event("dhcp_client.leasefail", since=0, timeout=DEADLINE)
    w = wans(router)[DHCP]
    assert w["state"] == "down" and w["link"] == "up" and w["lease"] is None
    assert router.status()["active"] == [PPP]
    uplinks.start_dhcp(dyn_lab, DHCP)
    wait(lambda: wans(router)[DHCP]["lease"] is not None, "a lease once the ISP answers")
    router.wait_state(DHCP, "up", DEADLINE)


def test_blackhole_on_a_dhcp_uplink_fails_over(dyn_lab: Lab, router: Office) -> None:
    router.start(wait_active=DHCP, timeout=DEADLINE)
    cut = faults.blackhole(dyn_lab, DHCP)
    try:
        router.wait_active(PPP, DEADLINE)
        ev = router.wait_event("wan.down", since=cut.t_start, where=lambda e: e["wan"] == DHCP)
        assert ev["reason"] == "lost"
        assert wans(router)[DHCP]["lease"] is not None  # the lease is kept: only probes failed
    finally:
        faults.clear(dyn_lab, DHCP, "blackhole")


# --------------------------------------------------------------------------- point-to-point


def test_point_to_point_routes_via_its_peer_and_follows_a_reconnect(
    dyn_lab: Lab, router: Office
) -> None:
    router.start(wait_active=DHCP, timeout=DEADLINE)
    isp = dyn_lab.isp(PPP)
    w = wans(router)[PPP]
    peer = str(plan.ptp_pair(isp, 0)[0])
    assert w["kind"] == "point-to-point" and w["gateway"] == peer
    assert w["address"] == f"{plan.ptp_router_address(isp)}/32"
    assert {"dst": "default", "gateway": peer, "dev": "ppp0"}.items() <= table_routes(dyn_lab, 1)[
        0
    ].items()
    assert request(router.socket, "disable", wan=DHCP, timeout=2)["admin"] == "disabled"
    router.wait_active(PPP, DEADLINE)
    moved = uplinks.ptp_reconnect(dyn_lab, PPP)
    new_addr = f"{plan.ptp_router_address(isp, 1)}/32"
    new_peer = str(plan.ptp_pair(isp, 1)[0])
    wait(lambda: wans(router)[PPP]["address"] == new_addr, "the new PPP address")
    wait(lambda: wans(router)[PPP]["gateway"] == new_peer, "the new peer as gateway")
    hit = first_new_connection(
        dyn_lab, CLIENT, after=moved, deadline=time.monotonic() + 10, via=PPP
    )
    assert hit is not None
    assert plan.ptp_router_address(isp, 1) in nat_addresses(dyn_lab)
    assert request(router.socket, "enable", wan=DHCP, timeout=2)["admin"] == "enabled"


# --------------------------------------------------------------------------- come and go


def test_an_absent_uplink_starts_absent_is_adopted_dropped_and_renamed(
    dyn_lab: Lab, router: Office
) -> None:
    uplinks.unplug(dyn_lab, PPP)
    router.start(wait_active=DHCP, timeout=DEADLINE)  # serves the other uplink
    w = wans(router)[PPP]
    assert (w["state"], w["link"], w["present"]) == ("down", "absent", False)
    uplinks.replug(dyn_lab, PPP)
    wait(lambda: wans(router)[PPP]["present"] and wans(router)[PPP]["address"] is not None,
         "the replugged interface to be adopted")  # fmt: skip
    wait(lambda: len(table_routes(dyn_lab, 1)) == 3, "its table")  # peer, default, unreachable
    peer = str(plan.ptp_pair(dyn_lab.isp(PPP))[0])
    default = {"dst": "default", "gateway": peer, "dev": "ppp0"}  # via the new device's peer
    assert any(default.items() <= r.items() for r in table_routes(dyn_lab, 1))
    router.wait_state(PPP, "up", DEADLINE)
    gone = uplinks.unplug(dyn_lab, PPP)
    ev = router.wait_event("wan.down", since=gone, where=lambda e: e["wan"] == PPP)
    assert ev["reason"] == "carrier"
    wait(lambda: len(table_routes(dyn_lab, 1)) == 1, "its routes cleaned")  # unreachable only
    rules = ip_json(dyn_lab.router_ns, "rule")
    assert not any(r.get("src") == str(plan.ptp_router_address(dyn_lab.isp(PPP))) for r in rules)
    wait(lambda: wans(router)[PPP]["link"] == "absent", "absent in status")  # a 50 ms snapshot
    # A rename is an absence under the config's name, and back.
    uplinks.replug(dyn_lab, PPP, name="wwan9")
    # What is under test is that another name is never taken for it: watched 0.5 s
    # (the kernel's link event reaches the daemon within milliseconds).
    holds(lambda: wans(router)[PPP]["link"] == "absent", 0.5, "absent under another name")
    uplinks.rename(dyn_lab, PPP, "ppp0", old="wwan9")
    wait(lambda: wans(router)[PPP]["link"] == "up", "the renamed interface adopted")
    wait(lambda: len(table_routes(dyn_lab, 1)) == 3, "its table after the rename")
    uplinks.rename(dyn_lab, PPP, "wwan8")
    wait(lambda: wans(router)[PPP]["link"] == "absent", "renamed away: absent")
    wait(lambda: len(table_routes(dyn_lab, 1)) == 1, "its routes cleaned after the rename")


def test_a_replugged_dhcp_uplink_gets_a_new_lease(dyn_lab: Lab, router: Office) -> None:
    router.start(wait_active=DHCP, timeout=DEADLINE)
    old_pid = wans(router)[DHCP]["dhcp_client"]["pid"]
    uplinks.unplug(dyn_lab, DHCP)
    router.wait_active(PPP, DEADLINE)
    wait(lambda: wans(router)[DHCP]["lease"] is None, "the lease dropped with the interface")
    assert not wans(router)[DHCP]["dhcp_client"]["running"]
    uplinks.replug(dyn_lab, DHCP)
    wait(lambda: wans(router)[DHCP]["lease"] is not None, "a lease on the new interface")
    assert wans(router)[DHCP]["dhcp_client"]["pid"] != old_pid
    router.wait_state(DHCP, "up", DEADLINE)


def carrying_address(o: Office, pool: int) -> str | None:
    """The DHCP uplink's address once it carries with a lease from ``pool``, else None."""
    st = o.status()
    w = next(w for w in st["wans"] if w["name"] == DHCP)
    ok = st["active"][:1] == [DHCP] and st.get("applied") and in_pool(w["address"] or "", pool)
    return w["address"] if ok else None


def names_since(o: Office, since: float) -> list[str]:
    return [e["name"] for e in o.events(since=since)]


def kept_routes(lab: Lab) -> list[tuple[str, ...]]:
    """The DHCP uplink's table as (type, destination, gateway, source): what a flap must
    keep (the kernel only flags them ``linkdown`` while the carrier is gone)."""
    keys = ("type", "dst", "gateway", "prefsrc")
    return sorted(tuple(str(r.get(k, "")) for k in keys) for r in table_routes(lab, 0))


# The lab's lease is 120 s (lab/uplinks.py LEASE_TIME): udhcpc's own renewal, at T1
# = 60 s, is beyond DEADLINE, so only the re-verify can pass these tests. How soon
# each step comes is measured by bench/dhcp_flap.py.


def test_after_a_carrier_flap_a_renumbered_isp_is_followed_at_once(
    dyn_lab: Lab, router: Office
) -> None:
    router.start(wait_active=DHCP, timeout=DEADLINE)
    old = wans(router)[DHCP]["address"]
    assert in_pool(old, 0)
    faults.carrier_loss(dyn_lab, DHCP)
    router.wait_active(PPP, DEADLINE)
    uplinks.move_pool(dyn_lab, DHCP)  # the modem rebooted: new pool, old leases forgotten
    up = faults.clear(dyn_lab, DHCP, "carrier")
    new = until(lambda: carrying_address(router, 1), DEADLINE, "the new lease carrying")
    assert lease_addresses(dyn_lab) == [new]  # the old address is gone
    names = names_since(router, up.t_start)
    # The NAK restarts udhcpc (a new process) instead of its 3 s pause.
    order = ["dhcp_client.reverify", "dhcp_client.nak", "dhcp_client.start", "dhcp_client.bound"]
    assert [names.index(n) for n in order] == sorted(names.index(n) for n in order), names


def test_a_carrier_flap_keeps_a_lease_the_isp_still_gives(dyn_lab: Lab, router: Office) -> None:
    router.start(wait_active=DHCP, timeout=DEADLINE)
    old = wans(router)[DHCP]["address"]
    routes = kept_routes(dyn_lab)
    cut = faults.carrier_loss(dyn_lab, DHCP)
    router.wait_active(PPP, DEADLINE)
    assert lease_addresses(dyn_lab) == [old]  # carrier loss alone drops nothing
    assert kept_routes(dyn_lab) == routes
    up = faults.clear(dyn_lab, DHCP, "carrier")
    wait(lambda: "dhcp_client.renew" in names_since(router, up.t_start), "the lease confirmed")
    # Back as primary after up_after good probes and the hold of any uplink that went
    # down (failback hysteresis, engine/health.py), not after anything of DHCP's.
    until(lambda: carrying_address(router, 0) == old, DEADLINE, "the same lease carrying")
    assert lease_addresses(dyn_lab) == [old]
    assert kept_routes(dyn_lab) == routes
    names = names_since(router, cut.t_start)
    assert "dhcp_client.reverify" in names, names
    for gone in ("dhcp_client.lost", "dhcp_client.nak", "address.remove", "rule.remove"):
        assert gone not in names, names
    assert names.count("wan.down") == 1, names  # the carrier loss's own, nothing more


def test_a_flap_the_isps_dhcp_server_sleeps_through_keeps_the_lease(
    dyn_lab: Lab, router: Office
) -> None:
    router.start(wait_active=DHCP, timeout=DEADLINE)
    old = wans(router)[DHCP]["address"]
    routes = kept_routes(dyn_lab)
    cut = faults.carrier_loss(dyn_lab, DHCP)
    router.wait_active(PPP, DEADLINE)
    uplinks.stop_dhcp(dyn_lab, DHCP)  # a modem whose data path is back before its DHCP server
    up = faults.clear(dyn_lab, DHCP, "carrier")
    # busybox gives the unanswered re-verify up ("lease lost"); the lease is ours until its end.
    wait(lambda: "dhcp_client.kept" in names_since(router, up.t_start), "the lease kept")
    router.wait_state(DHCP, "up", DEADLINE)
    assert lease_addresses(dyn_lab) == [old]
    assert kept_routes(dyn_lab) == routes
    uplinks.start_dhcp(dyn_lab, DHCP)
    wait(lambda: "dhcp_client.bound" in names_since(router, up.t_start), "the lease again")
    assert wans(router)[DHCP]["address"] == old  # udhcpc's DISCOVER asked for it
    names = names_since(router, cut.t_start)
    for gone in ("dhcp_client.lost", "address.remove", "rule.remove", "wan.renumbered"):
        assert gone not in names, names
    assert names.count("wan.down") == 1, names


def test_a_killed_daemons_dhcp_client_is_stopped_by_the_next_one(
    dyn_lab: Lab, router: Office
) -> None:
    router.start(wait_active=DHCP, timeout=DEADLINE)
    orphan = wans(router)[DHCP]["dhcp_client"]["pid"]
    router.stop(signal.SIGKILL)
    assert netns.alive(orphan, None)  # udhcpc outlives a SIGKILLed parent
    router.start(wait_active=DHCP, timeout=DEADLINE)
    assert not netns.alive(orphan, None)  # found by its pid file, stopped by PID
    assert wans(router)[DHCP]["dhcp_client"]["pid"] != orphan
    names = [e["name"] for e in router.events()]
    assert "dhcp_client.stale" in names, names
