"""End to end: the real ``wanwatch run`` as a process in the lab's router namespace.

One lab (namespaces, fake internet, ISPs, two LAN clients on static addresses)
is shared by the module; every test starts its own daemon on a config file of
its own and the ``router`` fixture stops it (SIGTERM), clears every fault and
checks the router namespace carries none of our footprint before the next test.

Faults are injected at the ISPs (faults.py); traffic is measured from the LAN
clients (traffic.py) with CLOCK_MONOTONIC timestamps, the same clock as the
daemon's events, so "cut at T -> first new connection through the backup"
compares directly. Assertions are about behaviour (which uplink carried a
connection, which flows survived, what the kernel holds); timings are logged
as figures, and only bounded by generous deadlines.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest
import yaml

from wanwatch.config import load
from wanwatch.footprint import DEFAULT_METRIC, RT_PROTO
from wanwatch.lab import faults, netns
from wanwatch.lab.office import Office
from wanwatch.lab.poll import holds, until
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import (
    Attempt,
    ConnectLoop,
    Flow,
    Stream,
    first_new_connection,
    lone_resets,
    udp_sink,
)
from wanwatch.lab.worker.servers import WHOAMI_PORT

pytestmark = pytest.mark.lab

log = logging.getLogger(__name__)

SharedLab = Callable[..., contextlib.AbstractContextManager[Lab]]  # fixture (conftest.py)
PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"  # examples/office.yaml, priority 1 and 2
CLIENT, CLIENT2 = "ether3", "WIFI"  # its LANs
HOLD = 3.0  # the hold of the tests' configs: long enough to see, short enough to wait for
FAILOVER_DEADLINE = 10.0  # a failover takes about 1 s; this only bounds a broken one
# Failback: up_after good rounds (~2.5 s at 0.5 s) plus the hold, plus slack for load.
FAILBACK_DEADLINE = 30.0
# Scheduling slack around an event when attributing a connection attempt to the
# dataplane before or after it: a worker's t0 is taken just before connect().
SLACK = 0.2


# --------------------------------------------------------------------------- lab and daemon


@pytest.fixture(scope="module")
def office_lab(shared_lab: SharedLab) -> Iterator[Lab]:
    """The lab shared by this module, its LAN clients on static addresses."""
    with shared_lab("daemon-labs") as lab:
        for c in lab.topology.clients:
            lab.client_static(c.lan)
        yield lab


def write_config(
    lab: Lab,
    name: str,
    *,
    hold: float = HOLD,
    hooks: dict[str, Any] | None = None,
) -> Path:
    """A copy of the lab's config with our hold and hooks (none by default: the office's
    ``logger`` hooks would write to the host's syslog), validated, in the lab's state dir."""
    data = yaml.safe_load(lab.config_text)
    data["monitor"] = {**data.get("monitor", {}), "hold": hold}
    data["hooks"] = hooks or {}
    path = lab.state_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load(path)
    return path


class Router:
    """The daemon under test, on its own config file; see the ``router`` fixture."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.office: Office | None = None

    def start(
        self,
        name: str = "daemon",
        *,
        wait_active: str | None = PRIMARY,
        args: Sequence[str] = (),
        **config: Any,
    ) -> Office:
        path = write_config(self.lab, name, **config)
        self.office = Office(self.lab, path)
        self.office.start(wait_active=wait_active, timeout=30, args=args)
        return self.office


@pytest.fixture
def router(office_lab: Lab) -> Iterator[Router]:
    """Start the daemon in a test; afterwards: SIGTERM, faults cleared, no footprint left."""
    r = Router(office_lab)
    try:
        yield r
    finally:
        office, code = r.office, None
        try:
            if office is not None:
                code = office.stop()
        finally:
            faults.clear_all(office_lab)
        # The next test needs a router namespace free of us; test_stop_leaves_no_trace
        # compares it in full, this is the quick check.
        left = footprint(office_lab)
        for pid, _ in left.get("pids", []):
            # Started by our daemon in our lab namespace (what netns.delete would kill):
            # killed so that one leak fails one test, not every later one too.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert left == {}, f"left in the router namespace: {left}"
        if office is not None:
            assert code in (0, None), f"wanwatch exited {code}:\n{office.log()[-3000:]}"


# --------------------------------------------------------------------------- inspection


def ip_json(ns: str, *args: str) -> list[dict[str, Any]]:
    out = netns.sh(["ip", "-j", "-n", ns, *args]).stdout.strip()
    found: list[dict[str, Any]] = json.loads(out) if out else []
    return found


def ns_pids(ns: str) -> set[int]:
    """Live (non-zombie) processes in ``ns``."""
    pids = netns.sh(["ip", "netns", "pids", ns], check=False).stdout.split()
    return {int(p) for p in pids if netns.alive(int(p), None)}


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def footprint(lab: Lab) -> dict[str, Any]:
    """What of ours the router namespace holds: routes/rules with our protocol, our nft
    table, processes (the lab starts none there but the daemon)."""
    ns = lab.router_ns
    proto = str(RT_PROTO)
    found: dict[str, Any] = {
        "routes": [
            r for r in ip_json(ns, "route", "show", "table", "all") if r.get("protocol") == proto
        ],
        "rules": [r for r in ip_json(ns, "rule") if r.get("protocol") == proto],
        "nft": [t for t in nft_tables(ns) if t == ("inet", "wanwatch")],
        # `nft` is a one-shot child of a running daemon (its reconcile passes check
        # the table every few seconds): not a process anyone left behind.
        "pids": sorted((p, c) for p in ns_pids(ns) if (c := comm(p)) != "nft"),
    }
    return {k: v for k, v in found.items() if v}


def nft_tables(ns: str) -> list[tuple[str, str]]:
    items = netns.nft_json(ns, "tables")
    return [(i["table"]["family"], i["table"]["name"]) for i in items if "table" in i]


