"""``wanwatch routeros verify`` on the whole RouterOS corpus: the real public
exports (``tests/data/routeros/real/``) and the recipe variations
(``tests/data/routeros/*.rsc``).

Runs the real command (the click group, in process) on every file and compares
its JSON with the hand-derived sidecar (``*.expected.json``); totals over both,
and per corpus under ``by_corpus``:

* ``read``: files that exit 0 or 1 (2 means refused as unreadable);
  ``exit_right``: files whose exit code is the sidecar's (a refusal the sidecar
  expects counts as right);
* ``rows``: scenario rows (one scenario of one file, every routing table)
  equal to the hand-derived answer; files whose sidecar says ``not_judged``
  have no rows;
* ``false_warnings``: warnings verify prints that the sidecar does not hold;
  ``missed_warnings`` the other way round;
* ``tracebacks``: runs that ended in an exception other than the CLI's exit;
* ``hostile``: seconds ``verify`` takes on each pathological input of
  ``tests/data/routeros/hostile.json`` (refused or read, its answer is checked by
  the unit tests); every stage is meant to stay linear in the text, so each should
  take well under a second.

Prints ONE JSON object; progress on stderr. Asserts nothing.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import ROOT, host_info, say
from click.testing import CliRunner

from wanwatch.cli.routeros import routeros
from wanwatch.errors import RouterOSError
from wanwatch.routeros.verify import verify_text

SYNTHETIC = ROOT / "tests" / "data" / "routeros"
REAL = SYNTHETIC / "real"
HOSTILE = ROOT / "tests" / "data" / "routeros" / "hostile.json"


def share(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def hostile() -> dict[str, float]:
    """Seconds verify takes on each pathological input (best of three)."""
    out: dict[str, float] = {}
    for case in json.loads(HOSTILE.read_text())["cases"]:
        text = "".join(part * times for part, times in case["parts"])
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            # Refused or read: the unit tests check which, and that it is right.
            with contextlib.suppress(RouterOSError):
                verify_text(text, "h.rsc")
            best = min(best, time.perf_counter() - start)
        out[case["id"]] = round(best, 3)
        say(f"hostile {case['id']}: {best:.3f} s")
    return out


def expected_exit(want: dict[str, Any]) -> int:
    """The exit code a sidecar implies: 2 for a file it says is refused."""
    if "error" in want:
        return 2
    return int(want.get("exit", 1 if want["warnings"] else 0))


def judge(runner: CliRunner, path: Path) -> dict[str, Any]:
    """One file's run of ``verify --json`` against its sidecar."""
    want = json.loads(path.with_suffix(".expected.json").read_text())
    result = runner.invoke(routeros, ["verify", "--json", str(path)])
    entry: dict[str, Any] = {"file": path.name, "exit": result.exit_code}
    entry["exit_right"] = result.exit_code == expected_exit(want)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        entry["traceback"] = repr(result.exception)
    if result.exit_code in (0, 1) and "traceback" not in entry:
        got = json.loads(result.stdout)
        warned = [[w["code"], w["line"]] for w in got["warnings"]]
        wanted = want.get("warnings", [])
        entry["false_warnings"] = [w for w in warned if w not in wanted]
        entry["missed_warnings"] = [w for w in wanted if w not in warned]
        if want.get("scenarios") is not None:
            rows = {s["id"]: s["tables"] for s in got["scenarios"]}
            wrong = [sid for sid, t in want["scenarios"].items() if rows.get(sid) != t]
            entry["rows"] = len(want["scenarios"])
            entry["rows_wrong"] = wrong
    say(f"{path.name}: exit {result.exit_code}")
    return entry


def totals(files: list[dict[str, Any]]) -> dict[str, Any]:
    read = sum(1 for f in files if f["exit"] in (0, 1) and "traceback" not in f)
    rows = sum(f.get("rows", 0) for f in files)
    wrong = sum(len(f.get("rows_wrong", [])) for f in files)
    return {
        "files": len(files),
        "read": read,
        "read_pct": share(read, len(files)),
        "exit_right": sum(1 for f in files if f["exit_right"]),
        "rows": rows,
        "rows_right": rows - wrong,
        "rows_right_pct": share(rows - wrong, rows),
        "false_warnings": sum(len(f.get("false_warnings", [])) for f in files),
        "missed_warnings": sum(len(f.get("missed_warnings", [])) for f in files),
        "tracebacks": sum(1 for f in files if "traceback" in f),
    }


def main() -> None:
    runner = CliRunner()
    corpora = {
        name: [judge(runner, path) for path in sorted(folder.glob("*.rsc"))]
        for name, folder in (("real", REAL), ("synthetic", SYNTHETIC))
    }
    everything = [f for files in corpora.values() for f in files]
    print(
        json.dumps(
            {
                "bench": "routeros_corpus",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "host": host_info(),
                **totals(everything),
                "by_corpus": {name: totals(files) for name, files in corpora.items()},
                "hostile_seconds": hostile(),
                "per_file": corpora,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
