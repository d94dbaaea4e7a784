"""Kernel drift in the router namespace: what an admin or a firewall reload removes."""

from __future__ import annotations

from wanwatch.footprint import NFT_FAMILY, NFT_TABLE, RT_PROTO
from wanwatch.lab import netns
from wanwatch.lab.chaos.injected import Injected, Timer
from wanwatch.lab.chaos.readback import FORWARD_SYSCTL
from wanwatch.lab.topology import Lab


def delete_nft_table(lab: Lab) -> Injected:
    """``nft delete table inet wanwatch``: NAT and our forward filter are gone."""
    t = Timer("nft_table_deleted")
    netns.nsrun(lab.router_ns, "nft", "delete", "table", NFT_FAMILY, NFT_TABLE)
    return t.done()


def flush_ruleset(lab: Lab) -> Injected:
    """``nft flush ruleset``: every table of the router namespace, ours included."""
    t = Timer("nft_flush_ruleset")
    netns.nsrun(lab.router_ns, "nft", "flush", "ruleset")
    return t.done()


def flush_routes(lab: Lab) -> Injected:
    """Every route with our protocol, from every table (ip-route(8) ``flush proto``)."""
    t = Timer("routes_flushed")
    netns.ip("-n", lab.router_ns, "route", "flush", "proto", str(RT_PROTO), "table", "all")
    return t.done()


def delete_rules(lab: Lab) -> Injected:
    """Every policy rule with our protocol (ip-rule(8) ``flush protocol``)."""
    t = Timer("rules_deleted")
    netns.ip("-n", lab.router_ns, "rule", "flush", "protocol", str(RT_PROTO))
    return t.done()


def forwarding_off(lab: Lab) -> Injected:
    """``net.ipv4.ip_forward = 0`` in the router namespace (per namespace: sysctl.py)."""
    t = Timer("ip_forward_off")
    netns.sysctl(lab.router_ns, {FORWARD_SYSCTL: 0})
    return t.done()
