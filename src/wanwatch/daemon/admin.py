"""The operator's disable/enable choices, kept in the state directory across restarts.

``admin.json`` holds ``{"version": 1, "uplinks": {name: admin}}``, written by an
atomic rename (rename(2)): a crash mid-write leaves the old file, never half a
new one. A file that cannot be read, or names an uplink the config no longer
has, is reported as an event and otherwise ignored: the uplinks are enabled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from wanwatch.engine.core import Engine
from wanwatch.engine.events import Event, event
from wanwatch.engine.intent import Admin

ADMIN_FILE = "admin.json"


class AdminChoices:
    """Saves the engine's admin choices and re-applies them at the next start."""

    def __init__(
        self, state_dir: Path, emit: Callable[[Event], None], now: Callable[[], float]
    ) -> None:
        self.path = state_dir / ADMIN_FILE
        self._emit = emit
        self._now = now

    def save(self, engine: Engine) -> bool:
        """Write the engine's choices; False (and ``admin.save_failed``) if that failed."""
        path = self.path
        data = {"version": 1, "uplinks": {n: a.value for n, a in engine.admin().items()}}
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            self._emit(event(self._now(), "admin.save_failed", path=str(path), error=exc.strerror))
            return False
        return True

    def restore(self, engine: Engine) -> None:
        """Re-apply the choices of an earlier run; unreadable or unknown ones are reported."""
        path = self.path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            choices = {str(k): Admin(v) for k, v in data["uplinks"].items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self._emit(event(self._now(), "admin.unreadable", path=str(path), error=str(exc)))
            return
        for wan, admin in choices.items():
            try:
                evs = engine.set_admin(wan, admin, self._now())
            except KeyError:
                self._emit(event(self._now(), "admin.unknown_wan", wan=wan, admin=admin.value))
                continue
            for ev in evs:
                self._emit(ev)
