"""The status page's HTTP side: routes, headers, caching, and the server (h11 on asyncio)."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any

import pytest

from wanwatch.daemon import httpd as http
from wanwatch.daemon.clock import Clock
from wanwatch.daemon.history import History
from wanwatch.daemon.web import app
from wanwatch.engine.events import Event, event
from wanwatch.status import Status, from_json


def uplink_json(name: str, carrying: bool) -> dict[str, Any]:
    return {
        "name": name, "state": "up", "rtt_ms": 1.5, "loss_pct": 0.0,
        "since": "2026-12-05T00:00:00+00:00", "for_s": 1.0, "preferred": True,
        "carrying": carrying, "admin": "enabled", "phase": None, "progress": {},
        "targets": {}, "probes": {"sent": 4, "replies": 4},
    }  # fmt: skip


def status_json(active: list[str]) -> dict[str, Any]:
    """A ``wanwatch status --json`` document (status.Status) with uplinks A and B."""
    return {
        "wans": [uplink_json(n, n in active) for n in ("A", "B")],
        "active": list(active), "mode": "failover", "stale": False, "applied": True,
        "backend_error": None, "failed_steps": {}, "retry_in_s": None, "contested": [],
        "repairs": 0, "counters": {}, "counters_age_s": None, "dnsmasq": None,
        "leases": [], "events": [], "uptime_s": 1.0, "pid": 1,
    }  # fmt: skip


class Fake:
    """A daemon's status and event ring, counting how often status is built."""

    def __init__(self) -> None:
        self.now = 100.0
        self.builds = 0
        self.active = ["A"]
        self.events: deque[Event] = deque([event(99.0, "daemon.started", pid=1)], maxlen=500)

    def status(self) -> Status:
        self.builds += 1
        return from_json(status_json(self.active))

    def page(self) -> app.StatusPage:
        clock = Clock(lambda: self.now, wall=lambda: 1_000_000.0 + self.now)
        return app.StatusPage(
            files=app.static_files(),
            status=self.status,
            events=lambda: self.events,
            history=History(clock),
            counts=lambda: {"daemon.started": 1},
            clock=clock,
        )


def test_static_files_are_shipped_and_self_contained() -> None:
    page = Fake().page()
    index = page.handle("/")
    assert index.status == 200 and index.content_type.startswith("text/html")
    html = index.body.decode()
    assert 'src="app.js"' in html and 'href="style.css"' in html
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere
    for path in ("/app.js", "/style.css", "/favicon.svg"):
        assert page.handle(path).status == 200, path
    js = page.handle("/app.js").body.decode()
    assert "innerHTML" not in js  # DHCP hostnames are untrusted: textContent only
    assert page.handle("/nope").status == 404


def test_api_status_is_cached_and_refreshed_after_an_event() -> None:
    fake = Fake()
    page = fake.page()
    first = json.loads(page.handle("/api/status").body)
    assert first["active"] == ["A"]
    assert first["log"][0]["name"] == "daemon.started"
    assert first["log"][0]["at"] == 1_000_099.0
    fake.active = ["B"]
    assert json.loads(page.handle("/api/status").body)["active"] == ["A"]  # within TTL
    assert fake.builds == 1
    ev = event(100.0, "policy.failover", **{"from": "A", "to": "B"}, cause="A", detect_ms=600)
    fake.events.append(ev)
    page.on_event(ev)
    doc = json.loads(page.handle("/api/status").body)
    assert doc["active"] == ["B"]
    assert doc["timeline"] == []  # the daemon feeds the history itself, not the page
    fake.active = ["A"]
    fake.now += app.TTL
    assert json.loads(page.handle("/api/status").body)["active"] == ["A"]  # TTL expired
    assert page.handle("/api/status").headers["Cache-Control"] == "no-store"


def test_metrics_beside_the_page() -> None:
    resp = Fake().page().handle("/metrics")
    assert resp.status == 200 and resp.content_type.startswith("text/plain")
    assert b'wanwatch_uplink_carrying{wan="A"} 1.0' in resp.body


async def roundtrip(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    return data


@pytest.mark.parametrize(
    ("request_bytes", "status_line", "has_body"),
    [
        (
            b"GET /api/status?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"HTTP/1.1 200 OK",
            True,
        ),
        (b"HEAD / HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 OK", False),
        (b"POST /api/status HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 405 Method Not Allowed", True),
        # RFC 9112 section 3.2: an HTTP/1.1 request without Host is refused
        (b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 Bad Request", True),
        (b"hello\r\n\r\n", b"HTTP/1.1 400 Bad Request", True),
        (b"GET /missing HTTP/1.0\r\n\r\n", b"HTTP/1.1 404 Not Found", True),
    ],
)
def test_server(request_bytes: bytes, status_line: bytes, has_body: bool) -> None:
    page = Fake().page()

    async def go() -> bytes:
        server = await http.serve("127.0.0.1", 0, page.handle)
        port = server.sockets[0].getsockname()[1]
        try:
            return await roundtrip(port, request_bytes)
        finally:
            server.close()
            await server.wait_closed()

    data = asyncio.run(go())
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == status_line
    assert b"Content-Security-Policy: default-src 'self'" in head
    headers = dict(h.split(b": ", 1) for h in head.split(b"\r\n")[1:])
    length = int(headers[b"Content-Length"])
    assert length > 0
    assert len(body) == (length if has_body else 0)


def test_persistent_connection_answers_each_request_in_turn() -> None:
    """A page polls over one connection (HTTP/1.1 default): both answers, then our close."""
    page = Fake().page()

    async def go() -> list[bytes]:
        server = await http.serve("127.0.0.1", 0, page.handle)
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            heads = []
            for path in (b"/api/status", b"/app.js"):
                writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                heads.append(head)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            rest = await asyncio.wait_for(reader.read(), 5)  # EOF: the server closed
            heads.append(rest.split(b"\r\n\r\n")[0])
            writer.close()
            await writer.wait_closed()
            return heads
        finally:
            server.close()
            await server.wait_closed()

    heads = asyncio.run(go())
    assert all(h.startswith(b"HTTP/1.1 200 OK") for h in heads)
    assert b"Connection: keep-alive" in heads[0] and b"Connection: keep-alive" in heads[1]
    assert b"Connection: close" in heads[2]


def test_server_drops_an_oversized_request() -> None:
    page = Fake().page()

    async def go() -> bytes:
        server = await http.serve("127.0.0.1", 0, page.handle)
        port = server.sockets[0].getsockname()[1]
        try:
            big = b"GET / HTTP/1.1\r\nX: " + b"a" * (http.HEAD_LIMIT * 2) + b"\r\n\r\n"
            return await roundtrip(port, big)
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(go()) == b""
