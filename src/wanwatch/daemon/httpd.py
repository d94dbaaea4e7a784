"""A small HTTP/1.1 server on asyncio streams: GET and HEAD, persistent connections.

Enough for the status page, its JSON and a Prometheus scrape on the daemon's
own loop. The protocol itself -- request framing, header syntax, the Host
header an HTTP/1.1 request must carry (RFC 9112 section 3.2), HEAD answered
without a body -- is h11's; this module adds the limits and the routing. The
handler is a plain function of the path that must answer from memory (it runs
on the loop: it must never block); a client that stalls or sends nonsense costs
one bounded wait and nothing else:

- a request head (request line and headers) is at most HEAD_LIMIT bytes: past
  that the connection is closed without an answer;
- it must arrive whole within IDLE_TIMEOUT, and so must each next request on a
  persistent connection;
- a request h11 cannot parse gets 400, a method other than GET or HEAD 405, and
  either ends the connection, as does a request with a body (never read).

Connections persist (RFC 9112 section 9.3) so that an open page polls over one
TCP connection: a new connection a second per page would each leave a conntrack
entry behind for two minutes (TIME_WAIT), and the daemon walks that table for
its per-uplink counters. h11 keeps HTTP/1.0 connections to one request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import h11

HEAD_LIMIT = 16 * 1024  # request line and headers; a browser sends well under 2 KB
IDLE_TIMEOUT = 10.0  # a persistent connection waits this long for its next request
MAX_REQUESTS = 10_000  # per connection; then it is closed and the client opens another
_READ = 64 * 1024
TOO_LARGE = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE  # h11's hint for a head over the cap

# The page loads nothing from elsewhere and runs no inline script (CSP Level 3,
# "default-src 'self'"); nosniff keeps a browser from guessing other types.
SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[str], Response]


def text(status: HTTPStatus, message: str) -> Response:
    return Response(int(status), "text/plain; charset=utf-8", f"{message}\n".encode())


async def serve(host: str, port: int, handler: Handler) -> asyncio.Server:
    """Listen on host:port; raise OSError when the address cannot be bound."""

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=HEAD_LIMIT)
        try:
            for _ in range(MAX_REQUESTS):
                if not await _answer(conn, reader, writer, handler):
                    break
                conn.start_next_cycle()
        except (TimeoutError, ConnectionError):
            pass  # a client that went away, stalled, idled or sent too much: closed
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    # The stream's own buffer stays as small (asyncio pauses reading past twice it).
    return await asyncio.start_server(on_client, host, port, limit=HEAD_LIMIT)


async def _answer(
    conn: h11.Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handler: Handler,
) -> bool:
    """Read one request and answer it; whether the connection goes on."""
    try:
        req = await _request(conn, reader)
        # The request is complete if nothing follows its head; a body is never read.
        complete = req is not None and isinstance(conn.next_event(), h11.EndOfMessage)
    except h11.RemoteProtocolError as exc:
        if exc.error_status_hint == TOO_LARGE:
            return False  # closed at once: nothing more is read from such a client
        await _send(conn, writer, text(HTTPStatus.BAD_REQUEST, f"bad request: {exc}"), False)
        return False
    if req is None:
        return False  # the client closed between requests
    method = req.method.decode("ascii", "replace")
    if method not in ("GET", "HEAD"):
        resp = text(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: GET only")
        resp.headers["Allow"] = "GET, HEAD"
        await _send(conn, writer, resp, False)
        return False
    path = req.target.decode("ascii", "replace").split("?", 1)[0].split("#", 1)[0]
    keep = complete and _wants_keep_alive(req)
    await _send(conn, writer, handler(path), keep, head_only=method == "HEAD")
    return keep


async def _request(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
    """The next request's head, read within IDLE_TIMEOUT; None if the client closed first.

    h11 caps only a head it has not seen the end of (max_incomplete_event_size),
    so it is never given more than HEAD_LIMIT + 1 bytes before a request: a longer
    head is then always incomplete, and refused.
    """
    fed = len(conn.trailing_data[0])  # pipelined after the previous request
    async with asyncio.timeout(IDLE_TIMEOUT):
        while True:
            ev = conn.next_event()
            if isinstance(ev, h11.Request):
                return ev
            if isinstance(ev, h11.ConnectionClosed):
                return None
            data = await reader.read(max(1, min(_READ, HEAD_LIMIT + 1 - fed)))
            fed += len(data)
            conn.receive_data(data)  # b"" is the client's EOF


def _wants_keep_alive(req: h11.Request) -> bool:
    """HTTP/1.1 persists unless the client says ``Connection: close`` (RFC 9112 section 9.3)."""
    if req.http_version != b"1.1":
        return False
    options = {
        o.strip().lower() for name, value in req.headers if name == b"connection"
        for o in value.split(b",")
    }  # fmt: skip
    return b"close" not in options


async def _send(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    resp: Response,
    keep_alive: bool,
    *,
    head_only: bool = False,
) -> None:
    headers = [
        ("Content-Type", resp.content_type),
        ("Content-Length", str(len(resp.body))),
        ("Connection", "keep-alive" if keep_alive else "close"),
        *SECURITY_HEADERS,
        *resp.headers.items(),
    ]
    reason = HTTPStatus(resp.status).phrase.encode()
    events: list[h11.Event] = [
        h11.Response(status_code=resp.status, headers=headers, reason=reason),
        # h11 knows a HEAD answer has no body, and checks that we send none
        *([] if head_only else [h11.Data(data=resp.body)]),
        h11.EndOfMessage(),
    ]
    writer.write(b"".join(conn.send(ev) or b"" for ev in events))  # one write, one segment
    await writer.drain()
