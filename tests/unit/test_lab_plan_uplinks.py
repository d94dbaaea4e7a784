"""The lab's plan for 1 to 4 uplinks: a /25 per ISP past two, nothing moved up to two."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network
from pathlib import Path

import pytest
import yaml

from wanwatch.config import Config, load
from wanwatch.errors import LabError
from wanwatch.lab.plan import DOC_NET6, INET_NET6, Topology, add_uplinks, plan

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"
ALLOWED = (IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"))
HALVES = tuple(
    IPv4Network(n)
    for n in ("198.51.100.0/25", "198.51.100.128/25", "203.0.113.0/25", "203.0.113.128/25")
)


def office(tmp_path: Path, uplinks: int) -> Config:
    data = add_uplinks(yaml.safe_load(OFFICE.read_text()), uplinks)
    path = tmp_path / f"office-{uplinks}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load(path)


def public_addresses(topo: Topology) -> list[IPv4Address]:
    """Every fake-internet IPv4 address of the plan: ISP links, hosts, targets."""
    found = list(topo.hosts)
    for isp in topo.isps:
        found += [isp.public.ip, isp.inet_side.ip]
    return found


def test_two_uplinks_keep_their_addresses() -> None:
    topo = plan(load(OFFICE), "t")
    got = [
        (str(i.net), str(i.public), str(i.inet_side), [str(t) for t in i.targets], str(i.net6))
        for i in topo.isps
    ]
    assert got == [
        (
            "198.51.100.0/24",
            "198.51.100.2/30",
            "198.51.100.1/30",
            ["198.51.100.10", "198.51.100.11"],
            "2001:db8:1::/48",
        ),
        (
            "203.0.113.0/24",
            "203.0.113.2/30",
            "203.0.113.1/30",
            ["203.0.113.10", "203.0.113.11"],
            "2001:db8:2::/48",
        ),
    ]
    assert [str(a) for a in topo.whoami] == ["198.51.100.80", "203.0.113.80"]
    assert [str(a) for a in topo.dns_servers] == ["198.51.100.53", "203.0.113.53", "198.51.100.54"]
    assert [(n, str(a)) for n, a in topo.dns_records] == [
        ("server.lab.test", "203.0.113.80"),
        ("www.lab.test", "198.51.100.80"),
        ("dns.lab.test", "198.51.100.53"),
    ]


def test_add_uplinks_to_two_changes_nothing(tmp_path: Path) -> None:
    assert plan(office(tmp_path, 2), "t") == plan(load(OFFICE), "t")


@pytest.mark.parametrize("uplinks", [3, 4])
def test_more_uplinks_get_a_half_range_each(tmp_path: Path, uplinks: int) -> None:
    topo = plan(office(tmp_path, uplinks), "t")
    assert [i.net for i in topo.isps] == list(HALVES[:uplinks])
    for isp in topo.isps:
        # The ISP's own link, gateway side and targets lie in its half.
        own = [isp.public.ip, isp.inet_side.ip, *isp.targets]
        assert all(a in isp.net for a in own), (isp.wan, own)
        assert isp.public.network.subnet_of(isp.net)
        assert isp.net6.subnet_of(DOC_NET6) and not isp.net6.overlaps(INET_NET6)
        assert isp.routed6.subnet_of(isp.net6) and isp.customer_net6.subnet_of(isp.net6)
    # Every half has a web and a DNS server, each named in the lab DNS.
    assert all(any(w in n for w in topo.whoami) for n in HALVES)
    assert all(any(d in n for d in topo.dns_servers) for n in HALVES)
    named = {a for _, a in topo.dns_records}
    assert set(topo.whoami) <= named
    # Disjoint, and only in the two allowed ranges (never 192.0.2.0/24).
    found = public_addresses(topo)
    assert len(found) == len(set(found))
    assert all(any(a in n for n in ALLOWED) for a in found), found
    links = [i.public.network for i in topo.isps]
    assert not any(a.overlaps(b) for j, a in enumerate(links) for b in links[j + 1 :])
    nets6: list[IPv6Network] = [i.net6 for i in topo.isps]
    assert len(set(nets6)) == uplinks
    assert len({i.customer_net for i in topo.isps}) == uplinks


def test_five_uplinks_are_refused(tmp_path: Path) -> None:
    data = add_uplinks(yaml.safe_load(OFFICE.read_text()), 4)
    fifth = {**data["wans"][-1], "name": "WAN5", "interface": "wan5", "priority": 5}
    fifth |= {"address": "10.60.0.2/24", "gateway": "10.60.0.1"}
    data["wans"].append(fifth | {"probe": {"targets": ["198.51.100.99"]}})
    path = tmp_path / "office-5.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(LabError, match="ranges for 4 uplinks; the config has 5"):
        plan(load(path), "t")
