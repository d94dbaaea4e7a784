"""DHCPv6 prefix delegation: the ``dhcp6`` config, dhcpcd's script and config, the
delegated prefix as the uplink's ``prefix6`` at run time (translation and status)."""

from __future__ import annotations

import dataclasses
import subprocess
from ipaddress import IPv6Network
from pathlib import Path

import pytest
from test_config import one
from test_probe_status import answer, uplink

from wanwatch.cli.router import format_status
from wanwatch.config import loads
from wanwatch.config.dynamic import runtime_facts
from wanwatch.config.ipv6 import ipv4_only, nat66
from wanwatch.engine.events import Event
from wanwatch.engine.intent import intent_from_config
from wanwatch.linux import dhcp6_client
from wanwatch.linux.dhcp6_client import SCRIPT, Delegation, Dhcp6Client, parse_line
from wanwatch.linux.nft import render
from wanwatch.linux.uplinks import DynamicUplinks

BASE = """\
wans:
  - name: A
    interface: wan1
    address: 198.51.100.2/24
    gateway: 198.51.100.1
    address6: auto
    dhcp6: {prefix_length: 60}
    probe:
      targets: [198.18.0.10, "2001:db8:ffff::10"]
  - name: B
    interface: wan2
    address: 203.0.113.2/24
    gateway: 203.0.113.1
    address6: auto
    probe:
      targets: [198.18.0.20]
lans:
  - name: LAN
    interface: lan1
    address: 192.168.19.1/24
    address6: fd12:3456:789a::1/64
  - name: WIFI
    interface: lan2
    address: 192.168.20.1/24
    address6: fd12:3456:789a:1::1/64
"""
CFG = loads(BASE, "t.yaml")
LAN, WIFI = IPv6Network("fd12:3456:789a::/64"), IPv6Network("fd12:3456:789a:1::/64")
PD = IPv6Network("2001:db8:1:100::/60")


def test_dhcp6_loads_and_check_says_what_run_time_will_bring() -> None:
    a = CFG.wans[0]
    assert a.dhcp6 is not None and a.dhcp6.prefix_length == 60 and a.prefix6 is None
    facts = "\n".join(runtime_facts(CFG))
    assert "A: IPv6 prefix delegated by DHCPv6 on wan1" in facts and "a /60" in facts
    assert loads(BASE.replace("{prefix_length: 60}", "{}"), "t.yaml").wans[0].dhcp6 is not None
    assert ipv4_only(CFG).wans[0].dhcp6 is None  # RouterOS export: IPv4 only


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    address6: auto\n    dhcp6: {prefix_length: 60}\n    probe:\n      targets: "
            '[198.18.0.10, "2001:db8:ffff::10"]',
            "    dhcp6: {prefix_length: 60}\n    probe:\n      targets: [198.18.0.10]",
            "t.yaml:6: wans[0].dhcp6: dhcp6 needs address6 (a static IPv6 address or auto)",
        ),
        (
            "    dhcp6: {prefix_length: 60}\n",
            "    dhcp6: {prefix_length: 60}\n    prefix6: 2001:db8:100::/56\n",
            "t.yaml:8: wans[0].prefix6: 2001:db8:100::/56: with dhcp6 the uplink's prefix "
            "is the one the ISP delegates; remove prefix6 (a static delegation) or dhcp6",
        ),
        (
            "{prefix_length: 60}",
            "{prefix_length: 64}",
            "t.yaml:7: wans[0].dhcp6.prefix_length: a /64 holds 1 /64(s), and 2 LANs have "
            "IPv6: each is translated into a /64 of its own (RFC 6296)",
        ),
        ("{prefix_length: 60}", "{prefix_length: 65}", "t.yaml:7: wans[0].dhcp6.prefix_length"),
        ("{prefix_length: 60}", "{length: 60}", "t.yaml:7: wans[0].dhcp6.length: unknown key"),
    ],
)
def test_every_dhcp6_mistake_names_its_field_and_line(old: str, new: str, message: str) -> None:
    assert BASE.count(old) == 1
    assert one(BASE.replace(old, new)).startswith(message)


def run_script(tmp_path: Path, env: dict[str, str]) -> str:
    script = tmp_path / "dhcpcd-script"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    out = subprocess.run(
        [str(script)], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True,
        check=True, timeout=5,
    )  # fmt: skip
    return out.stdout


def ia_pd(n: int, prefix: str, length: int, pltime: int, vltime: int) -> dict[str, str]:
    """The variables dhcpcd 9 sets for prefix ``n`` of IA_PD 1 (seen in the lab)."""
    at = f"new_dhcp6_ia_pd1_prefix{n}"
    return {at: prefix, f"{at}_length": str(length), f"{at}_pltime": str(pltime),
            f"{at}_vltime": str(vltime)}  # fmt: skip


def test_the_script_hands_the_prefix_over_and_a_renumbering_picks_the_new_one(
    tmp_path: Path,
) -> None:
    bound = {"reason": "BOUND6", "interface": "wan1", **ia_pd(1, "2001:db8:1:100::", 60, 30, 40)}
    bound["old_dhcp6_ia_pd1_prefix1"] = "2001:db8:9::"  # old_ variables are not ours
    kind, d = parse_line(run_script(tmp_path, bound), 5.0) or ("", None)
    assert kind == "BOUND6" and d == Delegation(PD, 30, 40, 5.0)
    # RFC 8415 18.3.4: the renumbering server's reply holds the old prefix at lifetime 0
    rebind = {"reason": "REBIND6", **ia_pd(1, "2001:db8:1:100::", 60, 0, 0),
              **ia_pd(2, "2001:db8:1:110::", 60, 30, 40)}  # fmt: skip
    kind, d = parse_line(run_script(tmp_path, rebind).strip(), 6.0) or ("", None)
    assert kind == "REBIND6" and d is not None and d.prefix == IPv6Network("2001:db8:1:110::/60")
    stop = run_script(tmp_path, {"reason": "STOP6"})
    assert parse_line(stop, 7.0) == ("STOP6", None)
    assert parse_line("wan1: soliciting a DHCPv6 lease", 0.0) is None
    assert parse_line("wanwatch-pd\tBOUND6\tnew_dhcp6_ia_pd1_prefix1=zz", 0.0) == (
        "malformed",
        None,
    )


