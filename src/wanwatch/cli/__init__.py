"""The ``wanwatch`` command line. Thin: parse arguments, call one layer, print.

One module per command group (``router``: the office and its daemon; ``lab``;
``routeros``) on top of ``common`` (the ``-c`` option, exit codes, config loading).
A new command goes into its group's module; a new group is added to ``main`` below.
"""

from __future__ import annotations

import click

from wanwatch import __version__
from wanwatch.cli import lab, router, routeros


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wanwatch")
def main() -> None:
    """Keep a small office online when an uplink dies.

    One YAML file describes the uplinks, LANs and policy. wanwatch either is the
    router on a Linux box (run, status, leases) or configures a MikroTik
    (routeros export / verify). `wanwatch lab demo` shows it working in network
    namespaces.
    """


for _command in (*router.COMMANDS, lab.lab, routeros.routeros):
    main.add_command(_command)

__all__ = ["main"]
