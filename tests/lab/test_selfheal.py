"""The fault matrix: the real daemon in the lab survives what a real router lives through.

One lab and one daemon serve the module (the ``bed``); before each test the
``healthy`` fixture makes sure the daemon runs, no fault is left, the primary
carries and wanwatch's kernel footprint is whole (restarting the daemon if a
failed test left it broken), so the faults stay independent. The clock test
alone runs the daemon under libfaketime (monotonic time untouched), so that it
can move the daemon's wall clock without touching the host's.

Every check is on real state: the object back in the kernel (read with ip/nft,
not taken from an event), a new TCP connection answered through the expected
ISP, a DHCP lease served, a long-lived flow still exchanging bytes. Waits poll,
bounded by generous deadlines; the times are figures for bench/faults.py.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wanwatch.config import Config
from wanwatch.daemon.control import MAX_CLIENTS, request
from wanwatch.errors import LabError
from wanwatch.lab import faults, netns
from wanwatch.lab.chaos import clock, harness, injected, kernel, kills, readback, reload, sockets
from wanwatch.lab.office import Office
from wanwatch.lab.poll import until
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import first_new_connection

pytestmark = pytest.mark.lab
# Tests that assert no connection failed give each attempt time for one SYN
# retransmission (the kernel's initial RTO is 1 s, RFC 6298): a single lost SYN
# or a busy CI machine is not broken forwarding, which would still fail them.
ZERO_LOSS_TIMEOUT = 3.0

PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"  # examples/office.yaml, priority 1 and 2
CLIENT, DHCP_LAN = "ether3", "WIFI"  # a static client for traffic; the other LAN takes leases
HOLD, MAX_HOLD = 1.0, 3.0  # short, so failbacks (flap damping included) fit the module's time
REPAIR_DEADLINE = 15.0  # the hard limit for a drift repair
SWITCH_DEADLINE = 10.0  # a failover takes about 1 s; this only bounds a broken one
FAILBACK_DEADLINE = 30.0  # up_after good probes + a damped hold, with slack for load


# --------------------------------------------------------------------------- the test bed


@pytest.fixture(scope="module")
def bed(office: Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Testbed]:
    """The module's lab and daemon; stopped and taken down (by name) whatever happens."""
    lab = Lab(
        office,
        tag=netns.run_tag(),
        state_root=tmp_path_factory.mktemp("selfheal-labs"),
        remove_state=False,  # the daemon's log stays for a failed run; pytest prunes it
    )
    lab.up()
    tb: harness.Testbed | None = None
    try:
        lab.client_static(CLIENT)
        config = harness.office_config(lab, "selfheal", hold=HOLD, max_hold=MAX_HOLD)
        tb = harness.Testbed(lab, config, PRIMARY)
        tb.heal(FAILBACK_DEADLINE)
        assert tb.baseline is not None
        assert tb.baseline.nft is not None and tb.baseline.routes and tb.baseline.rules
        assert tb.baseline.forwarding
        yield tb
    finally:
        try:
            if tb is not None and tb.office.daemon is not None:
                tb.office.stop()
        finally:
            lab.down()
        assert not set(lab.namespaces) & netns.existing()


@pytest.fixture
def healthy(bed: harness.Testbed) -> Iterator[harness.Testbed]:
    """Each test starts on a running daemon, no fault, the primary carrying, the footprint
    whole (a daemon a failed test left broken is restarted); afterwards faults are
    cleared."""
    bed.heal(FAILBACK_DEADLINE)
    try:
        yield bed
    finally:
        faults.clear_all(bed.lab)


def repaired(office: Office, since: float, word: str) -> list[dict[str, Any]]:
    """The ``drift.repaired`` events since ``since`` whose object names ``word``."""
    found = office.events(since=since, names=("drift.repaired",))
    return [e for e in found if word in str(e.get("object", ""))]


# --------------------------------------------------------------------------- kernel drift


