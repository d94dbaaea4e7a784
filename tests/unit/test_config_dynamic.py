"""Uplinks that are not static in the config: address: dhcp, no gateway (point-to-point)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from wanwatch.cli import main
from wanwatch.config import load, loads
from wanwatch.config.dynamic import kind, static_address
from wanwatch.engine.intent import intent_from_config
from wanwatch.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DYNAMIC = EXAMPLES / "office-dynamic.yaml"


def wan_text(body: str) -> str:
    return (
        f"wans:\n  - name: A\n    interface: eth0\n{body}    probe: {{targets: [198.51.100.10]}}\n"
    )


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(text, "d.yaml")
    return info.value.problems


def test_the_dynamic_example_loads_with_both_kinds() -> None:
    cfg = load(DYNAMIC)
    dhcp, ppp = cfg.wans
    assert dhcp.address == "dhcp" and dhcp.gateway is None and kind(dhcp) == "dhcp"
    assert ppp.address is None and ppp.gateway is None and kind(ppp) == "point-to-point"
    assert static_address(dhcp) is None
    plans = intent_from_config(cfg).uplinks
    assert [p.kind for p in plans] == ["dhcp", "point-to-point"]
    assert plans[0].address is None and plans[0].gateway is None


def test_static_uplinks_are_unchanged() -> None:
    cfg = load(EXAMPLES / "office.yaml")
    assert [kind(w) for w in cfg.wans] == ["static", "static"]
    assert str(static_address(cfg.wans[0])) == "192.168.0.2/24"


def test_dhcp_with_a_fixed_gateway_names_file_and_line() -> None:
    (msg,) = problems(wan_text("    address: dhcp\n    gateway: 10.0.0.1\n"))
    assert msg.startswith("d.yaml:5: wans[0].gateway: 10.0.0.1: a DHCP uplink takes its gateway")


def test_point_to_point_address_with_a_gateway_it_cannot_reach() -> None:
    (msg,) = problems(wan_text("    address: 10.64.0.2/32\n    gateway: 10.64.0.1\n"))
    assert msg.startswith(
        "d.yaml:5: wans[0].gateway: 10.64.0.1 cannot be reached from 10.64.0.2/32"
    )


def test_point_to_point_without_gateway_is_fine() -> None:
    cfg = loads(wan_text("    address: 10.64.0.2/32\n"), "d.yaml")
    assert kind(cfg.wans[0]) == "point-to-point"


def test_address_neither_dhcp_nor_an_address() -> None:
    (msg,) = problems(wan_text("    address: dhcpp\n"))
    assert msg == (
        "d.yaml:4: wans[0].address: not an IPv4 address with prefix (e.g. 192.168.0.2/24) or 'dhcp'"
    )


def test_a_dhcp_uplink_overlaps_no_subnet() -> None:
    text = wan_text("    address: dhcp\n") + (
        "lans:\n  - name: L\n    interface: eth1\n    address: 10.0.0.1/24\n"
    )
    assert loads(text, "d.yaml").wans[0].address == "dhcp"


def test_check_and_plan_explain_what_only_run_time_knows(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["check", "-c", str(DYNAMIC)])
    assert res.exit_code == 0, res.output
    assert "known only at run time:" in res.output
    assert "LTE-DHCP: address, gateway and DNS come from a DHCP lease on ether1" in res.output
    assert "PPP-BACKUP: point-to-point on ppp0: routes via the interface" in res.output
    res = runner.invoke(main, ["plan", "-c", str(DYNAMIC)])
    assert res.exit_code == 0, res.output
    assert "main default route: via (DHCP lease) (LTE-DHCP)" in res.output
    assert "dev (point-to-point)" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        DYNAMIC.read_text().replace("address: dhcp", "address: dhcp\n    gateway: 10.0.0.1")
    )
    res = runner.invoke(main, ["check", "-c", str(bad)])
    assert res.exit_code == 2
    assert f"{bad}:18: wans[0].gateway" in res.output
