"""``python -m wanwatch.cli``: the same as the ``wanwatch`` command."""

from wanwatch.cli import main

main()
