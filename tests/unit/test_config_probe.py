"""Probe targets by method, the portal choice, metered uplinks: loaded, checked, explained."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from wanwatch.cli import main
from wanwatch.config import Wan, load, loads
from wanwatch.config.load import validate
from wanwatch.config.model import DnsTarget, HttpTarget, IcmpTarget, TcpTarget
from wanwatch.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
OFFICE = ROOT / "examples" / "office.yaml"
LTE = ROOT / "examples" / "office-lte.yaml"
BACKUP_TARGETS = "targets: [9.9.9.9, 8.8.4.4]"


def with_targets(block: str, extra: str = "") -> str:
    """The office with the backup's targets replaced by ``block`` (indented as a list)."""
    text = OFFICE.read_text()
    assert BACKUP_TARGETS in text
    return text.replace(BACKUP_TARGETS, f"targets:\n{block}{extra}")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(text, "t.yaml")
    return info.value.problems


def line_of(text: str, needle: str) -> int:
    return next(i + 1 for i, line in enumerate(text.splitlines()) if needle in line)


MIXED = """\
        - 9.9.9.9
        - {method: tcp, address: 9.9.9.9, port: 443}
        - method: http
          address: 9.9.9.10
          url: http://connectivitycheck.example/generate_204?x=1
          interval: 30s
        - {method: dns, address: 9.9.9.9, name: example.com, answer: 93.184.216.34}
"""


def test_each_method_is_its_own_small_section() -> None:
    cfg = loads(with_targets(MIXED), "t.yaml")
    icmp, tcp, http, dns = cfg.wans[1].probe.targets
    assert icmp == IcmpTarget(address=IPv4Address("9.9.9.9"))
    assert isinstance(tcp, TcpTarget) and (tcp.port, tcp.interval) == (443, 2.0)
    assert isinstance(http, HttpTarget) and (http.expect, http.interval) == (204, 30.0)
    assert isinstance(dns, DnsTarget) and dns.answer == IPv4Address("93.184.216.34")
    assert [t.method for t in cfg.wans[1].probe.targets] == ["icmp", "tcp", "http", "dns"]
    # one address may be asked several ways on one uplink; a route pins it once
    assert cfg.wans[1].probe.addresses == (IPv4Address("9.9.9.9"), IPv4Address("9.9.9.10"))
    assert [t.label for t in cfg.wans[1].probe.targets] == [
        "9.9.9.9",
        "tcp 9.9.9.9:443",
        "http 9.9.9.10 http://connectivitycheck.example/generate_204?x=1",
        "dns 9.9.9.9 example.com",
    ]


def test_plain_addresses_stay_icmp_and_the_reference_office_is_unchanged() -> None:
    cfg = load(OFFICE)
    for w in cfg.wans:
        assert all(isinstance(t, IcmpTarget) for t in w.probe.targets)
        assert w.probe.portal == "down" and not w.metered


def test_an_uplink_round_trips_through_plain_data() -> None:
    cfg = loads(with_targets(MIXED), "t.yaml")
    for w in cfg.wans:
        assert validate(Wan, yaml.safe_load(yaml.safe_dump(w.to_data(drop_none=True)))) == w


