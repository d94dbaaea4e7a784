"""The shipped systemd unit: valid for systemd itself, printed for this installation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from wanwatch.cli import main
from wanwatch.daemon.systemd import installed_command, unit


def directives(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    path = tmp_path / "wanwatch.service"  # verify wants the unit's own name
    path.write_text(unit(f"{sys.executable} -m wanwatch.cli"))
    res = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False
    )
    # A directive systemd does not understand is only a warning: any output fails too.
    assert res.returncode == 0 and not res.stderr.strip() and not res.stdout.strip(), res


def test_the_unit_says_what_the_daemon_does() -> None:
    d = directives(unit("/opt/ww/bin/wanwatch"))
    assert d["ExecStart"] == "/opt/ww/bin/wanwatch run --http 127.0.0.1:9180"
    assert d["Type"] == "notify" and d["NotifyAccess"] == "main"
    assert d["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert d["Restart"] == "on-failure" and d["WatchdogSec"]
    assert d["ProtectSystem"] == "strict"
    assert d["StateDirectory"] == d["RuntimeDirectory"] == "wanwatch"
    caps = set(d["CapabilityBoundingSet"].split())
    assert caps == {
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_KILL",
    }
    assert "ProtectKernelTunables" not in d  # the router writes net sysctls


def test_installed_command() -> None:
    assert installed_command("/opt/ww/bin/wanwatch") == "/opt/ww/bin/wanwatch"
    assert installed_command("/somewhere/cli.py") == f"{sys.executable} -m wanwatch.cli"


def test_cli_prints_the_unit() -> None:
    res = CliRunner().invoke(main, ["systemd-unit"])
    assert res.exit_code == 0
    assert "Type=notify" in res.output
    assert "\nExecStart=" in res.output and "ExecStart=/usr/local/bin/wanwatch " not in res.output


@pytest.mark.parametrize("command", ["check", "plan", "run"])
def test_a_service_needs_no_flags(command: str) -> None:
    """Config, socket and state default to /etc, /run and /var/lib (what the unit creates)."""
    cmd = main.commands[command]
    defaults = {p.name: p.default for p in cmd.params}
    assert defaults["config_path"] == "/etc/wanwatch/wanwatch.yaml"
    if command == "run":
        assert defaults["socket_path"] == "/run/wanwatch/wanwatch.sock"
        assert defaults["state_dir"] == "/var/lib/wanwatch"
        assert defaults["http_address"] is None  # the page only when asked for


def test_run_refuses_a_bad_http_address_before_anything() -> None:
    office = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"
    res = CliRunner().invoke(main, ["run", "-c", str(office), "--http", "localhost"])
    assert res.exit_code == 2
    assert "--http: 'localhost' is not HOST:PORT" in res.output
