"""``wanwatch plan --matrix``: every rule's path for every combination of uplinks up
and down, from the same pure function the daemon runs (policy.decide). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from wanwatch.config import Config
from wanwatch.engine.intent import Intent, PathKind
from wanwatch.engine.policy import plan_for


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


def _policy(intent: Intent) -> str:
    if not intent.active:
        return "-"
    where = "+".join(intent.active) if intent.mode == "loadbalance" else intent.active[0]
    return f"{where} (kept: all down)" if intent.stale else where


def cell(intent: Intent, index: int) -> str:
    p = intent.rules[index]
    if p.kind is PathKind.DEFAULT:
        return f"default: {_policy(intent)}"
    # engine/rules.py: in a total outage a rule keeps its path, as the policy does
    return f"{p} (kept)" if intent.stale else str(p)


def format_matrix(config: Config) -> str:
    names = [w.name for w in config.wans]
    head = [*names, "policy", *(r.name for r in config.rules)]
    body = [
        [
            *("down" if n in row.down else "up" for n in names),
            _policy(row.intent),
            *(cell(row.intent, i) for i in range(len(config.rules))),
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
