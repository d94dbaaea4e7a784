"""Lab fixtures: real namespaces with a per-run tag, always torn down, and a session check.

Every lab a test builds gets a tag made of this session's random token and a
counter, so its namespaces (``ww<token><n>-...``) are unique to this run. The
finalizers take each lab down whatever the test did; at the end of the session
a check fails the run if any namespace this process created still exists
(and deletes it, by name).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wanwatch.config import Config, load
from wanwatch.lab import netns
from wanwatch.lab.topology import Lab

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"
SESSION = netns.run_tag()
_serial = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def no_namespace_left_behind() -> Iterator[None]:
    """Fail the session if any namespace created by this test process survived it."""
    yield
    left = sorted(netns.created_here() & netns.existing())
    for name in left:
        netns.delete(name)
    assert not left, f"namespaces left behind by this run (now deleted): {left}"


@pytest.fixture(scope="session")
def office() -> Config:
    return load(OFFICE)


LabFactory = Callable[..., Lab]
SharedLab = Callable[..., contextlib.AbstractContextManager[Lab]]


@pytest.fixture(scope="session")
def shared_lab(office: Config, tmp_path_factory: pytest.TempPathFactory) -> SharedLab:
    """``with shared_lab(name): ...`` -- a lab (up) for a module's fixture, taken down (by
    name) whatever happens; its state stays for a failed run's logs, pytest prunes it."""

    @contextlib.contextmanager
    def shared(name: str, **kwargs: Any) -> Iterator[Lab]:
        lab = Lab(
            office,
            tag=netns.run_tag(),
            state_root=tmp_path_factory.mktemp(name),
            remove_state=False,
            **kwargs,
        )
        lab.up()
        try:
            yield lab
        finally:
            lab.down()
            assert not set(lab.namespaces) & netns.existing()

    return shared


@pytest.fixture
def make_lab(office: Config, tmp_path: Path) -> Iterator[LabFactory]:
    """Build labs (up) with unique tags; each is taken down when the test ends, pass or fail."""
    made: list[Lab] = []

    def make(config: Config | None = None, **kwargs: Any) -> Lab:
        lab = Lab(
            config or office,
            tag=f"{SESSION}{next(_serial)}",
            state_root=tmp_path / "labs",  # kept on failure for the logs; pytest prunes it
            remove_state=False,
            **kwargs,
        )
        made.append(lab)
        return lab.up()

    yield make
    for lab in reversed(made):
        lab.down()
        assert not set(lab.namespaces) & netns.existing()


@pytest.fixture
def lab(make_lab: LabFactory) -> Lab:
    return make_lab()


def configure_router(
    lab: Lab, via: str | None = None, masquerade: tuple[str, ...] | None = None
) -> None:
    """Configure the router namespace BY HAND (the daemon's job, done here only to test
    the topology): config addresses, forwarding, default route via ``via``'s gateway,
    and masquerade on the ``masquerade`` interfaces (default: every uplink)."""
    cfg = lab.lab_config
    via_wan = cfg.wan(via) if via else cfg.wans[0]
    cmds = [f"addr add {w.address} dev {w.interface}" for w in cfg.wans]
    cmds += [f"addr add {lan.address} dev {lan.interface}" for lan in cfg.lans]
    cmds.append(f"route add default via {via_wan.gateway} dev {via_wan.interface}")
    netns.batch(lab.router_ns, cmds)
    netns.sysctl(lab.router_ns, {"net.ipv4.ip_forward": 1})
    nat_ifs = masquerade if masquerade is not None else tuple(w.interface for w in cfg.wans)
    if nat_ifs:
        names = ", ".join(f'"{i}"' for i in nat_ifs)
        netns.nft(
            lab.router_ns,
            "table ip by_hand {\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            f"    oifname {{ {names} }} masquerade\n"
            "  }\n"
            "}\n",
        )


@pytest.fixture
def hand_router() -> Callable[..., None]:
    """:func:`configure_router`, for tests that configure the router their own way."""
    return configure_router


@pytest.fixture
def routed_lab(lab: Lab) -> Lab:
    """A lab whose router is configured by hand: default via the primary, NAT on both
    uplinks, and the first LAN's client on a static address."""
    configure_router(lab)
    lab.client_static(lab.topology.clients[0].lan)
    return lab
