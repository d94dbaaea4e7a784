"""Background load through the router: a steady stream of packets from a lab client.

Either ICMP echoes that the far host's kernel answers (two ways) or UDP datagrams
to :func:`udp_sink`, a port on the fake internet that reads and never answers
(one way). Bounded in time and in count (rate * seconds).
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from wanwatch.lab.worker import worker_argv
from wanwatch.lab.worker.limits import SINK_PORT

if TYPE_CHECKING:
    from wanwatch.lab.procs import Proc
    from wanwatch.lab.topology import Lab


class Stream:
    """Packets from ``who`` to ``dst`` at ``rate`` per second for at most ``seconds``.

    ``proto="icmp"``: echo requests (each answered, so the router forwards
    2 * rate packets per second); ``proto="udp"``: datagrams to ``port``, which
    nothing answers when :func:`udp_sink` listens there. Every ``rotate`` seconds
    it starts a new flow (a new echo identifier or source port), as an office's
    new connections do, so a new conntrack entry follows the uplink that carries
    new connections.
    """

    def __init__(
        self,
        lab: Lab,
        who: str,
        dst: IPv4Address | str,
        *,
        rate: float,
        seconds: float,
        proto: str = "icmp",
        port: int = SINK_PORT,
        rotate: float = 1.0,
    ) -> None:
        self.lab = lab
        self.who = who
        self.argv = worker_argv(
            "stream", "--dst", str(dst), "--rate", str(rate), "--seconds", str(seconds),
            "--proto", proto, "--port", str(port), "--rotate", str(rotate),
        )  # fmt: skip
        self.proc: Proc | None = None

    def __enter__(self) -> Stream:
        self.proc = self.lab.spawn(self.lab.ns_for(self.who), self.argv, "stream")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> dict[str, Any]:
        """Stop it; its report: packets ``sent``, answers ``received``, ``flows`` started."""
        if self.proc is None:
            return {}
        self.lab.stop_proc(self.proc)
        records = self.proc.records()
        return records[-1] if records else {}


def udp_sink(lab: Lab, seconds: float, port: int = SINK_PORT) -> Proc:
    """A UDP port on the fake internet that reads and never answers (stop it by PID)."""
    return lab.spawn(
        lab.inet_ns, worker_argv("sink", "--port", str(port), "--seconds", str(seconds)), "sink"
    )
