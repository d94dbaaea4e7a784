"""Per-uplink usage counters (linux/usage.py): rendered, read, carried over a swap."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from wanwatch.config import load
from wanwatch.errors import NftError
from wanwatch.linux import conntrack, nft, usage
from wanwatch.linux.apply import LinuxBackend, intent_from_config
from wanwatch.linux.nft import carried_usage, render, rendered_fingerprint

OFFICE = Path(__file__).resolve().parents[2] / "examples" / "office.yaml"
A, B = "INET-UTAMA", "BACKUP-INET"


def listing(*counters: tuple[str, str | None, int, int]) -> str:
    """``nft -j list table`` output with these counters (name, comment, packets, bytes)."""
    items: list[dict[str, object]] = [{"metainfo": {"json_schema_version": 1}}]
    items.append({"table": {"family": "inet", "name": "wanwatch", "handle": 7}})
    for name, comment, packets, nbytes in counters:
        c: dict[str, object] = {"name": name, "packets": packets, "bytes": nbytes}
        if comment is not None:
            c["comment"] = comment
        items.append({"counter": c})
    return json.dumps({"nftables": items})


def test_each_uplink_gets_two_counters_fed_by_one_map_rule_per_direction() -> None:
    config = load(OFFICE)
    text = render(intent_from_config(config), config)
    assert '\tcounter usage_1_in { comment "INET-UTAMA" }\n' in text
    assert '\tcounter usage_2_out { comment "BACKUP-INET" }\n' in text
    ifs = [w.interface for w in config.wans]
    assert (
        f'counter name iifname map {{ "{ifs[0]}" : "usage_1_in", "{ifs[1]}" : "usage_2_in" }}'
        in text
    )
    assert (
        f'counter name oifname map {{ "{ifs[0]}" : "usage_1_out", "{ifs[1]}" : "usage_2_out" }}'
        in text
    )
    # one rule each, whatever the number of uplinks
    assert text.count("counter name iifname map") == text.count("counter name oifname map") == 1


def test_parse_reads_only_usage_counters_by_their_uplinks_name() -> None:
    text = listing(
        ("usage_1_in", A, 10, 1000),
        ("usage_1_out", A, 5, 400),
        ("usage_2_in", B, 1, 84),
        ("drop_in_INET-UTAMA", None, 99, 9999),
        ("usage_3_in", None, 1, 1),  # not ours without its uplink's name
    )
    assert usage.parse(text) == {
        A: usage.Moved(packets_in=10, bytes_in=1000, packets_out=5, bytes_out=400),
        B: usage.Moved(packets_in=1, bytes_in=84, packets_out=0, bytes_out=0),
    }


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "[]",
        '{"nftables": {}}',
        # a usage counter without its bytes
        '{"nftables": [{"counter": {"name": "usage_1_in", "comment": "A", "packets": 1}}]}',
    ],
)
def test_parse_refuses_what_is_not_a_listing(bad: str) -> None:
    with pytest.raises(NftError):
        usage.parse(bad)


def test_carried_values_start_the_new_table_where_the_old_one_was() -> None:
    config = load(OFFICE)
    intent = intent_from_config(config)
    definition = render(intent, config)
    running = {A: usage.Moved(3, 300, 4, 400)}
    out = usage.carried(definition, intent.uplinks, running)
    assert '\tcounter usage_1_in { comment "INET-UTAMA"; packets 3 bytes 300 }\n' in out
    assert '\tcounter usage_1_out { comment "INET-UTAMA"; packets 4 bytes 400 }\n' in out
    assert '\tcounter usage_2_in { comment "BACKUP-INET" }\n' in out  # none running: zero
    # the values are not part of what the fingerprint says the table is
    assert rendered_fingerprint(out) == rendered_fingerprint(definition)


def test_carried_follows_the_uplinks_name_when_the_config_reorders_them() -> None:
    config = load(OFFICE)
    swapped = config.replace(wans=tuple(reversed(config.wans)))
    intent = intent_from_config(swapped)
    out = usage.carried(
        render(intent, swapped),
        intent.uplinks,
        {A: usage.Moved(1, 100, 2, 200), B: usage.Moved(7, 700, 8, 800)},
    )
    assert '\tcounter usage_2_in { comment "INET-UTAMA"; packets 1 bytes 100 }\n' in out
    assert '\tcounter usage_1_out { comment "BACKUP-INET"; packets 8 bytes 800 }\n' in out


def test_carried_refuses_a_definition_without_the_counter() -> None:
    config = load(OFFICE)
    intent = intent_from_config(config)
    other = replace(intent.uplinks[0], slot=9)
    with pytest.raises(NftError):
        usage.carried(render(intent, config), [other], {A: usage.Moved(1, 1, 1, 1)})


def test_a_failed_reading_swaps_the_table_in_with_counters_from_zero() -> None:
    config = load(OFFICE)
    intent = intent_from_config(config)
    definition = render(intent, config)
    # `false` as nft: the listing fails; the new table must still go in
    assert carried_usage(intent, "false")(definition) == definition


DUAL = Path(__file__).resolve().parents[2] / "examples" / "office-dual-stack.yaml"


def test_an_ipv4_only_config_has_no_ipv6_counter() -> None:
    config = load(OFFICE)
    text = render(intent_from_config(config), config)
    assert "usage_1_in6" not in text and "meta nfproto ipv6 counter" not in text


def test_an_uplink_with_ipv6_counts_its_ipv6_share_beside_the_totals() -> None:
    config = load(DUAL)
    text = render(intent_from_config(config), config)
    ifs = [w.interface for w in config.wans]
    assert '\tcounter usage_1_in6 { comment "INET-UTAMA" }\n' in text
    assert '\tcounter usage_2_out6 { comment "BACKUP-INET" }\n' in text
    assert (
        f'\tmeta nfproto ipv6 counter name iifname map {{ "{ifs[0]}" : "usage_1_in6", '
        f'"{ifs[1]}" : "usage_2_in6" }}\n' in text
    )
    # the totals' rule is unchanged: every family still counts there
    assert text.count("counter name oifname map") == 2
    assert f'\tcounter name oifname map {{ "{ifs[0]}" : "usage_1_out", ' in text


def test_parse_and_carry_the_ipv6_counters() -> None:
    config = load(DUAL)
    intent = intent_from_config(config)
    text = listing(
        ("usage_1_in", A, 10, 1000),
        ("usage_1_out", A, 5, 400),
        ("usage_1_in6", A, 4, 480),
        ("usage_1_out6", A, 2, 160),
    )
    moved = usage.parse(text)[A]
    assert moved == usage.Moved(10, 1000, 5, 400, 4, 480, 2, 160)
    out = usage.carried(render(intent, config), intent.uplinks, {A: moved})
    assert '\tcounter usage_1_in6 { comment "INET-UTAMA"; packets 4 bytes 480 }\n' in out
    assert '\tcounter usage_1_out6 { comment "INET-UTAMA"; packets 2 bytes 160 }\n' in out


def test_an_uplink_that_lost_its_ipv6_drops_the_ipv6_counters_and_keeps_the_totals() -> None:
    config = load(OFFICE)
    intent = intent_from_config(config)
    out = usage.carried(
        render(intent, config), intent.uplinks, {A: usage.Moved(1, 100, 2, 200, 1, 80, 1, 80)}
    )
    assert '\tcounter usage_1_in { comment "INET-UTAMA"; packets 1 bytes 100 }\n' in out
    assert "usage_1_in6" not in out


def test_the_quotas_reading_walks_no_conntrack_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes come from nft's counters, O(1) in the number of connections; the open
    connections (a dump of the whole conntrack table) are counted only for a caller
    that shows them, and kept across the readings that do not count them."""
    dumps: list[set[str]] = []

    def connections(own: dict[str, object]) -> dict[str, int]:
        dumps.append(set(own))
        return {A: 7, B: 0}

    text = listing(("usage_1_out", A, 3, 1_000), ("usage_1_in", A, 5, 9_000))
    monkeypatch.setattr(conntrack, "connections", connections)
    monkeypatch.setattr(nft, "list_table", lambda binary: text)
    clock = [100.0]
    backend = LinuxBackend(load(OFFICE), tmp_path, now=lambda: clock[0])
    backend._r.own = {A: (0x100, None), B: (0x200, None)}

    def read(connections: bool) -> dict[str, tuple[int, int]]:
        clock[0] += 2.0  # past max_age: a fresh reading each time
        backend.counters(connections=connections)
        job = backend._usage_job
        assert job is not None
        job.result(timeout=5)
        _, found = backend.counters(max_age=60.0, connections=connections)
        return {n: (u.connections, u.bytes_in) for n, u in found.items()}

    try:
        assert read(connections=False) == {A: (0, 9_000), B: (0, 0)}
        assert dumps == []  # the quotas' reading: nft only
        assert read(connections=True) == {A: (7, 9_000), B: (0, 0)}
        assert dumps == [{A, B}]
        assert read(connections=False)[A] == (7, 9_000)  # as last counted
        assert len(dumps) == 1
    finally:
        backend.close()
