"""Data quotas: config, the ledger on a virtual clock, persistence, routing, hooks, output."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from wanwatch.cli import main
from wanwatch.config import Config, loads
from wanwatch.config.model import Quota
from wanwatch.daemon.clock import Clock
from wanwatch.daemon.hooks import HOOK_FOR_EVENT, expand
from wanwatch.daemon.quota import QUOTA_FILE, READ_EVERY, Quotas
from wanwatch.engine import quota as q
from wanwatch.engine.core import Engine
from wanwatch.engine.events import Event
from wanwatch.engine.intent import Health
from wanwatch.engine.policy import decide
from wanwatch.errors import ConfigError
from wanwatch.status import Usage

GB = 10**9
A, B = "PRIMARY", "BACKUP-SIM"


OFFICE = f"""wans:
  - name: {A}
    interface: eth1
    address: 192.168.0.2/24
    gateway: 192.168.0.1
    probe: {{targets: [198.51.100.1]}}
  - name: {B}
    interface: eth2
    address: 192.168.18.2/24
    gateway: 192.168.18.1
    priority: 2
    metered: true
    probe: {{targets: [198.51.100.2]}}
    quota: QUOTA
"""


def office(quota: str = "{limit: 10GB, warn: 80%}") -> Config:
    return loads(OFFICE.replace("QUOTA", quota))


def at(year: int, month: int, day: int, hour: int = 12) -> float:
    """Local wall time, as the periods are."""
    return datetime(year, month, day, hour).timestamp()


class Wall:
    """A virtual clock: monotonic and wall seconds moved together by ``advance``."""

    def __init__(self, wall: float) -> None:
        self.mono, self.wall = 1000.0, wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds

    def clock(self) -> Clock:
        return Clock(lambda: self.mono, lambda: self.wall)


# --------------------------------------------------------------------------- config


def test_a_quota_reads_sizes_and_shares_with_defaults() -> None:
    w = office("{limit: 2.5GB, warn: 0.9}").wan(B)
    assert w.quota == Quota(limit=2_500_000_000, warn=0.9)
    assert w.quota.period == "monthly" and w.quota.day == 1
    assert w.quota.exhausted == "last_resort"
    assert office("{limit: 1GiB, period: prepaid, exhausted: off}").wan(B).quota == Quota(
        limit=2**30, period="prepaid", exhausted="off"
    )


def test_quota_mistakes_are_reported_at_their_line_together() -> None:
    with pytest.raises(ConfigError) as err:
        office("{limit: lots, period: prepaid, reset_day: 3, warn: 120%, exhausted: maybe}")
    problems = err.value.problems
    assert any("wans[1].quota.limit: not a size: 'lots'" in p for p in problems)
    assert any("wans[1].quota.warn: must be at most 1.0" in p for p in problems)
    assert any("wans[1].quota.exhausted: must be one of" in p for p in problems)
    assert all(":14:" in p for p in problems)
    with pytest.raises(ConfigError) as err:
        office("{limit: 1GB, period: prepaid, reset_day: 3}")
    assert "wans[1].quota.reset_day: a prepaid quota has no reset day" in err.value.problems[0]


# --------------------------------------------------------------------------- the ledger


def test_a_monthly_period_starts_on_its_reset_day_and_on_the_last_day_of_short_months() -> None:
    assert q.period_start(at(2026, 12, 7), 15) == at(2026, 11, 15, 0)
    assert q.period_start(at(2026, 12, 15, 0), 15) == at(2026, 12, 15, 0)
    assert q.period_end(at(2026, 12, 15, 0), 15) == at(2027, 1, 15, 0)
    assert q.period_start(at(2027, 3, 1), 31) == at(2027, 2, 28, 0)
    assert q.period_end(at(2027, 1, 31, 0), 31) == at(2027, 2, 28, 0)


def count(quota: Quota, ledger: q.Ledger, total: int, when: float) -> tuple[q.Ledger, list[str]]:
    new, evs = q.account(B, quota, ledger, total=total, boot="b1", now=when, mono=0.0)
    return new, [e.name for e in evs]


def test_the_period_rolls_over_on_reset_day_and_warns_once_per_period() -> None:
    quota = Quota(limit=10 * GB, warn=0.8, reset_day=15)
    ledger = q.opened(quota, at(2026, 12, 7))
    ledger, names = count(quota, ledger, 5 * GB, at(2026, 12, 7))
    assert ledger.used == 0 and names == []  # the first reading only sets where we start
    ledger, names = count(quota, ledger, 13 * GB, at(2026, 12, 10))
    assert ledger.used == 8 * GB and names == ["wan.quota_warning"]
    ledger, names = count(quota, ledger, 14 * GB, at(2026, 12, 11))
    assert ledger.used == 9 * GB and names == []  # warned once
    ledger, names = count(quota, ledger, 15 * GB, at(2026, 12, 12))
    assert ledger.exhausted and names == ["wan.quota_exhausted"]
    ledger, names = count(quota, ledger, 16 * GB, at(2026, 12, 14))
    assert names == [] and ledger.used == 11 * GB
    # the 15th: a new period, nothing counted, no level reached
    ledger, names = count(quota, ledger, 16 * GB + 5, at(2026, 12, 15, 0))
    assert names == ["wan.quota_reset"]
    assert (ledger.used, ledger.warned, ledger.exhausted) == (0, False, False)
    assert ledger.start == at(2026, 12, 15, 0)
    ledger, names = count(quota, ledger, 25 * GB, at(2026, 12, 20))
    assert names == ["wan.quota_warning"]  # once again in the new period


def test_a_counter_that_went_backwards_or_belongs_to_another_boot_restarts_from_its_value() -> None:
    quota = Quota(limit=10 * GB)
    ledger = q.Ledger(start=at(2026, 12, 1, 0), used=100, last=5000, boot="b1")
    ledger, _ = count(quota, ledger, 300, at(2026, 12, 7))  # our table was created anew
    assert (ledger.used, ledger.last) == (400, 300)
    new, _ = q.account(B, quota, ledger, total=900, boot="b2", now=at(2026, 12, 7), mono=0.0)
    assert new.used == 400 + 900  # a reboot: the whole new value is new bytes


def test_a_prepaid_quota_never_rolls_over_and_a_reset_starts_it_again() -> None:
    quota = Quota(limit=GB, period="prepaid")
    ledger = q.Ledger(start=at(2026, 1, 1), used=GB - 1, last=10, boot="b1")
    ledger, names = count(quota, ledger, 20, at(2027, 6, 1))
    assert names == ["wan.quota_warning", "wan.quota_exhausted"]
    assert q.ends(quota, ledger) is None
    fresh, ev = q.reset(B, quota, ledger, at(2027, 6, 2), 0.0)
    assert ev.name == "wan.quota_reset" and ev.fields["reason"] == "operator"
    assert (fresh.used, fresh.last, fresh.exhausted, fresh.warned) == (0, 20, False, False)


def test_a_raised_limit_lifts_an_exhaustion() -> None:
    ledger = q.Ledger(start=0.0, used=5 * GB, last=0, boot="b1", warned=True, exhausted=True)
    lifted, evs = q.judged(B, Quota(limit=20 * GB), ledger, 0.0)
    assert not lifted.exhausted and not lifted.warned and evs == []


# --------------------------------------------------------------------------- routing


def test_an_exhausted_last_resort_uplink_carries_only_when_nothing_else_is_up() -> None:
    cfg = office()
    up = {A: Health.UP, B: Health.UP}
    pref = {A: True, B: True}
    lb = cfg.replace(policy=cfg.policy.replace(mode="loadbalance"))
    assert decide(lb, up, pref, None).active == (A,)  # priority tiers: backup is spare anyway
    # an equal-priority backup with its quota used up is left out of the balance
    same = lb.replace(wans=(lb.wans[0], lb.wans[1].replace(priority=1)))
    assert decide(same, up, pref, None).active == (A, B)
    assert decide(same, up, pref, None, spent={B: "last_resort"}).active == (A,)
    down = {A: Health.DOWN, B: Health.UP}
    intent = decide(cfg, down, pref, None, spent={B: "last_resort"})
    assert intent.active == (B,) and not intent.stale and B not in intent.flush


def test_an_exhausted_off_uplink_is_never_used_and_its_connections_go() -> None:
    cfg = office("{limit: 1GB, exhausted: off}")
    intent = decide(cfg, {A: Health.DOWN, B: Health.UP}, {A: True, B: True}, None, spent={B: "off"})
    assert B not in intent.active and intent.stale and B in intent.flush


def test_the_engine_fails_over_for_a_quota_and_back_after_a_reset() -> None:
    cfg = office()
    same = cfg.replace(wans=(cfg.wans[0].replace(priority=2), cfg.wans[1].replace(priority=1)))
    engine = Engine(same, 0.0)
    for name in (A, B):
        engine.carrier(name, True, 0.0)
    t = 0.0

    def settled() -> bool:
        return all(s.state is Health.UP and s.preferred for s in engine.status(t))

    while not settled() and t < 30:  # both rise on their answers
        t += 0.5
        for req in engine.due(t):
            engine.reply(req.wan, req.seq, 0.01, t + 0.01)
        engine.tick(t + 0.02)
    assert engine.intent().active == (B,)
    evs = engine.set_spent(B, "last_resort", t + 1)
    fo = [e for e in evs if e.name == "policy.failover"]
    assert engine.intent().active == (A,)
    assert fo and fo[0].fields["reason"] == "quota" and fo[0].fields["detect_ms"] is None
    engine.set_spent(B, None, t + 2)
    assert engine.intent().active == (B,)


# --------------------------------------------------------------------------- the daemon's part


class FakeEngine:
    def __init__(self) -> None:
        self.spent: dict[str, str] = {}

    def set_spent(self, wan: str, policy: str | None, now: float) -> list[Event]:
        if policy is None:
            self.spent.pop(wan, None)
        else:
            self.spent[wan] = policy
        return []


def quotas(tmp_path: Path, wall: Wall, events: list[Event], boot: str = "b1") -> Quotas:
    return Quotas(tmp_path, events.append, wall.clock(), boot=lambda: boot)


def usage(total_in: int, total_out: int = 0) -> dict[str, Usage]:
    return {B: Usage(0, bytes_out=total_out, bytes_in=total_in)}


def test_usage_is_kept_across_restarts_without_double_count_or_loss(tmp_path: Path) -> None:
    cfg, wall, events = office(), Wall(at(2026, 12, 7)), list[Event]()
    engine = FakeEngine()
    run1 = quotas(tmp_path, wall, events)
    run1.restore(cfg, engine)
    run1.account(cfg, engine, usage(1000, 500))
    wall.advance(READ_EVERY)
    run1.account(cfg, engine, usage(3000, 1500))
    assert run1.status(cfg)[B].used == 3000
    run1.save()
    # the daemon restarts; the table stayed (a kill), its counters went on meanwhile
    wall.advance(30)
    run2 = quotas(tmp_path, wall, events)
    run2.restore(cfg, engine)
    assert run2.status(cfg)[B].used == 3000
    run2.account(cfg, engine, usage(5000, 2000))
    assert run2.status(cfg)[B].used == 3000 + 2500
    # a reboot: another boot id, the counters from zero
    run2.save()
    run3 = quotas(tmp_path, wall, events, boot="b2")
    run3.restore(cfg, engine)
    run3.account(cfg, engine, usage(700, 300))
    assert run3.status(cfg)[B].used == 5500 + 1000
    saved = json.loads((tmp_path / QUOTA_FILE).read_text())
    assert saved["uplinks"][B]["used"] == 6500 and saved["boot"] == "b2"


def test_exhaustion_reaches_the_engine_and_a_reset_lifts_it(tmp_path: Path) -> None:
    cfg, wall, events = office("{limit: 1000, warn: 50%}"), Wall(at(2026, 12, 7)), list[Event]()
    engine = FakeEngine()
    run = quotas(tmp_path, wall, events)
    run.restore(cfg, engine)
    run.account(cfg, engine, usage(0))
    run.account(cfg, engine, usage(600))
    run.account(cfg, engine, usage(1200))
    assert [e.name for e in events] == ["wan.quota_warning", "wan.quota_exhausted"]
    assert engine.spent == {B: "last_resort"}
    st = run.status(cfg)[B]
    assert (st.state, st.used, st.limit, st.period) == ("exhausted", 1200, 1000, "monthly")
    assert st.period_end is not None
    # a restart keeps the exhaustion
    run.save()
    again = FakeEngine()
    quotas(tmp_path, wall, events).restore(cfg, again)
    assert again.spent == {B: "last_resort"}
    assert run.reset(cfg, engine, B)["used"] == 0
    assert engine.spent == {} and run.status(cfg)[B].state == "ok"
    assert "error" in run.reset(cfg, engine, A)


def test_an_unreadable_quota_file_is_reported_and_counting_starts_again(tmp_path: Path) -> None:
    (tmp_path / QUOTA_FILE).write_text("{not json")
    events: list[Event] = []
    run = quotas(tmp_path, Wall(at(2026, 12, 7)), events)
    run.restore(office(), FakeEngine())
    assert [e.name for e in events] == ["quota.unreadable"]
    assert run.status(office())[B].used == 0


# --------------------------------------------------------------------------- hooks and output


def test_on_quota_gets_used_and_limit() -> None:
    ev = Event(at=1.0, name="wan.quota_exhausted", fields={"wan": B, "used": 10, "limit": 9})
    assert HOOK_FOR_EVENT["wan.quota_exhausted"] == HOOK_FOR_EVENT["wan.quota_warning"]
    assert expand(("notify", "{wan}", "{state}", "{used}/{limit}"), ev) == [
        "notify",
        B,
        "quota_exhausted",
        "10/9",
    ]


def test_check_explain_shows_the_probes_share_of_the_quota(tmp_path: Path) -> None:
    path = tmp_path / "office.yaml"
    path.write_text(OFFICE.replace("QUOTA", "{limit: 1GB}"))
    out = CliRunner().invoke(main, ["check", "--explain", "-c", str(path)])
    assert out.exit_code == 0, out.output
    assert "quota 1000 MB a month: probes take" in out.output
    path.write_text(OFFICE.replace("QUOTA", "{limit: 1GB, period: prepaid}"))
    out = CliRunner().invoke(main, ["check", "--explain", "-c", str(path)])
    assert "quota 1000 MB prepaid: probes alone would use it up in" in out.output
