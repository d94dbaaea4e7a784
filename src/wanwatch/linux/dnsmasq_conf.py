"""dnsmasq's configuration: files in the state directory, render (pure), check.

:func:`render` turns a config into dnsmasq.conf text (golden-tested);
:func:`check` runs ``dnsmasq --test`` on a file before it is ever used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wanwatch.config.ipv6 import ipv6_lans, lan_address6
from wanwatch.errors import DnsmasqError
from wanwatch.linux.dnsmasq_log import strip_prefix
from wanwatch.linux.supervisor import config_test

if TYPE_CHECKING:
    from wanwatch.config import Config, Lan

# --------------------------------------------------------------------------- files and tunables

CONF_FILE = "dnsmasq.conf"
LEASE_FILE = "dnsmasq.leases"
PID_FILE = "dnsmasq.pid"

# Names cached by the forwarder. dnsmasq's default of 150 is sized for one host;
# an office of a few dozen clients browsing asks for thousands of names.
CACHE_SIZE = 1000

TEST_TIMEOUT = 10.0  # dnsmasq --test
# Valid lifetime of a LAN prefix in the RAs (seconds); dnsmasq advertises it as the
# preferred lifetime too and re-advertises well inside it.
RA_LIFETIME = 3600


@dataclass(frozen=True)
class DnsmasqFiles:
    """Where dnsmasq's files live inside the state directory."""

    state_dir: Path
    conf: Path
    candidate: Path  # a new config waiting for `dnsmasq --test`
    leases: Path
    pid: Path

    @classmethod
    def under(cls, state_dir: Path) -> DnsmasqFiles:
        return cls(
            state_dir=state_dir,
            conf=state_dir / CONF_FILE,
            candidate=state_dir / (CONF_FILE + ".new"),
            leases=state_dir / LEASE_FILE,
            pid=state_dir / PID_FILE,
        )


# --------------------------------------------------------------------------- rendering


def idle_reason(config: Config) -> str | None:
    """Why dnsmasq has nothing to serve for ``config``, or None when it should run."""
    if not config.lans:
        return "no LAN"
    if not config.dns.upstream and all(
        lan.dhcp is None and lan_address6(lan) is None for lan in config.lans
    ):
        return "no LAN has dhcp or address6 and dns.upstream is empty"
    return None


def lan_tag(lan: Lan) -> str:
    """The dnsmasq tag of a LAN's pool. Prefixed: "known" is a tag dnsmasq sets itself."""
    return f"lan-{lan.name}"


def render(config: Config, state_dir: Path) -> str:
    """The dnsmasq.conf for ``config``: pure text, no I/O.

    Raises DnsmasqError when the state directory cannot be written into
    dnsmasq's config syntax (a quote or whitespace in its path).
    """
    files = DnsmasqFiles.under(state_dir)
    for path in (files.pid, files.leases):
        if any(c == '"' or c.isspace() for c in str(path)):
            raise DnsmasqError(f"{path}: dnsmasq's config cannot name a path with quotes or spaces")
    out = [
        "# dnsmasq for wanwatch: generated, rewritten on every start and reload.",
        "# Run as: dnsmasq --keep-in-foreground --log-facility=- --conf-file=<this file>",
        "",
        "# Our files only, in the state directory (never /etc/dnsmasq.conf, /run).",
        f"pid-file={files.pid}",
        f"dhcp-leasefile={files.leases}",
        "",
        "# Serve the LANs only: never an uplink, never lo (a host resolver may own",
        "# 127.0.0.1:53). bind-dynamic binds each LAN address (several instances can",
        "# share a machine), follows addresses and interfaces that appear later, and",
        "# drops queries that arrive on any other interface, even when addressed to a",
        "# LAN address (bind-interfaces answered those in the lab).",
        "bind-dynamic",
        *(f"interface={lan.interface}" for lan in config.lans),
        "except-interface=lo",
        "",
        "# DNS: a caching forwarder to dns.upstream only, through whichever uplink",
        "# carries traffic (the main routing table). Never the host's resolv.conf or",
        "# /etc/hosts: the router's own names and resolvers are not the LAN's.",
        "no-resolv",
        "no-hosts",
        "domain-needed",
        "bogus-priv",
        f"cache-size={CACHE_SIZE}",
        *(f"server={server}" for server in config.dns.upstream),
    ]
    if config.dns.domain is not None:
        out += [
            "",
            "# DHCP clients' names resolve as NAME and NAME.DOMAIN; the domain is",
            "# answered here only, never asked upstream.",
            f"domain={config.dns.domain}",
            f"local=/{config.dns.domain}/",
        ]
    out += _nftsets(config)
    dhcp_lans = [lan for lan in config.lans if lan.dhcp is not None]
    if dhcp_lans:
        out += [
            "",
            "# DHCP. Authoritative: the only DHCP server on these LANs, so a client",
            "# renewing a lease we lost is answered instead of ignored. no-ping: the",
            "# ping before each offer makes the first lease take ~3 s (measured in the lab);",
            "# clients check the address themselves (RFC 2131 4.4.1, DHCPDECLINE).",
            "dhcp-authoritative",
            "no-ping",
            f"dhcp-lease-max={_lease_max(dhcp_lans)}",
        ]
    for lan in dhcp_lans:
        out += ["", *_render_lan(lan)]
    out += _render_ipv6(config)
    return "\n".join(out) + "\n"


