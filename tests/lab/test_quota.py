"""End to end: a metered backup's usage counted by the kernel, and a used-up quota routed.

One lab is shared by the module; every test starts its own daemon on a copy of the
lab's config whose backup has a quota, and stops it. Assertions are about what
was sent and which uplink carries, bounded only by generous deadlines.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from wanwatch.config import load
from wanwatch.daemon.admin import ADMIN_FILE
from wanwatch.daemon.control import request
from wanwatch.daemon.quota import QUOTA_FILE
from wanwatch.lab import faults, netns, shaping
from wanwatch.lab.office import Office
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import bulk
from wanwatch.lab.traffic.connect import first_new_connection
from wanwatch.linux import usage
from wanwatch.probe.budget import costs

pytestmark = pytest.mark.lab

SharedLab = Callable[..., contextlib.AbstractContextManager[Lab]]  # fixture (conftest.py)
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"  # examples/office.yaml
DEADLINE = 30.0
MBIT = 20  # the backup's shaped rate: a few MB in a few seconds, light on a shared machine
# Headers a bulk download adds to its payload, in the counters: each full segment
# (MSS 1448 with TCP timestamps, on a 1500-byte MTU) carries 52 bytes of IPv4 and
# TCP headers (3.6 %); the client's ACKs go the other way, one per one or two
# segments (RFC 1122 4.2.3.2's delayed ACK: at most 3.6 % of the payload).
HEADERS = 52 / 1448


@pytest.fixture(scope="module")
def quota_lab(shared_lab: SharedLab) -> Iterator[Lab]:
    with shared_lab("quota") as lab:
        lab.client_static(lab.lab_config.lans[0].name)
        yield lab


@pytest.fixture
def start(quota_lab: Lab) -> Iterator[Callable[..., Office]]:
    """Start the daemon with a quota on the backup; afterwards stop it, clear faults."""
    offices: list[Office] = []

    def started(
        name: str, quota: dict[str, Any], active: str, mode: str = "failover", **backup: Any
    ) -> Office:
        office = Office(quota_lab, with_quota(quota_lab, name, quota, mode, **backup))
        offices.append(office)
        office.start(wait_active=active, timeout=DEADLINE)
        return office

    try:
        yield started
    finally:
        for office in offices:
            office.stop()
            # what a daemon keeps for the next one: a quota's count, an uplink disabled
            for kept in (QUOTA_FILE, ADMIN_FILE):
                (office.daemon_state / kept).unlink(missing_ok=True)
        shaping.unshape(quota_lab, BACKUP)
        faults.clear_all(quota_lab)


def with_quota(lab: Lab, name: str, quota: dict[str, Any], mode: str, **backup: Any) -> Path:
    """A copy of the lab's config whose backup is metered with ``quota``, validated."""
    data = yaml.safe_load(lab.config_text)
    data.setdefault("policy", {})["mode"] = mode
    data["monitor"] = {**data.get("monitor", {}), "hold": "3s"}  # a quick comeback
    for w in data["wans"]:
        if w["name"] == BACKUP:
            w.update(metered=True, quota=quota, **backup)
        elif "priority" in backup:  # the backup preferred: the primary behind it
            w["priority"] = backup["priority"] + 1
    data["hooks"] = {}  # the office's logger hooks would write to the host's syslog
    path = lab.state_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load(path)
    return path


