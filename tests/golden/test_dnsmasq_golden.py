"""Golden files for the dnsmasq renderer and for dnsmasq's log turned into events.

Each ``tests/golden/dnsmasq/<case>.yaml`` (and the reference office) renders to
``<case>.conf``; ``log.txt`` read against ``log.yaml`` gives ``log.events``.
Rewrite the goldens after an intended change with ``WANWATCH_UPDATE_GOLDENS=1``
and read the diff. Every golden config must also pass the real ``dnsmasq --test``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from wanwatch.config import Config, load
from wanwatch.config.ipv6 import ipv6_lans
from wanwatch.errors import DnsmasqError
from wanwatch.linux.dnsmasq import check, idle_reason, log_event, render

HERE = Path(__file__).parent / "dnsmasq"
OFFICE = Path(__file__).parents[2] / "examples" / "office.yaml"
STATE_DIR = Path("/var/lib/wanwatch")

Compare = Callable[[str, Path], None]  # the ``golden`` fixture (conftest.py)
CASES = {
    "office": OFFICE,
    "static-domain": HERE / "static-domain.yaml",
    "router-dns": HERE / "router-dns.yaml",
    "no-address": HERE / "no-address.yaml",
    "rules": OFFICE.parent / "office-rules.yaml",
    "rules-dual-stack": HERE.parent / "rules" / "dual-stack-rules.yaml",
    "dual-stack": OFFICE.parent / "office-dual-stack.yaml",
    "upstream6": HERE / "upstream6.yaml",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_golden(case: str, golden: Compare) -> None:
    golden(render(load(CASES[case]), STATE_DIR), HERE / f"{case}.conf")


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_passes_dnsmasq_test(case: str, tmp_path: Path) -> None:
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(render(load(CASES[case]), tmp_path), encoding="utf-8")
    asyncio.run(check(conf))  # raises DnsmasqError with dnsmasq's message


def test_check_reports_dnsmasqs_own_message(tmp_path: Path) -> None:
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(render(load(OFFICE), tmp_path) + "dhcp-range=bogus\n", encoding="utf-8")
    with pytest.raises(DnsmasqError, match=r"bad dhcp-range at line \d+ of .*dnsmasq\.conf"):
        asyncio.run(check(conf))


def test_dual_stack_facts() -> None:
    """Every IPv6 LAN gets RAs with stateless DHCPv6, the router's own address as DNS."""
    cfg = load(CASES["dual-stack"])
    lines = render(cfg, STATE_DIR).splitlines()
    assert lines.count("enable-ra") == 1
    for lan, own in ipv6_lans(cfg):
        tag = f"lan-{lan.name}-v6"
        assert (
            f"dhcp-range=set:{tag},::,constructor:{lan.interface},ra-stateless,ra-names,3600"
            in lines
        )
        assert f"dhcp-option=tag:{tag},option6:dns-server,[{own.ip}]" in lines
    assert not any("enable-ra" in line for line in render(load(OFFICE), STATE_DIR).splitlines())


def test_office_facts() -> None:
    """What the issue asks of the reference office, read off the rendered text."""
    lines = render(load(OFFICE), STATE_DIR).splitlines()
    assert "dhcp-range=set:lan-ether3,192.168.19.2,192.168.19.254,255.255.255.0,86400" in lines
    assert "dhcp-range=set:lan-WIFI,192.168.20.2,192.168.20.254,255.255.255.0,3600" in lines
    assert "dhcp-option=tag:lan-WIFI,option:router,192.168.20.1" in lines
    # only our LAN interfaces, never an uplink, never the host's files
    assert [s for s in lines if s.startswith("interface=")] == [
        "interface=ether3",
        "interface=wlan1",
    ]
    assert not any("ether1" in s or "ether2" in s for s in lines)
    for required in ("no-resolv", "no-hosts", "bind-dynamic", "except-interface=lo"):
        assert required in lines
    assert "pid-file=/var/lib/wanwatch/dnsmasq.pid" in lines
    assert "dhcp-leasefile=/var/lib/wanwatch/dnsmasq.leases" in lines


def test_state_dir_that_dnsmasq_cannot_name_is_refused() -> None:
    with pytest.raises(DnsmasqError, match="quotes or spaces"):
        render(load(OFFICE), Path("/var/lib/my state"))


def _minimal(lans: str, dns: str = "") -> Config:
    from wanwatch.config import loads

    text = (
        "wans:\n  - {name: ISP, interface: wan0, gateway: 198.51.100.1,"
        " probe: {targets: [203.0.113.1]}}\n" + lans + dns
    )
    return loads(text)


def test_idle_without_anything_to_serve() -> None:
    assert idle_reason(_minimal("")) == "no LAN"
    dns_less = _minimal("lans:\n  - {name: L, interface: e3, address: 192.168.19.1/24}\n")
    assert idle_reason(dns_less) == "no LAN has dhcp or address6 and dns.upstream is empty"
    ra_only = _minimal(
        "lans:\n  - {name: L, interface: e3, address: 192.168.19.1/24, address6: auto}\n"
    )
    assert idle_reason(ra_only) is None  # its RAs are dnsmasq's to send
    dns_only = _minimal(
        "lans:\n  - {name: L, interface: e3, address: 192.168.19.1/24}\n",
        "dns: {upstream: [203.0.113.53]}\n",
    )
    assert idle_reason(dns_only) is None
    assert idle_reason(load(OFFICE)) is None


def test_log_lines_become_events(golden: Compare) -> None:
    config = load(HERE / "log.yaml")
    lines = (HERE / "log.txt").read_text(encoding="utf-8").splitlines()
    rendered = []
    for line in lines:
        ev = log_event(line, config, 0.0)
        rendered.append("-" if ev is None else str(ev))
    golden("\n".join(rendered) + "\n", HERE / "log.events")
