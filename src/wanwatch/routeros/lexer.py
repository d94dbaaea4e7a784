"""RouterOS script text to tokens: line continuations, quoted strings with RouterOS
escapes, bracket groups, ``key=value`` splitting and top-level ``;`` statements."""

from __future__ import annotations

from collections.abc import Iterator

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


def located(source: str, line: int, reason: str) -> RouterOSError:
    return RouterOSError(f"{source}:{line}: {reason}")


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
                    raise located(source, line, f"unbalanced {c!r} at column {i + 1}")
                stack.pop()
                i += 1
            elif c in " \t\r\f\v" and not stack:
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


def statements(logical: str) -> list[str]:
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
