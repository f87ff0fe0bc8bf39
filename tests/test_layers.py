"""Data flows one way: a package imports only from the stages before it."""

from __future__ import annotations

import ast

import pytest

from .conftest import ROOT

QA_DIR = ROOT / "qa"
# Leaves first, then the pipeline's stages in order, then the front ends.
ORDER = ["schema", "errors", "config", "logs", "text", "corpus", "embeddings", "reader", "index",
         "answering", "eval", "web", "cli"]
FRONT_ENDS = {"eval", "web", "cli"}  # the only ones that may use the public API, `qa`


def unit_of(path) -> str:
    """The layer a file of qa/ belongs to: its package, or its module at the top."""
    parts = path.relative_to(QA_DIR).with_suffix("").parts
    return parts[0]


def _imported_units(path) -> set[str]:
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
                names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            else:
                module = node.module or ""
                names = [module] if module != "qa" else [f"qa.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] != "qa":
                continue
            top = parts[1] if len(parts) > 1 else "__init__"
            found.add(top if top in ORDER else "__init__")
    return found


def _files():
    return [p for p in sorted(QA_DIR.rglob("*.py")) if p.name != "__main__.py"
            and p.relative_to(QA_DIR).as_posix() != "__init__.py"]


def test_every_unit_is_placed():
    units = {unit_of(p) for p in _files()}
    assert units <= set(ORDER), f"add {sorted(units - set(ORDER))} to ORDER"


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.relative_to(QA_DIR).as_posix())
def test_imports_point_upstream(path):
    unit = unit_of(path)
    for dependency in _imported_units(path) - {unit}:
        if dependency == "__init__":
            assert unit in FRONT_ENDS, f"{path.relative_to(ROOT)} imports qa"
            continue
        assert ORDER.index(dependency) < ORDER.index(unit), (
            f"{path.relative_to(ROOT)} imports qa.{dependency}, a later stage")


def test_the_package_never_imports_the_developer_benchmarks():
    for path in _files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                    node.module or ""]
                assert not any(n.startswith("benchmarks") for n in names), path


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.relative_to(QA_DIR).as_posix())
def test_modules_stay_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines: split it by concern"
