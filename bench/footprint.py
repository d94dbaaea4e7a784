"""Where the daemon's resident memory goes: the layers it imports, one at a time.

Each run starts a fresh interpreter that imports the daemon's layers in the
order ``wanwatch run`` does and reads its own ``VmRSS`` after each; the figure
per layer is the median growth over ``--runs`` interpreters. Needs no root
and no lab: it is the import footprint, without the sockets, threads and
state of a running daemon (bench/failover.py measures that one, in the lab).

Prints ONE JSON object; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from _common import ROOT, host_info, say

OFFICE = ROOT / "examples" / "office.yaml"

# (label, statement) in the order the daemon meets them; each adds to the last.
LAYERS: list[tuple[str, str]] = [
    ("asyncio (with ssl, which asyncio imports)", "import asyncio"),
    ("click", "import click"),
    ("yaml", "import yaml"),
    ("msgspec", "import msgspec"),
    (
        "config model + loading the office",
        f"from wanwatch.config import load; load({str(OFFICE)!r})",
    ),
    ("cli", "import wanwatch.cli"),
    ("engine", "import wanwatch.engine.core"),
    ("pyroute2 rtnetlink (linux.netlink)", "import wanwatch.linux.netlink"),
    ("pyroute2 conntrack (linux.conntrack)", "import wanwatch.linux.conntrack"),
    ("backend, probes, dnsmasq, daemon", "import wanwatch.daemon.assemble"),
    ("status page (--http only)", "import wanwatch.daemon.web.app"),
]

PROBE = """
import json, sys
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS'):
                return int(line.split()[1])
out = [rss()]
for stmt in json.loads(sys.argv[1]):
    exec(stmt)
    out.append(rss())
print(json.dumps(out))
"""


def one_run() -> list[int]:
    stmts = json.dumps([stmt for _, stmt in LAYERS])
    done = subprocess.run(
        [sys.executable, "-c", PROBE, stmts], capture_output=True, text=True, check=True, timeout=60
    )
    kb: list[int] = json.loads(done.stdout)
    return kb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    runs = []
    for i in range(args.runs):
        runs.append(one_run())
        say(f"run {i + 1}/{args.runs}: {runs[-1][-1] / 1024:.1f} MB after every layer")
    mb = lambda kb: round(kb / 1024, 1)  # noqa: E731
    layers: list[dict[str, Any]] = [
        {"layer": "python interpreter", "mb": mb(statistics.median(r[0] for r in runs))}
    ]
    for n, (label, _) in enumerate(LAYERS, start=1):
        grow = statistics.median(r[n] - r[n - 1] for r in runs)
        layers.append({"layer": label, "mb": mb(grow)})
    out = {
        "bench": "footprint",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": host_info(),
        "runs": args.runs,
        "layers": layers,
        "total_mb": mb(statistics.median(r[-1] for r in runs)),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
