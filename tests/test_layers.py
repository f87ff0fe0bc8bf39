"""Data flows one way: a module imports only from stages before it."""

from __future__ import annotations

import ast

import pytest

from .conftest import ROOT

QA_DIR = ROOT / "qa"
# Leaves first, then the pipeline in order, then the front ends.
ORDER = [
    "schema", "errors", "config", "logs", "text", "corpus", "chunking", "model_conversion",
    "embeddings", "vector_store", "lexical", "segments", "index", "indexing", "updates",
    "retrieval", "answerers", "answer", "conversation", "metrics", "bench", "scale_bench",
    "update_bench", "web", "cli",
]


def _local_imports(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:  # `from . import x`: a module, or a name of qa/__init__
                found.update(a.name if (QA_DIR / f"{a.name}.py").exists() else "__init__"
                             for a in node.names)
            elif node.module and node.module.startswith("qa."):
                found.add(node.module.split(".")[1])
            elif node.module == "qa":
                found.add("__init__")
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("qa."))
            if any(a.name == "qa" for a in node.names):
                found.add("__init__")
    return found


def test_every_module_is_placed():
    modules = {p.stem for p in QA_DIR.glob("*.py")} - {"__init__", "__main__"}
    assert modules <= set(ORDER), f"add {sorted(modules - set(ORDER))} to ORDER"


@pytest.mark.parametrize("module", [m for m in ORDER if (QA_DIR / f"{m}.py").exists()])
def test_imports_point_upstream(module):
    position = ORDER.index(module)
    for dependency in _local_imports(QA_DIR / f"{module}.py"):
        if dependency == "__init__":  # the public API: only front ends may use it
            assert module in {"bench", "web", "cli"}, f"qa/{module}.py imports qa"
            continue
        assert ORDER.index(dependency) < position, f"qa/{module}.py imports {dependency}"
