"""Uplink probers (asyncio). ICMP echo today; the hub owns the sockets."""

from wanwatch.probe.icmp import EchoReply, ProbeHub, build_echo, checksum, parse_reply

__all__ = ["EchoReply", "ProbeHub", "build_echo", "checksum", "parse_reply"]
