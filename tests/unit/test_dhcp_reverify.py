"""When a DHCP uplink's client re-verifies its lease: on carrier up after a loss, only."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from wanwatch.config import load
from wanwatch.engine.events import Event
from wanwatch.linux import uplinks as uplinks_mod
from wanwatch.linux.dhcp_client import DhcpClient
from wanwatch.linux.uplinks import DynamicUplinks

DYNAMIC = Path(__file__).resolve().parents[2] / "examples" / "office-dynamic.yaml"
DHCP, PPP = "LTE-DHCP", "PPP-BACKUP"


class FakeClient:
    """Stands in for DhcpClient: records what DynamicUplinks asks of it."""

    made: ClassVar[list[FakeClient]] = []

    def __init__(self, wan: str, ifname: str, *_: Any, **__: Any) -> None:
        self.wan, self.ifname = wan, ifname
        self.asked: list[str] = []
        FakeClient.made.append(self)

    @property
    def running(self) -> bool:
        return "start" in self.asked

    def start(self) -> None:
        self.asked.append("start")

    def reverify(self) -> bool:
        self.asked.append("reverify")
        return True


@pytest.fixture
def dyn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DynamicUplinks:
    FakeClient.made.clear()
    monkeypatch.setattr(uplinks_mod, "DhcpClient", FakeClient)
    d = DynamicUplinks(load(DYNAMIC), tmp_path, lambda _e: None, lambda *_a: None)
    for w in load(DYNAMIC).wans:
        d.link(w.interface, True)
    return d


def iface(wan: str) -> str:
    return load(DYNAMIC).wan(wan).interface


def asked() -> list[str]:
    (client,) = FakeClient.made
    return client.asked


def test_carrier_back_after_a_loss_reverifies_the_lease(dyn: DynamicUplinks) -> None:
    dyn.carrier(iface(DHCP), False)
    assert asked() == ["start"]
    dyn.carrier(iface(DHCP), True)
    assert asked() == ["start", "reverify"]
    dyn.carrier(iface(DHCP), True)  # a repeated "up" (a resync) is no new flap
    assert asked() == ["start", "reverify"]


def test_the_first_carrier_heard_is_no_flap(dyn: DynamicUplinks) -> None:
    dyn.carrier(iface(DHCP), True)
    assert asked() == ["start"]


def test_another_uplinks_flap_leaves_the_dhcp_client_alone(dyn: DynamicUplinks) -> None:
    dyn.carrier(iface(PPP), False)
    dyn.carrier(iface(PPP), True)
    assert asked() == ["start"]


def test_a_client_without_a_lease_has_nothing_to_reverify(tmp_path: Path) -> None:
    events: list[Event] = []
    client = DhcpClient(
        DHCP, "wan1", tmp_path, emit=events.append, on_lease=lambda *_a: None, now=lambda: 0.0
    )
    assert client.reverify() is False  # no lease, no process: no signal sent to anyone
    assert events == []
