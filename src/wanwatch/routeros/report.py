"""What ``routeros verify`` reports: the carrying route per scenario and table, the
warnings, the statements not modelled; as text for people and JSON for tools."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
class Mark:
    """A routing mark that mangle rules give LAN traffic."""

    name: str
    lines: tuple[int, ...]  # the mark-routing rules that set it
    rule: int | None  # the routing rule for the mark, if any

    def to_json(self) -> dict[str, Any]:
        return {"mark": self.name, "lines": list(self.lines), "routing_rule": self.rule}


@dataclass(frozen=True)
class MarkPath:
    """Where one mark's traffic goes in one scenario: by its own ``table``, by ``main``
    (no active route in its table, and nothing forbids the fallback), ``blocked`` (a
    routing rule forbids main), or ``none`` (main has no route either)."""

    path: str
    choice: Choice | None
    rule: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.choice is not None:
            out |= {k: v for k, v in self.choice.to_json().items() if k != "fallback"}
        if self.rule is not None:
            out["routing_rule"] = self.rule
        return out

    def describe(self) -> str:
        if self.path == "blocked":
            return f"blocked (routing rule line {self.rule})"
        if self.path == "none":
            return "none (no route in its table or main)"
        if self.path == "table":
            return f"by its table: {describe(self.choice)}"
        # the choice is main's: say "by main" once, not "fallback to main" again
        return f"by main: {describe(replace(self.choice, fallback=False) if self.choice else None)}"


@dataclass(frozen=True)
class ScenarioResult:
    id: str
    tables: dict[str, Choice | None]
    marks: dict[str, MarkPath] = field(default_factory=dict)
    tables6: dict[str, Choice | None] | None = None  # the IPv6 side, when the export has one
    marks6: dict[str, MarkPath] = field(default_factory=dict)  # IPv6 routing marks

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "tables": {t: (c.to_json() if c else None) for t, c in self.tables.items()},
        }
        if self.tables6 is not None:
            out["tables6"] = {t: (c.to_json() if c else None) for t, c in self.tables6.items()}
        if self.marks:
            out["marks"] = {m: p.to_json() for m, p in self.marks.items()}
        if self.marks6:
            out["marks6"] = {m: p.to_json() for m, p in self.marks6.items()}
        return out


@dataclass(frozen=True)
class Report:
    source: str
    version: int | None
    scenarios: tuple[ScenarioResult, ...]
    warnings: tuple[Finding, ...]
    skipped_lines: int
    notes: tuple[tuple[int, str], ...] = ()  # statements not modelled, and why
    marks: tuple[Mark, ...] = ()  # mangle-routed LAN traffic
    marks6: tuple[Mark, ...] = ()  # the same in /ipv6 firewall mangle

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scenarios": [s.to_json() for s in self.scenarios],
            "warnings": [w.to_json() for w in self.warnings],
            "skipped_lines": self.skipped_lines,
            "notes": [{"line": line, "message": msg} for line, msg in self.notes],
        }
        if self.marks:
            out["marks"] = [m.to_json() for m in self.marks]
        if self.marks6:
            out["marks6"] = [m.to_json() for m in self.marks6]
        return out

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
            if s.tables6 is not None:
                six = "; ".join(f"{t}={describe(c)}" for t, c in s.tables6.items())
                lines.append(f"    ipv6: {six}")
            for label, marks in (("marks", s.marks), ("ipv6 marks", s.marks6)):
                if marks:
                    paths = "; ".join(f"{m} {p.describe()}" for m, p in marks.items())
                    lines.append(f"    {label}: {paths}")
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
