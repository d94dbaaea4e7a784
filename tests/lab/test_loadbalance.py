"""Load balancing end to end: the real daemon (``wanwatch run`` via Office) in the lab office.

Every test runs the reference office in loadbalance mode, with wanwatch as the
router, real ISPs (BCP38 + NAT, so a packet that leaves by the wrong uplink is
dropped and counted) and a fake internet whose servers report the address a
connection came from, i.e. the ISP that carried it.

Hash inputs. The office's default classifier, ``both-addresses``, hashes the
client and server addresses only: every connection between one client and one
server takes the same uplink, by design (RouterOS PCC). A split is only visible
over many address pairs, so the tests give the LAN client extra addresses on
its subnet (more office machines behind one veth) and open connections from
each. Those inputs are fixed and so is the hash seed (nft.HASH_SEED), so the
uplink of every connection is known in advance (nft.predict_bucket): the tests
assert that every connection took exactly its predicted uplink, and the share
checks are deterministic, not statistical. The port-hashing classifier
(``both-addresses-and-ports``) is used where one client must spread its own
flows (bulk transfers); its inputs are the kernel's ephemeral ports, read back
from each client socket.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

import pytest

from wanwatch.config import Config
from wanwatch.engine.policy import plan_for
from wanwatch.lab import faults, netns, shaping
from wanwatch.lab.office import Office
from wanwatch.lab.poll import until
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import (
    Attempt,
    ConnectLoop,
    Flow,
    add_client_addresses,
    bulk,
    connections,
    predicted_uplink,
)
from wanwatch.lab.worker.servers import BULK_PORT
from wanwatch.linux.nft import predict_bucket

LabFactory = Callable[..., Lab]  # the make_lab fixture (conftest.py)

pytestmark = pytest.mark.lab

LAN = "ether3"
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"
START_TIMEOUT = 30.0
FAILOVER_DEADLINE = 10.0  # a failover takes about 1 s; this only bounds a broken one


def loadbalance(
    office: Config,
    *,
    weights: tuple[int, int] = (1, 1),
    one_tier: bool = True,
    classifier: str = "both-addresses",
    hold: float | None = None,
) -> Config:
    """The office in loadbalance mode; ``one_tier`` puts both uplinks at priority 1."""
    wans = tuple(
        w.replace(**{"weight": weight, **({"priority": 1} if one_tier else {})})
        for w, weight in zip(office.wans, weights, strict=True)
    )
    update: dict[str, Any] = {
        "wans": wans,
        "policy": office.policy.replace(mode="loadbalance", classifier=classifier),
    }
    if hold is not None:
        update["monitor"] = office.monitor.replace(hold=hold)
    return office.replace(**update)


def carrying(office: Office, names: list[str], timeout: float = START_TIMEOUT) -> None:
    office.wait_for(
        lambda st: st["active"] == names and bool(st["applied"]),
        timeout,
        f"exactly {', '.join(names)} to carry new connections",
    )


def running(make_lab: LabFactory, config: Config) -> tuple[Lab, Office]:
    """A lab with the daemon up, every uplink of the best tier carrying, the client on .100."""
    lab = make_lab(config)
    office = Office(lab)
    office.start(timeout=START_TIMEOUT)
    carrying(office, list(plan_for(lab.lab_config, set()).active))
    lab.client_static(LAN)
    return lab, office


def hashing_to(lab: Lab, wan: str, sources: list[IPv4Address], dst: IPv4Address) -> IPv4Address:
    """The first of ``sources`` whose connections to ``dst`` hash to ``wan``."""
    return next(s for s in sources if predicted_uplink(lab, s, dst) == wan)


def all_ok(attempts: list[Attempt]) -> list[Attempt]:
    failed = [a for a in attempts if not a.ok]
    assert not failed, f"{len(failed)} connections failed, e.g. {failed[:3]}"
    return attempts


def bcp38_clean(lab: Lab) -> None:
    """No packet left by the wrong uplink: its ISP would have dropped and counted it."""
    drops = {w.name: lab.bcp38_drops(w.name) for w in lab.lab_config.wans}
    assert drops == dict.fromkeys(drops, 0)


WRONG_TABLE = "ww_wrong_uplink"


def watch_wrong_uplink(lab: Lab) -> None:
    """Count, at each ISP, customer packets whose source is *another* uplink's address:
    a packet of a connection NATed to that uplink that left by this one.

    Where connections are cut mid-flight (a failover flushes them), BCP38 alone is
    not the right witness: it also counts LAN packets that conntrack finds invalid
    (e.g. a late retransmission of a flow whose entry was just deleted), which
    leave un-NATed by the main route because the ruleset lets invalid packets
    through. Those belong to no connection; this counter ignores them.
    """
    own = {
        w.name: w.address.ip for w in lab.lab_config.wans if isinstance(w.address, IPv4Interface)
    }
    for isp in lab.topology.isps:
        others = ", ".join(str(a) for name, a in own.items() if name != isp.wan)
        netns.nft(
            isp.ns,
            f"table ip {WRONG_TABLE} {{\n"
            "  counter wrong { }\n"
            "  chain forward {\n"
            # Before the BCP38 filter and any fault's drop, so every such packet counts.
            "    type filter hook forward priority filter - 100; policy accept;\n"
            f'    iifname "{isp.cust_if}" ip saddr {{ {others} }} counter name "wrong"\n'
            "  }\n"
            "}\n",
        )


def wrong_uplink(lab: Lab) -> dict[str, int]:
    """Packets each ISP saw from another uplink's address since watch_wrong_uplink()."""
    out = {}
    for isp in lab.topology.isps:
        items = netns.nft_json(isp.ns, "counter", "ip", WRONG_TABLE, "wrong")
        out[isp.wan] = next(int(i["counter"]["packets"]) for i in items if "counter" in i)
    return out


