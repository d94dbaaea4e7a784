"""Read a RouterOS ``/export`` (v6 or v7) into a typed model.

Two stages. The tokenizer turns text into commands: section headers (``/ip route``
or ``/ip/route``), ``add``/``set``/``remove``/``enable``/``disable`` lines, ``\\``
line continuations, quoted strings with RouterOS escapes, ``[ find ... ]``
selectors and ``#`` comments. The builder keeps the sections wanwatch models
(addresses, routes, routing tables and rules, NAT, mangle, DHCP, Netwatch, ...),
applies ``set``/``remove`` selectors to them, and types every value; everything
else is skipped and counted.

Tolerant of what it does not model, strict about what it does: a value RouterOS
itself would have rejected (``distance=abc``), an unterminated string or an
unbalanced bracket raises :class:`RouterOSError` naming the line and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import (
    AddressValueError,
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    NetmaskValueError,
)
from pathlib import Path

from wanwatch.errors import RouterOSError

# Bounds that keep hostile input cheap: every stage below is linear in the text,
# and the simulator is polynomial in these counts.
MAX_BYTES = 4 * 1024 * 1024
MAX_ROUTES = 2000

VERBS = frozenset(
    {
        "add",
        "set",
        "remove",
        "enable",
        "disable",
        "print",
        "export",
        "edit",
        "unset",
        "comment",
        "move",
        "reset",
        "find",
        "get",
        "monitor",
        "run",
        "import",
    }
)
_PATH_WORD = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_KEY = re.compile(r"^!?\.?[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VARIABLE = re.compile(r"(?<!\\)\$|^\(")  # $var or (expression): not evaluated
_VERSION = re.compile(r"\bRouterOS (\d+)[.\s]")
_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "_": " ",
}
_HEX = frozenset("0123456789ABCDEF")


def _fail(source: str, line: int, reason: str) -> RouterOSError:
    return RouterOSError(f"{source}:{line}: {reason}")


# --------------------------------------------------------------------------- tokenizer


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Physical lines joined at ``\\`` continuations, with the first line's number.

    RouterOS breaks long lines (also inside quoted strings) with a backslash and
    indents the rest; the indentation is not part of the value.
    """
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        start = i
        parts = [lines[i].rstrip("\r")]
        while i + 1 < len(lines) and _continues(parts[-1]):
            parts[-1] = parts[-1][:-1]
            i += 1
            parts.append(lines[i].rstrip("\r").lstrip(" \t"))
        yield start + 1, "".join(parts)
        i += 1


def _continues(line: str) -> bool:
    n = len(line) - len(line.rstrip("\\"))
    return n % 2 == 1


def split_tokens(text: str, source: str, line: int) -> list[str]:
    """Whitespace-separated tokens; quotes and brackets keep their insides together."""
    tokens: list[str] = []
    n = len(text)
    i = 0
    closers = {"[": "]", "(": ")", "{": "}"}
    while i < n:
        while i < n and text[i] in " \t\r\f\v":
            i += 1
        if i >= n:
            break
        start = i
        stack: list[str] = []
        while i < n:
            c = text[i]
            if c == '"':
                i = _skip_string(text, i, source, line)
            elif c == "\\":
                i += 2
            elif c in closers:
                stack.append(closers[c])
                i += 1
            elif c in "])}":
                if not stack or stack[-1] != c:
                    raise _fail(source, line, f"unbalanced {c!r} at column {i + 1}")
                stack.pop()
                i += 1
            elif c in " \t\r\f\v" and not stack:
                break
            else:
                i += 1
        if stack:
            raise _fail(
                source, line, f"unclosed bracket: expected {stack[-1]!r} before end of line"
            )
        tokens.append(text[start:i])
    return tokens


def _skip_string(text: str, i: int, source: str, line: int) -> int:
    j = i + 1
    n = len(text)
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
        elif c == '"':
            return j + 1
        else:
            j += 1
    raise _fail(source, line, f"unterminated quoted string starting at column {i + 1}")


def unquote(raw: str) -> str:
    """The value of a token part: quoted segments unescaped, the rest as written."""
    if '"' not in raw and "\\" not in raw:
        return raw
    out = bytearray()
    i = 0
    n = len(raw)
    in_string = False
    while i < n:
        c = raw[i]
        if c == '"':
            in_string = not in_string
            i += 1
        elif c == "\\" and i + 1 < n:
            e = raw[i + 1]
            if in_string and e in _HEX and i + 2 < n and raw[i + 2] in _HEX:
                out.append(int(raw[i + 1 : i + 3], 16))
                i += 3
                continue
            out += (_ESCAPES.get(e, e) if in_string else e).encode()
            i += 2
        else:
            out += c.encode()
            i += 1
    return out.decode("utf-8", errors="replace")