def test_every_mistake_names_its_field_and_line() -> None:
    block = """\
        - {method: tcp, address: 9.9.9.9}
        - {method: smtp, address: 9.9.9.9}
        - {address: 9.9.9.11}
        - {method: http, address: 9.9.9.12, url: "https://example.com/", colour: red}
        - {method: http, address: 9.9.9.13, url: "http://example.com/", expect: 302}
        - {method: dns, address: 9.9.9.14, name: "no..such", interval: 100ms}
        - {method: tcp, address: 9.9.9.15, port: 70000}
"""
    text = with_targets(block)
    found = problems(text)
    at = {n: line_of(text, n) for n in ("port: 70000", "smtp", "9.9.9.11", "https", "302", "no..")}
    assert found == [
        f"t.yaml:{at['smtp'] - 1}: wans[1].probe.targets[0].port: required",
        f"t.yaml:{at['smtp']}: wans[1].probe.targets[1].method: "
        "must be one of 'icmp', 'tcp', 'http' or 'dns'",
        f"t.yaml:{at['9.9.9.11']}: wans[1].probe.targets[2].method: "
        "required: one of 'icmp', 'tcp', 'http' or 'dns'",
        f"t.yaml:{at['https']}: wans[1].probe.targets[3].colour: unknown key",
        f"t.yaml:{at['https']}: wans[1].probe.targets[3].url: "
        "only http:// is probed: a captive portal shows itself on plain HTTP",
        f"t.yaml:{at['302']}: wans[1].probe.targets[4].expect: must be at most 299",
        f"t.yaml:{at['no..']}: wans[1].probe.targets[5].name: "
        "'no..such' is not a domain name (labels of letters, digits, '-')",
        f"t.yaml:{at['no..']}: wans[1].probe.targets[5].interval: must be at least 500ms",
        f"t.yaml:{at['port: 70000']}: wans[1].probe.targets[6].port: must be at most 65535",
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "is not an http:// URL"),
        ("http:///generate_204", "is not an http:// URL"),
        ("http://user:pw@example.com/", "no credentials"),
        ("http://example.com/a b", "no credentials, spaces"),
        ("http://example.com:99999/", "is not a URL"),
    ],
)
def test_http_urls(url: str, message: str) -> None:
    item = f'        - {{method: http, address: 9.9.9.9, url: "{url}"}}\n'
    (found,) = problems(with_targets(item))
    assert "wans[1].probe.targets[0].url:" in found and message in found


def test_a_target_twice_and_an_address_on_two_uplinks_are_refused() -> None:
    twice = problems(with_targets("        - {method: tcp, address: 9.9.9.9, port: 53}\n" * 2))
    assert [p.split(": ", 1)[1] for p in twice] == [
        "wans[1].probe.targets: a probe target is listed twice"
    ]
    (shared,) = problems(with_targets("        - {method: dns, address: 8.8.8.8, name: a.b}\n"))
    assert "wans[1].probe.targets[0]: 8.8.8.8 is already a probe target of wans[0]" in shared


def test_portal_choice_metered_and_standby_interval() -> None:
    extra = "      portal: last_resort\n      standby_interval: 1m\n"
    text = with_targets("        - 9.9.9.9\n", extra)
    text = text.replace("    priority: 2\n", "    priority: 2\n    metered: true\n")
    cfg = loads(text, "t.yaml")
    backup = cfg.wans[1]
    assert backup.metered and backup.probe.portal == "last_resort"
    assert cfg.monitor_for(backup).standby_interval == 60.0
    assert cfg.monitor_for(cfg.wans[0]).standby_interval == 10.0
    (bad,) = problems(text.replace("portal: last_resort", "portal: ignore"))
    assert bad.endswith("wans[1].probe.portal: must be one of 'down' or 'last_resort'")


def test_the_lte_example_loads() -> None:
    cfg = load(LTE)
    methods = {t.method for w in cfg.wans for t in w.probe.targets}
    assert methods == {"icmp", "tcp", "http", "dns"}
    assert any(w.metered for w in cfg.wans)


def test_check_explain_shows_each_uplinks_probe_budget(tmp_path: Path) -> None:
    text = with_targets(MIXED).replace("    priority: 2\n", "    priority: 2\n    metered: true\n")
    path = tmp_path / "o.yaml"
    path.write_text(text)
    res = CliRunner().invoke(main, ["check", "-c", str(path), "--explain"])
    assert res.exit_code == 0, res.output
    budget = res.output.split("probe budget", 1)[1]
    primary = budget.split("  INET-UTAMA:\n", 1)[1].split("BACKUP-INET", 1)[0]
    # two ICMP targets share one probe per 500 ms: 2 * 84 bytes * 2 /s * 86400 s
    assert "icmp  2 targets    2.00 probes/s    29.03 MB/day" in primary
    assert "total              2.00 probes/s    29.03 MB/day" in primary
    carrying = budget.split("BACKUP-INET carrying:\n", 1)[1].split("standby", 1)[0]
    assert "tcp   1 target     0.50 probes/s" in carrying
    assert "http  1 target     0.03 probes/s" in carrying  # its own 30 s
    standby = budget.split("at most every 10s):\n", 1)[1]
    lines = dict(line.split(None, 1) for line in standby.strip().splitlines())
    assert lines["icmp"].startswith("1 target     0.10 probes/s")
    assert lines["tcp"].startswith("1 target     0.10 probes/s")  # 2 s stretched to 10 s
    assert lines["http"].startswith("1 target     0.03 probes/s")  # 30 s already slower
