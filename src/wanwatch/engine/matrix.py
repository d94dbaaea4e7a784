"""``wanwatch plan --matrix``: every rule's path for every combination of uplinks up
and down, from the same pure function the daemon runs (policy.decide). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from wanwatch.config import Config
from wanwatch.config.matches import rule_families
from wanwatch.engine.intent import Intent, PathKind, RulePath
from wanwatch.engine.policy import plan_for
from wanwatch.engine.rules import policy_uplinks


@dataclass(frozen=True)
class Row:
    down: frozenset[str]
    intent: Intent


def matrix(config: Config) -> list[Row]:
    """All 2^n states of the n uplinks: all up first, then the first uplink down, ..."""
    names = [w.name for w in config.wans]
    rows = []
    for downs in product((False, True), repeat=len(names)):
        down = frozenset(n for n, d in zip(names, downs, strict=True) if d)
        rows.append(Row(down, plan_for(config, set(down))))
    return rows


def _policy(intent: Intent, family: int = 4) -> str:
    active, stale = (
        (intent.active, intent.stale) if family == 4 else (intent.active6, intent.stale6)
    )
    if not active:
        return "-"
    where = "+".join(policy_uplinks(intent, family))
    return f"{where} (kept: all down)" if stale else where


def _path(intent: Intent, p: RulePath, family: int) -> str:
    if p.kind is PathKind.DEFAULT:
        return f"default: {_policy(intent, family)}"
    # engine/rules.py: in a total outage a rule keeps its path, as the policy does
    return f"{p} (kept)" if (intent.stale if family == 4 else intent.stale6) else str(p)


def cell(intent: Intent, index: int, families: tuple[int, ...] = (4,)) -> str:
    """Rule ``index``'s path in the ``families`` it matches; IPv6's is named where it
    differs from IPv4's (or is the only one)."""
    four = _path(intent, intent.rules[index], 4) if 4 in families else None
    six = None
    if 6 in families and intent.rules6:
        six = _path(intent, intent.rules6[index], 6)
    if six is None or six == four:
        return four or "-"
    return f"{four}; IPv6 {six}" if four is not None else f"IPv6 {six}"


def _policy_cell(intent: Intent) -> str:
    four = _policy(intent)
    six = _policy(intent, 6) if intent.active6 else four
    return four if six == four else f"{four}; IPv6 {six}"


def format_matrix(config: Config) -> str:
    names = [w.name for w in config.wans]
    head = [*names, "policy", *(r.name for r in config.rules)]
    fams = rule_families(config)
    body = [
        [
            *("down" if n in row.down else "up" for n in names),
            _policy_cell(row.intent),
            *(cell(row.intent, i, fams[i]) for i in range(len(config.rules))),
        ]
        for row in matrix(config)
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = [
        "  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in (head, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"