def default_routes(lab: Lab) -> list[dict[str, Any]]:
    return ip_json(lab.router_ns, "route", "show", "default")


@dataclass(frozen=True)
class CtFlow:
    """One conntrack entry of a LAN client's TCP connection to the whoami server."""

    src: IPv4Address
    sport: int
    nat: IPv4Address  # reply-direction destination: the address the flow is NATed to


_KV = re.compile(r"(\w+)=(\S+)")


def lan_flows(lab: Lab) -> list[CtFlow]:
    """The router's conntrack entries from a LAN to the whoami port (conntrack(8))."""
    out = netns.nsrun(lab.router_ns, "conntrack", "-L", "-p", "tcp", "--dport", str(WHOAMI_PORT))
    lans = [lan.address.network for lan in lab.lab_config.lans if lan.address is not None]
    flows = []
    for line in out.stdout.splitlines():
        pairs = _KV.findall(line)
        src = [v for k, v in pairs if k == "src"]
        dst = [v for k, v in pairs if k == "dst"]
        sport = [v for k, v in pairs if k == "sport"]
        if len(src) < 2 or len(dst) < 2 or not sport:
            continue
        s = IPv4Address(src[0])
        if any(s in n for n in lans):
            flows.append(CtFlow(s, int(sport[0]), IPv4Address(dst[1])))
    return flows


def answered_echoes(lab: Lab, src: IPv4Address) -> set[IPv4Address]:
    """The addresses the router NATs ``src``'s answered ICMP echo flows to (conntrack(8))."""
    out = netns.nsrun(lab.router_ns, "conntrack", "-L", "-p", "icmp")
    found = set()
    for line in out.stdout.splitlines():
        pairs = _KV.findall(line)
        src_ = [v for k, v in pairs if k == "src"]
        dst = [v for k, v in pairs if k == "dst"]
        if "UNREPLIED" not in line and len(dst) == 2 and src_[0] == str(src):
            found.add(IPv4Address(dst[1]))
    return found


def client_address(lab: Lab, lan: str) -> IPv4Address:
    """The static address Lab.client_static gave the LAN's client (host .100)."""
    net = lab.client(lan).network
    assert net is not None
    return net.network_address + 100


def wan_address(lab: Lab, wan: str) -> IPv4Address:
    addr = lab.lab_config.wan(wan).address
    assert isinstance(addr, IPv4Interface), addr
    return addr.ip


def by_name(st: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in st["wans"]}


def since(wan: dict[str, Any]) -> float:
    """A status entry's ``since`` (ISO 8601 with a zone) as a POSIX timestamp."""
    return datetime.fromisoformat(wan["since"]).timestamp()


def between(attempts: list[Attempt], start: float, end: float) -> list[Attempt]:
    return [a for a in attempts if start <= a.t0 < end]


def describe(attempts: list[Attempt]) -> str:
    return "; ".join(
        f"#{a.seq} t0={a.t0:.3f} ok={a.ok} isp={a.isp} err={a.error}" for a in attempts
    )


# --------------------------------------------------------------------------- tests


def test_status_cli_table_and_json(router: Router) -> None:
    """`wanwatch status` and `status --json` (the CLI, a subprocess) against the daemon,
    and the same figures on its Prometheus endpoint."""
    office = router.start(args=("--metrics", "127.0.0.1:9107"))
    lab = office.lab

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "wanwatch.cli", "status", *args]
        return netns.sh(netns.ns_argv(lab.router_ns, argv), check=False)

    res = cli("--socket", str(office.socket), "--json")
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert [w["name"] for w in st["wans"]] == [PRIMARY, BACKUP]
    for w in st["wans"]:
        assert {"name", "state", "rtt_ms", "loss_pct", "since"} <= set(w)
        assert w["state"] == "up"
        # An answered uplink has a smoothed RTT (veth: well under a millisecond).
        assert isinstance(w["rtt_ms"], float) and 0 <= w["rtt_ms"] < 1000
        assert isinstance(w["loss_pct"], float) and 0 <= w["loss_pct"] <= 100
        when = datetime.fromisoformat(w["since"])
        assert when.tzinfo is not None
        assert abs(when.timestamp() - time.time()) < 120
    assert st["active"] == [PRIMARY]
    assert st["stale"] is False
    assert by_name(st)[PRIMARY]["carrying"] and not by_name(st)[BACKUP]["carrying"]

    res = cli("--socket", str(office.socket))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"mode failover, carrying new connections: {PRIMARY}"
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    assert rows[PRIMARY][1] == "up" and rows[PRIMARY][-1] == "carrying"
    assert rows[BACKUP][1] == "up" and rows[BACKUP][-1] == "standby"
    assert "recent events:" in lines

    res = cli("--socket", str(lab.state_dir / "nobody.sock"))
    assert res.returncode == 1
    assert "no such socket" in res.stderr

    # metrics listen on the router namespace's loopback, so scrape from inside it
    scrape = (
        "import urllib.request as u; "
        "print(u.urlopen('http://127.0.0.1:9107/', timeout=5).read().decode())"
    )
    text = netns.sh(netns.ns_argv(lab.router_ns, [sys.executable, "-c", scrape])).stdout
    assert f'wanwatch_uplink_state{{state="up",wan="{PRIMARY}"}} 1.0' in text
    assert f'wanwatch_uplink_carrying{{wan="{PRIMARY}"}} 1.0' in text
    assert f'wanwatch_uplink_carrying{{wan="{BACKUP}"}} 0.0' in text
    assert 'wanwatch_events_total{event="daemon.started"} 1.0' in text


