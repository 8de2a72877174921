"""The layers of DESIGN.md section 9, checked on the source: no import cycles, front ends that do not
talk to each other, and no run-lifecycle logic outside the run service."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ssnas", "tui")
# Registry calls that change a run's lifecycle: only the service, the scheduler and workers make them.
LIFECYCLE_CALLS = {"create_run", "finish_run", "update_run", "start_run", "delete_run", "add_tags", "remove_tags",
                   "reconcile"}
FRONT_ENDS = ("ssnas/commands", "tui")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Every module of ours that `path` imports anywhere: at the top, in functions, under TYPE_CHECKING."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in known else base)
    return {t for t in targets if t in known and t != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(path, name, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_imports_in_functions_and_type_checking_blocks():
    edges = graph()
    assert "ssnas.registry" in edges["ssnas.runs.service"]  # top level
    assert "ssnas.nas.genotype" in edges["ssnas.runs.lookup"]  # in a function and under TYPE_CHECKING
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_dashboard_never_imports_click_or_the_cli():
    for path in (ROOT / "tui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad = [n for n in names if n == "click" or n.startswith(("click.", "ssnas.commands", "ssnas.cli"))]
            assert not bad, f"{path.relative_to(ROOT)} imports {bad[0]}"
        assert "subprocess" not in path.read_text(), f"{path.relative_to(ROOT)} starts processes itself"


def test_front_ends_hold_no_run_lifecycle_logic():
    """Commands and screens parse, call the service and render: no registry write of their own."""
    for front_end in FRONT_ENDS:
        for path in (ROOT / front_end).rglob("*.py"):
            calls = {node.func.attr for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
            assert not calls & LIFECYCLE_CALLS, f"{path.relative_to(ROOT)} calls {sorted(calls & LIFECYCLE_CALLS)}"
