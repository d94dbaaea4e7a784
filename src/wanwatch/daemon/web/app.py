"""The status page's routes: static files, ``/api/status``, ``/api/history``, ``/metrics``.

Every answer comes from memory. The JSON documents are encoded at most once per
``TTL`` and again right after an event (a failover shows on the next poll, not a
TTL later), so any number of open pages costs the loop one encode per TTL.
``/metrics`` imports prometheus_client on the first scrape only: the page alone
does not pay its memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from http import HTTPStatus
from importlib import resources
from typing import Any

import msgspec

from wanwatch.daemon.cache import Cached
from wanwatch.daemon.clock import Clock
from wanwatch.daemon.history import History
from wanwatch.daemon.httpd import Response, text
from wanwatch.engine.events import Event
from wanwatch.status import Status, to_json

TTL = 0.5  # seconds a cached JSON answer is served as it is
LOG_LINES = 100  # events the page's log shows

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
NO_STORE = {"Cache-Control": "no-store"}


def static_files() -> dict[str, bytes]:
    """The page's files as shipped in the package, by path (read once, at start)."""
    return {
        path: resources.files("wanwatch.daemon.web").joinpath("static", name).read_bytes()
        for path, (name, _) in STATIC.items()
    }


class StatusPage:
    """Answers the page's requests from the daemon's state; ``on_event`` marks it changed.

    ``status`` returns the daemon's shared status snapshot; ``files``: static_files().
    """

    def __init__(
        self,
        *,
        files: Mapping[str, bytes],
        status: Callable[[], Status],
        events: Callable[[], Iterable[Event]],
        history: History,
        counts: Callable[[], Mapping[str, int]],
        clock: Clock,
    ) -> None:
        self._files = files
        self._status = status
        self._events = events
        self._history = history
        self._counts = counts
        self._clock = clock
        self._api_status = Cached(self._status_doc, clock, TTL)
        self._api_history = Cached(lambda: msgspec.json.encode(history.to_json()), clock, TTL)

    def on_event(self, ev: Event) -> None:
        self._api_status.stale()
        if ev.name == "config.reloaded":  # uplinks may have come or gone
            self._api_history.stale()

    def _status_doc(self) -> bytes:
        wall = self._clock.wall
        log = list(self._events())[-LOG_LINES:]
        doc: dict[str, Any] = {
            **to_json(self._status()),
            "timeline": self._history.timeline(),
            "log": [{"at": round(wall(e.at), 3), "name": e.name, "text": str(e)} for e in log],
        }
        return msgspec.json.encode(doc)

    def handle(self, path: str) -> Response:
        if path in self._files:
            return Response(200, STATIC[path][1], self._files[path])
        if path == "/api/status":
            return Response(200, "application/json", self._api_status.get(), NO_STORE)
        if path == "/api/history":
            return Response(200, "application/json", self._api_history.get(), NO_STORE)
        if path == "/metrics":
            body, content_type = self._scrape()
            return Response(200, content_type, body, NO_STORE)
        return text(HTTPStatus.NOT_FOUND, f"{path}: not here (/, /api/status, /metrics)")

    @cached_property
    def _scrape(self) -> Callable[[], tuple[bytes, str]]:
        from wanwatch.daemon import metrics  # ~4 MB RSS: only once someone scrapes

        return metrics.exposition(metrics.StatusCollector(self._status, self._counts))
