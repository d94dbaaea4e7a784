"""Where wanwatch looks by default: the Linux filesystem hierarchy, so a service needs no flags.

Configuration under /etc, runtime sockets under /run and state that must survive a
restart under /var/lib (hier(7); the systemd unit's ConfigurationDirectory=,
RuntimeDirectory= and StateDirectory= create and own these three, systemd.exec(5)).
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_CONFIG = Path("/etc/wanwatch/wanwatch.yaml")
DEFAULT_SOCKET = Path("/run/wanwatch/wanwatch.sock")
DEFAULT_STATE_DIR = Path("/var/lib/wanwatch")
DEFAULT_HTTP = "127.0.0.1:9180"
