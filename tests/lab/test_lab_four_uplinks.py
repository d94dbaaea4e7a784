"""End to end with four uplinks: each ISP on a /25 of the fake internet (lab/plan.py).

The reference office grown to four uplinks (plan.add_uplinks), every uplink probed
by every method (lab/portal.py: ICMP, a TCP connect and an HTTP GET to its ISP's
whoami address, a DNS query to its ISP's DNS server), ``wanwatch run`` in the
router namespace. The fake internet counts, per ISP, the probes that reach each
uplink's targets through that uplink's own ISP and through any other one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from wanwatch.config import Config, load
from wanwatch.lab import netns, portal
from wanwatch.lab.office import Office
from wanwatch.lab.plan import add_uplinks
from wanwatch.lab.topology import Lab

pytestmark = pytest.mark.lab

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"
UPLINKS = 4
PRIMARY = "INET-UTAMA"  # examples/office.yaml, priority 1
TABLE = "ww_test_four"
DEADLINE = 30.0  # every uplink is up within a few probe rounds; this bounds a broken one
ROUNDS = 10  # replies each uplink must gain while its probes are counted


@pytest.fixture
def four(make_lab: Callable[..., Lab], tmp_path: Path) -> Lab:
    path = tmp_path / "office-4.yaml"
    data = add_uplinks(yaml.safe_load(OFFICE.read_text()), UPLINKS)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    cfg: Config = load(path)
    lab = make_lab(cfg)
    portal.start_web(lab)
    return lab


@pytest.fixture
def daemon(four: Lab) -> Iterator[Office]:
    """The daemon on a config of every method on every uplink; started by the test,
    stopped here."""
    names = tuple(i.wan for i in four.topology.isps)
    path = portal.methods_config(four, "four", wans=names, monitor={"hold": "1s"})
    office = Office(four, path)
    try:
        yield office
    finally:
        assert office.stop() in (0, None), office.log()[-3000:]


def own_targets(office: Office) -> dict[str, set[str]]:
    """Each uplink's probe targets (every method) in the daemon's config."""
    data = yaml.safe_load(office.config_path.read_text())
    found: dict[str, set[str]] = {}
    for w in data["wans"]:
        found[w["name"]] = {
            t if isinstance(t, str) else t["address"] for t in w["probe"]["targets"]
        }
    return found


def count_probes(lab: Lab, targets: dict[str, set[str]]) -> None:
    """Counters in the fake internet: ``right<k>`` for the probes of uplink k that arrive
    from its own ISP, ``wrong`` for any probe that arrives from another ISP."""
    rules = []
    for isp in lab.topology.isps:
        own = ", ".join(sorted(targets[isp.wan]))
        rules.append(
            f'iifname "{isp.inet_if}" ip daddr {{ {own} }} counter name "right{isp.index}"'
        )
        rules.append(f'iifname != "{isp.inet_if}" ip daddr {{ {own} }} counter name "wrong"')
    counters = "".join(f"  counter right{i.index} {{ }}\n" for i in lab.topology.isps)
    netns.nft(
        lab.inet_ns,
        f"table inet {TABLE}\n"
        f"delete table inet {TABLE}\n"
        f"table inet {TABLE} {{\n"
        f"{counters}"
        "  counter wrong { }\n"
        "  chain pre {\n"
        "    type filter hook prerouting priority raw; policy accept;\n"
        + "".join(f"    {r}\n" for r in rules)
        + "  }\n}\n",
    )


def counter(lab: Lab, name: str) -> int:
    for item in netns.nft_json(lab.inet_ns, "counter", "inet", TABLE, name):
        if "counter" in item:
            return int(item["counter"]["packets"])
    raise AssertionError(f"no counter {name} in {lab.inet_ns}")


def by_name(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in status["wans"]}


def test_four_uplinks_are_up_each_through_its_own_isp(four: Lab, daemon: Office) -> None:
    office = daemon
    isps = four.topology.isps
    assert len(isps) == UPLINKS and len({i.net for i in isps}) == UPLINKS
    targets = own_targets(office)
    assert all(len(t) == 4 for t in targets.values()), targets  # 2 ICMP, tcp+http, dns
    count_probes(four, targets)  # before the first probe
    office.start(wait_active=PRIMARY, timeout=DEADLINE)

    def all_up(st: dict[str, Any]) -> bool:
        return all(
            w["state"] == "up" and set(w["targets"].values()) == {"answering"} for w in st["wans"]
        )

    st0 = by_name(office.wait_for(all_up, DEADLINE, "all four uplinks up, every target answering"))
    assert list(st0) == [i.wan for i in isps]
    right0 = {i.wan: counter(four, f"right{i.index}") for i in isps}

    def more_replies(st: dict[str, Any]) -> bool:
        now = by_name(st)
        return all(now[w]["probes"]["replies"] >= st0[w]["probes"]["replies"] + ROUNDS for w in now)

    st = by_name(office.wait_for(more_replies, DEADLINE, f"{ROUNDS} more replies per uplink"))
    assert all(w["state"] == "up" for w in st.values()), st
    for isp in isps:
        # Each uplink's probes reach the fake internet through its own ISP ...
        assert counter(four, f"right{isp.index}") > right0[isp.wan], isp.wan
        # ... and no ISP dropped a packet of the office for a foreign source.
        assert four.bcp38_drops(isp.wan) == 0, isp.wan
    # ... and never through another one.
    assert counter(four, "wrong") == 0
