"""What every injection of the package returns: the fault and when the kernel took it."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Injected:
    """One fault on the router; the kernel (or process) took it between the two times."""

    fault: str
    t_start: float  # monotonic, before the command: never flatters a recovery time
    t_done: float  # monotonic, once the command returned: the fault is in place
    detail: str = ""


class Timer:
    """Started before an injection's command; :meth:`done` once it returned."""

    def __init__(self, fault: str, detail: str = "") -> None:
        self.fault, self.detail = fault, detail
        self.t_start = time.monotonic()

    def done(self) -> Injected:
        return Injected(self.fault, self.t_start, time.monotonic(), self.detail)
