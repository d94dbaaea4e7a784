"""What an export's ``/ip firewall filter`` input or forward chain does with a new connection
from an uplink: the judgement behind verify's ``wan-open``.

A packet walks the chain's rules in order (RouterOS manual, IP/Firewall/Filter):
the first rule that matches it and accepts, drops, rejects or tarpits decides;
``jump`` walks another chain and ``return`` comes back; a built-in chain accepts
what reaches its end. The packet judged is any new, not dst-nat'ed connection
arriving on the uplink's interface: a rule matches it only if all it asks is the
interface (or list), the connection state and the NAT state. A rule that also asks
for a protocol, a port or an address takes some packets only (an opening, or a
partial drop) and is passed over, so only a rule that closes the uplink as a whole
counts as closing it -- as defconf's "drop all not coming from LAN" does.
"""

from __future__ import annotations

from wanwatch.routeros.model import Export, FilterRule, InterfaceSet

_FINAL = frozenset({"accept", "drop", "reject", "tarpit"})


def _negated(value: str) -> tuple[bool, str]:
    return (True, value[1:]) if value.startswith("!") else (False, value)


def _takes(export: Export, rule: FilterRule, iface: str) -> bool:
    """Whether ``rule`` matches every new connection arriving on ``iface``."""
    if rule.narrowed:
        return False
    if rule.connection_state is not None:
        neg, states = _negated(rule.connection_state)
        if ("new" in states.split(",")) == neg:
            return False
    if rule.connection_nat_state is not None and not rule.connection_nat_state.startswith("!"):
        return False  # dstnat or srcnat only: not a connection nothing NATed
    if rule.in_interface is not None:
        neg, name = _negated(rule.in_interface)
        if (name == iface) == neg:
            return False
    if rule.in_interface_list is not None:
        neg, name = _negated(rule.in_interface_list)
        if (iface in export.interface_lists.get(name, InterfaceSet())) == neg:
            return False
    return True


def verdict(export: Export, iface: str, chain: str = "input") -> tuple[str, int | None]:
    """``("accept" | "drop", line of the deciding rule)`` for a new connection arriving on
    ``iface``; line None: it reached the end of the chain, which accepts it."""
    rules = [r for r in export.filters if not r.disabled]
    return _walk(export, rules, chain, iface, frozenset())


def _walk(
    export: Export, rules: list[FilterRule], chain: str, iface: str, seen: frozenset[str]
) -> tuple[str, int | None]:
    for r in rules:
        if r.chain != chain or not _takes(export, r, iface):
            continue
        if r.action in _FINAL:
            return ("accept" if r.action == "accept" else "drop"), r.line
        if r.action == "return":
            return "return", r.line
        if r.action == "jump" and r.jump_target and r.jump_target not in seen:
            got = _walk(export, rules, r.jump_target, iface, seen | {chain})
            if got[0] != "return":
                return got
    return ("return", None) if seen else ("accept", None)
