"""The house rules of docs/architecture.md, kept by a test.

The top level of the package holds only leaf vocabulary that imports nothing of
ours; every module lives in a room, and the architecture page names each one in
its room's section, so a reader can find every file from it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "wanwatch"
DOC = SRC.parents[1] / "docs" / "architecture.md"
TOP_LEVEL = {"__init__.py", "errors.py", "footprint.py", "paths.py", "status.py"}


def _imports_of_ours(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom):
            names = ["(relative)"]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [n for n in names if n == "(relative)" or n.split(".")[0] == "wanwatch"]
    return found


def _sections(text: str) -> dict[str, str]:
    """Room name -> the text of its ``### `room/` `` section."""
    parts = re.split(r"^### `([a-z_]+)/`\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_top_level_is_leaf_vocabulary_only() -> None:
    modules = {p.name for p in SRC.glob("*.py")}
    assert modules == TOP_LEVEL, "a module at the top level belongs in a room"
    for name in sorted(TOP_LEVEL):
        assert _imports_of_ours(SRC / name) == [], f"{name} imports something of ours"


def test_the_import_reader_sees_imports_of_ours(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import os\nfrom wanwatch.errors import X\nfrom . import y\nimport wanwatch\n")
    assert _imports_of_ours(f) == ["wanwatch.errors", "(relative)", "wanwatch"]


def test_every_module_is_named_in_its_rooms_section() -> None:
    sections = _sections(DOC.read_text())
    rooms = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert set(sections) == rooms
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if len(rel.parts) == 1:
            continue
        if path.name == "__init__.py":
            if len(rel.parts) == 2:
                continue  # the room itself
            name = f"{rel.parts[-2]}/"  # a package inside a room: its directory
        else:
            name = path.name
        if f"`{name}`" not in sections[rel.parts[0]] and f"/{name}`" not in sections[rel.parts[0]]:
            missing.append(str(rel))
    assert missing == [], f"docs/architecture.md does not name: {missing}"
