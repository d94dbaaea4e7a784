"""Lab workers: every program that runs inside a lab namespace, behind one entry point.

Each is started as ``python -m wanwatch.lab.worker <command>`` (:func:`worker_argv`),
by :meth:`Lab.spawn <wanwatch.lab.topology.Lab.spawn>` so that the lab stops it by
PID, and is bounded in attempts and time (``limits``). It writes one JSON object per
line on stdout (``report``) with ``time.monotonic()`` timestamps, and stops on
SIGTERM or SIGINT (``stop``). The commands:

- traffic from a client: ``connect``, ``flow`` (tcp.py), ``bulk`` (bulk.py),
  ``hop``, ``ping``, ``rst`` (raw.py), ``dns`` (dns.py), ``stream`` and ``sink``
  (stream.py);
- servers of the fake internet: ``whoami`` and ``bulk-server`` (servers.py),
  ``web`` (web.py: "generate_204", or an ISP's captive portal);
- what a segment can reach: ``listen`` and ``scan`` (scan.py);
- faults at an ISP: ``delay``, the NFQUEUE releaser (delay.py), and ``flap``
  (flap.py);
- ``browser``: the status page in headless chromium (browser.py).

A worker imports the standard library, ``wanwatch.probe.icmp`` (echo packets, with
its socket pinning ``wanwatch.probe.pin``),
``wanwatch.lab.netns`` (running a command) and this package, and nothing of the
controller side (engine, nft, the lab), so it starts fast; ``delay`` and
``browser`` also load NetfilterQueue and selenium, when they run.
"""

from __future__ import annotations

import sys


def worker_argv(*args: str) -> list[str]:
    """The command line of one worker: ``python -m wanwatch.lab.worker <args>``."""
    return [sys.executable, "-m", "wanwatch.lab.worker", *args]
