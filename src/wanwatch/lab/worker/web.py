"""A lab web server: the fake internet's "generate_204", or an ISP's captive portal.

Run inside a lab namespace as the worker command
``web --listen ADDR [--listen ADDR] --port N --mode M [--location URL]``:

- ``ok``: ``GET /generate_204`` answers 204 No Content (what connectivity checks
  ask, e.g. Android's), any other path 404;
- ``portal``: every request is redirected (302) to ``--location``, what a
  prepaid carrier does once the quota is used up;
- ``page``: every request gets a 200 HTML page, a portal that serves its page in
  place of the answer.

Python's http.server, one thread per connection, bounded: it stops after
``--max-seconds`` or on SIGTERM, and reports one JSON line when listening and
one with its counts when it stops. A connection reset right after the handshake
(a TCP probe) ends that connection only, and is counted.
"""

from __future__ import annotations

import argparse
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from wanwatch.lab.worker.report import emit
from wanwatch.lab.worker.stop import stop_flag

GENERATE_204 = "/generate_204"
PORTAL_LOCATION = "http://portal.lab.test/topup"
_STOP_POLL = 0.1  # how soon a SIGTERM is acted on (the servers run in threads)
PAGE = b"<html><body><h1>Your quota is used up</h1><a href=/topup>Top up</a></body></html>"


class _Handler(BaseHTTPRequestHandler):
    mode: ClassVar[str] = "ok"
    location: ClassVar[str] = ""
    counts: ClassVar[dict[str, int]] = {"requests": 0, "resets": 0}
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            self.counts["requests"] += 1
        if self.mode == "portal":
            self.send_response(302)
            self.send_header("Location", self.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.mode == "page":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)
        elif self.path == GENERATE_204:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are counted, not logged line by line."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks its own address up by reverse DNS
        # (socket.getfqdn): from a lab namespace that query goes nowhere and
        # blocks for the resolver's timeouts. The name is only used in CGI.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A TCP probe connects and resets at once (probe/tcp.py); an HTTP probe
        # resets once it has read the head. Neither is the server's fault.
        with _Handler.lock:
            _Handler.counts["resets"] += 1


def web(args: argparse.Namespace) -> None:
    """Serve ``--mode`` on every ``--listen`` address until SIGTERM or ``--max-seconds``."""
    _Handler.mode, _Handler.location = args.mode, args.location
    servers = [_Server((host, args.port), _Handler) for host in args.listen]
    threads = [threading.Thread(target=s.serve_forever, args=(0.1,), daemon=True) for s in servers]
    for t in threads:
        t.start()
    stopped = stop_flag()
    emit(
        {
            "ev": "listening",
            "listen": args.listen,
            "port": args.port,
            "mode": args.mode,
            "t": time.monotonic(),
        }
    )
    end = time.monotonic() + args.max_seconds
    while not stopped() and time.monotonic() < end:
        time.sleep(_STOP_POLL)
    for s in servers:
        s.shutdown()
        s.server_close()
    emit({"ev": "stopped", **_Handler.counts, "t": time.monotonic()})
