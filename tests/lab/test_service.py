"""The daemon as a service: systemd notifications, and the status page in a real browser.

One lab for the module; each test starts ``wanwatch run`` in its router namespace
and stops it with SIGTERM. systemd's side of sd_notify(3) is played by a
datagram socket of the test's own on the shared filesystem (``NOTIFY_SOCKET``);
the page is driven by Debian's headless chromium through selenium, run inside the
router namespace (wanwatch.lab.browser) because the page listens on its loopback.
Times are CLOCK_MONOTONIC, shared by every namespace and the daemon's events.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from wanwatch.config import load
from wanwatch.lab import faults
from wanwatch.lab.browser import Browser
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab

pytestmark = pytest.mark.lab

log = logging.getLogger(__name__)

SharedLab = Callable[..., contextlib.AbstractContextManager[Lab]]  # fixture (conftest.py)
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"  # examples/office.yaml, priority 1 and 2
PAGE = "127.0.0.1:9180"
# The page polls every second and the daemon re-encodes right after an event: a
# failover must show within this long of the daemon deciding it.
PAGE_LATENCY = 2.0
WATCHDOG_USEC = 2_000_000


@pytest.fixture(scope="module")
def service_lab(shared_lab: SharedLab) -> Iterator[Lab]:
    with shared_lab("service-labs") as lab:
        yield lab


@pytest.fixture
def office_daemon(service_lab: Lab) -> Iterator[Office]:
    """An Office on a copy of the lab's config without hooks (the office's ``logger`` hooks
    would write to the host's syslog); stopped, and every fault cleared, afterwards."""
    data = yaml.safe_load(service_lab.config_text)
    data["hooks"] = {}
    path = service_lab.state_dir / "service.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load(path)
    office = Office(service_lab, path)
    try:
        yield office
    finally:
        try:
            code = office.stop()
        finally:
            faults.clear_all(service_lab)
        assert code in (0, None), office.log()[-3000:]


class NotifySocket:
    """systemd's end of sd_notify: a bound datagram socket recording what arrives, and when."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[tuple[float, dict[str, str]]] = []

    def drain(self, timeout: float) -> None:
        """Read whatever arrives within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            self.messages.append((time.monotonic(), fields))

    def wait(self, key: str, timeout: float) -> float:
        """The arrival time of the first message carrying ``key``, reading until it comes."""
        deadline = time.monotonic() + timeout
        while True:
            for at, fields in self.messages:
                if key in fields:
                    return at
            if time.monotonic() >= deadline:
                raise AssertionError(f"no {key} within {timeout}s; got {self.messages}")
            self.drain(0.1)

    def times(self, key: str) -> list[float]:
        return [at for at, fields in self.messages if key in fields]

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


def test_sd_notify_ready_watchdog_stopping(office_daemon: Office, tmp_path: Path) -> None:
    """READY=1 once the first dataplane is applied (not before), WATCHDOG=1 more often than
    WATCHDOG_USEC while it runs, STOPPING=1 on SIGTERM before it exits."""
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        office_daemon.start(
            env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)}
        )
        ready = notify.wait("READY", timeout=30)
        applied = office_daemon.events(names=("dataplane.applied",))
        assert applied, "READY=1 came without a dataplane.applied event"
        assert applied[0]["at"] <= ready, (applied[0], ready)
        assert applied[0]["active"] == PRIMARY
        st = office_daemon.status()
        assert st["applied"] and st["active"] == [PRIMARY]

        notify.drain(3 * WATCHDOG_USEC / 1e6)  # three watchdog periods of a running daemon
        pets = notify.times("WATCHDOG")
        assert len(pets) >= 3, notify.messages
        gaps = [b - a for a, b in itertools.pairwise(pets)]
        log.info("watchdog gaps: %s", [round(g, 3) for g in gaps])
        # systemd kills a service whose pings are further apart than WatchdogSec.
        assert max(gaps) < WATCHDOG_USEC / 1e6, gaps

        proc = office_daemon.daemon
        assert proc is not None
        proc.send_signal(signal.SIGTERM)
        stopping = notify.wait("STOPPING", timeout=10)
        code = office_daemon.stop()
        assert code == 0, office_daemon.log()[-3000:]
        notify.drain(0.2)
        assert len(notify.times("READY")) == 1, notify.messages
        assert ready < stopping
        stopped = [line for line in office_daemon.log().splitlines() if "daemon.stopped" in line]
        assert stopped, office_daemon.log()[-3000:]
    finally:
        notify.close()


def test_status_page_in_a_browser(office_daemon: Office, tmp_path: Path) -> None:
    """The page shows both uplinks with their charts; a blackhole of the primary shows as
    the backup carrying within PAGE_LATENCY of the daemon's failover, with its detection
    time in the timeline; nothing is loaded from elsewhere; a phone needs no side scroll."""
    office_daemon.start(wait_active=PRIMARY, timeout=30, args=("--http", PAGE))
    browser = Browser(office_daemon.lab, f"http://{PAGE}/")
    try:
        shown = browser.ask("wait", active=PRIMARY, wans=[PRIMARY, BACKUP], timeout=15)
        assert shown["ok"], shown
        page = shown["shown"]
        assert page["connected"]
        assert all(w["state"] == "up" and w["charts"] == 2 for w in page["wans"]), page
        # Offline: every resource the page loaded came from the daemon itself.
        assert page["resources"], page
        assert all(r.startswith(page["origin"] + "/") for r in page["resources"]), page

        cut = faults.blackhole(office_daemon.lab, PRIMARY)
        shown = browser.ask("wait", active=BACKUP, wans=[PRIMARY, BACKUP], timeout=15)
        assert shown["ok"], shown
        failover = office_daemon.wait_event("policy.failover", since=cut.t_start, timeout=5)
        latency = shown["seen"] - failover["at"]
        log.info(
            "cut -> failover %.3f s, failover -> page %.3f s",
            failover["at"] - cut.t_start,
            latency,
        )
        assert latency <= PAGE_LATENCY, latency
        wans = {w["name"]: w for w in shown["shown"]["wans"]}
        assert wans[PRIMARY]["state"] == "down" and not wans[PRIMARY]["carrying"]

        # The timeline names the failover and its measured detection time (polled: the
        # timeline and the cards come from the same answer, but render in one pass).
        deadline = time.monotonic() + 5
        while True:
            page = browser.ask("inspect")["shown"]
            entry = [t for t in page["timeline"] if "failover" in t and PRIMARY in t]
            if entry or time.monotonic() > deadline:
                break
        assert entry, page["timeline"]
        assert f"detected in {failover['detect_ms']} ms" in entry[0], entry
        assert page["log"] > 5

        shot = Path(os.environ.get("WANWATCH_SCREENSHOT", tmp_path / "status-page.png"))
        assert browser.ask("screenshot", path=str(shot), width=1280)["ok"]
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        phone = browser.ask("phone")
        assert phone["inner_width"] <= 390, phone
        assert phone["scroll_width"] <= phone["inner_width"], phone
    finally:
        browser.close()
