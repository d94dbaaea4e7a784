"""The status page's routes: static files, ``/api/status``, ``/api/history``, ``/metrics``.

Every answer comes from memory. The JSON documents are encoded at most once per
``TTL`` and again right after an event (a failover shows on the next poll, not a
TTL later), so any number of open pages costs the loop one encode per TTL.
``/metrics`` imports prometheus_client on the first scrape only: the page alone
does not pay its memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from importlib import resources
from typing import Any

import msgspec

from wanwatch.daemon.history import History
from wanwatch.daemon.web.http import Response, text
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


class _Cached:
    """One encoded document, rebuilt when older than TTL or marked stale."""

    def __init__(self, build: Callable[[], Any], clock: Callable[[], float]) -> None:
        self._build = build
        self._clock = clock
        self._body = b""
        self._at = float("-inf")

    def stale(self) -> None:
        self._at = float("-inf")

    def get(self) -> bytes:
        now = self._clock()
        if now - self._at >= TTL:
            self._body = msgspec.json.encode(self._build())
            self._at = now
        return self._body


class StatusPage:
    """Answers the page's requests from the daemon's state; ``on_event`` marks it changed.

    ``status`` returns the daemon's shared status snapshot.
    """

    def __init__(
        self,
        status: Callable[[], Status],
        events: Callable[[], Iterable[Event]],
        history: History,
        counts: Callable[[], Mapping[str, int]],
        clock: Callable[[], float],
    ) -> None:
        self._status = status
        self._events = events
        self._history = history
        self._counts = counts
        self._files = {
            path: resources.files("wanwatch.daemon.web").joinpath("static", name).read_bytes()
            for path, (name, _) in STATIC.items()
        }
        self._api_status = _Cached(self._status_doc, clock)
        self._api_history = _Cached(history.to_json, clock)
        self._metrics: Callable[[], tuple[bytes, str]] | None = None

    def on_event(self, ev: Event) -> None:
        self._api_status.stale()
        if ev.name == "config.reloaded":  # uplinks may have come or gone
            self._api_history.stale()

    def _status_doc(self) -> dict[str, Any]:
        wall = self._history.wall
        log = list(self._events())[-LOG_LINES:]
        return {
            **to_json(self._status()),
            "timeline": self._history.timeline(),
            "log": [{"at": round(wall(e.at), 3), "name": e.name, "text": str(e)} for e in log],
        }

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

    def _scrape(self) -> tuple[bytes, str]:
        if self._metrics is None:
            from wanwatch.daemon import metrics  # ~4 MB RSS: only once someone scrapes

            collector = metrics.StatusCollector(self._status, self._counts)
            self._metrics = metrics.exposition(collector)
        return self._metrics()
