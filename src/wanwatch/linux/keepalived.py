"""keepalived for a router pair: render keepalived.conf and its notify script (pure), check.

One VRRP instance per LAN and per uplink, all in one sync group, so the LAN
gateways and the uplinks' shared NAT addresses always sit on the same router
(RFC 5798; keepalived.conf(5), "VRRP synchronization group"). Uplink health
reaches VRRP through a track file that wanwatch writes: it holds the number of
uplinks that are not up, and each one costs :func:`penalty` priority points, so
the router that reaches the internet through more uplinks is master.

The notify script follows conntrackd's own primary-backup.sh (conntrackd(8),
the conntrack-tools user manual, "Active-Backup setup"): on becoming master
commit the peer's connections to the kernel, then resynchronise; on becoming
backup ask the new master for a full resync. It also records the role in a
file, so wanwatch knows whether this router is master.

Every file lives in the state directory: namespaces share one filesystem.
"""

from __future__ import annotations

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
NOTIFY_FILE = "ha-notify"
ROLE_FILE = "ha-role"
SYNC_GROUP = "wanwatch"
TEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class KeepalivedFiles:
    """Where keepalived's files live inside the state directory."""

    conf: Path
    pid: Path
    vrrp_pid: Path
    track: Path  # uplinks not up, written by wanwatch
    notify: Path  # run by keepalived on every role change
    role: Path  # MASTER, BACKUP, FAULT or STOP, written by the notify script

    @classmethod
    def under(cls, state_dir: Path) -> KeepalivedFiles:
        return cls(
            conf=state_dir / CONF_FILE,
            pid=state_dir / PID_FILE,
            vrrp_pid=state_dir / VRRP_PID_FILE,
            track=state_dir / TRACK_FILE,
            notify=state_dir / NOTIFY_FILE,
            role=state_dir / ROLE_FILE,
        )


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
    for path in (files.track, files.notify):
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
        "\t# our notify script is root's own, in a directory only root can write",
        "\tscript_user root",
        "\tenable_script_security",
        "\t# one gratuitous ARP burst on becoming master, and again after 5 s for",
        "\t# switches that missed it (RFC 5798 section 8.1.2)",
        "\tvrrp_garp_master_delay 5",
        "}",
        "",
        "# wanwatch writes how many uplinks are not up; each costs priority points.",
        "track_file uplinks {",
        f'\tfile "{files.track}"',
        f"\tweight -{penalty(config)}",
        "\tinit_file 0 overwrite",
        "}",
        "",
        "# Gateways and NAT addresses move together: one router holds them all.",
        f"vrrp_sync_group {SYNC_GROUP} {{",
        "\tgroup {",
        *(f"\t\t{m}" for m in members),
        "\t}",
        "\t# the instances' track_file weights count inside the group",
        "\tsync_group_tracking_weight",
        f'\tnotify "{files.notify}"',
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


def render_notify(state_dir: Path, conntrackd: str, conntrackd_conf: Path) -> str:
    """The notify script keepalived runs as ``SCRIPT GROUP NAME STATE PRIORITY``."""
    role = KeepalivedFiles.under(state_dir).role
    ct = f"{conntrackd} -C {conntrackd_conf}"
    return "\n".join(
        [
            "#!/bin/sh",
            "# wanwatch: keepalived's notify script (generated). Follows conntrackd's",
            "# primary-backup.sh. $3 is the new state of the sync group.",
            'case "$3" in',
            "MASTER)",
            "\t# the peer's connections (NAT included) into the kernel, then own them",
            f"\t{ct} -c",
            f"\t{ct} -f",
            f"\t{ct} -R",
            f"\t{ct} -B",
            "\t;;",
            "BACKUP)",
            "\t# the master's connections from now on, in full",
            f"\t{ct} -n",
            "\t;;",
            "FAULT)",
            "\t# keep the kernel's entries only until they would time out",
            f"\t{ct} -t",
            f"\t{ct} -n",
            "\t;;",
            "esac",
            f'echo "$3" > {role}.new && mv {role}.new {role}',
            "",
        ]
    )


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
