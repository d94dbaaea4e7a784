"""Log lines that fit wherever the daemon runs: a terminal, journald, or a log shipper.

One event per line, always with a level:

- ``text`` (default): ``2026-12-05T10:00:00.123 INFO wan.down wan=... detect_ms=640``.
  Under journald the timestamp is left out (the journal stamps every line itself)
  and the level becomes a syslog priority prefix such as ``<4>``, which journald
  turns into the entry's PRIORITY (sd-daemon(3), SyslogLevelPrefix= in
  systemd.exec(5)). journald is detected as systemd.exec(5) documents:
  ``JOURNAL_STREAM`` holds the device and inode of the stream it connected, and
  they match the stream we write to.
- ``json``: one JSON object per line with ``ts``, ``level``, ``logger``, ``msg``
  and, for an event, ``event`` plus its fields, for Vector, Fluent Bit or Loki.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from wanwatch.engine.events import Event

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")

# sd-daemon(3): <3> SD_ERR, <4> SD_WARNING, <6> SD_INFO, <7> SD_DEBUG (syslog(3) levels).
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def under_journald(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` is the one systemd connected to the journal."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):  # a stream without a descriptor (pytest's capture)
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


class JournalFormatter(logging.Formatter):
    """``<priority>message``: journald adds the time, the unit and the PID."""

    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6)
        return f"<{prio}>{super().format(record)}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; an event's name and fields become keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ev = getattr(record, "event", None)
        if isinstance(ev, Event):
            out["event"] = ev.name
            out.update({k: v for k, v in ev.fields.items() if k not in out})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup(
    fmt: LogFormat = "text", verbose: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Add the daemon's handler on ``stream`` (stdout) to the root logger; return it."""
    stream = sys.stdout if stream is None else stream
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter()
    elif under_journald(stream):
        formatter = JournalFormatter("%(message)s")
    else:
        formatter = logging.Formatter(
            "%(asctime)s.%(msecs)03d %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S"
        )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler
