"""The readiness rule: the uplink count keepalived tracks falls only once the dataplane is in force.

Pair.follow writes the track file (linux/pair.py); nothing here starts a process.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from wanwatch.config import load
from wanwatch.daemon.eventlog import EventLog
from wanwatch.engine.core import Engine, WanStatus
from wanwatch.engine.intent import Health
from wanwatch.linux.dnsmasq import Dnsmasq
from wanwatch.linux.pair import Pair

EXAMPLE = Path(__file__).parents[2] / "examples" / "office-ha-a.yaml"


def uplinks(*states: Health) -> list[WanStatus]:
    base = Engine(load(EXAMPLE), 0.0).status(0.0)
    return [dataclasses.replace(s, state=h) for s, h in zip(base, states, strict=True)]


def test_the_count_falls_only_with_the_dataplane_and_rises_at_once(tmp_path: Path) -> None:
    cfg = load(EXAMPLE)
    events = EventLog()
    pair = Pair(cfg, Dnsmasq(cfg, tmp_path, events.emit), tmp_path, events.emit)
    track = pair.kfiles.track

    async def follow(states: tuple[Health, ...], in_force: bool) -> str:
        await pair.follow(uplinks(*states), in_force)
        return track.read_text()

    up, down, unknown = Health.UP, Health.DOWN, Health.UNKNOWN

    async def go() -> list[str]:
        return [
            await follow((unknown, unknown), False),  # nothing proven: all down
            await follow((up, up), False),  # proven up, not yet carried by the kernel
            await follow((up, up), True),
            await follow((up, down), False),  # one lost: told at once
            await follow((up, Health.DEGRADED), False),  # back, but not yet in force
            await follow((up, Health.DEGRADED), True),  # degraded carries traffic: up
            await follow((down, down), False),
        ]

    assert asyncio.run(go()) == ["2\n", "2\n", "0\n", "1\n", "1\n", "0\n", "2\n"]
    written = [e.fields["uplinks_down"] for e in events.recent(100) if e.name == "ha.track"]
    assert written == [2, 0, 1, 0, 2]  # one event per change, none for a repeat
