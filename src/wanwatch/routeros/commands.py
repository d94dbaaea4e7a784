"""Tokens to commands: section paths (``/ip route``, ``/ip/route``, relative words),
verbs, ``key=value`` arguments, flags and ``[ find ... ]`` selectors, and the
evaluation of a ``find`` against an object's properties."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Network, NetmaskValueError

from wanwatch.routeros.lexer import logical_lines, split_at, split_tokens, statements, unquote

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
        for stmt in statements(logical):
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
