"""``wanwatch routeros export|verify``: the MikroTik side of the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from wanwatch.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FINDING,
    config_option,
    json_option,
    load_or_exit,
)
from wanwatch.errors import RouterOSError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def routeros() -> None:
    """Configure a MikroTik: compile the office to RouterOS, or check an export."""


@routeros.command()
@config_option()
@click.option(
    "--version",
    "ros_version",
    type=click.Choice(["7", "6"]),
    default="7",
    show_default=True,
    help="RouterOS major version to write for.",
)
def export(config_path: Path, ros_version: str) -> None:
    """Print a RouterOS script for the office; notes on stderr say what cannot be expressed."""
    from wanwatch.routeros.compile import compile_config

    cfg = load_or_exit(config_path)
    try:
        compiled = compile_config(cfg, int(ros_version))
    except RouterOSError as exc:
        click.echo(f"{config_path}: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    for note in compiled.notes:
        click.echo(f"{config_path}: not expressible in RouterOS: {note}", err=True)
    click.echo(compiled.script, nl=False)


@routeros.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def verify(file: Path, as_json: bool) -> None:
    """Simulate failures on a RouterOS export and flag classic failover mistakes.

    Exit 0: no warnings; 1: warnings; 2: the file cannot be read (line and reason).
    """
    from wanwatch.routeros.verify import verify_file

    try:
        report = verify_file(file)
    except RouterOSError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_BAD_INPUT)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(report.to_text())
    sys.exit(EXIT_FINDING if report.warnings else 0)