def _drift(bed: harness.Testbed, inject: Callable[[Lab], injected.Injected], word: str) -> None:
    """Inject a drift under a running client; the footprint comes back whole in the
    kernel, one ``drift.repaired`` event names it, traffic flows through the primary
    again and the long-lived flow through it survives."""
    lab, office = bed.lab, bed.office
    with harness.Watch(lab, CLIENT) as watch:
        fault = inject(lab)
        assert bed.baseline is not None
        whole_at = readback.wait_whole(lab, bed.baseline, fault.t_done + REPAIR_DEADLINE)
        missing = bed.baseline.missing(readback.Footprint.read(lab))
        assert whole_at is not None, f"not repaired: {missing}"
        hit = watch.loop.first_success(
            after=whole_at, via=PRIMARY, deadline=time.monotonic() + SWITCH_DEADLINE
        )
        assert hit is not None, "no new connection through the primary after the repair"
        flow_n = watch.exchanges()
        until(lambda: watch.exchanges() >= flow_n + 5, 10, "the long-lived flow to go on")
    seen = watch.outcome()
    events = repaired(office, fault.t_start, word)
    assert events, office.events(since=fault.t_start)
    assert all(isinstance(e.get("after_ms"), int | float) for e in events), events
    assert seen.flow_survived, f"the long-lived flow broke: {seen.flow}"
    assert seen.flow is not None and seen.flow.exchanges >= flow_n + 5, seen.flow
    st = office.status()
    assert st["active"] == [PRIMARY] and st["applied"] is True
    assert st["failed_steps"] == {}


def test_nft_table_deleted_is_restored(healthy: harness.Testbed) -> None:
    _drift(healthy, kernel.delete_nft_table, "nft")


def test_nft_flush_ruleset_restores_our_table(healthy: harness.Testbed) -> None:
    _drift(healthy, kernel.flush_ruleset, "nft")


def test_routes_flushed_from_every_table_are_restored(healthy: harness.Testbed) -> None:
    _drift(healthy, kernel.flush_routes, "route")


def test_rules_deleted_are_restored(healthy: harness.Testbed) -> None:
    _drift(healthy, kernel.delete_rules, "rule")


def test_ip_forward_turned_off_is_restored(healthy: harness.Testbed) -> None:
    _drift(healthy, kernel.forwarding_off, "ip_forward")


def test_nft_table_deleted_again_and_again_is_contested(healthy: harness.Testbed) -> None:
    """Another program keeps deleting our table: after a few repairs the daemon stops
    fighting, says so (event and status), and the restart in ``healthy`` resets it."""
    lab, office = healthy.lab, healthy.office
    t0 = time.monotonic()
    deletions = 0
    contested: list[dict[str, Any]] = []
    deadline = t0 + 60
    while not contested and deletions < 20 and time.monotonic() < deadline:
        if readback.nft_table(lab) is not None:
            # It can go between the read-back and the delete (nft: ENOENT): none this round.
            with contextlib.suppress(LabError):
                kernel.delete_nft_table(lab)
                deletions += 1
        time.sleep(0.05)  # the other program's pace: the fault under test, bounded above
        contested = office.events(since=t0, names=("drift.contested",))
    assert contested, f"no drift.contested after {deletions} deletions"
    ev = contested[0]
    assert "nft" in str(ev["object"]) and ev["repairs"] >= 2 and ev["backoff_s"] > 0, ev
    assert deletions >= 2
    st = office.status()
    assert any("nft" in str(o) for o in st["contested"]), st["contested"]
    assert office.daemon is not None and office.daemon.alive()


# --------------------------------------------------------------------------- services


def test_dnsmasq_sigkilled_then_a_lan_client_gets_a_lease(healthy: harness.Testbed) -> None:
    lab, office = healthy.lab, healthy.office
    old = office.status()["dnsmasq"]["pid"]
    kill = kills.kill_dnsmasq(lab, office)
    client = lab.dhcp_client(DHCP_LAN, once=True, tries=15)
    try:
        lease = client.wait_lease(kill.t_done + 20, after=kill.t_done)
    finally:
        client.stop()
    net = lab.client(DHCP_LAN).network
    assert net is not None and lease.address.ip in net
    st = office.status()
    assert st["dnsmasq"]["running"] and st["dnsmasq"]["pid"] not in (None, old)
    assert not netns.alive(old, None)


