"""Shared test helpers. Lab fixtures live in tests/lab/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OFFICE = ROOT / "examples" / "office.yaml"


@pytest.fixture
def office_text() -> str:
    return OFFICE.read_text()
