"""Servers of the lab's fake internet, from the lab's side: how to start each one.

Both TCP servers (whoami and bulk: protocols in worker/servers.py) run as lab
workers inside the internet namespace; the DNS server is dnsmasq on a config of
ours. The lab stops each by PID. ICMP echo to the probe targets needs no
server: the kernel answers for the /32 addresses on ``lo``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from pathlib import Path

from wanwatch.lab.worker import worker_argv
from wanwatch.lab.worker.servers import BULK_PORT, WHOAMI_PORT

DNS_PORT = 53
MAX_SECONDS = 24 * 3600.0  # every lab process is bounded; a day outlasts any lab run


Address = IPv4Address | IPv6Address


def whoami_argv(
    listen: Sequence[Address], port: int = WHOAMI_PORT, max_seconds: float = MAX_SECONDS
) -> list[str]:
    """argv of a whoami server on ``listen`` (run it inside the internet namespace)."""
    return _server_argv("whoami", listen, port, max_seconds)


def bulk_argv(
    listen: Sequence[Address], port: int = BULK_PORT, max_seconds: float = MAX_SECONDS
) -> list[str]:
    """argv of a bulk source/sink server on ``listen`` (run it inside the internet namespace)."""
    return _server_argv("bulk-server", listen, port, max_seconds)


def _server_argv(
    command: str, listen: Sequence[Address], port: int, max_seconds: float
) -> list[str]:
    addresses = [arg for a in listen for arg in ("--listen", str(a))]
    return worker_argv(command, "--port", str(port), *addresses, "--max-seconds", str(max_seconds))


def dns_conf(
    listen: Sequence[Address],
    records: Mapping[str, IPv4Address],
    records6: Mapping[str, IPv6Address] | None = None,
) -> str:
    """dnsmasq configuration of the fake internet's DNS server: our names (A ``records``,
    AAAA ``records6``), nothing else.

    ``no-resolv``/``no-hosts`` keep it from reading the host's resolv.conf and
    /etc/hosts (namespaces share the filesystem); ``bind-interfaces`` with
    explicit ``listen-address`` lets it coexist with other dnsmasq instances
    (docs/lab-notes.md). Names outside ``records`` under the same zones get NXDOMAIN,
    and nothing is forwarded anywhere.
    """
    lines = [
        "# wanwatch lab: fake-internet DNS (written by wanwatch.lab.services)",
        "no-resolv",
        "no-hosts",
        "bind-interfaces",
        f"port={DNS_PORT}",
        "log-queries",
        "log-facility=-",
    ]
    lines += [f"listen-address={a}" for a in listen]
    both: list[tuple[str, Address]] = [*records.items(), *(records6 or {}).items()]
    lines += [f"address=/{name}/{addr}" for name, addr in sorted(both, key=str)]
    # An empty address makes dnsmasq answer NXDOMAIN for the rest of each zone
    # (dnsmasq(8), --address), instead of REFUSED for lack of an upstream server.
    zones = sorted({name.split(".", 1)[1] for name, _ in both if "." in name})
    lines += [f"address=/{zone}/" for zone in zones]
    return "\n".join(lines) + "\n"


# DHCPv6 prefix delegation at an ISP (topology.py: Lab.start_pd): lifetimes short
# enough that a renumbered pool reaches the client within seconds. dhcpd(8) -6
# answers a client that rebinds (T2, RFC 8415 18.2.5) from its current pool, with
# the old prefix at lifetime 0.
PD_RENEW = 4  # T1, seconds (RFC 8415 21.21)
PD_REBIND = 8  # T2
PD_PREFERRED = 30
PD_VALID = 40


def pd_conf(link: IPv6Network, prefix: IPv6Network) -> str:
    """ISC dhcpd's config for ``dhcpd -6`` on an ISP's customer ``link``: its one client
    is delegated ``prefix`` (dhcpd.conf(5), ``prefix6 low high /length``), nothing else."""
    first = prefix.network_address
    return (
        "# wanwatch lab: the ISP's DHCPv6 prefix delegation (written by wanwatch.lab.services)\n"
        f"option dhcp-renewal-time {PD_RENEW};\n"
        f"option dhcp-rebinding-time {PD_REBIND};\n"
        f"preferred-lifetime {PD_PREFERRED};\n"
        f"default-lease-time {PD_VALID};\n"
        f"max-lease-time {PD_VALID};\n"
        f"subnet6 {link} {{\n"
        f"  prefix6 {first} {first} /{prefix.prefixlen};\n"
        "}\n"
    )


def dhcpd6_argv(conf: Path, lease_file: Path, pid_file: Path, ifname: str) -> list[str]:
    """ISC dhcpd as a DHCPv6 server in the foreground (``-f``, log on stderr: ``-d``)
    with our own config, lease and pid files, on ``ifname`` only."""
    return [
        "dhcpd", "-6", "-f", "-d", "-cf", str(conf), "-lf", str(lease_file),
        "-pf", str(pid_file), ifname,
    ]  # fmt: skip


def dnsmasq_argv(conf: Path, pid_file: Path, lease_file: Path) -> list[str]:
    """dnsmasq in the foreground with our own conf, pid and lease files (never the host's)."""
    return [
        "dnsmasq",
        "--keep-in-foreground",
        f"--conf-file={conf}",
        f"--pid-file={pid_file}",
        f"--dhcp-leasefile={lease_file}",
    ]
