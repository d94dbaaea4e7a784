"""Dependencies whose internals we rely on: bounded, and pyroute2 loaded lean."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DEPENDENCIES = {
    (req := Requirement(text)).name: req
    for text in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
}

# Parts of pyroute2 its package __init__ imports and the daemon never uses
# (NDB with sqlite3, IPDB, plan9, nl80211, wireguard, ipvs).
HEAVY = (
    "sqlite3",
    "pyroute2.ndb",
    "pyroute2.ipdb",
    "pyroute2.plan9",
    "pyroute2.netlink.nl80211",
    "pyroute2.netlink.generic.wireguard",
    "pyroute2.ipvs",
)


def test_internals_we_use_have_an_upper_bound_the_installed_version_meets() -> None:
    for name in ("pyroute2", "msgspec"):
        req = DEPENDENCIES[name]
        assert any(spec.operator == "<" for spec in req.specifier), f"{name}: no upper bound"
        assert req.specifier.contains(version(name)), f"{name} {version(name)} outside {req}"


def modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``statement``."""
    probe = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout))


def test_the_daemon_loads_rtnetlink_and_conntrack_without_pyroute2s_heavy_parts() -> None:
    mods = modules_after("import wanwatch.cli, wanwatch.daemon.assemble")  # what `run` builds
    assert {"pyroute2.iproute.linux", "pyroute2.conntrack"} <= mods  # what it does use
    assert not {m for m in mods if m.startswith(HEAVY)}
    # without --metrics or --http the HTTP side is never loaded (servers.py)
    assert not {m for m in mods if m.startswith(("h11", "prometheus_client"))}


def test_the_status_command_loads_no_pyroute2_and_no_backend() -> None:
    """`wanwatch status` (cli -> daemon.control) only talks to the socket."""
    mods = modules_after("import wanwatch.cli, wanwatch.daemon.control")
    assert "wanwatch.daemon.control" in mods  # the path was really taken
    assert not {m for m in mods if m == "pyroute2" or m.startswith("pyroute2.")}
    assert not {m for m in mods if m.startswith(("wanwatch.linux", "wanwatch.probe"))}
    assert not {m for m in mods if m.startswith(("h11", "prometheus_client"))}


def test_pyroute2_itself_still_answers_in_full() -> None:
    mods = modules_after("import wanwatch.linux.netlink\nfrom pyroute2 import NDB")
    assert "pyroute2.ndb.main" in mods  # asking the package runs its real __init__
