"""A minimal HTTP/1.1 server on asyncio streams: GET and HEAD, one request per connection.

Enough for a status page, its JSON and a Prometheus scrape on the daemon's own
loop, with nothing to install. The handler is a plain function of the path that
must answer from memory (it runs on the loop: it must never block); a client
that stalls or sends nonsense costs one bounded wait and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

HEAD_LIMIT = 16 * 1024  # request line and headers; a browser sends well under 2 KB
READ_TIMEOUT = 5.0

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


def encode(resp: Response, head_only: bool = False) -> bytes:
    reason = HTTPStatus(resp.status).phrase
    lines = [
        f"HTTP/1.1 {resp.status} {reason}\r\n",
        f"Content-Type: {resp.content_type}\r\n",
        f"Content-Length: {len(resp.body)}\r\n",
        "Connection: close\r\n",
        SECURITY_HEADERS,
        *(f"{k}: {v}\r\n" for k, v in resp.headers.items()),
        "\r\n",
    ]
    head = "".join(lines).encode("latin-1")
    return head if head_only else head + resp.body


def parse_request_line(head: bytes) -> tuple[str, str] | None:
    """(method, path without query) from a request head, or None if it is not HTTP."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    method, target = parts[0], parts[1]
    return method, target.split("?", 1)[0].split("#", 1)[0]


async def serve(host: str, port: int, handler: Handler) -> asyncio.Server:
    """Listen on host:port; raise OSError when the address cannot be bound."""

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            req = parse_request_line(head)
            if req is None:
                resp, head_only = text(HTTPStatus.BAD_REQUEST, "not HTTP/1.x"), False
            elif req[0] not in ("GET", "HEAD"):
                resp, head_only = text(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: GET only"), False
                resp.headers["Allow"] = "GET, HEAD"
            else:
                resp, head_only = handler(req[1]), req[0] == "HEAD"
            writer.write(encode(resp, head_only))
            await writer.drain()
        except (
            TimeoutError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass  # a client that went away, stalled or sent too much gets nothing
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(on_client, host, port, limit=HEAD_LIMIT)
