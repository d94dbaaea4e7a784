"""The ``on_portal`` hook: run on ``wan.portal`` with the portal's URL substituted."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from wanwatch.config import Hooks, loads
from wanwatch.daemon.hooks import HookRunner, expand
from wanwatch.engine.events import Event, event

PORTAL = "http://portal.example/topup?from=office"
ARGV = ("notify", "{wan} is {state}: web sent to {url}")


def test_placeholders_of_a_portal_event() -> None:
    ev = event(1.0, "wan.portal", wan="LTE", url=PORTAL, prev="up")
    assert expand(ARGV, ev) == ["notify", f"LTE is portal: web sent to {PORTAL}"]
    # other events have no url: the placeholder becomes empty, as a missing {from} does
    assert expand(ARGV, event(1.0, "wan.down", wan="LTE")) == [
        "notify",
        "LTE is down: web sent to ",
    ]


def test_the_hook_runs_on_wan_portal_only(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"
    argv = (sys.executable, "-c", script, str(out), "{wan} {url}")
    seen: list[Event] = []

    async def main() -> None:
        runner = HookRunner(Hooks(on_portal=argv), seen.append, lambda: 0.0)
        runner.on_event(event(1.0, "wan.down", wan="LTE"))  # no on_down configured
        runner.on_event(event(2.0, "wan.portal", wan="LTE", url=PORTAL, prev="up"))
        await runner.drain(10.0)

    asyncio.run(main())
    assert out.read_text() == f"LTE {PORTAL}\n"
    assert [(e.name, e.fields["hook"], e.fields["rc"]) for e in seen] == [
        ("hook.done", "on_portal", 0)
    ]


def test_on_portal_loads_from_yaml() -> None:
    text = (Path(__file__).parents[2] / "examples" / "office.yaml").read_text()
    hook = "  on_portal: [notify, '{url}']\n"
    cfg = loads(text.replace("  on_up:", hook + "  on_up:", 1), "o.yaml")
    assert cfg.hooks.on_portal == ("notify", "{url}")


def test_routeros_export_says_netwatch_cannot_see_a_portal() -> None:
    from wanwatch.routeros.compile import compile_config

    text = (Path(__file__).parents[2] / "examples" / "office.yaml").read_text()
    with_hook = loads(text.replace("  on_up:", "  on_portal: [notify]\n  on_up:", 1), "o.yaml")
    note = "hooks.on_portal: Netwatch cannot tell a captive portal from an answer"
    assert note in compile_config(with_hook).notes
    assert note not in compile_config(loads(text, "o.yaml")).notes


def test_hooks_are_told_the_address_family_of_their_event(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = "import os, sys; open(sys.argv[1], 'a').write(os.environ['WANWATCH_FAMILY'] + '\\n')"
    argv = (sys.executable, "-c", script, str(out))

    async def main() -> None:
        runner = HookRunner(Hooks(on_failover=argv), lambda e: None, lambda: 0.0)
        runner.on_event(event(1.0, "policy.failover", to="B", family=6))  # IPv6's own policy
        await runner.drain(10.0)
        runner.on_event(event(2.0, "policy.failover", to="B"))  # IPv4's
        await runner.drain(10.0)

    asyncio.run(main())
    assert out.read_text() == "6\n4\n"