def _failover_and_failback(
    router: Router,
    kind: str,
    cut: Callable[[Lab, str], faults.FaultEvent],
) -> None:
    """New connections from a LAN client move to the backup on ``cut`` of the primary, then
    back to the primary once it is up again and has held for HOLD; status follows."""
    office = router.start(kind)
    lab = office.lab
    before = by_name(office.status())
    with ConnectLoop(lab, CLIENT, interval=0.02, timeout=1.0, max_seconds=90) as loop:
        fault = cut(lab, PRIMARY)
        hit = loop.first_success(
            after=fault.t_start, via=BACKUP, deadline=time.monotonic() + FAILOVER_DEADLINE
        )
        assert hit is not None, f"no new connection via {BACKUP} after {kind}"
        st = office.wait_for(
            lambda st: st["active"] == [BACKUP] and st["applied"],
            FAILOVER_DEADLINE,
            f"{BACKUP} active",
        )
        wans = by_name(st)
        assert wans[PRIMARY]["state"] == "down" and wans[BACKUP]["state"] == "up"
        assert wans[BACKUP]["carrying"] and not wans[PRIMARY]["carrying"]
        # The primary's `since` moved to the cut (it has millisecond resolution and the
        # daemon's clock; the cut may come ~0.1 s after the primary came up).
        cut_wall = time.time() - (time.monotonic() - fault.t_start)
        assert since(before[PRIMARY]) < since(wans[PRIMARY])
        assert since(wans[PRIMARY]) >= cut_wall - 0.05
        assert abs(since(wans[BACKUP]) - since(before[BACKUP])) < 0.05
        down = office.wait_event(
            "wan.down", since=fault.t_start, where=lambda e: e["wan"] == PRIMARY
        )
        failover = office.wait_event("policy.failover", since=fault.t_start)
        assert (failover["from"], failover["to"], failover["cause"]) == (PRIMARY, BACKUP, PRIMARY)
        assert failover["detect_ms"] == down["detect_ms"]
        switch = office.wait_event(
            "route.switch", since=fault.t_start, where=lambda e: e["to"] == BACKUP
        )
        flush = office.wait_event("conntrack.flush", since=fault.t_start)
        assert flush["wan"] == PRIMARY
        took = hit.t1 - fault.t_start
        log.info("%s: detect_ms=%s, cut -> first new connection via %s %.0f ms",
                 kind, down["detect_ms"], BACKUP, took * 1000)  # fmt: skip

        # Every new connection in the first second after the switch went through the
        # backup and worked (once all of them have finished).
        attempts = loop.settled(before=switch["at"] + 1.0, timeout=FAILOVER_DEADLINE)
        settled = between(attempts, switch["at"] + SLACK, switch["at"] + 1.0)
        assert settled, "no attempts after the switch"
        bad = [a for a in settled if not (a.ok and a.isp == BACKUP)]
        assert not bad, describe(bad)

        restored = faults.clear(lab, PRIMARY)
        back = loop.first_success(
            after=restored.t_start, via=PRIMARY, deadline=time.monotonic() + FAILBACK_DEADLINE
        )
        assert back is not None, f"no new connection via {PRIMARY} after it came back"
        up = office.wait_event(
            "wan.up", since=restored.t_start, where=lambda e: e["wan"] == PRIMARY
        )
        preferred = office.wait_event(
            "wan.preferred", since=restored.t_start, where=lambda e: e["wan"] == PRIMARY
        )
        failback = office.wait_event("policy.failback", since=restored.t_start)
        assert (failback["from"], failback["to"]) == (BACKUP, PRIMARY)
        assert up["hold_s"] == HOLD and preferred["held_s"] == HOLD
        assert failback["at"] - up["at"] >= HOLD - 1e-6  # (float rounding only)
        switch_back = office.wait_event(
            "route.switch", since=restored.t_start, where=lambda e: e["to"] == PRIMARY
        )
        # Those started in the first 0.3 s after the failback, finished.
        attempts = loop.settled(before=switch_back["at"] + SLACK + 0.3, timeout=FAILOVER_DEADLINE)
    log.info("%s: %s back -> first new connection via it %.2f s (hold %.1f s)",
             kind, PRIMARY, back.t1 - restored.t_start, HOLD)  # fmt: skip

    # Make-before-break: not one connection failed while the primary came back.
    during = between(attempts, restored.t_start, back.t0)
    failed = [a for a in during if not a.ok]
    assert not failed, describe(failed)
    # Before the failback every new connection still took the backup; after it, the primary.
    early = between(attempts, restored.t_start, failback["at"] - SLACK)
    assert early and all(a.isp == BACKUP for a in early), describe(early)
    late = between(attempts, switch_back["at"] + SLACK, attempts[-1].t0 + 1)
    assert late and all(a.ok and a.isp == PRIMARY for a in late), describe(late)

    st = office.wait_active(PRIMARY)
    wans = by_name(st)
    assert wans[PRIMARY]["state"] == "up" and wans[PRIMARY]["carrying"]
    assert wans[BACKUP]["state"] == "up" and not wans[BACKUP]["carrying"]


def test_blackhole_failover_and_failback(router: Router) -> None:
    """Failover and failback on a silent blackhole of the primary (the LTE modem that lost
    its signal, Ethernet up): only the probes can see it."""
    _failover_and_failback(router, "blackhole", faults.blackhole)


def test_carrier_loss_failover_and_failback(router: Router) -> None:
    """Failover and failback on carrier loss of the primary (cable pulled)."""
    _failover_and_failback(router, "carrier", faults.carrier_loss)
    office = router.office
    assert office is not None
    # The cable pull was heard over netlink, not guessed from lost probes.
    downs = office.events(names=("wan.down",))
    assert [d["reason"] for d in downs if d["wan"] == PRIMARY] == ["carrier"]
    carrier = [(c["wan"], c["up"]) for c in office.events(names=("link.carrier",))]
    changes = [c for i, c in enumerate(carrier) if i == 0 or carrier[i - 1] != c]
    assert changes == [(PRIMARY, False), (PRIMARY, True)]


