"""The house rules that keep the package readable: no import cycles, no imports of our own modules hidden inside
functions (only the optional heavy dependencies load late), and the import-linter contracts in pyproject.toml."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "onnxviz"
# our modules that need torch / onnx2torch at import: loading them is loading the optional dependency
HEAVY_OWN = {"compat", "rules", "serve.app"}  # our modules that import torch / FastAPI at the top: lazily by design


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v, counter=[0]):  # noqa: B006  (a shared counter for the recursion)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles():
    graph = grimp.build_graph("onnxviz", exclude_type_checking_imports=False)  # type-checking imports count too
    assert _cycles(graph) == []


def _function_level_own_imports(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and (inner.level > 0 or (inner.module or "").startswith("onnxviz")):
                names = {inner.module or "", *(a.name for a in inner.names)}
                if not names & HEAVY_OWN:
                    found.append(f"{path.relative_to(root)}:{inner.lineno}")
            elif isinstance(inner, ast.Import) and any(a.name.startswith("onnxviz") for a in inner.names):
                found.append(f"{path.relative_to(root)}:{inner.lineno}")
    return found


def test_no_function_level_imports_of_our_own_modules():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _function_level_own_imports(path)]
    assert found == []


def test_the_rule_sees_a_planted_function_level_import(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("import numpy\n\ndef f():\n    import torch\n    from .model import load\n    return load\n")
    assert _function_level_own_imports(planted, tmp_path) == ["planted.py:5"]


def test_the_cycle_finder_sees_a_cycle():
    class Graph:
        modules = frozenset({"a", "b", "c"})

        @staticmethod
        def find_modules_directly_imported_by(m):
            return {"a": {"b"}, "b": {"a"}, "c": {"a"}}[m]

    assert _cycles(Graph()) == [["a", "b"]]


LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed (pip install -e '.[dev]')")
def test_import_linter_contracts_are_kept():
    exe = str(LINT_IMPORTS)
    proc = subprocess.run([exe], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
