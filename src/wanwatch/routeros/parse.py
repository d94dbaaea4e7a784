"""Read a RouterOS ``/export`` (v6 or v7) into a typed model.

The stages, one module each: :mod:`lexer` (text to tokens), :mod:`commands`
(tokens to commands and ``find`` selectors), :mod:`build` (commands to the
:mod:`model`). Everything the model does not cover is skipped and counted.

Never stops on what it cannot read: a value RouterOS itself would have rejected
(``distance=abc``), an unterminated string, an unbalanced bracket, a variable of
unknown value or an item the export marks invalid makes that statement "not
modelled", with a note naming the line and the reason. :class:`RouterOSError` only
for input that is not a RouterOS script at all (binary, no command in it) or too
large to simulate.
"""

from __future__ import annotations

import re
from pathlib import Path

from wanwatch.errors import RouterOSError
from wanwatch.routeros.build import MAX_ROUTES, Builder
from wanwatch.routeros.commands import Command, commands
from wanwatch.routeros.lexer import located, normalise_line_ends, split_tokens, unquote
from wanwatch.routeros.model import Export
from wanwatch.routeros.values import parse_duration

__all__ = [
    "MAX_ROUTES",
    "Command",
    "commands",
    "parse_duration",
    "parse_file",
    "parse_text",
    "split_tokens",
    "unquote",
]

# Bound that keeps hostile input cheap: every stage is linear in the text.
MAX_BYTES = 4 * 1024 * 1024
_VERSION = re.compile(r"\bRouterOS (\d+)[.\s]")


def parse_text(text: str, source: str = "<memory>") -> Export:
    """Model of an export's text; RouterOSError (with line) if it cannot be read."""
    if len(text) > MAX_BYTES:
        raise RouterOSError(f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MiB")
    text = normalise_line_ends(text)
    nul = text.find("\x00")
    if nul >= 0:
        raise located(source, text.count("\n", 0, nul) + 1, "NUL byte: not a text export")
    version: int | None = None
    builder = Builder(source)
    script = False
    for item in commands(text, source):
        script = script or isinstance(item, Command) or item.scripting
        builder.feed(item)
    if not script:
        raise located(source, 1, "not a RouterOS script: no RouterOS command in it")
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