def split_at(raw: str, ops: str) -> tuple[str, str, str] | None:
    """``key<op>value`` split at the first top-level operator character in ``ops``."""
    depth = 0
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == '"':
            j = i + 1
            while j < n and raw[j] != '"':
                j += 2 if raw[j] == "\\" else 1
            i = j + 1
            continue
        if c in "[({":
            depth += 1
        elif c in "])}":
            depth -= 1
        elif depth == 0 and c in ops:
            op = c
            key = raw[:i]
            if op == "=" and key.endswith("!"):
                return key[:-1], "!=", raw[i + 1 :]
            return key, op, raw[i + 1 :]
        i += 1
    return None


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Condition:
    """One ``key=value`` / ``key~regex`` / ``key!=value`` term of a ``find``."""

    key: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    """A ``[ find ... ]``: all conditions must hold. ``supported`` is False for
    expressions this reader does not evaluate (parentheses, ``or``, variables)."""

    conditions: tuple[Condition, ...]
    supported: bool = True


@dataclass(frozen=True)
class Command:
    line: int
    path: str  # "ip route", words joined by one space
    verb: str
    args: Mapping[str, str]  # key -> unquoted value
    flags: frozenset[str]  # bare words (``fib``, ``blackhole``) and ``!key`` unsets
    selector: Selector | None = None
    by_number: bool = False  # ``set 0 ...``: print numbers, meaningless in a file
    bad_key: str | None = None  # a token that is not ``key=value``; fatal only where modeled


def parse_selector(raw: str, source: str, line: int) -> Selector | None:
    """``[ find ... ]`` or ``[/ip route find ...]`` -> Selector; None if not a find."""
    inner = raw.strip()
    if not (inner.startswith("[") and inner.endswith("]")):
        return None
    words = split_tokens(inner[1:-1], source, line)
    while words and (words[0].startswith("/") or _PATH_WORD.match(words[0])) and words[0] != "find":
        words = words[1:]
    if not words or words[0] != "find":
        return None
    conds: list[Condition] = []
    supported = True
    for w in words[1:]:
        if w in ("where", "and"):
            continue
        parts = split_at(w, "=~")
        if parts is None or not _KEY.match(parts[0]) or _VARIABLE.search(parts[2]):
            supported = False
            continue
        conds.append(Condition(parts[0], parts[1], unquote(parts[2])))
    return Selector(tuple(conds), supported)


def commands(text: str, source: str) -> Iterator[Command | int]:
    """Commands of a script or export; an int is the line number of a skipped line."""
    section = ""
    for line, logical in logical_lines(text):
        if logical.lstrip().startswith("#"):
            continue
        for stmt in _statements(logical):
            stripped = stmt.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith((":", "{", "$")):
                yield line  # scripting, not configuration
                continue
            tokens = split_tokens(stripped, source, line)
            path_words: list[str] = []
            verb = ""
            rest = tokens
            if tokens[0].startswith("/"):
                path_words = [w for w in tokens[0].split("/") if w]
                rest = tokens[1:]
                if path_words and path_words[-1] in VERBS:
                    verb = path_words.pop()
                while not verb and rest and _PATH_WORD.match(rest[0]):
                    if rest[0] in VERBS:
                        verb = rest[0]
                    else:
                        path_words.append(rest[0])
                    rest = rest[1:]
                if not all(_PATH_WORD.match(w) for w in path_words):
                    section = "?"
                    yield line
                    continue
                section = " ".join(path_words)
                if not verb:
                    if rest:
                        yield line
                    continue
            else:
                verb = rest[0]
                rest = rest[1:]
                if verb not in VERBS or not section:
                    yield line
                    continue
            yield _command(line, section, verb, rest, source)


def _statements(logical: str) -> list[str]:
    """Split at top-level ``;`` (scripts put several commands on one line)."""
    if ";" not in logical:
        return [logical]
    out: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(logical)
    while i < n:
        c = logical[i]
        if c == '"':
            j = i + 1
            while j < n and logical[j] != '"':
                j += 2 if logical[j] == "\\" else 1
            i = j + 1
            continue
        if c == "\\":
            i += 2
            continue
        if c in "[({":
            depth += 1
        elif c in "])}":
            depth -= 1
        elif c == ";" and depth == 0:
            out.append(logical[start:i])
            start = i + 1
        i += 1
    out.append(logical[start:])
    return out


