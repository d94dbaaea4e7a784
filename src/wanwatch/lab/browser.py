"""The status page in Debian's headless chromium, driven by selenium, inside a lab namespace.

The page listens on the router namespace's loopback, which only a process in that
namespace can reach (selenium talks to chromedriver over loopback too). So
:class:`Browser` starts the ``browser`` worker (worker/browser.py) there and
speaks JSON lines with it: one answer on stdout for each command on stdin.

Commands: ``{"cmd": "wait", "active": NAME, "wans": [...], "timeout": s}`` polls the
DOM until the page shows those uplinks and NAME carrying traffic, and answers
with the CLOCK_MONOTONIC time it saw that (one clock for every namespace);
``{"cmd": "inspect"}`` returns what the page shows; ``{"cmd": "screenshot",
"path": P, "width": W}`` saves the whole page; ``{"cmd": "phone"}`` reports
whether a 390 px wide viewport scrolls sideways; ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from wanwatch.errors import LabError
from wanwatch.lab import netns
from wanwatch.lab.topology import Lab
from wanwatch.lab.worker import worker_argv


class Browser:
    """The helper process in ``lab``'s router namespace, on ``url``; close() ends it."""

    def __init__(self, lab: Lab, url: str) -> None:
        argv = netns.ns_argv(lab.router_ns, worker_argv("browser", "--url", url))
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "HOME": str(lab.state_dir)},  # chromium writes its caches there
        )
        self.read()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise LabError(f"the browser helper exited: {err[-3000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        """Quit chromium (the helper's ``finally``) and close our pipes; kill a hung helper."""
        try:
            self.proc.communicate('{"cmd": "quit"}\n', timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=5)
