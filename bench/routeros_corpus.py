"""``wanwatch routeros verify`` on the corpus of real public RouterOS exports.

Runs the real command (the click group, in process) on every
``tests/data/routeros/real/*.rsc`` and compares its JSON with the hand-derived
sidecar (``*.expected.json``):

* ``read``: files that exit 0 or 1 (2 means refused as unreadable);
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
from typing import Any

from _common import ROOT, host_info, say
from click.testing import CliRunner

from wanwatch.cli.routeros import routeros
from wanwatch.errors import RouterOSError
from wanwatch.routeros.verify import verify_text

REAL = ROOT / "tests" / "data" / "routeros" / "real"
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


def main() -> None:
    runner = CliRunner()
    files: list[dict[str, Any]] = []
    for path in sorted(REAL.glob("*.rsc")):
        want = json.loads(path.with_suffix(".expected.json").read_text())
        result = runner.invoke(routeros, ["verify", "--json", str(path)])
        entry: dict[str, Any] = {"file": path.name, "exit": result.exit_code}
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            entry["traceback"] = repr(result.exception)
        if result.exit_code in (0, 1) and "traceback" not in entry:
            got = json.loads(result.stdout)
            warned = [[w["code"], w["line"]] for w in got["warnings"]]
            entry["false_warnings"] = [w for w in warned if w not in want["warnings"]]
            entry["missed_warnings"] = [w for w in want["warnings"] if w not in warned]
            if want["scenarios"] is not None:
                rows = {s["id"]: s["tables"] for s in got["scenarios"]}
                wrong = [sid for sid, t in want["scenarios"].items() if rows.get(sid) != t]
                entry["rows"] = len(want["scenarios"])
                entry["rows_wrong"] = wrong
        say(f"{path.name}: exit {result.exit_code}")
        files.append(entry)
    read = sum(1 for f in files if f["exit"] in (0, 1) and "traceback" not in f)
    rows = sum(f.get("rows", 0) for f in files)
    wrong = sum(len(f.get("rows_wrong", [])) for f in files)
    print(
        json.dumps(
            {
                "bench": "routeros_corpus",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "host": host_info(),
                "files": len(files),
                "read": read,
                "read_pct": share(read, len(files)),
                "rows": rows,
                "rows_right": rows - wrong,
                "rows_right_pct": share(rows - wrong, rows),
                "false_warnings": sum(len(f.get("false_warnings", [])) for f in files),
                "missed_warnings": sum(len(f.get("missed_warnings", [])) for f in files),
                "tracebacks": sum(1 for f in files if "traceback" in f),
                "hostile_seconds": hostile(),
                "per_file": files,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
