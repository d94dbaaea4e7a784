"""The Intent: the desired dataplane as plain, frozen data.

The policy produces it from uplink states; the Linux backend reconciles the
kernel to it; ``wanwatch plan`` prints it. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Network
from typing import Any

from wanwatch.config import Config
from wanwatch.config.dynamic import Kind, kind, static_address
from wanwatch.config.fields import IpAddress


class Health(StrEnum):
    """What an uplink looks like from its probes (the status contract's ``state``)."""

    UNKNOWN = "unknown"
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    # The line answers, but its HTTP probes are sent to a captive portal (a prepaid
    # quota used up): routed like DOWN, or as a last resort (probe.portal).
    PORTAL = "portal"


class Admin(StrEnum):
    """The operator's choice for an uplink (``wanwatch disable/enable``)."""

    ENABLED = "enabled"
    DRAIN = "drain"  # no new connections; the open ones keep their uplink
    DISABLED = "disabled"  # no traffic at all: its connections are deleted


class PathKind(StrEnum):
    UPLINK = "uplink"
    BALANCE = "balance"
    BLOCK = "block"
    DEFAULT = "default"


@dataclass(frozen=True)
class RulePath:
    """Where rule ``name`` (0-based position ``index``: its ct mark) sends new connections."""

    name: str
    index: int
    kind: PathKind
    uplinks: tuple[str, ...] = ()  # uplink: the one; balance: the set, in via order
    buckets: tuple[str, ...] = ()  # balance: hash bucket -> uplink
    usable: tuple[str, ...] = ()  # every uplink of via it could use now (sticky ones keep theirs)

    def __str__(self) -> str:
        if self.kind is PathKind.UPLINK:
            return self.uplinks[0]
        if self.kind is PathKind.BALANCE:
            return "balance " + "+".join(self.uplinks)
        return self.kind.value


@dataclass(frozen=True)
class UplinkPlan:
    name: str
    interface: str
    address: IPv4Interface | None  # None: whatever the interface already has (or no lease yet)
    gateway: IPv4Address | None  # None: point-to-point, or a DHCP uplink without a lease
    slot: int  # 0-based position in config.wans: the backend derives its kernel ids from it
    priority: int
    weight: int
    health: Health
    carrying: bool  # takes new connections
    probe_targets: tuple[IpAddress, ...]
    admin: Admin = Admin.ENABLED
    kind: Kind = "static"  # dynamic.py: static | dhcp | point-to-point
    prefix6: IPv6Network | None = None  # a dhcp6 uplink's delegated prefix (linux/uplinks.py)


@dataclass(frozen=True)
class LanPlan:
    name: str
    interface: str
    address: IPv4Interface | None


@dataclass(frozen=True)
class Intent:
    mode: str  # "failover" | "loadbalance"
    uplinks: tuple[UplinkPlan, ...]
    lans: tuple[LanPlan, ...]
    # Uplinks carrying new connections, best first. The first one also carries the
    # main-table default route (the router's own traffic in loadbalance mode).
    active: tuple[str, ...]
    # loadbalance: hash bucket i -> uplink name; empty in failover mode.
    buckets: tuple[str, ...]
    classifier: str
    masquerade: tuple[str, ...]  # interfaces whose outgoing traffic is masqueraded
    # Uplinks whose NATed connections must be deleted: down and carrying nothing.
    flush: tuple[str, ...]
    # True when no uplink is healthy and the last usable choice is kept on purpose.
    stale: bool
    # Each policy rule's path, in config order (engine/rules.py).
    rules: tuple[RulePath, ...] = ()
    # The same for IPv6 (docs/ipv6.md), among the uplinks that have IPv6 only.
    active6: tuple[str, ...] = ()
    flush6: tuple[str, ...] = ()
    stale6: bool = False
    # Each rule's path for its IPv6 connections, by the uplinks' IPv6 health; () when
    # no uplink has IPv6 (docs/rules.md).
    rules6: tuple[RulePath, ...] = ()

    @property
    def primary(self) -> str | None:
        return self.active[0] if self.active else None

    def uplink(self, name: str) -> UplinkPlan:
        for u in self.uplinks:
            if u.name == name:
                return u
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready data (addresses as strings)."""

        def conv(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [conv(x) for x in v]
            if isinstance(v, IPv4Address | IPv4Interface | IPv6Address | IPv6Network):
                return str(v)
            return v

        out: dict[str, Any] = conv(asdict(self))
        out["primary"] = self.primary
        return out


def intent_from_config(
    config: Config,
    *,
    active: Sequence[str] = (),
    buckets: Sequence[str] = (),
    flush: Sequence[str] = (),
    health: Mapping[str, Health] | None = None,
    admin: Mapping[str, Admin] | None = None,
    stale: bool = False,
    rules: Sequence[RulePath] = (),
) -> Intent:
    """The Intent for ``config`` with a given choice of uplinks (no policy of its own).

    The policy fills the choice; the backend uses it with no uplink active as its
    baseline before the engine has spoken; tests and benches use it to pose a
    state.
    """
    health = health or {}
    admin = admin or {}
    return Intent(
        mode=config.policy.mode,
        uplinks=tuple(
            UplinkPlan(
                name=w.name,
                interface=w.interface,
                address=static_address(w),
                gateway=w.gateway,
                slot=i,
                priority=w.priority,
                weight=w.weight,
                health=health.get(w.name, Health.UNKNOWN),
                carrying=w.name in active,
                probe_targets=w.probe.addresses,
                admin=admin.get(w.name, Admin.ENABLED),
                kind=kind(w),
            )
            for i, w in enumerate(config.wans)
        ),
        lans=tuple(LanPlan(lan.name, lan.interface, lan.address) for lan in config.lans),
        active=tuple(active),
        buckets=tuple(buckets),
        classifier=config.policy.classifier,
        masquerade=tuple(w.interface for w in config.wans) if config.nat.masquerade else (),
        # A router pair deletes no flow: conntrackd would replicate the delete to
        # the peer, which may be about to carry that flow on as the new master.
        flush=tuple(flush) if config.ha is None else (),
        stale=stale,
        rules=tuple(rules),
    )
