"""DHCPv6 prefix delegation on an uplink (``dhcp6:``): one supervised dhcpcd per uplink.

dhcpcd (Debian's ``dhcpcd-base``) runs in the foreground (``-B``) as our child,
IPv6 only (``-6``), on the uplink's interface only, with a config file and an
event script of ours. It changes nothing on the machine:

- ``--noconfigure`` (dhcpcd(8)): no address, route or sysctl of its own; the
  delegated prefix reaches only our script. Without it dhcpcd would add a reject
  route for the prefix and could assign it to other interfaces (dhcpcd.conf(5),
  ``ia_pd``);
- ``ia_pd 1[/::/<length>] -``: one IA_PD (RFC 8415 section 6.3), the length as a
  hint (18.2.1), and ``-``: delegated to no interface;
- ``noipv6rs``: the kernel keeps taking the uplink's router advertisements
  (``accept_ra = 2``, docs/ipv6.md), and dhcpcd.conf(5) asks for it ("IPv6RS
  should be disabled globally when requesting a Prefix Delegation"); DHCPv6 then
  starts at once instead of waiting for an RA's M flag;
- our ``script`` replaces dhcpcd-run-hooks, so none of its hooks (resolv.conf,
  hostname, NTP) runs.

The script prints the event (``$reason``, dhcpcd-run-hooks(8)) and the IA_PD's
prefixes (``new_dhcp6_ia_pd1_prefix<N>``, ``_length``, ``_pltime``, ``_vltime``)
as one line on dhcpcd's stdout, which the daemon reads in order. A server that
renumbers replies with the old prefix at lifetime 0 beside the new one (RFC 8415
18.3.4, seen from ISC dhcpd at a rebind): the prefix in use is the one with the
longest preferred lifetime, the first on a tie.

dhcpcd keeps its pid file, DUID and lease in its own directories
(``/run/dhcpcd/<interface>-6.pid``, ``/var/lib/dhcpcd``: dhcpcd(8) FILES); the
kept lease lets a restarted client rebind the same prefix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Network
from pathlib import Path

from wanwatch.engine.events import Event, FieldValue
from wanwatch.linux.dhcp_client import LeaseClient
from wanwatch.linux.statefile import replace_file

SCRIPT_FILE = "dhcpcd-script"
MARK = "wanwatch-pd"
RUN_DIR = Path("/run/dhcpcd")  # dhcpcd's compiled-in pid file directory

# The events that end the delegation (dhcpcd-run-hooks(8)); a lost carrier does
# not: the server still holds the binding, and the engine judges the link.
LOST = frozenset({"EXPIRE6", "RELEASE6", "STOP6", "DEPARTED", "FAIL"})
BOUND = frozenset({"BOUND6", "RENEW6", "REBIND6", "REBOOT6"})

SCRIPT = f"""#!/bin/sh
# wanwatch's dhcpcd script: hands the delegation to the daemon on stdout, changes nothing.
printf '{MARK}\\t%s' "$reason"
env | while IFS= read -r v; do
    case "$v" in new_dhcp6_ia_pd1_prefix*) printf '\\t%s' "$v" ;; esac
done
printf '\\n'
"""


@dataclass(frozen=True)
class Delegation:
    """A prefix the ISP's DHCPv6 server delegated to an uplink."""

    prefix: IPv6Network
    preferred_s: int
    valid_s: int
    bound_at: float  # monotonic

    def to_json(self, now: float) -> dict[str, FieldValue]:
        return {
            "prefix": str(self.prefix),
            "preferred_s": self.preferred_s,
            "valid_s": self.valid_s,
            "age_s": round(now - self.bound_at, 1),
        }


