"""``wanwatch check|plan|run|status|leases``: the office config and the router daemon."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wanwatch.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FINDING,
    config_option,
    echo_problems,
    json_option,
    load_or_exit,
    need_root,
)
from wanwatch.config import Config
from wanwatch.config.dynamic import kind, plan_gateway, runtime_facts
from wanwatch.errors import ConfigError, WanwatchError
from wanwatch.paths import DEFAULT_CONFIG, DEFAULT_SOCKET, DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from wanwatch.config.model import Quota
    from wanwatch.daemon.logs import LogFormat
    from wanwatch.status import FirewallStatus, QuotaStatus, RulesStatus, UplinkStatus


@click.command()
@config_option(DEFAULT_CONFIG, fixed=True)
@click.option(
    "--explain", is_flag=True, help="Also show each uplink's monitor settings and their meaning."
)
def check(config_path: Path, explain: bool) -> None:
    """Validate the config; exit 2 naming file, line and field of every mistake."""
    cfg = load_or_exit(config_path)
    click.echo(f"{config_path}: ok")
    for w in cfg.wans:
        addr = w.address or "(interface's own address)"
        targets = ", ".join(t.label for t in w.probe.targets)
        click.echo(
            f"  wan {w.name}: {w.interface} {addr} {plan_gateway(w.gateway, kind(w))}, "
            f"priority {w.priority}, weight {w.weight}, probes {targets}"
        )
    for lan in cfg.lans:
        dhcp = ""
        if lan.dhcp is not None:
            lo, hi = lan.dhcp.range
            dhcp = f", DHCP {lo}-{hi}"
        click.echo(
            f"  lan {lan.name}: {lan.interface} {lan.address or '(interface address)'}{dhcp}"
        )
    click.echo(f"  policy: {cfg.policy.mode}; NAT masquerade: {cfg.nat.masquerade}")
    echo_runtime_facts(cfg)
    if explain:
        click.echo(explain_monitor(cfg))
        click.echo(explain_budget(cfg))


def explain_monitor(cfg: Config) -> str:
    """Every uplink's effective monitor settings, with meaning and bounds from the model."""
    from wanwatch.config import MONITOR_FIELDS, format_duration

    lines = ["monitor (defaults < monitor: < the uplink's probe: block):"]
    for wan in cfg.wans:
        mon = cfg.monitor_for(wan).to_data()
        overridden = set(wan.probe.overrides())
        lines.append(f"  {wan.name}:")
        for key, (default, lo, hi, meaning) in MONITOR_FIELDS.items():
            value = mon[key]
            is_time = key not in ("down_after", "up_after", "degraded_loss")
            shown = "unset" if value is None else format_duration(value) if is_time else value
            where = "probe:" if key in overridden else "default" if value == default else "monitor:"
            rng = f"{format_duration(lo)}-{format_duration(hi)}" if is_time else f"{lo:g}-{hi:g}"
            lines.append(f"    {key:<14} {shown!s:<8} ({where}; {rng}) {meaning}")
    return "\n".join(lines)


def explain_budget(cfg: Config) -> str:
    """Each uplink's probes per second and bytes per day, per method (docs/probes.md)."""
    from wanwatch.config import format_duration
    from wanwatch.probe.budget import costs

    lines = ["probe budget (healthy cadence; IP bytes both ways, MB = 10^6 bytes):"]
    for wan in cfg.wans:
        modes = [("", False)]
        if wan.metered:
            every = format_duration(cfg.monitor_for(wan).standby_interval)
            modes = [(" carrying", False), (f" standby (metered: at most every {every})", True)]
        for mode, standby in modes:
            rows = costs(cfg, wan, standby=standby)
            lines.append(f"  {wan.name}{mode}:")
            for c in rows:
                n = f"{c.targets} target{'s' if c.targets > 1 else ''}"
                lines.append(
                    f"    {c.method:<5} {n:<10} {c.per_s:6.2f} probes/s "
                    f"{c.bytes_day / 1e6:8.2f} MB/day"
                )
            rate, volume = sum(c.per_s for c in rows), sum(c.bytes_day for c in rows)
            lines.append(f"    {'total':<16} {rate:6.2f} probes/s {volume / 1e6:8.2f} MB/day")
            if wan.quota is not None:
                lines.append(f"    {_quota_share(wan.quota, volume)}")
    return "\n".join(lines)


