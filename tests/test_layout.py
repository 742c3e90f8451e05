"""The code's shape that a newcomer relies on: no import circle between modules anywhere (the
layers themselves are import-linter's contracts in `make lint`)."""

from __future__ import annotations

import sys

PACKAGES = ("app", "assistants", "retriever", "ingest", "runtime")


def _circles() -> list[list[str]]:
    """The groups of modules that import each other round a circle (strongly connected components of
    the import graph, lazy imports and TYPE_CHECKING ones included), each sorted."""
    import grimp

    graph = grimp.build_graph(*PACKAGES)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for module in sorted(graph.modules):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_no_module_imports_itself_round_a_circle() -> None:
    assert _circles() == []


def test_no_product_file_over_400_lines_and_no_function_over_80() -> None:
    """Files a newcomer can read in one sitting: a module that outgrows 400 lines is split by what its
    parts do (as ingest/pipeline.py into results, staging, finish), a function past 80 lines too."""
    import ast
    from pathlib import Path

    root = Path(__file__).parent.parent
    long_files, long_functions = [], []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            source = path.read_text()
            name = path.relative_to(root).as_posix()
            if source.count("\n") > 400:
                long_files.append(f"{name}: {source.count(chr(10))} lines")
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    size = (node.end_lineno or node.lineno) - node.lineno + 1
                    if size > 80:
                        long_functions.append(f"{name}: {node.name} {size} lines")
    assert not long_files, long_files
    assert not long_functions, long_functions
