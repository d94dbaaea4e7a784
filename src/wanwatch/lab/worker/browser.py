"""The browser worker: the status page in Debian's headless chromium, driven by selenium.

Started by :class:`wanwatch.lab.browser.Browser` inside the router namespace,
where the page listens on loopback. It speaks JSON lines: one answer on stdout
for each command on stdin (the commands are listed in browser.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from wanwatch.lab.worker.report import emit

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


def browser(args: argparse.Namespace) -> None:
    """Open ``--url``, then answer each command read from stdin until ``quit``."""
    url = args.url
    with tempfile.TemporaryDirectory(prefix="ww-chromium-") as profile:
        drv = driver(profile)
        try:
            drv.get(url)
            emit({"ok": True, "started": True})
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
                emit(out)
        finally:
            drv.quit()
