"""A lab web server: the fake internet's "generate_204", or an ISP's captive portal.

Run inside a lab namespace as
``python -m wanwatch.lab.worker.web --listen ADDR [--listen ADDR] --port N --mode M``:

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
import signal
import socketserver
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from wanwatch.lab.worker.limits import DEFAULT_MAX_SECONDS
from wanwatch.lab.worker.report import emit

GENERATE_204 = "/generate_204"
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


def serve(listen: Sequence[str], port: int, mode: str, location: str, max_seconds: float) -> None:
    _Handler.mode, _Handler.location = mode, location
    servers = [_Server((host, port), _Handler) for host in listen]
    threads = [threading.Thread(target=s.serve_forever, args=(0.1,), daemon=True) for s in servers]
    for t in threads:
        t.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    emit(
        {
            "ev": "listening",
            "listen": list(listen),
            "port": port,
            "mode": mode,
            "t": time.monotonic(),
        }
    )
    stop.wait(max_seconds)
    for s in servers:
        s.shutdown()
        s.server_close()
    emit({"ev": "stopped", **_Handler.counts, "t": time.monotonic()})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wanwatch.lab.worker.web")
    parser.add_argument("--listen", action="append", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--mode", choices=["ok", "portal", "page"], default="ok")
    parser.add_argument("--location", default="http://portal.lab.test/topup")
    parser.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS)
    args = parser.parse_args(argv)
    serve(args.listen, args.port, args.mode, args.location, args.max_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
