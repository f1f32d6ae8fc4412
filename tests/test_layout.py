"""The layout's one direction: the analysis and the workflow logic import no training stack, and the engine's
modules import each other without cycles."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

TRAINING_STACK = ("torch", "numba", "seaborn", "matplotlib")


def imported_modules(*modules: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after importing `modules`."""
    code = f"import sys; import {', '.join(modules)}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


@pytest.mark.parametrize("modules", [
    ("plasticity.analysis", "plasticity.analysis.aggregate", "plasticity.analysis.reproduction",
     "plasticity.analysis.ngm_tables", "plasticity.analysis.adalin_table"),
    ("plasticity.workflow", "plasticity.config", "plasticity.stability_gap"),
])
def test_analysis_and_workflow_import_no_training_stack(modules):
    assert not imported_modules(*modules) & set(TRAINING_STACK)


# What each part of the library may import (besides config, io, seeding, stability_gap and itself): the layout
# config -> data -> benchmarks -> models/activations -> methods -> engine -> analysis reads in one direction.
ALLOWED = {
    "data": set(),
    "benchmarks": {"data"},
    "activations": set(),
    "models": {"activations"},
    "methods": {"models", "activations"},
    "engine": {"benchmarks", "models", "activations", "methods", "data"},
    "analysis": set(),
}
SHARED = {"config", "io", "seeding", "stability_gap"}


def library_imports() -> dict[str, set[str]]:
    """{module: plasticity modules it imports}, read from the sources (no import executed)."""
    root = Path(__file__).resolve().parents[1]
    graph = {}
    for path in (root / "plasticity").rglob("*.py"):
        module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("plasticity"):
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names if alias.name.startswith("plasticity"))
        graph[module] = imported
    return {module: {name for name in imported if name in graph} for module, imported in graph.items()}


def test_parts_import_only_what_comes_before_them():
    for module, imported in library_imports().items():
        part = module.split(".")[1] if module.count(".") else None
        if part not in ALLOWED:
            continue
        for name in imported:
            other = name.split(".")[1] if name.count(".") else None
            assert other in ALLOWED[part] | SHARED | {part, None}, f"{module} imports {name}"


def test_no_import_cycles():
    graph = library_imports()
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "active", f"import cycle: {' -> '.join(path + [module])}"
        state[module] = "active"
        for name in graph[module]:
            if name != module and not module.startswith(name + "."):     # a package's own __init__
                visit(name, path + [module])
        state[module] = "done"

    for module in graph:
        visit(module, [])
