"""`wanwatch lab up|down|demo`: the reference office in network namespaces (root)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from wanwatch.cli.common import EXIT_FINDING, config_option, load_or_exit, need_root
from wanwatch.errors import LabError

DEFAULT_CONFIG = Path(__file__).resolve().parents[3] / "examples" / "office.yaml"
DYNAMIC_CONFIG = DEFAULT_CONFIG.with_name("office-dynamic.yaml")


def _need_root() -> None:
    need_root("the lab needs root (it builds network namespaces).")


lab_config = config_option(
    DEFAULT_CONFIG, "Office config to reproduce (public addresses are replaced by lab ones)."
)
ha_option = click.option(
    "--ha",
    is_flag=True,
    help="A router pair (keepalived + conntrackd): -c names router A's NAME-a.yaml "
    "(default examples/office-ha-a.yaml), NAME-b.yaml is router B's.",
)
mode_option = click.option(
    "--mode",
    type=click.Choice(["failover", "loadbalance"]),
    default=None,
    help="Override policy.mode of the config.",
)


@click.group()
def lab() -> None:
    """The reference office in network namespaces: fake internet, two ISPs, router, clients."""


@lab.command()
@lab_config
@mode_option
@ha_option
@click.option(
    "--shape",
    "shape_mbit",
    type=click.FloatRange(0.1, 10000),
    default=None,
    metavar="MBIT",
    help="Limit each ISP to this many Mbit/s both ways (tc tbf on the ISP side).",
)
@click.option(
    "--dynamic",
    is_flag=True,
    help=f"Uplinks that are not static: {DYNAMIC_CONFIG.name} (DHCP from the ISP, PPP-like).",
)
def up(
    config_path: Path, mode: str | None, ha: bool, shape_mbit: float | None, dynamic: bool
) -> None:
    """Build the lab and start wanwatch as its router; leave it running."""
    from wanwatch.lab.office import Office
    from wanwatch.lab.topology import Lab

    _need_root()
    if ha:
        from wanwatch.lab import ha as pair

        a, b = pair.pair_paths(pair.DEFAULT_A if config_path == DEFAULT_CONFIG else config_path)
        pair.up(load_or_exit(a), load_or_exit(b), click.echo)
        return
    cfg = load_or_exit(DYNAMIC_CONFIG if dynamic else config_path)
    if mode is not None:
        cfg = cfg.replace(policy=cfg.policy.replace(mode=mode))
    the_lab = Lab(cfg, client_dns="router", remove_state=False)
    try:
        the_lab.up()
        office = Office(the_lab)
        office.start(wait_active=min(cfg.wans, key=lambda w: w.priority).name, timeout=20)
        if shape_mbit is not None:
            from wanwatch.lab.shaping import shape

            for wan in cfg.wans:
                shape(the_lab, wan.name, shape_mbit)
    except (LabError, KeyboardInterrupt):
        the_lab.down()
        raise
    click.echo(f"lab {the_lab.tag} is up; wanwatch runs in {the_lab.router_ns}.")
    click.echo(f"  config:   {the_lab.config_path}")
    if shape_mbit is not None:
        click.echo(f"  each ISP shaped to {shape_mbit:g} Mbit/s both ways")
    click.echo(f"  status:   wanwatch status --socket {office.socket}")
    for lan in cfg.lans:
        ns = the_lab.ns_for(lan.name)
        click.echo(f"  client {lan.name}: ip netns exec {ns} <command>")
    for isp in the_lab.topology.isps:
        if isp.kind == "dhcp":
            click.echo(f"  {isp.wan}: DHCP from {isp.ns} (dnsmasq there), lease in status")
        elif isp.kind == "point-to-point":
            click.echo(f"  {isp.wan}: point-to-point, {isp.router_if} has a peer address")
        click.echo(f"    unplug it: ip -n {the_lab.router_ns} link del {isp.router_if}")
    click.echo("  take it down: wanwatch lab down")


@lab.command()
@ha_option
def down(ha: bool) -> None:
    """Stop every lab this machine runs (their processes by PID, namespaces by name)."""
    from wanwatch.lab.topology import Lab

    _need_root()
    if ha:
        from wanwatch.lab import ha as pair

        pair.down_all(click.echo)
        return
    dirs = Lab.running()
    if not dirs:
        click.echo("no lab is running.")
        return
    for state_dir in dirs:
        the_lab = Lab.attach(state_dir)
        the_lab.remove_state = True
        the_lab.down()
        click.echo(f"lab {the_lab.tag} removed.")


@lab.command()
@lab_config
@mode_option
@ha_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print the measured figures as JSON at the end."
)
def demo(config_path: Path, mode: str | None, ha: bool, as_json: bool) -> None:
    """Run the failover test: cut the primary, measure failover, failback and carrier loss.

    With --ha: kill the master router of a pair and show the office carrying on."""
    from wanwatch.lab.demo import run

    _need_root()
    try:
        if ha:
            from wanwatch.lab import ha as pair

            a, b = pair.pair_paths(pair.DEFAULT_A if config_path == DEFAULT_CONFIG else config_path)
            figures = pair.demo(load_or_exit(a), load_or_exit(b), click.echo)
        else:
            figures = run(load_or_exit(config_path), click.echo, mode=mode)
    except LabError as exc:
        click.echo(f"demo failed: {exc}", err=True)
        sys.exit(EXIT_FINDING)
    if as_json:
        click.echo(json.dumps(figures))
