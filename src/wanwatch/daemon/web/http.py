"""A minimal HTTP/1.1 server on asyncio streams: GET and HEAD, persistent connections.

Enough for a status page, its JSON and a Prometheus scrape on the daemon's own
loop, with nothing to install. The handler is a plain function of the path that
must answer from memory (it runs on the loop: it must never block); a client
that stalls or sends nonsense costs one bounded wait and nothing else.

Connections persist (RFC 9112 section 9.3) so that an open page polls over one
TCP connection: a new connection a second per page would each leave a conntrack
entry behind for two minutes (TIME_WAIT), and the daemon walks that table for
its per-uplink counters.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

HEAD_LIMIT = 16 * 1024  # request line and headers; a browser sends well under 2 KB
IDLE_TIMEOUT = 10.0  # a persistent connection waits this long for its next request
MAX_REQUESTS = 10_000  # per connection; then it is closed and the client opens another

# The page loads nothing from elsewhere and runs no inline script (CSP Level 3,
# "default-src 'self'"); nosniff keeps a browser from guessing other types.
SECURITY_HEADERS = (
    "Content-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
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


def encode(resp: Response, head_only: bool = False, keep_alive: bool = False) -> bytes:
    reason = HTTPStatus(resp.status).phrase
    lines = [
        f"HTTP/1.1 {resp.status} {reason}\r\n",
        f"Content-Type: {resp.content_type}\r\n",
        f"Content-Length: {len(resp.body)}\r\n",
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n",
        SECURITY_HEADERS,
        *(f"{k}: {v}\r\n" for k, v in resp.headers.items()),
        "\r\n",
    ]
    head = "".join(lines).encode("latin-1")
    return head if head_only else head + resp.body


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # without query or fragment
    keep_alive: bool


def parse_request(head: bytes) -> Request | None:
    """The request line and the Connection header of a request head; None if not HTTP/1.x.

    HTTP/1.1 persists unless the client says ``Connection: close``; HTTP/1.0 closes
    unless it says ``keep-alive`` (RFC 9112 section 9.3).
    """
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
        return None
    options: set[str] = set()
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "connection":
            options |= {o.strip().lower() for o in value.split(",")}
    keep = "keep-alive" in options if parts[2] == "HTTP/1.0" else "close" not in options
    return Request(parts[0], parts[1].split("?", 1)[0].split("#", 1)[0], keep)


async def serve(host: str, port: int, handler: Handler) -> asyncio.Server:
    """Listen on host:port; raise OSError when the address cannot be bound."""

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(MAX_REQUESTS):
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
                req = parse_request(head)
                if req is None:
                    resp, head_only = text(HTTPStatus.BAD_REQUEST, "not HTTP/1.x"), False
                elif req.method not in ("GET", "HEAD"):
                    # A body may follow that we do not read: the connection ends here.
                    resp = text(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: GET only")
                    resp.headers["Allow"] = "GET, HEAD"
                    head_only = False
                else:
                    resp, head_only = handler(req.path), req.method == "HEAD"
                keep = req is not None and req.keep_alive and req.method in ("GET", "HEAD")
                writer.write(encode(resp, head_only, keep))
                await writer.drain()
                if not keep:
                    break
        except (
            TimeoutError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass  # a client that went away, stalled, idled or sent too much: closed
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(on_client, host, port, limit=HEAD_LIMIT)
