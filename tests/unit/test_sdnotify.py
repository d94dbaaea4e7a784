"""sd_notify: one datagram to NOTIFY_SOCKET; READY after the first apply; the watchdog period."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from wanwatch.daemon.sdnotify import Notifier
from wanwatch.engine.events import event


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[socket.socket]:
    """systemd's end: a bound datagram socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(tmp_path / "notify"))
    s.settimeout(0)
    yield s
    s.close()


def received(s: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(s.recv(4096).decode())
        except BlockingIOError:
            return out


def test_without_notify_socket_nothing_is_sent() -> None:
    n = Notifier(env={})
    assert not n.enabled
    assert n.send("READY=1") is False
    assert n.watchdog_s is None
    assert n.pet(0.0) == float("inf")


def test_ready_once_after_first_apply_then_status_and_stopping(
    manager: socket.socket, tmp_path: Path
) -> None:
    n = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "notify")})
    n.on_event(event(1.0, "daemon.started", pid=1))
    assert received(manager) == []  # started is not ready: nothing applied yet
    n.on_event(event(2.0, "dataplane.applied", active="WAN1", stale=False))
    n.on_event(event(3.0, "dataplane.applied", active="WAN2", stale=False))
    n.on_event(event(4.0, "daemon.stopping"))
    got = received(manager)
    assert got[0] == "READY=1\nSTATUS=carrying: WAN1"
    assert got[1] == "STATUS=carrying: WAN2"
    assert got[2].startswith("STOPPING=1\n")
    assert sum("READY=1" in m for m in got) == 1


def test_abstract_socket_address() -> None:
    name = f"wanwatch-test-{id(object())}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    try:
        assert Notifier(env={"NOTIFY_SOCKET": "@" + name}).send("READY=1")
        assert s.recv(100) == b"READY=1"
    finally:
        s.close()


def test_watchdog_every_half_period(manager: socket.socket, tmp_path: Path) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "4000000"}
    n = Notifier(env=env, pid=42)
    assert n.watchdog_s == 4.0
    assert n.pet(100.0) == 2.0  # sent, next in half the period
    assert n.pet(101.5) == 0.5  # not yet
    assert n.pet(102.0) == 2.0  # due again
    assert received(manager) == ["WATCHDOG=1", "WATCHDOG=1"]


def test_watchdog_meant_for_another_process_is_ignored(tmp_path: Path) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "x"), "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "7"}
    assert Notifier(env=env, pid=8).watchdog_s is None
    assert Notifier(env=env, pid=7).watchdog_s == 1.0


def test_send_failure_is_logged_once_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    n = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    with caplog.at_level(logging.WARNING):
        assert n.send("READY=1") is False
        assert n.send("WATCHDOG=1") is False
    assert len([r for r in caplog.records if "sd_notify" in r.getMessage()]) == 1
