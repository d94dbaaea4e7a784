"""The rules' part of the table and the batch that moves rules on a failover (pure)."""

from __future__ import annotations

from pathlib import Path

from wanwatch.config import load
from wanwatch.engine.policy import plan_for
from wanwatch.linux.nft import render, rendered_fingerprint
from wanwatch.linux.rules_nft import applied, path_update

RULES = Path(__file__).resolve().parents[2] / "examples" / "office-rules.yaml"
P, B = "INET-UTAMA", "BACKUP-INET"


def test_the_backup_dying_moves_four_rules_in_one_batch() -> None:
    cfg = load(RULES)
    up, down = plan_for(cfg, set()), plan_for(cfg, {B})
    batch = path_update(cfg, down, applied(cfg, up)).splitlines()
    assert batch == [
        "delete element inet wanwatch paths { 0x00000100 }",
        "add element inet wanwatch paths { 0x00000100 : goto block }",
        "delete element inet wanwatch paths { 0x00000200 }",
        "add element inet wanwatch paths { 0x00000200 : goto mark_1 }",
        "delete element inet wanwatch paths { 0x00000300 }",
        "add element inet wanwatch paths { 0x00000300 : goto block }",
        # bulk stays balanced, over the primary alone; the backup's sticky sources go
        "flush chain inet wanwatch lb_4",
        "add rule inet wanwatch lb_4 jhash ip saddr . ip daddr mod 1 seed 0x77616e77"
        " vmap { 0 : jump stick_4_1 }",
        "flush set inet wanwatch sticky_4_2",
    ]


def test_nothing_moved_is_no_batch_and_unknown_rewrites_all() -> None:
    cfg = load(RULES)
    up = plan_for(cfg, set())
    assert path_update(cfg, up, applied(cfg, up)) == ""
    full = path_update(cfg, up, None).splitlines()
    assert full[0] == "flush map inet wanwatch paths"
    assert sum(line.startswith("add element") for line in full) == len(cfg.rules)
    assert not any(line.startswith("delete") for line in full)


def test_the_backends_baseline_gives_each_rule_its_first_uplink() -> None:
    from wanwatch.engine.intent import intent_from_config

    cfg = load(RULES)
    baseline = render(intent_from_config(cfg), cfg)
    assert "0x00000100 : goto mark_2" in baseline  # guest: the backup, before any probe
    assert rendered_fingerprint(baseline) == rendered_fingerprint(render(plan_for(cfg, set()), cfg))


DUAL = Path(__file__).resolve().parents[1] / "golden" / "rules" / "dual-stack-rules.yaml"


def test_an_ipv6_only_failure_moves_paths6_alone() -> None:
    from wanwatch.engine.intent import Health
    from wanwatch.engine.policy import decide_families

    cfg = load(DUAL)
    up = plan_for(cfg, set())
    four = {w.name: Health.UP for w in cfg.wans}
    pref = {w.name: True for w in cfg.wans}
    lost = decide_families(cfg, (four, {**four, B: Health.DOWN}), (pref, pref), None)
    assert lost.rules == up.rules
    t = "inet wanwatch"
    assert path_update(cfg, lost, applied(cfg, up)).splitlines() == [
        f"delete element {t} paths6 {{ 0x00000100 }}",  # guest: refused, as its IPv4 is not
        f"add element {t} paths6 {{ 0x00000100 : goto block }}",
        f"delete element {t} paths6 {{ 0x00000300 }}",
        f"add element {t} paths6 {{ 0x00000300 : goto block }}",
        f"flush chain {t} lb6_5",
        f"add rule {t} lb6_5 jhash ip6 saddr . ip6 daddr mod 1 seed 0x77616e77"
        " vmap { 0 : jump stick6_5_1 }",
        f"flush set {t} sticky6_5_2",
    ]


def test_an_ipv4_only_office_renders_no_ipv6_rules() -> None:
    cfg = load(RULES)
    text = render(plan_for(cfg, set()), cfg)
    assert "rules6" not in text and "paths6" not in text and "dom6_" not in text
    assert "meta nfproto ipv4 jump rules" in text