MONTH_DAYS = 30  # what "a month" of probes means against a monthly quota


def _quota_share(quota: Quota, per_day: float) -> str:
    """What the probes alone take of ``quota`` at ``per_day`` bytes a day."""
    limit = f"{quota.limit / 1e6:.0f} MB"
    if quota.period == "monthly":
        month = per_day * MONTH_DAYS
        return (
            f"quota {limit} a month: probes take {month / 1e6:.1f} MB of it in {MONTH_DAYS} days"
            f" ({100 * month / quota.limit:.1f} %)"
        )
    days = quota.limit / per_day if per_day else float("inf")
    return f"quota {limit} prepaid: probes alone would use it up in {days:.0f} days"


@click.command()
@config_option(DEFAULT_CONFIG, fixed=True)
@click.option("--down", "down", multiple=True, metavar="WAN", help="Treat this uplink as down.")
@click.option(
    "--matrix", is_flag=True, help="Every rule's path for every combination of uplinks up and down."
)
@json_option
def plan(config_path: Path, down: tuple[str, ...], matrix: bool, as_json: bool) -> None:
    """Print the dataplane wanwatch wants for a given uplink state (no root needed)."""
    from wanwatch.engine.policy import plan_for

    cfg = load_or_exit(config_path)
    if matrix:
        from wanwatch.engine.matrix import format_matrix

        click.echo(format_matrix(cfg), nl=False)
        return
    names = {w.name for w in cfg.wans}
    unknown = [d for d in down if d not in names]
    if unknown:
        click.echo(
            f"--down: no uplink named {', '.join(unknown)} (have: {', '.join(sorted(names))})",
            err=True,
        )
        sys.exit(EXIT_BAD_INPUT)
    intent = plan_for(cfg, set(down))
    from wanwatch.linux import firewall
    from wanwatch.linux.desired import describe, plan_json

    wall = firewall.describe(cfg)
    if as_json:
        click.echo(
            json.dumps({**plan_json(intent), "firewall": firewall.plan_json(wall)}, indent=2)
        )
        return
    click.echo(describe(intent))
    click.echo("\n".join(firewall.plan_lines(wall)))
    echo_runtime_facts(cfg)


def echo_runtime_facts(cfg: Config) -> None:
    """What only run time knows about dynamic uplinks (dynamic.py), for check and plan."""
    facts = runtime_facts(cfg)
    if facts:
        click.echo("known only at run time:")
        click.echo("\n".join(f"  {f}" for f in facts))


socket_option = click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=str(DEFAULT_SOCKET),
    show_default=True,
    help="Control socket of the daemon.",
)


