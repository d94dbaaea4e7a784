"""Golden files of policy rules: ``wanwatch plan --matrix`` for the reference office
(no rules) and for examples/office-rules.yaml. Rewrite with WANWATCH_UPDATE_GOLDENS=1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from wanwatch.cli import main

HERE = Path(__file__).parent / "rules"
EXAMPLES = Path(__file__).parents[2] / "examples"
Compare = Callable[[str, Path], None]  # the ``golden`` fixture (conftest.py)


CONFIGS = {
    "office": EXAMPLES / "office.yaml",
    "office-rules": EXAMPLES / "office-rules.yaml",
    # a rule's IPv6 path where it differs from its IPv4 one
    "dual-stack-rules": HERE / "dual-stack-rules.yaml",
}


@pytest.mark.parametrize("example", sorted(CONFIGS))
def test_plan_matrix(example: str, golden: Compare) -> None:
    result = CliRunner().invoke(main, ["plan", "-c", str(CONFIGS[example]), "--matrix"])
    assert result.exit_code == 0, result.output
    golden(result.output, HERE / f"matrix-{example}.txt")
