"""Commands to the typed model: keep the modelled sections, apply ``set``/``remove``
selectors to their items, and type every value (RouterOS defaults from the manual).

Over 600 lines because it is one table of RouterOS menus -> typed items; split
by menu it would scatter the defaults the simulator relies on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import (
    AddressValueError,
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    NetmaskValueError,
)
from typing import TypeVar

from wanwatch.errors import RouterOSError
from wanwatch.routeros.commands import Command, Selector, Skipped, commands, matches, yes_no
from wanwatch.routeros.lexer import located
from wanwatch.routeros.model import (
    Address,
    DhcpNetwork,
    DhcpServer,
    Export,
    Gateway,
    Lease,
    MangleRule,
    NatRule,
    Netwatch,
    Pool,
    Route,
    RoutingRule,
    RoutingTable,
)

T = TypeVar("T")

# Bound that keeps the simulator cheap: it is polynomial in the number of routes.
MAX_ROUTES = 2000


@dataclass
class _Item:
    line: int
    args: dict[str, str]
    flags: set[str]
    lines: dict[str, int] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        return self.args.get(key)

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


# section path -> kind of object list ("list": add/set/remove items; "single": one setting)
_SECTIONS: dict[str, str] = {
    "ip address": "list",
    "ip route": "list",
    "routing table": "list",
    "routing rule": "list",
    "ip route rule": "list",
    "ip firewall nat": "list",
    "ip firewall mangle": "list",
    "ip firewall address-list": "list",
    "interface list member": "list",
    "ip pool": "list",
    "ip dhcp-server": "list",
    "ip dhcp-server network": "list",
    "ip dhcp-server lease": "list",
    "ip dhcp-client": "list",
    "interface pppoe-client": "list",
    "interface l2tp-client": "list",
    "interface pptp-client": "list",
    "interface sstp-client": "list",
    "interface ovpn-client": "list",
    "interface lte": "list",
    "interface lte apn": "list",
    "tool netwatch": "list",
    "system script": "list",
    "ppp profile": "list",
    "ip dns": "single",
}


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
}
_TUNNELS = (
    "interface l2tp-client",
    "interface pptp-client",
    "interface sstp-client",
    "interface ovpn-client",
)
# Sections whose items a script may ``set`` without adding them: hardware-made ones
# (an export finds them by default name) and clients a configuration script
# changes on a router that has them. A ``set [ find name=X ]`` that matches nothing
# in the file refers to such an item.
_ON_ROUTER = frozenset({*CLIENTS, "interface lte apn"})
# The profiles every router has, which an export sets by name, and the one each PPP
# client uses unless it names another (RouterOS manual, PPP AAA; PPPoE and OVPN
# client ``profile``: default; L2TP, PPTP, SSTP client: default-encryption).
_BUILTIN_PROFILES = frozenset({"default", "default-encryption"})
_DEFAULT_PROFILE = {"interface pppoe-client": "default", "interface ovpn-client": "default"}


class _InvalidItemError(Exception):
    """A value RouterOS would reject: the item is not modelled (line, reason)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def item_names(args: dict[str, str] | Mapping[str, str]) -> set[str]:
    """The words a command may name an item by: its name, or a client's interface."""
    return {v for k in ("name", "interface", "default-name") if (v := args.get(k))}


class Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: dict[str, list[_Item]] = {k: [] for k, v in _SECTIONS.items() if v == "list"}
        self.single: dict[str, _Item] = {}
        self.skipped = 0
        self.notes: list[tuple[int, str]] = []

    def skip(self, line: int, note: str | None = None) -> None:
        self.skipped += 1
        if note is not None:
            self.notes.append((line, note))

    def feed(self, cmd: Command | Skipped) -> None:
        if isinstance(cmd, Skipped):
            self.skip(cmd.line, cmd.note)
            return
        kind = _SECTIONS.get(cmd.path)
        if kind is None or cmd.by_number:
            self.skipped += 1
            return
        if cmd.note is not None:
            self.skip(cmd.line, cmd.note)
            return
        if cmd.bad_key is not None:
            self.skip(cmd.line, f"{cmd.bad_key!r} is not a property name")
            return
        if kind == "single":
            if cmd.verb != "set":
                self.skipped += 1
                return
            item = self.single.setdefault(cmd.path, _Item(cmd.line, {}, set()))
            self._apply(item, cmd)
            return
        items = self.items[cmd.path]
        if cmd.verb == "add":
            if cmd.selector is not None:
                self.skipped += 1
                return
            item = _Item(cmd.line, {}, set())
            self._apply(item, cmd)
            items.append(item)
        elif cmd.verb in ("set", "enable", "disable", "remove"):
            names = {f for f in cmd.flags if not f.startswith("!")}
            if cmd.selector is not None:
                chosen = [it for it in items if matches(cmd.selector, it.args)]
            elif names:
                chosen = [it for it in items if item_names(it.args) & names]
            else:
                self.skipped += 1
                return
            if not chosen and cmd.path in _ON_ROUTER and cmd.selector is not None:
                made = self._router_item(cmd.path, cmd.selector, cmd.line)
                chosen = [made] if made is not None else []
            if not chosen and cmd.path == "ppp profile" and cmd.selector is None:
                chosen = [_Item(cmd.line, {"name": n}, set()) for n in names & _BUILTIN_PROFILES]
                items += chosen
            if cmd.verb == "remove":
                keep = [it for it in items if not any(it is c for c in chosen)]
                items[:] = keep
            elif cmd.verb == "set":
                for it in chosen:
                    self._apply(it, cmd)
            else:
                for it in chosen:
                    it.args["disabled"] = "yes" if cmd.verb == "disable" else "no"
                    it.lines["disabled"] = cmd.line
        else:
            self.skipped += 1

    def _router_item(self, path: str, selector: Selector, line: int) -> _Item | None:
        """The item a ``set [ find default-name=lte1 ]`` refers to, made on first use;
        None unless the selector names it. A bare ``set [ find ]`` in ``/interface lte``
        sets the router's one modem (the command then names it)."""
        args = {c.key: c.value for c in selector.conditions if c.op == "="}
        if "default-name" in args:
            args.setdefault("name", args["default-name"])
        if args.get("default") == "yes":
            args.setdefault("name", "default")
        modem = path == "interface lte" and not selector.conditions
        if not selector.supported or not (item_names(args) or modem):
            return None
        item = _Item(line, args, set())
        self.items[path].append(item)
        return item

    def _apply(self, item: _Item, cmd: Command) -> None:
        for k, v in cmd.args.items():
            item.args[k] = v
            item.lines[k] = cmd.line
        for f in cmd.flags:
            if item_names(item.args) & {f} and cmd.verb != "add":
                continue  # the item's name, naming it, not a flag
            if f.startswith("!"):
                item.args.pop(f[1:], None)
            else:
                item.flags.add(f)
                item.lines[f] = cmd.line

    # ---------------------------------------------------------------- typing helpers

    def err(self, item: _Item, key: str, reason: str) -> _InvalidItemError:
        return _InvalidItemError(item.line_of(key), f"{key}={item.args.get(key, '')!r}: {reason}")

    def typed(self, items: list[_Item], make: Callable[[_Item], T | None]) -> tuple[T, ...]:
        """Each item typed by ``make``; one RouterOS would reject is skipped with a note."""
        out: list[T] = []
        for i in items:
            try:
                value = make(i)
            except _InvalidItemError as exc:
                self.skip(exc.line, exc.reason)
                continue
            if value is not None:
                out.append(value)
        return tuple(out)

    def num(self, item: _Item, key: str, default: int, lo: int, hi: int) -> int:
        v = item.get(key)
        if v is None or v == "":
            return default
        if not re.fullmatch(r"\d{1,10}", v) or not lo <= int(v) <= hi:
            raise self.err(item, key, f"not a whole number {lo}-{hi}")
        return int(v)

    def flag(self, item: _Item, key: str, default: bool = False) -> bool:
        if key in item.flags:
            return True
        v = item.get(key)
        if v is None or v == "":
            return default
        b = yes_no(v)
        if b is None:
            raise self.err(item, key, "not yes/no")
        return b

    def duration(self, item: _Item, key: str) -> float | None:
        v = item.get(key)
        if v is None or v in ("", "none"):
            return None
        d = parse_duration(v)
        if d is None:
            raise self.err(item, key, "not a RouterOS duration (e.g. 1d, 10m, 500ms, 00:10:00)")
        return d

    def word(self, item: _Item, key: str) -> str | None:
        v = item.get(key)
        return v if v else None

    # ---------------------------------------------------------------- build

    def build(self, version: int | None) -> Export:
        it = self.items
        addresses = self.typed(it["ip address"], self._address)
        routes = list(self.typed(it["ip route"], self._route))
        routes += self._client_routes()
        if len(routes) > MAX_ROUTES:
            raise located(
                self.source, routes[MAX_ROUTES].line, f"more than {MAX_ROUTES} routes to simulate"
            )
        routes = self._follow(routes)
        if version is None:
            if it["routing table"] or any("routing-table" in i.args for i in it["ip route"]):
                version = 7
            elif any("routing-mark" in i.args for i in it["ip route"]) or it["ip route rule"]:
                version = 6
        lists: dict[str, set[str]] = {}
        for m in it["interface list member"]:
            if m.get("disabled") not in ("yes", "true") and "disabled" not in m.flags:
                lists.setdefault(m.get("list") or "", set()).add(m.get("interface") or "")
        dns = self.single.get("ip dns")
        return Export(
            source=self.source,
            version=version,
            addresses=addresses,
            routes=tuple(routes),
            tables=self.typed(
                it["routing table"],
                lambda i: RoutingTable(i.line, i.get("name") or "", self.flag(i, "fib")),
            ),
            rules=self.typed(it["routing rule"] + it["ip route rule"], self._rule),
            nat=self.typed(it["ip firewall nat"], self._nat),
            mangle=self.typed(it["ip firewall mangle"], self._mangle),
            interface_lists={k: frozenset(v) for k, v in lists.items()},
            pools=tuple(
                Pool(i.line, i.get("name") or "", i.get("ranges") or "") for i in it["ip pool"]
            ),
            dhcp_servers=self.typed(it["ip dhcp-server"], self._dhcp_server),
            dhcp_networks=self.typed(it["ip dhcp-server network"], self._dhcp_network),
            leases=tuple(
                Lease(i.line, i.get("address") or "", i.get("mac-address") or "", i.get("server"))
                for i in it["ip dhcp-server lease"]
            ),
            netwatch=self.typed(it["tool netwatch"], self._netwatch),
            scripts={i.get("name") or "": i.get("source") or "" for i in it["system script"]},
            dns_servers=tuple(
                s for s in ((dns.get("servers") or "").split(",") if dns else []) if s
            ),
            skipped_lines=self.skipped,
            dynamic_addresses=any(it[section] for section in CLIENTS),
            tunnels={
                name: i.get("connect-to") or ""
                for section in _TUNNELS
                for name, i in self._clients(section)
            },
            peer_links=frozenset(
                name
                for section, (_, peer) in CLIENTS.items()
                if peer
                for name, _ in self._clients(section)
            ),
            notes=tuple(sorted(self.notes)),
        )

    def _address(self, i: _Item) -> Address | None:
        v = i.get("address") or ""
        try:
            a = IPv4Interface(v)
        except (AddressValueError, NetmaskValueError, ValueError):
            raise self.err(i, "address", "not an IPv4 address/prefix") from None
        iface = i.get("interface")
        if not iface:
            raise _InvalidItemError(i.line, "/ip address without interface=")
        if self.flag(i, "disabled"):
            return None  # a disabled address gives no connected route
        return Address(i.line, a, iface)

    def _route(self, i: _Item) -> Route:
        dst_text = i.get("dst-address") or "0.0.0.0/0"
        try:
            dst = IPv4Network(dst_text, strict=False)
        except (AddressValueError, NetmaskValueError, ValueError):
            raise self.err(i, "dst-address", "not an IPv4 prefix") from None
        kind = (i.get("type") or "unicast").lower()
        for k in ("blackhole", "unreachable", "prohibit"):
            if self.flag(i, k):
                kind = k
        if kind not in ("unicast", "blackhole", "unreachable", "prohibit"):
            raise self.err(i, "type", "not unicast, blackhole, unreachable or prohibit")
        gateways = tuple(self._gateway(i, g) for g in (i.get("gateway") or "").split(",") if g)
        if kind == "unicast" and not gateways:
            raise _InvalidItemError(i.line, "route without gateway= (and not a blackhole)")
        check = (i.get("check-gateway") or "").lower() or None
        if check == "none" or not any(g.address for g in gateways):
            # check-gateway pings or ARPs a gateway address; an interface gateway
            # (pppoe-out1) has none, so the check tests nothing.
            check = None
        table = i.get("routing-table") or i.get("routing-mark") or "main"
        return Route(
            line=i.line,
            dst=dst,
            gateways=gateways,
            # RouterOS defaults for static routes: distance 1, scope 30, target-scope 10.
            distance=self.num(i, "distance", 1, 0, 255),
            scope=self.num(i, "scope", 30, 0, 255),
            target_scope=self.num(i, "target-scope", 10, 0, 255),
            check=check,
            table=table,
            kind=kind,
            disabled=self.flag(i, "disabled"),
            comment=i.get("comment") or "",
            raw=dict(i.args),
        )

    def _gateway(self, i: _Item, text: str) -> Gateway:
        body, _, table = text.partition("@")
        body, _, iface = body.partition("%")
        try:
            a = IPv4Address(body)
        except AddressValueError:
            if not re.fullmatch(r"[^\s/:]+", body) or body[0].isdigit():
                raise self.err(i, "gateway", "not an IPv4 address or interface name") from None
            return Gateway(body, None, body, table or None)
        return Gateway(body, a, iface or None, table or None)

    def _clients(self, section: str) -> list[tuple[str, _Item]]:
        """(interface name, item) of each client of a section, unnamed ones numbered."""
        prefix = CLIENTS[section][0]
        key = "interface" if section == "ip dhcp-client" else "name"
        out = []
        for n, i in enumerate(self.items[section], start=1):
            out.append((i.get(key) or f"{prefix}{n}", i))
        return out

    def _client_routes(self) -> list[Route]:
        """Default routes that DHCP, PPP and LTE clients add at run time (not in the
        export). add-default-route defaults: yes for DHCP and LTE APN profiles, no for
        PPP clients; default-route-distance: 1, for LTE APN profiles 2 (RouterOS
        manual: DHCP client, PPPoE client, LTE APN profile properties)."""
        apns = {i.get("name") or "": i for i in self.items["interface lte apn"]}
        out: list[Route] = []
        for section in CLIENTS:
            for iface, i in self._clients(section):
                settings = {"add-default-route": "no", "default-route-distance": "1"}
                if section == "ip dhcp-client":
                    settings["add-default-route"] = "yes"
                elif section == "interface lte":
                    settings = {"add-default-route": "yes", "default-route-distance": "2"}
                    profile = (i.get("apn-profiles") or "default").split(",")[0]
                    if profile in apns:
                        settings.update(apns[profile].args)
                settings.update(i.args)
                item = _Item(i.line, settings, i.flags, i.lines)
                try:
                    add = self.flag(item, "add-default-route")
                    distance = self.num(item, "default-route-distance", 1, 0, 255)
                    disabled = self.flag(item, "disabled")
                except _InvalidItemError as exc:
                    self.skip(exc.line, exc.reason)
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

    def _client_scripts(self) -> Iterator[tuple[str, int, str]]:
        """(interface, line, text) of the script each enabled client runs when its link
        comes up: a DHCP client's ``script`` (run on bound and unbound), a PPP client's
        profile ``on-up`` (RouterOS manual: DHCP client; PPP AAA, profile properties)."""
        profiles = {i.get("name") or "": i for i in self.items["ppp profile"]}
        for section in CLIENTS:
            if section == "interface lte":
                continue  # no script property
            for iface, i in self._clients(section):
                if "disabled" in i.flags or yes_no(i.get("disabled") or "no"):
                    continue
                owner: _Item | None = i
                key = "script"
                if section != "ip dhcp-client":
                    name = i.get("profile") or _DEFAULT_PROFILE.get(section, "default-encryption")
                    owner, key = profiles.get(name), "on-up"
                text = owner.get(key) if owner is not None else None
                if owner is not None and text:
                    yield iface, owner.line_of(key), text

    def _repointed(self, line: int, script: str) -> list[Selector]:
        """The ``[find ...]`` of each ``/ip route set ... gateway=$value`` a client's
        script may run: routes it moves to the gateway the client just learnt."""
        try:
            cmds = list(commands(script, "<script>", branches=True))
        except RouterOSError:
            self.notes.append((line, "client script is not a readable RouterOS script"))
            return []
        out: list[Selector] = []
        for c in cmds:
            if not isinstance(c, Command) or c.path != "ip route":
                continue
            if "$" not in c.args.get("gateway", ""):
                continue  # no gateway learnt at run time: nothing follows the client
            if c.verb == "add":
                self.notes.append((line, "client script adds routes at run time: not modelled"))
                continue
            if c.verb != "set":
                continue
            if c.selector is None or not c.selector.supported or not c.selector.conditions:
                self.notes.append(
                    (line, "client script sets a route's gateway without a literal [find ...]: "
                     "which routes follow the client is not modelled")
                )  # fmt: skip
                continue
            out.append(c.selector)
        return out

    def _follow(self, routes: list[Route]) -> list[Route]:
        """Static routes a client's up script re-points at the gateway it learnt go
        through that client's interface, as its own default route does: they are
        down when its link or session is. A route two clients re-point has whichever
        gateway came up last: left as written, with a note."""
        owners: dict[int, set[str]] = {}
        read: dict[str, tuple[Selector, ...]] = {}  # a profile serves many clients
        for iface, line, script in self._client_scripts():
            if script not in read:
                read[script] = tuple(dict.fromkeys(self._repointed(line, script)))
            for selector in read[script]:
                for k, r in enumerate(routes):
                    if r.origin == "static" and r.kind == "unicast" and matches(selector, r.raw):
                        owners.setdefault(k, set()).add(iface)
        out = list(routes)
        for k, ifaces in sorted(owners.items()):
            r = routes[k]
            if len(ifaces) > 1:
                self.notes.append(
                    (r.line, f"gateway set by the scripts of {', '.join(sorted(ifaces))}, "
                     "whichever came up last: not modelled")
                )  # fmt: skip
                continue
            (iface,) = ifaces
            out[k] = replace(r, gateways=(Gateway(iface, None, iface, None),))
        return out

    def _rule(self, i: _Item) -> RoutingRule:
        other = any(k in i.args for k in ("src-address", "dst-address", "interface"))
        return RoutingRule(
            i.line,
            i.get("routing-mark"),
            (i.get("action") or "lookup").lower(),
            i.get("table") or "main",
            other,
            self.flag(i, "disabled"),
            self.word(i, "src-address"),
            self.word(i, "interface"),
        )

    def _nat(self, i: _Item) -> NatRule:
        return NatRule(
            i.line,
            i.get("chain") or "",
            (i.get("action") or "accept").lower(),
            self.word(i, "out-interface"),
            self.word(i, "out-interface-list"),
            self.flag(i, "disabled"),
        )

    def _mangle(self, i: _Item) -> MangleRule:
        return MangleRule(
            i.line,
            i.get("chain") or "",
            (i.get("action") or "accept").lower(),
            self.word(i, "new-connection-mark"),
            self.word(i, "new-routing-mark"),
            self.word(i, "per-connection-classifier"),
            self.word(i, "in-interface"),
            self.word(i, "connection-mark"),
            self.flag(i, "disabled"),
            self.word(i, "in-interface-list"),
        )

    def _dhcp_server(self, i: _Item) -> DhcpServer:
        return DhcpServer(
            i.line,
            i.get("name") or "",
            i.get("interface") or "",
            self.word(i, "address-pool"),
            self.duration(i, "lease-time"),
            self.flag(i, "disabled"),
        )

    def _dhcp_network(self, i: _Item) -> DhcpNetwork:
        try:
            net = IPv4Network(i.get("address") or "", strict=False)
        except (AddressValueError, NetmaskValueError, ValueError):
            raise self.err(i, "address", "not an IPv4 prefix") from None
        dns = tuple(s for s in (i.get("dns-server") or "").split(",") if s)
        return DhcpNetwork(i.line, net, self.word(i, "gateway"), dns)

    def _netwatch(self, i: _Item) -> Netwatch | None:
        try:
            host = IPv4Address(i.get("host") or "")
        except AddressValueError:
            self.skipped += 1  # IPv6 or DNS-name probes: nothing to route in /ip route
            return None
        thr_key = "thr-avg" if "thr-avg" in i.args else "thr-rtt-avg"
        return Netwatch(
            line=i.line,
            host=host,
            type=(i.get("type") or "simple").lower(),
            interval=self.duration(i, "interval"),
            timeout=self.duration(i, "timeout"),
            thr_avg=self.duration(i, thr_key),
            up_script=i.get("up-script") or "",
            down_script=i.get("down-script") or "",
            disabled=self.flag(i, "disabled"),
        )


_DUR_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|w|d|h|m|s)")


def parse_duration(value: str) -> float | None:
    """RouterOS time: ``1d``, ``1h30m``, ``500ms``, ``00:10:00``, ``1d02:00:00``, ``30``."""
    v = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    m = re.fullmatch(r"((?:\d+[wd])*)(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)", v)
    if m:
        days = parse_duration(m.group(1)) if m.group(1) else 0.0
        clock = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
        return (days or 0.0) + clock
    if not v or _DUR_PART.sub("", v):
        return None
    unit = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    return sum(float(n) * unit[u] for n, u in _DUR_PART.findall(v))
