"""Items of a RouterOS menu as the export writes them, and their typed values.

An :class:`Item` is one object's properties as written (after ``set``/``remove``
were applied); the functions here type one property each, with the RouterOS
default when it is absent, and raise :class:`InvalidItemError` for a value
RouterOS itself would reject. :class:`Tally` counts what was not modelled and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from wanwatch.routeros.commands import yes_no

T = TypeVar("T")


@dataclass
class Item:
    line: int
    args: dict[str, str]
    flags: set[str]
    lines: dict[str, int] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        return self.args.get(key)

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


class InvalidItemError(Exception):
    """A value RouterOS would reject: the item is not modelled (line, reason)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def item_names(args: dict[str, str] | Mapping[str, str]) -> set[str]:
    """The words a command may name an item by: its name, or a client's interface."""
    return {v for k in ("name", "interface", "default-name") if (v := args.get(k))}


def invalid(item: Item, key: str, reason: str) -> InvalidItemError:
    return InvalidItemError(item.line_of(key), f"{key}={item.args.get(key, '')!r}: {reason}")


def number(item: Item, key: str, default: int, lo: int, hi: int) -> int:
    v = item.get(key)
    if v is None or v == "":
        return default
    if not re.fullmatch(r"\d{1,10}", v) or not lo <= int(v) <= hi:
        raise invalid(item, key, f"not a whole number {lo}-{hi}")
    return int(v)


def flag(item: Item, key: str, default: bool = False) -> bool:
    if key in item.flags:
        return True
    v = item.get(key)
    if v is None or v == "":
        return default
    b = yes_no(v)
    if b is None:
        raise invalid(item, key, "not yes/no")
    return b


def duration(item: Item, key: str) -> float | None:
    v = item.get(key)
    if v is None or v in ("", "none"):
        return None
    d = parse_duration(v)
    if d is None:
        raise invalid(item, key, "not a RouterOS duration (e.g. 1d, 10m, 500ms, 00:10:00)")
    return d


def word(item: Item, key: str) -> str | None:
    v = item.get(key)
    return v if v else None


_DUR_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|w|d|h|m|s)")


def parse_duration(value: str) -> float | None:
    """RouterOS time: ``1d``, ``1h30m``, ``500ms``, ``00:10:00``, ``1d02:00:00``, ``30``."""
    v = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    m = re.fullmatch(r"((?:\d+[wd])*)(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)", v)
    if m:
        days = parse_duration(m.group(1)) if m.group(1) else 0.0
        clock = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
        return (days or 0.0) + clock
    if not v or _DUR_PART.sub("", v):
        return None
    unit = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    return sum(float(n) * unit[u] for n, u in _DUR_PART.findall(v))


@dataclass
class Tally:
    """Statements not modelled: how many, and (line, why) where the reason matters."""

    skipped: int = 0
    notes: list[tuple[int, str]] = field(default_factory=list)

    def skip(self, line: int, note: str | None = None) -> None:
        self.skipped += 1
        if note is not None:
            self.notes.append((line, note))

    def typed(self, items: list[Item], make: Callable[[Item], T | None]) -> tuple[T, ...]:
        """Each item typed by ``make``; one RouterOS would reject is skipped with a note."""
        out: list[T] = []
        for i in items:
            try:
                value = make(i)
            except InvalidItemError as exc:
                self.skip(exc.line, exc.reason)
                continue
            if value is not None:
                out.append(value)
        return tuple(out)
