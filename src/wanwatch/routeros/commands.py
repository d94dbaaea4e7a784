"""Tokens to commands: section paths (``/ip route``, ``/ip/route``, relative words),
verbs, ``key=value`` arguments, flags and ``[ find ... ]`` selectors, and the
evaluation of a ``find`` against an object's properties."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, replace
from ipaddress import AddressValueError, IPv4Network, NetmaskValueError

from wanwatch.errors import RouterOSError
from wanwatch.routeros.lexer import (
    located,
    normalise_line_ends,
    scan,
    split_at,
    split_tokens,
    unquote,
)

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
    bad_key: str | None = None  # a token that is not ``key=value``; matters only where modelled
    note: str | None = None  # why a modelled section must not take it (unknown variable, ...)


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


@dataclass(frozen=True)
class Skipped:
    """A statement the reader does not model; ``note`` says why when it matters
    (an unreadable statement, an unknown variable, an item RouterOS marked invalid)."""

    line: int
    note: str | None = None
    scripting: bool = False  # RouterOS syntax, not configuration (``:if``, ``:global``, ...)


# Top-level menus of RouterOS: a relative path at the root (``ip route disable ...``,
# as Netwatch scripts write them; they run from the root menu) must start with one.
_ROOT_MENUS = frozenset(
    {
        "interface", "ip", "ipv6", "routing", "system", "tool", "queue", "ppp",
        "user", "snmp", "certificate", "radius", "file", "log", "caps-man",
        "container", "disk", "mpls", "port", "special-login",
    }
)  # fmt: skip
_SCOPE_WORDS = (":global", ":local", ":set")
_VAR_REF = re.compile(r'(?<!\\)\$(?:"([^"]*)"|([A-Za-z0-9_-]+))')
_QUOTE = re.compile(r'(?<!\\)"')  # a quote that opens or closes a string
_LITERAL = re.compile(r'^(?:"(?:[^"\\$]|\\.)*"|[A-Za-z0-9_.:/,@%-]+)$')
# Comments RouterOS's /export prints before an item it could not apply, e.g.
# "# DHCP client can not run on slave interface!" above an /ip dhcp-client add: one
# short sentence ending in "!", saying what cannot be.
_INVALID_MARKER = re.compile(
    r"^#\s*[^#]*\b(?:can ?not|cannot|invalid|not found|not running|unknown)\b[^#]*!$",
    re.IGNORECASE,
)
_MARKER_MAX = 80  # the markers are one short sentence; longer comments are the user's


def commands(text: str, source: str, *, branches: bool = False) -> Iterator[Command | Skipped]:
    """Commands of a script or export, and the statements skipped, in order.

    Blocks ``{ }`` and the body of ``:do { } on-error={ }`` (which always runs)
    run their statements in place; ``:global``/``:local``/``:set`` with a literal
    value define variables that later commands may use (``$name``). Everything
    else that is scripting (``:if``, ``:foreach``, ``:for`` with their ``do={ }``
    bodies, ``:log``, ...) is skipped as one statement; with ``branches`` the
    commands of its ``do={ }`` and ``else={ }`` bodies follow it (the commands
    that may run, for a reader that asks what a script can change).
    """
    yield from _run(normalise_line_ends(text), source, 1, "", {}, depth=0, branches=branches)


# Nesting of ``:do { }`` bodies read; deeper ones are skipped (each level rescans).
_MAX_DO_DEPTH = 8
_DO = re.compile(r"^:do\s*\{")
_BODY = re.compile(r"(?<=\s)(?:do|else)=\{")  # the bodies of :if, :foreach, :while, ...


def _run(
    text: str,
    source: str,
    first_line: int,
    section: str,
    variables: dict[str, str | None],
    *,
    depth: int,
    branches: bool = False,
) -> Generator[Command | Skipped, None, str]:
    """The commands of ``text`` read from menu ``section``; returns the menu after."""
    outer: list[str] = []  # sections of the enclosing blocks
    marker: tuple[int, str] | None = None  # the comment line just read, if a marker
    for piece in scan(text, first_line):
        if piece.kind == "comment":
            is_marker = len(piece.text) <= _MARKER_MAX and _INVALID_MARKER.match(piece.text)
            marker = (piece.line, piece.text) if is_marker else None
            continue
        pending = marker[1].lstrip("# ") if marker and marker[0] == piece.line - 1 else None
        marker = None
        if piece.kind == "open":
            outer.append(section)
        elif piece.kind == "close":
            if outer:
                section = outer.pop()
            else:
                yield Skipped(piece.line, "unbalanced '}'")
        elif piece.kind == "broken":
            yield Skipped(piece.line, piece.text)
        elif piece.kind == "fatal":
            raise located(source, piece.line, piece.text)
        else:
            stmt = piece.text
            if stmt.startswith(_SCOPE_WORDS):
                _define(stmt, variables)
            if _DO.match(stmt) and depth < _MAX_DO_DEPTH:
                start = stmt.index("{") + 1
                body = stmt[start : _matching_brace(stmt, start)]
                line = piece.line + stmt.count("\n", 0, start)
                yield from _run(
                    body, source, line, section, variables, depth=depth + 1, branches=branches
                )
                continue
            if stmt.startswith((":", "$", "(", "[")):
                yield Skipped(piece.line, scripting=True)  # not configuration
                if branches and depth < _MAX_DO_DEPTH:
                    for line, body in _bodies(piece.line, stmt):
                        yield from _run(
                            body, source, line, section, variables, depth=depth + 1, branches=True
                        )
                continue
            cmd, section = _statement_command(piece.line, stmt, section, variables, source)
            if isinstance(cmd, Command) and pending is not None:
                cmd = replace(cmd, note=f"RouterOS marks this item invalid: {pending}")
            if cmd is not None:
                yield cmd
    return section


def _bodies(line: int, stmt: str) -> Iterator[tuple[int, str]]:
    """(first line, text) of each ``do={ }`` / ``else={ }`` body of a statement, outside
    strings; nested bodies are part of the text of theirs."""
    after = quotes = counted = 0
    for m in _BODY.finditer(stmt):
        quotes += len(_QUOTE.findall(stmt, counted, m.start()))
        counted = m.start()
        if m.start() < after or quotes % 2:
            continue
        after = _matching_brace(stmt, m.end())
        yield line + stmt.count("\n", 0, m.end()), stmt[m.end() : after]


def _matching_brace(stmt: str, start: int) -> int:
    """Index of the ``}`` closing the ``{`` just before ``start`` (the scanner has
    checked that brackets balance outside strings)."""
    depth = 1
    i = start
    in_string = False
    while i < len(stmt):
        c = stmt[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            in_string = not in_string
        elif not in_string and c in "[({":
            depth += 1
        elif not in_string and c in "])}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(stmt)


def _define(stmt: str, variables: dict[str, str | None]) -> None:
    """Record ``:global name value``; a value that is not a literal is unknown."""
    try:
        words = split_tokens(stmt, "<script>", 0)
    except RouterOSError:
        return
    if len(words) < 2 or not re.fullmatch(r"[A-Za-z0-9_-]+", words[1]):
        return
    name = words[1]
    if len(words) == 2:
        variables.setdefault(name, None)  # declared; value set elsewhere
        return
    value = " ".join(words[2:])
    variables[name] = unquote(value) if len(words) == 3 and _LITERAL.match(value) else None


def _substitute(stmt: str, variables: Mapping[str, str | None]) -> tuple[str, str | None]:
    """``$name`` replaced by its literal value; the name of an unknown one, if any."""
    if "$" not in stmt:
        return stmt, None
    out: list[str] = []
    last = 0
    unknown: str | None = None
    for m in _VAR_REF.finditer(stmt):
        name = m.group(1) if m.group(1) is not None else m.group(2)
        value = variables.get(name)
        if value is None:
            unknown = unknown or name
            continue
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        quoted = len(_QUOTE.findall(stmt, 0, m.start())) % 2 == 1
        out.append(stmt[last : m.start()])
        out.append(escaped if quoted else f'"{escaped}"')
        last = m.end()
    out.append(stmt[last:])
    return "".join(out), unknown


def _statement_command(
    line: int, stmt: str, section: str, variables: Mapping[str, str | None], source: str
) -> tuple[Command | Skipped | None, str]:
    """The command of one statement, and the section that holds after it."""
    stmt, unknown = _substitute(stmt, variables)
    try:
        return _tokens_command(line, split_tokens(stmt, source, line), section, unknown, source)
    except RouterOSError as exc:
        return Skipped(line, str(exc).removeprefix(f"{source}:{line}: ")), section


def _tokens_command(
    line: int, tokens: list[str], section: str, unknown: str | None, source: str
) -> tuple[Command | Skipped | None, str]:
    if not tokens:
        return None, section
    path_words: list[str] = [] if tokens[0].startswith("/") else section.split()
    rest = tokens
    absolute = tokens[0].startswith("/")
    verb = ""
    if absolute:
        path_words = [w for w in tokens[0].split("/") if w]
        rest = tokens[1:]
        if path_words and path_words[-1] in VERBS:
            verb = path_words.pop()
    elif not section and tokens[0] not in _ROOT_MENUS:
        # A verb outside any menu: RouterOS syntax (a pasted fragment of a section).
        return Skipped(line, scripting=tokens[0] in VERBS), section
    while not verb and rest and _PATH_WORD.match(rest[0]):
        if rest[0] in VERBS:
            verb = rest[0]
        else:
            path_words.append(rest[0])
        rest = rest[1:]
    if not all(_PATH_WORD.match(w) for w in path_words):
        return Skipped(line), "?"
    path = " ".join(path_words)
    if not verb:
        # A path alone changes the current menu; anything after it is not a command.
        return (Skipped(line) if rest else None), path
    if not path or path.startswith("?"):
        return Skipped(line), section
    cmd = _command(line, path, verb, rest, source)
    if unknown is not None:
        cmd = replace(cmd, note=f"uses ${unknown}, whose value is not known before it runs")
    return cmd, section


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
        return yes_no(have or "no") == yes_no(want)
    return False


def yes_no(value: str) -> bool | None:
    low = value.lower()
    if low in ("yes", "true"):
        return True
    if low in ("no", "false"):
        return False
    return None
