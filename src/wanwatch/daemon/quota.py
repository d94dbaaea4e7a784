"""Data quotas at run time: counters in, the ledger kept in the state directory, events out.

Every READ_EVERY seconds the loop hands :meth:`Quotas.account` the backend's
last counters' reading (linux/usage.py, taken off the loop); engine/quota.py
counts it, and an uplink whose quota is used up is handed to the engine
(``Engine.set_spent``), which routes it by ``quota.exhausted``.

``quota.json`` holds ``{"version": 1, "boot": <boot id>, "uplinks": {name:
ledger}}``, replaced by an atomic rename (rename(2)). It is written at most
every SAVE_EVERY seconds, at once when a level is crossed or an operator resets
a quota, and at stop. A write that is late loses nothing and counts nothing
twice: the file holds the counter's reading beside the bytes counted up to it,
and the next run counts from that reading. Only a reboot (the counter gone)
loses what was counted after the last write: at most SAVE_EVERY seconds' worth.
A file that cannot be read is reported (``quota.unreadable``) and the quotas
start again from zero: the carrier's own figure is the one that bills.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from wanwatch.config import Config
from wanwatch.daemon.clock import Clock
from wanwatch.engine import quota as q
from wanwatch.engine.events import Event, event
from wanwatch.status import QuotaStatus, Usage

QUOTA_FILE = "quota.json"
READ_EVERY = 5.0  # seconds between countings
SAVE_EVERY = 60.0  # seconds between writes of quota.json when no level was crossed
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")  # random(4): new at every boot


class Router(Protocol):
    """What the quotas need of the engine: routing an uplink whose quota is used up."""

    def set_spent(self, wan: str, policy: str | None, now: float) -> list[Event]: ...


def boot_id(path: Path = BOOT_ID) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return "unknown"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


class Quotas:
    """Every uplink's quota ledger, counted from the counters and kept across restarts."""

    def __init__(
        self,
        state_dir: Path,
        emit: Callable[[Event], None],
        clock: Clock,
        boot: Callable[[], str] = boot_id,
    ) -> None:
        self.path = state_dir / QUOTA_FILE
        self._emit = emit
        self._clock = clock
        self._boot = boot()
        self._ledgers: dict[str, q.Ledger] = {}
        self._next_read = 0.0
        self._saved_at: float | None = None

    # ----------------------------------------------------------------- start, reload

    def restore(self, config: Config, engine: Router) -> None:
        """The ledgers of an earlier run, for the uplinks that still have a quota."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            found = {str(k): q.Ledger(**v) for k, v in data["uplinks"].items()}
        except FileNotFoundError:
            found = {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self._emit(
                event(self._clock(), "quota.unreadable", path=str(self.path), error=str(exc))
            )
            found = {}
        self._ledgers = found
        self.reload(config, engine)

    def reload(self, config: Config, engine: Router) -> None:
        """Follow the config: a new quota starts now, a removed one is forgotten, a
        changed limit is judged again."""
        now, mono = self._clock.time(), self._clock()
        quotas = {w.name: w.quota for w in config.wans if w.quota is not None}
        for name in [n for n in self._ledgers if n not in quotas]:
            del self._ledgers[name]
        for w in config.wans:
            if w.quota is None:
                self._route(engine, w.name, None)
        for name, quota in quotas.items():
            ledger = self._ledgers.get(name) or q.opened(quota, now)
            ledger, evs = q.judged(name, quota, ledger, mono)
            self._ledgers[name] = ledger
            self._emit_all(evs)
            self._route(engine, name, quota.exhausted if ledger.exhausted else None)

    # ----------------------------------------------------------------- the loop's turn

    def due(self, mono: float) -> bool:
        return bool(self._ledgers) and mono >= self._next_read

    def account(self, config: Config, engine: Router, counters: Mapping[str, Usage]) -> None:
        """Count one reading of the counters (backend.counters())."""
        now, mono = self._clock.time(), self._clock()
        self._next_read = mono + READ_EVERY
        crossed = False
        for w in config.wans:
            ledger, use = self._ledgers.get(w.name), counters.get(w.name)
            if w.quota is None or ledger is None or use is None:
                continue
            new, evs = q.account(
                w.name,
                w.quota,
                ledger,
                total=use.bytes_in + use.bytes_out,
                boot=self._boot,
                now=now,
                mono=mono,
            )
            self._ledgers[w.name] = new
            self._emit_all(evs)
            crossed |= bool(evs)
            self._route(engine, w.name, w.quota.exhausted if new.exhausted else None)
        if crossed or self._saved_at is None or mono - self._saved_at >= SAVE_EVERY:
            self.save()

    def reset(self, config: Config, engine: Router, wan: str) -> dict[str, object]:
        """``wanwatch quota reset WAN``: the control socket's answer."""
        w = next((w for w in config.wans if w.name == wan), None)
        if w is None:
            return {"error": f"no uplink named {wan!r}"}
        if w.quota is None or wan not in self._ledgers:
            return {"error": f"{wan} has no quota"}
        ledger, ev = q.reset(wan, w.quota, self._ledgers[wan], self._clock.time(), self._clock())
        self._ledgers[wan] = ledger
        self._emit(ev)
        self._route(engine, wan, None)
        return {"wan": wan, "used": 0, "saved": self.save()}

    def save(self) -> bool:
        """Write the ledgers; False (and ``quota.save_failed``) if that failed. With no
        quota configured, and none kept from before, nothing is written: the state
        directory holds only what a feature in use needs."""
        if not self._ledgers and not self.path.exists():
            return True
        data = {
            "version": 1,
            "boot": self._boot,
            "uplinks": {n: asdict(ledger) for n, ledger in self._ledgers.items()},
        }
        self._saved_at = self._clock()
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            self._emit(
                event(self._clock(), "quota.save_failed", path=str(self.path), error=exc.strerror)
            )
            return False
        return True

    # ----------------------------------------------------------------- status

    def status(self, config: Config) -> dict[str, QuotaStatus]:
        out = {}
        for w in config.wans:
            ledger = self._ledgers.get(w.name)
            if w.quota is None or ledger is None:
                continue
            end = q.ends(w.quota, ledger)
            state = "exhausted" if ledger.exhausted else "warning" if ledger.warned else "ok"
            out[w.name] = QuotaStatus(
                used=ledger.used,
                limit=w.quota.limit,
                period=w.quota.period,
                period_start=_iso(ledger.start),
                period_end=None if end is None else _iso(end),
                state=state,
                warn=w.quota.warn,
                exhausted=w.quota.exhausted,
            )
        return out

    # ----------------------------------------------------------------- helpers

    def _route(self, engine: Router, wan: str, policy: str | None) -> None:
        self._emit_all(engine.set_spent(wan, policy, self._clock()))

    def _emit_all(self, evs: list[Event]) -> None:
        for ev in evs:
            self._emit(ev)
