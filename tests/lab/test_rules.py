"""Policy rules end to end: the real daemon in the lab's router namespace, real nft.

One lab for the module (the reference office, LAN clients on static addresses);
each test starts the daemon on the lab config plus rules of its own.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from typing import Any

import pytest
import yaml

from wanwatch.lab import faults, netns, services
from wanwatch.lab.office import Office, Tailored
from wanwatch.lab.poll import until
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import Flow, add_client_addresses, connections, dns_lookup
from wanwatch.lab.worker.servers import WHOAMI_PORT

pytestmark = pytest.mark.lab

PRIMARY, BACKUP = "INET-UTAMA", "BACKUP-INET"  # examples/office.yaml
OFFICE_LAN, GUEST_LAN = "ether3", "WIFI"
PINNED_PORT = WHOAMI_PORT + 1  # a second service on the whoami host
DEADLINE = 30.0
ICMP_REFILL = 2.5  # s: > two tokens of the kernel's 1 s ICMP error rate limit
GUEST_RULE = {"name": "guest", "from": [GUEST_LAN], "via": [BACKUP], "when_down": "block"}


@pytest.fixture(scope="module")
def rules_lab(shared_lab: Any) -> Iterator[Lab]:
    with shared_lab("rules-labs") as lab:
        for c in lab.topology.clients:
            lab.client_static(c.lan)
        yield lab


@pytest.fixture
def router(rules_lab: Lab) -> Iterator[Tailored]:
    r = Tailored(rules_lab, PRIMARY, DEADLINE)
    try:
        yield r
    finally:
        code = r.close()
        assert code in (0, None), r.office.log()[-3000:] if r.office else ""


def carriers(lab: Lab, client: str, count: int = 12, **kw: Any) -> dict[str | None, int]:
    """Which uplink carried each of ``count`` new connections (None: failed), by count."""
    out: dict[str | None, int] = {}
    for a in connections(lab, client, count, timeout=1.0, **kw):
        key = a.isp if a.ok else None
        out[key] = out.get(key, 0) + 1
    return out


def errors(lab: Lab, client: str, count: int = 6) -> set[str | None]:
    return {a.error for a in connections(lab, client, count, timeout=1.0) if not a.ok}


def test_guest_only_via_backup_and_blocked_not_leaked_when_it_dies(router: Tailored) -> None:
    lab = router.lab
    office = router.start("guest", rules=[GUEST_RULE])
    assert carriers(lab, GUEST_LAN) == {BACKUP: 12}
    assert carriers(lab, OFFICE_LAN) == {PRIMARY: 12}  # everything else: the policy

    cut = faults.blackhole(lab, BACKUP)
    moved = office.wait_event(
        "rule.path", since=cut.t_start, timeout=DEADLINE, where=lambda e: e["rule"] == "guest"
    )
    assert (moved["from"], moved["to"]) == (BACKUP, "block")
    office.wait_event("nft.rules", since=moved["at"], timeout=DEADLINE)
    # fail closed: refused with ICMP admin-prohibited, which Linux reports as
    # EHOSTUNREACH; none answered through the primary. The kernel rate-limits ICMP
    # errors per destination (net.ipv4.icmp_ratelimit: a burst of 6, then one per
    # second), so of a quick burst some attempts only see their SYN go unanswered;
    # after a pause the bucket holds tokens again and the first attempt is refused.
    assert carriers(lab, GUEST_LAN) == {None: 12}
    time.sleep(ICMP_REFILL)
    seen = errors(lab, GUEST_LAN, count=3)
    assert "EHOSTUNREACH" in seen and seen <= {"EHOSTUNREACH", "timeout"}
    assert carriers(lab, OFFICE_LAN) == {PRIMARY: 12}  # the others' traffic is untouched

    faults.clear(lab, BACKUP)
    back = office.wait_event(
        "rule.path",
        since=cut.t_start,
        timeout=DEADLINE,
        where=lambda e: e["rule"] == "guest" and e["to"] == BACKUP,
    )
    assert back["from"] == "block"
    office.wait_event("nft.rules", since=back["at"], timeout=DEADLINE)
    assert carriers(lab, GUEST_LAN) == {BACKUP: 12}


def test_a_port_rule_pins_one_service_while_the_rest_fails_over(router: Tailored) -> None:
    lab = router.lab
    topo = lab.topology
    server = lab.spawn(topo.inet_ns, services.whoami_argv(topo.whoami, port=PINNED_PORT), "whoami")
    router.procs.append(server)
    server.wait_ready(lambda: server.reported("listening"), 10.0, "listening")
    pinned = {
        "name": "pinned",
        "from": [OFFICE_LAN],
        "proto": "tcp",
        "ports": PINNED_PORT,
        "via": [BACKUP],
        "when_down": "default",
    }
    office = router.start("pinned", rules=[pinned])
    assert carriers(lab, OFFICE_LAN, port=PINNED_PORT) == {BACKUP: 12}
    assert carriers(lab, OFFICE_LAN) == {PRIMARY: 12}

    cut = faults.blackhole(lab, PRIMARY)
    office.wait_active(BACKUP, DEADLINE)
    flush = office.wait_event("conntrack.flush", since=cut.t_start, timeout=DEADLINE)
    assert flush["wan"] == PRIMARY  # only the dead uplink's connections go
    assert carriers(lab, OFFICE_LAN) == {BACKUP: 12}
    assert carriers(lab, OFFICE_LAN, port=PINNED_PORT) == {BACKUP: 12}
    events = office.events(cut.t_start, ("rule.path",))
    assert events == []  # the pinned service never moved

    # and the reverse: the backup dies, the pinned rule follows the policy (default)
    faults.clear(lab, PRIMARY)
    office.wait_active(PRIMARY, DEADLINE)
    cut = faults.blackhole(lab, BACKUP)
    moved = office.wait_event("rule.path", since=cut.t_start, timeout=DEADLINE)
    assert (moved["rule"], moved["from"], moved["to"]) == ("pinned", BACKUP, "default")
    office.wait_event("nft.rules", since=moved["at"], timeout=DEADLINE)
    assert carriers(lab, OFFICE_LAN, port=PINNED_PORT) == {PRIMARY: 12}


def test_the_table_holds_one_lookup_map_and_paths(router: Tailored) -> None:
    router.start("table", rules=[GUEST_RULE])
    text = netns.nsrun(router.lab.router_ns, "nft", "list", "map", "inet", "wanwatch", "paths")
    assert "0x00000100 : goto mark_2" in text.stdout


def rule_of(st: dict[str, Any], name: str) -> dict[str, Any]:
    """Rule ``name`` in a status answer."""
    return next(r for r in st["rules"]["rules"] if r["name"] == name)


def test_each_rule_counts_its_own_connections_and_bytes(router: Tailored) -> None:
    lab = router.lab
    pinned = {
        "name": "pinned",
        "from": [OFFICE_LAN],
        "proto": "tcp",
        "ports": PINNED_PORT,  # no traffic is sent there in this test
        "via": [BACKUP],
        "when_down": "default",
    }
    office = router.start("figures", rules=[GUEST_RULE, pinned])
    assert rule_of(office.status(), "guest")["why"] == "first in via, usable"
    assert carriers(lab, GUEST_LAN) == {BACKUP: 12}
    assert carriers(lab, OFFICE_LAN) == {PRIMARY: 12}  # unmatched: no rule's figures
    # the counters are read off the loop, at most a second apart: poll for them
    st = office.wait_for(
        lambda st: (
            next(r for r in st["rules"]["rules"] if r["name"] == "guest")["traffic"]["connections"]
            >= 12
        ),
        DEADLINE,
        "the guest rule's 12 connections counted",
    )
    guest, other = st["rules"]["rules"]
    assert (guest["path"], guest["uplinks"]) == ("uplink", [BACKUP])
    # each connection once: its first packet (a retransmitted SYN finds the uplink's mark)
    assert guest["traffic"]["connections"] == 12
    # a TCP handshake, a request and an answer each way at the least, in both directions
    assert guest["traffic"]["bytes_out"] >= 12 * 3 * 40
    assert guest["traffic"]["bytes_in"] >= 12 * 2 * 40
    assert other["traffic"] == {"connections": 0, "bytes_out": 0, "bytes_in": 0}


# --------------------------------------------------------------------------- domains


def lans_asking_the_router(lab: Lab) -> list[dict[str, Any]]:
    """The lab's LANs with ``dhcp.dns`` dropped: their clients ask the router's dnsmasq,
    which a ``domains`` rule needs (docs/rules.md)."""
    lans: list[dict[str, Any]] = copy.deepcopy(yaml.safe_load(lab.config_text)["lans"])
    for lan in lans:
        if lan.get("dhcp"):
            lan["dhcp"].pop("dns", None)
    return lans


def dom_set(lab: Lab) -> str:
    return netns.nsrun(lab.router_ns, "nft", "list", "set", "inet", "wanwatch", "dom4_1").stdout


def test_a_domain_rule_takes_the_first_connection_after_the_lookup(router: Tailored) -> None:
    lab = router.lab
    name, other = "server.lab.test", "www.lab.test"  # the lab's DNS records (lab/plan.py)
    address = dict(lab.topology.dns_records)[name]
    rule = {
        "name": "partner",
        "from": [OFFICE_LAN],
        "domains": [name],
        "via": [BACKUP],
        "when_down": "block",
    }
    router.start("domains", rules=[rule], lans=lans_asking_the_router(lab))
    resolver = lab.client(OFFICE_LAN).gateway  # the router's dnsmasq on the LAN
    # Before anyone asked, the address is no rule's: it follows the policy.
    assert str(address) not in dom_set(lab)
    assert carriers(lab, OFFICE_LAN, count=3, dst=address) == {PRIMARY: 3}

    # The client asks the router, then connects the moment the answer is in.
    got = dns_lookup(lab, OFFICE_LAN, name, resolver, connect=WHOAMI_PORT)
    assert got.ok and got.rcode == 0 and got.addresses == (str(address),), got
    assert got.connect_error is None and got.isp == BACKUP, got
    assert str(address) in dom_set(lab)
    assert carriers(lab, OFFICE_LAN, count=3, dst=address) == {BACKUP: 3}

    # A name the rule does not list is answered, and its address is left to the policy.
    plain = dns_lookup(lab, OFFICE_LAN, other, resolver, connect=WHOAMI_PORT)
    assert plain.ok and plain.addresses and plain.isp == PRIMARY, plain
    assert plain.addresses[0] not in dom_set(lab)


# --------------------------------------------------------------------------- sticky


def by_source(lab: Lab, sources: list[IPv4Address], per_source: int) -> dict[str, set[str]]:
    """The uplinks each source's ``per_source`` new connections left by (all must answer)."""
    got: dict[str, set[str]] = {}
    for a in connections(lab, OFFICE_LAN, per_source * len(sources), sources=sources):
        assert a.ok and a.src is not None and a.isp is not None, a
        got.setdefault(a.src, set()).add(a.isp)
    return got


