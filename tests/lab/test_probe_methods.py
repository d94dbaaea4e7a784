"""End to end: ``wanwatch run`` with tcp, http and dns probes, against an ISP that
filters ICMP and an ISP whose prepaid quota is used up (a captive portal).

One lab is shared by the module, with the fake internet's web server (204 on
/generate_204 at the whoami addresses) beside its DNS; every test starts its own
daemon on a config whose primary is probed by every method (lab/portal.py), and
the ``router`` fixture stops it and clears every fault. Faults are set in the
ISP's namespace (lab/portal.py, lab/faults.py); assertions are about behaviour
(state, events, which uplink carries), bounded only by generous deadlines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest

from wanwatch.lab import faults, poll, portal
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab

pytestmark = pytest.mark.lab

SharedLab = Callable[..., contextlib.AbstractContextManager[Lab]]  # fixture (conftest.py)
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"  # examples/office.yaml
HOLD = "3s"
DEADLINE = 30.0  # a portal is seen within one http interval (10 s); this bounds a broken one
# How long a filtered primary is watched for a false failover once its ICMP targets
# are set aside: many of its tcp (2 s), dns (5 s) and http (10 s) rounds.
STEADY = 20.0


@pytest.fixture(scope="module")
def methods_lab(shared_lab: SharedLab) -> Iterator[Lab]:
    with shared_lab("probe-methods") as lab:
        portal.start_web(lab)
        yield lab


@pytest.fixture
def start(methods_lab: Lab) -> Iterator[Callable[..., Office]]:
    """Start the daemon with every method on the primary; afterwards stop it, clear faults."""
    offices: list[Office] = []

    def started(name: str, **config: Any) -> Office:
        path = portal.methods_config(
            methods_lab, name, wans=(PRIMARY,), monitor={"hold": HOLD}, **config
        )
        office = Office(methods_lab, path)
        offices.append(office)
        office.start(wait_active=PRIMARY, timeout=30)
        return office

    try:
        yield started
    finally:
        try:
            for office in offices:
                assert office.stop() == 0, office.log()[-3000:]
        finally:
            for isp in methods_lab.topology.isps:
                portal.clear(methods_lab, isp.wan)
            faults.clear_all(methods_lab)


def wan(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(w for w in status["wans"] if w["name"] == name)


def icmp_targets(lab: Lab) -> list[str]:
    return [str(t) for t in lab.isp(PRIMARY).targets]


def test_an_isp_that_drops_icmp_keeps_its_uplink_up_on_tcp_http_and_dns(
    methods_lab: Lab, start: Callable[..., Office]
) -> None:
    office = start("icmp-filtered")
    before = wan(office.status(), PRIMARY)
    assert set(before["targets"].values()) == {"answering"}  # every method answers
    filtered = portal.drop_icmp(methods_lab, PRIMARY)
    pings = icmp_targets(methods_lab)
    st = office.wait_for(
        lambda st: all(wan(st, PRIMARY)["targets"][t] == "silent" for t in pings),
        DEADLINE,
        "the primary's ICMP targets set aside",
    )
    others = {k: v for k, v in wan(st, PRIMARY)["targets"].items() if k not in pings}
    assert len(others) == 3 and set(others.values()) == {"answering"}, others

    # What is under test is that nothing changes: watch it, then read the events.
    def carrying_and_up() -> bool:
        now = office.status()
        return bool(wan(now, PRIMARY)["state"] == "up" and now["active"] == [PRIMARY])

    poll.holds(carrying_and_up, STEADY, "the filtered primary up and carrying", every=0.5)
    names = {e["name"] for e in office.events(since=filtered.t_start)}
    assert not names & {"wan.down", "wan.degraded", "policy.failover"}, names
    # The primary still fails over when it really dies: tcp, http and dns decide.
    cut = faults.blackhole(methods_lab, PRIMARY)
    fo = office.wait_event("policy.failover", since=cut.t_start, timeout=DEADLINE)
    assert (fo["cause"], fo["to"], fo["reason"]) == (PRIMARY, BACKUP, "down")
    down = office.events(since=cut.t_start, names=("wan.down",))
    assert [e["wan"] for e in down] == [PRIMARY]
    # ... and comes back on them, ICMP still filtered
    faults.clear(methods_lab, PRIMARY, "blackhole")
    office.wait_active(PRIMARY, timeout=DEADLINE)


@pytest.mark.parametrize("mode", ["portal", "page"], ids=["redirect", "page-in-place"])
def test_a_used_up_quota_is_a_portal_and_the_office_fails_over(
    methods_lab: Lab, start: Callable[..., Office], mode: Literal["portal", "page"]
) -> None:
    office = start(f"portal-{mode}")
    url = f"http://{portal.NAMES[0]}/generate_204"
    used_up = portal.portal(methods_lab, PRIMARY, mode)
    ev = office.wait_event("wan.portal", since=used_up.t_start, timeout=DEADLINE)
    assert ev["wan"] == PRIMARY and ev["prev"] == "up"
    # where it was sent: the redirect's Location, or the probed URL served in place
    assert ev["url"] == (portal.PORTAL_URL if mode == "portal" else url)
    fo = office.wait_event("policy.failover", since=used_up.t_start, timeout=DEADLINE)
    assert (fo["cause"], fo["to"], fo["reason"]) == (PRIMARY, BACKUP, "portal")
    st = office.wait_active(BACKUP, timeout=DEADLINE)
    primary = wan(st, PRIMARY)
    assert primary["state"] == "portal" and not primary["carrying"]
    assert primary["portal_url"] == ev["url"]  # status names where the web is sent
    # the lower layers still answer: no ICMP, tcp or dns target is silent, none is down
    assert "silent" not in primary["targets"].values(), primary["targets"]
    assert not office.events(since=used_up.t_start, names=("wan.down",))
    if mode == "page":
        return
    topped_up = portal.clear(methods_lab, PRIMARY, "portal")
    up = office.wait_event("wan.up", since=topped_up.t_start, timeout=DEADLINE)
    assert up["wan"] == PRIMARY and up["prev"] == "portal"
    office.wait_active(PRIMARY, timeout=DEADLINE)  # after its hold
