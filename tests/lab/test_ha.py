"""The router pair in real namespaces: real keepalived, conntrackd, dnsmasq and wanwatch.

Router A (priority 150) and router B (100) run examples/office-ha-a.yaml and
-b.yaml, derived for the lab. Killing A, or leaving it with no uplink, moves
the office to B: new connections go out through B, established NATed
connections carry on (conntrackd handed their state over, and the shared
uplink address keeps their NAT mapping valid), and DHCP goes on with the same
address. How fast is measured by bench/ha.py, not here.

The role is one truth: what each router's status says is what its keepalived
holds (its own data dump), and only the master's dnsmasq answers a real DHCP
client, however the two routers start. A router that (re)starts takes the
master role only once its own uplinks are proven up and its dataplane applied.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from wanwatch.config import load
from wanwatch.lab import netns
from wanwatch.lab.ha import (
    PairLab,
    dhcp_answers,
    keepalived_roles,
    run_router,
    start,
    wait_role,
)
from wanwatch.lab.office import Office
from wanwatch.lab.poll import holds, until
from wanwatch.lab.traffic import ConnectLoop, Flow, FlowReport
from wanwatch.lab.traffic.connect import Attempt, connections
from wanwatch.lab.worker.servers import WHOAMI_PORT

pytestmark = pytest.mark.lab

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LAN = "ether3"
DEADLINE = 15.0  # a bound for every wait, not a speed requirement
FLOWS = 3


STARTS = 9  # simultaneous starts of both routers
DHCP_WATCH = 2.0  # how long after the lease a second server's answer is watched for
HOLD = 3.0  # how long a state that must not change is watched


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[PairLab]:
    """The pair lab, neither router started."""
    lab = PairLab(
        load(EXAMPLES / "office-ha-a.yaml"),
        load(EXAMPLES / "office-ha-b.yaml"),
        tag=netns.run_tag(),
        state_root=tmp_path / "labs",
        remove_state=False,
    )
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
        assert not set(lab.namespaces) & netns.existing()


@pytest.fixture
def pair(lab: PairLab) -> tuple[PairLab, Office, Office]:
    a, b = start(lab, DEADLINE)
    return lab, a, b


def _role(office: Office) -> str | None:
    role: str | None = (office.status().get("ha") or {}).get("role")
    return role


def _agrees_with_keepalived(lab: PairLab, office: Office) -> str | None:
    """The role if the router's status, its keepalived and its dnsmasq all agree; else None."""
    said = _role(office)
    held = set(keepalived_roles(lab, office, DEADLINE).values())
    st = office.status()
    serving = bool((st.get("dnsmasq") or {}).get("running"))
    if held == {said} and serving == (said == "MASTER") and _role(office) == said:
        return said
    return None


def _failed(attempts: list[Attempt], since: float) -> list[Attempt]:
    return [x for x in attempts if x.t0 >= since and not x.ok]


def _flows(lab: PairLab) -> list[Flow]:
    flows = [Flow(lab, LAN, interval=0.05, max_seconds=120).start() for _ in range(FLOWS)]
    for f in flows:
        f.wait_connected(time.monotonic() + DEADLINE)
    return flows


def _carried_on(flow: Flow, since: float) -> FlowReport:
    """Wait until ``flow`` has exchanged bytes a second past ``since``, or broke; its report."""

    def settled() -> FlowReport | None:
        rep = flow.report()
        return rep if rep.broken_at is not None or (rep.last_ok or 0) > since + 1.0 else None

    rep = until(
        settled, DEADLINE, lambda: f"the flow to carry on past {since:.3f}: {flow.report()}"
    )
    assert rep is not None
    return rep


_CT_TCP = re.compile(
    r"ESTABLISHED src=(?P<src>\S+) dst=(?P<dst>\S+) sport=(?P<sport>\d+) dport=(?P<dport>\d+)"
    r" .*?src=\S+ dst=(?P<nat>\S+) sport=\d+ dport=\d+ .*?mark=(?P<mark>\d+)"
)


def _kernel_flows(lab: PairLab, side: str, port: int) -> set[tuple[str, ...]]:
    """Established TCP connections to ``port`` in router ``side``'s kernel table (conntrack -L):
    client, its port, server, the NAT address the server answers, ct mark."""
    argv = ["ip", "netns", "exec", lab.router(side), "conntrack", "-L", "-p", "tcp"]
    out = netns.sh([*argv, "--dport", str(port)]).stdout
    return {
        (m["src"], m["sport"], m["dst"], m["nat"], m["mark"])
        for m in map(_CT_TCP.search, out.splitlines())
        if m is not None
    }


