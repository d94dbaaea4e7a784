"""Per-uplink usage counters: bytes and packets in and out of each uplink, counted by nft.

Two named counters per uplink in our table (``usage_<slot>_in``, ``usage_<slot>_out``,
the uplink's name as their comment) and two base chains of our own that feed
them, one rule each whatever the number of uplinks or connections: an objref
map from the device to its counter (nft(8), "Counter", ``counter name <expr> map``)::

    chain usage_in  { type filter hook prerouting  priority raw; ...
                      counter name iifname map { "wan1" : "usage_1_in", ... } }
    chain usage_out { type filter hook postrouting priority 300; ...
                      counter name oifname map { "wan1" : "usage_1_out", ... } }

Prerouting sees every packet that arrives on the device, forwarded or for the
router itself; postrouting every packet that leaves by it, forwarded or the
router's own (probes, the DNS forwarder, the router's own connections). That is
what a carrier bills: the probes count, and so do packets the firewall drops,
which the line carried all the same (``raw`` runs before the filter hooks). A
packet whose device is in no map entry is not counted (the rule does not
match). The byte count is the IP packet's length (nft counts ``skb->len``
at these hooks, after the link-layer header is pulled), as a carrier counts.

Reading them is one ``nft -j list table`` (the same listing as the firewall's
counters, apply.py): O(1) in the number of connections, unlike a conntrack
dump, and they count what ended connections moved too.

The table is replaced whole on every change (nft.py), which would start these
counters from zero, so the running values are read just before each swap, after
the ``nft -c`` check, and written into the new table's declarations
(:func:`carried`): only what the uplink moves in those few milliseconds is lost.
They are matched by the uplink's name (the comment), not the slot, so a config
that reorders its uplinks carries every figure to its own uplink. The values
are not part of the table's fingerprint (nft.py), which stays that of the rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from wanwatch.engine.intent import UplinkPlan
from wanwatch.errors import NftError
from wanwatch.linux.firewall import nftables

PREFIX = "usage_"
_NAME = re.compile(r"^usage_(\d+)_(in|out)$")
# The last word in postrouting: after srcnat (100), so a NATed packet is counted
# as it leaves (its length is the same; the priority only keeps our count clear
# of anything an admin's own chains do before it).
OUT_PRIORITY = 300


@dataclass(frozen=True)
class Count:
    packets: int
    bytes: int


@dataclass(frozen=True)
class Moved:
    """What one uplink moved, as its two counters read."""

    packets_in: int
    bytes_in: int
    packets_out: int
    bytes_out: int


def counter_name(u: UplinkPlan, direction: str) -> str:
    return f"{PREFIX}{u.slot + 1}_{direction}"


def is_usage(name: str) -> bool:
    return _NAME.match(name) is not None


def _q(name: str) -> str:
    # nft reads a quoted string up to the next '"' (no escapes); the config allows
    # uplink names of letters, digits, '-', '_' and '.' only (config/fields.py).
    if '"' in name or "\\" in name:
        raise NftError(f"uplink name {name!r} cannot be written in an nft ruleset")
    return f'"{name}"'


def declaration(u: UplinkPlan, direction: str, count: Count | None = None) -> str:
    """One counter's declaration line (a tab deep); ``count``: its starting values."""
    values = "" if count is None else f"; packets {count.packets} bytes {count.bytes}"
    return f"\tcounter {counter_name(u, direction)} {{ comment {_q(u.name)}{values} }}"


def declarations(uplinks: Sequence[UplinkPlan]) -> list[str]:
    return [declaration(u, d) for u in uplinks for d in ("in", "out")]


def chains(uplinks: Sequence[UplinkPlan], ifname: Callable[[str], str]) -> list[list[str]]:
    """The two chains that feed the counters, as lines; [] without uplinks. ``ifname``
    writes an interface name for nft (nft.py's check of what nft can read)."""
    if not uplinks:
        return []
    out = []
    for direction, hook, priority, key in (
        ("in", "prerouting", "raw", "iifname"),
        ("out", "postrouting", str(OUT_PRIORITY), "oifname"),
    ):
        entries = ", ".join(
            f"{ifname(u.interface)} : {_q(counter_name(u, direction))}" for u in uplinks
        )
        out.append(
            [
                f"chain usage_{direction} {{",
                f"\ttype filter hook {hook} priority {priority}; policy accept;",
                f"\tcounter name {key} map {{ {entries} }}",
                "}",
            ]
        )
    return out


# --------------------------------------------------------------------------- reading


def parse(text: str) -> dict[str, Moved]:
    """Uplink name -> what it moved, from ``nft -j list table`` (or ``list counters``)
    of our table (libnftables-json(5)); counters of other parts are skipped."""
    items = nftables(text)
    found: dict[str, dict[str, Count]] = {}
    try:
        for item in items:
            c = item.get("counter") if isinstance(item, dict) else None
            if not isinstance(c, dict) or (m := _NAME.match(str(c.get("name", "")))) is None:
                continue
            owner = c.get("comment")
            if isinstance(owner, str):
                found.setdefault(owner, {})[m.group(2)] = Count(int(c["packets"]), int(c["bytes"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise NftError(f"nft -j list: a counter without {exc}") from None
    zero = Count(0, 0)
    return {
        name: Moved(
            d.get("in", zero).packets,
            d.get("in", zero).bytes,
            d.get("out", zero).packets,
            d.get("out", zero).bytes,
        )
        for name, d in found.items()
    }


def carried(definition: str, uplinks: Sequence[UplinkPlan], running: Mapping[str, Moved]) -> str:
    """``definition`` (nft.render) with each uplink's counters starting at the values
    ``running`` read for its name; an uplink not in ``running`` starts from zero."""
    for u in uplinks:
        moved = running.get(u.name)
        if moved is None:
            continue
        for direction, count in (
            ("in", Count(moved.packets_in, moved.bytes_in)),
            ("out", Count(moved.packets_out, moved.bytes_out)),
        ):
            line = declaration(u, direction) + "\n"
            if line not in definition:
                raise NftError(f"no usage counter {counter_name(u, direction)} in the definition")
            definition = definition.replace(line, declaration(u, direction, count) + "\n", 1)
    return definition
