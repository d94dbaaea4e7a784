"""keepalived for a router pair: render keepalived.conf and read its notify FIFO (pure), check.

One VRRP instance per LAN and per uplink, all in one sync group, so the LAN
gateways and the uplinks' shared NAT addresses always sit on the same router
(RFC 5798; keepalived.conf(5), "VRRP synchronization group"). Uplink health
reaches VRRP through a track file that wanwatch writes: it holds the number of
uplinks that are not up, and each one costs :func:`penalty` priority points, so
the router that reaches the internet through more uplinks is master.

The role comes from keepalived's notify FIFO, not from notify scripts.
keepalived runs a notify script per transition without waiting for the last
one, so two scripts of a quick MASTER -> BACKUP flip race and the slower one
writes last; the FIFO instead "guarantees that they will be delivered in the
correct sequence" (keepalived.conf(5), notify_fifo). keepalived writes one
line per transition, ``GROUP "wanwatch" MASTER 0`` (vrrp_notify.c,
notify_fifo()), and ``STOP`` for every group when it shuts down
(notify_shutdown()). :func:`read_notice` reads a line; linux/pair.py acts on
the newest.

The track file is never reset by keepalived: ``init_file VALUE`` without
``overwrite`` writes VALUE only when the file is missing (keepalived.conf(5),
track_file; track_file.c leaves an existing file alone), and VALUE is "every
uplink down". With ``overwrite`` every start of keepalived, a respawn
included, would reset the file to the value of our choosing at render time,
while wanwatch, which writes the file only when its count changes, would not
know to write it again.

Every file lives in the state directory: namespaces share one filesystem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wanwatch.errors import HaError
from wanwatch.linux.supervisor import config_test

if TYPE_CHECKING:
    from wanwatch.config import Config

CONF_FILE = "keepalived.conf"
PID_FILE = "keepalived.pid"
VRRP_PID_FILE = "keepalived-vrrp.pid"
TRACK_FILE = "ha-uplinks"
FIFO_FILE = "ha-events"
SYNC_GROUP = "wanwatch"
ROLES = ("MASTER", "BACKUP", "FAULT", "STOP")  # a sync group's states (keepalived.conf(5))
TEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class KeepalivedFiles:
    """Where keepalived's files live inside the state directory."""

    conf: Path
    pid: Path
    vrrp_pid: Path
    track: Path  # uplinks not up, written by wanwatch
    fifo: Path  # keepalived's notify FIFO: one line per transition, in order

    @classmethod
    def under(cls, state_dir: Path) -> KeepalivedFiles:
        return cls(
            conf=state_dir / CONF_FILE,
            pid=state_dir / PID_FILE,
            vrrp_pid=state_dir / VRRP_PID_FILE,
            track=state_dir / TRACK_FILE,
            fifo=state_dir / FIFO_FILE,
        )


@dataclass(frozen=True)
class Notice:
    """One line of the notify FIFO: a group's or an instance's new state."""

    kind: str  # GROUP or INSTANCE
    name: str
    state: str  # MASTER, BACKUP, FAULT, STOP, DELETED, MASTER_RX_LOWER_PRI, ...
    priority: int  # the instance's effective priority; 0 for a group


_NOTICE = re.compile(
    r'^(?P<kind>GROUP|INSTANCE) "(?P<name>[^"]*)" (?P<state>[A-Z_]+) (?P<prio>\d+)$'
)


def read_notice(line: str) -> Notice | None:
    """A FIFO line as a Notice (format of vrrp_notify.c, notify_fifo()); None if it is not one."""
    m = _NOTICE.match(line.strip())
    if m is None:
        return None
    return Notice(m.group("kind"), m.group("name"), m.group("state"), int(m.group("prio")))


def group_role(notice: Notice) -> str | None:
    """The sync group's new role if ``notice`` announces one, else None."""
    if notice.kind == "GROUP" and notice.name == SYNC_GROUP and notice.state in ROLES:
        return notice.state
    return None


def penalty(config: Config) -> int:
    """Priority points each uplink that is not up costs.

    Large enough that a router with fewer uplinks up always loses against one
    with more (if the pair's configured priorities differ by less than this),
    small enough that every count stays distinct inside keepalived's effective
    range of 1..254 (keepalived.conf(5), track_file).
    """
    return 254 // (len(config.wans) + 1)