def backup_of(st: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The backup's counters and its quota in a status answer."""
    wan = next(w for w in st["wans"] if w["name"] == BACKUP)
    return st["counters"][BACKUP], wan["quota"]


def in_kernel(lab: Lab) -> tuple[int, usage.Moved]:
    """Our table's handle and the backup's usage counters, read from the kernel."""
    items = netns.nft_json(lab.router_ns, "table", "inet", "wanwatch")
    handle = next(int(i["table"]["handle"]) for i in items if "table" in i)
    return handle, usage.parse(json.dumps({"nftables": items}))[BACKUP]


def test_a_metered_backups_counters_and_quota_match_the_bytes_sent(
    start: Callable[..., Office], quota_lab: Lab
) -> None:
    lab = quota_lab
    # loadbalance: a change of who carries replaces our table (nft.py), tried at the end
    office = start("accounting", {"limit": "10GB"}, PRIMARY, mode="loadbalance")
    request(office.socket, "disable", wan=PRIMARY)
    office.wait_active(BACKUP, timeout=DEADLINE)
    shaping.shape(lab, BACKUP, MBIT)
    lan = lab.lab_config.lans[0].name
    # A first transfer, counted whole before the measured one: the quota's counting
    # (every 5 s) has started, and its figure and the counters' are of one moment.
    warm = sum(f.bytes for f in bulk(lab, lan, flows=1, seconds=1.0, warmup=0.0).flows)
    st0 = office.wait_for(
        lambda st: backup_of(st)[1]["used"] >= warm > 0,
        DEADLINE,
        "the quota to count a first transfer",
    )
    c0, q0 = backup_of(st0)
    r = bulk(lab, lan, flows=1, seconds=3.0, warmup=0.0)
    assert not [f.error for f in r.flows if f.error] and {f.isp for f in r.flows} == {BACKUP}
    sent = sum(f.bytes for f in r.flows)
    assert sent > 1_000_000  # a few MB at 20 Mbit/s
    # The quota is counted every 5 s (daemon/quota.py): wait until it holds the transfer.
    st1 = office.wait_for(
        lambda st: backup_of(st)[1]["used"] - q0["used"] >= sent,
        DEADLINE,
        "the quota to count the transfer",
    )
    c1, q1 = backup_of(st1)
    took = st1["uptime_s"] - st0["uptime_s"]
    # The backup's own probes and the router's traffic on it meanwhile (both ways).
    config = load(office.config_path)
    probes = sum(c.bytes_day for c in costs(config, config.wan(BACKUP))) / 86400
    slack = probes * (took + 10) + 20_000  # handshakes, FINs, the worker's hello lines
    into, out = c1["bytes_in"] - c0["bytes_in"], c1["bytes_out"] - c0["bytes_out"]
    assert sent <= into <= sent * (1 + HEADERS) + slack
    assert 0 < out <= sent * HEADERS + slack
    # (no figure for packets: GRO may merge segments into one counted packet)
    assert c1["packets_in"] > c0["packets_in"] and c1["packets_out"] > c0["packets_out"]
    # The quota counts both ways, from readings a few seconds apart from status's.
    counted = q1["used"] - q0["used"]
    assert sent <= counted <= (into + out) + slack
    # Our table replaced (the primary back in the balance): the counters carry on.
    table, before = in_kernel(lab)
    t = time.monotonic()
    request(office.socket, "enable", wan=PRIMARY)
    office.wait_event("nft.apply", since=t, timeout=DEADLINE)
    table_after, after = in_kernel(lab)
    assert table_after != table
    assert before.bytes_in <= after.bytes_in <= before.bytes_in + slack
    assert before.bytes_out <= after.bytes_out <= before.bytes_out + slack


def test_a_used_up_quota_moves_traffic_off_the_backup_until_the_primary_dies(
    start: Callable[..., Office], quota_lab: Lab
) -> None:
    lab = quota_lab
    lan = lab.lab_config.lans[0].name
    # The backup is preferred here (priority 1), so only its quota can move traffic off it.
    office = start("used-up", {"limit": "2MB", "warn": "50%"}, BACKUP, priority=1)
    shaping.shape(lab, BACKUP, MBIT)
    bulk(lab, lan, flows=1, seconds=2.0, warmup=0.0)  # ~5 MB: more than the quota
    office.wait_active(PRIMARY, timeout=DEADLINE)
    names = [e["name"] for e in office.events(names=("wan.quota_warning", "wan.quota_exhausted"))]
    assert names == ["wan.quota_warning", "wan.quota_exhausted"]
    fo = office.events(names=("policy.failover",))
    assert fo and fo[-1]["cause"] == BACKUP and fo[-1]["reason"] == "quota"
    assert backup_of(office.status())[1]["state"] == "exhausted"
    now = time.monotonic()
    hit = first_new_connection(lab, lan, after=now, deadline=now + DEADLINE, via=PRIMARY)
    assert hit is not None
    # The primary dies: the backup, used up, is the last resort, and carries again.
    cut = faults.blackhole(lab, PRIMARY)
    office.wait_active(BACKUP, timeout=DEADLINE)
    hit = first_new_connection(
        lab, lan, after=cut.t_start, deadline=time.monotonic() + DEADLINE, via=BACKUP
    )
    assert hit is not None
    faults.clear(lab, PRIMARY, "blackhole")
    office.wait_active(PRIMARY, timeout=DEADLINE)