def _addresses(lab: PairLab, side: str) -> set[str]:
    out = netns.sh(["ip", "-n", lab.router(side), "-j", "-4", "addr", "show"]).stdout
    return {a["local"] for link in json.loads(out) for a in link.get("addr_info", [])}


def test_master_killed_backup_carries_the_office_and_its_connections(
    pair: tuple[PairLab, Office, Office],
) -> None:
    lab, _, b = pair
    client = lab.dhcp_client(LAN)
    before = client.wait_lease(time.monotonic() + DEADLINE)
    assert str(before.router) == "192.168.19.1"  # the shared gateway, not a router's own
    flows = _flows(lab)
    assert {f.report().isp for f in flows} == {"INET-UTAMA"}
    with ConnectLoop(lab, LAN) as loop:
        killed = lab.kill_router("a")
        first = loop.first_success(after=killed, deadline=killed + DEADLINE)
    assert first is not None, "no new connection through router B"
    assert wait_role(b, "MASTER", DEADLINE)
    for f in flows:
        rep = _carried_on(f, killed)
        assert rep.broken_at is None, f"a NATed connection died in the takeover: {rep}"
        assert (rep.last_ok or 0) > killed + 1.0, rep
    # DHCP: the client renews (unicast to the dead router, then broadcast) and keeps its address
    asked = client.renew()
    after = client.wait_lease(asked + 60, after=asked)
    assert after.address == before.address
    assert str(after.server) == "192.168.19.4"  # router B's dnsmasq answered
    client.stop()


def test_the_backups_kernel_holds_the_masters_flows_before_any_handover(
    pair: tuple[PairLab, Office, Office],
) -> None:
    # When keepalived moves the addresses, the new master's kernel must already
    # know every flow: a server's packet that fits none is answered with a RST
    # (linux/conntrackd.py). So the backup holds them all along, NAT address and
    # ct mark (the uplink the flow is pinned to) as the master has them.
    lab, _, _ = pair
    lab.client_static(LAN)
    flows = _flows(lab)

    def all_on_a() -> set[tuple[str, ...]]:
        got = _kernel_flows(lab, "a", WHOAMI_PORT)
        return got if len(got) == FLOWS else set()

    on_a = until(all_on_a, DEADLINE, "the flows in A's conntrack table")
    assert {nat for *_, nat, _ in on_a} == {"192.168.0.2"}  # INET-UTAMA's shared address
    assert all(int(mark) for *_, mark in on_a)  # pinned to an uplink by our table
    until(
        lambda: _kernel_flows(lab, "b", WHOAMI_PORT) >= on_a,
        DEADLINE,
        lambda: f"A's flows in B's kernel: {_kernel_flows(lab, 'b', WHOAMI_PORT)} vs {on_a}",
    )
    assert all(f.report().broken_at is None for f in flows)


def _dropped(lab: PairLab, side: str, counter: str) -> int:
    found = netns.nft_json(lab.router(side), "counter", "inet", "wanwatch", counter)
    packets: int = next(o["counter"]["packets"] for o in found if "counter" in o)
    return packets


def test_a_reply_sent_to_the_router_that_gave_the_address_up_reaches_its_holder(
    pair: tuple[PairLab, Office, Office],
) -> None:
    # While the role moves, the ISP may send for the shared uplink address to the
    # router that has just given it up (the new holder's gratuitous ARP not yet
    # seen), and a connection opened a moment ago through the new holder is not
    # yet in the other router's kernel (conntrackd's hop is slower than the lab's
    # round trip). That router must pass the SYN-ACK on to the holder, not drop it
    # as invalid (seen at failback: the server's retransmission 1 s later, too late).
    # Held here deterministically: the ISP's neighbour entry for A's shared
    # address points at B while A is master.
    lab, _, _ = pair
    lab.client_static(LAN)
    isp = next(i for i in lab.topology.isps if i.wan == "INET-UTAMA")
    b_mac = netns.link(lab.router("b"), isp.router_if)["address"]
    shared = "192.168.0.2"
    dropped = _dropped(lab, "b", "drop_fwd_INET-UTAMA")
    netns.batch(isp.ns, [f"neigh replace {shared} lladdr {b_mac} dev {isp.cust_if} nud permanent"])
    try:
        attempts = connections(lab, LAN, 10, interval=0.05, timeout=1.0)
    finally:
        netns.batch(isp.ns, [f"neigh del {shared} dev {isp.cust_if}"])
    assert [x for x in attempts if not x.ok] == []
    assert {x.isp for x in attempts} == {"INET-UTAMA"}
    assert _dropped(lab, "b", "drop_fwd_INET-UTAMA") == dropped


