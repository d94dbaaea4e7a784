"""Uplink probers (asyncio): ICMP echo, TCP connect, HTTP and DNS, each pinned to its
uplink (pin.py); the hub (hub.py) owns the sockets and dispatches by method."""

from wanwatch.probe.hub import ProbeHub
from wanwatch.probe.icmp import EchoReply, build_echo, checksum, parse_reply

__all__ = ["EchoReply", "ProbeHub", "build_echo", "checksum", "parse_reply"]
