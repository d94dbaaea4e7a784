"""A broken config under SIGHUP: the daemon must keep the one it runs."""

from __future__ import annotations

import signal

from wanwatch.errors import LabError
from wanwatch.lab.chaos.injected import Injected, Timer
from wanwatch.lab.office import Office


def broken_config(good: str) -> str:
    """``good`` with one invalid value: the second uplink's gateway is no address."""
    marker = "gateway: 192.168.18.1"
    if marker not in good:
        raise LabError("the config has no second uplink gateway to break")
    return good.replace(marker, "gateway: 192.168.18.300", 1)


def sighup_broken(office: Office) -> tuple[Injected, str]:
    """Write a broken config over the daemon's file and SIGHUP it; the good text, to restore."""
    if office.daemon is None:
        raise LabError("the daemon is not running")
    path = office.config_path
    good = path.read_text()
    path.write_text(broken_config(good))
    t = Timer("sighup_broken_config", str(path))
    office.daemon.send_signal(signal.SIGHUP)
    return t.done(), good
