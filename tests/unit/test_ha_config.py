"""The ``ha:`` section: the pair examples load; what cannot work is refused with file:line."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest
import yaml

from wanwatch.config import load, loads
from wanwatch.config.ha import local_view, snat
from wanwatch.engine.intent import intent_from_config
from wanwatch.errors import ConfigError

EXAMPLES = Path(__file__).parents[2] / "examples"
A = EXAMPLES / "office-ha-a.yaml"


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        loads(text, "pair.yaml")
    return err.value.problems


def _edit(path: str, value: object) -> str:
    """office-ha-a.yaml with one field (dotted path, list indexes as numbers) replaced."""
    data = yaml.safe_load(A.read_text())
    *parents, last = (int(p) if p.isdigit() else p for p in path.split("."))
    node = data
    for p in parents:
        node = node[p]
    node[last] = value
    return yaml.safe_dump(data, sort_keys=False)


def test_both_examples_load_and_differ_only_in_ha() -> None:
    a, b = load(A), load(EXAMPLES / "office-ha-b.yaml")
    assert a.ha is not None and b.ha is not None
    assert a.ha.priority > b.ha.priority
    assert a.replace(ha=None, source="") == b.replace(ha=None, source="")


def test_local_view_puts_own_addresses_in_place_of_shared_ones() -> None:
    a = load(A)
    local = local_view(a)
    assert local.lans[0].address == IPv4Interface("192.168.19.3/24")
    assert local.wans[1].address == IPv4Interface("192.168.18.3/24")
    assert a.lans[0].address == IPv4Interface("192.168.19.1/24")  # shared: what DHCP hands out
    assert local.lans[0].dhcp == a.lans[0].dhcp


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "ha.lans.0.address",
            "192.168.19.1/24",
            r"ha\.lans\[0\]\.address: 192\.168\.19\.1 is the shared",
        ),
        (
            "ha.lans.0.address",
            "10.1.1.3/24",
            r"ha\.lans\[0\]\.address: .* not in the shared 192\.168\.19\.0/24",
        ),
        ("ha.lans.0.address", "192.168.19.50/24", r"inside the DHCP pool"),
        ("ha.lans.1.vrid", 19, None),  # another interface: the same VRID is fine
        ("ha.wans.0.vrid", 19, None),  # a VRID is per segment (RFC 5798 5.2.3)
        ("ha.lans.0.lan", "nosuch", r"ha\.lans\[0\]\.lan: no LAN is named 'nosuch'"),
        ("ha.wans.0.address", "192.168.0.1/24", r"192\.168\.0\.1 is the gateway of uplink"),
        ("ha.priority", 255, r"ha\.priority: must be at most 254"),
        ("ha.advert_interval", "5ms", r"ha\.advert_interval"),
        ("ha.lans.0.password", "secret", r"ha\.lans\[0\]\.password: a password needs VRRPv2"),
        ("ha.lans.0.password", "muchtoolong", r"1-8 bytes"),
        ("ha.sync.peer", "10.99.0.1", r"ha\.sync\.peer: .* another address"),
        ("ha.sync.interface", "ether2", r"ha\.sync\.interface: ether2 is a LAN or uplink"),
    ],
)
def test_what_cannot_work_is_refused(path: str, value: object, expected: str | None) -> None:
    text = _edit(path, value)
    if expected is None:
        loads(text, "pair.yaml")
        return
    problems = _problems(text)
    assert any(re.search(expected, p) for p in problems), problems
    assert all(p.startswith("pair.yaml:") for p in problems)


def test_password_works_with_whole_second_adverts() -> None:
    text = _edit("ha.advert_interval", "1s")
    data = yaml.safe_load(text)
    data["ha"]["lans"][0]["password"] = "secret"
    cfg = loads(yaml.safe_dump(data), "pair.yaml")
    assert cfg.ha is not None and cfg.ha.lans[0].password == "secret"


def test_every_lan_and_nated_uplink_must_be_in_the_pair() -> None:
    data = yaml.safe_load(A.read_text())
    del data["ha"]["lans"][1]
    del data["ha"]["wans"][0]
    problems = _problems(yaml.safe_dump(data, sort_keys=False))
    assert any("lans[1]: the pair must hold this LAN's gateway" in p for p in problems), problems
    assert any("wans[0]: add this uplink under ha.wans" in p for p in problems), problems
    data["nat"]["masquerade"] = False
    problems = _problems(yaml.safe_dump(data, sort_keys=False))
    assert not any("ha.wans" in p for p in problems), problems


def test_error_names_the_line() -> None:
    text = A.read_text().replace("vrid: 20}", "vrid: 300}")
    line = next(n for n, s in enumerate(text.splitlines(), 1) if "vrid: 300" in s)
    (problem,) = _problems(text)
    assert problem.startswith(f"pair.yaml:{line}: ha.lans[1].vrid:"), problem


def test_forwarded_traffic_is_nated_to_the_shared_address() -> None:
    local = local_view(load(A))
    assert snat(local) == [
        ("ether1", IPv4Address("192.168.0.3"), IPv4Address("192.168.0.2")),
        ("ether2", IPv4Address("192.168.18.3"), IPv4Address("192.168.18.2")),
    ]
    assert snat(load(EXAMPLES / "office.yaml")) == []


def test_a_pair_deletes_no_flow() -> None:
    # conntrackd would replicate the delete to the peer that may carry the flow on
    single = intent_from_config(load(EXAMPLES / "office.yaml"), flush=["INET-UTAMA"])
    pair = intent_from_config(local_view(load(A)), flush=["INET-UTAMA"])
    assert single.flush == ("INET-UTAMA",)
    assert pair.flush == ()
