"""HTTP probes: a GET over a pinned TCP connection, parsed by h11, judged for a portal.

A prepaid line whose quota is used up stays up: the carrier answers ICMP and
redirects every web request to a top-up page, and the office is offline. The
probe asks a "generate_204" style URL (``expect``, default 204) and judges the
response head:

- the expected status: the web works;
- a redirect (3xx), or a 200 page where a 204 was expected: a captive portal
  answered in the internet's place; the verdict carries where it sent us (the
  ``Location``, or the URL itself when the page was served in place);
- anything else (a 404, a 5xx from a proxy, a protocol error): not an answer of
  the internet, so nothing is reported and the engine times the probe out.

The connection goes to the target's configured ``address``, never to what the
URL's host name resolves to, so probing never depends on DNS (docs/probes.md);
the host is sent as the Host header only. Only the response head is read, at
most h11's 16 KiB event limit; the connection is then reset (tcp.py). h11 is
imported only when a config has an http target (the hub loads this module on
the first such probe): it costs ~0.2 MB resident (bench/footprint.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final
from urllib.parse import urljoin, urlsplit

import h11

from wanwatch.config.model import HttpTarget
from wanwatch.probe.pin import UplinkSpec
from wanwatch.probe.tcp import Answer, open_stream, reset

USER_AGENT: Final = "wanwatch-probe"
_RECV: Final = 4096
MAX_HEAD: Final = 16 * 1024  # h11's default; a portal page's head is far smaller


def _head(target: HttpTarget) -> h11.Request:
    parts = urlsplit(target.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [
        ("Host", parts.netloc),
        ("User-Agent", USER_AGENT),
        ("Accept", "*/*"),
        ("Connection", "close"),
    ]
    return h11.Request(method="GET", target=path, headers=headers)


def _start(conn: h11.Connection, target: HttpTarget) -> bytes:
    return (conn.send(_head(target)) or b"") + (conn.send(h11.EndOfMessage()) or b"")


def request_bytes(target: HttpTarget) -> bytes:
    """What the probe sends for ``target`` (the budget counts it)."""
    return _start(h11.Connection(h11.CLIENT), target)


def judge(status: int, location: str | None, target: HttpTarget) -> tuple[bool, str | None]:
    """(counts as an answer, the portal it was sent to) for a response head."""
    if status == target.expect:
        return True, None
    if 300 <= status < 400:
        return True, urljoin(target.url, location) if location else target.url
    if status == 200 and target.expect == 204:
        return True, target.url  # the portal served its page in place
    return False, None


async def probe(spec: UplinkSpec, target: HttpTarget, clock_ns: Callable[[], int]) -> Answer | None:
    """GET the target's URL; None for an answer that is neither success nor a portal.

    Raises OSError when the connection fails (a RST here says the web does not work).
    """
    port = urlsplit(target.url).port or 80
    start = clock_ns()
    sock = await open_stream(spec, target.address, port)
    loop = asyncio.get_running_loop()
    try:
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        await loop.sock_sendall(sock, _start(conn, target))
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                return None
            if event is h11.NEED_DATA:
                conn.receive_data(await loop.sock_recv(sock, _RECV))
            elif isinstance(event, h11.Response):
                break
            elif not isinstance(event, h11.InformationalResponse):
                return None  # closed before a response head
        rtt = clock_ns() - start
        headers = {name.lower(): value for name, value in event.headers}
        location = headers.get(b"location")
        answered, portal = judge(
            event.status_code, location.decode("latin-1") if location else None, target
        )
        return Answer(rtt, portal) if answered else None
    finally:
        reset(sock)
