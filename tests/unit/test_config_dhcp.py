"""Config checks added for dnsmasq: values the model took but dnsmasq would misread.

Each error is ``file:line: path: message`` like every config error.
"""

from __future__ import annotations

import pytest

from wanwatch.config import Config, loads
from wanwatch.errors import ConfigError

HEAD = """\
wans:
  - name: ISP
    interface: wan0
    address: 198.51.100.2/24
    gateway: 198.51.100.1
    probe: {targets: [203.0.113.1]}
lans:
"""


def _lan(interface: str = "ether3", lease_time: str = "1h", static: str = "") -> str:
    return f"""\
  - name: office
    interface: {interface}
    address: 192.168.19.1/24
    dhcp:
      range: 192.168.19.100-192.168.19.199
      lease_time: {lease_time}
{static}"""


def _static(*hostnames: str) -> str:
    lines = ["      static:"]
    for i, name in enumerate(hostnames):
        lines.append(f'        - {{mac: "02:00:00:00:19:{i:02x}", address: 192.168.19.{10 + i},')
        lines.append(f'           hostname: "{name}"}}')
    return "\n".join(lines) + "\n"


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(text, "office.yaml")
    return info.value.problems


def _ok(text: str) -> Config:
    return loads(text, "office.yaml")


@pytest.mark.parametrize("word", ["45m", "3600", "1W", "7d", "infinite", "ignore", "Ignore"])
def test_hostname_dnsmasq_reads_as_lease_time_or_keyword(word: str) -> None:
    # line 16 is the hostname of static[0]
    assert _problems(HEAD + _lan(static=_static(word))) == [
        f"office.yaml:16: lans[0].dhcp.static[0].hostname: '{word}' reads as a lease time"
        " or keyword to dnsmasq; pick another host name"
    ]


@pytest.mark.parametrize("word", ["laptop", "m45", "4x4", "45min", "printer-2"])
def test_ordinary_hostnames_stay_valid(word: str) -> None:
    cfg = _ok(HEAD + _lan(static=_static(word)))
    dhcp = cfg.lans[0].dhcp
    assert dhcp is not None and dhcp.static[0].hostname == word


def test_hostnames_are_one_name_space_case_insensitive() -> None:
    assert _problems(HEAD + _lan(static=_static("printer", "Printer"))) == [
        "office.yaml:18: lans[0].dhcp.static[1].hostname: Printer already names"
        " lans[0].dhcp.static[0]"
    ]


def test_duplicate_hostname_across_lans() -> None:
    second = """\
  - name: WIFI
    interface: wlan1
    address: 192.168.20.1/24
    dhcp:
      range: 192.168.20.100-192.168.20.199
      static: [{mac: "02:00:00:00:20:01", address: 192.168.20.5, hostname: printer}]
"""
    problems = _problems(HEAD + _lan(static=_static("printer")) + second)
    assert problems == [
        "office.yaml:22: lans[1].dhcp.static[0].hostname: printer already names"
        " lans[0].dhcp.static[0]"
    ]


def test_lease_time_is_whole_seconds() -> None:
    assert _problems(HEAD + _lan(lease_time="120500ms")) == [
        "office.yaml:13: lans[0].dhcp.lease_time: a DHCP lease time is a whole number"
        " of seconds (RFC 2132 option 51)"
    ]
    dhcp = _ok(HEAD + _lan(lease_time="121000ms")).lans[0].dhcp
    assert dhcp is not None and dhcp.lease_time == 121.0


@pytest.mark.parametrize("name", ["'e\"3'", '"e,3"', '"eth*"'])
def test_lan_interface_dnsmasq_cannot_name(name: str) -> None:
    (problem,) = _problems(HEAD + _lan(interface=name))
    assert problem.startswith("office.yaml:9: lans[0].interface: ")
    assert "dnsmasq cannot name a LAN interface containing" in problem


def test_uplink_interface_is_not_dnsmasqs_business() -> None:
    text = HEAD.replace("interface: wan0", 'interface: "wan,0"') + _lan()
    assert _ok(text).wans[0].interface == "wan,0"


def test_all_problems_at_once() -> None:
    text = HEAD + _lan(interface='"e,3"', lease_time="150.5", static=_static("ignore"))
    assert [p.split(": ")[1] for p in _problems(text)] == [
        "lans[0].interface",
        "lans[0].dhcp.lease_time",
        "lans[0].dhcp.static[0].hostname",
    ]
