"""``routeros export`` and ``routeros verify`` through click's CliRunner on the group."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from wanwatch.cli.routeros import routeros
from wanwatch.config import load
from wanwatch.routeros.compile import compile_config

ROOT = Path(__file__).resolve().parents[2]
OFFICE = ROOT / "examples" / "office.yaml"
CORPUS = ROOT / "tests" / "data" / "routeros"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(routeros, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_export_prints_the_script_and_notes_on_stderr() -> None:
    code, out, err = run("export", "-c", str(OFFICE))
    assert code == 0
    assert out == compile_config(load(OFFICE), 7).script
    assert "not expressible in RouterOS: monitor.fast_interval=25ms" in err
    code6, out6, _ = run("export", "-c", str(OFFICE), "--version", "6")
    assert code6 == 0 and out6 == compile_config(load(OFFICE), 6).script


def test_export_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(OFFICE.read_text().replace("priority: 2", "priority: nine"))
    code, out, err = run("export", "-c", str(bad))
    assert code == 2 and out == ""
    assert "wans[1].priority" in err and "Traceback" not in err


def test_export_rejects_unknown_version() -> None:
    code, _, err = run("export", "-c", str(OFFICE), "--version", "5")
    assert code == 2 and "'5' is not one of" in err


def test_verify_clean_file_exits_0() -> None:
    code, out, _ = run("verify", str(CORPUS / "v7-recursive-official.rsc"))
    assert code == 0
    assert "baseline: main=8.8.8.8 via 10.111.0.1 ether1" in out and "no warnings" in out


def test_verify_warnings_exit_1_with_json() -> None:
    code, out, _ = run("verify", "--json", str(CORPUS / "v7-leak-target-scope.rsc"))
    assert code == 1
    data = json.loads(out)
    assert [w["code"] for w in data["warnings"]] == ["recursive-target-leak"] * 2
    assert data["scenarios"][0] == {
        "id": "baseline",
        "tables": {"main": {"gateway": "1.1.1.1", "nexthop": "10.111.0.1"}},
    }


def test_verify_unreadable_file_exits_2_with_line_and_reason(tmp_path: Path) -> None:
    path = CORPUS / "broken-unterminated.rsc"
    code, out, err = run("verify", str(path))
    assert code == 2 and out == ""
    assert err.strip() == f"{path}:3: unterminated quoted string starting at column 32"
    missing = tmp_path / "missing.rsc"
    code, _, err = run("verify", "--json", str(missing))
    assert code == 2 and f"{missing}:1: cannot read" in err and "Traceback" not in err


def test_round_trip_through_the_cli(tmp_path: Path) -> None:
    for version in ("7", "6"):
        _, script, _ = run("export", "-c", str(OFFICE), "--version", version)
        path = tmp_path / f"office-{version}.rsc"
        path.write_text(script)
        code, out, _ = run("verify", str(path))
        assert code == 0, out


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_verify_never_tracebacks(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.rsc"
        path.write_bytes(data)
        result = CliRunner().invoke(routeros, ["verify", "--json", str(path)])
    assert result.exit_code in (0, 1, 2)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 2:
        assert re.match(rf"^{re.escape(str(path))}:\d+: \S", result.stderr)
    else:
        json.loads(result.stdout)