def test_start_with_primary_cable_out(router: Router) -> None:
    """Started while the primary has no carrier: it is DOWN at once (netlink), not after
    its probes time out, and the backup carries from the first choice."""
    lab = router.lab
    faults.carrier_loss(lab, PRIMARY)
    office = router.start("cable-out", wait_active=BACKUP)
    down = office.wait_event("wan.down", since=0, where=lambda e: e["wan"] == PRIMARY)
    assert down["reason"] == "carrier"
    assert office.events(names=("policy.failover",)) == []
    selected = office.events(names=("policy.select",))
    assert [e["to"] for e in selected] == [BACKUP]
    hit = first_new_connection(lab, CLIENT, after=time.monotonic(), deadline=time.monotonic() + 10)
    assert hit is not None and hit.isp == BACKUP


def test_probes_never_leak(office_lab: Lab, router: Router) -> None:
    """While the primary is blackholed and the backup carries, the primary's probes leave
    through its own ISP (and die there), never through the backup: it stays DOWN, not
    one reply is counted for it, the fake internet sees none of its probes arrive via the
    backup's ISP, and neither ISP's BCP38 filter ever drops a packet of ours."""
    lab = office_lab
    primary_targets = ", ".join(str(t) for t in lab.isp(PRIMARY).targets)
    backup_targets = ", ".join(str(t) for t in lab.isp(BACKUP).targets)
    # Counted where the probes arrive, in the fake internet (a lab namespace).
    netns.nft(
        lab.inet_ns,
        "table inet ww_test_leak\n"
        "delete table inet ww_test_leak\n"
        "table inet ww_test_leak {\n"
        "  counter wrong_isp { }\n"
        "  counter right_isp { }\n"
        "  chain pre {\n"
        "    type filter hook prerouting priority raw; policy accept;\n"
        f'    iifname "{lab.isp(BACKUP).inet_if}" ip daddr {{ {primary_targets} }} '
        'counter name "wrong_isp"\n'
        f'    iifname "{lab.isp(PRIMARY).inet_if}" ip daddr {{ {backup_targets} }} '
        'counter name "wrong_isp"\n'
        f'    iifname "{lab.isp(PRIMARY).inet_if}" ip daddr {{ {primary_targets} }} '
        'counter name "right_isp"\n'
        "  }\n"
        "}\n",
    )

    def counter(ns: str, family: str, table: str, name: str) -> int:
        for item in netns.nft_json(ns, "counter", family, table, name):
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise AssertionError(f"no counter {name} in {ns}")

    def blackholed(ns: str) -> int:
        for item in netns.nft_json(ns, "table", "inet", faults.BLACKHOLE_TABLE):
            if "rule" in item:
                for expr in item["rule"]["expr"]:
                    if "counter" in expr:
                        return int(expr["counter"]["packets"])
        raise AssertionError("no blackhole counter")

    try:
        assert lab.bcp38_drops(PRIMARY) == 0 and lab.bcp38_drops(BACKUP) == 0
        office = router.start("leak")
        assert counter(lab.inet_ns, "inet", "ww_test_leak", "right_isp") > 0
        faults.blackhole(lab, PRIMARY)
        office.wait_active(BACKUP, FAILOVER_DEADLINE)
        isp1 = lab.isp(PRIMARY).ns
        dropped0 = blackholed(isp1)  # read before the probe count: never flatters
        st0 = by_name(office.status())[PRIMARY]
        right0 = counter(lab.inet_ns, "inet", "ww_test_leak", "right_isp")
        # Watch until the primary has sent 10 more probes, every status poll checked.

        def ten_more_probes() -> dict[str, Any] | None:
            full = office.status()
            st = by_name(full)[PRIMARY]
            assert st["state"] == "down", st
            assert st["probes"]["replies"] == st0["probes"]["replies"], st
            assert full["active"] == [BACKUP]
            assert lab.bcp38_drops(PRIMARY) == 0 and lab.bcp38_drops(BACKUP) == 0
            return st if st["probes"]["sent"] >= st0["probes"]["sent"] + 10 else None

        st = until(ten_more_probes, 30, "the primary's probes", every=0.1)
        assert st is not None
        sent = st["probes"]["sent"] - st0["probes"]["sent"]
        sent -= st["probes"]["send_errors"] - st0["probes"]["send_errors"]
        # They really left through the primary's ISP, which ate them.
        assert blackholed(isp1) - dropped0 >= sent > 0
        assert counter(lab.inet_ns, "inet", "ww_test_leak", "right_isp") == right0
        hit = first_new_connection(
            lab, CLIENT, after=time.monotonic(), deadline=time.monotonic() + 10
        )
        assert hit is not None and hit.isp == BACKUP
        assert counter(lab.inet_ns, "inet", "ww_test_leak", "wrong_isp") == 0
        assert lab.bcp38_drops(PRIMARY) == 0 and lab.bcp38_drops(BACKUP) == 0
    finally:
        netns.nft(lab.inet_ns, "table inet ww_test_leak\ndelete table inet ww_test_leak\n")


def test_invalid_packets_are_dropped_not_sent_with_a_private_source(
    office_lab: Lab, router: Router
) -> None:
    """A packet conntrack calls invalid skips NAT; our forward chain drops it before an
    uplink. Control: with that one rule deleted, the same packets reach the ISP with
    the client's private source, where its BCP38 filter counts them."""
    lab, count = office_lab, 20
    router.start("invalid")
    dst = lab.topology.whoami[0]

    def caught() -> int:
        return lab.bcp38_drops(PRIMARY) + lab.bcp38_drops(BACKUP)

    before = caught()
    assert lone_resets(lab, CLIENT, dst, count) == count
    assert caught() == before

    chain = netns.nft_json(lab.router_ns, "chain", "inet", "wanwatch", "forward")
    (handle,) = (r["rule"]["handle"] for r in chain if "invalid" in json.dumps(r.get("rule")))
    netns.nsrun(
        lab.router_ns, "nft", "delete", "rule", "inet", "wanwatch", "forward", "handle", str(handle)
    )
    assert lone_resets(lab, CLIENT, dst, count) == count
    assert caught() >= before + count


