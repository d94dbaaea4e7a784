"""The reference office in network namespaces: fake internet, ISPs, router, LAN clients.

::

    [lanN] eth0 ── <lan if> [router] <wan if> ── cust [ispK] uplink ── ispK [inet]
                     (nothing configured)            BCP38, NAT          /32s on lo

One namespace per role, named ``ww<tag>-<role>``: ``inet`` (the fake
internet), ``isp1``.. (one per uplink, config order), ``rtr`` (the router: its
interfaces carry the config's names, and nothing else -- the daemon applies
addresses, routes and rules), ``lan1``.. (one client per LAN).

Each ISP answers toward the router on the config's gateway address, reaches
the internet over its own documentation subnet (uplink 1 in 198.51.100.0/24,
uplink 2 in 203.0.113.0/24), masquerades its customers to its public address
(so a server can tell which ISP a connection came through) and drops customer
packets whose source is not in its customer subnet (BCP38: a packet leaving
through the wrong uplink is caught, not hidden by the ISP's NAT). The ISP's
customer link stays up when its "signal" is cut (faults.py), like an
LTE modem that lost its signal.

The lab runs on its own config, derived from the office config: same uplinks,
LANs and addresses, with every public address replaced by a lab one (probe
targets, DNS). It is written to :attr:`Lab.config_path`.

Nothing is built in the constructor; :meth:`Lab.up` builds, :meth:`Lab.down`
(idempotent) stops every process the lab started by PID and deletes every
namespace by name. The state directory records both, so a lab brought up by
one process (``wanwatch lab up``) can be taken down by another
(:meth:`Lab.attach`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import yaml

from wanwatch.config import Config, format_duration, load, loads
from wanwatch.dynamic import Kind, kind, static_address
from wanwatch.errors import ConfigError, LabError
from wanwatch.lab import netns, services, uplinks

DEFAULT_STATE_ROOT = Path("/run/wanwatch-lab")

# The fake internet: uplink k (config order) reaches it through ISP k on its own
# documentation range (RFC 5737). Never 192.0.2.0/24: the host's own uplink
# lives there (docs/lab-notes.md).
ISP_PUBLIC_NETS = (IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"))
# Host numbers inside each range.
_INET_SIDE = 1  # the internet's address on the ISP link (x.x.x.1/30)
_ISP_PUBLIC = 2  # the ISP's own public address (x.x.x.2/30): customers are NATed to it
_TARGET_BASE = 10  # probe targets of uplink k: .10, .11, ...
_MAX_TARGETS = 40
_DNS_BASE = 53  # DNS servers: .53 in each range, then .54, ...
_WHOAMI = 80  # the whoami server
_LINK_PREFIX = 30

WHOAMI_PORT = services.WHOAMI_PORT

# Interface names inside the lab namespaces (the router's come from the config).
CUST_IF = "cust"  # ISP side of the customer link
UPLINK_IF = "uplink"  # ISP side of its link to the internet
CLIENT_IF = "eth0"  # LAN client's interface

ISP_TABLE = "ww_isp"  # nft table of an ISP's BCP38 filter and NAT (not a fault)
BCP38_COUNTER = "bcp38_drops"


# --------------------------------------------------------------------------- the plan (pure)


@dataclass(frozen=True)
class Isp:
    """The ISP behind one uplink."""

    wan: str
    index: int
    ns: str
    router_if: str  # the uplink's interface in the router namespace (config name)
    gateway: IPv4Interface  # the ISP's address toward the router (config gateway)
    public: IPv4Interface  # the ISP's address in the fake internet
    inet_side: IPv4Interface  # the internet's address on that link
    inet_if: str  # the internet namespace's interface toward this ISP
    targets: tuple[IPv4Address, ...]  # this uplink's probe targets (fake-internet hosts)
    kind: Kind = "static"  # dhcp: the ISP serves DHCP; point-to-point: peer addresses (uplinks.py)
    cust_if: str = CUST_IF
    uplink_if: str = UPLINK_IF

    @property
    def customer_net(self) -> IPv4Network:
        return self.gateway.network


@dataclass(frozen=True)
class Client:
    """The client on one LAN."""

    lan: str
    index: int
    ns: str
    router_if: str  # the LAN's interface in the router namespace (config name)
    network: IPv4Network | None  # the LAN's subnet (None: the config gives no address)
    gateway: IPv4Address | None  # the router's LAN address
    ifname: str = CLIENT_IF

    @property
    def hostname(self) -> str:
        """The DHCP host name this client sends (letters, digits, '-')."""
        return "client-" + re.sub(r"[^a-z0-9-]", "-", self.lan.lower())


@dataclass(frozen=True)
class Topology:
    """Every name and address of one lab, derived from a config; no I/O."""

    tag: str
    inet_ns: str
    router_ns: str
    isps: tuple[Isp, ...]
    clients: tuple[Client, ...]
    whoami: tuple[IPv4Address, ...]  # whoami server addresses, one per ISP range
    dns_servers: tuple[IPv4Address, ...]  # fake-internet DNS server addresses
    dns_records: tuple[tuple[str, IPv4Address], ...]
    dns_map: tuple[tuple[IPv4Address, IPv4Address], ...]  # config DNS address -> lab server

    @property
    def namespaces(self) -> tuple[str, ...]:
        """All namespaces, in creation order."""
        return (
            self.inet_ns,
            *(i.ns for i in self.isps),
            self.router_ns,
            *(c.ns for c in self.clients),
        )

    @property
    def hosts(self) -> tuple[IPv4Address, ...]:
        """Every fake-internet host address (a /32 on the internet's ``lo``)."""
        found = [*self.whoami, *self.dns_servers]
        for isp in self.isps:
            found += isp.targets
        return tuple(dict.fromkeys(found))

    def isp(self, wan: str) -> Isp:
        for i in self.isps:
            if i.wan == wan:
                return i
        raise LabError(f"no uplink named {wan!r} (have: {', '.join(i.wan for i in self.isps)})")

    def client(self, lan: str) -> Client:
        for c in self.clients:
            if c.lan == lan:
                return c
        names = ", ".join(c.lan for c in self.clients)
        raise LabError(f"no LAN named {lan!r} (have: {names})")


def _host(net: IPv4Network, n: int) -> IPv4Address:
    return net.network_address + n


def _is_lab_host(addr: IPv4Address) -> bool:
    return any(addr in n for n in ISP_PUBLIC_NETS)


def plan(cfg: Config, tag: str) -> Topology:
    """The lab's topology for ``cfg``. Pure; the same for the office and its lab config."""
    if len(cfg.wans) > len(ISP_PUBLIC_NETS):
        raise LabError(
            f"the lab has fake-internet ranges for {len(ISP_PUBLIC_NETS)} uplinks; "
            f"the config has {len(cfg.wans)}"
        )
    pre = f"{netns.PREFIX}{tag}-"
    isps = []
    for k, wan in enumerate(cfg.wans):
        net = ISP_PUBLIC_NETS[k]
        if len(wan.probe.targets) > _MAX_TARGETS:
            raise LabError(f"{wan.name}: the lab maps at most {_MAX_TARGETS} probe targets")
        isps.append(
            Isp(
                wan=wan.name,
                index=k,
                ns=f"{pre}isp{k + 1}",
                router_if=wan.interface,
                gateway=uplinks.isp_side(wan, k),
                public=IPv4Interface(f"{_host(net, _ISP_PUBLIC)}/{_LINK_PREFIX}"),
                inet_side=IPv4Interface(f"{_host(net, _INET_SIDE)}/{_LINK_PREFIX}"),
                inet_if=f"isp{k + 1}",
                # Positional, so planning the lab config again gives the same lab.
                targets=tuple(_host(net, _TARGET_BASE + j) for j in range(len(wan.probe.targets))),
                kind=kind(wan),
            )
        )
    clients = tuple(
        Client(
            lan=lan.name,
            index=j,
            ns=f"{pre}lan{j + 1}",
            router_if=lan.interface,
            network=lan.address.network if lan.address is not None else None,
            gateway=lan.address.ip if lan.address is not None else None,
        )
        for j, lan in enumerate(cfg.lans)
    )
    dns_map = _dns_map(cfg)
    dns_servers = tuple(
        dict.fromkeys(
            [_host(n, _DNS_BASE) for n in ISP_PUBLIC_NETS]
            + [lab for _, lab in dns_map]
            + [a for a in _dns_addresses(cfg) if _is_lab_host(a)]
        )
    )
    whoami = tuple(_host(n, _WHOAMI) for n in ISP_PUBLIC_NETS)
    records = (
        ("server.lab.test", whoami[1]),
        ("www.lab.test", whoami[0]),
        ("dns.lab.test", dns_servers[0]),
    )
    return Topology(
        tag=tag,
        inet_ns=f"{pre}inet",
        router_ns=f"{pre}rtr",
        isps=tuple(isps),
        clients=clients,
        whoami=whoami,
        dns_servers=dns_servers,
        dns_records=records,
        dns_map=dns_map,
    )


def _dns_addresses(cfg: Config) -> list[IPv4Address]:
    found = list(cfg.dns.upstream)
    for lan in cfg.lans:
        if lan.dhcp is not None and lan.dhcp.dns is not None:
            found += lan.dhcp.dns
    return list(dict.fromkeys(found))


def _dns_map(cfg: Config) -> tuple[tuple[IPv4Address, IPv4Address], ...]:
    """Each DNS address of the config that lies outside the office and the lab -> a lab server.

    Addresses inside the config's own subnets (the router, a LAN server) and
    fake-internet addresses are kept as they are.
    """
    own = [a.network for w in cfg.wans if (a := static_address(w)) is not None]
    own += [lan.address.network for lan in cfg.lans if lan.address is not None]
    outside = [
        a for a in _dns_addresses(cfg) if not _is_lab_host(a) and not any(a in n for n in own)
    ]
    servers = [
        _host(ISP_PUBLIC_NETS[i % len(ISP_PUBLIC_NETS)], _DNS_BASE + i // len(ISP_PUBLIC_NETS))
        for i in range(len(outside))
    ]
    return tuple(zip(outside, servers, strict=True))


ClientDns = Literal["lab", "router"]


def lab_config_data(cfg: Config, topo: Topology, client_dns: ClientDns = "lab") -> dict[str, Any]:
    """The lab's config as plain YAML data: ``cfg`` with every public address replaced.

    Probe targets become fake-internet hosts of their own ISP's range;
    ``dns.upstream`` and ``lans[].dhcp.dns`` point at the lab's DNS server
    (``client_dns="router"`` drops ``dhcp.dns`` so clients are told to ask the
    router). Everything else, hooks included, is kept.
    """
    data: dict[str, Any] = cfg.to_data(drop_none=True)
    dns_map = {str(a): str(b) for a, b in topo.dns_map}
    for wan, isp in zip(data["wans"], topo.isps, strict=True):
        wan["probe"]["targets"] = [str(t) for t in isp.targets]
    if "dns" in data:
        data["dns"]["upstream"] = [dns_map.get(a, a) for a in data["dns"].get("upstream", [])]
    for lan in data.get("lans", []):
        dhcp = lan.get("dhcp")
        if dhcp is None:
            continue
        # The loader reads a pool as "first-last" and durations in our units.
        dhcp["range"] = "-".join(dhcp["range"])
        dhcp["lease_time"] = format_duration(dhcp["lease_time"])
        if client_dns == "router":
            dhcp.pop("dns", None)
        elif "dns" in dhcp:
            dhcp["dns"] = [dns_map.get(a, a) for a in dhcp["dns"]]
    monitor = cfg.monitor.to_data(drop_none=True, drop_defaults=True)
    if monitor:
        data["monitor"] = monitor
    else:
        data.pop("monitor", None)
    return data


def lab_config_text(cfg: Config, topo: Topology, client_dns: ClientDns = "lab") -> str:
    header = (
        f"# wanwatch lab {topo.tag}: derived from {cfg.source}.\n"
        "# Same uplinks, LANs and addresses; public addresses replaced by fake-internet\n"
        "# hosts (198.51.100.0/24 via the first uplink's ISP, 203.0.113.0/24 via the second).\n"
    )
    body = yaml.safe_dump(lab_config_data(cfg, topo, client_dns), sort_keys=False)
    return header + body


def isp_ruleset(isp: Isp) -> str:
    """nft table of one ISP: BCP38 on the customer port, masquerade toward the internet."""
    net = isp.customer_net
    return f"""\
table ip {ISP_TABLE}
delete table ip {ISP_TABLE}
table ip {ISP_TABLE} {{
    counter {BCP38_COUNTER} {{ }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{isp.cust_if}" ip saddr != {net} counter name "{BCP38_COUNTER}" drop
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{isp.uplink_if}" ip saddr {net} masquerade
    }}
}}
"""


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    """A process the lab started, known by PID and start time; stdout is JSON lines."""

    name: str
    ns: str
    pid: int
    started: int | None
    out: Path
    err: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def alive(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            return False
        return netns.alive(self.pid, self.started)

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to this process, only if it is still the one we started."""
        if not self.alive():
            raise LabError(f"{self.name} (pid {self.pid}) is not running")
        os.kill(self.pid, sig)

    def records(self) -> list[dict[str, Any]]:
        """Every JSON object its stdout holds so far (a torn last line is skipped)."""
        return list(netns.read_records(self.out))

    def stderr(self) -> str:
        try:
            return self.err.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for it to exit; its exit code, or None."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        if self.popen is None:
            return None
        # Gone from /proc's point of view but maybe not reapable yet: a thread-group
        # leader stays a zombie until its other threads have exited, and waitpid()
        # reaps it only then (kernel: delay_group_leader).
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.popen.wait(max(0.1, deadline - time.monotonic()))
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ns": self.ns,
            "pid": self.pid,
            "started": self.started,
            "out": str(self.out),
            "err": str(self.err),
        }


# --------------------------------------------------------------------------- clients


@dataclass(frozen=True)
class Lease:
    """A DHCP lease as the lab's udhcpc script recorded it."""

    lan: str
    event: str  # "bound" or "renew"
    address: IPv4Interface
    router: IPv4Address | None
    dns: tuple[IPv4Address, ...]
    lease_time: int
    server: IPv4Address | None
    domain: str | None
    t: float  # CLOCK_MONOTONIC when the script ran (shared by all namespaces)
    wall: float
    asked: float | None = None  # monotonic: when the client was started or asked to renew

    @property
    def took(self) -> float | None:
        """Seconds from asking to the lease being applied."""
        return None if self.asked is None else self.t - self.asked

    @classmethod
    def from_record(cls, lan: str, rec: Mapping[str, Any]) -> Lease:
        routers = rec.get("router") or []
        return cls(
            lan=lan,
            event=str(rec["event"]),
            address=IPv4Interface(f"{rec['ip']}/{rec['mask']}"),
            router=IPv4Address(routers[0]) if routers else None,
            dns=tuple(IPv4Address(a) for a in rec.get("dns") or []),
            lease_time=int(rec.get("lease") or 0),
            server=IPv4Address(rec["server"]) if rec.get("server") else None,
            domain=rec.get("domain") or None,
            t=float(rec["t"]),
            wall=float(rec["wall"]),
        )


# udhcpc calls this with the event as $1 and the lease in the environment
# (busybox networking/udhcp/dhcpc.c). Unlike the stock scripts it never
# touches /etc/resolv.conf -- namespaces share the host's filesystem -- and
# writes only the file named by WW_LEASE_FILE (and its ".events" log).
_UDHCPC_SCRIPT = '''\
#!{python} -I
"""udhcpc event script of the wanwatch lab: configure the interface, record the lease."""
import dataclasses
import json
import os
import subprocess
import sys
import time

event = sys.argv[1] if len(sys.argv) > 1 else ""
env = os.environ
iface = env.get("interface", "")
out = env["WW_LEASE_FILE"]
rec = {{"event": event, "t": time.monotonic(), "wall": time.time(), "interface": iface}}


def ip(*args):
    subprocess.run(["ip", *args], check=True)


if event == "deconfig":
    ip("-4", "addr", "flush", "dev", iface)
    ip("link", "set", iface, "up")
elif event in ("bound", "renew"):
    addr, mask = env["ip"], env.get("mask", "24")
    routers = env.get("router", "").split()
    rec.update(
        ip=addr,
        mask=int(mask),
        router=routers,
        dns=env.get("dns", "").split(),
        lease=int(env.get("lease") or 0),
        server=env.get("serverid"),
        domain=env.get("domain"),
    )
    have = json.loads(
        subprocess.run(
            ["ip", "-j", "-4", "addr", "show", "dev", iface],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    for link in have:
        for a in link.get("addr_info", []):
            if a.get("local") != addr:
                ip("addr", "del", "%s/%s" % (a["local"], a["prefixlen"]), "dev", iface)
    ip("addr", "replace", "%s/%s" % (addr, mask), "dev", iface)
    if routers:
        ip("route", "replace", "default", "via", routers[0], "dev", iface)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f)
    os.replace(tmp, out)
with open(out + ".events", "a") as f:
    f.write(json.dumps(rec) + "\\n")
'''


class DhcpClient:
    """A running busybox udhcpc in a LAN client's namespace (renews until stopped)."""

    def __init__(self, lab: Lab, lan: str, proc: Proc, lease_file: Path, started: float) -> None:
        self.lab = lab
        self.lan = lan
        self.proc = proc
        self.lease_file = lease_file
        self.started = started  # monotonic, just before udhcpc was started

    def lease(self) -> Lease | None:
        """The latest lease recorded, or None."""
        try:
            rec = json.loads(self.lease_file.read_text())
        except FileNotFoundError:
            return None
        return Lease.from_record(self.lan, rec)

    def wait_lease(self, deadline: float, after: float | None = None) -> Lease:
        """The first lease recorded after monotonic ``after`` (default: since this client
        started); LabError at monotonic ``deadline`` or if udhcpc exits without one."""
        after = self.started if after is None else after
        while True:
            running = self.proc.alive()  # read before the lease: it may exit right after
            lease = self.lease()
            if lease is not None and lease.t > after:
                return dataclasses.replace(lease, asked=after)
            if not running:
                raise LabError(f"{self.lan}: udhcpc exited: {self.proc.stderr()[-500:]}")
            if time.monotonic() >= deadline:
                raise LabError(
                    f"{self.lan}: no DHCP lease recorded by the deadline; "
                    f"udhcpc says: {self.proc.stderr()[-500:]}"
                )
            time.sleep(0.01)

    def events(self) -> list[dict[str, Any]]:
        """Every event the script saw (deconfig, bound, renew, nak, leasefail)."""
        return list(netns.read_records(Path(str(self.lease_file) + ".events")))

    def renew(self) -> float:
        """Ask for a renewal now (udhcpc SIGUSR1); returns when it was asked.

        Only once bound: before udhcpc installs its handler, SIGUSR1 kills it.
        """
        lease = self.lease()
        if lease is None or lease.t <= self.started:
            raise LabError(f"{self.lan}: no lease yet, nothing to renew (wait_lease first)")
        t = time.monotonic()
        self.proc.send_signal(signal.SIGUSR1)
        return t

    def stop(self) -> None:
        self.lab.stop_proc(self.proc)


# --------------------------------------------------------------------------- the lab


@dataclass(frozen=True)
class LinkState:
    admin_up: bool
    carrier: bool
    operstate: str


class Lab:
    """The reference office in namespaces. ``with Lab(cfg) as lab:`` builds and always removes it.

    ``config`` is the office config (e.g. examples/office.yaml); the lab's own
    derived config is written to :attr:`config_path` by :meth:`up`.
    """

    def __init__(
        self,
        config: Config,
        *,
        tag: str | None = None,
        state_root: Path = DEFAULT_STATE_ROOT,
        client_dns: ClientDns = "lab",
        remove_state: bool = True,
    ) -> None:
        self.config = config
        self.tag = tag or netns.run_tag()
        self.topology = plan(config, self.tag)
        self.state_dir = Path(state_root) / self.tag
        self.client_dns: ClientDns = client_dns
        self.remove_state = remove_state
        self.config_text = lab_config_text(config, self.topology, client_dns)
        try:
            self.lab_config = loads(self.config_text, str(self.config_path))
        except ConfigError as exc:
            raise LabError(f"the derived lab config does not validate:\n{exc}") from exc
        self._procs: list[Proc] = []
        self._owned: list[str] = []  # namespaces this lab created (or recorded as created)
        self._serial = 0
        self.whoami: Proc | None = None
        self.dns: Proc | None = None

    # ---------------------------------------------------------------- names

    @property
    def config_path(self) -> Path:
        """The lab's config (what ``wanwatch run -c`` is given in the router namespace)."""
        return self.state_dir / "office-lab.yaml"

    @property
    def router_ns(self) -> str:
        return self.topology.router_ns

    @property
    def inet_ns(self) -> str:
        return self.topology.inet_ns

    @property
    def namespaces(self) -> tuple[str, ...]:
        return self.topology.namespaces

    def isp(self, wan: str) -> Isp:
        return self.topology.isp(wan)

    def client(self, lan: str) -> Client:
        return self.topology.client(lan)

    def ns_for(self, who: str) -> str:
        """Namespace of ``who``: a LAN name (its client), an uplink name (its ISP),
        ``"router"``, ``"inet"``, or one of the lab's namespace names."""
        if who == "router":
            return self.router_ns
        if who == "inet":
            return self.inet_ns
        for c in self.topology.clients:
            if who == c.lan:
                return c.ns
        for i in self.topology.isps:
            if who == i.wan:
                return i.ns
        if who in self.namespaces:
            return who
        raise LabError(f"{who!r} is no LAN, uplink, 'router', 'inet' or namespace of this lab")

    def isp_of(self, address: IPv4Address | str) -> str | None:
        """Uplink name whose ISP owns ``address`` (its public or gateway address), or None."""
        a = IPv4Address(str(address))
        for i in self.topology.isps:
            if a in (i.public.ip, i.gateway.ip):
                return i.wan
        return None

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> Self:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self) -> Self:
        """Build every namespace, link, address, ISP filter and fake-internet service.

        A no-op when already up. Refuses (touching nothing) if a namespace of the
        same name exists: it is not ours to build on or to delete.
        """
        if self._owned:
            return self
        taken = set(self.namespaces) & netns.existing()
        if taken:
            raise LabError(f"namespaces already exist, not ours: {', '.join(sorted(taken))}")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "run").mkdir(exist_ok=True)
        (self.state_dir / "dhcp").mkdir(exist_ok=True)
        self.config_path.write_text(self.config_text)
        try:
            load(self.config_path)  # the file as written, not just the text, must load
        except ConfigError as exc:
            raise LabError(f"{self.config_path} does not validate:\n{exc}") from exc
        try:
            self._build()
            self._start_services()
        except BaseException:
            self.down()
            raise
        return self

    def _build(self) -> None:
        topo = self.topology
        for ns in self.namespaces:
            netns.create(ns)
            # Recorded as soon as it exists, so a down() (from here or from another
            # process) after a failed up() deletes exactly what was made.
            self._owned.append(ns)
            self._save()
        inet_cmds: list[str] = []
        for isp in topo.isps:
            netns.veth(isp.ns, isp.uplink_if, topo.inet_ns, isp.inet_if)
            self._plug_router(isp.ns, isp.cust_if, isp.router_if)
            netns.batch(
                isp.ns,
                [
                    f"addr add {isp.public} dev {isp.uplink_if}",
                    *uplinks.cust_commands(isp),
                    f"route add default via {isp.inet_side.ip} dev {isp.uplink_if}",
                ],
            )
            netns.sysctl(isp.ns, {"net.ipv4.ip_forward": 1})
            netns.nft(isp.ns, isp_ruleset(isp))
            inet_cmds.append(f"addr add {isp.inet_side} dev {isp.inet_if}")
        inet_cmds += [f"addr add {h}/32 dev lo" for h in topo.hosts]
        netns.batch(topo.inet_ns, inet_cmds)
        for c in topo.clients:
            self._plug_router(c.ns, c.ifname, c.router_if)
        uplinks.build(self)

    def _plug_router(self, ns: str, ifname: str, router_if: str) -> None:
        """Link ``ifname`` in ``ns`` to the router's ``router_if`` (a router pair: a switch)."""
        netns.veth(ns, ifname, self.router_ns, router_if)

    def _start_services(self) -> None:
        topo = self.topology
        self.whoami = self.spawn(topo.inet_ns, services.whoami_argv(topo.whoami), "whoami")
        conf = self.state_dir / "dns.conf"
        conf.write_text(services.dns_conf(topo.dns_servers, dict(topo.dns_records)))
        pid_file = self.state_dir / "dns.pid"
        self.dns = self.spawn(
            topo.inet_ns,
            services.dnsmasq_argv(conf, pid_file, self.state_dir / "dns.leases"),
            "dns",
        )
        deadline = time.monotonic() + 10
        whoami, dns = self.whoami, self.dns
        while not any(r.get("ev") == "listening" for r in whoami.records()):
            self._check_started(whoami, deadline)
        # dnsmasq writes its pid file after binding its sockets (dnsmasq.c: the
        # listeners are created before the pid file is written).
        while not pid_file.exists():
            self._check_started(dns, deadline)

    @staticmethod
    def _check_started(proc: Proc, deadline: float) -> None:
        if not proc.alive():
            raise LabError(f"{proc.name} exited at start: {proc.stderr()[-1000:]}")
        if time.monotonic() > deadline:
            raise LabError(f"{proc.name} not ready after 10 s: {proc.stderr()[-1000:]}")
        time.sleep(0.01)

    def down(self) -> None:
        """Stop every process the lab started (by PID), delete every namespace (by name).

        Idempotent, and carries on past a failure so that everything it can
        remove is removed; then raises LabError naming what failed.
        """
        problems: list[str] = []
        for proc in reversed(self._procs):
            try:
                netns.stop(proc.pid, proc.started, proc.popen)
            except OSError as exc:
                problems.append(f"stopping {proc.name} (pid {proc.pid}): {exc}")
        self._procs.clear()
        for ns in reversed(self._owned):
            try:
                netns.delete(ns)
            except (LabError, OSError, subprocess.TimeoutExpired) as exc:
                problems.append(f"deleting namespace {ns}: {exc}")
        left = set(self._owned) & netns.existing()
        self._owned.clear()
        if left:
            problems.append(f"namespaces still present: {', '.join(sorted(left))}")
        if self.remove_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        elif self.state_dir.exists():
            self._save()
        if problems:
            raise LabError("lab down: " + "; ".join(problems))

    # ---------------------------------------------------------------- state

    def _save(self) -> None:
        state = {
            "tag": self.tag,
            "source": self.config.source,
            "config": str(self.config_path),
            "client_dns": self.client_dns,
            "namespaces": list(self._owned),
            "procs": [p.to_json() for p in self._procs],
            "serial": self._serial,
        }
        tmp = self.state_dir / "lab.json.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_dir / "lab.json")

    @classmethod
    def attach(cls, state_dir: Path) -> Lab:
        """The lab recorded in ``state_dir`` (built by another process), to drive or take down."""
        try:
            state = json.loads((Path(state_dir) / "lab.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise LabError(f"{state_dir}: no lab state: {exc}") from exc
        try:
            cfg = load(state["config"])
        except ConfigError as exc:
            raise LabError(f"{state['config']}: {exc}") from exc
        lab = cls(
            cfg,
            tag=state["tag"],
            state_root=Path(state_dir).parent,
            client_dns=state.get("client_dns", "lab"),
        )
        if not set(state["namespaces"]) <= set(lab.namespaces):
            raise LabError(f"{state_dir}: recorded namespaces do not match the recorded config")
        lab._owned = list(state["namespaces"])
        for p in state["procs"]:
            proc = Proc(p["name"], p["ns"], p["pid"], p["started"], Path(p["out"]), Path(p["err"]))
            lab._procs.append(proc)
            lab.whoami = proc if proc.name == "whoami" else lab.whoami
            lab.dns = proc if proc.name == "dns" else lab.dns
        lab._serial = int(state.get("serial", len(lab._procs)))
        return lab

    @staticmethod
    def running(state_root: Path = DEFAULT_STATE_ROOT) -> list[Path]:
        """State directories of labs recorded under ``state_root``."""
        if not state_root.is_dir():
            return []
        return sorted(p.parent for p in state_root.glob("*/lab.json"))

    # ---------------------------------------------------------------- processes

    def spawn(
        self, ns: str, argv: Sequence[str], name: str, env: Mapping[str, str] | None = None
    ) -> Proc:
        """Start ``argv`` inside lab namespace ``ns``; :meth:`down` stops it by PID.

        stdout goes to ``run/<name>-<n>.jsonl``, stderr to ``.err`` in the state dir.
        """
        if ns not in self.namespaces:
            raise LabError(f"{ns!r} is not a namespace of this lab")
        self._serial += 1
        base = self.state_dir / "run" / f"{name}-{self._serial}"
        out, err = base.with_suffix(".jsonl"), base.with_suffix(".err")
        with out.open("wb") as fo, err.open("wb") as fe:
            # `ip netns exec` execs the command after setns(), so the PID we
            # record is the command's own.
            popen = subprocess.Popen(
                netns.ns_argv(ns, argv),
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                start_new_session=True,  # a Ctrl-C to the caller reaches us, not it
                env={**os.environ, **env} if env else None,
            )
        proc = Proc(name, ns, popen.pid, netns.start_time(popen.pid), out, err, popen)
        self._procs.append(proc)
        self._save()
        return proc

    def stop_proc(self, proc: Proc) -> None:
        """Stop one process this lab started (SIGTERM, then SIGKILL) and forget it."""
        netns.stop(proc.pid, proc.started, proc.popen)
        if proc in self._procs:
            self._procs.remove(proc)
            self._save()

    @property
    def procs(self) -> tuple[Proc, ...]:
        return tuple(self._procs)

    # ---------------------------------------------------------------- inspection

    def link_state(self, who: str, ifname: str) -> LinkState:
        """Admin state and carrier of ``ifname`` in ``who``'s namespace (see :meth:`ns_for`)."""
        info = netns.link(self.ns_for(who), ifname)
        flags = set(info.get("flags", []))
        return LinkState(
            admin_up="UP" in flags,
            carrier="LOWER_UP" in flags and "NO-CARRIER" not in flags,
            operstate=str(info.get("operstate", "UNKNOWN")),
        )

    def bcp38_drops(self, wan: str) -> int:
        """Customer packets the ISP of ``wan`` dropped for a foreign source address."""
        items = netns.nft_json(self.isp(wan).ns, "counter", "ip", ISP_TABLE, BCP38_COUNTER)
        for item in items:
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise LabError(f"{wan}: BCP38 counter not found")

    # ---------------------------------------------------------------- LAN clients

    def client_static(
        self, lan: str, address: IPv4Interface | None = None, gateway: IPv4Address | None = None
    ) -> IPv4Interface:
        """Give the LAN's client a static address (default: host .100) and default route."""
        c = self.client(lan)
        if address is None:
            if c.network is None:
                raise LabError(f"LAN {lan} has no address in the config: give one")
            address = IPv4Interface(f"{c.network.network_address + 100}/{c.network.prefixlen}")
        gw = gateway or c.gateway
        if gw is None:
            raise LabError(f"LAN {lan} has no router address in the config: give a gateway")
        netns.batch(
            c.ns,
            [
                f"addr flush dev {c.ifname} scope global",
                f"addr add {address} dev {c.ifname}",
                f"route replace default via {gw} dev {c.ifname}",
            ],
        )
        return address

    def udhcpc_script(self) -> Path:
        """Our udhcpc event script (written on first use)."""
        path = self.state_dir / "udhcpc-script"
        if not path.exists():
            path.write_text(_UDHCPC_SCRIPT.format(python=sys.executable))
            path.chmod(0o755)
        return path

    def dhcp_client(self, lan: str, *, once: bool = False, tries: int = 10) -> DhcpClient:
        """Start busybox udhcpc in the LAN's client namespace with our script.

        ``once``: exit after the first lease (``-q``), else keep renewing until
        stopped. Gives up after ``tries`` discovers one second apart.
        """
        c = self.client(lan)
        lease_file = self.state_dir / "dhcp" / f"{c.lan}.json"
        argv = [
            "busybox",
            "udhcpc",
            "-f",  # foreground: we hold its PID
            "-i",
            c.ifname,
            "-s",
            str(self.udhcpc_script()),
            "-t",
            str(tries),
            "-T",
            "1",
            "-n",  # exit when no lease after the tries, instead of retrying for ever
            "-x",
            f"hostname:{c.hostname}",
        ]
        if once:
            argv.append("-q")
        started = time.monotonic()
        proc = self.spawn(c.ns, argv, f"udhcpc-{c.lan}", env={"WW_LEASE_FILE": str(lease_file)})
        return DhcpClient(self, c.lan, proc, lease_file, started)

    def dhcp_lease(self, lan: str, timeout: float = 10.0) -> Lease:
        """Get one lease for the LAN's client by real DHCP; the client keeps the address."""
        client = self.dhcp_client(lan, once=True, tries=max(1, int(timeout)))
        try:
            return client.wait_lease(client.started + timeout)
        finally:
            client.stop()
