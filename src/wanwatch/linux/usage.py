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

An uplink with IPv6 (docs/ipv6.md) has two more, ``usage_<slot>_in6`` and
``usage_<slot>_out6``, fed by a second map rule in each chain behind ``meta nfproto
ipv6``: its IPv6 share of the totals above (IPv4's is the difference), so the totals
a quota counts stay one figure per direction. An IPv4-only config renders no IPv6
counter and no such rule.

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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from wanwatch.engine.intent import UplinkPlan
from wanwatch.errors import NftError
from wanwatch.linux.firewall import nftables

PREFIX = "usage_"
_NAME = re.compile(r"^usage_(\d+)_(in|out)(6?)$")
DIRECTIONS = ("in", "out")
DIRECTIONS6 = ("in6", "out6")
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
    """What one uplink moved, as its counters read: both families, and of that IPv6's
    share (zero for an uplink without IPv6)."""

    packets_in: int
    bytes_in: int
    packets_out: int
    bytes_out: int
    packets_in6: int = 0
    bytes_in6: int = 0
    packets_out6: int = 0
    bytes_out6: int = 0

    def count(self, direction: str) -> Count:
        """The values of one counter (``direction``: in, out, in6 or out6)."""
        return Count(getattr(self, f"packets_{direction}"), getattr(self, f"bytes_{direction}"))


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


def declarations(uplinks: Sequence[UplinkPlan], six: Collection[str] = ()) -> list[str]:
    """Each uplink's counters; IPv6's too for the uplinks named in ``six``."""
    return [
        declaration(u, d)
        for u in uplinks
        for d in (*DIRECTIONS, *(DIRECTIONS6 if u.name in six else ()))
    ]


def chains(
    uplinks: Sequence[UplinkPlan], ifname: Callable[[str], str], six: Collection[str] = ()
) -> list[list[str]]:
    """The two chains that feed the counters, as lines; [] without uplinks. ``ifname``
    writes an interface name for nft (nft.py's check of what nft can read); the
    uplinks named in ``six`` have IPv6 and their IPv6 counters are fed too."""
    if not uplinks:
        return []
    with6 = [u for u in uplinks if u.name in six]
    out = []
    for direction, hook, priority, key in (
        ("in", "prerouting", "raw", "iifname"),
        ("out", "postrouting", str(OUT_PRIORITY), "oifname"),
    ):
        rules = [f"\tcounter name {key} map {{ {_entries(uplinks, direction, ifname)} }}"]
        if with6:
            six_map = _entries(with6, direction + "6", ifname)
            rules.append(f"\tmeta nfproto ipv6 counter name {key} map {{ {six_map} }}")
        out.append(
            [
                f"chain usage_{direction} {{",
                f"\ttype filter hook {hook} priority {priority}; policy accept;",
                *rules,
                "}",
            ]
        )
    return out


# --------------------------------------------------------------------------- reading


def _entries(uplinks: Sequence[UplinkPlan], direction: str, ifname: Callable[[str], str]) -> str:
    """A counter map's entries: each uplink's interface to its ``direction`` counter."""
    return ", ".join(f"{ifname(u.interface)} : {_q(counter_name(u, direction))}" for u in uplinks)


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
                direction = m.group(2) + m.group(3)
                found.setdefault(owner, {})[direction] = Count(int(c["packets"]), int(c["bytes"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise NftError(f"nft -j list: a counter without {exc}") from None
    zero = Count(0, 0)
    return {
        name: Moved(
            *(
                value
                for direction in (*DIRECTIONS, *DIRECTIONS6)
                for value in (d.get(direction, zero).packets, d.get(direction, zero).bytes)
            )
        )
        for name, d in found.items()
    }


def carried(definition: str, uplinks: Sequence[UplinkPlan], running: Mapping[str, Moved]) -> str:
    """``definition`` (nft.render) with each uplink's counters starting at the values
    ``running`` read for its name; an uplink not in ``running`` starts from zero. The
    IPv6 counters are carried where the definition has them (an uplink that gained
    IPv6 starts them from zero; one that lost it drops them)."""
    for u in uplinks:
        moved = running.get(u.name)
        if moved is None:
            continue
        for direction in (*DIRECTIONS, *DIRECTIONS6):
            line = declaration(u, direction) + "\n"
            if line not in definition:
                if direction in DIRECTIONS6:
                    continue
                raise NftError(f"no usage counter {counter_name(u, direction)} in the definition")
            count = moved.count(direction)
            definition = definition.replace(line, declaration(u, direction, count) + "\n", 1)
    return definition