# --------------------------------------------------------------------------- split


@pytest.mark.parametrize("weights", [(1, 1), (2, 1)], ids=["1:1", "2:1"])
def test_split_follows_the_weights(
    make_lab: LabFactory, office: Config, weights: tuple[int, int]
) -> None:
    lab, daemon = running(make_lab, loadbalance(office, weights=weights))
    sources = add_client_addresses(lab, LAN, 240, first=2)
    seen: list[tuple[IPv4Address, Attempt]] = []
    for dst in lab.topology.whoami:  # 240 clients x 2 servers: 480 distinct address pairs
        got = all_ok(connections(lab, LAN, len(sources), sources=sources, dst=dst))
        seen += [(dst, a) for a in got]
    assert len(seen) == 480
    # Every connection took exactly the uplink its hash bucket names ...
    wrong = [
        (dst, a) for dst, a in seen if a.src is None or a.isp != predicted_uplink(lab, a.src, dst)
    ]
    assert not wrong, wrong[:5]
    # ... and the buckets follow the weights, so the split does: these 480 fixed
    # inputs give 53.8 % (1:1) and 64.0 % (2:1) to the primary.
    per_isp = Counter(a.isp for _, a in seen)
    share = per_isp[PRIMARY] / len(seen)
    assert abs(share - weights[0] / sum(weights)) < 0.05, (share, weights)
    # `wanwatch status` counts the same connections per uplink (closed ones stay in
    # conntrack through TIME_WAIT, 120 s): exactly what the servers saw.
    until(
        lambda: _connections(daemon) == dict(per_isp),
        10,
        f"status counters to show {dict(per_isp)}",
    )
    bcp38_clean(lab)
    assert daemon.stop() == 0


def _connections(office: Office) -> dict[str, int]:
    return {k: v["connections"] for k, v in office.status()["counters"].items()}


def test_a_worse_priority_carries_nothing_while_a_better_uplink_is_up(
    make_lab: LabFactory, office: Config
) -> None:
    # The office as shipped: INET-UTAMA priority 1, BACKUP-INET priority 2 (tiers).
    lab, daemon = running(make_lab, loadbalance(office, one_tier=False, hold=1.0))
    watch_wrong_uplink(lab)
    sources = add_client_addresses(lab, LAN, 60, first=2)
    dst = lab.topology.whoami[0]
    # Some of these clients would hash to the backup if it were in the tier.
    both = plan_for(loadbalance(office), set()).buckets
    assert {
        both[predict_bucket("both-addresses", len(both), s, dst, proto=6)] for s in sources
    } == {PRIMARY, BACKUP}
    got = all_ok(connections(lab, LAN, len(sources), sources=sources, dst=dst))
    assert {a.isp for a in got} == {PRIMARY}
    assert daemon.status()["active"] == [PRIMARY]

    faults.blackhole(lab, PRIMARY)  # the whole better tier is down: the next one carries
    carrying(daemon, [BACKUP], FAILOVER_DEADLINE)
    got = all_ok(connections(lab, LAN, len(sources), sources=sources, dst=dst))
    assert {a.isp for a in got} == {BACKUP}

    faults.clear(lab, PRIMARY)
    carrying(daemon, [PRIMARY], 30)  # back after up_after good probes and the hold
    got = all_ok(connections(lab, LAN, len(sources), sources=sources, dst=dst))
    assert {a.isp for a in got} == {PRIMARY}
    assert wrong_uplink(lab) == {PRIMARY: 0, BACKUP: 0}


# --------------------------------------------------------------------------- stickiness


