"""conntrackd for a router pair: render conntrackd.conf, and what to tell it on a new role (pure).

FT-FW mode over UDP on the pair's own sync link (conntrackd.conf(5); the
conntrack-tools user manual, "Active-Backup setup"): every connection the
master tracks, NAT mapping and ct mark included, is written into the backup's
kernel table as it arrives (``DisableExternalCache on``), so the backup's
kernel already holds the office's flows at the moment keepalived moves the
addresses. conntrackd has no config test; a config it refuses makes it exit at
start with its reason, which the supervisor reports.

Why not the external cache and a commit (``conntrackd -c``) on becoming
master, as conntrack-tools' primary-backup.sh does: keepalived takes the
addresses and sends its gratuitous ARPs first, and only then tells us, so the
new master's kernel holds none of the peer's flows for the time it takes to
hear of it and commit (9-43 ms in the lab: docs/pair.md). A server's packet
that reaches it in that time fits no connection; the kernel delivers it
locally, no socket has its port, and the router answers it with a RST (RFC
9293 section 3.10.7.1): the connection is lost. A kill of the master hides
this, since the office's packets stop with it; a master that stays up and
keeps forwarding while the role moves (uplinks lost, failback) does not.
Injected entries get conntrackd's "be liberal" TCP window flags (netlink.c,
nl_create_conntrack()): their sequence numbers were tracked on the peer.

The lock file and the UNIX control socket are per instance, in the state
directory: two routers in namespaces on one machine share the filesystem, and
conntrackd refuses to start when its lock file is held.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Interface
from pathlib import Path
from typing import TYPE_CHECKING

from wanwatch.errors import HaError

if TYPE_CHECKING:
    from wanwatch.config import Config

CONF_FILE = "conntrackd.conf"
LOCK_FILE = "conntrackd.lock"
SOCKET_FILE = "conntrackd.ctl"
PORT = 3780  # conntrackd's documented default port

# What conntrack-tools' own primary-backup.sh tells conntrackd on each new role
# of the sync group (conntrackd(8); the user manual, "Active-Backup setup"),
# less its commit (-c), which has nothing to do without an external cache
# (external_inject.c: an empty commit): master: flush the caches, resynchronise
# the internal cache with the kernel (the peer's flows are in it already), send
# a bulk update to the peer; backup: ask the master for a full resync (written
# into the kernel); fault: let the kernel's entries time out (-t), then ask for
# a resync. STOP: nothing.
_STEPS = {
    "MASTER": ("-f", "-R", "-B"),
    "BACKUP": ("-n",),
    "FAULT": ("-t", "-n"),
}


@dataclass(frozen=True)
class ConntrackdFiles:
    conf: Path
    lock: Path  # conntrackd writes no pid file; its lock file marks a running instance
    socket: Path

    @classmethod
    def under(cls, state_dir: Path) -> ConntrackdFiles:
        return cls(state_dir / CONF_FILE, state_dir / LOCK_FILE, state_dir / SOCKET_FILE)


def render(config: Config, state_dir: Path) -> str:
    """conntrackd.conf for this router of the pair: pure text, no I/O."""
    ha = config.ha
    if ha is None:
        raise HaError("conntrackd is rendered only for a config with an ha: section")
    files = ConntrackdFiles.under(state_dir)
    for path in (files.lock, files.socket):
        if any(c.isspace() or c in '"#' for c in str(path)):
            raise HaError(f"{path}: conntrackd's config cannot name a path with spaces or quotes")
    # The routers' own traffic is not the office's: flows from or to any router
    # address are not synced (as conntrackd's FT-FW example ignores them). The
    # filter looks at the original direction only, so a NATed flow (client to
    # server) is synced although its replies go to a shared address.
    own: list[str] = ["127.0.0.1", str(ha.sync.address.ip)]
    own += [str(s.address.ip) for s in (*ha.lans, *ha.wans)]
    own += [str(lan.address.ip) for lan in config.lans if lan.address is not None]
    own += [str(w.address.ip) for w in config.wans if isinstance(w.address, IPv4Interface)]
    out = [
        "# conntrackd for wanwatch: generated, rewritten on every start.",
        "# Run as: conntrackd -C <this file> (in the foreground)",
        "",
        "Sync {",
        "\tMode FTFW {",
        "\t\t# the peer's connections go straight into the kernel: they are there",
        "\t\t# before the addresses move, not only after a commit",
        "\t\tDisableExternalCache on",
        "\t}",
        "\tUDP {",
        f"\t\tIPv4_address {ha.sync.address.ip}",
        f"\t\tIPv4_Destination_Address {ha.sync.peer}",
        f"\t\tPort {PORT}",
        f"\t\tInterface {ha.sync.interface}",
        "\t\tChecksum on",
        "\t}",
        "}",
        "",
        "General {",
        "\tHashSize 32768",
        "\tHashLimit 131072",
        "\t# log to the console: wanwatch reads it",
        "\tLogFile off",
        "\tSyslog off",
        f"\tLockFile {files.lock}",
        "\tUNIX {",
        f"\t\tPath {files.socket}",
        "\t}",
        "\tNetlinkBufferSize 2097152",
        "\tNetlinkBufferSizeMaxGrowth 8388608",
        "\tFilter From Userspace {",
        "\t\tProtocol Accept {",
        "\t\t\tTCP",
        "\t\t\tUDP",
        "\t\t\tICMP",
        "\t\t}",
        "\t\tAddress Ignore {",
        *(f"\t\t\tIPv4_address {a}" for a in dict.fromkeys(own)),
        "\t\t}",
        "\t}",
        "}",
    ]
    return "\n".join(out) + "\n"


def command(binary: str, files: ConntrackdFiles) -> list[str]:
    """argv of the supervised conntrackd: in the foreground (no -d), our config only."""
    return [binary, "-C", str(files.conf)]


def steps(role: str) -> tuple[str, ...]:
    """conntrackd's options to run, in order, once the sync group is in ``role``."""
    return _STEPS.get(role, ())


def control(binary: str, files: ConntrackdFiles, option: str) -> list[str]:
    """argv that asks our running conntrackd (over its UNIX socket) to do ``option``."""
    return [*command(binary, files), option]
