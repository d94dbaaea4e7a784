"""The one thing the backend must remember on disk: the addresses it added.

The kernel keeps a mark on our routes and rules (the protocol number), but an
address's IFA_PROTO is only a hint some tools drop; so every address we add is
recorded here first, in the state directory, and removed only if recorded.
:func:`replace_file` writes it, and the files other parts keep there for a
child to read (udhcpc's script, keepalived's track file).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface, ip_interface
from pathlib import Path
from typing import TYPE_CHECKING

from wanwatch.errors import WanwatchError
from wanwatch.footprint import RT_PROTO

if TYPE_CHECKING:
    from wanwatch.linux.netlink import Address, Address6

AddrKey = tuple[str, IPv4Interface | IPv6Interface]  # (interface name, address)


def replace_file(path: Path, text: str, mode: int | None = None) -> None:
    """Write ``path`` by a rename (atomic, rename(2)): a kill mid-write, or a child
    reading it meanwhile, finds the old file or the new one, never half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


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
            state.addresses = {(str(i), ip_interface(a)) for i, a in data.get("addresses", [])}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            # Unreadable: fall back to the kernel's marks (IFA_PROTO) and say so.
            state.problem = f"{path}: {exc}"
        return state

    def owned(self, present: Iterable[Address | Address6]) -> set[AddrKey]:
        """Ours: recorded here, or among ``present`` with our IFA_PROTO (a lost record)."""
        marked = {(a.ifname, a.interface) for a in present if a.proto == RT_PROTO}
        return set(self.addresses) | marked

    def save(self) -> None:
        data = {"version": 1, "addresses": sorted([i, str(a)] for i, a in self.addresses)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            replace_file(self.path, json.dumps(data, indent=1) + "\n")
        except OSError as exc:
            # Callers save before they add: what we cannot record, we do not add.
            raise WanwatchError(f"cannot record our addresses in {self.path}: {exc}") from None

    def remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise WanwatchError(f"cannot remove {self.path}: {exc}") from None