def test_only_the_failed_uplinks_flows_are_flushed(router: Router) -> None:
    """A long-lived flow through the backup (opened while it carried, pinned there after
    the failback) keeps exchanging bytes when the primary is cut; the primary's NATed
    flows are deleted from conntrack and their client sees the reset."""
    office = router.start("flush")
    lab = office.lab
    primary_addr, backup_addr = wan_address(lab, PRIMARY), wan_address(lab, BACKUP)
    client2 = client_address(lab, CLIENT2)  # only flow B comes from there

    def flow_b() -> list[CtFlow]:
        return [f for f in lan_flows(lab) if f.src == client2]

    faults.blackhole(lab, PRIMARY)
    office.wait_active(BACKUP, FAILOVER_DEADLINE)
    with Flow(lab, CLIENT2, interval=0.05, stall_after=1.0, max_seconds=120) as on_backup:
        rep_b = on_backup.wait_connected(time.monotonic() + 10)
        assert rep_b.isp == BACKUP
        restored = faults.clear(lab, PRIMARY)
        office.wait_active(PRIMARY, FAILBACK_DEADLINE)
        # Pinned: the failback moved new connections only.
        n = on_backup.report().exchanges
        until(lambda: on_backup.report().exchanges >= n + 5, 10, "the backup flow to go on")
        with Flow(lab, CLIENT, interval=0.05, stall_after=1.0, max_seconds=120) as on_primary:
            rep_a = on_primary.wait_connected(time.monotonic() + 10)
            assert rep_a.isp == PRIMARY
            flows = lan_flows(lab)
            assert primary_addr in {f.nat for f in flows}, flows
            entry_b = flow_b()
            assert [f.nat for f in entry_b] == [backup_addr], flows

            cut = faults.blackhole(lab, PRIMARY)
            flush = office.wait_event(
                "conntrack.flush", since=cut.t_start, timeout=FAILOVER_DEADLINE
            )
            assert flush["wan"] == PRIMARY and flush["deleted"] >= 1
            assert flush["address"] == str(primary_addr)
            # No LAN flow stays NATed to the dead uplink ...
            until(
                lambda: all(f.nat != primary_addr for f in lan_flows(lab)),
                10,
                "the primary's flows to be gone",
            )
            # ... the primary's flow breaks (the server resets what it no longer knows) ...
            until(lambda: on_primary.report().broken_at is not None, 15, "flow A to break")
            assert on_primary.report().reason == "reset"
            # ... and the backup's flow is untouched: same conntrack entry, still talking.
            n = on_backup.report().exchanges
            until(lambda: on_backup.report().exchanges >= n + 10, 10, "the backup flow to go on")
            assert flow_b() == entry_b
        rep_b = on_backup.report()
    assert rep_b.alive and rep_b.isp == BACKUP
    assert rep_b.stalls == [], rep_b.stalls
    assert rep_b.connected_at is not None and rep_b.connected_at < restored.t_start < cut.t_start


def test_both_uplinks_dead_and_back(router: Router) -> None:
    """Both dead: the last choice is kept (stale), the default route stays; back: traffic
    flows again at once, and the primary carries after its hold."""
    office = router.start("both")
    lab = office.lab
    backup_gw = str(lab.lab_config.wan(BACKUP).gateway)
    faults.blackhole(lab, PRIMARY)
    office.wait_active(BACKUP, FAILOVER_DEADLINE)
    cut = faults.blackhole(lab, BACKUP)
    st = office.wait_for(
        lambda st: all(w["state"] == "down" for w in st["wans"]),
        FAILOVER_DEADLINE,
        "both uplinks down",
    )
    assert st["stale"] is True and st["active"] == [BACKUP]
    stale = office.wait_event("policy.stale", since=cut.t_start)
    assert stale["keeping"] == BACKUP
    # The kept choice stays in the kernel: our default via the backup, for as long as
    # both stay dead (watched for 2 s of probing: what is under test is that it holds).

    def kept() -> bool:
        ours = [
            r for r in default_routes(lab)
            if r.get("protocol") == str(RT_PROTO) and r.get("metric") == DEFAULT_METRIC
        ]  # fmt: skip
        assert [r["gateway"] for r in ours] == [backup_gw], default_routes(lab)
        return bool(office.status()["active"] == [BACKUP])

    holds(kept, 2.0, f"{BACKUP} kept", every=0.1)
    assert office.events(since=cut.t_start, names=("route.switch", "route.withdraw")) == []

    back = time.monotonic()
    faults.clear(lab, BACKUP)
    faults.clear(lab, PRIMARY)
    hit = first_new_connection(lab, CLIENT, after=back, deadline=back + FAILOVER_DEADLINE)
    assert hit is not None, "no traffic after both uplinks came back"
    st = office.wait_active(PRIMARY, FAILBACK_DEADLINE)
    assert st["stale"] is False
    # The backup rises on its own probes, which may finish a little after the primary's.
    office.wait_for(lambda st: all(w["state"] == "up" for w in st["wans"]), 5.0, "both up")
    hit = first_new_connection(lab, CLIENT, after=time.monotonic(), deadline=time.monotonic() + 10)
    assert hit is not None and hit.isp == PRIMARY