def test_master_without_uplinks_hands_over_and_takes_back(
    pair: tuple[PairLab, Office, Office],
) -> None:
    lab, a, b = pair
    lab.client_static(LAN)
    flows = _flows(lab)
    # Both of A's uplinks go silent (cables in): only its probes see it, and the
    # track file hands the priority to B.
    cut = lab.silence("a")
    wait_role(b, "MASTER", DEADLINE)
    wait_role(a, "BACKUP", DEADLINE)
    with ConnectLoop(lab, LAN) as loop:
        assert loop.first_success(after=time.monotonic(), deadline=time.monotonic() + DEADLINE)
    for f in flows:
        rep = _carried_on(f, cut)
        assert rep.broken_at is None and (rep.last_ok or 0) > cut + 1.0, rep
    # Failback: A's uplinks return; it is the preferred router (preempt) and takes over.
    back = lab.silence("a", on=False)
    wait_role(a, "MASTER", 60)
    wait_role(b, "BACKUP", DEADLINE)
    for f in flows:
        rep = _carried_on(f, time.monotonic())
        assert rep.broken_at is None and (rep.last_ok or 0) > back, rep


def test_sigterm_hands_over_and_removes_what_it_added(
    pair: tuple[PairLab, Office, Office],
) -> None:
    lab, a, b = pair
    shared = {"192.168.19.1", "192.168.20.1", "192.168.0.2", "192.168.18.2"}
    assert shared <= _addresses(lab, "a")
    assert not shared & _addresses(lab, "b")
    assert a.stop(signal.SIGTERM) == 0
    wait_role(b, "MASTER", DEADLINE)
    assert shared <= _addresses(lab, "b")
    assert not shared & _addresses(lab, "a")
    assert _addresses(lab, "a") == {"127.0.0.1", "10.99.0.1"}  # only what was there before
    assert netns.sh(["ip", "netns", "pids", lab.router("a")]).stdout.split() == []
    left = {p.name for p in a.daemon_state.iterdir()}
    assert left <= {"dnsmasq.leases"}, left  # the leases outlive us, nothing else


def test_master_unplugged_from_its_isps_faults_and_hands_over(
    pair: tuple[PairLab, Office, Office],
) -> None:
    lab, a, b = pair
    lab.client_static(LAN)
    lab.unplug("a", lans=False)  # carrier lost: keepalived itself puts the group in FAULT
    wait_role(b, "MASTER", DEADLINE)
    wait_role(a, "FAULT", DEADLINE)
    with ConnectLoop(lab, LAN) as loop:
        assert loop.first_success(after=time.monotonic(), deadline=time.monotonic() + DEADLINE)


def test_reload_applies_a_changed_pair_and_refuses_leaving_it(
    pair: tuple[PairLab, Office, Office],
) -> None:
    lab, a, b = pair
    assert b.daemon is not None
    data = yaml.safe_load(lab.peer_config_path.read_text())
    data["ha"]["priority"] = 200  # B becomes the preferred router
    lab.peer_config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    since = time.monotonic()
    b.daemon.send_signal(signal.SIGHUP)
    b.wait_event("config.reloaded", since=since)
    wait_role(b, "MASTER", DEADLINE)
    wait_role(a, "BACKUP", DEADLINE)
    del data["ha"]
    lab.peer_config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    since = time.monotonic()
    b.daemon.send_signal(signal.SIGHUP)
    rejected = b.wait_event("config.rejected", since=since)
    assert rejected["reason"] == "ha", rejected
    assert (b.status()["ha"] or {}).get("role") == "MASTER"  # still serving as before


def _converged(lab: PairLab, a: Office, b: Office, what: str) -> None:
    """Wait until status, keepalived and dnsmasq agree on each router: A master, B backup."""
    until(
        lambda: (
            (_agrees_with_keepalived(lab, a), _agrees_with_keepalived(lab, b))
            == ("MASTER", "BACKUP")
        ),
        DEADLINE,
        lambda: f"{what}: the roles to converge (A {_role(a)}, B {_role(b)})",
    )


