"""A router pair in network namespaces: two wanwatch routers on shared LAN and ISP segments.

::

    [lanN] eth0 ─┬─ eth0a ── <lan if> [rtr]  <wan if> ── custa ─┬─ cust [ispK] ── [inet]
       (bridge)  └─ eth0b ── <lan if> [rtrb] <wan if> ── custb ─┘ (bridge)
                             [rtr] <sync if> ──── <sync if> [rtrb]

Built on :class:`~wanwatch.lab.topology.Lab` (same fake internet, ISPs,
clients and services): only the wiring differs. Each LAN client's ``eth0`` and
each ISP's customer port ``cust`` become bridges, with one port per router, so
both routers sit on every segment as two boxes on one switch would; a veth
links the routers' sync interfaces. Router A runs in the lab's usual router
namespace, router B in ``ww<tag>-rtrb``, each with its own derived config
(``office-lab.yaml``, ``office-lab-b.yaml``), socket and state directory.

The sync link's addresses are configured here, as an operator would set up
the link between the two boxes; wanwatch uses them (conntrackd) and applies
the uplink and LAN addresses itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from wanwatch.config import Config, load
from wanwatch.errors import LabError
from wanwatch.lab import netns, poll
from wanwatch.lab.office import Office
from wanwatch.lab.plan import ClientDns, lab_config_text
from wanwatch.lab.procs import Proc
from wanwatch.lab.topology import Lab
from wanwatch.lab.traffic import ConnectLoop, Flow
from wanwatch.linux import keepalived

STATE_ROOT = Path("/run/wanwatch-lab-pair")  # not the single-router labs': `lab down` keeps apart
PEER = "rtrb"
PEER_CONFIG = "office-lab-b.yaml"
SIDES = ("a", "b")


def pair_paths(config: Path) -> tuple[Path, Path]:
    """Router A's and router B's config: ``X-a.yaml`` and ``X-b.yaml``."""
    if not config.name.endswith("-a.yaml"):
        raise LabError(f"{config}: a pair's configs are named NAME-a.yaml and NAME-b.yaml")
    return config, config.with_name(config.name[: -len("-a.yaml")] + "-b.yaml")


class PairLab(Lab):
    """The reference office served by two wanwatch routers. ``peer`` is router B's config.

    Without ``peer`` (re-attaching to a running lab), router B's lab config is
    read from the state directory.
    """

    def __init__(
        self,
        config: Config,
        peer: Config | None = None,
        *,
        tag: str | None = None,
        state_root: Path = STATE_ROOT,
        client_dns: ClientDns = "router",
        remove_state: bool = True,
    ) -> None:
        super().__init__(
            config,
            tag=tag,
            state_root=state_root,
            client_dns=client_dns,
            remove_state=remove_state,
        )
        if peer is None:
            peer = load(self.state_dir / PEER_CONFIG)
        if config.ha is None or peer.ha is None:
            raise LabError("both routers of a pair need an ha: section")
        if config.replace(ha=None, source="") != peer.replace(ha=None, source=""):
            raise LabError("the two routers' configs must differ only in their ha: section")
        if config.ha.sync.interface != peer.ha.sync.interface:
            raise LabError("the lab wires both routers' sync interfaces: give them one name")
        self.peer_config = peer
        self.peer_text = lab_config_text(peer, self.topology, client_dns)
        self.peer_ns = f"{netns.PREFIX}{self.tag}-{PEER}"
        self._spawning = threading.Lock()  # both routers may be started at one moment

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (*self.topology.namespaces, self.peer_ns)

    @property
    def peer_config_path(self) -> Path:
        return self.state_dir / PEER_CONFIG

    def router(self, side: str) -> str:
        """Namespace of router ``a`` or ``b``."""
        return {"a": self.router_ns, "b": self.peer_ns}[side]

    def ns_for(self, who: str) -> str:
        return (
            self.peer_ns
            if who in ("b", "peer")
            else super().ns_for("router" if who == "a" else who)
        )

    def spawn(
        self, ns: str, argv: Sequence[str], name: str, env: Mapping[str, str] | None = None
    ) -> Proc:
        """:meth:`Lab.spawn`, one at a time: it records every process in one file."""
        with self._spawning:
            return super().spawn(ns, argv, name, env)

    def up(self) -> PairLab:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.peer_config_path.write_text(self.peer_text)
        super().up()
        return self

    def _build(self) -> None:
        super()._build()
        sync_a, sync_b = (cfg.ha.sync for cfg in (self.config, self.peer_config) if cfg.ha)
        netns.veth(self.router_ns, sync_a.interface, self.peer_ns, sync_b.interface)
        netns.batch(self.router_ns, [f"addr add {sync_a.address} dev {sync_a.interface}"])
        netns.batch(self.peer_ns, [f"addr add {sync_b.address} dev {sync_b.interface}"])

    def _plug_router(self, ns: str, ifname: str, router_if: str) -> None:
        """A bridge ``ifname`` in ``ns`` with a port to ``router_if`` of each router.

        A frame from one router to the other is switched, as by the switch between
        two boxes: it is not handed to the namespace's own IP firewall. The kernel
        has br_netfilter built in, on by default in every namespace (its
        ``net.bridge.bridge-nf-call-*`` sysctls are per namespace, and a bridge's
        own ``nf_call_iptables 0`` does not override them), and the ISP's BCP38
        rule would drop a server's packet that one router passes to the other.
        """
        off = [f"net.bridge.bridge-nf-call-{t}=0" for t in ("iptables", "ip6tables", "arptables")]
        netns.sh(["ip", "netns", "exec", ns, "sysctl", "-qw", *off])
        netns.batch(ns, [f"link add {ifname} type bridge", f"link set {ifname} up"])
        for side in SIDES:
            port = f"{ifname}{side}"
            netns.veth(ns, port, self.router(side), router_if)
            netns.batch(ns, [f"link set {port} master {ifname}"])

    # ---------------------------------------------------------------- faults

    def unplug(self, side: str, *, lans: bool = True, wans: bool = True) -> float:
        """Take router ``side``'s switch ports down (its cables pulled); the time it happened."""
        cmds: list[tuple[str, str]] = []
        if lans:
            cmds += [(c.ns, f"{c.ifname}{side}") for c in self.topology.clients]
        if wans:
            cmds += [(i.ns, f"{i.cust_if}{side}") for i in self.topology.isps]
        at = time.monotonic()
        for ns, port in cmds:
            netns.batch(ns, [f"link set {port} down"])
        return at

    def plug(self, side: str) -> None:
        """Bring router ``side``'s switch ports back up."""
        for c in self.topology.clients:
            netns.batch(c.ns, [f"link set {c.ifname}{side} up"])
        for i in self.topology.isps:
            netns.batch(i.ns, [f"link set {i.cust_if}{side} up"])

    def silence(self, side: str, on: bool = True) -> float:
        """Every ISP silently drops router ``side``'s own packets (its cables stay in).

        Like an LTE modem that lost signal: only the router's probes can tell,
        through the track file. Forwarded office traffic (NATed to the shared
        address) is not dropped. The time it took effect.
        """
        cfg = self.config if side == "a" else self.peer_config
        assert cfg.ha is not None  # checked in __init__
        own = {hw.wan: hw.address.ip for hw in cfg.ha.wans}
        at = time.monotonic()
        for isp in self.topology.isps:
            table = f"ww_silence_{side}"
            rules = f"table ip {table}\ndelete table ip {table}\n"
            if on:
                addr = own[isp.wan]
                rules += (
                    f"table ip {table} {{\n\tchain forward {{\n"
                    "\t\ttype filter hook forward priority filter - 1; policy accept;\n"
                    f"\t\tip saddr {addr} drop\n\t\tip daddr {addr} drop\n\t}}\n}}\n"
                )
            netns.nft(isp.ns, rules)
        return at

    def kill_router(self, side: str) -> float:
        """Power router ``side`` off: SIGKILL every process in its namespace, pull its cables.

        Every process in a lab router namespace was started by this lab (wanwatch
        and what wanwatch started); each is killed by its PID. The time of the kill.
        """
        ns = self.router(side)
        out = netns.sh(["ip", "netns", "pids", ns]).stdout.split()
        at = time.monotonic()
        for pid in out:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                continue  # it exited on its own meanwhile
        self.unplug(side)
        return at