@click.command()
@config_option(DEFAULT_CONFIG, fixed=True)
@socket_option
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=str(DEFAULT_STATE_DIR),
    show_default=True,
    help="Leases and last known state (set it per namespace: namespaces share one filesystem).",
)
@click.option(
    "--metrics",
    "metrics_address",
    metavar="HOST:PORT",
    default=None,
    help="Serve Prometheus metrics there (e.g. 127.0.0.1:9107).",
)
@click.option(
    "--http",
    "http_address",
    metavar="HOST:PORT",
    default=None,
    help="Serve the read-only status page, /api/status and /metrics there (e.g. 127.0.0.1:9180).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one event a line (no timestamp under journald); json: one object a line.",
)
@click.option("-v", "--verbose", is_flag=True, help="Also log debug messages.")
def run(
    *,
    config_path: Path,
    socket_path: Path,
    state_dir: Path,
    metrics_address: str | None,
    http_address: str | None,
    log_format: LogFormat,
    verbose: bool,
) -> None:
    """Be the router (root): probe uplinks, steer routes, NAT, serve DHCP/DNS.

    SIGTERM/SIGINT stop cleanly and remove what wanwatch added; SIGHUP reloads the
    config (an invalid one is refused and the old one keeps running).
    """
    import asyncio
    import signal

    from wanwatch.daemon import logs
    from wanwatch.daemon.assemble import assemble

    load_or_exit(config_path)  # exit 2 before touching anything
    metrics = _host_port("--metrics", metrics_address) if metrics_address else None
    http = _host_port("--http", http_address) if http_address else None
    logs.setup(log_format, verbose)
    need_root("wanwatch run needs root (netlink, nftables, raw ICMP sockets).")
    try:
        daemon = assemble(config_path, socket_path, state_dir, metrics=metrics, http=http)
        with asyncio.Runner() as runner:
            try:
                code = runner.run(daemon.run())
            finally:
                # On its way out: closing the loop gives SIGTERM back SIG_DFL, and a second
                # SIGTERM then (a supervisor asking again) would turn a clean exit into death
                # by signal. Blocked from here, it stays pending until the process is gone.
                signal.pthread_sigmask(
                    signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
                )
    except ConfigError as exc:  # the file changed between the check above and the start
        echo_problems(exc)
        sys.exit(EXIT_BAD_INPUT)
    except WanwatchError as exc:
        click.echo(f"wanwatch: {exc}", err=True)
        sys.exit(EXIT_FINDING)
    sys.exit(code)


