"""The loadbalance classifier as nft text: a new connection's hash picks a bucket's chain.

Used by nft.py (the policy's buckets) and rules_nft.py (a balanced rule's own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# jhash seed of the classifier ("wanw"). Fixed on purpose: see nft.py's docstring.
HASH_SEED = 0x77616E77


@dataclass(frozen=True)
class _Classifier:
    fields: tuple[str, ...]  # hashed for TCP/UDP
    fallback: tuple[str, ...] | None  # hashed for other protocols; None: same as fields


# The RouterOS per-connection-classifier names. Port classifiers can only read ports
# of TCP and UDP (``th`` would read ICMP type/code as "ports"), so other protocols
# hash the address part alone.
CLASSIFIERS: dict[str, _Classifier] = {
    "both-addresses": _Classifier(("saddr", "daddr"), None),
    "src-address": _Classifier(("saddr",), None),
    "dst-address": _Classifier(("daddr",), None),
    "both-addresses-and-ports": _Classifier(
        ("saddr", "daddr", "sport", "dport"), ("saddr", "daddr")
    ),
    "src-address-and-port": _Classifier(("saddr", "sport"), ("saddr",)),
    "dst-address-and-port": _Classifier(("daddr", "dport"), ("daddr",)),
}
_NFT_FIELD = {
    "saddr": "ip saddr",
    "daddr": "ip daddr",
    "sport": "th sport",
    "dport": "th dport",
}
_NFT_FIELD6 = {**_NFT_FIELD, "saddr": "ip6 saddr", "daddr": "ip6 daddr"}


def classify_rules(targets: Sequence[str], classifier: str, family: int = 4) -> list[str]:
    """Hash a new connection of ``family`` into bucket i of ``len(targets)``, then jump to
    ``targets[i]``."""
    n = len(targets)
    vmap = ", ".join(f"{i} : jump {chain}" for i, chain in enumerate(targets))
    cls = CLASSIFIERS[classifier]

    def rule(fields: tuple[str, ...]) -> str:
        names = _NFT_FIELD6 if family == 6 else _NFT_FIELD
        key = " . ".join(names[f] for f in fields)
        return f"jhash {key} mod {n} seed 0x{HASH_SEED:08x} vmap {{ {vmap} }}"

    if cls.fallback is None:
        return [rule(cls.fields)]
    return [
        f"meta l4proto {{ tcp, udp }} {rule(cls.fields)}",
        f"meta l4proto != {{ tcp, udp }} {rule(cls.fallback)}",
    ]
