"""Take docs/status-page.png: the status page of the reference office after a few eventful minutes.

    sudo .venv/bin/python scripts/status-page-screenshot.py [OUT.png] [--minutes M]

Root. Builds the lab office (examples/office.yaml) with ``wanwatch run --http``
as its router, gives each LAN's client a DHCP lease, puts some delay on both
ISPs (the backup farther away) and some loss on the primary, cuts the primary
(blackhole) and restores it, so the charts, the failover timeline, the leases
and the event log all have something real to show; then saves the whole page
from headless chromium. Everything it built is removed at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from wanwatch.config import load
from wanwatch.lab import faults
from wanwatch.lab.browser import Browser
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab

ROOT = Path(__file__).resolve().parent.parent
PAGE = "127.0.0.1:9180"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", type=Path, default=ROOT / "docs" / "status-page.png")
    ap.add_argument("--minutes", type=float, default=5.0, help="how long the office runs first")
    args = ap.parse_args()
    config = load(ROOT / "examples" / "office.yaml")
    primary, backup = (w.name for w in sorted(config.wans, key=lambda w: w.priority)[:2])
    phase = args.minutes * 60 / 5
    with Lab(config) as lab:
        office = Office(lab)
        office.start(wait_active=primary, timeout=30, args=("--http", PAGE))
        for lan in config.lans:
            lab.dhcp_lease(lan.name, timeout=15)
        faults.delay(lab, primary, 9, jitter_ms=3, max_seconds=args.minutes * 60 + 120)
        faults.delay(lab, backup, 28, jitter_ms=8, max_seconds=args.minutes * 60 + 120)
        time.sleep(phase)
        faults.loss(lab, primary, 12)
        time.sleep(phase)
        faults.clear(lab, primary, "loss")
        time.sleep(phase)
        faults.blackhole(lab, primary)
        office.wait_active(backup, timeout=15)
        time.sleep(phase)
        faults.clear(lab, primary, "blackhole")
        office.wait_active(primary, timeout=120)
        time.sleep(phase)
        browser = Browser(lab, f"http://{PAGE}/")
        try:
            browser.ask("wait", active=primary, wans=[w.name for w in config.wans], timeout=15)
            if not browser.ask("screenshot", path=str(args.out.resolve()), width=1200)["ok"]:
                return 1
        finally:
            browser.close()
        office.stop()
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
