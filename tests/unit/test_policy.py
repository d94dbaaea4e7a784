"""Policy: uplink states -> Intent, for failover and loadbalance."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanwatch.config import Config, load, loads
from wanwatch.engine.intent import Health, Intent
from wanwatch.engine.policy import decide, plan_for

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"
UP, DOWN, DEG, UNK = Health.UP, Health.DOWN, Health.DEGRADED, Health.UNKNOWN


@pytest.fixture(scope="module")
def office() -> Config:
    return load(OFFICE)


def three(mode: str = "failover", priorities: tuple[int, int, int] = (1, 2, 2)) -> Config:
    wans = "\n".join(
        f"""  - name: W{i}
    interface: eth{i}
    gateway: 10.0.{i}.1
    address: 10.0.{i}.2/24
    priority: {p}
    weight: {i + 1}
    probe: {{targets: [198.51.100.{i + 1}]}}"""
        for i, p in enumerate(priorities)
    )
    return loads(f"wans:\n{wans}\nnat: {{masquerade: false}}\npolicy: {{mode: {mode}}}\n")


def state(**health: Health) -> tuple[dict[str, Health], dict[str, bool]]:
    return dict(health), {n: True for n in health}


def test_failover_takes_the_best_priority(office: Config) -> None:
    h, p = state(**{"INET-UTAMA": UP, "BACKUP-INET": UP})
    intent = decide(office, h, p, None)
    assert intent.active == ("INET-UTAMA",) and not intent.stale
    assert intent.buckets == ()


def test_failover_moves_to_backup_and_flushes_the_dead_one(office: Config) -> None:
    intent = decide(office, {"INET-UTAMA": DOWN, "BACKUP-INET": UP}, {"BACKUP-INET": True}, None)
    assert intent.active == ("BACKUP-INET",)
    assert intent.flush == ("INET-UTAMA",)
    assert intent.uplink("INET-UTAMA").carrying is False
    assert intent.uplink("BACKUP-INET").carrying is True


def test_ties_break_by_config_order() -> None:
    cfg = three(priorities=(3, 2, 2))
    h, p = state(W0=UP, W1=UP, W2=UP)
    assert decide(cfg, h, p, None).active == ("W1",)


def test_preferred_beats_degraded_beats_held() -> None:
    cfg = three(priorities=(1, 2, 3))
    held = {"W0": False, "W1": True, "W2": True}
    # W0 is up but in its hold; W1 degraded; W2 up and preferred: W2 wins
    assert decide(cfg, {"W0": UP, "W1": DEG, "W2": UP}, held, None).active == ("W2",)
    # no preferred UP: the degraded one beats the held one
    assert decide(cfg, {"W0": UP, "W1": DEG, "W2": DOWN}, held, None).active == ("W1",)
    # nothing else: the held one is better than nothing
    assert decide(cfg, {"W0": UP, "W1": DOWN, "W2": DOWN}, held, None).active == ("W0",)


def test_unknown_is_not_usable() -> None:
    cfg = three()
    intent = decide(cfg, {"W0": UNK, "W1": UP, "W2": DOWN}, {"W1": True}, None)
    assert intent.active == ("W1",)


def test_nothing_usable_keeps_previous_and_is_stale(office: Config) -> None:
    before = decide(office, {"INET-UTAMA": DOWN, "BACKUP-INET": UP}, {"BACKUP-INET": True}, None)
    after = decide(office, {"INET-UTAMA": DOWN, "BACKUP-INET": DOWN}, {}, before)
    assert after.stale and after.active == ("BACKUP-INET",)
    # the kept uplink is not flushed: its flows may come back with it
    assert after.flush == ("INET-UTAMA",)


def test_nothing_usable_without_previous_takes_the_best_priority(office: Config) -> None:
    intent = decide(office, {"INET-UTAMA": DOWN, "BACKUP-INET": DOWN}, {}, None)
    assert intent.stale and intent.active == ("INET-UTAMA",)


def test_loadbalance_best_tier_carries_with_buckets() -> None:
    cfg = three("loadbalance", (1, 1, 2))
    h, p = state(W0=UP, W1=UP, W2=UP)
    intent = decide(cfg, h, p, None)
    assert intent.active == ("W0", "W1")
    assert sorted(intent.buckets) == ["W0", "W1", "W1"]  # weights 1 and 2
    h["W0"] = DOWN
    intent = decide(cfg, h, p, intent)
    assert intent.active == ("W1",) and intent.buckets == ("W1",)
    h["W1"] = DOWN
    intent = decide(cfg, h, p, intent)
    assert intent.active == ("W2",) and intent.buckets == ("W2",) and not intent.stale
    h["W2"] = DOWN
    intent = decide(cfg, h, p, intent)
    assert intent.stale and intent.active == ("W2",) and intent.buckets == ("W2",)


def test_every_field_filled(office: Config) -> None:
    intent = plan_for(office, set())
    assert intent.mode == "failover"
    assert intent.classifier == "both-addresses"
    assert intent.masquerade == ("ether1", "ether2")
    assert [lan.interface for lan in intent.lans] == ["ether3", "wlan1"]
    for i, (u, w) in enumerate(zip(intent.uplinks, office.wans, strict=True)):
        assert u.name == w.name and u.interface == w.interface and u.gateway == w.gateway
        assert u.address == w.address and u.priority == w.priority and u.weight == w.weight
        assert u.slot == i
        assert u.probe_targets == w.probe.addresses
        assert u.health is UP
    assert intent.flush == ()
    assert intent.to_json()["primary"] == "INET-UTAMA"


def test_masquerade_off() -> None:
    assert decide(three(), *state(W0=UP, W1=UP, W2=UP), None).masquerade == ()


def test_plan_for_down(office: Config) -> None:
    intent = plan_for(office, {"INET-UTAMA"})
    assert intent.active == ("BACKUP-INET",) and intent.flush == ("INET-UTAMA",)
    everything = plan_for(office, {"INET-UTAMA", "BACKUP-INET"})
    assert everything.stale and everything.active == ("INET-UTAMA",)


def test_previous_from_an_older_config_is_not_reused(office: Config) -> None:
    other = plan_for(three(), set())
    intent: Intent = decide(office, {"INET-UTAMA": DOWN, "BACKUP-INET": DOWN}, {}, other)
    assert intent.stale and intent.active == ("INET-UTAMA",)
