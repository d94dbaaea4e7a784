"""Fault injection on the ISP side, measured from the hand-configured router and a client.

Each fault is checked for what it must do and for what it must leave alone:
the ISP's own gateway address, the other ISP, the other faults.
"""

from __future__ import annotations

import itertools
import statistics
import time
from typing import Literal

import pytest

from wanwatch.errors import LabError
from wanwatch.lab import faults, netns, traffic
from wanwatch.lab.poll import until
from wanwatch.lab.topology import Lab

pytestmark = pytest.mark.lab

PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"


def target(lab: Lab, wan: str = PRIMARY) -> str:
    return str(lab.isp(wan).targets[0])


def gateway(lab: Lab, wan: str = PRIMARY) -> str:
    return str(lab.isp(wan).gateway.ip)


def route_backup_target(lab: Lab) -> None:
    """By hand: the backup's probe target through the backup (the rest via the primary)."""
    netns.ip("-n", lab.router_ns, "route", "add", target(lab, BACKUP), "via", gateway(lab, BACKUP))


def ruleset(lab: Lab, wan: str) -> str:
    return netns.nsrun(lab.isp(wan).ns, "nft", "list", "ruleset").stdout


def test_blackhole_silences_the_internet_but_not_the_isp_gateway(routed_lab: Lab) -> None:
    lab = routed_lab
    route_backup_target(lab)
    base = ruleset(lab, PRIMARY)
    assert traffic.ping(lab, "router", target(lab), count=3).received == 3

    ev = faults.blackhole(lab, PRIMARY)
    assert ev.t_start <= ev.t_done and ev.kind == "blackhole"
    assert faults.active(lab, PRIMARY) == {"blackhole"}
    # The modem still answers and its Ethernet stays up; the internet is gone.
    assert traffic.ping(lab, "router", gateway(lab), count=5).received == 5
    assert lab.link_state("router", "ether1").carrier
    assert traffic.ping(lab, "router", target(lab), count=5, timeout=0.5).received == 0
    now = time.monotonic()
    lan = lab.topology.clients[0].lan
    assert traffic.first_new_connection(lab, lan, after=now, deadline=now + 1, timeout=0.3) is None
    # The other uplink is untouched.
    assert traffic.ping(lab, "router", target(lab, BACKUP), count=3).received == 3
    assert faults.active(lab, BACKUP) == set()

    faults.clear(lab, PRIMARY)
    assert faults.active(lab, PRIMARY) == set()
    assert ruleset(lab, PRIMARY) == base
    assert traffic.ping(lab, "router", target(lab), count=3).received == 3


@pytest.mark.parametrize(("direction", "expected"), [("up", 20.0), ("down", 20.0), ("both", 36.0)])
def test_loss_drops_the_requested_share(
    routed_lab: Lab, direction: faults.Direction, expected: float
) -> None:
    lab = routed_lab
    faults.loss(lab, PRIMARY, 20, direction)
    assert faults.active(lab, PRIMARY) == {"loss"}
    # 600 echoes: the binomial standard deviation of the loss share is under
    # 2 points, so +-7 points is a > 3.5 sigma band; and the gateway is exempt.
    stats = traffic.ping(lab, "router", target(lab), count=600, interval=0.004, timeout=0.5)
    assert stats.sent == 600
    assert expected - 7 <= stats.loss_pct <= expected + 7, stats.loss_pct
    assert traffic.ping(lab, "router", gateway(lab), count=50, interval=0.002).loss_pct == 0

    faults.clear(lab, PRIMARY, "loss")
    assert traffic.ping(lab, "router", target(lab), count=100, interval=0.002).loss_pct == 0


def test_delay_with_jitter_adds_the_requested_rtt(routed_lab: Lab) -> None:
    lab = routed_lab
    base = ruleset(lab, PRIMARY)
    before = traffic.ping(lab, "router", target(lab), count=20, interval=0.01)
    assert before.median_ms is not None and before.median_ms < 20

    faults.delay(lab, PRIMARY, 100, jitter_ms=20)
    assert faults.active(lab, PRIMARY) == {"delay"}
    stats = traffic.ping(lab, "router", target(lab), count=60, interval=0.02, timeout=2)
    # Nothing lost: packets of a new ICMP flow are queued before conntrack (faults.py).
    assert stats.received == 60
    rtts = sorted(stats.rtts_ms)
    assert stats.median_ms is not None and 90 <= stats.median_ms <= 140, rtts
    assert rtts[0] >= 79, rtts  # never less than delay - jitter
    deciles = statistics.quantiles(rtts, n=10)
    assert deciles[-1] - deciles[0] >= 10, rtts  # jitter is there
    # The ISP's own address is not delayed (the modem answers at once).
    gw = traffic.ping(lab, "router", gateway(lab), count=10, interval=0.01)
    assert gw.median_ms is not None and gw.median_ms < 20

    releaser = next(p for p in lab.procs if p.name == f"delay-{PRIMARY}")
    faults.clear(lab, PRIMARY, "delay")
    assert not releaser.alive()
    assert any(r.get("ev") == "stopped" and r["packets"] >= 60 for r in releaser.records())
    assert faults.active(lab, PRIMARY) == set()
    assert ruleset(lab, PRIMARY) == base
    after = traffic.ping(lab, "router", target(lab), count=20, interval=0.01)
    assert after.median_ms is not None and after.median_ms < 20