def test_sighup_bad_config_kept_then_good_config_applied(router: Router) -> None:
    """SIGHUP with an invalid file: refused with the problem named, the daemon runs on and
    traffic is untouched. SIGHUP with a valid changed one (another hold): applied."""
    office = router.start("reload")
    lab = office.lab
    path = office.config_path
    good = path.read_text()
    daemon = office.daemon
    assert daemon is not None
    with ConnectLoop(lab, CLIENT, interval=0.05, timeout=1.0, max_seconds=60) as loop:
        data = yaml.safe_load(good)
        data["wans"][1]["gateway"] = "192.168.18.300"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        t = time.monotonic()
        daemon.send_signal(signal.SIGHUP)
        rejected = office.wait_event("config.rejected", since=t)
        assert rejected["problems"] == 1
        assert "wans[1].gateway" in rejected["first"] and path.name in rejected["first"]
        # Connections (and probes) go on under the old config: those of the next 0.3 s.
        loop.settled(before=rejected["at"] + 0.3, timeout=10)
        assert daemon.alive()
        assert office.events(since=t, names=("config.reloaded", "engine.reload")) == []
        st = office.status()
        assert st["active"] == [PRIMARY] and all(w["state"] == "up" for w in st["wans"])

        changed = good.replace(f"hold: {HOLD}", "hold: 1.0")
        assert changed != good
        path.write_text(changed)
        assert load(path).monitor.hold == 1.0
        t = time.monotonic()
        daemon.send_signal(signal.SIGHUP)
        reloaded = office.wait_event("config.reloaded", since=t)
        assert reloaded["wans"] == 2
        attempts = loop.settled(before=reloaded["at"] + 0.3, timeout=10)
    failed = [a for a in attempts if not (a.ok and a.isp == PRIMARY)]
    assert len(attempts) > 10 and not failed, describe(failed)
    assert office.events(since=t, names=("route.switch", "conntrack.flush")) == []

    # The new hold is the one in force.
    faults.blackhole(lab, PRIMARY)
    office.wait_active(BACKUP, FAILOVER_DEADLINE)
    restored = faults.clear(lab, PRIMARY)
    preferred = office.wait_event(
        "wan.preferred",
        since=restored.t_start,
        timeout=FAILBACK_DEADLINE,
        where=lambda e: e["wan"] == PRIMARY,
    )
    assert preferred["held_s"] == 1.0
    office.wait_active(PRIMARY, FAILBACK_DEADLINE)


_SLEEPER = """\
import json, os, subprocess, sys, time
out, tag, *rest = sys.argv[1:]
rec = {"argv": rest, "pid": os.getpid(), "t": time.monotonic()}
if tag != "quick":
    rec["child"] = subprocess.Popen(["sleep", "120"]).pid
with open(out + ".tmp", "w") as f:
    json.dump(rec, f)
os.replace(out + ".tmp", out)
if tag != "quick":
    time.sleep(120)
"""


def hook_script(lab: Lab) -> Path:
    """A hook that records its argv and pid; unless told "quick", it starts a grandchild
    and sleeps (bounded: 120 s) -- both must be killed by the daemon."""
    path = lab.state_dir / "hook.py"
    path.write_text(_SLEEPER)
    return path


def gone(pid: int) -> bool:
    return not netns.alive(pid, None)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_leaves_no_trace(router: Router, sig: signal.Signals) -> None:
    """SIGTERM (or SIGINT): addresses, routes (all tables), rules and the nft ruleset are
    exactly as before the start (sysctls may stay) -- an address, route, rule and nft
    table planted before, even an address the config names, survive -- no process is
    left (dnsmasq, hooks still running), the socket and state files are gone."""
    lab = router.lab
    ns = lab.router_ns
    wlan = lab.lab_config.lans[1]
    assert wlan.address is not None
    planted = [
        "addr add 10.77.0.1/24 dev ether1",
        f"addr add {wlan.address} dev {wlan.interface}",  # the config's own: not ours to remove
        "route add 10.78.0.0/24 via 10.77.0.254 dev ether1",
        "route add 10.79.0.0/24 via 10.77.0.254 dev ether1 table 100",
        "rule add from 10.77.0.0/24 lookup 100 priority 1000",
    ]
    netns.batch(ns, planted)
    netns.nft(ns, "table inet admin_test {\n  chain input {\n    type filter hook input "
              "priority 0; policy accept;\n    tcp dport 22 accept\n  }\n}\n")  # fmt: skip

    def snapshot() -> dict[str, Any]:
        # IPv4 in full (wanwatch is IPv4-only); of IPv6 only what could be ours: the
        # kernel's own IPv6 state (link-local DAD, multicast routes) moves on by itself.
        ruleset = netns.nft_json(ns, "ruleset")
        routes6 = ip_json(ns, "-6", "route", "show", "table", "all")
        return {
            "addr": [(i["ifname"], i["addr_info"]) for i in ip_json(ns, "-4", "addr")],
            "routes4": ip_json(ns, "-4", "route", "show", "table", "all"),
            "routes6": [r for r in routes6 if r.get("protocol") not in ("kernel", None)],
            "rules": ip_json(ns, "-d", "-4", "rule") + ip_json(ns, "-d", "-6", "rule"),
            "nft": [i for i in ruleset if "metainfo" not in i],
            "pids": ns_pids(ns),
        }

    try:
        before = snapshot()
        sleeper = hook_script(lab)
        markers = [lab.state_dir / f"on-up-{wan}.json" for wan in (PRIMARY, BACKUP)]
        office = router.start(
            "sigterm",
            hooks={
                # Both uplinks rise at start: two hooks still sleeping when SIGTERM comes.
                "on_up": [sys.executable, str(sleeper), str(lab.state_dir / "on-up-{wan}.json"),
                          "sleep", "{wan}"],
                "timeout": 60,
            },
        )  # fmt: skip
        hit = first_new_connection(
            lab, CLIENT, after=time.monotonic(), deadline=time.monotonic() + 10
        )
        assert hit is not None and hit.isp == PRIMARY
        until(lambda: all(m.exists() for m in markers), 10, "the on_up hooks to start")
        hooks = [json.loads(m.read_text()) for m in markers]
        running = snapshot()
        assert running["nft"] != before["nft"] and running["routes4"] != before["routes4"]
        dnsmasq = office.status()["dnsmasq"]["pid"]
        assert {dnsmasq, *(h["pid"] for h in hooks)} <= running["pids"]
        state = office.daemon_state

        code = office.stop(sig)
        assert code == 0, office.log()[-3000:]
        after = snapshot()
        for key in before:
            assert after[key] == before[key], f"{key} differs after {sig.name}"
        # The socket is gone with the daemon; its event log (stdout) says what it killed.
        assert office.log().count("hook.killed hook=on_up") == 2, office.log()[-3000:]
        assert not office.socket.exists()
        assert gone(dnsmasq)
        assert all(gone(h["pid"]) and gone(h["child"]) for h in hooks), hooks
        assert not (state / "dnsmasq.pid").exists()
        assert not (state / "linux-backend.json").exists()
    finally:
        netns.batch(
            ns,
            [
                "rule del from 10.77.0.0/24 lookup 100 priority 1000",
                "route flush table 100",
                "route del 10.78.0.0/24",
                f"addr del {wlan.address} dev {wlan.interface}",
                "addr del 10.77.0.1/24 dev ether1",
            ],
        )
        netns.nft(ns, "table inet admin_test\ndelete table inet admin_test\n")


