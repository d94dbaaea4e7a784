"""Probe methods in a RouterOS export: Netwatch types where it has them, notes elsewhere."""

from __future__ import annotations

from pathlib import Path

from wanwatch.config import load
from wanwatch.routeros.compile import compile_config

LTE = Path(__file__).parents[2] / "examples" / "office-lte.yaml"


def netwatch(script: str) -> list[str]:
    lines = script.splitlines()
    start = lines.index("/tool netwatch")
    return [line for line in lines[start + 1 :] if line.startswith("add host=")]


def test_v7_asks_tcp_http_and_dns_targets_with_their_netwatch_types() -> None:
    out = compile_config(load(LTE), 7)
    entries = netwatch(out.script)
    primary = [e for e in entries if "INET-UTAMA" in e]
    assert [e.split()[1:3] for e in primary] == [
        ["host=8.8.8.8", "type=icmp"],
        ["host=1.1.1.1", "type=icmp"],
        ["host=1.1.1.1", "type=tcp-conn"],
        ["host=203.0.113.80", "type=http-get"],
        ["host=example.com", "type=dns"],  # the name asked; the server is dns-server
    ]
    assert "port=443 interval=2s" in primary[2]  # its own interval, not the ICMP cadence
    assert "port=80 interval=30s" in primary[3]
    assert all("thr-avg" not in e for e in primary[2:])
    notes = "\n".join(out.notes)
    assert "wans[0].probe.targets[4] (dns 1.1.1.1 example.com): type=dns needs" in notes
    assert "targets[3] (http 203.0.113.80 http://check.example.net/generate_204): http-get" in notes
    assert "counts a captive portal's redirect or page as up" in notes
    assert "wans[2].metered: Netwatch probes a standby at its full interval" in notes


def test_v6_netwatch_only_pings() -> None:
    out = compile_config(load(LTE), 6)
    assert all(" type=" not in e for e in netwatch(out.script))
    assert len(netwatch(out.script)) == 5  # the five ICMP targets
    notes = [n for n in out.notes if "RouterOS 6 Netwatch only pings" in n]
    assert [n.split(":")[0] for n in notes] == [
        "wans[0].probe.targets[2] (tcp 1.1.1.1",
        "wans[0].probe.targets[3] (http 203.0.113.80 http",
        "wans[0].probe.targets[4] (dns 1.1.1.1 example.com)",
    ]
