"""The Linux backend: netlink (pyroute2), nftables, conntrack, sysctls, dnsmasq.

pyroute2's package ``__init__`` eagerly imports every family it supports (NDB
with sqlite3, IPDB, plan9, wireguard, nl80211, ipvs, ...): 163 modules and about
6 MB of the daemon's resident memory, of which we use rtnetlink and conntrack
only. So the ``pyroute2`` package object is registered here without running its
``__init__``; our modules import from pyroute2's submodules, which load as usual.
Anyone who asks the package itself for a name (``from pyroute2 import X``) gets
the real ``__init__`` run at that moment, so nothing else changes behaviour.
Importing only the submodules we need does not avoid the cost on its own: Python
imports a package before any of its submodules (The Python Language Reference,
"The import system", 5.3 Searching), so the package object has to be there
first. tests/unit/test_dependencies.py checks what the daemon loads. This runs
once, on the first import of ``wanwatch.linux``, before any pyroute2 import of ours.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any


def _defer_pyroute2_init() -> None:
    if "pyroute2" in sys.modules:
        return  # already imported (fully) by someone else: nothing to save
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None:
        return  # not installed: the real import will say so
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def _getattr(name: str) -> Any:  # the module __getattr__ of PEP 562
        if importlib.util.find_spec(f"pyroute2.{name}") is not None:
            return importlib.import_module(f"pyroute2.{name}")  # a submodule: load just it
        del package.__getattr__  # a package-level name: run the real __init__ once
        loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = _getattr  # type: ignore[method-assign]
    sys.modules["pyroute2"] = package


_defer_pyroute2_init()
