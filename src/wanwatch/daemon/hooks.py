"""Hooks: the admin's commands run on uplink events, like RouterOS Netwatch scripts.

Each hook is an argv list (never a shell), with ``{wan}``, ``{state}``, ``{from}``,
``{to}``, ``{event}``, ``{detect_ms}``, ``{url}`` (where a captive portal sends
the web, ``on_portal``), ``{used}`` and ``{limit}`` (bytes of a quota, ``on_quota``;
``{state}`` is quota_warning or quota_exhausted) substituted item by item.
``WANWATCH_FAMILY`` in a hook's environment is the address family the event is
about, ``4`` or ``6`` (docs/ipv6.md: IPv6's own ``policy.failover family=6``; a
dual-stack uplink's ``wan.down`` names the family that fell last, both being down
then). Hooks run as
child processes with a timeout and never block the engine: the daemon starts
them and moves on; a hook that outlives its timeout is killed by its PID, with
everything it started (its own process group). At shutdown the daemon waits a
little for running hooks, then kills them the same way: none outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

from wanwatch.config import Hooks
from wanwatch.engine.events import Event, event

# Which hook runs for which engine event.
HOOK_FOR_EVENT = {
    "wan.down": "on_down",
    "wan.up": "on_up",
    "policy.failover": "on_failover",
    "policy.failback": "on_failback",
    # the operator's wanwatch disable/enable; {state} is disabled, drained or enabled
    "wan.disabled": "on_admin",
    "wan.drained": "on_admin",
    "wan.enabled": "on_admin",
    # a used-up prepaid quota shows first as a captive portal (docs/probes.md)
    "wan.portal": "on_portal",
    # a quota's warning level, and its limit (engine/quota.py)
    "wan.quota_warning": "on_quota",
    "wan.quota_exhausted": "on_quota",
}
PLACEHOLDERS = ("wan", "state", "from", "to", "event", "detect_ms", "url", "used", "limit")
MAX_RUNNING = 16  # a flapping uplink must not fork-bomb the router


def expand(argv: tuple[str, ...], ev: Event) -> list[str]:
    """Substitute placeholders in each argv item; unknown braces are left alone."""
    values = {
        "wan": ev.fields.get("wan"),
        "state": ev.name.split(".", 1)[-1],
        "from": ev.fields.get("from"),
        "to": ev.fields.get("to"),
        "event": ev.name,
        "detect_ms": ev.fields.get("detect_ms"),
        "url": ev.fields.get("url"),
        "used": ev.fields.get("used"),
        "limit": ev.fields.get("limit"),
    }
    if values["wan"] is None:
        values["wan"] = values["to"]
    out = []
    for item in argv:
        text = item
        for key in PLACEHOLDERS:
            text = text.replace("{" + key + "}", "" if values[key] is None else str(values[key]))
        out.append(text)
    return out


class HookRunner:
    def __init__(self, hooks: Hooks, emit: Callable[[Event], None], now: Callable[[], float]):
        self.hooks = hooks
        self._emit = emit
        self._now = now
        self._tasks: set[asyncio.Task[None]] = set()

    def on_event(self, ev: Event) -> None:
        """Start the hook for ``ev`` if one is configured; returns at once."""
        which = HOOK_FOR_EVENT.get(ev.name)
        argv = getattr(self.hooks, which) if which else None
        if not argv:
            return
        if len(self._tasks) >= MAX_RUNNING:
            self._emit(event(self._now(), "hook.skipped", hook=which, reason="too many running"))
            return
        family = str(ev.fields.get("family") or 4)
        task = asyncio.get_running_loop().create_task(
            self._run(which or "", expand(argv, ev), family)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, which: str, argv: list[str], family: str) -> None:
        started = self._now()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env={**os.environ, "WANWATCH_FAMILY": family},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # own process group: a timeout kills its children too
            )
        except OSError as exc:
            self._emit(
                event(self._now(), "hook.error", hook=which, argv0=argv[0], error=exc.strerror)
            )
            return
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.hooks.timeout)
        except asyncio.CancelledError:
            # Shutdown (drain gave up on it): a hook must not outlive the daemon that
            # started it -- SIGTERM leaves no process behind. asyncio itself would only
            # kill the direct child, and only if its transport were closed.
            _kill_group(proc.pid)
            self._emit(event(self._now(), "hook.killed", hook=which, pid=proc.pid))
            raise
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            self._emit(
                event(
                    self._now(),
                    "hook.timeout",
                    hook=which,
                    pid=proc.pid,
                    timeout_s=self.hooks.timeout,
                )
            )
            return
        text = out.decode(errors="replace").strip()
        self._emit(
            event(
                self._now(),
                "hook.done",
                hook=which,
                rc=proc.returncode,
                ms=round((self._now() - started) * 1000),
                output=text[:200] or None,
            )
        )

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for running hooks, e.g. at shutdown; kill those still running."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)  # each kills its process group, then ends


def _kill_group(pgid: int) -> None:
    """SIGKILL a hook and everything it started (its own session: pgid == its pid)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
