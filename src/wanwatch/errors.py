"""One exception family for the whole program: callers catch ``WanwatchError``."""

from __future__ import annotations


class WanwatchError(Exception):
    """Root of every error wanwatch raises on purpose."""


class ConfigError(WanwatchError):
    """The configuration is invalid. Carries every problem found, not just the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class NetlinkError(WanwatchError):
    """A kernel request over netlink failed with an errno we do not tolerate."""


class NftError(WanwatchError):
    """nft rejected a ruleset (check or apply)."""


class SysctlError(WanwatchError):
    """A kernel setting under /proc/sys could not be read or written."""


class DnsmasqError(WanwatchError):
    """dnsmasq rejected its configuration or could not be supervised."""


class RouterOSError(WanwatchError):
    """A RouterOS export could not be read, or the config cannot be expressed in RouterOS."""


class LabError(WanwatchError):
    """The namespace lab could not be built or driven."""


class ProbeError(WanwatchError):
    """The prober cannot work at all (no raw sockets) or was used out of order."""


class HaError(WanwatchError):
    """keepalived or conntrackd rejected its configuration or could not be supervised."""