def test_dhcpcd_is_asked_for_a_prefix_only_and_to_configure_nothing(tmp_path: Path) -> None:
    text = dhcp6_client.config_text("wan1", tmp_path / "s", 56)
    lines = text.splitlines()
    assert {"ipv6only", "noipv4", "noipv6rs", f"script {tmp_path / 's'}"} <= set(lines)
    assert lines[-2:] == ["interface wan1", "  ia_pd 1/::/56 -"]  # delegated to no interface
    assert "  ia_pd 1 -" in dhcp6_client.config_text("wan1", tmp_path / "s", None)
    argv = dhcp6_client.command("wan1", tmp_path / "c.conf")
    assert argv[:4] == ["dhcpcd", "-B", "-6", "--noconfigure"] and argv[-1] == "wan1"


def test_the_delegated_prefix_is_the_translation_target_and_masquerade_until_bound() -> None:
    assert nat66(CFG) == [("wan1", None), ("wan2", None)]
    assert nat66(CFG, {"A": PD})[0] == (
        "wan1",
        {LAN: IPv6Network("2001:db8:1:100::/64"), WIFI: IPv6Network("2001:db8:1:101::/64")},
    )
    # too small for both LANs: masquerade rather than leave one LAN untranslated
    assert nat66(CFG, {"A": IPv6Network("2001:db8:1:100::/64")})[0] == ("wan1", None)
    base = intent_from_config(CFG, active=("A",))
    a = dataclasses.replace(base.uplinks[0], prefix6=PD)
    text = render(dataclasses.replace(base, uplinks=(a, base.uplinks[1])), CFG)
    assert (
        'oifname "wan1" snat ip6 prefix to ip6 saddr map { fd12:3456:789a::/64 : '
        "2001:db8:1:100::/64, fd12:3456:789a:1::/64 : 2001:db8:1:101::/64 }" in text
    )
    assert "2001:db8:1:100" not in render(base, CFG)


def test_a_delegation_reaches_the_intent_and_status_and_a_renumbering_is_heard(
    tmp_path: Path,
) -> None:
    events: list[Event] = []
    heard: list[tuple[str, IPv6Network | None, str]] = []
    client = Dhcp6Client(
        "A", "wan1", tmp_path, 60, emit=events.append,
        on_delegation=lambda w, d, why: heard.append((w, d.prefix if d else None, why)),
        now=lambda: 10.0,
    )  # fmt: skip
    assert "  ia_pd 1/::/60 -" in (tmp_path / "dhcpcd-A.conf").read_text()
    feed = client._supervisor.program.log_event  # what the log reader calls with each line
    feed("wanwatch-pd\tBOUND6\t" + "\t".join(f"{k}={v}" for k, v in
         ia_pd(1, "2001:db8:1:100::", 60, 30, 40).items()), 10.0)  # fmt: skip
    feed("wanwatch-pd\tRENEW6\t" + "\t".join(f"{k}={v}" for k, v in
         ia_pd(1, "2001:db8:1:100::", 60, 22, 32).items()), 18.0)  # fmt: skip
    assert heard == [("A", PD, "bound")]  # a renew of the same prefix changes nothing
    new = IPv6Network("2001:db8:1:110::/60")
    feed("wanwatch-pd\tREBIND6\t" + "\t".join(f"{k}={v}" for k, v in
         {**ia_pd(1, "2001:db8:1:100::", 60, 0, 0),
          **ia_pd(2, "2001:db8:1:110::", 60, 30, 40)}.items()), 26.0)  # fmt: skip
    assert heard[-1] == ("A", new, "rebind")
    renumbered = [e for e in events if e.name == "dhcp6_client.renumbered"]
    assert [(e.fields["old"], e.fields["new"]) for e in renumbered] == [(str(PD), str(new))]

    uplinks = DynamicUplinks(CFG, tmp_path, events.append, lambda *_: None, lambda *_: None)
    uplinks._clients6["A"] = client  # as link() would have started it
    plans = uplinks.overlay(intent_from_config(CFG)).uplinks
    assert [p.prefix6 for p in plans] == [new, None]
    fields = uplinks.status("A", True, None)
    assert fields["delegation"].prefix == str(new) and fields["dhcp6_client"]["running"] is False

    feed("wanwatch-pd\tSTOP6", 30.0)
    assert heard[-1:] == [("A", None, "stop")]
    assert uplinks.overlay(intent_from_config(CFG)).uplinks[0].prefix6 is None


def test_status_text_shows_the_delegated_prefix() -> None:
    client = {"running": True, "pid": 7, "restarts": 0, "last_error": None}
    delegation = {"prefix": str(PD), "preferred_s": 30, "valid_s": 40, "age_s": 2.0}
    text = format_status(
        answer(
            uplink("A", dhcp6_client=client, delegation=delegation),
            uplink("B", dhcp6_client=client),
            uplink("S"),
        )
    )
    assert "A: dhcp6 prefix 2001:db8:1:100::/60, preferred 30 s, valid 40 s" in text
    assert "B: dhcp6, no delegated prefix (LAN IPv6 masqueraded)" in text
    assert "S: dhcp6" not in text
