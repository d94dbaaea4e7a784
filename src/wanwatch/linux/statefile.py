"""The one thing the backend must remember on disk: the addresses it added.

The kernel keeps a mark on our routes and rules (the protocol number), but an
address's IFA_PROTO is only a hint some tools drop; so every address we add is
recorded here first, in the state directory, and removed only if recorded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from pathlib import Path

from wanwatch.errors import WanwatchError
from wanwatch.footprint import RT_PROTO
from wanwatch.linux.netlink import Address

AddrKey = tuple[str, IPv4Interface]  # (interface name, address)


@dataclass
class StateFile:
    """What we added that the kernel cannot mark for us: addresses (IFA_PROTO is a hint only)."""

    path: Path
    addresses: set[AddrKey] = field(default_factory=set)
    problem: str | None = None

    @classmethod
    def load(cls, path: Path) -> StateFile:
        state = cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            state.addresses = {(str(i), IPv4Interface(a)) for i, a in data.get("addresses", [])}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            # Unreadable: fall back to the kernel's marks (IFA_PROTO) and say so.
            state.problem = f"{path}: {exc}"
        return state

    def owned(self, present: Iterable[Address]) -> set[AddrKey]:
        """Ours: recorded here, or among ``present`` with our IFA_PROTO (a lost record)."""
        marked = {(a.ifname, a.interface) for a in present if a.proto == RT_PROTO}
        return set(self.addresses) | marked

    def save(self) -> None:
        """Write atomically (rename), so a kill mid-write leaves the old or the new file."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = {"version": 1, "addresses": sorted([i, str(a)] for i, a in self.addresses)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            # Callers save before they add: what we cannot record, we do not add.
            raise WanwatchError(f"cannot record our addresses in {self.path}: {exc}") from None

    def remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise WanwatchError(f"cannot remove {self.path}: {exc}") from None