def offices(lab: PairLab) -> tuple[Office, Office]:
    """wanwatch for router A and router B (not started)."""
    a = Office(lab)
    b = Office(lab, lab.peer_config_path)
    b.router_ns = lab.peer_ns
    b.socket = lab.state_dir / "wanwatch-b.sock"
    b.daemon_state = lab.state_dir / "wanwatch-b-state"
    return a, b


def run_router(lab: PairLab, office: Office, timeout: float) -> None:
    """Start wanwatch on ``office``'s router, its keepalived's temporary files apart.

    keepalived writes its data dump to $TMPDIR (keepalived(8)), and the routers'
    namespaces share one /tmp: each router gets a directory of its own.
    """
    office.start(timeout=timeout, env={"TMPDIR": str(_tmpdir(lab, office))})


def _tmpdir(lab: PairLab, office: Office) -> Path:
    side = "b" if office.router_ns == lab.peer_ns else "a"
    path = lab.state_dir / f"keepalived-tmp-{side}"
    path.mkdir(exist_ok=True)
    return path


def start(lab: PairLab, timeout: float, *, together: bool = False) -> tuple[Office, Office]:
    """Start wanwatch on both routers (``together``: at the same moment); return once A
    is master, carrying traffic on its preferred uplink, and B is backup.

    Each router starts counting its uplinks as down, so neither preempts the
    other before its probes have proven them up; A, the preferred router, ends
    as master.
    """
    a, b = offices(lab)
    preferred = min(lab.config.wans, key=lambda w: w.priority).name
    if together:
        with ThreadPoolExecutor(2) as pool:
            for job in [pool.submit(run_router, lab, o, timeout) for o in (a, b)]:
                job.result()
    else:
        run_router(lab, a, timeout)
        run_router(lab, b, timeout)
    wait_role(a, "MASTER", timeout)
    a.wait_active(preferred, timeout)
    wait_role(b, "BACKUP", timeout)
    return a, b


