"""How a worker reports: one JSON object per line on stdout; errors by their short name."""

from __future__ import annotations

import errno
import json
import sys


def emit(obj: object) -> None:
    """One record: a JSON line, flushed at once (the lab reads it while the worker runs)."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def errname(exc: BaseException) -> str:
    """``timeout``, ``refused``, ``reset``, an errno name, or the exception's class."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__