def test_a_sticky_source_keeps_its_uplink_across_a_balanced_run_and_a_failback(
    router: Tailored,
) -> None:
    lab = router.lab
    sources = add_client_addresses(lab, OFFICE_LAN, 16, first=101)
    stuck, loose = sources[:12], sources[12:]
    balanced = {"mode": "loadbalance", "uplinks": [PRIMARY, BACKUP]}
    rules = [
        {
            "name": "sticky",
            "from": [str(a) for a in stuck],
            "via": balanced,
            "sticky": {"by": "src", "timeout": "10m"},
            "when_down": "default",
        },
        # the control: the same balance without sticky spreads each source's connections
        {"name": "loose", "from": [str(a) for a in loose], "via": balanced, "when_down": "default"},
    ]
    # hashing the source port too: without sticky a source's connections spread
    policy = {"mode": "failover", "classifier": "src-address-and-port"}
    office = router.start("sticky", rules=rules, policy=policy)
    office.wait_for(
        lambda st: st["applied"] and rule_of(st, "sticky")["uplinks"] == [PRIMARY, BACKUP],
        DEADLINE,
        "the sticky rule balanced over both uplinks",
    )

    first = by_source(lab, sources, 10)
    assert all(len(first[str(a)]) == 1 for a in stuck), first
    on = {a: next(iter(first[str(a)])) for a in map(str, stuck)}
    assert set(on.values()) == {PRIMARY, BACKUP}, on  # balanced: both uplinks take some
    assert any(len(first[str(a)]) == 2 for a in loose), first  # the control spreads
    again = by_source(lab, stuck, 5)
    assert {a: next(iter(u)) for a, u in again.items()} == on  # still where they were

    # The backup dies: its sticky sources move (their set is flushed with the path) ...
    cut = faults.blackhole(lab, BACKUP)
    moved = wait_path(office, "sticky", f"balance {PRIMARY}", cut.t_start)
    assert by_source(lab, stuck, 3) == {a: {PRIMARY} for a in map(str, stuck)}
    # ... and across the failback every sticky source stays on the primary, while new
    # connections of the loose rule use the backup again.
    faults.clear(lab, BACKUP)
    wait_path(office, "sticky", f"balance {PRIMARY}+{BACKUP}", moved["at"])
    assert by_source(lab, stuck, 5) == {a: {PRIMARY} for a in map(str, stuck)}
    assert BACKUP in set().union(*by_source(lab, loose, 10).values())