def _command(line: int, section: str, verb: str, rest: list[str], source: str) -> Command:
    args: dict[str, str] = {}
    flags: set[str] = set()
    selector: Selector | None = None
    by_number = False
    bad_key: str | None = None
    for tok in rest:
        if tok.startswith("["):
            selector = parse_selector(tok, source, line) or Selector((), supported=False)
            continue
        parts = split_at(tok, "=")
        if parts is None:
            if re.match(r"^[0-9,]+$", tok) or tok.startswith("*"):
                by_number = True
            else:
                flags.add(unquote(tok))
            continue
        key, _, value = parts
        if key == "numbers":
            if value.startswith("["):
                selector = parse_selector(value, source, line) or Selector((), supported=False)
            else:
                by_number = True
            continue
        if not _KEY.match(key):
            bad_key = bad_key or key
            continue
        args[key] = unquote(value)
    return Command(line, section, verb, args, frozenset(flags), selector, by_number, bad_key)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Gateway:
    """One gateway of a route, as written: ``8.8.8.8``, ``10.0.0.1%ether1``, ``x@main``,
    or an interface name (``pppoe-out1``)."""

    text: str  # the address or interface, without %interface / @table
    address: IPv4Address | None
    interface: str | None  # from ``%iface``, or the interface itself
    table: str | None  # from ``@table``


@dataclass(frozen=True)
class Address:
    line: int
    address: IPv4Interface
    interface: str


@dataclass(frozen=True)
class Route:
    line: int
    dst: IPv4Network
    gateways: tuple[Gateway, ...]
    distance: int
    scope: int
    target_scope: int
    check: str | None  # ping | arp | bfd ...; None: no check
    table: str
    kind: str  # unicast | blackhole | unreachable | prohibit
    disabled: bool
    comment: str
    raw: Mapping[str, str]  # properties as written, for ``find`` in scripts
    origin: str = "static"  # static | dhcp-client | pppoe-client (synthesised)

    @property
    def is_default(self) -> bool:
        return self.dst.prefixlen == 0

    @property
    def gateway_text(self) -> str:
        if self.kind != "unicast":
            return self.kind
        return ",".join(g.text for g in self.gateways)


@dataclass(frozen=True)
class RoutingTable:
    line: int
    name: str
    fib: bool


@dataclass(frozen=True)
class RoutingRule:
    line: int
    routing_mark: str | None
    action: str
    table: str
    other_matchers: bool  # src/dst/interface matchers: not a pure mark rule
    disabled: bool


@dataclass(frozen=True)
class NatRule:
    line: int
    chain: str
    action: str
    out_interface: str | None
    out_interface_list: str | None
    disabled: bool


@dataclass(frozen=True)
class MangleRule:
    line: int
    chain: str
    action: str
    new_connection_mark: str | None
    new_routing_mark: str | None
    pcc: str | None
    in_interface: str | None
    connection_mark: str | None
    disabled: bool


@dataclass(frozen=True)
class Pool:
    line: int
    name: str
    ranges: str


@dataclass(frozen=True)
class DhcpServer:
    line: int
    name: str
    interface: str
    pool: str | None
    lease_time: float | None
    disabled: bool


@dataclass(frozen=True)
class DhcpNetwork:
    line: int
    address: IPv4Network
    gateway: str | None
    dns: tuple[str, ...]


@dataclass(frozen=True)
class Lease:
    line: int
    address: str
    mac: str
    server: str | None


@dataclass(frozen=True)
class Netwatch:
    line: int
    host: IPv4Address
    type: str  # simple (v6 and the v7 default) | icmp | tcp-conn | http-get | ...
    interval: float | None
    timeout: float | None
    thr_avg: float | None  # explicit value; None: RouterOS default
    up_script: str
    down_script: str
    disabled: bool


@dataclass(frozen=True)
class Export:
    """What the reader understood of one export."""

    source: str
    version: int | None  # 6 or 7 when the file says or implies it
    addresses: tuple[Address, ...]
    routes: tuple[Route, ...]  # static routes, then dhcp/pppoe default routes
    tables: tuple[RoutingTable, ...]
    rules: tuple[RoutingRule, ...]
    nat: tuple[NatRule, ...]
    mangle: tuple[MangleRule, ...]
    interface_lists: Mapping[str, frozenset[str]]
    pools: tuple[Pool, ...]
    dhcp_servers: tuple[DhcpServer, ...]
    dhcp_networks: tuple[DhcpNetwork, ...]
    leases: tuple[Lease, ...]
    netwatch: tuple[Netwatch, ...]
    scripts: Mapping[str, str]  # /system script name -> source
    dns_servers: tuple[str, ...]
    skipped_lines: int
    dynamic_addresses: bool  # DHCP/PPP clients give interfaces addresses not in the file