def instances(config: Config) -> list[tuple[str, str, int, str, str | None]]:
    """(instance name, interface, VRID, shared address, password) for each VRRP instance."""
    assert config.ha is not None  # callers render only for a pair
    lans = {lan.name: lan for lan in config.lans}
    wans = {w.name: w for w in config.wans}
    out: list[tuple[str, str, int, str, str | None]] = []
    for hl in config.ha.lans:
        lan = lans[hl.lan]
        out.append((f"lan-{lan.name}", lan.interface, hl.vrid, str(lan.address), hl.password))
    for hw in config.ha.wans:
        wan = wans[hw.wan]
        out.append((f"wan-{wan.name}", wan.interface, hw.vrid, str(wan.address), hw.password))
    return out


def render(config: Config, state_dir: Path) -> str:
    """keepalived.conf for this router of the pair: pure text, no I/O."""
    ha = config.ha
    if ha is None:
        raise HaError("keepalived is rendered only for a config with an ha: section")
    files = KeepalivedFiles.under(state_dir)
    for path in (files.track, files.fifo):
        if any(c in '"' or c.isspace() for c in str(path)):
            raise HaError(f"{path}: keepalived's config cannot name a path with quotes or spaces")
    whole = ha.advert_interval == int(ha.advert_interval) and any(
        p is not None for *_, p in instances(config)
    )
    # VRRPv3 (RFC 5798) carries sub-second adverts; VRRPv2 (RFC 3768) is whole
    # seconds but is the only one with a password (the config check ensures that).
    version = 2 if whole else 3
    advert = f"{ha.advert_interval:g}"
    members = [name for name, *_ in instances(config)]
    out = [
        "# keepalived for wanwatch: generated, rewritten on every start.",
        "# Run as: keepalived --dont-fork --log-console --vrrp --use-file=<this file>",
        "",
        "global_defs {",
        f"\trouter_id wanwatch-{ha.sync.address.ip}",
        f"\tvrrp_version {version}",
        "\t# an interface may appear after keepalived starts (a USB LTE modem); the",
        "\t# instance waits for it (keepalived.conf(5), dynamic_interfaces)",
        "\tdynamic_interfaces",
        "\t# every transition, in order, for wanwatch to read (no notify scripts: they race)",
        f'\tvrrp_notify_fifo "{files.fifo}"',
        "\t# one gratuitous ARP burst on becoming master, and again after 5 s for",
        "\t# switches that missed it (RFC 5798 section 8.1.2)",
        "\tvrrp_garp_master_delay 5",
        "}",
        "",
        "# wanwatch writes how many uplinks are not up; each costs priority points.",
        "# Missing, it reads as every uplink down; keepalived never overwrites it.",
        "track_file uplinks {",
        f'\tfile "{files.track}"',
        f"\tweight -{penalty(config)}",
        f"\tinit_file {len(config.wans)}",
        "}",
        "",
        "# Gateways and NAT addresses move together: one router holds them all.",
        f"vrrp_sync_group {SYNC_GROUP} {{",
        "\tgroup {",
        *(f"\t\t{m}" for m in members),
        "\t}",
        "\t# the instances' track_file weights count inside the group",
        "\tsync_group_tracking_weight",
        "}",
    ]
    for name, iface, vrid, shared, password in instances(config):
        out += [
            "",
            f"vrrp_instance {name} {{",
            "\t# both start as backup: the better router wins the election",
            "\tstate BACKUP",
            f"\tinterface {iface}",
            f"\tvirtual_router_id {vrid}",
            f"\tpriority {ha.priority}",
            f"\tadvert_int {advert}",
        ]
        if not ha.preempt:
            out.append("\tnopreempt")
        if password is not None:
            out += ["\tauthentication {", "\t\tauth_type PASS", f"\t\tauth_pass {password}", "\t}"]
        out += [
            "\tvirtual_ipaddress {",
            f"\t\t{shared} dev {iface}",
            "\t}",
            "\ttrack_file {",
            "\t\tuplinks",
            "\t}",
            "}",
        ]
    return "\n".join(out) + "\n"


def command(binary: str, files: KeepalivedFiles) -> list[str]:
    """argv of the supervised keepalived: foreground, log to stderr, VRRP only, our files."""
    return [
        binary,
        "--dont-fork",
        "--log-console",
        "--no-syslog",
        "--vrrp",
        f"--use-file={files.conf}",
        f"--pid={files.pid}",
        f"--vrrp_pid={files.vrrp_pid}",
    ]


async def check(conf: Path, binary: str = "keepalived") -> None:
    """``keepalived --config-test`` on ``conf``; raise HaError with keepalived's own words."""
    argv = [binary, f"--use-file={conf}", "--config-test"]
    await config_test(argv, f"keepalived rejected {conf}", HaError, TEST_TIMEOUT)