def test_simultaneous_starts_converge_on_one_role_and_one_dhcp_server(lab: PairLab) -> None:
    for n in range(STARTS):
        a, b = start(lab, DEADLINE, together=True)
        _converged(lab, a, b, f"start {n + 1}")
        answers = dhcp_answers(lab, LAN, DHCP_WATCH, DEADLINE)
        assert answers["a"] > 0 and answers["b"] == 0, (n, answers)
        assert a.stop(signal.SIGTERM) == 0 and b.stop(signal.SIGTERM) == 0


def _restart_a_after_a_power_cut(
    lab: PairLab, a: Office, b: Office, *, uplinks: bool
) -> tuple[list[Flow], ConnectLoop, float]:
    """A dies (SIGKILL, cables out), B carries; A comes back, its uplinks dead or not."""
    lab.client_static(LAN)
    flows = _flows(lab)
    lab.kill_router("a")
    wait_role(b, "MASTER", DEADLINE)
    if not uplinks:
        lab.silence("a")  # A's ISPs drop its own packets: its probes cannot prove anything
    lab.plug("a")
    for f in flows:  # every flow carried by B before A returns
        rep = _carried_on(f, time.monotonic())
        assert rep.broken_at is None, rep
    loop = ConnectLoop(lab, LAN)
    loop.start()
    loop.wait_started(time.monotonic() + DEADLINE)
    back = time.monotonic()
    run_router(lab, a, DEADLINE)
    return flows, loop, back


def _failback_is_clean(
    lab: PairLab, a: Office, b: Office, flows: list[Flow], loop: ConnectLoop, since: float
) -> None:
    wait_role(a, "MASTER", 60)
    wait_role(b, "BACKUP", DEADLINE)
    took = time.monotonic()
    for f in flows:
        rep = _carried_on(f, took)
        assert rep.broken_at is None and (rep.last_ok or 0) > took, rep
    attempts = loop.settled(time.monotonic(), DEADLINE)
    assert len([x for x in attempts if x.t0 >= since]) > 50  # the loop ran all along
    assert _failed(attempts, since) == []
    _converged(lab, a, b, "failback")


def test_a_router_back_with_dead_uplinks_never_takes_over(
    pair: tuple[PairLab, Office, Office],
) -> None:
    lab, a, b = pair
    flows, loop, back = _restart_a_after_a_power_cut(lab, a, b, uplinks=False)
    try:
        for w in lab.config.wans:  # A has judged its uplinks: down
            a.wait_state(w.name, "down", DEADLINE)
        assert a.status()["ha"]["uplinks_down"] == len(lab.config.wans)
        holds(
            lambda: _role(a) == "BACKUP" and _role(b) == "MASTER",
            HOLD,
            lambda: f"B carrying (A {_role(a)}, B {_role(b)})",
        )
        assert _agrees_with_keepalived(lab, a) == "BACKUP"
        assert _agrees_with_keepalived(lab, b) == "MASTER"
        attempts = loop.settled(time.monotonic(), DEADLINE)
        assert len([x for x in attempts if x.t0 >= back]) > 50
        assert _failed(attempts, back) == []  # A's start cost the office nothing
        # A's uplinks come back: proven up and applied, A (preferred) takes over
        healed = lab.silence("a", on=False)
        _failback_is_clean(lab, a, b, flows, loop, healed)
    finally:
        loop.stop()


def test_a_router_back_with_working_uplinks_takes_over_cleanly(
    pair: tuple[PairLab, Office, Office],
) -> None:
    lab, a, b = pair
    flows, loop, back = _restart_a_after_a_power_cut(lab, a, b, uplinks=True)
    try:
        _failback_is_clean(lab, a, b, flows, loop, back)
        # it took over only once its uplinks were up and its dataplane applied
        evs = a.events(back)
        master = next(e["at"] for e in evs if e["name"] == "ha.role" and e["role"] == "MASTER")
        applied = next(e["at"] for e in evs if e["name"] == "dataplane.applied")
        ready = next(e["at"] for e in evs if e["name"] == "ha.track" and e["uplinks_down"] == 0)
        assert applied <= ready < master, (applied, ready, master)
    finally:
        loop.stop()