# --------------------------------------------------------------------------- builder


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
    "tool netwatch": "list",
    "system script": "list",
    "ip dns": "single",
}


def matches(selector: Selector, props: Mapping[str, str]) -> bool:
    """Whether an object's properties (as written) satisfy a ``find``."""
    if not selector.supported:
        return False
    for cond in selector.conditions:
        negate = cond.key.startswith("!")
        key = cond.key.lstrip("!")
        have = props.get(key, "")
        if cond.op == "~":
            literal = _literal_regex(cond.value)
            if literal is None:
                return False  # not evaluated: see _literal_regex
            text, head, tail = literal
            if head and tail:
                ok = have == text
            elif head:
                ok = have.startswith(text)
            elif tail:
                ok = have.endswith(text)
            else:
                ok = text in have
        else:
            ok = _same(key, have, cond.value)
            if cond.op == "!=":
                ok = not ok
        if ok == negate:
            return False
    return True


_REGEX_META = frozenset(".[]()*+?{}|\\")


def _literal_regex(pattern: str) -> tuple[str, bool, bool] | None:
    """``^literal$``-style patterns as (text, anchored at start, anchored at end).

    Real selectors (``comment~"^wanwatch: "``) are literal; anything with regex
    operators is not evaluated, so a hostile pattern cannot backtrack for ever.
    """
    head = pattern.startswith("^")
    tail = pattern.endswith("$") and not pattern.endswith("\\$")
    body = pattern[1 if head else 0 : len(pattern) - 1 if tail else len(pattern)]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body) and not body[i + 1].isalnum():
            out.append(body[i + 1])
            i += 2
            continue
        if c in _REGEX_META or c in "^$":
            return None
        out.append(c)
        i += 1
    return "".join(out), head, tail


def _same(key: str, have: str, want: str) -> bool:
    if have == want:
        return True
    if key in ("dst-address", "address"):
        try:
            return IPv4Network(have or "0.0.0.0/0", strict=False) == IPv4Network(want, strict=False)
        except (AddressValueError, NetmaskValueError, ValueError):
            return False
    if key == "disabled":
        return _bool(have or "no") == _bool(want)
    return False