def _host_port(option: str, text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        click.echo(f"{option}: {text!r} is not HOST:PORT", err=True)
        sys.exit(EXIT_BAD_INPUT)
    return host.strip("[]"), int(port)


def ask_daemon(socket_path: Path, what: str, **args: Any) -> dict[str, Any]:
    """The daemon's answer to ``what`` over its control socket, or exit 1 saying why not."""
    from wanwatch.daemon.control import ControlError, request

    try:
        return request(socket_path, what, **args)
    except ControlError as exc:
        click.echo(f"wanwatch {what}: {exc}", err=True)
        sys.exit(EXIT_FINDING)


@click.command()
@socket_option
@json_option
def status(socket_path: Path, as_json: bool) -> None:
    """Ask the running daemon how the uplinks are and who carries traffic."""
    answer = ask_daemon(socket_path, "status")
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    click.echo(format_status(answer))


@click.command()
@socket_option
@click.argument("wan")
@click.option(
    "--drain",
    is_flag=True,
    help="Only stop new connections; the open ones finish on this uplink.",
)
def disable(socket_path: Path, wan: str, drain: bool) -> None:
    """Take uplink WAN out of service (root); kept across daemon restarts.

    Without --drain it carries nothing at all: its open connections are deleted
    and move to another uplink on their next packet.
    """
    _admin(socket_path, "disable", wan=wan, drain=drain)


@click.command()
@socket_option
@click.argument("wan")
def enable(socket_path: Path, wan: str) -> None:
    """Put uplink WAN back in service (root): its probes decide again."""
    _admin(socket_path, "enable", wan=wan)


def _admin(socket_path: Path, cmd: str, **args: Any) -> None:
    answer = ask_daemon(socket_path, cmd, **args)
    note = "" if answer.get("saved") else " (not saved: lost on restart, see the log)"
    click.echo(f"{answer['wan']}: {answer['admin']}{note}")


@click.group()
def quota() -> None:
    """The data quotas of the running daemon's uplinks (docs/probes.md, "Quotas")."""


@quota.command("reset")
@socket_option
@click.argument("wan")
def quota_reset(socket_path: Path, wan: str) -> None:
    """Start uplink WAN's quota again from zero (root): a prepaid top-up, or a carrier
    that reset it early. A monthly quota still starts again on its reset_day."""
    answer = ask_daemon(socket_path, "quota_reset", wan=wan)
    note = "" if answer.get("saved") else " (not saved: lost on restart, see the log)"
    click.echo(f"{answer['wan']}: quota reset, 0 bytes used{note}")


@click.command()
@socket_option
@json_option
def leases(socket_path: Path, as_json: bool) -> None:
    """List the DHCP clients on each LAN (address, MAC, hostname, expiry)."""
    answer = ask_daemon(socket_path, "leases")
    if as_json:
        click.echo(json.dumps(answer["leases"], indent=2))
        return
    click.echo(format_leases_table(answer["leases"]))


@click.command("systemd-unit")
def systemd_unit() -> None:
    """Print the systemd unit (Type=notify, watchdog, hardening) for this installation."""
    from wanwatch.daemon.systemd import unit

    click.echo(unit(), nl=False)


def format_status(answer: dict[str, Any]) -> str:
    """The status answer as a table for people."""
    from wanwatch.status import from_json

    st = from_json(answer)
    lines = [f"mode {st.mode}, carrying new connections: {', '.join(st.active) or '-'}"]
    if st.stale:
        lines[0] += "  (no healthy uplink: last choice kept)"
    if st.ha is not None:  # keepalived's latest announcement, as linux/pair.py follows it
        dhcp = "serving DHCP" if st.ha.get("serving_dhcp") else "not serving DHCP"
        role = st.ha.get("role") or "not announced yet"
        lines.append(f"pair: {role}, {dhcp}, uplinks down for VRRP: {st.ha.get('uplinks_down')}")
    lines.append(f"{'UPLINK':<16}{'STATE':<10}{'RTT':>9}{'LOSS':>7}  {'SINCE':<30}ROLE")
    for w in st.wans:
        rtt = "-" if w.rtt_ms is None else f"{w.rtt_ms:.1f}ms"
        role = "carrying" if w.carrying else "standby"
        if w.admin != "enabled":
            role = w.admin
        lines.append(
            f"{w.name:<16}{w.state:<10}{rtt:>9}{w.loss_pct:>6.1f}%  {w.since:<30}{role}"
            + _phase(w.phase, w.progress)
        )
    if st.counters:  # open connections per uplink and what its device moved (nft counters)
        lines.append("")
        lines.append(f"{'UPLINK':<16}{'CONNECTIONS':>12}{'IN':>10}{'OUT':>10}")
        for name, c in st.counters.items():
            lines.append(
                f"{name:<16}{c.connections:>12}{_size(c.bytes_in):>10}{_size(c.bytes_out):>10}"
            )
    if st.rules is not None:
        lines += ["", *_rules_table(st.rules)]
    lines += [line for w in st.wans if (line := _dynamic_line(w))]
    lines += [line for w in st.wans if (line := _delegation_line(w))]
    if st.firewall is not None:
        lines.append(_firewall_line(st.firewall))
    lines += [
        f"{w.name}: captive portal, web sent to {w.portal_url}" for w in st.wans if w.portal_url
    ]
    lines += [_quota_line(w.name, w.quota) for w in st.wans if w.quota is not None]
    for step, error in st.failed_steps.items():
        lines.append(f"not applied: {step}: {error} (retry in {st.retry_in_s} s)")
    for obj in st.contested:
        lines.append(f"contested (another program keeps removing it; repair backs off): {obj}")
    if st.leases:
        lines.append("")
        lines.append(format_leases_table(st.leases))
    if st.events:
        lines.append("")
        lines.append("recent events:")
        lines.extend(f"  {e}" for e in st.events[-10:])
    return "\n".join(lines)


def _delegation_line(w: UplinkStatus) -> str | None:
    """A dhcp6 uplink: the prefix delegated to it (the LANs' IPv6 leaves translated into it)."""
    if w.dhcp6_client is None:
        return None
    d = w.delegation
    if d is None:
        return f"{w.name}: dhcp6, no delegated prefix (LAN IPv6 masqueraded)"
    return (
        f"{w.name}: dhcp6 prefix {d.prefix}, preferred {d.preferred_s} s, valid "
        f"{d.valid_s} s, renewed {d.age_s:g} s ago"
    )


def _dynamic_line(w: UplinkStatus) -> str | None:
    """An uplink that is not static, or whose interface is absent: how it is reached now."""
    if w.link == "absent":
        return f"{w.name}: interface absent (adopted when it appears)"
    if w.kind == "dhcp":
        lease = w.lease
        if lease is None:
            return f"{w.name}: dhcp, no lease"
        return (
            f"{w.name}: dhcp lease {lease.address} via {lease.router or '-'} from "
            f"{lease.server or '-'}, {lease.lease_s} s, renewed {lease.age_s:g} s ago"
        )
    if w.kind == "point-to-point":
        return f"{w.name}: point-to-point {w.address or '-'} via {w.gateway or 'the device'}"
    return None


def _rules_table(rs: RulesStatus) -> list[str]:
    """Each policy rule: where its new connections go, what it carried, and why."""
    out = [f"{'RULE':<16}{'PATH':<24}{'OPENED':>8}{'IN':>10}{'OUT':>10}  WHY"]

    def where(kind: str, uplinks: list[str]) -> str:
        path = {"uplink": "", "balance": "balance "}.get(kind, f"{kind} ")
        return (path + ("+".join(uplinks) if kind != "block" else "")).strip()

    for r in rs.rules:
        path, why = where(r.path, r.uplinks), r.why
        if r.families == [6] and 4 in rs.families:  # an IPv6-only rule, as in plan --matrix
            path = f"IPv6 {path}"
        if r.path6 is not None:  # its IPv6 goes elsewhere (docs/rules.md)
            path += f"; IPv6 {where(r.path6, r.uplinks6 or [])}"
            why += f"; IPv6: {r.why6}" if r.why6 is not None else ""
        t = r.traffic
        out.append(
            f"{r.name:<16}{path:<24}{t.connections:>8}"
            f"{_size(t.bytes_in):>10}{_size(t.bytes_out):>10}  {why}"
        )
    return out


def _quota_line(name: str, q: QuotaStatus) -> str:
    until = f"until {q.period_end}" if q.period_end else "prepaid, until a reset"
    state = {"ok": "", "warning": ", warning", "exhausted": f", used up: {q.exhausted}"}
    return (
        f"{name}: quota {_size(q.used)} of {_size(q.limit)}"
        f" ({100 * q.used / q.limit:.0f} %){state.get(q.state, '')}, {until}"
    )


def _firewall_line(fw: FirewallStatus) -> str:
    """What the firewall dropped and forwarded, e.g.
    ``firewall on, dropped: A 12 in 3 fwd, guest WIFI 4; forwarded: nas 7``."""
    dropped = [f"{wan} {d.input} in {d.forward} fwd" for wan, d in fw.dropped.items()]
    dropped += [f"guest {lan} {n}" for lan, n in fw.guests.items()]
    line = "firewall " + ("on, dropped: " + ", ".join(dropped) if fw.enabled else "off")
    if fw.forwards:
        line += "; forwarded: " + ", ".join(f"{name} {n}" for name, n in fw.forwards.items())
    return line


def _phase(phase: str | None, progress: dict[str, float]) -> str:
    """What is under way for one uplink, e.g. ``suspect 3/6 lost``, ``hold 7.5 s left``."""
    if phase == "suspect":
        return f"  suspect {progress['lost']:.0f}/{progress['needed']:.0f} lost"
    if phase == "rising":
        return f"  rising {progress['good']:.0f}/{progress['needed']:.0f} good"
    if phase == "hold":
        return f"  hold {progress['hold_left_s']:.1f} s left"
    return ""


def _size(n: int) -> str:
    """Bytes for people: 1023B, 1.5K, 12.3M, 4.0G (powers of 1024)."""
    if n < 1024:
        return f"{n}B"
    value = n / 1024
    for unit in ("K", "M"):
        if value < 1024:
            return f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}G"


def format_leases_table(rows: list[dict[str, Any]]) -> str:
    from wanwatch.linux.leases import Lease, format_leases

    return format_leases([Lease.from_json(r) for r in rows])


COMMANDS = (check, plan, run, status, disable, enable, quota, leases, systemd_unit)
