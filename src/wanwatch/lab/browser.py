"""The status page in Debian's headless chromium, driven by selenium, inside a lab namespace.

The page listens on the router namespace's loopback, which only a process in that
namespace can reach (selenium talks to chromedriver over loopback too). So
:class:`Browser` starts ``python -m wanwatch.lab.browser URL`` there and speaks
JSON lines with it: one answer on stdout for each command on stdin.

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
import sys
import tempfile
import time
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from wanwatch.errors import LabError
from wanwatch.lab import netns
from wanwatch.lab.topology import Lab

POLL = 0.05

SHOWN = """
const cards = [...document.querySelectorAll('article.wan')];
return {
  active: document.getElementById('active').textContent,
  connected: document.getElementById('conn').dataset.ok === 'true',
  wans: cards.map(c => ({name: c.dataset.wan, state: c.dataset.state,
                         carrying: c.dataset.carrying === 'true',
                         charts: c.querySelectorAll('svg').length})),
  timeline: [...document.querySelectorAll('#timeline li')].map(li => li.textContent),
  log: document.querySelectorAll('#log li').length,
  leases: [...document.querySelectorAll('#leases tr')].length,
  resources: performance.getEntriesByType('resource').map(r => r.name),
  origin: location.origin,
};
"""


class Browser:
    """The helper process in ``lab``'s router namespace, on ``url``; close() ends it."""

    def __init__(self, lab: Lab, url: str) -> None:
        argv = netns.ns_argv(lab.router_ns, [sys.executable, "-m", "wanwatch.lab.browser", url])
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


def driver(profile: str) -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"  # Debian's; selenium downloads nothing
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root inside a network namespace: chromium's sandbox refuses root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def shown(drv: webdriver.Chrome) -> dict[str, Any]:
    found: dict[str, Any] = drv.execute_script(SHOWN)
    return found


def wait(drv: webdriver.Chrome, active: str, wans: list[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = shown(drv)
        except (StaleElementReferenceException, WebDriverException) as exc:
            last = {"error": str(exc)}
        else:
            names = [w["name"] for w in last["wans"]]
            carrying = [w["name"] for w in last["wans"] if w["carrying"]]
            if last["active"] == active and names == wans and carrying == [active]:
                return {"ok": True, "seen": time.monotonic(), "shown": last}
        time.sleep(POLL)
    return {"ok": False, "shown": last}


def main() -> None:
    url = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="ww-chromium-") as profile:
        drv = driver(profile)
        try:
            drv.get(url)
            print(json.dumps({"ok": True, "started": True}), flush=True)
            for line in sys.stdin:
                cmd = json.loads(line)
                if cmd["cmd"] == "wait":
                    out = wait(drv, cmd["active"], cmd["wans"], cmd["timeout"])
                elif cmd["cmd"] == "inspect":
                    out = {"ok": True, "shown": shown(drv)}
                elif cmd["cmd"] == "screenshot":
                    height = drv.execute_script("return document.documentElement.scrollHeight")
                    drv.set_window_size(cmd["width"], height + 20)
                    out = {"ok": drv.find_element(By.TAG_NAME, "body").screenshot(cmd["path"])}
                elif cmd["cmd"] == "phone":
                    drv.set_window_size(390, 844)
                    widths = [0, 10_000]
                    deadline = time.monotonic() + 10
                    while widths[1] > 390 and time.monotonic() < deadline:  # the resize landed
                        widths = drv.execute_script(
                            "return [document.documentElement.scrollWidth, window.innerWidth]"
                        )
                        time.sleep(POLL)
                    out = {"ok": True, "scroll_width": widths[0], "inner_width": widths[1]}
                else:
                    break
                print(json.dumps(out), flush=True)
        finally:
            drv.quit()


if __name__ == "__main__":
    main()