def _bool(value: str) -> bool | None:
    low = value.lower()
    if low in ("yes", "true"):
        return True
    if low in ("no", "false"):
        return False
    return None


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: dict[str, list[_Item]] = {k: [] for k, v in _SECTIONS.items() if v == "list"}
        self.single: dict[str, _Item] = {}
        self.skipped = 0

    def feed(self, cmd: Command) -> None:
        kind = _SECTIONS.get(cmd.path)
        if kind is None or cmd.by_number:
            self.skipped += 1
            return
        if cmd.bad_key is not None:
            raise _fail(self.source, cmd.line, f"{cmd.bad_key!r} is not a property name")
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
            if cmd.selector is None:
                self.skipped += 1
                return
            chosen = [it for it in items if matches(cmd.selector, it.args)]
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

    def _apply(self, item: _Item, cmd: Command) -> None:
        for k, v in cmd.args.items():
            item.args[k] = v
            item.lines[k] = cmd.line
        for f in cmd.flags:
            if f.startswith("!"):
                item.args.pop(f[1:], None)
            else:
                item.flags.add(f)
                item.lines[f] = cmd.line

    # ---------------------------------------------------------------- typing helpers

    def err(self, item: _Item, key: str, reason: str) -> RouterOSError:
        return _fail(self.source, item.line_of(key), f"{key}={item.args.get(key, '')!r}: {reason}")

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
        b = _bool(v)
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
        addresses = tuple(a for a in map(self._address, it["ip address"]) if a is not None)
        routes = [self._route(i) for i in it["ip route"]]
        dynamic = bool(it["ip dhcp-client"] or it["interface pppoe-client"])
        routes += self._client_routes()
        if len(routes) > MAX_ROUTES:
            raise _fail(
                self.source, routes[MAX_ROUTES].line, f"more than {MAX_ROUTES} routes to simulate"
            )
        if version is None:
            if it["routing table"] or any("routing-table" in i.args for i in it["ip route"]):
                version = 7
            elif any("routing-mark" in i.args for i in it["ip route"]) or it["ip route rule"]:
                version = 6
        lists: dict[str, set[str]] = {}
        for m in it["interface list member"]:
            if self.flag(m, "disabled"):
                continue
            lists.setdefault(m.get("list") or "", set()).add(m.get("interface") or "")
        dns = self.single.get("ip dns")
        return Export(
            source=self.source,
            version=version,
            addresses=addresses,
            routes=tuple(routes),
            tables=tuple(
                RoutingTable(i.line, i.get("name") or "", self.flag(i, "fib"))
                for i in it["routing table"]
            ),
            rules=tuple(self._rule(i) for i in it["routing rule"] + it["ip route rule"]),
            nat=tuple(self._nat(i) for i in it["ip firewall nat"]),
            mangle=tuple(self._mangle(i) for i in it["ip firewall mangle"]),
            interface_lists={k: frozenset(v) for k, v in lists.items()},
            pools=tuple(
                Pool(i.line, i.get("name") or "", i.get("ranges") or "") for i in it["ip pool"]
            ),
            dhcp_servers=tuple(self._dhcp_server(i) for i in it["ip dhcp-server"]),
            dhcp_networks=tuple(self._dhcp_network(i) for i in it["ip dhcp-server network"]),
            leases=tuple(
                Lease(i.line, i.get("address") or "", i.get("mac-address") or "", i.get("server"))
                for i in it["ip dhcp-server lease"]
            ),
            netwatch=tuple(n for n in map(self._netwatch, it["tool netwatch"]) if n is not None),
            scripts={i.get("name") or "": i.get("source") or "" for i in it["system script"]},
            dns_servers=tuple(
                s for s in ((dns.get("servers") or "").split(",") if dns else []) if s
            ),
            skipped_lines=self.skipped,
            dynamic_addresses=dynamic,
        )

    def _address(self, i: _Item) -> Address | None:
        v = i.get("address") or ""
        try:
            a = IPv4Interface(v)
        except (AddressValueError, NetmaskValueError, ValueError):
            raise self.err(i, "address", "not an IPv4 address/prefix") from None
        iface = i.get("interface")
        if not iface:
            raise _fail(self.source, i.line, "/ip address without interface=")
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
            raise _fail(self.source, i.line, "route without gateway= (and not a blackhole)")
        check = (i.get("check-gateway") or "").lower() or None
        if check == "none":
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

    def _client_routes(self) -> list[Route]:
        """Default routes DHCP and PPPoE clients add at run time (not in the export)."""
        out: list[Route] = []
        for section, iface_key, default in (
            ("ip dhcp-client", "interface", "yes"),
            ("interface pppoe-client", "name", "no"),
        ):
            for i in self.items[section]:
                add = (i.get("add-default-route") or default).lower()
                if add in ("no", "false") or self.flag(i, "disabled"):
                    continue
                iface = i.get(iface_key) or ""
                check = (i.get("check-gateway") or "").lower() or None
                out.append(
                    Route(
                        line=i.line,
                        dst=IPv4Network("0.0.0.0/0"),
                        gateways=(Gateway(iface, None, iface, None),),
                        distance=self.num(i, "default-route-distance", 1, 0, 255),
                        scope=30,
                        target_scope=10,
                        check=None if check == "none" else check,
                        table="main",
                        kind="unicast",
                        disabled=False,
                        comment=i.get("comment") or "",
                        raw=dict(i.args),
                        origin=section.split()[-1],
                    )
                )
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


# --------------------------------------------------------------------------- entry points


def parse_text(text: str, source: str = "<memory>") -> Export:
    """Model of an export's text; RouterOSError (with line) if it cannot be read."""
    if len(text) > MAX_BYTES:
        raise RouterOSError(f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MiB")
    nul = text.find("\x00")
    if nul >= 0:
        raise _fail(source, text.count("\n", 0, nul) + 1, "NUL byte: not a text export")
    version: int | None = None
    builder = _Builder(source)
    for item in commands(text, source):
        if isinstance(item, int):
            builder.skipped += 1
        else:
            builder.feed(item)
    head = _VERSION.search(text[:2000])
    if head:
        version = int(head.group(1))
    return builder.build(version)


def parse_file(path: str | Path) -> Export:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise RouterOSError(f"{p}:1: cannot read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise RouterOSError(f"{p}:1: larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RouterOSError(f"{p}:{line}: not UTF-8 text (byte {exc.start})") from None
    return parse_text(text, str(p))
