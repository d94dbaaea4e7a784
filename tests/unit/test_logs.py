"""Log lines: a level on every line, no timestamp of ours under journald, JSON for shippers."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pytest

from wanwatch.daemon import logs
from wanwatch.engine.events import event


def record(level: int, msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("wanwatch", level, __file__, 1, msg, None, None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_journald_is_detected_by_device_and_inode(tmp_path: Path) -> None:
    with (tmp_path / "out").open("w") as f, (tmp_path / "other").open("w") as g:
        st = os.fstat(f.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert logs.under_journald(f, env)
        assert not logs.under_journald(g, env)  # inherited by a child writing elsewhere
        assert not logs.under_journald(f, {})
        assert not logs.under_journald(f, {"JOURNAL_STREAM": "garbage"})
    assert not logs.under_journald(io.StringIO(), env)  # no descriptor at all


def test_journal_lines_carry_a_priority_and_no_timestamp() -> None:
    fmt = logs.JournalFormatter("%(message)s")
    assert fmt.format(record(logging.INFO, "wan.down wan=A")) == "<6>wan.down wan=A"
    assert fmt.format(record(logging.WARNING, "config: bad")) == "<4>config: bad"
    assert fmt.format(record(logging.ERROR, "x")) == "<3>x"
    assert fmt.format(record(logging.DEBUG, "x")) == "<7>x"


def test_json_lines_carry_the_event_fields() -> None:
    ev = event(1.0, "wan.down", wan="A", detect_ms=640, reason="lost")
    line = logs.JsonFormatter().format(record(logging.INFO, str(ev), event=ev))
    out = json.loads(line)
    assert out["level"] == "info"
    assert out["event"] == "wan.down"
    assert out["wan"] == "A" and out["detect_ms"] == 640
    assert out["msg"] == "wan.down wan=A detect_ms=640 reason=lost"
    assert out["ts"].endswith("+00:00")
    assert "\n" not in line


def emit_through_setup(stream: io.StringIO | io.TextIOWrapper, level: int, msg: str) -> None:
    root = logging.getLogger()
    old_level = root.level
    handler = logs.setup("text", stream=stream)
    try:
        logging.getLogger("wanwatch").log(level, msg)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_setup_text_outside_journald_has_time_and_level() -> None:
    stream = io.StringIO()
    emit_through_setup(stream, logging.INFO, "daemon.started pid=1")
    line = stream.getvalue().strip()
    stamp, level, rest = line.split(" ", 2)
    assert stamp[:4].isdigit() and "T" in stamp
    assert level == "INFO" and rest == "daemon.started pid=1"


def test_setup_text_under_journald_drops_our_timestamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (tmp_path / "journal").open("w+") as f:
        st = os.fstat(f.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        emit_through_setup(f, logging.WARNING, "config.rejected problems=1")
        f.seek(0)
        assert f.read() == "<4>config.rejected problems=1\n"
