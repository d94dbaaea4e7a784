"""verify on real public RouterOS exports and scripts (tests/data/routeros/real/).

Each file's sidecar holds what RouterOS does, worked out by hand from the file
and the rules in simulate.py's docstring: the carrying route per scenario and
table, the warnings a careful reader would raise, and the exit code. Where
verify's model is known to fall short, the row is listed under
``model_limits`` with the reason; those rows must still differ, so that fixing
the model shows up here. The README beside the files names each one's source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wanwatch.routeros.verify import verify_file

REAL = Path(__file__).resolve().parents[1] / "data" / "routeros" / "real"
FILES = sorted(REAL.glob("*.rsc"))


def expected(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.with_suffix(".expected.json").read_text())
    return data


def test_real_corpus_is_there_with_sources() -> None:
    assert len(FILES) >= 28
    readme = (REAL / "README.md").read_text()
    for f in FILES:
        assert f.with_suffix(".expected.json").exists(), f
        assert f"`{f.name}`" in readme, f"{f.name} has no source in the README"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_real_export(path: Path) -> None:
    want = expected(path)
    got = verify_file(path).to_json()  # a real export is always read: no RouterOSError
    assert (1 if got["warnings"] else 0) == want["exit"]
    assert [[w["code"], w["line"]] for w in got["warnings"]] == want["warnings"]
    if want["scenarios"] is None:
        assert want["not_judged"]
        return
    rows = {s["id"]: s["tables"] for s in got["scenarios"]}
    assert set(rows) == set(want["scenarios"])
    limits = want["model_limits"]
    assert set(limits) <= set(want["scenarios"])
    for sid, tables in want["scenarios"].items():
        if sid in limits:
            assert rows[sid] != tables, f"{sid} is right now: drop it from model_limits"
        else:
            assert rows[sid] == tables, sid
    check_marks(got, want)


def check_marks(got: dict[str, Any], want: dict[str, Any]) -> None:
    """The marks mangle gives LAN traffic (``marks`` in the sidecar, hand-read from the
    file's prerouting mark-routing rules), and each one's path per scenario as the
    hand-derived table row implies it."""
    assert got.get("marks", []) == want.get("marks", [])
    limits = want["model_limits"]
    for s in got["scenarios"]:
        if s["id"] in limits:
            continue
        tables = want["scenarios"][s["id"]]
        implied = {}
        for m in want.get("marks", []):
            row = tables[m["mark"]]
            if row is None:
                # blocked or none depends on the rule's action: no sidecar needs it yet
                assert m["routing_rule"] is None, "say the rule's action in the sidecar"
                implied[m["mark"]] = {"path": "none"}
            else:
                path = "main" if row.get("fallback") else "table"
                implied[m["mark"]] = {"path": path} | {
                    k: v for k, v in row.items() if k != "fallback"
                }
        assert s.get("marks", {}) == implied, s["id"]
