"""TCP, HTTP and DNS probes against servers on loopback (no root: the sockets are not
pinned here; tests/lab/test_probe.py pins them through real uplinks)."""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rrset
import pytest

from wanwatch.config.model import DnsTarget, HttpTarget, TcpTarget
from wanwatch.probe import dns as dns_probe
from wanwatch.probe import http, tcp
from wanwatch.probe.pin import UplinkSpec

LOOP = IPv4Address("127.0.0.1")
UNPINNED = UplinkSpec("lo", 0, None, bind_device=False)
TOPUP = "http://portal.example/topup"


def run(coro: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(10):
            return await coro

    return asyncio.run(bounded())


def closed_port() -> int:
    """A loopback port nothing listens on (the kernel answers a SYN with a RST)."""
    with socket.socket() as s:
        s.bind((str(LOOP), 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- tcp


def test_tcp_a_syn_ack_and_a_rst_both_prove_the_path() -> None:
    async def main() -> tuple[tcp.Answer, tcp.Answer, int]:
        accepted = 0

        def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            writer.close()

        server = await asyncio.start_server(on_client, str(LOOP), 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            listening = await tcp.probe(
                UNPINNED, TcpTarget(address=LOOP, port=port), time.monotonic_ns
            )
            refused = await tcp.probe(
                UNPINNED, TcpTarget(address=LOOP, port=closed_port()), time.monotonic_ns
            )
            await asyncio.sleep(0.05)  # let the server run its accept callback
        return listening, refused, accepted

    listening, refused, accepted = run(main())
    assert listening.portal is None and refused.portal is None
    assert 0 < listening.rtt_ns < 1e9 and 0 < refused.rtt_ns < 1e9
    assert accepted == 1


# --------------------------------------------------------------------------- http


@asynccontextmanager
async def web(response: bytes) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A server that reads one request head, answers ``response`` and closes."""
    heads: list[bytes] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(response)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_client, str(LOOP), 0)
    async with server:
        yield server.sockets[0].getsockname()[1], heads


def get(response: bytes, *, path: str = "/generate_204", expect: int = 204) -> Any:
    async def main() -> tuple[tcp.Answer | None, list[bytes]]:
        async with web(response) as (port, heads):
            target = HttpTarget(
                address=LOOP, url=f"http://check.example:{port}{path}", expect=expect
            )
            return await http.probe(UNPINNED, target, time.monotonic_ns), heads

    return run(main())


def test_http_expected_status_is_success_and_the_host_comes_from_the_url() -> None:
    answer, heads = get(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", path="/g?x=1")
    assert answer is not None and answer.portal is None and answer.rtt_ns > 0
    # the connection went to the target's address; the URL's host only names it
    (head,) = heads
    lines = head.decode().split("\r\n")
    assert lines[0] == "GET /g?x=1 HTTP/1.1"
    assert any(line.lower().startswith("host: check.example:") for line in lines)


@pytest.mark.parametrize(
    ("response", "portal"),
    [
        (b"HTTP/1.1 302 Found\r\nLocation: http://portal.example/topup\r\n\r\n", TOPUP),
        (b"HTTP/1.0 307 Temporary Redirect\r\nLocation: /login?from=1\r\n\r\n", "/login?from=1"),
        (b"HTTP/1.1 301 Moved\r\nContent-Length: 0\r\n\r\n", ""),
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>top up</html>", ""),
    ],
    ids=["redirect", "relative-redirect", "redirect-without-location", "page-instead-of-204"],
)
def test_http_redirect_or_a_page_where_204_was_expected_is_a_portal(
    response: bytes, portal: str
) -> None:
    answer, _ = get(response)
    assert answer is not None and answer.portal is not None
    if portal.startswith("http://"):
        assert answer.portal == portal
    else:  # resolved against the probed URL
        assert answer.portal.startswith("http://check.example:")
        assert answer.portal.endswith(portal or "/generate_204")


def test_http_a_200_is_success_when_200_is_expected() -> None:
    answer, _ = get(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", path="/", expect=200)
    assert answer is not None and answer.portal is None


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 502 Bad Gateway\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"",
    ],
    ids=["404", "502-from-a-proxy", "not-http", "closed-without-answer"],
)
def test_http_other_answers_do_not_count(response: bytes) -> None:
    answer, _ = get(response)
    assert answer is None


def test_http_a_reset_connection_raises_for_the_hub_to_count() -> None:
    target = HttpTarget(address=LOOP, url=f"http://check.example:{closed_port()}/generate_204")
    with pytest.raises(ConnectionRefusedError):
        run(http.probe(UNPINNED, target, time.monotonic_ns))


def test_http_request_bytes_are_what_the_budget_counts() -> None:
    target = HttpTarget(address=LOOP, url="http://connectivitycheck.gstatic.com/generate_204")
    sent = http.request_bytes(target)
    assert sent.startswith(b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n")
    assert sent.endswith(b"\r\n\r\n") and len(sent) < 200


# --------------------------------------------------------------------------- dns


@asynccontextmanager
async def resolver(
    answer: Callable[[dns.message.Message], list[bytes]],
) -> AsyncIterator[int]:
    """A UDP server on loopback answering each query with ``answer(query)``'s datagrams."""
    loop = asyncio.get_running_loop()

    class Protocol(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            for reply in answer(dns.message.from_wire(data)):
                self.transport.sendto(reply, addr)

    transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=(str(LOOP), 0))
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


def a_reply(
    query: dns.message.Message, *addresses: str, rcode: dns.rcode.Rcode = dns.rcode.NOERROR
) -> bytes:
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.Rcode(rcode))
    if addresses:
        name = query.question[0].name
        reply.answer.append(dns.rrset.from_text(name, 60, "IN", "A", *addresses))
    return reply.to_wire()


def ask(
    monkeypatch: pytest.MonkeyPatch,
    answer: Callable[[dns.message.Message], list[bytes]],
    expected: str | None = None,
) -> tcp.Answer | None:
    async def main() -> tcp.Answer | None:
        async with resolver(answer) as port:
            monkeypatch.setattr(dns_probe, "DNS_PORT", port)
            target = DnsTarget(
                address=LOOP,
                name="www.lab.test",
                answer=IPv4Address(expected) if expected else None,
            )
            return await dns_probe.probe(UNPINNED, target, time.monotonic_ns)

    result: tcp.Answer | None = run(main())
    return result


def test_dns_a_noerror_reply_counts_and_the_expected_answer_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def good(q: dns.message.Message) -> list[bytes]:
        return [a_reply(q, "198.51.100.80", "198.51.100.81")]

    assert ask(monkeypatch, good) is not None
    assert ask(monkeypatch, good, expected="198.51.100.81") is not None
    # a resolver that sends every name to a portal's address is no proof
    assert ask(monkeypatch, good, expected="203.0.113.80") is None


def test_dns_servfail_does_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ask(monkeypatch, lambda q: [a_reply(q, rcode=dns.rcode.SERVFAIL)]) is None


def test_dns_a_forged_or_garbled_datagram_does_not_end_the_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def noisy(q: dns.message.Message) -> list[bytes]:
        other = dns.message.make_query("www.lab.test", "A")  # another id
        return [b"\x00garbage", a_reply(other, "203.0.113.80"), a_reply(q, "198.51.100.80")]

    answer = ask(monkeypatch, noisy, expected="198.51.100.80")
    assert answer is not None


def test_dns_silence_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dns_probe, "QUERY_TIMEOUT", 0.2)
    with pytest.raises(TimeoutError):
        ask(monkeypatch, lambda q: [])


# --------------------------------------------------------------------------- loading


def test_a_daemon_without_http_or_dns_targets_loads_neither_library() -> None:
    """h11 and dnspython cost memory (docs/probes.md): imported on first use only."""
    probe = (
        "import json, sys, wanwatch.cli, wanwatch.daemon.loop\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('h11', 'dns'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == []


def test_the_dns_probe_loads_neither_package_metadata_nor_dnspythons_feature_scan() -> None:
    """probe/dns.py: dnspython's feature scan cost 1.3 MB; our stand-in answers instead."""
    probe = (
        "import json, sys, wanwatch.cli, wanwatch.daemon.loop\n"
        "from wanwatch.probe import dns as probe\n"
        "import dns.name\n"
        "print(json.dumps([sorted(m for m in ('importlib.metadata', 'idna') if m in sys.modules),"
        " dns.name.from_text('www.lab.test').to_text(), dns._features.have('idna')]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == [[], "www.lab.test.", False]


def test_the_stand_in_for_dns_features_has_every_public_function_of_dnspythons() -> None:
    spec = importlib.util.find_spec("dns._features")
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    public = {
        n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
    }
    stand_in = dns_probe._no_optional_features()
    assert public == {"have", "force"}
    assert all(callable(getattr(stand_in, name)) for name in public)
    stand_in.force("idna", True)
    assert stand_in.have("idna") and not stand_in.have("doh")
