"""Running traffic workers (``wanwatch.lab.worker``) in lab namespaces from the test process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wanwatch.errors import LabError

if TYPE_CHECKING:
    from wanwatch.lab.topology import Lab

POLL = 0.005  # how often the library side looks at a worker's output


def run_worker(
    lab: Lab, who: str, argv: list[str], name: str, timeout: float
) -> list[dict[str, Any]]:
    """Run one bounded worker to completion; its JSON records."""
    proc = lab.spawn(lab.ns_for(who), argv, name)
    try:
        if proc.wait(timeout) is None and proc.alive():
            raise LabError(f"{name} in {who} did not finish in {timeout:.1f} s")
        records = proc.records()
        if not records:
            raise LabError(f"{name} in {who} reported nothing: {proc.stderr()[-800:]}")
        return records
    finally:
        lab.stop_proc(proc)
