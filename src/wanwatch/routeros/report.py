"""What ``routeros verify`` reports: the carrying route per scenario and table, the
warnings, the statements not modelled; as text for people and JSON for tools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wanwatch.routeros.simulate import Choice


@dataclass(frozen=True)
class Finding:
    code: str
    line: int
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "line": self.line, "message": self.message}


@dataclass(frozen=True)
class ScenarioResult:
    id: str
    tables: dict[str, Choice | None]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tables": {t: (c.to_json() if c else None) for t, c in self.tables.items()},
        }


@dataclass(frozen=True)
class Report:
    source: str
    version: int | None
    scenarios: tuple[ScenarioResult, ...]
    warnings: tuple[Finding, ...]
    skipped_lines: int
    notes: tuple[tuple[int, str], ...] = ()  # statements not modelled, and why

    def to_json(self) -> dict[str, Any]:
        return {
            "scenarios": [s.to_json() for s in self.scenarios],
            "warnings": [w.to_json() for w in self.warnings],
            "skipped_lines": self.skipped_lines,
            "notes": [{"line": line, "message": msg} for line, msg in self.notes],
        }

    def to_text(self) -> str:
        lines = [
            f"{self.source}: RouterOS v{self.version or '?'} export, "
            f"{len(self.scenarios)} scenarios, {self.skipped_lines} lines not modelled"
        ]
        for s in self.scenarios:
            parts = []
            for t, c in s.tables.items():
                parts.append(f"{t}={describe(c)}")
            lines.append(f"  {s.id}: " + "; ".join(parts))
        lines += [f"  line {line}: not modelled: {msg}" for line, msg in self.notes]
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''}:")
            lines += [f"  line {w.line}: {w.code}: {w.message}" for w in self.warnings]
        else:
            lines.append("no warnings")
        return "\n".join(lines)


def describe(c: Choice | None) -> str:
    if c is None:
        return "none (no active default route)"
    if c.nexthop is None:
        return f"{c.gateway} (line {c.route.line})"
    via = "" if c.nexthop == c.gateway else f" via {c.nexthop}"
    iface = f" {c.interface}" if c.interface and c.interface != c.gateway else ""
    fb = ", fallback to main" if c.fallback else ""
    ecmp = f", ECMP with {', '.join(c.hops[1:])}" if len(c.members) > 1 else ""
    return f"{c.gateway}{via}{iface} (line {c.route.line}{fb}{ecmp})"
