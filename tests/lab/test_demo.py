"""`wanwatch lab demo`, the README's first command, run for real (root, namespaces).

The demo measures; these tests check what it shows happened: traffic moved to
the backup on a silent cut and on carrier loss, came back only after the hold,
both LANs got leases, the daemon stopped cleanly and the lab is gone. How fast
is bench/failover.py's business.
"""

from __future__ import annotations

import json
import re
from typing import Any

from click.testing import CliRunner

from wanwatch.cli import main
from wanwatch.config import Config
from wanwatch.lab import netns
from wanwatch.lab.demo import run


def _check_failover_figures(figures: dict[str, Any], office: Config) -> None:
    assert set(figures["dhcp_ms"]) == {lan.name for lan in office.lans}
    assert isinstance(figures["blackhole_failover_ms"], int)
    assert isinstance(figures["carrier_failover_ms"], int)
    # new connections return to the primary only once it has been up for the hold
    hold = office.monitor_for(min(office.wans, key=lambda w: w.priority)).hold
    assert isinstance(figures["failback_s"], float) and figures["failback_s"] >= hold
    assert figures["daemon_exit"] == 0


def test_demo_command_shows_failover_and_failback(office: Config) -> None:
    res = CliRunner().invoke(main, ["lab", "demo", "-c", office.source, "--json"])
    assert res.exit_code == 0, res.output
    *narration, last = res.output.strip().splitlines()
    figures = json.loads(last)
    assert figures["mode"] == "failover"
    _check_failover_figures(figures, office)
    text = "\n".join(narration)
    for step in ("Cut INET-UTAMA silently", "Restore INET-UTAMA", "carrier loss", "Lab removed"):
        assert step in text, text
    # Every namespace the demo made is gone. Only its own, named by the tag it
    # announces: other labs may come and go on the machine meanwhile.
    tag = re.search(r"^Lab (\w+): ", text, re.MULTILINE)
    assert tag is not None, text
    assert not {n for n in netns.existing() if n.startswith(f"{netns.PREFIX}{tag[1]}-")}


def test_loadbalance_demo_splits_and_keeps_the_surviving_connection(office: Config) -> None:
    said: list[str] = []
    figures = run(office, said.append, mode="loadbalance")
    assert figures["mode"] == "loadbalance"
    split = figures["split"]
    # both uplinks carry new connections, each where the hash said, none failed
    assert set(split["connections"]) == {w.name for w in office.wans}, split
    assert min(split["connections"].values()) > 0 and split["off_prediction"] == 0, split
    assert figures["throughput"]["flows_8_mbit"] > figures["throughput"]["flows_1_mbit"]
    _check_failover_figures(figures, office)
    # a connection on the backup is not touched by the primary's failover
    assert figures["survivor_alive"] is True, "\n".join(said)
