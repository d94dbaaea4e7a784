"""The systemd unit shipped with wanwatch, with ExecStart= pointing at this installation."""

from __future__ import annotations

import shlex
import shutil
import sys
from importlib import resources
from pathlib import Path

SHIPPED_EXEC = "/usr/local/bin/wanwatch"  # where `pip install` puts the script as root


def installed_command(argv0: str | None = None) -> str:
    """How to start the wanwatch that is running now, as an absolute command line.

    The ``wanwatch`` script itself when that is what ran (a venv's or pipx's script
    works from anywhere); otherwise this interpreter with ``-m wanwatch.cli``.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    if Path(argv0).name == "wanwatch":
        found = shutil.which(argv0) or argv0
        return shlex.quote(str(Path(found).absolute()))
    return f"{shlex.quote(sys.executable)} -m wanwatch.cli"


def unit(command: str | None = None) -> str:
    """The unit file's text, its ExecStart= running ``command`` (default: this wanwatch)."""
    text = resources.files("wanwatch.daemon.systemd").joinpath("wanwatch.service").read_text()
    command = installed_command() if command is None else command
    return text.replace(f"ExecStart={SHIPPED_EXEC} ", f"ExecStart={command} ")