def _kill_and_restart(office: Office, loop: ConnectLoop, active: str) -> dict[str, Any]:
    """SIGKILL the daemon under a running ConnectLoop, start a new one; what happened."""
    st = office.status()
    old_dnsmasq = st["dnsmasq"]["pid"]
    old = office.daemon
    assert old is not None
    killed = time.monotonic()
    assert office.stop(signal.SIGKILL) is not None
    survived = not gone(old_dnsmasq)  # SIGKILL went to the daemon's PID only, not its child
    office.start(wait_active=active, timeout=30)
    ready = time.monotonic()
    loop.first_success(after=ready + 0.5, deadline=ready + 10)
    attempts = loop.settled(before=ready + 0.5, timeout=10)
    return {
        "killed": killed,
        "ready": ready,
        "old_dnsmasq": old_dnsmasq,
        "dnsmasq_survived_kill": survived,
        "attempts": between(attempts, killed - 0.5, ready + 0.5),
    }


def test_sigkill_and_restart_keep_traffic_flowing(router: Router) -> None:
    """SIGKILL leaves the kernel forwarding; the new daemon adopts (no route flip, a
    leftover dnsmasq replaced) and not one new connection fails -- also after a failover,
    where the restart must keep the backup and not flip to the dead primary."""
    office = router.start("sigkill")
    lab = office.lab
    ns = lab.router_ns
    with ConnectLoop(lab, CLIENT, interval=0.05, timeout=1.0, max_seconds=90) as loop:
        loop.first_success(after=time.monotonic(), deadline=time.monotonic() + 10)
        r = _kill_and_restart(office, loop, PRIMARY)
        bad = [a for a in r["attempts"] if not (a.ok and a.isp == PRIMARY)]
        assert r["attempts"] and not bad, describe(bad)
        log.info("SIGKILL -> new daemon carrying in %.2f s; dnsmasq survived the kill: %s",
                 r["ready"] - r["killed"], r["dnsmasq_survived_kill"])  # fmt: skip
        events = office.events()
        names = [e["name"] for e in events]
        start = next(e for e in events if e["name"] == "backend.start")
        assert start["nft"] == "adopted" and start["adopted_defaults"] == 2
        assert "route.switch" not in names and "route.withdraw" not in names
        if r["dnsmasq_survived_kill"]:
            stale = next(e for e in events if e["name"] == "dnsmasq.stale")
            assert stale["pid"] == r["old_dnsmasq"]
        # Routing is carried on before dnsmasq's restart (a survivor stopped first) is done.
        st = office.wait_for(lambda s: s["dnsmasq"]["running"], 15, "dnsmasq running")
        assert st["dnsmasq"]["pid"] != r["old_dnsmasq"]
        assert gone(r["old_dnsmasq"])
        daemons = [p for p in ns_pids(ns) if comm(p) == "dnsmasq"]
        assert daemons == [st["dnsmasq"]["pid"]]

        cut = faults.blackhole(lab, PRIMARY)
        office.wait_active(BACKUP, FAILOVER_DEADLINE)
        moved = loop.first_success(after=cut.t_start, via=BACKUP, deadline=time.monotonic() + 10)
        assert moved is not None, f"no new connection via {BACKUP} after the cut"
        # The kill comes after 0.6 s of attempts through the backup, all finished: the
        # restart's window (from 0.5 s before the kill) holds none the cut caught.
        loop.settled(before=moved.t0 + 0.6, timeout=10)
        r = _kill_and_restart(office, loop, BACKUP)
        bad = [a for a in r["attempts"] if not (a.ok and a.isp == BACKUP)]
        assert r["attempts"] and not bad, describe(bad)
    events = office.events()
    assert [e["to"] for e in events if e["name"] == "policy.select"] == [BACKUP]
    assert not [e for e in events if e["name"] == "route.switch"], "the restart flipped routes"
    st = office.status()
    assert st["active"] == [BACKUP] and by_name(st)[PRIMARY]["state"] == "down"


