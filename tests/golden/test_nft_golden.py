"""Golden files for the nft renderer: ``tests/golden/nft/<case>.nft``, and for the
firewall as ``wanwatch plan`` prints it: ``<case>.plan`` (the firewall's cases).

Each case is a config plus the uplink choice the engine would make. Rewrite the
goldens after an intended change with ``WANWATCH_UPDATE_GOLDENS=1`` and read the
diff. Every golden also passes the kernel's own check (``nft -c``) in a lab
namespace: tests/lab/test_backend.py::test_every_golden_passes_nft_check.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Literal

import pytest

from wanwatch.config import Config, Policy, load
from wanwatch.config.ha import local_view
from wanwatch.config.model import Classifier
from wanwatch.engine.intent import Health, Intent
from wanwatch.engine.policy import decide_families, plan_for
from wanwatch.linux import firewall
from wanwatch.linux.apply import intent_from_config
from wanwatch.linux.nft import render, rendered_fingerprint

HERE = Path(__file__).parent / "nft"
EXAMPLES = Path(__file__).parents[2] / "examples"
OFFICE = EXAMPLES / "office.yaml"
UPDATE = os.environ.get("WANWATCH_UPDATE_GOLDENS") == "1"

A, B = "INET-UTAMA", "BACKUP-INET"


def _office(
    mode: Literal["failover", "loadbalance"] = "failover",
    classifier: Classifier = "both-addresses",
) -> Config:
    cfg = load(OFFICE)
    return cfg.replace(policy=Policy(mode=mode, classifier=classifier))


def _lb(classifier: Classifier) -> Callable[[], tuple[Config, Intent]]:
    def case() -> tuple[Config, Intent]:
        cfg = _office("loadbalance", classifier)
        return cfg, intent_from_config(cfg, active=(A, B), buckets=(A, B))

    return case


def _office_failover() -> tuple[Config, Intent]:
    cfg = _office()
    return cfg, intent_from_config(cfg, active=(A,))


def _weights_2_1() -> tuple[Config, Intent]:
    cfg = _office("loadbalance")
    return cfg, intent_from_config(cfg, active=(A, B), buckets=(A, A, B))


def _loadbalance_one_down() -> tuple[Config, Intent]:
    cfg = _office("loadbalance")
    return cfg, intent_from_config(cfg, active=(B,), buckets=(B,), flush=(A,))


def _three() -> tuple[Config, Intent]:
    cfg = load(HERE / "three.yaml")
    buckets = ("FIBER",) * 3 + ("CABLE",) * 2 + ("LTE",)
    return cfg, intent_from_config(cfg, active=("FIBER", "CABLE", "LTE"), buckets=buckets)


def _masquerade_off() -> tuple[Config, Intent]:
    cfg = load(HERE / "masquerade-off.yaml")
    return cfg, intent_from_config(cfg, active=("PRIMARY",))


def _firewall() -> tuple[Config, Intent]:
    """Every kind of opening and forward, an isolated LAN, a DHCP uplink with a lease."""
    cfg = load(HERE / "firewall.yaml")
    intent = intent_from_config(cfg, active=("LTE",))
    leased = replace(intent.uplinks[1], address=IPv4Interface("100.64.7.9/22"))
    return cfg, replace(intent, uplinks=(intent.uplinks[0], leased))


def _firewall_off() -> tuple[Config, Intent]:
    """firewall.enabled false: no filter at all, the port forwards stay."""
    cfg = load(HERE / "firewall.yaml")
    cfg = cfg.replace(
        firewall=cfg.firewall.replace(enabled=False),
        lans=tuple(lan.replace(isolate=False) for lan in cfg.lans),
    )
    return cfg, intent_from_config(cfg, active=("LTE",))


def _pair() -> tuple[Config, Intent]:
    """One router of a pair: VRRP adverts pass on the uplinks."""
    cfg = local_view(load(EXAMPLES / "office-ha-a.yaml"))
    return cfg, intent_from_config(cfg, active=(A,))


def _dual_stack() -> tuple[Config, Intent]:
    """IPv6 LANs out of a routed prefix (translated) and a learned address (masqueraded)."""
    cfg = load(HERE / "dual-stack.yaml")
    return cfg, intent_from_config(cfg, active=("LTE",))


def _rules(
    *down: str, mode: Literal["failover", "loadbalance"] = "failover"
) -> Callable[[], tuple[Config, Intent]]:
    """examples/office-rules.yaml with these uplinks down (docs/rules.md)."""

    def case() -> tuple[Config, Intent]:
        cfg = load(EXAMPLES / "office-rules.yaml")
        cfg = cfg.replace(policy=Policy(mode=mode))
        return cfg, plan_for(cfg, set(down))

    return case


DUAL_RULES = Path(__file__).parent / "rules" / "dual-stack-rules.yaml"


def _dual_rules() -> tuple[Config, Intent]:
    """Policy rules in a dual-stack office, every uplink up (docs/rules.md)."""
    cfg = load(DUAL_RULES)
    return cfg, plan_for(cfg, set())


def _dual_rules_ipv6_lost() -> tuple[Config, Intent]:
    """The same office with the LTE's IPv6 down while its IPv4 lives: the rules' IPv6
    paths leave it, their IPv4 paths stay (engine/policy.py decide_families)."""
    cfg = load(DUAL_RULES)
    health = {w.name: Health.UP for w in cfg.wans}
    preferred = {w.name: True for w in cfg.wans}
    intent = decide_families(
        cfg, (health, {**health, A: Health.DOWN}), (preferred, preferred), None
    )
    return cfg, intent


CASES: dict[str, Callable[[], tuple[Config, Intent]]] = {
    "rules-dual-stack": _dual_rules,
    "rules-dual-stack-ipv6-lost": _dual_rules_ipv6_lost,
    "dual-stack": _dual_stack,
    "rules": _rules(),
    "rules-backup-down": _rules(B),
    "rules-loadbalance-primary-down": _rules(A, mode="loadbalance"),
    "firewall": _firewall,
    "firewall-off": _firewall_off,
    "ha-pair": _pair,
    "office-failover": _office_failover,
    "office-loadbalance-1-1": _lb("both-addresses"),
    "office-loadbalance-2-1": _weights_2_1,
    "office-loadbalance-one-down": _loadbalance_one_down,
    "three-uplinks": _three,
    "classifier-src-address": _lb("src-address"),
    "classifier-dst-address": _lb("dst-address"),
    "classifier-both-addresses-and-ports": _lb("both-addresses-and-ports"),
    "classifier-src-address-and-port": _lb("src-address-and-port"),
    "classifier-dst-address-and-port": _lb("dst-address-and-port"),
    "masquerade-off": _masquerade_off,
}


def rendered(case: str) -> str:
    """The ruleset text of one case (also used by the lab's nft -c check)."""
    cfg, intent = CASES[case]()
    return render(intent, cfg)


def _compare(actual: str, golden: Path) -> None:
    if UPDATE:
        golden.write_text(actual, encoding="utf-8")
    if not golden.exists():
        pytest.fail(f"{golden} is missing; create it with WANWATCH_UPDATE_GOLDENS=1")
    assert actual == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; if intended, rerun with WANWATCH_UPDATE_GOLDENS=1"
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_golden(case: str) -> None:
    _compare(rendered(case), HERE / f"{case}.nft")


def test_no_stray_goldens() -> None:
    """A golden without a case would never be checked again."""
    assert {p.stem for p in HERE.glob("*.nft")} == set(CASES)
    assert {p.stem for p in HERE.glob("*.plan")} == set(PLAN_CASES)


PLAN_CASES = ("firewall", "firewall-off", "ha-pair", "office-failover")


@pytest.mark.parametrize("case", PLAN_CASES)
def test_plan_of_the_firewall_matches_golden(case: str) -> None:
    cfg, _ = CASES[case]()
    text = "\n".join(firewall.plan_lines(firewall.describe(cfg))) + "\n"
    _compare(text, HERE / f"{case}.plan")


@pytest.mark.parametrize("case", sorted(CASES))
def test_fingerprint_covers_the_ruleset(case: str) -> None:
    text = rendered(case)
    fp = rendered_fingerprint(text)
    # The same text always carries the same fingerprint; another case's differs,
    # but for rule paths (test_a_rule_path_change_keeps_the_fingerprint).
    assert rendered_fingerprint(rendered(case)) == fp
    same = next((group for group in PATHS_ONLY if case in group), {case})
    others = {rendered_fingerprint(rendered(c)) for c in CASES if c not in same}
    assert fp not in others


# The same config in two uplink states of failover mode: only rule paths differ.
PATHS_ONLY = ({"rules", "rules-backup-down"}, {"rules-dual-stack", "rules-dual-stack-ipv6-lost"})


def test_a_rule_path_change_keeps_the_fingerprint() -> None:
    """A failover moves rules in place (rules_nft.path_update): domain and sticky sets stay."""
    cfg, up = CASES["rules"]()
    _, down = CASES["rules-backup-down"]()
    assert render(up, cfg) != render(down, cfg)
    assert rendered_fingerprint(render(up, cfg)) == rendered_fingerprint(render(down, cfg))


def test_failover_mode_does_not_touch_the_table_on_failover() -> None:
    """In failover mode only the main default moves: no nft transaction on the fast path."""
    cfg = _office()
    before = render(intent_from_config(cfg, active=(A,)), cfg)
    after = render(intent_from_config(cfg, active=(B,), flush=(A,)), cfg)
    assert after == before


def test_loadbalance_failover_changes_only_the_buckets() -> None:
    cfg = _office("loadbalance")
    both = render(intent_from_config(cfg, active=(A, B), buckets=(A, B)), cfg)
    one = render(intent_from_config(cfg, active=(B,), buckets=(B,), flush=(A,)), cfg)
    changed = [
        (x, y)
        for x, y in zip(both.splitlines(), one.splitlines(), strict=True)
        if x != y and 'comment "wanwatch' not in x
    ]
    assert changed, "the bucket map must change"
    for x, y in changed:
        assert "jhash" in x or "buckets:" in x, (x, y)