def test_delay_in_both_directions_adds_it_twice(routed_lab: Lab) -> None:
    lab = routed_lab
    faults.delay(lab, PRIMARY, 40, direction="both")
    stats = traffic.ping(lab, "router", target(lab), count=30, interval=0.02, timeout=2)
    assert stats.received == 30
    assert stats.median_ms is not None and 78 <= stats.median_ms <= 120, stats.rtts_ms


def test_carrier_loss_is_seen_as_link_down_by_the_router(routed_lab: Lab) -> None:
    lab = routed_lab
    assert lab.link_state("router", "ether1").carrier

    faults.carrier_loss(lab, PRIMARY)
    until(lambda: not lab.link_state("router", "ether1").carrier, 5, "router loses carrier")
    state = lab.link_state("router", "ether1")
    assert state.admin_up and state.operstate in ("DOWN", "LOWERLAYERDOWN")
    assert faults.active(lab, PRIMARY) == {"carrier"}
    assert traffic.ping(lab, "router", gateway(lab), count=3, timeout=0.3).received == 0
    assert lab.link_state("router", "ether2").carrier  # the backup is untouched

    faults.clear(lab, PRIMARY, "carrier")
    until(lambda: lab.link_state("router", "ether1").carrier, 5, "router regains carrier")
    assert faults.active(lab, PRIMARY) == set()
    # Connectivity comes back (the neighbour entry may need a moment after the link).
    until(
        lambda: traffic.ping(lab, "router", target(lab), count=1, timeout=0.5).received == 1,
        10,
        "internet reachable again",
    )


@pytest.mark.parametrize("mode", ["blackhole", "carrier"])
def test_flap_alternates_for_the_given_cycles_and_ends_clear(
    routed_lab: Lab, mode: Literal["blackhole", "carrier"]
) -> None:
    lab = routed_lab
    base = ruleset(lab, PRIMARY)
    flap = faults.flap(lab, PRIMARY, down_s=0.6, up_s=0.3, cycles=3, mode=mode)
    until(lambda: any(t["ev"] == "down" for t in flap.transitions()), 10, "first cut")
    assert mode in faults.active(lab, PRIMARY)
    transitions = flap.wait(timeout=20)
    assert [t["ev"] for t in transitions] == ["down", "up"] * 3
    starts = [t["t_start"] for t in transitions]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # The periods asked for (0.6 s down, 0.3 s up), with room for a busy box.
    assert all(0.58 <= g <= 2.0 for g in gaps[0::2]), gaps
    assert all(0.28 <= g <= 2.0 for g in gaps[1::2]), gaps
    assert faults.active(lab, PRIMARY) == set()
    assert ruleset(lab, PRIMARY) == base
    until(lambda: lab.link_state("router", "ether1").carrier, 5, "carrier back")
    until(
        lambda: traffic.ping(lab, "router", target(lab), count=1, timeout=0.5).received == 1,
        10,
        "internet reachable again",
    )


def test_flap_stopped_early_leaves_no_fault(routed_lab: Lab) -> None:
    lab = routed_lab
    flap = faults.flap(lab, PRIMARY, down_s=0.2, up_s=0.2, cycles=100)
    until(lambda: any(t["ev"] == "down" for t in flap.transitions()), 10, "first cut")
    flap.stop()
    assert not flap.proc.alive()
    assert faults.active(lab, PRIMARY) == set()
    assert traffic.ping(lab, "router", target(lab), count=3).received == 3


def test_clearing_one_fault_leaves_the_others(routed_lab: Lab) -> None:
    lab = routed_lab
    base = ruleset(lab, PRIMARY)
    faults.blackhole(lab, PRIMARY)
    faults.loss(lab, PRIMARY, 10)
    faults.delay(lab, PRIMARY, 10)
    faults.blackhole(lab, BACKUP)
    assert faults.active(lab, PRIMARY) == {"blackhole", "loss", "delay"}

    faults.clear(lab, PRIMARY, "loss")
    assert faults.active(lab, PRIMARY) == {"blackhole", "delay"}
    faults.clear(lab, PRIMARY, "blackhole")
    assert faults.active(lab, PRIMARY) == {"delay"}
    assert faults.active(lab, BACKUP) == {"blackhole"}
    faults.clear_all(lab)
    assert faults.active(lab, PRIMARY) == set() and faults.active(lab, BACKUP) == set()
    assert ruleset(lab, PRIMARY) == base
    assert lab.bcp38_drops(PRIMARY) == 0  # the ISP's own table survived every clear


def test_fault_arguments_are_checked(lab: Lab) -> None:
    with pytest.raises(LabError):
        faults.loss(lab, PRIMARY, 120)
    with pytest.raises(LabError):
        faults.flap(lab, PRIMARY, down_s=0.1, up_s=0.1, cycles=0)
    with pytest.raises(LabError, match="no uplink"):
        faults.blackhole(lab, "NOPE")