def test_hooks_substitute_and_never_block(router: Router) -> None:
    """on_down outlives its timeout: it is killed (with its child) while the failover goes
    on without waiting; arguments are substituted per item, without a shell."""
    lab = router.lab
    script = hook_script(lab)
    down_rec, failover_rec = lab.state_dir / "on-down.json", lab.state_dir / "on-failover.json"
    py = sys.executable
    office = router.start(
        "hooks",
        hooks={
            "on_down": [py, str(script), str(down_rec), "sleep", "{wan}", "{event}",
                        "{state}", "{detect_ms}", "x{wan}y; echo", "{nope}"],
            "on_failover": [py, str(script), str(failover_rec), "quick", "{from}", "{to}",
                            "{event}", "{wan}"],
            "timeout": 2.0,
        },
    )  # fmt: skip
    with ConnectLoop(lab, CLIENT, interval=0.02, timeout=1.0, max_seconds=60) as loop:
        cut = faults.blackhole(lab, PRIMARY)
        hit = loop.first_success(
            after=cut.t_start, via=BACKUP, deadline=time.monotonic() + FAILOVER_DEADLINE
        )
    assert hit is not None
    down = office.wait_event("wan.down", since=cut.t_start, where=lambda e: e["wan"] == PRIMARY)
    switch = office.wait_event("route.switch", since=cut.t_start)
    timeout = office.wait_event("hook.timeout", since=cut.t_start, timeout=10)
    assert timeout["hook"] == "on_down" and timeout["timeout_s"] == 2.0
    # Not blocked: the route switched (its event is stamped when the kernel took it) and
    # the first connection through the backup came while the on_down hook, started at
    # wan.down, was still sleeping; a hook waited for would have held them >= 2 s.
    assert switch["to"] == BACKUP
    assert switch["at"] - down["at"] < 1.0
    assert hit.t1 < timeout["at"]

    until(down_rec.exists, 5, "the on_down hook's record")
    rec = json.loads(down_rec.read_text())
    assert rec["argv"] == [PRIMARY, "wan.down", "down", str(down["detect_ms"]),
                           f"x{PRIMARY}y; echo", "{nope}"]  # fmt: skip
    assert rec["pid"] == timeout["pid"]
    until(lambda: gone(rec["pid"]) and gone(rec["child"]), 5, "the hook to be killed")

    until(failover_rec.exists, 5, "the on_failover hook's record")
    rec = json.loads(failover_rec.read_text())
    assert rec["argv"] == [PRIMARY, BACKUP, "policy.failover", BACKUP]
    done = office.wait_event(
        "hook.done", since=cut.t_start, where=lambda e: e["hook"] == "on_failover"
    )
    assert done["rc"] == 0


def test_second_daemon_on_the_same_socket_touches_nothing(router: Router) -> None:
    """A second `wanwatch run` on a live daemon's socket refuses to start before it
    changes anything: the first one's routes, rules, nft table, dnsmasq and traffic
    are exactly as they were."""
    office = router.start("first")
    lab = office.lab
    ns = lab.router_ns
    before = footprint(lab)
    dnsmasq = office.status()["dnsmasq"]["pid"]
    second = lab.spawn(
        ns,
        [sys.executable, "-m", "wanwatch.cli", "run", "-c", str(office.config_path),
         "--socket", str(office.socket), "--state-dir", str(office.daemon_state)],
        "wanwatch-second",
    )  # fmt: skip
    try:
        second.wait(30)
        assert second.popen is not None and second.popen.wait(5) == 1
        assert "another wanwatch daemon is listening" in second.stderr()
    finally:
        lab.stop_proc(second)
    assert footprint(lab) == before
    st = office.status()
    assert st["dnsmasq"]["pid"] == dnsmasq and st["dnsmasq"]["running"]
    assert st["active"] == [PRIMARY] and st["backend_error"] is None
    hit = first_new_connection(lab, CLIENT, after=time.monotonic(), deadline=time.monotonic() + 10)
    assert hit is not None and hit.isp == PRIMARY


def test_lan_traffic_starts_the_burst_when_the_primary_goes_silent(router: Router) -> None:
    """With the office's traffic flowing, a blackhole is first noticed by the kernel's
    counters (packets out, nothing back): the daemon says so (wan.suspect
    trigger=traffic) and its probes then confirm it (wan.down reason=lost)."""
    lab = router.lab
    office = router.start("traffic-cut")
    whoami = lab.topology.whoami[0]
    primary_addr, client = wan_address(lab, PRIMARY), client_address(lab, CLIENT)
    with Stream(lab, CLIENT, whoami, rate=250, seconds=60):
        until(
            lambda: primary_addr in answered_echoes(lab, client),
            10,
            f"the stream's echoes answered through {PRIMARY}",
        )
        # Answered traffic triggers nothing: watched for a second (20 counter reads).
        holds(
            lambda: office.events(names=("wan.suspect",)) == [],
            1.0,
            "without wan.suspect while the stream is answered",
        )
        cut = faults.blackhole(lab, PRIMARY)
        down = office.wait_event(
            "wan.down", since=cut.t_start, timeout=FAILOVER_DEADLINE,
            where=lambda e: e["wan"] == PRIMARY,
        )  # fmt: skip
    assert down["reason"] == "lost"
    suspects = [
        e
        for e in office.events(since=cut.t_start, names=("wan.suspect",))
        if e["wan"] == PRIMARY and e["at"] <= down["at"]
    ]
    assert [e["trigger"] for e in suspects] == ["traffic"]
    office.wait_active(BACKUP)


def test_a_one_way_flow_on_a_healthy_uplink_changes_nothing(router: Router) -> None:
    """UDP out to a port that never answers: the counters show a stall again and again,
    the probes keep answering, and the uplink stays up and carrying."""
    lab = router.lab
    office = router.start("one-way")
    bad_events = ("wan.down", "policy.failover", "wan.degraded")
    start = time.monotonic()
    sink = udp_sink(lab, seconds=30)
    try:
        with Stream(lab, CLIENT, lab.topology.whoami[0], rate=200, seconds=20, proto="udp"):
            # What is under test is that nothing fails over while it runs: watched 12 s.
            holds(
                lambda: office.events(since=start, names=bad_events) == [],
                12.0,
                "up and carrying under a one-way flow",
                every=0.5,
            )
    finally:
        lab.stop_proc(sink)
    received = [r["received"] for r in sink.records() if r.get("ev") == "end"]
    assert received and received[0] > 0  # the flow did leave through the router
    suspects = office.events(since=start, names=("wan.suspect",))
    assert suspects and {e["wan"] for e in suspects} == {PRIMARY}  # it did trigger bursts
    assert office.events(since=start, names=bad_events) == []
    st = office.status()
    assert st["active"] == [PRIMARY] and by_name(st)[PRIMARY]["state"] == "up"
