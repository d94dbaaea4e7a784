"""DHCP, PPP and LTE clients: the interfaces and default routes they make at run
time (absent from an export), and the static routes their up scripts re-point."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from ipaddress import IPv4Network

from wanwatch.errors import RouterOSError
from wanwatch.routeros.commands import Command, Selector, commands, matches, yes_no
from wanwatch.routeros.model import Gateway, Route
from wanwatch.routeros.values import InvalidItemError, Item, Tally, flag, number

Items = Mapping[str, list[Item]]

# Client interfaces whose default route RouterOS adds at run time: section -> the
# prefix of the names RouterOS gives unnamed ones, and whether the interface goes down
# with its peer (a PPP session ends when the server stops answering; a DHCP lease on
# Ethernet outlives a dead gateway).
CLIENTS: dict[str, tuple[str, bool]] = {
    "ip dhcp-client": ("", False),
    "interface pppoe-client": ("pppoe-out", True),
    "interface l2tp-client": ("l2tp-out", True),
    "interface pptp-client": ("pptp-out", True),
    "interface sstp-client": ("sstp-out", True),
    "interface ovpn-client": ("ovpn-out", True),
    "interface lte": ("lte", True),
    "interface ppp-client": ("ppp-out", True),
}
# Clients over a radio: LTE, and PPP over a serial or USB modem (``ppp-client``).
# Their round trip grows with load and signal, hundreds of ms on a busy cell.
RADIO = ("interface lte", "interface ppp-client")
TUNNELS = (
    "interface l2tp-client",
    "interface pptp-client",
    "interface sstp-client",
    "interface ovpn-client",
)
# The profile each PPP client uses unless it names another (RouterOS manual, PPP
# AAA; PPPoE, OVPN and PPP client ``profile``: default; L2TP, PPTP, SSTP client:
# default-encryption).
_DEFAULT_PROFILE = {
    "interface pppoe-client": "default",
    "interface ovpn-client": "default",
    "interface ppp-client": "default",
}


def clients(items: Items, section: str) -> list[tuple[str, Item]]:
    """(interface name, item) of each client of a section, unnamed ones numbered."""
    prefix = CLIENTS[section][0]
    key = "interface" if section == "ip dhcp-client" else "name"
    return [(i.get(key) or f"{prefix}{n}", i) for n, i in enumerate(items[section], start=1)]


def tunnels(items: Items) -> dict[str, str]:
    """Tunnel client interface -> connect-to, as written."""
    return {name: i.get("connect-to") or "" for s in TUNNELS for name, i in clients(items, s)}


def peer_links(items: Items) -> frozenset[str]:
    """Client interfaces that exist only while their peer answers."""
    return frozenset(
        name for s, (_, peer) in CLIENTS.items() if peer for name, _ in clients(items, s)
    )


def radio_links(items: Items) -> frozenset[str]:
    """Client interfaces that run over a radio."""
    return frozenset(name for s in RADIO for name, _ in clients(items, s))


def client_routes(items: Items, tally: Tally) -> list[Route]:
    """Default routes that DHCP, PPP and LTE clients add at run time (not in the
    export). add-default-route defaults: yes for DHCP and LTE APN profiles, no for
    PPP clients; default-route-distance: 1, for LTE APN profiles 2 (RouterOS
    manual: DHCP client, PPPoE client, LTE APN profile properties)."""
    apns = {i.get("name") or "": i for i in items["interface lte apn"]}
    out: list[Route] = []
    for section in CLIENTS:
        for iface, i in clients(items, section):
            settings = {"add-default-route": "no", "default-route-distance": "1"}
            if section == "ip dhcp-client":
                settings["add-default-route"] = "yes"
            elif section == "interface lte":
                settings = {"add-default-route": "yes", "default-route-distance": "2"}
                profile = (i.get("apn-profiles") or "default").split(",")[0]
                if profile in apns:
                    settings.update(apns[profile].args)
            settings.update(i.args)
            item = Item(i.line, settings, i.flags, i.lines)
            try:
                add = flag(item, "add-default-route")
                distance = number(item, "default-route-distance", 1, 0, 255)
                disabled = flag(item, "disabled")
            except InvalidItemError as exc:
                tally.skip(exc.line, exc.reason)
                continue
            if not add or disabled:
                continue
            check = (i.get("check-gateway") or "").lower() or None
            out.append(
                Route(
                    line=i.line,
                    dst=IPv4Network("0.0.0.0/0"),
                    gateways=(Gateway(iface, None, iface, None),),
                    distance=distance,
                    scope=30,
                    target_scope=10,
                    check=None if check == "none" else check,
                    table="main",
                    kind="unicast",
                    disabled=False,
                    comment=i.get("comment") or "",
                    raw={**i.args, "interface": iface},
                    origin=section,
                )
            )
    return out


def _client_scripts(items: Items) -> Iterator[tuple[str, int, str]]:
    """(interface, line, text) of the script each enabled client runs when its link
    comes up: a DHCP client's ``script`` (run on bound and unbound), a PPP client's
    profile ``on-up`` (RouterOS manual: DHCP client; PPP AAA, profile properties)."""
    profiles = {i.get("name") or "": i for i in items["ppp profile"]}
    for section in CLIENTS:
        if section == "interface lte":
            continue  # no script property
        for iface, i in clients(items, section):
            if "disabled" in i.flags or yes_no(i.get("disabled") or "no"):
                continue
            owner: Item | None = i
            key = "script"
            if section != "ip dhcp-client":
                name = i.get("profile") or _DEFAULT_PROFILE.get(section, "default-encryption")
                owner, key = profiles.get(name), "on-up"
            text = owner.get(key) if owner is not None else None
            if owner is not None and text:
                yield iface, owner.line_of(key), text


def _repointed(line: int, script: str, tally: Tally) -> list[Selector]:
    """The ``[find ...]`` of each ``/ip route set ... gateway=$value`` a client's
    script may run: routes it moves to the gateway the client just learnt."""
    try:
        cmds = list(commands(script, "<script>", branches=True))
    except RouterOSError:
        tally.notes.append((line, "client script is not a readable RouterOS script"))
        return []
    out: list[Selector] = []
    for c in cmds:
        if not isinstance(c, Command) or c.path != "ip route":
            continue
        if "$" not in c.args.get("gateway", ""):
            continue  # no gateway learnt at run time: nothing follows the client
        if c.verb == "add":
            tally.notes.append((line, "client script adds routes at run time: not modelled"))
            continue
        if c.verb != "set":
            continue
        if c.selector is None or not c.selector.supported or not c.selector.conditions:
            tally.notes.append(
                (line, "client script sets a route's gateway without a literal [find ...]: "
                 "which routes follow the client is not modelled")
            )  # fmt: skip
            continue
        out.append(c.selector)
    return out


def follow(items: Items, routes: list[Route], tally: Tally) -> list[Route]:
    """Static routes a client's up script re-points at the gateway it learnt go
    through that client's interface, as its own default route does: they are
    down when its link or session is. A route two clients re-point has whichever
    gateway came up last: left as written, with a note."""
    owners: dict[int, set[str]] = {}
    read: dict[str, tuple[Selector, ...]] = {}  # a profile serves many clients
    for iface, line, script in _client_scripts(items):
        if script not in read:
            read[script] = tuple(dict.fromkeys(_repointed(line, script, tally)))
        for selector in read[script]:
            for k, r in enumerate(routes):
                if r.origin == "static" and r.kind == "unicast" and matches(selector, r.raw):
                    owners.setdefault(k, set()).add(iface)
    out = list(routes)
    for k, ifaces in sorted(owners.items()):
        r = routes[k]
        if len(ifaces) > 1:
            tally.notes.append(
                (r.line, f"gateway set by the scripts of {', '.join(sorted(ifaces))}, "
                 "whichever came up last: not modelled")
            )  # fmt: skip
            continue
        (iface,) = ifaces
        out[k] = replace(r, gateways=(Gateway(iface, None, iface, None),))
    return out