def test_every_packet_of_a_connection_uses_one_uplink(make_lab: LabFactory, office: Config) -> None:
    lab, _ = running(make_lab, loadbalance(office, classifier="both-addresses-and-ports"))
    for w in lab.lab_config.wans:
        shaping.shape(lab, w.name, 20)  # keeps the bulk flows cheap for a shared CPU
    dst = lab.topology.whoami[0]
    with (
        Flow(lab, LAN, interval=0.02, stall_after=0.5, max_seconds=60) as f1,
        Flow(lab, LAN, interval=0.02, stall_after=0.5, max_seconds=60) as f2,
    ):
        deadline = time.monotonic() + 10
        echo = [f1.wait_connected(deadline), f2.wait_connected(deadline)]
        result = bulk(lab, LAN, flows=8, seconds=3, direction="down", dst=dst)
        up = bulk(lab, LAN, flows=4, seconds=2, direction="up", dst=dst)
        reports = [f1.report(), f2.report()]
    assert not result.errors and not up.errors, (result.errors, up.errors)
    for flow in (*result.flows, *up.flows):
        # Each bulk flow moved data end to end through the uplink its tuple hashes to.
        assert flow.bytes > 0
        b = plan_for(lab.lab_config, set()).buckets
        i = predict_bucket(
            "both-addresses-and-ports",
            len(b),
            IPv4Address(str(flow.src)),
            dst,
            proto=6,
            sport=flow.sport or 0,
            dport=BULK_PORT,
        )
        assert flow.isp == b[i], flow
    for before, after in zip(echo, reports, strict=True):
        # Echo flows kept exchanging through the saturated uplinks, never reset.
        assert after.alive and after.isp == before.isp
        assert after.exchanges > before.exchanges + 20
    bcp38_clean(lab)


def test_src_address_keeps_each_client_on_one_uplink(make_lab: LabFactory, office: Config) -> None:
    lab, _ = running(make_lab, loadbalance(office, classifier="src-address"))
    sources = add_client_addresses(lab, LAN, 40, first=2)
    uplinks: dict[str, set[str | None]] = {}
    for dst in lab.topology.whoami:
        for _ in range(2):  # 40 clients x 2 servers x 2 rounds, fresh ports each time
            for a in all_ok(connections(lab, LAN, len(sources), sources=sources, dst=dst)):
                uplinks.setdefault(str(a.src), set()).add(a.isp)
    assert len(uplinks) == 40
    for src, isps in uplinks.items():
        assert isps == {predicted_uplink(lab, src, lab.topology.whoami[0])}, src
    assert set().union(*uplinks.values()) == {PRIMARY, BACKUP}  # both carry clients
    bcp38_clean(lab)


# --------------------------------------------------------------------------- failover


def test_failover_inside_loadbalance_moves_new_connections_only(
    make_lab: LabFactory, office: Config
) -> None:
    lab, daemon = running(make_lab, loadbalance(office, hold=2.0))
    watch_wrong_uplink(lab)
    sources = add_client_addresses(lab, LAN, 20, first=2)
    dst = lab.topology.whoami[0]
    on_a = hashing_to(lab, PRIMARY, sources, dst)
    on_b = hashing_to(lab, BACKUP, sources, dst)
    deadline = time.monotonic() + 10
    flow_a = Flow(lab, LAN, interval=0.05, source=on_a, max_seconds=120).start()
    flow_b = Flow(lab, LAN, interval=0.05, stall_after=0.5, source=on_b, max_seconds=120).start()
    assert flow_a.wait_connected(deadline).isp == PRIMARY
    assert flow_b.wait_connected(deadline).isp == BACKUP

    # Cut the primary while the client on `on_a` keeps opening new connections.
    with ConnectLoop(lab, LAN, sources=[on_a], interval=0.02, max_seconds=60) as loop:
        cut = faults.blackhole(lab, PRIMARY)
        moved = loop.first_success(
            after=cut.t_start, via=BACKUP, deadline=time.monotonic() + FAILOVER_DEADLINE
        )
    assert moved is not None, "new connections of a primary-hashed client never reached BACKUP"
    carrying(daemon, [BACKUP], FAILOVER_DEADLINE)
    flush = daemon.wait_event("conntrack.flush", since=cut.t_start)
    assert flush["wan"] == PRIMARY  # only the failed uplink's flows were deleted
    # New connections of every client now take the survivor ...
    got = all_ok(connections(lab, LAN, len(sources), sources=sources, dst=dst))
    assert {a.isp for a in got} == {BACKUP}
    # ... while the survivor's own connection carried on untouched.
    rep_b = flow_b.report()
    assert rep_b.alive and rep_b.stalls == [] and rep_b.last_ok is not None
    assert rep_b.last_ok > moved.t1

    # A connection opened during the outage lives on the survivor ...
    flow_a2 = Flow(lab, LAN, interval=0.05, source=on_a, max_seconds=120).start()
    assert flow_a2.wait_connected(time.monotonic() + 10).isp == BACKUP
    back = faults.clear(lab, PRIMARY)
    carrying(daemon, [PRIMARY, BACKUP], 30)  # up_after good probes, then the 2 s hold
    # ... and stays there after the primary is back, while new connections return.
    first = until(
        lambda: next(
            (a for a in connections(lab, LAN, 1, sources=[on_a], dst=dst) if a.isp == PRIMARY),
            None,
        ),
        10,
        "a new connection of the primary-hashed client through PRIMARY",
    )
    assert first is not None
    assert first.t1 > back.t_start
    until(
        lambda: all((f.report().last_ok or 0) > first.t1 for f in (flow_a2, flow_b)),
        10,
        "both flows on the backup to exchange after the return",
    )
    for flow, isp in ((flow_a2, BACKUP), (flow_b, BACKUP)):
        rep = flow.stop()
        assert rep.alive and rep.isp == isp and rep.last_ok is not None, rep
        assert rep.last_ok > first.t1
    flow_a.stop()
    assert wrong_uplink(lab) == {PRIMARY: 0, BACKUP: 0}


