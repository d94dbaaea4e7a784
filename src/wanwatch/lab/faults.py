"""Fault injection on the ISP side of an uplink, without netem (docs/lab-notes.md).

Every fault is applied inside the ISP's namespace, never in the router's, so
the router sees what a real office sees:

- ``blackhole``: an nft ``drop`` of everything the ISP forwards. The ISP's
  gateway address keeps answering and the Ethernet link stays up -- an
  LTE modem that lost its signal.
- ``loss``: nft ``numgen random`` drops a share of the packets, in one
  direction by default (both directions would make the round-trip loss
  1 - (1-p)^2).
- ``delay``: the iptables ``NFQUEUE`` target hands packets to a releaser
  process (the ``delay`` worker, worker/delay.py) that holds each for delay ±
  jitter.
- ``carrier``: the ISP's end of the customer link goes down, so the router's
  interface loses carrier.
- ``flap``: a bounded background process (the ``flap`` worker,
  worker/flap.py) alternating blackhole (or carrier) on and off.

Each nft fault lives in its own table (``inet ww_blackhole``, ``inet
ww_loss``), and the delay in its own iptables chain, so clearing one fault
removes exactly that and nothing else. Every function returns a
:class:`FaultEvent` whose monotonic timestamps bracket the moment the kernel
took the change (CLOCK_MONOTONIC is shared by all namespaces), for benches
that measure "cut at T -> first new connection via the backup at T+x".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from wanwatch.errors import LabError
from wanwatch.lab import netns, uplinks
from wanwatch.lab.plan import Isp
from wanwatch.lab.procs import Proc
from wanwatch.lab.topology import Lab
from wanwatch.lab.worker import worker_argv
from wanwatch.lab.worker.limits import MAX_FLAP_CYCLES

Direction = Literal["up", "down", "both"]
Family = Literal[4, 6]
_NFPROTO: dict[Family, str] = {4: "ipv4", 6: "ipv6"}
Kind = Literal["blackhole", "loss", "delay", "carrier", "flap"]
KINDS: tuple[Kind, ...] = ("flap", "delay", "loss", "blackhole", "carrier")

BLACKHOLE_TABLE = "ww_blackhole"
LOSS_TABLE = "ww_loss"
DELAY_CHAIN = "WW_DELAY"
DELAY_QUEUE = 7  # NFQUEUE number; queues are per namespace, so one per ISP is enough
# Where each direction is queued. Office -> internet packets are queued in raw
# PREROUTING, before conntrack: queued later (after conntrack has created an
# unconfirmed entry), the packets of a new ICMP/UDP flow that arrive while its
# first packet is held each create a clashing entry and are dropped at
# confirmation -- measured here: the first ~100 ms of a new ping stream lost
# under a 100 ms delay. Replies (internet -> office) always belong to an entry
# confirmed on the way out, so the forward hook is safe for them (and comes
# after the reverse NAT, which raw PREROUTING does not).
DELAY_HOOKS = {"up": ("raw", "PREROUTING"), "down": ("mangle", "FORWARD")}
# Loss resolution: numgen draws 0..LOSS_SCALE-1, so percentages with two decimals work.
LOSS_SCALE = 10000


@dataclass(frozen=True)
class FaultEvent:
    """One fault change; the kernel took it between ``t_start`` and ``t_done`` (monotonic).

    Use ``t_start`` as the moment of a cut: it never flatters a failover time.
    Measured here with a 1 ms ping stream through the ISP (PingStats.first_lost_sent):
    an nft blackhole bites 5-13 ms after ``t_start`` and 10-15 ms before
    ``t_done`` (nft's start-up comes before its commit, process exit after).
    """

    kind: Kind | Literal["all"]
    wan: str
    action: Literal["set", "clear"]
    t_start: float
    t_done: float
    detail: str = ""


class _Timer:
    def __init__(
        self,
        kind: Kind | Literal["all"],
        wan: str,
        action: Literal["set", "clear"],
        detail: str = "",
    ) -> None:
        self.kind, self.wan, self.action, self.detail = kind, wan, action, detail
        self.t_start = time.monotonic()

    def done(self) -> FaultEvent:
        return FaultEvent(
            self.kind, self.wan, self.action, self.t_start, time.monotonic(), self.detail
        )


# --------------------------------------------------------------------------- rulesets (pure)


def _iif(isp: Isp, direction: Direction) -> str:
    """nft match of the packets of one direction: "up" = from the office to the internet."""
    names = {"up": f'"{isp.cust_if}"', "down": f'"{isp.uplink_if}"'}
    if direction == "both":
        return f"iifname {{ {names['up']}, {names['down']} }}"
    return f"iifname {names[direction]}"


def blackhole_ruleset(family: Family | None = None) -> str:
    """Drop everything the ISP forwards (of one ``family`` only: an LTE carrier whose
    IPv6 core fails while IPv4 works); its own address keeps answering (input is untouched)."""
    only = f"meta nfproto {_NFPROTO[family]} " if family is not None else ""
    return f"""\
table inet {BLACKHOLE_TABLE}
delete table inet {BLACKHOLE_TABLE}
table inet {BLACKHOLE_TABLE} {{
    chain forward {{
        type filter hook forward priority filter - 20; policy accept;
        {only}counter drop
    }}
}}
"""


def loss_ruleset(isp: Isp, percent: float, direction: Direction) -> str:
    """Drop ``percent`` % of forwarded packets of ``direction``, each independently."""
    threshold = round(percent * LOSS_SCALE / 100)
    return f"""\
table inet {LOSS_TABLE}
delete table inet {LOSS_TABLE}
table inet {LOSS_TABLE} {{
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        {_iif(isp, direction)} numgen random mod {LOSS_SCALE} < {threshold} counter drop
    }}
}}
"""


def delay_rules(isp: Isp, direction: Direction) -> str:
    """iptables-restore input queueing ``direction``'s forwarded packets to the releaser.

    Only forwarded packets: the ISP's own addresses keep answering at once,
    like a modem whose radio side is slow.
    """
    dirs: list[Literal["up", "down"]] = ["up", "down"] if direction == "both" else [direction]
    queue = f"-j NFQUEUE --queue-num {DELAY_QUEUE} --queue-bypass"
    out = []
    for d in dirs:
        table, hook = DELAY_HOOKS[d]
        out += [f"*{table}", f":{DELAY_CHAIN} - [0:0]", f"-A {hook} -j {DELAY_CHAIN}"]
        if d == "up":
            # Before routing: the ISP's own addresses must be skipped by hand.
            for own in (isp.gateway.ip, isp.public.ip):
                out.append(f"-A {DELAY_CHAIN} -d {own}/32 -j RETURN")
            out.append(f"-A {DELAY_CHAIN} -i {isp.cust_if} {queue}")
        else:
            out.append(f"-A {DELAY_CHAIN} -i {isp.uplink_if} {queue}")
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def _delete_table(name: str) -> str:
    # Declaring the table first makes the delete succeed whether or not it exists.
    return f"table inet {name}\ndelete table inet {name}\n"


# --------------------------------------------------------------------------- faults


def blackhole(lab: Lab, wan: str, family: Family | None = None) -> FaultEvent:
    """Silently drop everything the ISP of ``wan`` forwards (the LTE modem lost signal),
    or only that of one IP ``family``. Replaces a previous blackhole of that ISP."""
    t = _Timer("blackhole", wan, "set", f"IPv{family} only" if family is not None else "")
    netns.nft(lab.isp(wan).ns, blackhole_ruleset(family))
    return t.done()


def loss(lab: Lab, wan: str, percent: float, direction: Direction = "up") -> FaultEvent:
    """Drop ``percent`` % of the packets the ISP of ``wan`` forwards in ``direction``.

    ``"up"`` is office -> internet, ``"down"`` internet -> office. Replaces a
    previous loss setting of that ISP.
    """
    if not 0 <= percent <= 100:
        raise LabError(f"loss must be 0-100 %, not {percent}")
    isp = lab.isp(wan)
    t = _Timer("loss", wan, "set", f"{percent}% {direction}")
    netns.nft(isp.ns, loss_ruleset(isp, percent, direction))
    return t.done()


def delay(
    lab: Lab,
    wan: str,
    ms: float,
    *,
    jitter_ms: float = 0.0,
    direction: Direction = "up",
    max_seconds: float = 3600.0,
) -> FaultEvent:
    """Hold each packet the ISP of ``wan`` forwards in ``direction`` for ``ms`` ± ``jitter_ms``.

    One direction adds ``ms`` to a round trip; ``"both"`` adds twice that.
    Replaces a previous delay of that ISP. The releaser exits by itself after
    ``max_seconds`` (packets then pass undelayed: the rule uses
    ``--queue-bypass``).
    """
    if ms < 0 or jitter_ms < 0:
        raise LabError("delay and jitter cannot be negative")
    isp = lab.isp(wan)
    clear(lab, wan, "delay")
    t = _Timer("delay", wan, "set", f"{ms}±{jitter_ms} ms {direction}")
    argv = worker_argv(
        "delay",
        "--queue",
        str(DELAY_QUEUE),
        "--delay-ms",
        str(ms),
        "--jitter-ms",
        str(jitter_ms),
        "--max-seconds",
        str(max_seconds),
    )
    proc = lab.spawn(isp.ns, argv, f"delay-{isp.wan}")
    try:
        proc.wait_ready(lambda: proc.reported("bound"), 10, "bound to its queue")
    except LabError:
        lab.stop_proc(proc)
        raise
    netns.sh(
        netns.ns_argv(isp.ns, ["iptables-restore", "--noflush", "-w", "5"]),
        input=delay_rules(isp, direction),
    )
    return t.done()


def carrier_loss(lab: Lab, wan: str) -> FaultEvent:
    """Take the ISP's end of the customer link down: the router's interface loses carrier."""
    isp = lab.isp(wan)
    t = _Timer("carrier", wan, "set")
    netns.ip("-n", isp.ns, "link", "set", isp.cust_if, "down")
    return t.done()


def clear(lab: Lab, wan: str, kind: Kind | None = None) -> FaultEvent:
    """Remove one fault of ``wan`` (``kind``), or all of them; a no-op for faults not set."""
    isp = lab.isp(wan)
    kinds = KINDS if kind is None else (kind,)
    t = _Timer(kind or "all", wan, "clear", ",".join(kinds))
    for k in kinds:
        if k == "flap":
            for proc in _procs(lab, f"flap-{isp.wan}"):
                lab.stop_proc(proc)  # it clears its own blackhole/carrier on SIGTERM
        elif k == "delay":
            _clear_delay(lab, isp)
        elif k == "loss":
            netns.nft(isp.ns, _delete_table(LOSS_TABLE))
        elif k == "blackhole":
            netns.nft(isp.ns, _delete_table(BLACKHOLE_TABLE))
        elif k == "carrier":
            was_down = not lab.link_state(isp.ns, isp.cust_if).admin_up
            netns.ip("-n", isp.ns, "link", "set", isp.cust_if, "up")
            if was_down:
                # A real ISP keeps its port's configuration across a carrier cut; the
                # lab's link down flushed its IPv6 (the customer's IPv6 stayed down).
                uplinks.restore6(lab, wan)
    return t.done()


def clear_all(lab: Lab) -> None:
    """Remove every fault of every ISP."""
    for isp in lab.topology.isps:
        clear(lab, isp.wan)


def _clear_delay(lab: Lab, isp: Isp) -> None:
    # Rules first, so no packet is queued to a releaser that is going away; the
    # releaser then lets every packet it still holds go (worker/delay.py).
    for table, hook in DELAY_HOOKS.values():
        ipt = ("iptables", "-w", "5", "-t", table)
        if f"-N {DELAY_CHAIN}" in netns.nsrun(isp.ns, *ipt, "-S").stdout.splitlines():
            netns.nsrun(isp.ns, *ipt, "-D", hook, "-j", DELAY_CHAIN)
            netns.nsrun(isp.ns, *ipt, "-F", DELAY_CHAIN)
            netns.nsrun(isp.ns, *ipt, "-X", DELAY_CHAIN)
            # iptables-nft leaves its table with empty built-in chains behind; the
            # delay is its only user in an ISP namespace, so drop the table too
            # and the ruleset is exactly what it was before the fault.
            rest = netns.nsrun(isp.ns, *ipt, "-S").stdout.splitlines()
            if all(line.startswith("-P ") and line.endswith(" ACCEPT") for line in rest):
                netns.nft(isp.ns, f"delete table ip {table}\n")
    for proc in _procs(lab, f"delay-{isp.wan}"):
        lab.stop_proc(proc)


def _procs(lab: Lab, name: str) -> list[Proc]:
    return [p for p in lab.procs if p.name == name]


def active(lab: Lab, wan: str) -> set[Kind]:
    """Which faults are set on the ISP of ``wan`` right now (read from the kernel)."""
    isp = lab.isp(wan)
    found: set[Kind] = set()
    tables = netns.nsrun(isp.ns, "nft", "list", "tables").stdout.split("\n")
    if f"table inet {BLACKHOLE_TABLE}" in tables:
        found.add("blackhole")
    if f"table inet {LOSS_TABLE}" in tables:
        found.add("loss")
    for table, _ in DELAY_HOOKS.values():
        chains = netns.nsrun(isp.ns, "iptables", "-w", "5", "-t", table, "-S").stdout
        if f"-N {DELAY_CHAIN}" in chains.splitlines():
            found.add("delay")
    if not lab.link_state(isp.ns, isp.cust_if).admin_up:
        found.add("carrier")
    if any(p.alive() for p in _procs(lab, f"flap-{isp.wan}")):
        found.add("flap")
    return found


# --------------------------------------------------------------------------- flapping


class Flap:
    """A running flapper: ``cycles`` of (fault on for ``down_s``, off for ``up_s``)."""

    def __init__(self, lab: Lab, proc: Proc) -> None:
        self.lab = lab
        self.proc = proc

    def transitions(self) -> list[dict[str, Any]]:
        """``{"ev": "down"|"up", "t_start", "t_done", "cycle"}`` for each change so far."""
        return [r for r in self.proc.records() if r.get("ev") in ("down", "up")]

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        """Wait for the flapper to finish all its cycles; its transitions."""
        if self.proc.wait(timeout) is None and self.proc.alive():
            raise LabError(f"flapper still running after {timeout} s")
        return self.transitions()

    def stop(self) -> None:
        """Stop early; the flapper removes the fault it set before it exits."""
        self.lab.stop_proc(self.proc)


def flap(
    lab: Lab,
    wan: str,
    *,
    down_s: float,
    up_s: float,
    cycles: int,
    mode: Literal["blackhole", "carrier"] = "blackhole",
) -> Flap:
    """Start flapping ``wan``: ``cycles`` × (``mode`` fault for ``down_s``, clear for ``up_s``)."""
    if not 1 <= cycles <= MAX_FLAP_CYCLES:
        raise LabError(f"flap cycles must be 1-{MAX_FLAP_CYCLES}")
    if down_s <= 0 or up_s <= 0:
        raise LabError("flap periods must be positive")
    isp = lab.isp(wan)
    clear(lab, wan, "flap")
    # The flapper runs the very commands of blackhole(), carrier_loss() and clear().
    if mode == "blackhole":
        fault = ["--nft-on", blackhole_ruleset(), "--nft-off", _delete_table(BLACKHOLE_TABLE)]
    else:
        fault = ["--link", isp.cust_if]
    argv = worker_argv(
        "flap", "--down", str(down_s), "--up", str(up_s), "--cycles", str(cycles), *fault
    )
    return Flap(lab, lab.spawn(isp.ns, argv, f"flap-{isp.wan}"))
