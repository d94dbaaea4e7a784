"""What wanwatch owns in the router namespace, read back from the kernel by its marks."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from wanwatch.footprint import NFT_FAMILY, NFT_TABLE, RT_PROTO
from wanwatch.lab import netns
from wanwatch.lab.topology import Lab

FORWARD_SYSCTL = "net.ipv4.ip_forward"


@dataclass(frozen=True)
class Footprint:
    """wanwatch's objects in the router namespace, as comparable values."""

    nft: str | None  # `nft list table inet wanwatch` (no handles), None if absent
    routes: frozenset[str]  # every route with our protocol, any table
    rules: frozenset[str]  # every policy rule with our protocol
    forwarding: bool

    @classmethod
    def read(cls, lab: Lab) -> Footprint:
        return cls(nft_table(lab), our_routes(lab), our_rules(lab), forwarding(lab))

    def missing(self, now: Footprint) -> list[str]:
        """What of this footprint ``now`` lacks (or has changed), by kind."""
        gone = []
        if self.nft is not None and now.nft != self.nft:
            gone.append("nft table" if now.nft is None else "nft table content")
        gone += [f"route {r}" for r in sorted(self.routes - now.routes)]
        gone += [f"rule {r}" for r in sorted(self.rules - now.rules)]
        if self.forwarding and not now.forwarding:
            gone.append(FORWARD_SYSCTL)
        return gone


def nft_table(lab: Lab) -> str | None:
    """Our table's text without counter values: traffic moves them (the usage and
    firewall counters), so they are not part of the footprint."""
    res = netns.nsrun(lab.router_ns, "nft", "list", "table", NFT_FAMILY, NFT_TABLE, check=False)
    if res.returncode != 0:
        return None
    return re.sub(r"packets \d+ bytes \d+", "packets - bytes -", res.stdout)


def _ip_json(lab: Lab, *args: str) -> list[dict[str, object]]:
    out = netns.sh(["ip", "-j", "-n", lab.router_ns, *args]).stdout.strip()
    found: list[dict[str, object]] = json.loads(out) if out else []
    return found


def _key(obj: Mapping[str, object]) -> str:
    # "flags" (linkdown, onlink...) follow the carrier, not what we asked for.
    return json.dumps({k: v for k, v in obj.items() if k != "flags"}, sort_keys=True)


def our_routes(lab: Lab) -> frozenset[str]:
    rows = _ip_json(lab, "route", "show", "table", "all", "proto", str(RT_PROTO))
    return frozenset(_key(r) for r in rows)


def our_rules(lab: Lab) -> frozenset[str]:
    rows = _ip_json(lab, "rule", "show")
    return frozenset(_key(r) for r in rows if r.get("protocol") == str(RT_PROTO))


def forwarding(lab: Lab) -> bool:
    res = netns.nsrun(lab.router_ns, "sysctl", "-n", FORWARD_SYSCTL)
    return res.stdout.strip() == "1"


def wait_whole(lab: Lab, baseline: Footprint, deadline: float, poll: float = 0.01) -> float | None:
    """Poll the kernel until nothing of ``baseline`` is missing; the monotonic time it
    was first seen whole (the end of the read that saw it), or None at ``deadline``."""
    while True:
        now = Footprint.read(lab)
        seen = time.monotonic()
        if not baseline.missing(now):
            return seen
        if seen >= deadline:
            return None
        time.sleep(poll)