def wait_role(office: Office, role: str, timeout: float) -> float:
    """Wait until ``office``'s router reports VRRP role ``role``; when it did (monotonic)."""
    office.wait_for(
        lambda st: (st.get("ha") or {}).get("role") == role, timeout, f"VRRP role {role}"
    )
    return time.monotonic()


def keepalived_roles(lab: PairLab, office: Office, timeout: float) -> dict[str, str]:
    """Each VRRP instance's state as keepalived itself holds it, from its data dump.

    keepalived writes ``keepalived.data`` on its DATA signal (``keepalived
    --signum=DATA``; keepalived(8)), one `` VRRP Instance = NAME`` block per
    instance with its ``   State = ...``: a second opinion, beside the notify
    FIFO that wanwatch reads.
    """
    dump = _tmpdir(lab, office) / "keepalived.data"
    dump.unlink(missing_ok=True)
    pid = (office.status().get("ha") or {}).get("keepalived", {}).get("pid")
    if pid is None:
        raise LabError(f"no keepalived runs in {office.router_ns}")
    os.kill(pid, _data_signal())
    cfg = load(office.config_path)
    names = {name for name, *_ in keepalived.instances(cfg)}

    def read() -> dict[str, str]:
        try:
            text = dump.read_text()
        except FileNotFoundError:
            return {}
        states: dict[str, str] = {}
        current: str | None = None
        for line in text.splitlines():
            if line.startswith(" VRRP Instance = "):
                current = line.split("=", 1)[1].strip()
            elif current is not None and line.startswith("   State = "):
                states.setdefault(current, line.split("=", 1)[1].strip())
        return states if set(states) == names else {}  # until the whole dump is in

    return poll.until(read, timeout, f"keepalived's data dump in {office.router_ns}")


def _data_signal() -> int:
    out = subprocess.run(
        ["keepalived", "--signum=DATA"], capture_output=True, text=True, check=True, timeout=10
    )
    return int(out.stdout.strip())


def dhcp_answers(lab: PairLab, lan: str, watch: float, timeout: float) -> dict[str, int]:
    """Ask for a lease with a real DHCP client (busybox udhcpc); DHCP packets each router sent.

    Counted in the client's namespace by the routers' MAC addresses (an nft
    counter each, in a table of this lab's client namespace), over the lease and
    ``watch`` seconds after it, so that a second server's late offer is seen
    too: LabError as soon as both routers have answered.
    """
    client = lab.client(lan)
    macs = {side: _mac(lab.router(side), client.router_if) for side in SIDES}
    table = "ww_dhcp_answers"
    rules = [f"table inet {table}", f"delete table inet {table}", f"table inet {table} {{"]
    rules += [f"\tcounter {side} {{ }}" for side in SIDES]
    rules += ["\tchain in {", "\t\ttype filter hook prerouting priority raw; policy accept;"]
    rules += [f'\t\tudp sport 67 ether saddr {mac} counter name "{s}"' for s, mac in macs.items()]
    rules += ["\t}", "}"]
    netns.nft(client.ns, "\n".join(rules) + "\n")
    try:

        def counts() -> dict[str, int]:
            out: dict[str, int] = {}
            for side in SIDES:
                found = netns.nft_json(client.ns, "counter", "inet", table, side)
                out[side] = next(o["counter"]["packets"] for o in found if "counter" in o)
            return out

        lab.dhcp_lease(lan, timeout)
        poll.holds(
            lambda: sum(1 for n in counts().values() if n) == 1,
            watch,
            lambda: f"one DHCP server answering (packets by router: {counts()})",
            every=0.2,
        )
        return counts()
    finally:
        netns.nft(client.ns, f"table inet {table}\ndelete table inet {table}\n")


