"""Everything wanwatch puts into the kernel carries a mark from this one place.

Routes carry our route protocol number, tables and rule priorities come from one
declared range, connection and packet marks use only the bits under FWMARK_MASK,
and nftables rules live in one table of our own. Reconcilers touch only objects
that carry these marks (docs/architecture.md, "Kernel objects wanwatch owns").
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
# Before both: `lookup main suppress_prefixlength 0`. Every main-table route more
# specific than a default (LANs, connected subnets, the admin's static routes) wins
# over our uplink tables, so only traffic that would take a default route is steered
# by mark or source (the idiom of wg-quick and the LARTC multi-uplink recipes).
RULE_PRIO_SUPPRESS = 28690

# Metrics of the default routes we put in the main table. DEFAULT_METRIC carries
# the active uplink and is switched with one `route replace` (make-before-break).
# 87 sits above the 0 of a plain `ip route add default` and below the defaults
# of common DHCP clients (NetworkManager 100/600, dhcpcd 200+ifindex,
# systemd-networkd 1024), and none of them uses it. Per-uplink fallback defaults
# follow at FALLBACK_METRIC_BASE + rank (rank by priority, then config order): with
# ignore_routes_with_linkdown=1 the kernel skips a route whose carrier is gone and
# uses the next one before the daemon reacts (docs/lab-notes.md).
DEFAULT_METRIC = 87
FALLBACK_METRIC_BASE = 28700
# Last route of every per-uplink table: `unreachable default`. A packet marked for
# (or sourced from) an uplink whose route is gone or link-down fails there instead
# of falling through to the main table and leaving by another uplink.
UNREACHABLE_METRIC = 4294967295

# Packet/conntrack mark bits we own; all other bits are left to the admin.
FWMARK_MASK = 0x00FF0000
FWMARK_SHIFT = 16

# Conntrack mark bits naming the policy rule (docs/rules.md) that chose a
# connection's uplink: rule n (1-based) = n << RULE_MARK_SHIFT. They never reach
# the packet mark (the fwmark rules read FWMARK_MASK only); they let a failover
# and the per-rule counters find one rule's connections in the conntrack table.
RULE_MARK_MASK = 0x0000FF00
RULE_MARK_SHIFT = 8
MAX_RULES = 255

# Our nftables table.
NFT_FAMILY = "inet"
NFT_TABLE = "wanwatch"


def table_id(index: int) -> int:
    """Routing table of the uplink at 0-based config position ``index``."""
    return TABLE_BASE + index + 1


def fwmark(index: int) -> int:
    """Packet/ct mark of the uplink at 0-based config position ``index``."""
    return (index + 1) << FWMARK_SHIFT


def rule_mark(index: int) -> int:
    """Ct mark bits of the policy rule at 0-based position ``index``."""
    return (index + 1) << RULE_MARK_SHIFT
