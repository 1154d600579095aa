"""No import cycle in the product: the import graph of queue_scaler, queue_worker, functions and devkit
is a DAG.

Every `import` and `from ... import` statement counts, wherever it is written (at the top, inside a
function, under `if TYPE_CHECKING:`): an import moved into a function to dodge a cycle is still a
cycle, one that breaks on the day someone moves it back. Only `importlib` loads by name are not
seen, which is how the signal registry loads its plug-ins (queue_scaler.scaling.domain.signals).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
#: Each product package and the folder it is imported from (its sys.path entry).
PACKAGES = {
    "queue_scaler": ROOT / "layers" / "core",
    "queue_worker": ROOT / "workers",
    "functions": ROOT,
    "devkit": ROOT,
}


def modules() -> dict[str, Path]:
    """Every module of the product packages by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package, base in PACKAGES.items():
        for path in sorted((base / package).rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The product modules `module` imports: `from pkg import sub` names the submodule when there is one."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # A relative import: resolved against the module's own package.
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in targets:
            # `import a.b.c` where only a.b is ours, or a name inside a module: the nearest known module.
            target = name
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                yield target


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imported(name, path, known)) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_path(edges, component) for component in components]


def _path(edges: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle inside `component`, starting from its first module: a -> b -> ... -> a."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(edges[node] & component):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


def test_the_product_has_no_import_cycle() -> None:
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b", "a"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}, [["a", "b", "c", "a"]]),
    ],
    ids=["a chain", "two modules", "three modules and a leaf"],
)
def test_the_cycle_finder(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(edges) == expected


def test_the_graph_sees_imports_inside_functions_and_the_known_edges() -> None:
    edges = graph()
    assert "queue_scaler.scaling.domain.pool" in edges["queue_scaler.scaling.config"]
    assert "queue_scaler.scaling.domain.signals" in edges["queue_scaler.scaling.domain.pool"]
    # `from queue_scaler.scaling.domain import signals` is the package, not a name inside domain/__init__.py.
    assert "queue_scaler.scaling.domain.signals" in edges["queue_scaler.scaling.domain.decision"]
