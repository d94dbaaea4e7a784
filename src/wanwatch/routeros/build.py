"""Commands to the typed model: keep the modelled sections, apply ``set``/``remove``
selectors to their items, and type each menu's items (RouterOS defaults from the
manual). Value typing is in :mod:`values`, the clients' run-time routes in
:mod:`clients`."""

from __future__ import annotations

import re
from ipaddress import (
    AddressValueError,
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    NetmaskValueError,
    ip_address,
)

from wanwatch.routeros.clients import (
    CLIENTS,
    client_routes,
    follow,
    peer_links,
    radio_links,
    tunnels,
)
from wanwatch.routeros.commands import Command, Selector, Skipped, matches
from wanwatch.routeros.lexer import located
from wanwatch.routeros.model import (
    Address,
    DhcpNetwork,
    DhcpServer,
    Export,
    FilterRule,
    Gateway,
    InterfaceSet,
    Lease,
    MangleRule,
    NatRule,
    Netwatch,
    Pool,
    Route,
    RoutingRule,
    RoutingTable,
)
from wanwatch.routeros.values import (
    InvalidItemError,
    Item,
    Tally,
    duration,
    flag,
    invalid,
    item_names,
    number,
    word,
)

# Bound that keeps the simulator cheap: it is polynomial in the number of routes.
MAX_ROUTES = 2000


# section path -> kind of object list ("list": add/set/remove items; "single": one setting)
_SECTIONS: dict[str, str] = {
    "ip address": "list",
    "ip route": "list",
    "routing table": "list",
    "routing rule": "list",
    "ip route rule": "list",
    "ip firewall nat": "list",
    "ip firewall filter": "list",
    "ip firewall mangle": "list",
    "ip firewall address-list": "list",
    "interface list": "list",
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
    "interface ppp-client": "list",
    "interface lte apn": "list",
    "tool netwatch": "list",
    "system script": "list",
    "ppp profile": "list",
    "ip dns": "single",
    "ipv6 address": "list",
    "ipv6 route": "list",
    "ipv6 firewall filter": "list",
    "ipv6 firewall nat": "list",
    "ipv6 firewall mangle": "list",
    "ipv6 firewall address-list": "list",
    "ipv6 settings": "single",
}


# The filter properties verify reads, and those that match no packet (bookkeeping and
# what a rule does with a match); any other property narrows what the rule takes.
_FILTER_JUDGED = frozenset(
    {"chain", "action", "jump-target", "in-interface", "in-interface-list"}
    | {"connection-state", "connection-nat-state", "disabled", "comment", "log"}
    | {"log-prefix", "place-before", "reject-with", "address-list", "address-list-timeout"}
)

# Sections whose items a script may ``set`` without adding them: hardware-made ones
# (an export finds them by default name) and clients a configuration script
# changes on a router that has them. A ``set [ find name=X ]`` that matches nothing
# in the file refers to such an item.
_ON_ROUTER = frozenset({*CLIENTS, "interface lte apn"})
# The profiles every router has, which an export sets by name (RouterOS manual,
# PPP AAA).
_BUILTIN_PROFILES = frozenset({"default", "default-encryption"})


_UNROUTED_DNS = (
    "type=dns: dns-server is not an address, so where its queries go is not known "
    "(unset, they go to the /ip dns servers)"
)


class Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: dict[str, list[Item]] = {k: [] for k, v in _SECTIONS.items() if v == "list"}
        self.single: dict[str, Item] = {}
        self.tally = Tally()

    def feed(self, cmd: Command | Skipped) -> None:
        if isinstance(cmd, Skipped):
            self.tally.skip(cmd.line, cmd.note)
            return
        kind = _SECTIONS.get(cmd.path)
        if kind is None or cmd.by_number:
            self.tally.skip(cmd.line)
            return
        if cmd.note is not None:
            self.tally.skip(cmd.line, cmd.note)
            return
        if cmd.bad_key is not None:
            self.tally.skip(cmd.line, f"{cmd.bad_key!r} is not a property name")
            return
        if kind == "single":
            if cmd.verb != "set":
                self.tally.skip(cmd.line)
                return
            item = self.single.setdefault(cmd.path, Item(cmd.line, {}, set()))
            self._apply(item, cmd)
            return
        items = self.items[cmd.path]
        if cmd.verb == "add":
            if cmd.selector is not None:
                self.tally.skip(cmd.line)
                return
            item = Item(cmd.line, {}, set())
            self._apply(item, cmd)
            items.append(item)
        elif cmd.verb in ("set", "enable", "disable", "remove"):
            names = {f for f in cmd.flags if not f.startswith("!")}
            if cmd.selector is not None:
                chosen = [it for it in items if matches(cmd.selector, it.args)]
            elif names:
                chosen = [it for it in items if item_names(it.args) & names]
            else:
                self.tally.skip(cmd.line)
                return
            if not chosen and cmd.path in _ON_ROUTER and cmd.selector is not None:
                made = self._router_item(cmd.path, cmd.selector, cmd.line)
                chosen = [made] if made is not None else []
            if not chosen and cmd.path == "ppp profile" and cmd.selector is None:
                chosen = [Item(cmd.line, {"name": n}, set()) for n in names & _BUILTIN_PROFILES]
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
            self.tally.skip(cmd.line)

    def _router_item(self, path: str, selector: Selector, line: int) -> Item | None:
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
        item = Item(line, args, set())
        self.items[path].append(item)
        return item

    def _apply(self, item: Item, cmd: Command) -> None:
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

    # ---------------------------------------------------------------- build

    def build(self, version: int | None) -> Export:
        it = self.items
        addresses = self.tally.typed(it["ip address"], self._address)
        routes = list(self.tally.typed(it["ip route"], self._route))
        routes += client_routes(it, self.tally)
        if len(routes) > MAX_ROUTES:
            raise located(
                self.source, routes[MAX_ROUTES].line, f"more than {MAX_ROUTES} routes to simulate"
            )
        routes = follow(it, routes, self.tally)
        if version is None:
            if it["routing table"] or any("routing-table" in i.args for i in it["ip route"]):
                version = 7
            elif any("routing-mark" in i.args for i in it["ip route"]) or it["ip route rule"]:
                version = 6
        dns = self.single.get("ip dns")
        six = self.single.get("ipv6 settings")
        ra = six is not None and six.get("accept-router-advertisements") == "yes"
        netwatch = self.tally.typed(it["tool netwatch"], self._netwatch)
        routes6 = list(self.tally.typed(it["ipv6 route"], self._route6))
        if ra and six is not None:
            routes6.append(learned_route(six.line_of("accept-router-advertisements")))
        return Export(
            source=self.source,
            version=version,
            addresses=addresses,
            routes=tuple(routes),
            tables=self.tally.typed(
                it["routing table"],
                lambda i: RoutingTable(i.line, i.get("name") or "", flag(i, "fib")),
            ),
            rules=self.tally.typed(it["routing rule"] + it["ip route rule"], self._rule),
            nat=self.tally.typed(it["ip firewall nat"], self._nat),
            mangle=self.tally.typed(it["ip firewall mangle"], self._mangle),
            interface_lists=self._interface_lists(),
            pools=tuple(
                Pool(i.line, i.get("name") or "", i.get("ranges") or "") for i in it["ip pool"]
            ),
            dhcp_servers=self.tally.typed(it["ip dhcp-server"], self._dhcp_server),
            dhcp_networks=self.tally.typed(it["ip dhcp-server network"], self._dhcp_network),
            leases=tuple(
                Lease(i.line, i.get("address") or "", i.get("mac-address") or "", i.get("server"))
                for i in it["ip dhcp-server lease"]
            ),
            netwatch=tuple(n for n in netwatch if n.host.version == 4),
            scripts={i.get("name") or "": i.get("source") or "" for i in it["system script"]},
            dns_servers=tuple(
                s for s in ((dns.get("servers") or "").split(",") if dns else []) if s
            ),
            skipped_lines=self.tally.skipped,
            dynamic_addresses=any(it[section] for section in CLIENTS),
            tunnels=tunnels(it),
            peer_links=peer_links(it),
            radio_links=radio_links(it),
            notes=tuple(sorted(self.tally.notes)),
            filters=self.tally.typed(it["ip firewall filter"], self._filter),
            addresses6=self.tally.typed(it["ipv6 address"], self._address6),
            routes6=tuple(routes6),
            netwatch6=tuple(n for n in netwatch if n.host.version == 6),
            filters6=self.tally.typed(it["ipv6 firewall filter"], self._filter),
            nat6=self.tally.typed(it["ipv6 firewall nat"], self._nat),
            mangle6=self.tally.typed(it["ipv6 firewall mangle"], self._mangle),
            ra_line=six.line_of("accept-router-advertisements") if ra and six else None,
        )

    def _interface_lists(self) -> dict[str, InterfaceSet]:
        """Each list's interfaces: its members, plus those of the lists it includes,
        less those of the lists it excludes (RouterOS manual, Interface list:
        ``include``, ``exclude``), nested to any depth. Computed as a fixed point, so
        lists that include each other end too; ``all`` and ``none`` are built in."""
        direct: dict[str, set[str]] = {}
        for m in self.items["interface list member"]:
            if m.get("disabled") not in ("yes", "true") and "disabled" not in m.flags:
                direct.setdefault(m.get("list") or "", set()).add(m.get("interface") or "")
        refs: dict[str, tuple[list[str], list[str]]] = {}
        for i in self.items["interface list"]:
            inc, exc = ((i.get(k) or "").split(",") for k in ("include", "exclude"))
            refs[i.get("name") or ""] = ([n for n in inc if n], [n for n in exc if n])
        lists = {n: InterfaceSet(frozenset(direct.get(n, ()))) for n in {*direct, *refs}}
        builtin = {"all": InterfaceSet(all_but=True), "none": InterfaceSet()}
        for _ in range(len(refs) + 1):  # a chain of n includes settles in n rounds
            known = {**lists, **builtin}
            new = dict(lists)
            for name, (inc, exc) in refs.items():
                s = InterfaceSet(frozenset(direct.get(name, ())))
                for n in inc:
                    s |= known.get(n, InterfaceSet())
                for n in exc:
                    s -= known.get(n, InterfaceSet())
                new[name] = s
            if new == lists:
                break
            lists = new
        return {**builtin, **lists}

    def _address(self, i: Item) -> Address | None:
        v = i.get("address") or ""
        try:
            a = IPv4Interface(v)
        except (AddressValueError, NetmaskValueError, ValueError):
            raise invalid(i, "address", "not an IPv4 address/prefix") from None
        iface = i.get("interface")
        if not iface:
            raise InvalidItemError(i.line, "/ip address without interface=")
        if flag(i, "disabled"):
            return None  # a disabled address gives no connected route
        return Address(i.line, a, iface)

    def _address6(self, i: Item) -> Address | None:
        try:
            a = IPv6Interface(i.get("address") or "")
        except (AddressValueError, NetmaskValueError, ValueError):
            raise invalid(i, "address", "not an IPv6 address/prefix") from None
        iface = i.get("interface")
        if not iface:
            raise InvalidItemError(i.line, "/ipv6 address without interface=")
        if flag(i, "disabled"):
            return None
        return Address(i.line, a, iface)

    def _route6(self, i: Item) -> Route:
        return self._route(i, family=6)

    def _route(self, i: Item, family: int = 4) -> Route:
        net = IPv4Network if family == 4 else IPv6Network
        dst_text = i.get("dst-address") or ("0.0.0.0/0" if family == 4 else "::/0")
        try:
            dst = net(dst_text, strict=False)
        except (AddressValueError, NetmaskValueError, ValueError):
            raise invalid(i, "dst-address", f"not an IPv{family} prefix") from None
        kind = (i.get("type") or "unicast").lower()
        for k in ("blackhole", "unreachable", "prohibit"):
            if flag(i, k):
                kind = k
        if kind not in ("unicast", "blackhole", "unreachable", "prohibit"):
            raise invalid(i, "type", "not unicast, blackhole, unreachable or prohibit")
        gateways = tuple(
            self._gateway(i, g, family) for g in (i.get("gateway") or "").split(",") if g
        )
        if kind == "unicast" and not gateways:
            raise InvalidItemError(i.line, "route without gateway= (and not a blackhole)")
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
            distance=number(i, "distance", 1, 0, 255),
            scope=number(i, "scope", 30, 0, 255),
            target_scope=number(i, "target-scope", 10, 0, 255),
            check=check,
            table=table,
            kind=kind,
            disabled=flag(i, "disabled"),
            comment=i.get("comment") or "",
            raw=dict(i.args),
        )

    def _gateway(self, i: Item, text: str, family: int = 4) -> Gateway:
        body, _, table = text.partition("@")
        body, _, iface = body.partition("%")
        try:
            a: IPv4Address | IPv6Address = (IPv4Address if family == 4 else IPv6Address)(body)
        except AddressValueError:
            if not re.fullmatch(r"[^\s/:]+", body) or body[0].isdigit():
                raise invalid(
                    i, "gateway", f"not an IPv{family} address or interface name"
                ) from None
            return Gateway(body, None, body, table or None)
        return Gateway(body, a, iface or None, table or None)

    def _rule(self, i: Item) -> RoutingRule:
        other = any(k in i.args for k in ("src-address", "dst-address", "interface"))
        return RoutingRule(
            i.line,
            i.get("routing-mark"),
            (i.get("action") or "lookup").lower(),
            i.get("table") or "main",
            other,
            flag(i, "disabled"),
            word(i, "src-address"),
            word(i, "interface"),
        )

    def _nat(self, i: Item) -> NatRule:
        return NatRule(
            i.line,
            i.get("chain") or "",
            (i.get("action") or "accept").lower(),
            word(i, "out-interface"),
            word(i, "out-interface-list"),
            flag(i, "disabled"),
        )

    def _filter(self, i: Item) -> FilterRule:
        return FilterRule(
            i.line,
            i.get("chain") or "",
            (i.get("action") or "accept").lower(),
            word(i, "jump-target"),
            word(i, "in-interface"),
            word(i, "in-interface-list"),
            word(i, "connection-state"),
            word(i, "connection-nat-state"),
            any(k not in _FILTER_JUDGED for k in i.args),
            flag(i, "disabled"),
        )

    def _mangle(self, i: Item) -> MangleRule:
        return MangleRule(
            i.line,
            i.get("chain") or "",
            (i.get("action") or "accept").lower(),
            word(i, "new-connection-mark"),
            word(i, "new-routing-mark"),
            word(i, "per-connection-classifier"),
            word(i, "in-interface"),
            word(i, "connection-mark"),
            flag(i, "disabled"),
            word(i, "in-interface-list"),
        )

    def _dhcp_server(self, i: Item) -> DhcpServer:
        return DhcpServer(
            i.line,
            i.get("name") or "",
            i.get("interface") or "",
            word(i, "address-pool"),
            duration(i, "lease-time"),
            flag(i, "disabled"),
        )

    def _dhcp_network(self, i: Item) -> DhcpNetwork:
        try:
            net = IPv4Network(i.get("address") or "", strict=False)
        except (AddressValueError, NetmaskValueError, ValueError):
            raise invalid(i, "address", "not an IPv4 prefix") from None
        dns = tuple(s for s in (i.get("dns-server") or "").split(",") if s)
        return DhcpNetwork(i.line, net, word(i, "gateway"), dns)

    def _netwatch(self, i: Item) -> Netwatch | None:
        kind = (i.get("type") or "simple").lower()
        # type=dns asks dns-server for host, a name (manual, Netwatch); without a
        # dns-server it asks the /ip dns servers (the REST property as
        # terraform-provider-routeros's resource_tool_netwatch.go describes it).
        key = "dns-server" if kind == "dns" else "host"
        try:
            host = ip_address((i.get(key) or "").partition("@")[0])
        except ValueError:
            # A DNS name or a link-local%interface: nothing routed.
            self.tally.skip(i.line_of(key), _UNROUTED_DNS if kind == "dns" else None)
            return None
        thr_key = "thr-avg" if "thr-avg" in i.args else "thr-rtt-avg"
        return Netwatch(
            line=i.line,
            host=host,
            type=kind,
            interval=duration(i, "interval"),
            timeout=duration(i, "timeout"),
            thr_avg=duration(i, thr_key),
            up_script=i.get("up-script") or "",
            down_script=i.get("down-script") or "",
            disabled=flag(i, "disabled"),
        )


# The default route RouterOS learns from router advertisements: not in an export, and
# its gateway (the ISP router's link-local address) and interface are not known in
# advance. One route stands for it: unchecked, through a hop of its own; its distance
# is taken as 1, a static route's default (the manual does not give it).
LEARNED = "router-advertisement"


def learned_route(line: int) -> Route:
    return Route(
        line=line,
        dst=IPv6Network("::/0"),
        gateways=(Gateway(LEARNED, None, None, None),),
        distance=1,
        scope=30,
        target_scope=10,
        check=None,
        table="main",
        kind="unicast",
        disabled=False,
        comment="",
        raw={},
        origin="ipv6 settings",
    )
