"""The ``wanwatch`` command line. Thin: parse arguments, call one layer, print.

Exit codes: 0 fine, 1 a finding (warnings, a failed check against a live system),
2 bad input (config or file) with nothing applied.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from wanwatch import __version__
from wanwatch.config import Config, load
from wanwatch.errors import ConfigError

EXIT_BAD_INPUT = 2

config_option = click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The office YAML file (see examples/office.yaml).",
)


def load_or_exit(path: Path) -> Config:
    """Load the config or print every problem and exit 2 (nothing applied)."""
    try:
        return load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        n = len(exc.problems)
        click.echo(f"{n} problem{'s' if n != 1 else ''}; nothing applied.", err=True)
        sys.exit(EXIT_BAD_INPUT)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wanwatch")
def main() -> None:
    """Keep a small office online when an uplink dies.

    One YAML file describes the uplinks, LANs and policy. wanwatch either is the
    router on a Linux box (run, status, leases) or configures a MikroTik
    (routeros export / verify). `wanwatch lab demo` shows it working in network
    namespaces.
    """


@main.command()
@config_option
def check(config_path: Path) -> None:
    """Validate the config; exit 2 naming file, line and field of every mistake."""
    cfg = load_or_exit(config_path)
    click.echo(f"{config_path}: ok")
    for w in cfg.wans:
        addr = w.address or "(interface's own address)"
        targets = ", ".join(str(t) for t in w.probe.targets)
        click.echo(
            f"  wan {w.name}: {w.interface} {addr} via {w.gateway}, priority {w.priority}, "
            f"weight {w.weight}, probes {targets}"
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


@main.command()
@config_option
@click.option("--down", "down", multiple=True, metavar="WAN", help="Treat this uplink as down.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plan(config_path: Path, down: tuple[str, ...], as_json: bool) -> None:
    """Print the dataplane wanwatch wants for a given uplink state (no root needed)."""
    from wanwatch.engine.policy import plan_for

    cfg = load_or_exit(config_path)
    names = {w.name for w in cfg.wans}
    unknown = [d for d in down if d not in names]
    if unknown:
        click.echo(
            f"--down: no uplink named {', '.join(unknown)} (have: {', '.join(sorted(names))})",
            err=True,
        )
        sys.exit(EXIT_BAD_INPUT)
    intent = plan_for(cfg, set(down))
    if as_json:
        click.echo(json.dumps(intent.to_json(), indent=2))
        return
    from wanwatch.engine.intent import describe_intent

    click.echo(describe_intent(intent))


if __name__ == "__main__":  # pragma: no cover
    main()
