"""What LTE carriers do that ICMP misses, in the lab: ICMP filtered, a captive portal.

Each is set in the ISP's namespace, never the router's, so the router sees what
a real office sees (as faults.py does for blackholes and loss):

- ``drop_icmp``: an nft drop of the echo requests the ISP forwards, in a table
  of its own (``inet ww_icmp_filter``): a carrier that filters ICMP while TCP,
  HTTP and DNS pass;
- ``portal``: a quota used up. A web server in the ISP's namespace
  (worker/web.py, ``--mode portal``) redirects every request to a top-up page,
  and an nft DNAT in ``ip ww_portal`` sends every port-80 connection from the
  customer to it. ICMP and the rest still pass, as on a real prepaid line.

:func:`start_web` runs the fake internet's "generate_204" server on the whoami
addresses, and :func:`methods_config` writes a daemon config whose uplinks are
probed by every method (docs/probes.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from wanwatch.config import load
from wanwatch.errors import LabError
from wanwatch.lab import netns, poll
from wanwatch.lab.plan import WEB_NAMES
from wanwatch.lab.procs import Proc
from wanwatch.lab.services import MAX_SECONDS
from wanwatch.lab.topology import Lab
from wanwatch.lab.worker import worker_argv
from wanwatch.lab.worker.web import PORTAL_LOCATION

WEB_PORT = 80
PORTAL_PORT = 8081  # the portal server in the ISP namespace, behind the DNAT
PORTAL_URL = PORTAL_LOCATION
START_TIMEOUT = 10.0  # a web server listens within a second; this bounds a broken one
ICMP_FILTER_TABLE = "ww_icmp_filter"
PORTAL_TABLE = "ip ww_portal"
NAMES = WEB_NAMES  # the lab DNS's names of whoami[0], whoami[1], ...

Kind = Literal["icmp_filter", "portal"]


@dataclass(frozen=True)
class Change:
    """One change on an ISP; the kernel took it between ``t_start`` and ``t_done``
    (CLOCK_MONOTONIC, one clock for every namespace and the daemon's events)."""

    kind: Kind
    wan: str
    action: Literal["set", "clear"]
    t_start: float
    t_done: float


def web_argv(listen: list[str], port: int, mode: str) -> list[str]:
    """argv of a lab web server (worker/web.py), to run inside a lab namespace."""
    addresses = [arg for a in listen for arg in ("--listen", a)]
    return worker_argv(
        "web", "--port", str(port), *addresses, "--mode", mode, "--location", PORTAL_URL,
        "--max-seconds", str(MAX_SECONDS),
    )  # fmt: skip


def _started(lab: Lab, proc: Proc) -> Proc:
    """``proc`` once it listens; stopped, and a LabError, if it dies or takes too long."""

    def listening() -> bool:
        if not proc.alive():
            raise LabError(f"{proc.name} died: {proc.stderr()[-800:]}")
        return any(r.get("ev") == "listening" for r in proc.records())

    try:
        poll.until(listening, START_TIMEOUT, f"{proc.name} to listen")
    except LabError:
        lab.stop_proc(proc)
        raise
    return proc


def start_web(lab: Lab) -> Proc:
    """The fake internet's web server: 204 on /generate_204 at every whoami address."""
    listen = [str(a) for a in lab.topology.whoami]
    return _started(lab, lab.spawn(lab.inet_ns, web_argv(listen, WEB_PORT, "ok"), "web"))


def drop_icmp(lab: Lab, wan: str) -> Change:
    """The ISP of ``wan`` drops every echo request it would forward."""
    isp = lab.isp(wan)
    t0 = time.monotonic()
    netns.nft(
        isp.ns,
        f"""\
table inet {ICMP_FILTER_TABLE}
delete table inet {ICMP_FILTER_TABLE}
table inet {ICMP_FILTER_TABLE} {{
    chain forward {{
        type filter hook forward priority filter - 15; policy accept;
        iifname "{isp.cust_if}" icmp type echo-request counter drop
    }}
}}
""",
    )
    return Change("icmp_filter", wan, "set", t0, time.monotonic())


def portal(lab: Lab, wan: str, mode: Literal["portal", "page"] = "portal") -> Change:
    """The quota of ``wan`` is used up: every web request from the office reaches the
    ISP's portal (a redirect to PORTAL_URL, or a page served in place)."""
    isp = lab.isp(wan)
    clear(lab, wan, "portal")
    own = str(isp.gateway.ip)
    _started(lab, lab.spawn(isp.ns, web_argv([own], PORTAL_PORT, mode), f"portal-{wan}"))
    t0 = time.monotonic()
    netns.nft(
        isp.ns,
        f"""\
table {PORTAL_TABLE}
delete table {PORTAL_TABLE}
table {PORTAL_TABLE} {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname "{isp.cust_if}" tcp dport {WEB_PORT} counter dnat to {own}:{PORTAL_PORT}
    }}
}}
""",
    )
    return Change("portal", wan, "set", t0, time.monotonic())


def clear(lab: Lab, wan: str, kind: Kind | None = None) -> Change:
    """Remove this module's faults of ``wan`` (``kind``, or both); a no-op for unset ones.

    The portal's DNAT goes first, so no new connection meets a stopped server;
    connections already redirected keep their conntrack entry until they end.
    """
    isp = lab.isp(wan)
    t0 = time.monotonic()
    if kind in (None, "portal"):
        netns.nft(isp.ns, f"table {PORTAL_TABLE}\ndelete table {PORTAL_TABLE}\n")
        for proc in [p for p in lab.procs if p.name == f"portal-{wan}"]:
            lab.stop_proc(proc)
    if kind in (None, "icmp_filter"):
        netns.nft(
            isp.ns, f"table inet {ICMP_FILTER_TABLE}\ndelete table inet {ICMP_FILTER_TABLE}\n"
        )
    return Change(kind or "portal", wan, "clear", t0, time.monotonic())


def method_targets(lab: Lab, wan: str, *, http_interval: str | None = None) -> list[Any]:
    """Probe targets of every method for ``wan``, on hosts of its own ISP's range: its
    ICMP targets, a TCP connect and an HTTP GET to its whoami address, and an A query
    to its range's DNS server for the whoami's name (with the answer checked)."""
    isp = lab.isp(wan)
    k = isp.index
    web = lab.topology.whoami[k]
    server = next(a for a in lab.topology.dns_servers if a in isp.net)
    http: dict[str, Any] = {
        "method": "http",
        "address": str(web),
        "url": f"http://{NAMES[k]}/generate_204",
    }
    if http_interval is not None:
        http["interval"] = http_interval
    return [
        *(str(t) for t in isp.targets),
        {"method": "tcp", "address": str(web), "port": WEB_PORT},
        http,
        {"method": "dns", "address": str(server), "name": NAMES[k], "answer": str(web)},
    ]


def methods_config(
    lab: Lab,
    name: str,
    *,
    wans: tuple[str, ...],
    monitor: dict[str, Any] | None = None,
    http_interval: str | None = None,
) -> Path:
    """A copy of the lab's config whose uplinks ``wans`` are probed by every method,
    with ``monitor`` settings and no hooks, validated, in the lab's state directory."""
    data = yaml.safe_load(lab.config_text)
    for w in data["wans"]:
        if w["name"] in wans:
            w["probe"]["targets"] = method_targets(lab, w["name"], http_interval=http_interval)
    data["monitor"] = {**data.get("monitor", {}), **(monitor or {})}
    data["hooks"] = {}  # the office's logger hooks would write to the host's syslog
    path = lab.state_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load(path)
    return path