# --------------------------------------------------------------------------- uplinks


def test_both_uplinks_silent_then_backup_returns_and_carries(
    healthy: harness.Testbed,
) -> None:
    lab, office = healthy.lab, healthy.office
    faults.blackhole(lab, PRIMARY)
    faults.blackhole(lab, BACKUP)
    office.wait_for(
        lambda st: all(w["state"] == "down" for w in st["wans"]),
        SWITCH_DEADLINE,
        "both uplinks down",
    )
    with harness.Watch(lab, CLIENT, flow=False) as watch:
        back = faults.clear(lab, BACKUP)
        hit = watch.loop.first_success(
            after=back.t_start, via=BACKUP, deadline=time.monotonic() + SWITCH_DEADLINE
        )
    assert hit is not None, "no traffic through the backup after it came back"
    # With both down the last choice is kept (stale), which may already be the backup:
    # wait for the backup to be judged up again, not only for it to carry.
    office.wait_for(
        lambda st: (
            st["active"] == [BACKUP]
            and {w["name"]: w["state"] for w in st["wans"]} == {PRIMARY: "down", BACKUP: "up"}
        ),
        FAILBACK_DEADLINE,
        "the backup up and carrying, the primary down",
    )
    # Nothing went out through the dead primary meanwhile.
    assert not [a for a in watch.outcome().attempts if a.t0 >= back.t_start and a.isp == PRIMARY]
    faults.clear(lab, PRIMARY)
    healthy.settled(FAILBACK_DEADLINE)


def test_carrier_flapping_ends_on_primary_after_its_hold(healthy: harness.Testbed) -> None:
    """5 carrier losses in 10 s on the primary's ISP-side veth, then stable: the primary
    carries again once its (flap-damped) hold has passed, not before."""
    lab, office = healthy.lab, healthy.office
    t0 = time.monotonic()
    flap = faults.flap(lab, PRIMARY, down_s=1.0, up_s=1.0, cycles=5, mode="carrier")
    changes = flap.wait(30)
    assert [c["ev"] for c in changes] == ["down", "up"] * 5
    stable = changes[-1]["t_done"]
    assert stable - changes[0]["t_start"] < 10.5
    st = healthy.settled(FAILBACK_DEADLINE)
    downs = [e for e in office.events(since=t0, names=("wan.down",)) if e["wan"] == PRIMARY]
    assert len(downs) >= 2 and all(d["reason"] == "carrier" for d in downs), downs
    ups = [e for e in office.events(since=stable, names=("wan.up",)) if e["wan"] == PRIMARY]
    preferred = office.events(since=stable, names=("wan.preferred",))
    assert ups and preferred, office.events(since=stable)
    # Damped: the hold after repeated flaps is longer than the configured one.
    assert ups[-1]["hold_s"] > HOLD
    assert preferred[-1]["at"] - ups[-1]["at"] >= ups[-1]["hold_s"] - 0.1
    assert st["active"] == [PRIMARY]
    now = time.monotonic()
    hit = first_new_connection(lab, CLIENT, after=now, via=PRIMARY, deadline=now + SWITCH_DEADLINE)
    assert hit is not None


# --------------------------------------------------------------------------- the daemon


def test_control_socket_abuse_keeps_status_and_routing(healthy: harness.Testbed) -> None:
    """1 MiB of junk without a newline, a line that is not JSON, 100 concurrent status
    callers and one client that never finishes: the junk and the bad line get an error
    answer, most callers their status; a normal client polling all along gets its
    status; traffic keeps flowing; the daemon stays the same process."""
    lab, office = healthy.lab, healthy.office
    pid = office.status()["pid"]
    with harness.Watch(lab, CLIENT, timeout=ZERO_LOSS_TIMEOUT) as watch:
        t0 = time.monotonic()
        abuse = sockets.abuse_control_socket(office, 100)
    seen = watch.outcome()
    assert "bad request" in abuse.junk, abuse.junk
    assert "bad request" in abuse.malformed, abuse.malformed
    served = [a for a in abuse.storm if isinstance(a, float)]
    assert len(served) >= 50, f"{len(served)} of 100 callers served"
    assert not abuse.failures, abuse.failures[:5]
    assert len(abuse.answered) >= 5 and all(a == [PRIMARY] for a in abuse.active)
    assert office.status()["pid"] == pid
    assert seen.failed(t0) == [], seen.failed(t0)[:3]
    assert seen.flow_survived


