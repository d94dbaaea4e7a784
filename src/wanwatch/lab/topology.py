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
uplink 2 in 203.0.113.0/24; with three or four uplinks, a /25 of them each:
lab/plan.py ``public_nets``), masquerades its customers to its public address
(so a server can tell which ISP a connection came through) and drops customer
packets whose source is not in its customer subnet (BCP38: a packet leaving
through the wrong uplink is caught, not hidden by the ISP's NAT). The ISP's
customer link stays up when its "signal" is cut (faults.py), like an
LTE modem that lost its signal.

IPv6 (2001:db8::/32 only, lab/plan.py): each ISP owns a /48, routes it
untranslated (real ISPs do not NAT IPv6), applies BCP38 to it too, routes the
prefix it gives its customer (prefix6) to the router's link-local address, and
sends router advertisements when the uplink's ``address6`` is ``auto``, and
delegates prefixes of it by DHCPv6 (ISC ``dhcpd -6``) when the uplink has
``dhcp6`` (:meth:`Lab.start_pd`, :meth:`Lab.renumber_pd`). The fake internet's
servers answer on IPv6 as on IPv4 (whoami, DNS with AAAA records, echo).

The lab runs on its own config, derived from the office config: same uplinks,
LANs and addresses, with every public address replaced by a lab one (probe
targets, DNS). It is written to :attr:`Lab.config_path`.

Nothing is built in the constructor; :meth:`Lab.up` builds, :meth:`Lab.down`
(idempotent) stops every process the lab started by PID and deletes every
namespace by name. The state directory records both, so a lab brought up by
one process (``wanwatch lab up``) can be taken down by another
(:meth:`Lab.attach`).

The parts, each importing only those before it: plan.py (the addressing
plan, pure), procs.py (processes and DHCP clients) and uplinks.py (uplinks that
are not static), this module (the Lab that builds, runs and removes it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
)
from pathlib import Path
from types import TracebackType
from typing import Self

from wanwatch.config import Config, load, loads
from wanwatch.errors import ConfigError, LabError
from wanwatch.lab import netns, services, uplinks
from wanwatch.lab.plan import (
    BCP38_COUNTER,
    DEFAULT_STATE_ROOT,
    ISP_TABLE,
    Client,
    ClientDns,
    Isp,
    isp_ruleset,
    lab_config_text,
    plan,
)
from wanwatch.lab.procs import DhcpClient, Lease, Proc

SERVICE_READY = 10.0  # seconds a fake-internet server may take to start (it takes ~0.1)

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
        self._sigterm = False  # __enter__ made SIGTERM interrupt the program
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

    def isp_of(self, address: IPv4Address | IPv6Address | str) -> str | None:
        """Uplink name whose ISP owns ``address``, or None: its public or gateway IPv4
        address (the ISP masquerades), or any IPv6 address of its /48 (it routes)."""
        a = ip_address(str(address))
        for i in self.topology.isps:
            if a in (i.public.ip, i.gateway.ip) or a in i.net6:
                return i.wan
        return None

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> Self:
        # A SIGTERM (a CI timeout, `kill`) ends a program as Ctrl-C does, through
        # __exit__, so the lab it holds is removed instead of left running.
        in_main = threading.current_thread() is threading.main_thread()
        self._sigterm = in_main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        if self._sigterm:
            signal.signal(signal.SIGTERM, _interrupt)
        try:
            return self.up()  # a failed up() removes what it built, and __exit__ is not called
        except BaseException:
            self._default_sigterm()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.down()
        finally:
            self._default_sigterm()

    def _default_sigterm(self) -> None:
        if self._sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self._sigterm = False

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
            # Before any IPv6 address: forwarding on makes the ISP a router (it never
            # takes the office's RAs), and the addresses below are usable at once
            # (nodad: no duplicate address detection on links only we built).
            netns.sysctl(isp.ns, {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1})
            netns.batch(
                isp.ns,
                [
                    f"addr add {isp.public} dev {isp.uplink_if}",
                    f"addr add {isp.public6} dev {isp.uplink_if} nodad",
                    *uplinks.cust_commands(isp),
                    f"route add default via {isp.inet_side.ip} dev {isp.uplink_if}",
                    f"route add default via {isp.inet_side6.ip} dev {isp.uplink_if}",
                ],
            )
            netns.nft(isp.ns, isp_ruleset(isp))
            inet_cmds += [
                f"addr add {isp.inet_side} dev {isp.inet_if}",
                f"addr add {isp.inet_side6} dev {isp.inet_if} nodad",
                f"route add {isp.net6} via {isp.public6.ip} dev {isp.inet_if}",
            ]
        inet_cmds += [f"addr add {h}/32 dev lo" for h in topo.hosts]
        inet_cmds += [f"addr add {h}/128 dev lo" for h in topo.hosts6]
        netns.batch(topo.inet_ns, inet_cmds)
        for c in topo.clients:
            self._plug_router(c.ns, c.ifname, c.router_if)
        uplinks.build(self)

    def _plug_router(self, ns: str, ifname: str, router_if: str) -> None:
        """Link ``ifname`` in ``ns`` to the router's ``router_if`` (a router pair: a switch)."""
        netns.veth(ns, ifname, self.router_ns, router_if)

    def _start_services(self) -> None:
        topo = self.topology
        listen: list[services.Address] = [*topo.whoami, *topo.whoami6]
        self.whoami = self.spawn(topo.inet_ns, services.whoami_argv(listen), "whoami")
        conf = self.state_dir / "dns.conf"
        listen_dns: list[services.Address] = [*topo.dns_servers, *topo.dns_servers6]
        conf.write_text(
            services.dns_conf(listen_dns, dict(topo.dns_records), dict(topo.dns_records6))
        )
        pid_file = self.state_dir / "dns.pid"
        self.dns = self.spawn(
            topo.inet_ns,
            services.dnsmasq_argv(conf, pid_file, self.state_dir / "dns.leases"),
            "dns",
        )
        for isp in topo.isps:
            if isp.delegates is not None:
                self.start_pd(isp.wan)
        whoami, dns = self.whoami, self.dns
        whoami.wait_ready(lambda: whoami.reported("listening"), SERVICE_READY, "listening")
        # dnsmasq writes its pid file after binding its sockets (dnsmasq.c: the
        # listeners are created before the pid file is written).
        dns.wait_ready(pid_file.exists, SERVICE_READY, "its pid file")

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

    def pd_pool(self, wan: str, pool: int) -> IPv6Network:
        """The prefix the ISP of ``wan`` delegates from its pool ``pool`` (0 first,
        1 after :meth:`renumber_pd`): one prefix of its routed /56 (plan.py)."""
        isp = self.topology.isp(wan)
        if isp.delegates is None:
            raise LabError(f"{wan}: its ISP delegates no prefix (the uplink has no dhcp6)")
        found = list(isp.routed6.subnets(new_prefix=isp.delegates))[pool : pool + 1]
        if not found:
            raise LabError(f"{wan}: a /{isp.delegates} leaves no other prefix to renumber to")
        return found[0]

    def start_pd(self, wan: str, pool: int = 0) -> Proc:
        """The ISP of ``wan`` delegates :meth:`pd_pool` ``pool`` by DHCPv6 on its customer
        port; wait until it serves. Its lease file starts empty, so the server is a new
        one to the client (a new server DUID): the client's renewals to the old one go
        unanswered and its rebind (T2) takes what the new server gives."""
        isp = self.topology.isp(wan)
        base = self.state_dir / f"pd-{wan}"
        conf, leases, pid_file = (base.with_suffix(s) for s in (".conf", ".leases", ".pid"))
        conf.write_text(services.pd_conf(isp.customer_net6, self.pd_pool(wan, pool)))
        leases.write_text("")  # dhcpd refuses to start without its lease file
        proc = self.spawn(
            isp.ns, services.dhcpd6_argv(conf, leases, pid_file, isp.cust_if), f"pd-{wan}"
        )
        proc.wait_ready(
            lambda: "Server starting service" in proc.stderr(), SERVICE_READY, "serving"
        )
        return proc

    def renumber_pd(self, wan: str) -> IPv6Network:
        """The ISP of ``wan`` renumbers: its server restarts on the next pool; that prefix."""
        proc = next((p for p in self._procs if p.name == f"pd-{wan}"), None)
        if proc is not None:
            self.stop_proc(proc)
        self.start_pd(wan, 1)
        return self.pd_pool(wan, 1)

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
        items = netns.nft_json(self.isp(wan).ns, "counter", "inet", ISP_TABLE, BCP38_COUNTER)
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

    def client_addresses6(self, lan: str) -> list[IPv6Interface]:
        """The global IPv6 addresses of the LAN's client that are usable (DAD done),
        e.g. those SLAAC formed from the router's RAs."""
        c = self.client(lan)
        shown = netns.ip("-j", "-6", "-n", c.ns, "addr", "show", "dev", c.ifname, "scope", "global")
        return [
            IPv6Interface(f"{a['local']}/{a['prefixlen']}")
            for link in json.loads(shown.stdout)
            for a in link["addr_info"]
            if "local" in a and not a.get("tentative")
        ]

    def dhcp_client(self, lan: str, *, once: bool = False, tries: int = 10) -> DhcpClient:
        """Start busybox udhcpc in the LAN's client namespace (see :meth:`DhcpClient.start`)."""
        return DhcpClient.start(self, self.client(lan), once=once, tries=tries)

    def dhcp_lease(self, lan: str, timeout: float = 10.0) -> Lease:
        """Get one lease for the LAN's client by real DHCP; the client keeps the address."""
        client = self.dhcp_client(lan, once=True, tries=max(1, int(timeout)))
        try:
            return client.wait_lease(client.started + timeout)
        finally:
            client.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