def _render_ipv6(config: Config) -> list[str]:
    """Router advertisements and stateless DHCPv6 on every LAN with IPv6 (docs/ipv6.md).

    SLAAC gives the address (RFC 4862), the RA the router and, in its RDNSS and
    DNSSL options (RFC 8106), the DNS; stateless DHCPv6 (RFC 8415 section 6.1)
    answers the same DNS to clients that ask it instead (the RA's O flag). The
    DNS server is the router's own address on the LAN, so the forwarder answers
    AAAA and A alike.
    """
    lans = ipv6_lans(config)
    if not lans:
        return []
    out = [
        "",
        "# IPv6: router advertisements on the LANs below only (interface= lines above).",
        "enable-ra",
    ]
    for lan, own in lans:
        tag = lan_tag(lan) + "-v6"
        # constructor: the prefix is the one the router has on the interface (the
        # backend adds it); ra-stateless: SLAAC plus DHCPv6 for options only, no
        # addresses leased (dnsmasq(8), --dhcp-range). ra-names: a dual-stack
        # client's SLAAC address gets the name of its DHCPv4 lease (AAAA here).
        modes = "ra-stateless,ra-names" if lan.dhcp is not None else "ra-stateless"
        out += [
            f"# LAN {lan.name} on {lan.interface}: {own.network}",
            f"dhcp-range=set:{tag},::,constructor:{lan.interface},{modes},{RA_LIFETIME}",
            f"dhcp-option=tag:{tag},option6:dns-server,[{own.ip}]",
        ]
        if config.dns.domain is not None:
            out.append(f"dhcp-option=tag:{tag},option6:domain-search,{config.dns.domain}")
    return out


def _nftsets(config: Config) -> list[str]:
    """A ``domains`` rule's names: dnsmasq adds each address it answers for them (and
    for every name under them) to the rule's set in our table before the answer
    leaves, so the client's first connection already matches (docs/rules.md)."""
    from wanwatch.config.matches import families
    from wanwatch.footprint import NFT_FAMILY, NFT_TABLE
    from wanwatch.linux.rules_nft import dom_set

    # dnsmasq(8) --nftset: one comma-separated entry per family, 4# for A and 6# for AAAA
    lines = [
        f"nftset=/{'/'.join(r.domains)}/"
        + ",".join(f"{f}#{NFT_FAMILY}#{NFT_TABLE}#{dom_set(i + 1, f)}" for f in families(config))
        for i, r in enumerate(config.rules)
        if r.domains
    ]
    if not lines:
        return []
    return [
        "",
        "# Policy rules' domains -> their sets in table inet wanwatch (rules_nft.py).",
        *lines,
    ]


def _render_lan(lan: Lan) -> list[str]:
    dhcp = lan.dhcp
    if dhcp is None:
        return []
    tag = lan_tag(lan)
    lo, hi = dhcp.range
    # Without a configured address the LAN uses whatever its interface has:
    # dnsmasq then takes the netmask from the interface, and 0.0.0.0 in an
    # option means "this server's address on that interface" (man dnsmasq).
    own = str(lan.address.ip) if lan.address is not None else "0.0.0.0"
    mask = f",{lan.address.netmask}" if lan.address is not None else ""
    dns = own if dhcp.dns is None else ",".join(str(a) for a in dhcp.dns)
    lines = [
        f"# LAN {lan.name} on {lan.interface}",
        f"dhcp-range=set:{tag},{lo},{hi}{mask},{int(dhcp.lease_time)}",
        f"dhcp-option=tag:{tag},option:router,{own}",
        # An empty list renders as an option without data: no DNS option is sent.
        f"dhcp-option=tag:{tag},option:dns-server" + (f",{dns}" if dns else ""),
    ]
    for s in dhcp.static:
        lines.append(f"dhcp-host={s.mac},{s.address}" + (f",{s.hostname}" if s.hostname else ""))
    return lines


def _lease_max(lans: list[Lan]) -> int:
    """Every pool address plus every static lease (dnsmasq's default cap is 1000)."""
    total = 0
    for lan in lans:
        if lan.dhcp is not None:
            lo, hi = lan.dhcp.range
            total += max(int(hi) - int(lo) + 1, 0) + len(lan.dhcp.static)
    return total


# --------------------------------------------------------------------------- validation


def command(binary: str, conf: Path) -> list[str]:
    """argv of the supervised dnsmasq: foreground, log to stderr, only our config file.

    Not ``--log-dhcp``: it adds ~20 lines per DHCP message (measured: 80 for one
    lease), which would flush the daemon's bounded event ring; the plain log
    already names every DISCOVER/OFFER/REQUEST/ACK with address, MAC and name.
    Not ``--log-async`` either: measured here, it does not stop dnsmasq from
    blocking on a full stderr pipe (DNS stopped answering after ~630 unread
    lines, with or without it), so the supervisor reads stderr without pause.
    """
    return [
        binary,
        "--keep-in-foreground",
        "--log-facility=-",
        f"--conf-file={conf}",
    ]


async def check(conf: Path, binary: str = "dnsmasq") -> None:
    """``dnsmasq --test`` on ``conf``; raise DnsmasqError with dnsmasq's own words."""
    argv = [*command(binary, conf), "--test"]
    await config_test(argv, f"dnsmasq rejected {conf}", DnsmasqError, TEST_TIMEOUT, strip_prefix)