def parse_line(line: str, now: float) -> tuple[str, Delegation | None] | None:
    """One line of dhcpcd's stdout: (reason, the prefix in use or None); None if it
    is not our script's (dhcpcd's own log)."""
    reason, *assignments = line.rstrip("\n").split("\t")
    if reason != MARK or not assignments:
        return None
    kind = assignments[0]
    prefixes: dict[str, dict[str, str]] = {}  # N -> {"": prefix, "length": ..., ...}
    for a in assignments[1:]:
        name, _, value = a.partition("=")
        n, _, field = name.removeprefix("new_dhcp6_ia_pd1_prefix").partition("_")
        prefixes.setdefault(n, {})[field] = value
    try:
        found = [
            Delegation(
                prefix=IPv6Network(f"{p['']}/{p['length']}"),
                preferred_s=int(p.get("pltime", "0")),
                valid_s=int(p.get("vltime", "0")),
                bound_at=now,
            )
            for _, p in sorted(prefixes.items(), key=lambda kv: int(kv[0]))
        ]
    except (KeyError, ValueError):
        return "malformed", None
    if kind not in BOUND:
        return kind, None
    usable = [d for d in found if d.valid_s > 0]
    return kind, max(usable, key=lambda d: d.preferred_s, default=None)


def config_text(ifname: str, script: Path, prefix_length: int | None) -> str:
    """Our dhcpcd.conf for one uplink (why each line: this module's docstring)."""
    hint = f"1/::/{prefix_length}" if prefix_length is not None else "1"
    return (
        "# wanwatch's dhcpcd.conf: DHCPv6 prefix delegation only, applied by the daemon\n"
        "ipv6only\n"
        "noipv4\n"
        "noipv6rs\n"
        f"script {script}\n"
        f"interface {ifname}\n"
        f"  ia_pd {hint} -\n"
    )


def command(ifname: str, conf: Path) -> list[str]:
    """argv of one uplink's dhcpcd: foreground, IPv6 only, our config, that interface only."""
    return ["dhcpcd", "-B", "-6", "--noconfigure", "-f", str(conf), ifname]


OnDelegation = Callable[[str, Delegation | None, str], None]  # (wan, prefix or None, why)


class Dhcp6Client(LeaseClient[Delegation]):
    """One uplink's supervised dhcpcd; ``on_delegation`` hears every prefix gained,
    changed (renumbered) or lost."""

    name = "dhcp6_client"

    def __init__(
        self,
        wan: str,
        ifname: str,
        state_dir: Path,
        prefix_length: int | None,
        *,
        emit: Callable[[Event], None],
        on_delegation: OnDelegation,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix_length = prefix_length
        conf = state_dir / f"dhcpcd-{wan}.conf"
        replace_file(conf, config_text(ifname, state_dir / SCRIPT_FILE, prefix_length), 0o644)
        super().__init__(
            wan,
            ifname,
            command(ifname, conf),
            RUN_DIR / f"{ifname}-6.pid",
            str(conf),
            emit=emit,
            on_change=on_delegation,
            now=now,
        )

    def _line(self, line: str, now: float) -> None:
        """One line of dhcpcd's output: our script's (a delegation event) or its log."""
        parsed = parse_line(line, now)
        if parsed is None:
            self._emit("log", msg=line)
            return
        kind, delegation = parsed
        why = kind.lower().removesuffix("6")  # bound, renew, rebind, reboot, expire, ...
        if delegation is not None:
            old = self.lease
            self._emit(why, **delegation.to_json(now))
            if old is not None and old.prefix != delegation.prefix:
                self._emit("renumbered", old=str(old.prefix), new=str(delegation.prefix))
            self._gain(delegation, old is None or old.prefix != delegation.prefix, why)
        elif kind in BOUND:
            self._lose("no prefix")  # a reply without a usable one (lifetimes 0)
        elif kind in LOST:
            self._lose(why)
        elif kind == "malformed":
            self._emit(kind)


def write_script(state_dir: Path) -> Path:
    """Our dhcpcd script in the state directory (atomically, executable)."""
    path = state_dir / SCRIPT_FILE
    replace_file(path, SCRIPT, 0o755)
    return path