def test_control_socket_crowd_beyond_the_cap_is_told_busy_not_reset(
    healthy: harness.Testbed,
) -> None:
    """With MAX_CLIENTS clients connected and silent, more `status` callers (wanwatch's
    own client) each get the daemon's explicit "busy" answer -- not a reset, not a
    timeout; once the crowd leaves, status is answered again."""
    office = healthy.office
    with contextlib.ExitStack() as crowd:
        for _ in range(MAX_CLIENTS):
            crowd.enter_context(sockets.stalled_client(office.socket))
        late = sockets.status_storm(office.socket, 10)
    assert all(sockets.busy(a) for a in late), late
    assert office.status()["active"] == [PRIMARY]


def test_sighup_with_a_broken_config_keeps_the_old_one_routing(healthy: harness.Testbed) -> None:
    lab, office = healthy.lab, healthy.office
    path = office.config_path
    with harness.Watch(lab, CLIENT, timeout=ZERO_LOSS_TIMEOUT) as watch:
        hup, good = reload.sighup_broken(office)
        try:
            rejected = office.wait_event("config.rejected", since=hup.t_start)
            assert "wans[1].gateway" in str(rejected["first"])
            st = office.status()
            assert any(line.startswith("config.rejected") for line in st["events"])
            assert st["active"] == [PRIMARY] and all(w["state"] == "up" for w in st["wans"])
            # Probes and connections go on under the old config: those of the next 0.5 s.
            watch.loop.settled(before=rejected["at"] + 0.5, timeout=10)
        finally:
            path.write_text(good)
    seen = watch.outcome()
    assert office.events(since=hup.t_start, names=("config.reloaded", "route.switch")) == []
    assert seen.failed(hup.t_start) == [] and seen.flow_survived
    assert all(a.isp == PRIMARY for a in seen.attempts if a.ok)


def test_sigkill_then_restart_keeps_traffic_and_adopts(healthy: harness.Testbed) -> None:
    """SIGKILL: the kernel state left behind keeps forwarding through the gap; the new
    daemon adopts it (no route switch) and the long-lived flow never notices."""
    lab, office = healthy.lab, healthy.office
    assert office.daemon is not None
    pid = office.daemon.pid
    with harness.Watch(lab, CLIENT, timeout=ZERO_LOSS_TIMEOUT) as watch:
        killed = time.monotonic()
        office.stop(signal.SIGKILL)
        assert not netns.alive(pid, None)
        gap = watch.loop.first_success(
            after=time.monotonic(), via=PRIMARY, deadline=time.monotonic() + SWITCH_DEADLINE
        )
        assert gap is not None, "no new connection while no daemon ran"
        healthy.start()
        ready = time.monotonic()
        healthy.settled(FAILBACK_DEADLINE)
        watch.loop.first_success(after=ready, via=PRIMARY, deadline=ready + SWITCH_DEADLINE)
    seen = watch.outcome()
    assert seen.failed(killed) == [], seen.failed(killed)[:3]
    assert seen.flow_survived
    assert office.events(names=("route.switch", "route.withdraw")) == []
    start = office.events(names=("backend.start",))[0]
    assert start["nft"] == "adopted"
    assert healthy.whole(5.0)


