"""Everything wanwatch puts into the kernel carries a mark from this one place.

Routes carry our route protocol number, tables and rule priorities come from one
declared range, connection and packet marks use only the bits under FWMARK_MASK,
and nftables rules live in one table of our own. Reconcilers touch only objects
that carry these marks (STYLE.md, point 7).
"""

from __future__ import annotations

# Route protocol number (rtnetlink rtm_protocol). 0-4 are the kernel's, 8-19 and
# 42, 186-188 are taken by known daemons (iproute2's rt_protos); 87 ("W") is free.
RT_PROTO = 87

# Per-uplink routing tables: TABLE_BASE + uplink index (1-based, config order).
TABLE_BASE = 28700
MAX_UPLINKS = 16

# Policy-rule priorities. Lower runs first; the main table rule sits at 32766,
# so ours all come before it. Fwmark rules first, then source rules.
RULE_PRIO_FWMARK = 28700
RULE_PRIO_SOURCE = 28750

# Packet/conntrack mark bits we own; all other bits are left to the admin.
FWMARK_MASK = 0x00FF0000
FWMARK_SHIFT = 16

# Our nftables table.
NFT_FAMILY = "inet"
NFT_TABLE = "wanwatch"


def table_id(index: int) -> int:
    """Routing table of the uplink at 0-based config position ``index``."""
    return TABLE_BASE + index + 1


def fwmark(index: int) -> int:
    """Packet/ct mark of the uplink at 0-based config position ``index``."""
    return (index + 1) << FWMARK_SHIFT
