"""Golden files of policy rules: ``wanwatch plan --matrix`` for the reference office
(no rules) and for examples/office-rules.yaml. Rewrite with WANWATCH_UPDATE_GOLDENS=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from wanwatch.cli import main

HERE = Path(__file__).parent / "rules"
EXAMPLES = Path(__file__).parents[2] / "examples"
UPDATE = os.environ.get("WANWATCH_UPDATE_GOLDENS") == "1"


def compare(actual: str, golden: Path) -> None:
    if UPDATE:
        golden.write_text(actual, encoding="utf-8")
    if not golden.exists():
        pytest.fail(f"{golden} is missing; create it with WANWATCH_UPDATE_GOLDENS=1")
    assert actual == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; if intended, rerun with WANWATCH_UPDATE_GOLDENS=1"
    )


@pytest.mark.parametrize("example", ["office", "office-rules"])
def test_plan_matrix(example: str) -> None:
    result = CliRunner().invoke(main, ["plan", "-c", str(EXAMPLES / f"{example}.yaml"), "--matrix"])
    assert result.exit_code == 0, result.output
    compare(result.output, HERE / f"matrix-{example}.txt")