def _mac(ns: str, ifname: str) -> str:
    out = netns.sh(["ip", "-n", ns, "-j", "link", "show", "dev", ifname]).stdout
    mac: str = json.loads(out)[0]["address"]
    return mac


# --------------------------------------------------------------------------- lab up / down / demo

DEFAULT_A = Path(__file__).resolve().parents[3] / "examples" / "office-ha-a.yaml"
DEMO_FLOWS = 5
DEMO_DEADLINE = 15.0
Say = Callable[[str], None]


def up(config_a: Config, config_b: Config, say: Say) -> PairLab:
    """Build the pair lab for routers A and B and start both; leave it running."""
    lab = PairLab(config_a, config_b, remove_state=False)
    try:
        lab.up()
        a, b = start(lab, DEMO_DEADLINE)
    except (LabError, KeyboardInterrupt):
        lab.down()
        raise
    say(
        f"pair lab {lab.tag} is up: router A ({lab.router_ns}) is master, B ({lab.peer_ns}) backup."
    )
    say(f"  status A: wanwatch status --socket {a.socket}")
    say(f"  status B: wanwatch status --socket {b.socket}")
    for c in lab.topology.clients:
        say(f"  client {c.lan}: ip netns exec {c.ns} <command>")
    say("  take it down: wanwatch lab down --ha")
    return lab


def down_all(say: Say) -> None:
    """Take down every pair lab this machine runs."""
    dirs = PairLab.running(STATE_ROOT)
    if not dirs:
        say("no pair lab is running.")
    for state_dir in dirs:
        lab = PairLab.attach(state_dir)
        lab.remove_state = True
        lab.down()
        say(f"pair lab {lab.tag} removed.")


def demo(config_a: Config, config_b: Config, say: Say) -> dict[str, Any]:
    """Kill the master router while the office works; show the office carrying on."""
    figures: dict[str, Any] = {}
    with PairLab(config_a, config_b) as lab:
        say("Two wanwatch routers in namespaces; starting both (keepalived + conntrackd each).")
        b = start(lab, DEMO_DEADLINE)[1]
        say("Router A is master (holds the LAN gateways and the uplinks' NAT addresses).")
        lan = lab.topology.clients[0].lan
        client = lab.dhcp_client(lan)
        lease = client.wait_lease(time.monotonic() + DEMO_DEADLINE)
        say(f"The {lan} client got {lease.address} from {lease.server}, gateway {lease.router}.")
        flows = [Flow(lab, lan, interval=0.05, max_seconds=120).start() for _ in range(DEMO_FLOWS)]
        for f in flows:
            f.wait_connected(time.monotonic() + DEMO_DEADLINE)
        say(f"{DEMO_FLOWS} long-lived TCP connections through NAT exchange bytes every 50 ms.")
        time.sleep(1.0)
        with ConnectLoop(lab, lan) as loop:
            killed = lab.kill_router("a")
            say("Router A killed: SIGKILL of everything in it, cables pulled.")
            first = loop.first_success(after=killed, deadline=killed + DEMO_DEADLINE)
        if first is None:
            raise LabError("no new connection went through router B")
        wait_role(b, "MASTER", DEMO_DEADLINE)
        figures["new_connection_ms"] = round((first.t1 - killed) * 1000)
        say(f"New connections go out through router B after {figures['new_connection_ms']} ms.")
        time.sleep(3.0)
        alive = [
            f for f in flows if (r := f.report()).broken_at is None and (r.last_ok or 0) > killed
        ]
        figures["flows_survived"] = f"{len(alive)}/{DEMO_FLOWS}"
        say(f"Established connections still exchanging through B: {figures['flows_survived']}.")
        asked = client.renew()
        renewed = client.wait_lease(asked + 60, after=asked)
        figures["lease_kept"] = renewed.address == lease.address
        say(f"The client renewed its lease with B ({renewed.server}): still {renewed.address}.")
        client.stop()
    return figures
