"""What every command group shares: the ``-c`` option, exit codes, config loading, root check.

Exit codes: 0 fine, 1 a finding (warnings, a failed check against a live system),
2 bad input (config or file) with nothing applied.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from wanwatch.config import Config, load
from wanwatch.errors import ConfigError

EXIT_FINDING = 1
EXIT_BAD_INPUT = 2

CONFIG_HELP = "The office YAML file (see examples/office.yaml)."

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def config_option(
    default: Path | None = None, help_text: str = CONFIG_HELP, *, fixed: bool = False
) -> Callable[[F], F]:
    """``-c/--config FILE`` into ``config_path``; required unless ``default`` exists.

    ``fixed``: ``default`` even when it does not exist (yet): a service's
    conventional path, whose absence is then a config error that names it.
    """
    path_type = click.Path(dir_okay=False, path_type=Path)
    if default is None:
        return click.option(
            "-c", "--config", "config_path", required=True, type=path_type, help=help_text
        )
    present = fixed or default.exists()
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=path_type,
        default=str(default) if present else None,
        required=not present,
        show_default=True,
        help=help_text,
    )


def echo_problems(exc: ConfigError) -> None:
    """Every problem of a refused config on stderr, one a line."""
    for problem in exc.problems:
        click.echo(problem, err=True)


def load_or_exit(path: Path) -> Config:
    """Load the config or print every problem and exit 2 (nothing applied)."""
    try:
        return load(path)
    except ConfigError as exc:
        echo_problems(exc)
        n = len(exc.problems)
        click.echo(f"{n} problem{'s' if n != 1 else ''}; nothing applied.", err=True)
        sys.exit(EXIT_BAD_INPUT)


def need_root(message: str) -> None:
    """Exit 1 with ``message`` unless running as root."""
    if os.geteuid() != 0:
        click.echo(message, err=True)
        sys.exit(EXIT_FINDING)
