"""RouterOS script text to statements and tokens.

:func:`scan` cuts the text into statements (newlines and top-level ``;``, ``\\``
continuations, quoted strings and brackets that span lines), comments and block
braces; :func:`split_tokens` cuts a statement into words, keeping quotes and
brackets together; :func:`unquote` and :func:`split_at` read a word's value."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from wanwatch.errors import RouterOSError

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


_LINE_END = re.compile(r"\r?\r\n|\r")


def normalise_line_ends(text: str) -> str:
    """Every line end as LF: CRLF, CR CR LF (a CRLF file converted once more) and a
    lone CR end one line each, so a ``\\`` before any of them continues the line and
    line numbers are those an editor shows."""
    return _LINE_END.sub("\n", text) if "\r" in text else text


def located(source: str, line: int, reason: str) -> RouterOSError:
    """The error for ``source:line: reason``."""
    return RouterOSError(f"{source}:{line}: {reason}")


@dataclass(frozen=True)
class Piece:
    """One unit of script text: a statement, a ``#`` comment, the opening or closing
    brace of a block, or a statement that cannot be read (``text`` says why)."""

    kind: str  # statement | comment | open | close | broken | fatal
    line: int
    text: str


def scan(text: str, line: int = 1) -> Iterator[Piece]:
    """The pieces of a script with LF line ends (:func:`normalise_line_ends`), in
    order; never raises.

    Statements end at a newline or a top-level ``;``. A ``\\`` at the end of a
    line continues it and the next line's indentation is dropped (RouterOS breaks
    long lines so, also inside quoted strings). A quoted string or a bracket may
    span lines. A ``{`` or ``}`` where a statement would begin opens or closes a
    block. A statement with an unbalanced closing bracket is ``broken`` and reading
    resumes on the next line; a string or bracket still open at the end of the text
    swallowed the rest of it, a syntax error RouterOS refuses the whole script for,
    and ends the scan as ``fatal``.
    """
    n = len(text)
    pos = 0
    while pos < n:
        c = text[pos]
        if c == "\n":
            pos, line = pos + 1, line + 1
        elif c in " \t\r\f\v;":
            pos += 1
        elif c == "\\" and text.startswith("\n", pos + 1):
            pos, line = pos + 2, line + 1
        elif c == "#":
            end = _line_end(text, pos)
            yield Piece("comment", line, text[pos:end])
            pos = end
        elif c in "{}":
            yield Piece("open" if c == "{" else "close", line, c)
            pos += 1
        else:
            stmt, end, end_line, problem = _statement(text, pos, line)
            if problem is None:
                yield Piece("statement", line, stmt)
                pos, line = end, end_line
            elif end >= n:
                yield Piece("fatal", end_line, problem)
                return
            else:
                yield Piece("broken", line, problem)
                pos, line = _line_end(text, pos) + 1, line + 1


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _statement(text: str, pos: int, line: int) -> tuple[str, int, int, str | None]:
    """(statement, end position, line at the end, problem) starting at ``pos``."""
    n = len(text)
    out: list[str] = []
    stack: list[tuple[str, int]] = []  # expected closer, line of its opener
    in_string = False
    string_line = string_col = line
    i = pos
    closers = {"[": "]", "(": ")", "{": "}"}
    while i < n:
        c = text[i]
        if c == "\\":
            if text.startswith("\n", i + 1):
                i = text.index("\n", i) + 1
                line += 1
                while i < n and text[i] in " \t":
                    i += 1
                continue
            out.append(text[i : i + 2])
            i += 2
            continue
        if in_string:
            if c == '"':
                in_string = False
            elif c == "\n":
                line += 1
            out.append(c)
            i += 1
            continue
        if c == '"':
            in_string, string_line = True, line
            string_col = i - text.rfind("\n", 0, i)
        elif c in closers:
            stack.append((closers[c], line))
        elif c in "])}":
            if not stack and c == "}":
                break  # closes the enclosing block: ``{ /ip route add ... }``
            if not stack or stack[-1][0] != c:
                return "", i, line, f"unbalanced {c!r}"
            stack.pop()
        elif c in "\n;":
            if not stack:
                break
            if c == "\n":
                line += 1
        out.append(c)
        i += 1
    if in_string:
        return "", i, string_line, f"unterminated quoted string starting at column {string_col}"
    if stack:
        closer, opened = stack[-1]
        return "", i, opened, f"unclosed bracket: expected {closer!r} before end of file"
    return "".join(out).rstrip(" \t\r"), i, line, None


def split_tokens(text: str, source: str, line: int) -> list[str]:
    """Whitespace-separated tokens; quotes and brackets keep their insides together."""
    tokens: list[str] = []
    n = len(text)
    i = 0
    closers = {"[": "]", "(": ")", "{": "}"}
    while i < n:
        while i < n and text[i] in " \t\r\n\f\v":
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
                    raise located(source, line, f"unbalanced {c!r} at column {i + 1}")
                stack.pop()
                i += 1
            elif c in " \t\r\n\f\v" and not stack:
                break
            else:
                i += 1
        if stack:
            raise located(
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
    raise located(source, line, f"unterminated quoted string starting at column {i + 1}")


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
