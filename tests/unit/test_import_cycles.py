"""No import cycle among wanwatch's modules (module-level imports, read with ast)."""

from __future__ import annotations

import ast
from pathlib import Path

import wanwatch

PACKAGE = Path(wanwatch.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported.

    Imports inside a function run when it is called, after every module has finished
    loading, so they cannot meet a half-initialised module: they are the way to break
    a cycle and are left out. So are ``if TYPE_CHECKING:`` blocks, which never run.
    """
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            todo.extend(ast.iter_child_nodes(node))
    return found


def imported_modules(name: str, path: Path) -> set[str]:
    """The wanwatch modules that ``name`` imports at module level."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in module_level_imports(ast.parse(path.read_text(), str(path))):
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
