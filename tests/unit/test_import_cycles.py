"""No import cycle among wanwatch's modules (every import, lazy ones included, read with ast)."""

from __future__ import annotations

import ast
from pathlib import Path

import wanwatch

PACKAGE = Path(wanwatch.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def all_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import in the module: at module level, inside functions, under ``TYPE_CHECKING``.

    An import inside a function cannot meet a half-initialised module, and a
    ``TYPE_CHECKING`` one never runs, but either still says that one module
    depends on the other: a circle drawn with them is a circle in the design, so
    they count like any other.
    """
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def imported_modules(name: str, path: Path) -> set[str]:
    """The wanwatch modules that ``name`` imports anywhere in its text."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in all_imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: from the package holding this module
            anchor = name.split(".")
            anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:  # `from pkg import submodule` imports the submodule
            sub = f"{base}.{alias.name}"
            targets.add(sub if sub in MODULES else base)
    return {t for t in targets if t in MODULES and t != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or None (depth-first)."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in sorted(graph[node]):
            cycle = visit(nxt, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for root in sorted(graph):
        cycle = visit(root, [])
        if cycle:
            return cycle
    return None


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def test_the_graph_sees_the_imports_it_should() -> None:
    assert "wanwatch.cli.common" in GRAPH["wanwatch.cli.router"]
    assert {"wanwatch.cli.lab", "wanwatch.cli.routeros"} <= GRAPH["wanwatch.cli"]
    assert "wanwatch.config" in GRAPH["wanwatch.cli.common"]


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_in_wanwatch() -> None:
    assert find_cycle(GRAPH) is None


def test_lazy_and_type_checking_imports_count() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import wanwatch.config\n"
        "def f() -> None:\n    from wanwatch.engine import core\n"
    )
    found = {a.name for n in all_imports(tree) if isinstance(n, ast.Import) for a in n.names}
    found |= {n.module or "" for n in all_imports(tree) if isinstance(n, ast.ImportFrom)}
    assert {"wanwatch.config", "wanwatch.engine"} <= found


def reachable(name: str) -> set[str]:
    """Every wanwatch module that importing ``name`` may load, directly or not."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for nxt in GRAPH[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_lab_is_built_in_layers() -> None:
    """The lab's plan is pure, what the Lab class is built on never reaches up to it, and
    a worker (a program inside a namespace) loads nothing of the lab's controller side."""
    lab_modules = {m for m in MODULES if m.startswith("wanwatch.lab")}
    assert reachable("wanwatch.lab.plan") & lab_modules == {"wanwatch.lab.netns"}
    for below in ("wanwatch.lab.procs", "wanwatch.lab.uplinks", "wanwatch.lab.services"):
        assert "wanwatch.lab.topology" not in reachable(below), below
    workers = {m for m in MODULES if m.startswith("wanwatch.lab.worker")}
    # echo packets: probe/icmp.py, and the socket pinning it uses (probe/pin.py, stdlib only)
    echo = {"wanwatch.probe.icmp", "wanwatch.probe.pin"}
    allowed = workers | echo | {"wanwatch.lab.netns", "wanwatch.errors"}
    assert reachable("wanwatch.lab.worker.__main__") <= allowed
