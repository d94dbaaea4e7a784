"""The lab office with wanwatch itself as the router: one harness for demo, tests and bench.

``Office`` starts ``wanwatch run`` inside the lab's router namespace (a process
the lab owns, stopped by PID) and talks to it over its control socket, which
lives on the shared filesystem and so is reachable from any namespace.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from wanwatch.config import load
from wanwatch.daemon.control import ControlError, request
from wanwatch.errors import LabError
from wanwatch.lab import faults
from wanwatch.lab.procs import Proc
from wanwatch.lab.topology import Lab

POLL = 0.02


class Office:
    """A running lab plus a wanwatch daemon in its router namespace.

    ``config_path`` runs the daemon on another file than the lab's own config
    (a copy with other hooks or timers); it must describe the same office.
    """

    def __init__(self, lab: Lab, config_path: Path | None = None) -> None:
        self.lab = lab
        self.daemon: Proc | None = None
        self.last: Proc | None = None  # the latest daemon started, kept after it stops
        self.socket = lab.state_dir / "wanwatch.sock"
        self.daemon_state = lab.state_dir / "wanwatch-state"
        self.router_ns = lab.router_ns  # a router pair runs a second Office in its peer's
        self._config_path = config_path

    @property
    def config_path(self) -> Path:
        return self._config_path or self.lab.config_path

    # ------------------------------------------------------------------ daemon

    def start(
        self,
        *,
        wait_active: str | None = None,
        timeout: float = 15.0,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> Proc:
        """Start the daemon (extra ``args`` for `wanwatch run`, extra ``env``); optionally
        wait until ``wait_active`` carries traffic."""
        if self.daemon is not None and self.daemon.alive():
            raise LabError("the daemon is already running")
        argv = [
            sys.executable, "-m", "wanwatch.cli", "run",
            "-c", str(self.config_path),
            "--socket", str(self.socket),
            "--state-dir", str(self.daemon_state),
            *args,
        ]  # fmt: skip
        self.daemon = self.last = self.lab.spawn(self.router_ns, argv, "wanwatch", env)
        self.wait_for(lambda st: True, timeout, "the daemon's control socket")
        if wait_active is not None:
            self.wait_active(wait_active, timeout)
        return self.daemon

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Signal the daemon and wait for it to exit; its exit code (None if it hung)."""
        if self.daemon is None:
            return None
        proc, self.daemon = self.daemon, None
        if proc.alive():
            proc.send_signal(sig)
        code = proc.wait(timeout)
        if code is None and proc.alive():
            self.lab.stop_proc(proc)
            raise LabError(f"wanwatch did not exit within {timeout}s of {sig.name}")
        return code

    def log(self) -> str:
        """Everything the latest daemon wrote (its event log is on stdout), even once stopped."""
        proc = self.daemon or self.last
        if proc is None:
            return ""
        try:
            return proc.out.read_text(errors="replace") + proc.stderr()
        except FileNotFoundError:
            return proc.stderr()

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        return request(self.socket, "status", timeout=2.0)

    def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """Poll status until ``pred`` holds; raise LabError naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | str = "no answer"
        while time.monotonic() < deadline:
            if self.daemon is not None and not self.daemon.alive():
                raise LabError(f"wanwatch exited while waiting for {what}:\n{self.log()[-3000:]}")
            try:
                st = self.status()
            except ControlError as exc:
                last = str(exc)
            else:
                if pred(st):
                    return st
                last = st
            time.sleep(POLL)
        raise LabError(f"timed out after {timeout}s waiting for {what}; last status: {last}")

    def events(
        self, since: float | None = None, names: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """The daemon's recent events (``at`` is CLOCK_MONOTONIC, one clock for all
        namespaces), optionally only those at/after ``since`` and named ``names``."""
        found: list[dict[str, Any]] = request(self.socket, "events", timeout=2.0)["events"]
        return [
            e
            for e in found
            if (since is None or e["at"] >= since) and (not names or e["name"] in names)
        ]

    def wait_event(
        self,
        name: str,
        *,
        since: float,
        timeout: float = 15.0,
        where: Callable[[dict[str, Any]], bool] = lambda e: True,
    ) -> dict[str, Any]:
        """Poll until an event ``name`` at/after ``since`` satisfies ``where``; the first one."""
        deadline = time.monotonic() + timeout
        while True:
            if self.daemon is not None and not self.daemon.alive():
                raise LabError(f"wanwatch exited while waiting for {name}:\n{self.log()[-3000:]}")
            try:
                hits = [e for e in self.events(since, (name,)) if where(e)]
            except ControlError:
                hits = []
            if hits:
                return hits[0]
            if time.monotonic() >= deadline:
                raise LabError(f"timed out after {timeout}s waiting for event {name}")
            time.sleep(POLL)

    def wait_active(self, name: str, timeout: float = 15.0) -> dict[str, Any]:
        return self.wait_for(
            lambda st: st["active"][:1] == [name] and bool(st.get("applied")),
            timeout,
            f"{name} to carry traffic",
        )

    def wait_state(self, wan: str, state: str, timeout: float = 15.0) -> dict[str, Any]:
        return self.wait_for(
            lambda st: any(w["name"] == wan and w["state"] == state for w in st["wans"]),
            timeout,
            f"{wan} to be {state}",
        )


class Tailored:
    """The lab office run on its own config with some top-level sections replaced
    (hooks off, a 1 s hold), and the processes a test starts beside it, stopped
    together by :meth:`close`."""

    def __init__(self, lab: Lab, wait_active: str, timeout: float) -> None:
        self.lab = lab
        self.wait_active, self.timeout = wait_active, timeout
        self.office: Office | None = None
        self.procs: list[Proc] = []

    def start(self, name: str, **sections: Any) -> Office:
        data = yaml.safe_load(self.lab.config_text)
        data["monitor"] = {**data.get("monitor", {}), "hold": 1.0}
        data["hooks"] = {}  # the office's logger hooks would write to the host's syslog
        data.update(sections)
        path = self.lab.state_dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        load(path)  # a mistake in the test's sections stops here, before any daemon
        self.office = Office(self.lab, path)
        self.office.start(wait_active=self.wait_active, timeout=self.timeout)
        return self.office

    def close(self) -> int | None:
        """Stop what was started and clear the ISPs' faults; the daemon's exit code."""
        for p in self.procs:
            self.lab.stop_proc(p)
        try:
            return self.office.stop() if self.office is not None else 0
        finally:
            faults.clear_all(self.lab)
