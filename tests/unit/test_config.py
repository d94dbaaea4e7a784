"""Loader errors: every rule names file, line and field, and all problems come at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from wanwatch.cli import main
from wanwatch.config import Monitor, format_duration, load, loads, parse_duration
from wanwatch.config.load import validate
from wanwatch.errors import ConfigError

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(text, "t.yaml")
    return info.value.problems


def one(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def office_with(old: str, new: str, count: int = 1) -> str:
    text = OFFICE.read_text()
    assert text.count(old) >= count, old
    return text.replace(old, new, count)


def line_of(text: str, needle: str, nth: int = 1) -> int:
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[nth - 1]


def test_reference_office_loads() -> None:
    cfg = load(OFFICE)
    assert [w.name for w in cfg.wans] == ["INET-UTAMA", "BACKUP-INET"]
    assert [lan.interface for lan in cfg.lans] == ["ether3", "wlan1"]
    assert cfg.lans[0].dhcp is not None and cfg.lans[0].dhcp.lease_time == 86400
    assert cfg.lans[1].dhcp is not None and cfg.lans[1].dhcp.lease_time == 3600
    assert cfg.hooks.on_down == ("logger", "-t", "wanwatch", "uplink {wan} is down")
    assert cfg.policy.mode == "failover"
    mon = cfg.monitor_for(cfg.wans[0])
    assert mon.interval == 0.5 and mon.up_after == 5 and mon.hold == 10


def test_the_example_is_the_shared_reference_unchanged() -> None:
    shared = OFFICE.parents[2] / "shared" / "examples" / "office.yaml"
    if shared.exists():  # the CI clone has shared/ beside it
        assert shared.read_text() == OFFICE.read_text()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("10s", 10), ("5m", 300), ("1h", 3600), ("1d", 86400), (3, 3), (0.25, 0.25)],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["5 minutes", "-1s", "1w", "", True, None])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_format_duration_round_trips() -> None:
    for s in (0.5, 10, 300, 3600, 86400, 90):
        assert parse_duration(format_duration(s)) == s


def test_per_wan_override_beats_global_monitor() -> None:
    text = office_with("policy:\n", "monitor:\n  interval: 1s\n  hold: 30s\npolicy:\n")
    text = text.replace(
        "targets: [9.9.9.9, 8.8.4.4]", "targets: [9.9.9.9, 8.8.4.4]\n      hold: 2m"
    )
    cfg = loads(text)
    assert cfg.monitor_for(cfg.wans[0]).hold == 30
    assert cfg.monitor_for(cfg.wans[1]).hold == 120
    assert cfg.monitor_for(cfg.wans[1]).interval == 1


# --- one test per class of mistake: exit 2 semantics live in the CLI test below.


def test_unknown_key_named_with_line() -> None:
    text = office_with("    priority: 2\n", "    priority: 2\n    prority: 3\n")
    msg = one(text)
    assert msg == f"t.yaml:{line_of(text, 'prority')}: wans[1].prority: unknown key"


def test_unknown_top_level_key() -> None:
    text = OFFICE.read_text() + "\nfirewal: {}\n"
    assert one(text).endswith("firewal: unknown key")


def test_duplicate_yaml_key() -> None:
    text = office_with("    priority: 1 ", "    priority: 1\n    priority: 1 ")
    assert "wans[0].priority: key given twice" in one(text)


def test_duplicate_names() -> None:
    text = office_with("name: BACKUP-INET", "name: INET-UTAMA")
    assert re.search(
        r"t.yaml:\d+: wans\[1\].name: name 'INET-UTAMA' already used by wans\[0\]", one(text)
    )


def test_duplicate_interfaces_across_wan_and_lan() -> None:
    text = office_with("interface: wlan1", "interface: ether1")
    msg = one(text)
    assert f":{line_of(text, 'interface: ether1', 2)}: lans[1].interface:" in msg
    assert "already used by wans[0]" in msg


@pytest.mark.parametrize("name", ["eth0/1", "a-very-long-interface-name", "eth 0", "eth:0", ".."])
def test_interface_names_linux_cannot_have(name: str) -> None:
    text = office_with("interface: ether2", f"interface: '{name}'")
    assert "wans[1].interface:" in one(text)
    assert "not a Linux interface name" in one(text)


def test_gateway_outside_subnet() -> None:
    text = office_with("gateway: 192.168.18.1", "gateway: 192.168.17.1")
    msg = one(text)
    assert msg == (
        f"t.yaml:{line_of(text, '192.168.17.1')}: wans[1].gateway: "
        "192.168.17.1 is outside the uplink's subnet 192.168.18.0/24"
    )


def test_gateway_is_own_address() -> None:
    text = office_with("gateway: 192.168.18.1", "gateway: 192.168.18.2")
    assert "is the uplink's own address" in one(text)


def test_overlapping_subnets_wan_lan() -> None:
    text = office_with("address: 192.168.20.1/24", "address: 192.168.18.129/25")
    text = text.replace("192.168.20.2-192.168.20.254", "192.168.18.130-192.168.18.200")
    msg = one(text)
    assert "lans[1].address: subnet 192.168.18.128/25 overlaps 192.168.18.0/24 of wans[1]" in msg


def test_overlapping_lans() -> None:
    text = office_with("address: 192.168.20.1/24", "address: 192.168.19.200/24")
    text = text.replace("192.168.20.2-192.168.20.254", "192.168.19.201-192.168.19.210")
    found = problems(text)
    assert any("lans[1].address: subnet 192.168.19.0/24 overlaps" in p for p in found)


def test_dhcp_range_outside_lan() -> None:
    text = office_with("192.168.20.2-192.168.20.254", "192.168.21.2-192.168.21.254")
    assert "lans[1].dhcp.range: 192.168.21.2-192.168.21.254 is outside the LAN" in one(text)


def test_dhcp_range_reversed() -> None:
    text = office_with("192.168.20.2-192.168.20.254", "192.168.20.254-192.168.20.2")
    assert "is reversed" in one(text)


def test_dhcp_range_contains_router() -> None:
    text = office_with("192.168.19.2-192.168.19.254", "192.168.19.1-192.168.19.254")
    msg = one(text)
    assert f":{line_of(text, '192.168.19.1-')}: lans[0].dhcp.range:" in msg
    assert "contains the router's own address 192.168.19.1" in msg


def test_dhcp_range_not_a_range() -> None:
    text = office_with("192.168.19.2-192.168.19.254", "192.168.19.2")
    assert "lans[0].dhcp.range: '192.168.19.2' is not a range" in one(text)


def test_probe_target_inside_lan() -> None:
    text = office_with("[9.9.9.9, 8.8.4.4]", "[9.9.9.9, 192.168.19.50]")
    assert "wans[1].probe.targets[1]: 192.168.19.50 is inside lans[0]'s subnet" in one(text)


def test_probe_target_inside_uplink_subnet() -> None:
    text = office_with("[9.9.9.9, 8.8.4.4]", "[9.9.9.9, 192.168.18.1]")
    assert "wans[1].probe.targets[1]: 192.168.18.1 is inside wans[1]'s subnet" in one(text)


def test_probe_target_shared_by_two_uplinks() -> None:
    text = office_with("[9.9.9.9, 8.8.4.4]", "[9.9.9.9, 8.8.8.8]")
    assert "wans[1].probe.targets[1]: 8.8.8.8 is already a probe target of wans[0]" in one(text)


def test_probe_target_not_an_address() -> None:
    text = office_with("[9.9.9.9, 8.8.4.4]", "[9.9.9.9, dns.quad9]")
    assert one(text).endswith("wans[1].probe.targets[1]: not an IPv4 or IPv6 address")


def test_empty_probe_targets() -> None:
    text = office_with("[9.9.9.9, 8.8.4.4]", "[]")
    assert one(text).endswith("wans[1].probe.targets: must not be empty")


@pytest.mark.parametrize(
    ("field", "value"), [("priority", 0), ("priority", 256), ("weight", 0), ("weight", 101)]
)
def test_priority_and_weight_range(field: str, value: int) -> None:
    old = "    priority: 2\n    weight: 1"
    new = old.replace(f"{field}: {2 if field == 'priority' else 1}", f"{field}: {value}")
    msg = one(office_with(old, new))
    assert f"wans[1].{field}: must be" in msg


def test_hook_must_be_argv_list() -> None:
    text = office_with(
        'on_up: ["logger", "-t", "wanwatch", "uplink {wan} is up"]', 'on_up: "logger up"'
    )
    assert "hooks.on_up: a hook is a non-empty argv list" in one(text)


def test_hook_items_must_be_strings() -> None:
    text = office_with(
        'on_up: ["logger", "-t", "wanwatch", "uplink {wan} is up"]', "on_up: [logger, 3]"
    )
    assert "hooks.on_up: every argv item must be a string" in one(text)


def test_zero_uplinks() -> None:
    assert one("wans: []\n").endswith("wans: must list at least one uplink")
    assert one("lans: []\n").endswith("wans: required: at least one uplink")


def test_more_uplinks_than_tables_and_marks() -> None:
    wans = "".join(
        f"  - {{name: W{i}, interface: eth{i}, address: 10.{i}.0.2/24, gateway: 10.{i}.0.1, "
        f"probe: {{targets: [198.51.100.{i + 1}]}}}}\n"
        for i in range(17)
    )
    assert one(f"wans:\n{wans}").endswith(
        "wans: lists 17 uplinks; at most 16 (each has a routing table and mark of its own)"
    )


def test_static_lease_checks() -> None:
    text = office_with(
        "      lease_time: 1h\n",
        "      lease_time: 1h\n      static:\n"
        "        - {mac: 'aa:bb:cc:dd:ee:01', address: 192.168.20.50, hostname: printer}\n"
        "        - {mac: 'AA:BB:CC:DD:EE:01', address: 192.168.20.50}\n"
        "        - {mac: 'aa:bb:cc:dd:ee:02', address: 192.168.19.60}\n"
        "        - {mac: 'nope', address: 192.168.20.1}\n",
    )
    found = problems(text)
    joined = "\n".join(found)
    assert "static[1].mac: aa:bb:cc:dd:ee:01 already has a static lease" in joined
    assert "static[1].address: 192.168.20.50 already given to" in joined
    assert "static[2].address: 192.168.19.60 is outside the LAN" in joined
    assert "static[2].address: 192.168.19.60 is inside the pool of lans[0]" in joined
    assert "static[3].mac: 'nope' is not a MAC address" in joined


def test_yaml_syntax_error_has_line() -> None:
    msg = one("wans:\n  - name: [unclosed\n")
    assert msg.startswith("t.yaml:") and "yaml:" in msg


def test_three_mistakes_report_three_in_line_order() -> None:
    text = office_with("gateway: 192.168.18.1", "gateway: 192.168.17.1")
    text = text.replace("weight: 1  ", "weight: 0  ", 1)
    text = text.replace("192.168.20.2-192.168.20.254", "192.168.20.254-192.168.20.2")
    found = problems(text)
    assert len(found) == 3, found
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines)
    assert "wans[0].weight" in found[0]
    assert "wans[1].gateway" in found[1]
    assert "lans[1].dhcp.range" in found[2]


def test_cli_check_ok_and_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["check", "-c", str(OFFICE)])
    assert ok.exit_code == 0, ok.output
    assert "INET-UTAMA" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(office_with("gateway: 192.168.18.1", "gateway: 192.168.17.1"))
    res = runner.invoke(main, ["check", "-c", str(bad)])
    assert res.exit_code == 2
    assert f"{bad}:" in res.output and "wans[1].gateway" in res.output
    assert "Traceback" not in res.output


def test_cli_missing_file_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["check", "-c", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2


def test_cli_check_explain_shows_overrides_and_bounds(tmp_path: Path) -> None:
    text = office_with("targets: [9.9.9.9, 8.8.4.4]", "targets: [9.9.9.9, 8.8.4.4]\n      hold: 2m")
    path = tmp_path / "o.yaml"
    path.write_text(text)
    res = CliRunner().invoke(main, ["check", "-c", str(path), "--explain"])
    assert res.exit_code == 0, res.output
    backup = res.output.split("BACKUP-INET:", 1)[1]
    assert "hold           2m       (probe:; 0s-1d)" in backup
    primary = res.output.split("  INET-UTAMA:\n", 1)[1].split("BACKUP-INET:", 1)[0]
    assert "hold           10s      (default; 0s-1d)" in primary


@pytest.mark.parametrize(
    "domain", [".".join(["a" * 63] * 4), "office.-lan", "office.lan-", "-office.lan", "a..b"]
)
def test_domain_names_dnsmasq_would_refuse(domain: str) -> None:
    # dnsmasq refuses names past ~1010 characters with "bad option"; RFC 1035 caps at 253
    msg = one(office_with("dns:\n", f"dns:\n  domain: '{domain}'\n"))
    assert "dns.domain:" in msg


@pytest.mark.parametrize(
    ("value", "message"),
    [("'2'", "not a whole number"), ("true", "not a whole number"), ("1.5", "not a whole number")],
)
def test_numbers_are_strict(value: str, message: str) -> None:
    # YAML text, booleans and fractions are not quietly turned into a priority
    msg = one(office_with("    priority: 2\n", f"    priority: {value}\n"))
    assert msg.endswith(f"wans[1].priority: {message}")


def test_probe_overrides_have_the_monitor_bounds() -> None:
    # a per-uplink override is held to the same bounds as the global monitor block
    text = office_with(
        "targets: [9.9.9.9, 8.8.4.4]", "targets: [9.9.9.9, 8.8.4.4]\n      interval: 20ms"
    )
    msg = one(text)
    line = line_of(text, "interval: 20ms")
    assert msg == f"t.yaml:{line}: wans[1].probe.interval: must be at least 100ms"


def test_clean_min_timeout_is_bounded_globally_and_per_uplink() -> None:
    text = office_with("policy:\n", "monitor:\n  clean_min_timeout: 5ms\npolicy:\n")
    line = line_of(text, "clean_min_timeout: 5ms")
    assert one(text) == f"t.yaml:{line}: monitor.clean_min_timeout: must be at least 10ms"
    text = office_with(
        "targets: [9.9.9.9, 8.8.4.4]", "targets: [9.9.9.9, 8.8.4.4]\n      clean_min_timeout: 30ms"
    )
    cfg = loads(text, "t.yaml")
    assert cfg.monitor_for(cfg.wans[1]).clean_min_timeout == 0.03
    assert cfg.monitor_for(cfg.wans[0]).clean_min_timeout == 0.05


def test_every_problem_inside_one_item() -> None:
    text = office_with(
        "    priority: 2\n    weight: 1", "    priority: 0\n    weight: x\n    colour: red"
    )
    found = problems(text)
    assert [p.split(": ", 1)[1] for p in found] == [
        "wans[1].priority: must be at least 1",
        "wans[1].weight: not a whole number",
        "wans[1].colour: unknown key",
    ]


def test_policy_mode_names_the_choices() -> None:
    msg = one(office_with("mode: failover", "mode: roundrobin"))
    assert msg.endswith("policy.mode: must be one of 'failover' or 'loadbalance'")


def test_validate_reads_a_section_like_the_file() -> None:
    mon = validate(Monitor, {"interval": "250ms", "hold": "1m"})
    assert (mon.interval, mon.hold, mon.up_after) == (0.25, 60.0, 5)
    with pytest.raises(ConfigError) as info:
        validate(Monitor, {"interval": "fast", "up_after": 0})
    assert [p.split(": ", 1)[1] for p in info.value.problems] == [
        "interval: not a duration: 'fast' (use 500ms, 10s, 5m, 1h, 1d or seconds)",
        "up_after: must be at least 1",
    ]


def _paths(data: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [path]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*path, i))
    return out


_JUNK = [None, "x", 0, -1, 1.5, True, [], {}, [None], ["x", 3], {"a": 1}, "1.2.3.4", "10.0.0.1/8"]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_broken_value_is_a_config_error_never_a_crash(data: st.DataObject) -> None:
    office = yaml.safe_load(OFFICE.read_text())
    paths = _paths(office)[1:]
    for _ in range(data.draw(st.integers(1, 3))):
        *parent, last = data.draw(st.sampled_from(paths))
        node = office
        try:
            for p in parent:
                node = node[p]
            node[last] = data.draw(st.sampled_from(_JUNK))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier junk value replaced this path's parent
    try:
        cfg = loads(yaml.safe_dump(office), "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems and all(p.startswith("fuzz.yaml:") for p in exc.problems)
    else:
        assert cfg.wans  # whatever was accepted is a whole, usable config


@pytest.mark.parametrize(
    "text",
    ["wans: &a [*a]\n", "wans: " + "[" * 40 + "]" * 40 + "\n"],
    ids=["recursive-alias", "deep-nesting"],
)
def test_recursive_alias_or_deep_nesting_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        loads(text, "x.yaml")
    assert any(
        "nested too deep" in p and p.startswith("x.yaml:1: wans[0]") for p in err.value.problems
    )