def test_wall_clock_jump_changes_no_uplink_state(healthy: harness.Testbed) -> None:
    """The daemon's wall clock jumps +1 h, then -1 h, then back (libfaketime, its process
    only): no uplink changes state, no failover, probes keep being answered with sane
    RTTs and loss, traffic and the long-lived flow carry on."""
    lab, office = healthy.lab, healthy.office
    bad = ("wan.down", "wan.degraded", "wan.up", "policy.failover", "route.switch")
    healthy.restart(faked=True, timeout=FAILBACK_DEADLINE)
    try:
        with harness.Watch(lab, CLIENT, timeout=ZERO_LOSS_TIMEOUT) as watch:
            t0 = time.monotonic()
            spells = clock.clock_spells(healthy.office, healthy.clock, ("+1h", "-1h", "+0"), 3.0)
        seen = watch.outcome()
        events = office.events(since=t0, names=bad)
    finally:
        healthy.restart(faked=False, timeout=FAILBACK_DEADLINE)
    for spell in spells:
        assert spell.states == {"up"} and spell.actives == {(PRIMARY,)}, spell
        # A wall clock leaking into the RTT would be off by 3.6e6 ms; the veth's is well
        # under 1 ms, plus what libfaketime's own stalls add (up to ~80 ms seen here).
        assert spell.max_rtt_ms is not None and spell.max_rtt_ms < 1000, spell
        assert spell.max_loss_pct <= 5.0, spell
        # Replies keep coming (6 in 3 s at the default interval; libfaketime's own
        # stall after a jump, see clock.clock_spells, can cost a few).
        assert all(n >= 1 for n in spell.replies.values()), spell
    assert events == []
    assert seen.failed(t0) == [] and seen.flow_survived


# --------------------------------------------------------------------------- operator controls


def _admin(office: Office, wan: str) -> str:
    return next(str(w["admin"]) for w in office.status()["wans"] if w["name"] == wan)


@pytest.mark.parametrize("drain", [True, False], ids=["drain", "disable"])
def test_disable_primary_moves_new_connections_to_backup(
    healthy: harness.Testbed, drain: bool
) -> None:
    """`disable` of the carrying primary: new connections go through the backup; with
    --drain the primary's existing flow carries on, without it that flow is reset. The
    choice survives a restart on the same state dir; `enable` gives the primary back."""
    lab, office = healthy.lab, healthy.office
    try:
        with harness.Watch(lab, CLIENT) as watch:
            t = time.monotonic()
            answer = request(office.socket, "disable", wan=PRIMARY, drain=drain)
            assert answer["admin"] == ("drain" if drain else "disabled") and answer["saved"]
            hit = watch.loop.first_success(
                after=t, via=BACKUP, deadline=time.monotonic() + SWITCH_DEADLINE
            )
            assert hit is not None, "no new connection through the backup"
            moved = hit.t0
            if drain:
                n = watch.exchanges()
                until(lambda: watch.exchanges() >= n + 10, 10, "the drained flow to go on")
            else:
                until(watch.flow_broken, 15, "the flow to be reset")
            until(
                lambda: sum(a.t0 > moved + 0.2 for a in watch.loop.attempts) >= 5,
                10,
                "new connections after the move",
            )
        seen = watch.outcome()
        assert seen.flow is not None and seen.flow.isp == PRIMARY
        assert seen.flow_survived is drain, seen.flow
        late = [a for a in seen.attempts if a.t0 > moved + 0.2]
        assert late and all(a.ok and a.isp == BACKUP for a in late), late[:3]
        st = office.status()
        assert st["active"] == [BACKUP] and _admin(office, PRIMARY) == answer["admin"]

        office.stop()
        healthy.start(active=BACKUP)
        assert _admin(office, PRIMARY) == answer["admin"]
        now = time.monotonic()
        hit = first_new_connection(lab, CLIENT, after=now, deadline=now + SWITCH_DEADLINE)
        assert hit is not None and hit.isp == BACKUP
    finally:
        # The choice is kept in the state dir: undo it even if the daemon died meanwhile.
        if office.daemon is None or not office.daemon.alive():
            healthy.start(active=BACKUP)
        request(office.socket, "enable", wan=PRIMARY)
    healthy.settled(FAILBACK_DEADLINE)
    assert _admin(office, PRIMARY) == "enabled"
