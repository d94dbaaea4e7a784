"""What the lab benchmarks share: progress on stderr, distributions, host facts."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def say(msg: str) -> None:
    """Progress goes to stderr; stdout carries only the JSON."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def summary(values: Iterable[float], digits: int = 1) -> dict[str, Any]:
    """count, median, p90 (nearest rank), min, max and every value, rounded."""
    v = sorted(values)
    if not v:
        return {"count": 0}
    return {
        "count": len(v),
        "median": round(statistics.median(v), digits),
        "p90": round(v[math.ceil(0.9 * len(v)) - 1], digits),
        "min": round(v[0], digits),
        "max": round(v[-1], digits),
        "values": [round(x, digits) for x in v],
    }


def host_info() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(
                ["git", "--no-optional-locks", "-C", str(ROOT), *args],
                check=False,
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    status = git("status", "--porcelain")
    return {
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "wanwatch": metadata.version("wanwatch"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "tree_dirty": None if status is None else bool(status),
    }


def lab_main(run: Callable[[], dict[str, Any]], errors: tuple[type[Exception], ...]) -> int:
    """A lab bench's exit: its JSON on stdout and 0; 1 if the lab failed (``errors``), 2 if
    not root."""
    if os.geteuid() != 0:
        say("needs root: it builds network namespaces")
        return 2
    try:
        out = run()
    except errors as exc:
        say(f"bench failed: {exc}")
        return 1
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return 0
