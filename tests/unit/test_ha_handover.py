"""The pair's role: keepalived's notices read, the newest transition served (pure).

linux/pair.py's Handover gets keepalived's announcements in the order the
notify FIFO delivers them, while the steps of an older one may still be running;
these tests interleave the two as the daemon's loop can.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from wanwatch.config import load
from wanwatch.linux import conntrackd, keepalived
from wanwatch.linux.keepalived import Notice
from wanwatch.linux.pair import Handover, Step

EXAMPLES = Path(__file__).parents[2] / "examples"
MASTER_STEPS = [
    ("conntrackd", "-f"),
    ("conntrackd", "-R"),
    ("conntrackd", "-B"),
    ("dnsmasq", "start"),
]


def run_all(h: Handover) -> list[tuple[str, str]]:
    """Run every step owed now, each ending at once; (program, action) of each."""
    out = []
    while (step := h.next_step()) is not None:
        h.done(step)
        out.append((step.program, step.action))
    return out


# ---------------------------------------------------------------- the FIFO's lines


def test_fifo_lines_as_keepalived_writes_them() -> None:
    # vrrp_notify.c, notify_fifo(): "%s \"%s\" %s %d\n"
    assert keepalived.read_notice('GROUP "wanwatch" MASTER 0\n') == Notice(
        "GROUP", "wanwatch", "MASTER", 0
    )
    assert keepalived.read_notice('INSTANCE "lan-ether3" BACKUP 150') == Notice(
        "INSTANCE", "lan-ether3", "BACKUP", 150
    )
    assert keepalived.read_notice('INSTANCE "wan-X" MASTER_RX_LOWER_PRI 150') is not None
    for junk in ("", "GROUP wanwatch MASTER 0", 'GROUP "wanwatch" master 0', "MASTER"):
        assert keepalived.read_notice(junk) is None, junk


def test_only_our_sync_group_gives_the_role() -> None:
    def role(line: str) -> str | None:
        notice = keepalived.read_notice(line)
        assert notice is not None
        return keepalived.group_role(notice)

    assert role('GROUP "wanwatch" FAULT 0') == "FAULT"
    assert role('GROUP "wanwatch" STOP 0') == "STOP"
    assert role('INSTANCE "lan-ether3" MASTER 150') is None  # one instance is not the group
    assert role('GROUP "other" MASTER 0') is None
    assert role('GROUP "wanwatch" DELETED 0') is None


def test_keepalived_never_resets_the_track_file_to_all_up() -> None:
    cfg = load(EXAMPLES / "office-ha-a.yaml")
    text = keepalived.render(cfg, Path("/var/lib/wanwatch"))
    inits = [line.split() for line in text.splitlines() if line.strip().startswith("init_file")]
    assert inits == [["init_file", str(len(cfg.wans))]]  # missing: every uplink down; no overwrite
    assert 'vrrp_notify_fifo "/var/lib/wanwatch/ha-events"' in text
    keywords = [line.split()[0] for line in text.splitlines() if line.strip()]
    assert not [k for k in keywords if k.startswith("notify")]  # no script to race


# ---------------------------------------------------------------- the newest role wins


def test_each_role_owes_its_conntrackd_steps_and_dnsmasq() -> None:
    h = Handover()
    assert h.role is None and h.next_step() is None
    assert h.announce("BACKUP") == ()
    assert run_all(h) == [("conntrackd", "-n")]
    assert h.served() == 1 and h.served() is None  # reported once
    h.announce("MASTER")
    assert run_all(h) == MASTER_STEPS
    assert h.serving
    h.announce("FAULT")
    assert run_all(h) == [("dnsmasq", "stop"), ("conntrackd", "-t"), ("conntrackd", "-n")]
    h.announce("STOP")
    assert run_all(h) == [] and not h.serving and h.served() == 4


def test_the_same_role_again_is_no_news() -> None:
    h = Handover()
    h.announce("MASTER")
    run_all(h)
    assert h.announce("MASTER") is None
    assert h.next_step() is None and h.turn == 1


def test_backup_during_the_masters_first_step_drops_the_rest_of_it() -> None:
    # The race seen in the lab: B went MASTER, saw A's better advert 5 ms later.
    h = Handover()
    h.announce("MASTER")
    first = h.next_step()
    assert first == Step("conntrackd", "-f", "MASTER", 1)
    assert h.announce("BACKUP") == ("-R", "-B")  # not started: dropped
    assert h.served() is None
    h.done(first)  # the step in flight ends after the news
    assert h.served() is None  # the end of an older turn serves nothing
    assert run_all(h) == [("conntrackd", "-n")]
    assert h.role == "BACKUP" and not h.serving
    assert h.served() == 2


def test_backup_while_dnsmasq_starts_stops_it_again() -> None:
    h = Handover()
    h.announce("MASTER")
    for _ in range(len(MASTER_STEPS) - 1):
        step = h.next_step()
        assert step is not None
        h.done(step)
    start = h.next_step()
    assert start == Step("dnsmasq", "start", "MASTER", 1)
    h.announce("BACKUP")
    h.done(start)  # dnsmasq came up after the role had gone
    assert h.serving
    assert run_all(h) == [("dnsmasq", "stop"), ("conntrackd", "-n")]
    assert not h.serving


def test_a_burst_of_flips_serves_only_the_last() -> None:
    h = Handover()
    h.announce("BACKUP")
    inflight = h.next_step()
    for role in ("MASTER", "BACKUP", "MASTER", "FAULT", "MASTER"):
        h.announce(role)
    assert inflight is not None
    h.done(inflight)
    assert run_all(h) == MASTER_STEPS
    assert h.served() == 6


ROLES = st.sampled_from(keepalived.ROLES)
# An interleaving: announce a role, or let the step in flight (if any) end and start the next.
OPS = st.lists(st.one_of(ROLES, st.just("step")), max_size=40)


@given(OPS, ROLES)
def test_whatever_the_interleaving_the_end_is_the_last_role_served(
    ops: list[str], last: str
) -> None:
    h = Handover()
    inflight: Step | None = None
    for op in ops:
        if op == "step":
            if inflight is not None:
                h.done(inflight)
            inflight = h.next_step()
        else:
            h.announce(op)
    news = h.announce(last) is not None
    if inflight is not None:
        h.done(inflight)
    tail = run_all(h)
    # dnsmasq runs exactly where the role is MASTER now
    assert h.serving == (last == "MASTER")
    assert h.next_step() is None
    # conntrackd got the newest role's steps last, in order: all of them if the
    # last announcement was news, else what was left of them
    ct = tuple(a for p, a in tail if p == "conntrackd")
    want = conntrackd.steps(last)
    assert ct == want if news else want[len(want) - len(ct) :] == ct
    if news:
        assert h.served() == h.turn