def wait_path(office: Office, rule: str, to: str, since: float) -> dict[str, Any]:
    """The rule.path event moving ``rule`` to ``to``, once the table holds it."""
    moved = office.wait_event(
        "rule.path",
        since=since,
        timeout=DEADLINE,
        where=lambda e: (e["rule"], e["to"]) == (rule, to),
    )
    office.wait_event("nft.rules", since=moved["at"], timeout=DEADLINE)
    return moved


# --------------------------------------------------------------------------- isolation

_ID = re.compile(r"\bsrc=(\S+) .*?\bsport=(\d+) .*\bid=(\d+)")


def conntrack_ids(lab: Lab) -> dict[tuple[str, int], int]:
    """The router's conntrack entries to the whoami port: (client, port) -> entry id."""
    out = netns.nsrun(
        lab.router_ns, "conntrack", "-L", "-p", "tcp", "--dport", str(WHOAMI_PORT), "-o", "id"
    )
    return {(m[1], int(m[2])): int(m[3]) for m in _ID.finditer(out.stdout)}


def test_a_failover_of_one_rule_leaves_the_other_rules_connections_alone(
    router: Tailored,
) -> None:
    lab = router.lab
    wired = {"name": "wired", "from": [OFFICE_LAN], "via": [PRIMARY], "when_down": "default"}
    office = router.start("isolation", rules=[GUEST_RULE, wired])
    with (
        Flow(lab, GUEST_LAN, interval=0.05, max_seconds=120) as guest,
        Flow(lab, OFFICE_LAN, interval=0.05, max_seconds=120) as office_flow,
    ):
        deadline = time.monotonic() + DEADLINE
        assert guest.wait_connected(deadline).isp == BACKUP
        assert office_flow.wait_connected(deadline).isp == PRIMARY
        before = conntrack_ids(lab)
        assert len(before) == 2, before

        cut = faults.blackhole(lab, PRIMARY)
        wait_path(office, "wired", "default", cut.t_start)
        flush = office.wait_event("conntrack.flush", since=cut.t_start, timeout=DEADLINE)
        assert flush["wan"] == PRIMARY and flush["deleted"] >= 1
        # the wired rule's flow was on the dead uplink: its entry is gone, it breaks
        until(
            lambda: office_flow.report().broken_at is not None, DEADLINE, "the wired flow to break"
        )
        # the guest rule's flow is untouched: the same conntrack entry, still talking
        n = guest.report().exchanges
        until(lambda: guest.report().exchanges >= n + 10, DEADLINE, "the guest flow to go on")
        after = conntrack_ids(lab)
        guests = lab.client(GUEST_LAN).network
        assert guests is not None
        (mine,) = [k for k in before if IPv4Address(k[0]) in guests]
        (theirs,) = [k for k in before if k != mine]
        assert after.get(mine) == before[mine], (before, after)
        assert before[theirs] not in after.values(), (before, after)
        rep = guest.report()
    assert rep.alive and rep.stalls == [] and rep.isp == BACKUP, rep
    assert rep.connected_at is not None and rep.connected_at < cut.t_start