# --------------------------------------------------------------------------- counters, shaping


def test_status_shows_connections_and_bytes_per_uplink(
    make_lab: LabFactory, office: Config
) -> None:
    lab, daemon = running(make_lab, loadbalance(office))
    sources = add_client_addresses(lab, LAN, 20, first=2)
    dst = lab.topology.whoami[0]
    on = {
        PRIMARY: hashing_to(lab, PRIMARY, sources, dst),
        BACKUP: hashing_to(lab, BACKUP, sources, dst),
    }
    for w in lab.lab_config.wans:
        shaping.shape(lab, w.name, 20)
    moved = {}
    for wan, src in on.items():
        r = bulk(lab, LAN, flows=2, seconds=1.5, warmup=0.2, sources=[src], dst=dst)
        assert not r.errors and {f.isp for f in r.flows} == {wan}
        moved[wan] = sum(f.bytes for f in r.flows)

    def covering() -> dict[str, Any] | None:
        """The status counters once they cover both transfers (a reading may be ~1 s old)."""
        found: dict[str, Any] = json.loads(status_cli(daemon, "--json"))["counters"]
        done = all(found.get(wan, {}).get("bytes_in", 0) >= n for wan, n in moved.items())
        return found if done else None

    counters = until(covering, 10, "the status counters to cover both transfers")
    assert counters is not None
    assert set(counters) == {PRIMARY, BACKUP}
    for wan, payload in moved.items():
        c = counters[wan]
        # conntrack counts IP bytes: at least the TCP payload the client received,
        # and a small upstream of requests and ACKs.
        assert c["connections"] >= 2
        assert c["bytes_in"] >= payload > 0
        assert 0 < c["bytes_out"] < c["bytes_in"] / 10
    human = status_cli(daemon)
    assert "CONNECTIONS" in human and PRIMARY in human


def status_cli(office: Office, *args: str) -> str:
    """``wanwatch status`` as an admin runs it, against the lab daemon's socket."""
    argv = [sys.executable, "-m", "wanwatch.cli", "status", "--socket", str(office.socket)]
    done = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


def test_shaping_limits_each_isp_in_both_directions(make_lab: LabFactory, office: Config) -> None:
    lab, _ = running(make_lab, loadbalance(office))
    sources = add_client_addresses(lab, LAN, 20, first=2)
    dst = lab.topology.whoami[0]
    rates = {PRIMARY: 8.0, BACKUP: 16.0}
    for wan, mbit in rates.items():
        got = shaping.shape(lab, wan, mbit, up_mbit=mbit / 2)
        assert (got.down_bps, got.up_bps) == (mbit * 1e6, mbit * 1e6 / 2)
    for wan, mbit in rates.items():
        src = hashing_to(lab, wan, sources, dst)
        for direction, limit in (("down", mbit), ("up", mbit / 2)):
            r = bulk(lab, LAN, flows=2, seconds=4, direction=direction, sources=[src], dst=dst)
            assert not r.errors and r.flows_by_isp() == {wan: 2}
            # tbf lets no more than its rate through (TCP goodput tops out at 95.6 % of
            # it); the reading may stray by about a congestion window per flow, at
            # most ~60 kB here (the tbf queue), i.e. 4 % of 4 Mbit/s over 3 s. Unshaped,
            # the lab moves over 1 Gbit/s. The lower bound only catches a broken
            # transfer on a busy machine.
            assert 0.3 * limit < r.bits_per_second / 1e6 <= 1.08 * limit, (wan, direction, r)
    for wan in rates:
        shaping.unshape(lab, wan)
        assert shaping.current(lab, wan) == shaping.Shape(wan, None, None)
    shaping.unshape(lab, PRIMARY)  # again: a no-op
