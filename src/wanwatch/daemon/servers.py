"""The HTTP endpoints served beside the control socket, each only when asked for.

``--metrics HOST:PORT`` serves the Prometheus exposition on any path;
``--http HOST:PORT`` serves the status page, its JSON and ``/metrics``. Both run
on the daemon's loop through httpd.py. A port that cannot be bound degrades that
endpoint alone (``metrics.failed``, ``http.failed``): the office stays online.
What an endpoint costs in memory is paid only when it is served: its modules,
and the HTTP server's (h11), are imported then (prometheus_client alone is about
4 MB of RSS), so a daemon that serves neither never loads them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from wanwatch.daemon.clock import Clock
from wanwatch.daemon.eventlog import EventLog
from wanwatch.daemon.history import History
from wanwatch.engine.events import Event, event
from wanwatch.status import Status

if TYPE_CHECKING:
    from wanwatch.daemon.httpd import Handler, Response


@dataclass(frozen=True, slots=True)
class Sources:
    """What an endpoint reads from the daemon."""

    status: Callable[[], Status]  # the daemon's shared snapshot
    events: Callable[[], Iterable[Event]]
    counts: Callable[[], Mapping[str, int]]
    history: History
    clock: Clock


def _ignore(ev: Event) -> None:
    """An endpoint with nothing to follow."""


class Endpoint(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def failed(self) -> str:
        """The event that says it could not be served."""
        ...

    def site(self, sources: Sources) -> tuple[Handler, Callable[[Event], None]]:
        """Its request handler, and what it does with each event once it is served."""
        ...


@dataclass(frozen=True, slots=True)
class MetricsEndpoint:
    host: str
    port: int
    failed: str = "metrics.failed"

    def site(self, sources: Sources) -> tuple[Handler, Callable[[Event], None]]:
        from wanwatch.daemon import metrics
        from wanwatch.daemon.httpd import Response

        scrape = metrics.exposition(metrics.StatusCollector(sources.status, sources.counts))

        def handle(path: str) -> Response:
            body, content_type = scrape()
            return Response(200, content_type, body)

        return handle, _ignore


@dataclass(frozen=True, slots=True)
class PageEndpoint:
    host: str
    port: int
    failed: str = "http.failed"

    def site(self, sources: Sources) -> tuple[Handler, Callable[[Event], None]]:
        from wanwatch.daemon.web import app

        page = app.StatusPage(
            files=app.static_files(),
            status=sources.status,
            events=sources.events,
            history=sources.history,
            counts=sources.counts,
            clock=sources.clock,
        )
        return page.handle, page.on_event


async def serve_all(
    endpoints: Sequence[Endpoint], sources: Sources, events: EventLog
) -> list[asyncio.Server]:
    """Serve each endpoint in turn; one that cannot bind is reported and left out."""
    servers: list[asyncio.Server] = []
    if not endpoints:
        return servers
    from wanwatch.daemon.httpd import serve

    for ep in endpoints:
        handle, follow = ep.site(sources)
        try:
            servers.append(await serve(ep.host, ep.port, handle))
        except OSError as exc:
            address = f"{ep.host}:{ep.port}"
            events.emit(event(sources.clock(), ep.failed, address=address, error=exc.strerror))
            continue
        events.follow(follow)
    return servers
