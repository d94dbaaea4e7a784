"""Operator controls (disable/drain/enable) and the progress that status shows, in the engine.

Virtual time through the simulator, as in test_engine_scenarios.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wanwatch.config import Config, load
from wanwatch.engine.intent import Admin, Health
from wanwatch.engine.sim import LinkModel, Simulator, first_after

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"
P, B = "INET-UTAMA", "BACKUP-INET"


@pytest.fixture(scope="module")
def office() -> Config:
    return load(OFFICE)


def settled(cfg: Config, **links: LinkModel) -> Simulator:
    sim = Simulator(cfg, {P: links.get("primary", LinkModel(0.045)), B: LinkModel(0.012)})
    sim.run_until(30)
    assert sim.engine.intent().active == (P,)
    return sim


@pytest.mark.parametrize(
    ("admin", "flushed"), [(Admin.DISABLED, (P,)), (Admin.DRAIN, ())], ids=["disable", "drain"]
)
def test_a_disabled_or_drained_primary_carries_no_new_connections(
    office: Config, admin: Admin, flushed: tuple[str, ...]
) -> None:
    sim = settled(office)
    events = sim.engine.set_admin(P, admin, sim.now)
    assert events[0].name == ("wan.disabled" if admin is Admin.DISABLED else "wan.drained")
    fo = first_after(events, "policy.failover", 0)
    assert fo is not None and fo.fields["reason"] == admin.value and fo.fields["detect_ms"] is None
    intent = sim.engine.intent()
    assert intent.active == (B,) and intent.flush == flushed and not intent.stale
    assert intent.uplink(P).admin is admin and intent.uplink(B).admin is Admin.ENABLED
    # probes go on: the admin sees its health while it is out of service
    sim.run_until(60)
    status = {s.name: s for s in sim.engine.status(sim.now)}
    assert status[P].state is Health.UP and status[P].admin is admin
    assert sim.engine.intent().active == (B,)
    assert sim.engine.set_admin(P, admin, sim.now) == []  # already so: nothing happens


def test_enable_gives_the_uplink_back_to_its_probes(office: Config) -> None:
    sim = settled(office)
    sim.engine.set_admin(P, Admin.DISABLED, sim.now)
    events = sim.engine.set_admin(P, Admin.ENABLED, sim.now)
    assert [e.name for e in events] == ["wan.enabled", "policy.failback"]
    assert sim.engine.intent().active == (P,) and sim.engine.admin() == {}


def test_disabling_every_uplink_leaves_nothing_active(office: Config) -> None:
    sim = settled(office)
    sim.engine.set_admin(P, Admin.DISABLED, sim.now)
    sim.engine.set_admin(B, Admin.DRAIN, sim.now)
    intent = sim.engine.intent()
    assert intent.active == () and intent.stale and intent.flush == (P,)


def test_a_down_backup_is_not_used_when_the_primary_is_disabled(office: Config) -> None:
    sim = Simulator(office, {P: LinkModel(0.045), B: LinkModel(0.012, outages=[(20, 999)])})
    sim.run_until(30)
    sim.engine.set_admin(P, Admin.DISABLED, sim.now)
    intent = sim.engine.intent()
    # nothing usable: the last choice (the primary) may not be kept, it is disabled
    assert P not in intent.active and intent.stale


def test_unknown_uplink_is_refused(office: Config) -> None:
    sim = settled(office)
    with pytest.raises(KeyError):
        sim.engine.set_admin("NOPE", Admin.DISABLED, sim.now)


def test_reload_forgets_admin_of_removed_uplinks(office: Config) -> None:
    sim = settled(office)
    sim.engine.set_admin(B, Admin.DRAIN, sim.now)
    sim.engine.reload(office.replace(wans=office.wans[:1]), sim.now)
    assert sim.engine.admin() == {}


def test_status_shows_suspicion_then_rising_then_hold(office: Config) -> None:
    sim = settled(office, primary=LinkModel(0.045, outages=[(40.0, 50.0)]))
    seen: dict[str, dict[str, float]] = {}
    t = 40.0
    while t < 80.0:
        sim.run_until(t)
        s = next(x for x in sim.engine.status(sim.now) if x.name == P)
        if s.phase is not None and s.phase not in seen:
            seen[s.phase] = s.progress
        t += 0.005
    assert list(seen) == ["suspect", "rising", "hold"]
    assert 1 <= seen["suspect"]["lost"] < seen["suspect"]["needed"]
    assert seen["rising"]["good"] == 1 and seen["rising"]["needed"] == office.monitor.up_after
    assert 0 < seen["hold"]["hold_left_s"] <= office.monitor.hold
    down = first_after(sim.events, "wan.down", 40, wan=P)
    assert down is not None and down.fields["needed"] == seen["suspect"]["needed"]
