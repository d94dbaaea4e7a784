"""Events: every decision is one structured event with a dotted name and fields.

``str(event)`` is the log line, e.g.
``wan.down wan=INET-UTAMA reason=lost lost=6 detect_ms=640``.
The daemon keeps a bounded ring of them for ``wanwatch status``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FieldValue = str | int | float | bool | None


@dataclass(frozen=True)
class Event:
    at: float  # monotonic seconds (the engine's clock, injected)
    name: str  # dotted: wan.down, policy.failover, route.switch, dnsmasq.restart, ...
    fields: dict[str, FieldValue] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [self.name]
        for key, value in self.fields.items():
            if value is None:
                continue
            if isinstance(value, float):
                text = f"{value:.1f}" if abs(value) < 1e6 else f"{value:.0f}"
            else:
                text = str(value)
            if " " in text or "=" in text or not text:
                text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
            parts.append(f"{key}={text}")
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "name": self.name, **self.fields}


def event(at: float, name: str, **fields: FieldValue) -> Event:
    return Event(at, name, dict(fields))
