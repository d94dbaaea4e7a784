"""Golden-file comparison shared by the renderer tests of this folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

UPDATE = os.environ.get("WANWATCH_UPDATE_GOLDENS") == "1"

Compare = Callable[[str, Path], None]


def _compare(actual: str, golden: Path) -> None:
    """Assert ``actual`` equals the golden file (rewrite it with WANWATCH_UPDATE_GOLDENS=1)."""
    if UPDATE:
        golden.write_text(actual, encoding="utf-8")
    if not golden.exists():
        pytest.fail(f"{golden} is missing; create it with WANWATCH_UPDATE_GOLDENS=1")
    assert actual == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; if intended, rerun with WANWATCH_UPDATE_GOLDENS=1"
    )


@pytest.fixture
def golden() -> Compare:
    return _compare
